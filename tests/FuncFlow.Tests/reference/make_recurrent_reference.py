"""Writes recurrent_reference.json: PyTorch's recurrent layers and cells, the sequence cross-entropy with an
ignore index, and gradient clipping by global norm, in float64, the reference that RecurrentTests.fs holds
FuncFlow to.

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.Tests/reference/make_recurrent_reference.py

"layers": nn.RNN / nn.GRU / nn.LSTM with PyTorch's seeded initial parameters, on a random input (and random
initial states where "h0" is given): the output, h_n (and c_n), and the gradients of
sum(output * r) + sum(h_n * rh) (+ sum(c_n * rc)) with respect to the input, the initial states and every
parameter. "cells": the same for one step of RNNCell / GRUCell / LSTMCell, of sum(h' * rh) (+ sum(c' * rc)).
"cross_entropy": F.cross_entropy over [batch, time, classes] logits (classes moved to axis 1, as PyTorch
wants them) with integer targets and an ignore index: the mean loss and its gradient. "clip": the total norm
clip_grad_norm_ returns and the gradients after it.
Arrays are flat and row-major; Python's repr writes each double exactly.
"""

import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(11)
DT = torch.float64


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def randn(*shape):
    return torch.randn(*shape, dtype=DT)


def layer_case(name, module, x_shape, with_h0):
    module = module.to(DT)
    lstm = isinstance(module, torch.nn.LSTM)
    x = randn(*x_shape).requires_grad_()
    d = 2 if module.bidirectional else 1
    batch = x_shape[0] if module.batch_first else x_shape[1]
    state_shape = [module.num_layers * d, batch, module.hidden_size]
    h0 = randn(*state_shape).requires_grad_() if with_h0 else None
    c0 = randn(*state_shape).requires_grad_() if with_h0 and lstm else None
    if lstm:
        out, (hn, cn) = module(x, (h0, c0)) if with_h0 else module(x)
    else:
        out, hn = module(x, h0) if with_h0 else module(x)
        cn = None
    r, rh = randn(*out.shape), randn(*hn.shape)
    loss = (out * r).sum() + (hn * rh).sum()
    case = {"name": name, "kind": type(module).__name__, "relu": getattr(module, "nonlinearity", "") == "relu",
            "input_size": module.input_size, "hidden_size": module.hidden_size, "layers": module.num_layers,
            "bidirectional": module.bidirectional, "batch_first": module.batch_first, "bias": module.bias,
            "shape": x_shape, "x": flat(x), "r": flat(r), "rh": flat(rh)}
    if cn is not None:
        rc = randn(*cn.shape)
        loss = loss + (cn * rc).sum()
        case["rc"] = flat(rc)
        case["c_n"] = flat(cn)
    loss.backward()
    case.update({"output": flat(out), "h_n": flat(hn), "grad_input": flat(x.grad)})
    if with_h0:
        case["h0"] = flat(h0)
        case["grad_h0"] = flat(h0.grad)
        if lstm:
            case["c0"] = flat(c0)
            case["grad_c0"] = flat(c0.grad)
    case["params"] = {n: {"shape": list(p.shape), "value": flat(p), "grad": flat(p.grad)}
                      for n, p in module.named_parameters()}
    return case


def cell_case(name, module, batch):
    module = module.to(DT)
    lstm = isinstance(module, torch.nn.LSTMCell)
    x = randn(batch, module.input_size).requires_grad_()
    h = randn(batch, module.hidden_size).requires_grad_()
    c = randn(batch, module.hidden_size).requires_grad_() if lstm else None
    if lstm:
        h1, c1 = module(x, (h, c))
    else:
        h1, c1 = module(x, h), None
    rh = randn(*h1.shape)
    loss = (h1 * rh).sum()
    case = {"name": name, "kind": type(module).__name__, "relu": getattr(module, "nonlinearity", "") == "relu",
            "input_size": module.input_size, "hidden_size": module.hidden_size, "bias": module.bias,
            "x": flat(x), "h": flat(h), "rh": flat(rh)}
    if lstm:
        rc = randn(*c1.shape)
        loss = loss + (c1 * rc).sum()
        case.update({"c": flat(c), "rc": flat(rc), "c1": flat(c1)})
    loss.backward()
    case.update({"h1": flat(h1), "grad_x": flat(x.grad), "grad_h": flat(h.grad)})
    if lstm:
        case["grad_c"] = flat(c.grad)
    case["params"] = {n: {"shape": list(p.shape), "value": flat(p), "grad": flat(p.grad)}
                      for n, p in module.named_parameters()}
    return case


def cross_entropy_case(shape, targets, ignore_index):
    logits = (2.0 * randn(*shape)).requires_grad_()
    t = torch.tensor(targets, dtype=torch.long).reshape(shape[:2])
    loss = F.cross_entropy(logits.permute(0, 2, 1), t, ignore_index=ignore_index)
    loss.backward()
    return {"shape": shape, "logits": flat(logits), "targets": targets, "ignore_index": ignore_index,
            "loss": float(loss), "grad": flat(logits.grad)}


def clip_case(shapes, max_norm, scale):
    ps = [torch.nn.Parameter(randn(*s)) for s in shapes]
    for p in ps:
        p.grad = scale * randn(*p.shape)
    before = [flat(p.grad) for p in ps]
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
    return {"shapes": shapes, "max_norm": max_norm, "grads": before, "total_norm": float(total),
            "clipped": [flat(p.grad) for p in ps]}


layers = [
    layer_case("rnn_tanh_2layer_bidirectional_batch_first",
               torch.nn.RNN(3, 4, num_layers=2, bidirectional=True, batch_first=True), [2, 5, 3], True),
    layer_case("rnn_relu_no_bias", torch.nn.RNN(3, 4, nonlinearity="relu", bias=False), [5, 2, 3], False),
    layer_case("gru_2layer_bidirectional", torch.nn.GRU(3, 4, num_layers=2, bidirectional=True), [5, 2, 3], True),
    layer_case("gru_batch_first", torch.nn.GRU(2, 3, batch_first=True), [3, 4, 2], False),
    layer_case("lstm_2layer_bidirectional_batch_first",
               torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), [2, 5, 3], True),
    layer_case("lstm_1layer", torch.nn.LSTM(3, 5), [4, 3, 3], False),
]
cells = [
    cell_case("rnn_cell_tanh", torch.nn.RNNCell(3, 4), 2),
    cell_case("rnn_cell_relu", torch.nn.RNNCell(3, 4, nonlinearity="relu"), 2),
    cell_case("gru_cell", torch.nn.GRUCell(3, 4), 2),
    cell_case("lstm_cell", torch.nn.LSTMCell(3, 4), 2),
]
cross_entropy = [
    cross_entropy_case([2, 4, 5], [1, 4, -100, 0, 2, -100, -100, 3], -100),
    cross_entropy_case([3, 2, 4], [0, 1, 2, 3, 2, 2], 2),
    cross_entropy_case([1, 3, 3], [2, 0, 1], -100),
]
clip = [
    clip_case([[3, 2], [4]], 1.0, 1.0),
    clip_case([[2, 2], [3], [1]], 100.0, 0.5),
]

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recurrent_reference.json")
with open(path, "w") as f:
    json.dump({"layers": layers, "cells": cells, "cross_entropy": cross_entropy, "clip": clip}, f)
print("wrote", path)
