"""Writes torch_mlp.safetensors (a PyTorch state dict, float32) and torch_mlp.json (an input and PyTorch's output),
and torch_bn.safetensors / torch_bn.json for a model with batch norm (its running statistics and its int64
num_batches_tracked after three training batches; outputs in evaluation mode).

FuncFlow's ModelFileTests load them into Sequential(Linear(3, 4), Tanh(), Linear(4, 2)) and
Sequential(Linear(3, 4), BatchNorm1d(4), Tanh(), Linear(4, 2)) and compare outputs.
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



def save(path, state):
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        dtype, fmt = ("I64", "<i8") if t.dtype == torch.int64 else ("F32", "<f4")
        data = t.contiguous().numpy().astype(fmt).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


save("torch_mlp.safetensors", model.state_dict())
with open("torch_mlp.json", "w") as f:
    json.dump({"input": x.tolist(), "output": y.tolist(), "torch": torch.__version__}, f, indent=1)

bn = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
with torch.no_grad():
    bn[1].weight.copy_(1.0 + 0.3 * torch.randn(4))
    bn[1].bias.copy_(0.2 * torch.randn(4))
    bn.train()
    for _ in range(3):
        bn(2.0 + 1.5 * torch.randn(8, 3))
    bn.eval()
    y_bn = bn(x)
save("torch_bn.safetensors", bn.state_dict())
with open("torch_bn.json", "w") as f:
    json.dump({"input": x.tolist(), "output": y_bn.tolist(), "torch": torch.__version__}, f, indent=1)
