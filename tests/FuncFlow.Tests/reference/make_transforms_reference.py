"""Jacobians and Hessians from PyTorch for TransformTests.fs (Grad.jacobian, Grad.hessian).

Run once with Debian's python3-torch: /usr/bin/python3 make_transforms_reference.py
It writes transforms_reference.json next to this script; CI reads the JSON and needs no torch.
Each case names a function that TransformTests.fs builds the same way from FuncFlow's operations.
"""
import json
import os

import torch
from torch.autograd.functional import hessian, jacobian

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(15)


def rand(*shape):
    return torch.rand(*shape, generator=gen) * 2.0 - 1.0


A = rand(4, 2)  # forward mode: f has more elements than x
W = rand(2, 3)  # reverse mode: x has more elements than f

jacobians = {
    # x [2] -> [4]: sin(A x)
    "sinLinear": (lambda x: torch.sin(A @ x), rand(2)),
    # x [3] -> [2]: tanh(W x)
    "tanhLinear": (lambda x: torch.tanh(W @ x), rand(3)),
    # x [3] -> [3]: softmax(x * x)
    "softmaxSquare": (lambda x: torch.softmax(x * x, 0), rand(3)),
    # x [2, 2] -> [2, 2]: x @ x + exp(x)
    "matrixSquare": (lambda x: x @ x + torch.exp(x), rand(2, 2)),
    # x [3] -> [2, 3]: running sums of the rows x and x ** 2
    "cumsumStack": (lambda x: torch.cumsum(torch.stack([x, x**2]), 1), rand(3)),
}

hessians = {
    # x [3]: sum(sigmoid(x) * x ** 3) + logsumexp(x)
    "sigmoidCubic": (lambda x: torch.sum(torch.sigmoid(x) * x**3) + torch.logsumexp(x, 0), rand(3)),
    # x [2, 2]: sum(tanh(x @ x))
    "tanhMatrix": (lambda x: torch.sum(torch.tanh(x @ x)), rand(2, 2)),
    # x []: x ** 3 + 2 tanh(x)
    "cubicTanh": (lambda x: x**3 + 2.0 * torch.tanh(x), rand(())),
}


def case(f, x, transform):
    value = transform(f, x)
    return {
        "x": x.flatten().tolist(),
        "xShape": list(x.shape),
        "value": value.flatten().tolist(),
        "shape": list(value.shape),
    }


out = {
    "constants": {"A": A.flatten().tolist(), "W": W.flatten().tolist()},
    "jacobian": {name: case(f, x, jacobian) for name, (f, x) in jacobians.items()},
    "hessian": {name: case(f, x, hessian) for name, (f, x) in hessians.items()},
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "transforms_reference.json"), "w") as fh:
    json.dump(out, fh, indent=1)
    fh.write("\n")
