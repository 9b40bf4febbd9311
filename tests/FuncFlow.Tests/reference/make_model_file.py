"""Writes torch_mlp.safetensors (a PyTorch state dict, float32) and torch_mlp.json (an input and PyTorch's output).

FuncFlow's ModelFileTests load the file into Sequential(Linear(3, 4), Tanh(), Linear(4, 2)) and compare outputs.
The safetensors bytes are written by hand (8-byte header length, JSON header, raw little-endian data), as
safetensors.torch.save_file writes them, so the script needs only torch. Run: /usr/bin/python3 make_model_file.py
"""
import json
import struct

import torch

torch.manual_seed(12)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
x = torch.randn(5, 3)
with torch.no_grad():
    y = model(x)

state = model.state_dict()
header, blobs, offset = {}, [], 0
for name, t in state.items():
    data = t.contiguous().numpy().astype("<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
head = json.dumps(header, separators=(",", ":")).encode()
head += b" " * (-len(head) % 8)
with open("torch_mlp.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    for b in blobs:
        f.write(b)

with open("torch_mlp.json", "w") as f:
    json.dump({"input": x.tolist(), "output": y.tolist(), "torch": torch.__version__}, f, indent=1)
