"""Writes torch_state_dict.safetensors and torch_state_dict.json: a PyTorch model's state dict (float64) and its
output on a fixed input, so that AutogradTests can check that FuncFlow.Autograd's Load reads a PyTorch file into
the same architecture and computes the same output.

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.CSharp.Tests/reference/make_torch_state_dict.py

The safetensors bytes are written by hand (an 8-byte little-endian header length, the JSON header, the raw
little-endian tensors), so no safetensors package is needed.
"""

import json
import os
import struct

import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2)).double()
# LayerNorm starts at weight 1, bias 0: move them so the test sees them loaded.
with torch.no_grad():
    model[2].weight.copy_(torch.tensor([1.5, -0.5, 2.0, 0.25]))
    model[2].bias.copy_(torch.tensor([0.1, 0.2, -0.3, 0.4]))
x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], dtype=torch.float64)
y = model(x).detach()

here = os.path.dirname(os.path.abspath(__file__))
state = model.state_dict()
header, blobs, offset = {}, [], 0
for name, tensor in state.items():
    data = tensor.contiguous().numpy().astype("<f8").tobytes()
    header[name] = {"dtype": "F64", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
head = json.dumps(header, separators=(",", ":")).encode()
head += b" " * ((8 - len(head) % 8) % 8)
with open(os.path.join(here, "torch_state_dict.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    for b in blobs:
        f.write(b)
with open(os.path.join(here, "torch_state_dict.json"), "w") as f:
    json.dump({"input": x.tolist(), "output": y.tolist(), "names": list(state.keys())}, f, indent=1)
