"""Writes facade_reference.json: PyTorch float64 values and gradients of each operation the C# facade offers,
the independent reference that CoreEquivalenceTests.cs holds FuncFlow.Autograd and FuncFlow.Nodes to.

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.CSharp.Tests/reference/make_facade_reference.py

Each case stores its inputs (drawn here from a seeded NumPy generator, so the C# side reads the very same
numbers), the output and the gradient of every differentiable input. Autograd cases backpropagate a random
seed gradient (stored too), as Tensor.Backward(grad) does; node cases seed with ones, as
Graph.ForwardAndBackward does for the last node.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

rng = np.random.RandomState(20250101)


def normal(*shape):
    return rng.standard_normal(shape)


def constant(values):
    return np.array(values, dtype=np.float64)


def case(fn, inputs, differentiable, seed=None):
    """Runs fn on float64 tensors; returns the fixture entry."""
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=d) for x, d in zip(inputs, differentiable)]
    out = fn(*ts)
    grad = torch.ones_like(out) if seed is None else torch.tensor(seed, dtype=torch.float64)
    out.backward(grad)

    def tensor(a):
        a = np.asarray(a, dtype=np.float64)
        return {"shape": list(a.shape), "values": a.reshape(-1).tolist()}

    entry = {
        "inputs": [dict(tensor(x), differentiable=d) for x, d in zip(inputs, differentiable)],
        "output": tensor(out.detach().numpy()),
        "grads": [tensor(t.grad.numpy()) if d else None for t, d in zip(ts, differentiable)],
    }
    if seed is not None:
        entry["seed"] = tensor(seed)
    return entry


def autograd_cases():
    a, b = normal(3, 4), normal(3, 4)
    specs = {
        "add": (lambda x, y: x + y, [a, b], [True, True]),
        "sub": (lambda x, y: x - y, [a, b], [True, True]),
        "mul": (lambda x, y: x * y, [a, b], [True, True]),
        "neg": (lambda x: -x, [a], [True]),
        "sum0": (lambda x: x.sum(0), [a], [True]),
        "sum1": (lambda x: x.sum(1), [a], [True]),
        # Grokking's expand(dim, copies): a new axis at dim holding copies of the tensor.
        "expand0": (lambda x: x.unsqueeze(0).expand(5, 3, 4), [a], [True]),
        "expand2": (lambda x: x.unsqueeze(2).expand(3, 4, 2), [a], [True]),
        "transpose": (lambda x: x.t(), [a], [True]),
        "mm": (lambda x, y: x @ y, [a, normal(4, 2)], [True, True]),
        "sigmoid": (torch.sigmoid, [a], [True]),
        "tanh": (torch.tanh, [a], [True]),
        "relu": (torch.relu, [a], [True]),
        "softmax": (lambda x: torch.softmax(x, -1), [a], [True]),
        # Row 2 picked twice: its gradient is the sum of both seeds' rows.
        "index_select": (lambda x, i: x.index_select(0, i.long()), [a, constant([2, 0, 2, 1])], [True, False]),
        "cross_entropy": (lambda x, t: F.cross_entropy(x, t.long()), [a, constant([3, 0, 1])], [True, False]),
    }
    out = {}
    for name, (fn, inputs, differentiable) in specs.items():
        with torch.no_grad():
            shape = fn(*[torch.tensor(x) for x in inputs]).shape
        out[name] = case(fn, inputs, differentiable, seed=normal(*shape))
    return out


def node_cases():
    a, b = normal(3, 4), normal(3, 4)
    one_hot = constant([[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    specs = {
        "add": (lambda x, y, z: x + y + z, [a, b, normal(4)], [True, True, True]),
        "mul": (lambda x, y: x * y, [a, b], [True, True]),
        "linear": (lambda x, w, c: x @ w + c, [a, normal(4, 2), normal(2)], [True, True, True]),
        "sigmoid": (torch.sigmoid, [a], [True]),
        "relu": (torch.relu, [a], [True]),
        "tanh": (torch.tanh, [a], [True]),
        # Softmax times weights: with the ones seed alone, softmax's rows sum to 1 and its gradient would be 0.
        "softmax": (lambda x, w: torch.softmax(x, -1) * w, [a, b], [True, True]),
        # MiniFlow's MSE(y, a): the targets y (6,) read as a column like the predictions a (6, 1).
        "mse": (lambda y, p: ((y.reshape(-1, 1) - p) ** 2).mean(), [normal(6), normal(6, 1)], [True, True]),
        # Probabilities as targets (one-hot rows): torch's soft-label cross-entropy.
        "softmax_cross_entropy": (lambda x, p: F.cross_entropy(x, p), [a, one_hot], [True, False]),
    }
    return {name: case(fn, inputs, differentiable) for name, (fn, inputs, differentiable) in specs.items()}


def network_case():
    # MSE(y, Linear(Sigmoid(Linear(X, W1, b1)), W2, b2)), every input differentiable.
    def net(x, w1, b1, w2, b2, y):
        hidden = torch.sigmoid(x @ w1 + b1)
        return ((y.reshape(-1, 1) - (hidden @ w2 + b2)) ** 2).mean()

    inputs = [normal(5, 3), normal(3, 4), normal(4), normal(4, 1), normal(1), normal(5)]
    return case(net, inputs, [True] * 6)


def main():
    out = {
        "generator": "tests/FuncFlow.CSharp.Tests/reference/make_facade_reference.py, torch " + torch.__version__,
        "autograd": autograd_cases(),
        "nodes": node_cases(),
        "network": network_case(),
    }
    # One case per line: readable in a diff, without a line per number.
    lines = ["{", ' "generator": %s,' % json.dumps(out["generator"])]
    for section in ["autograd", "nodes"]:
        cases = ",\n".join("  %s: %s" % (json.dumps(name), json.dumps(c)) for name, c in out[section].items())
        lines.append(' "%s": {\n%s\n },' % (section, cases))
    lines.append(' "network": %s' % json.dumps(out["network"]))
    lines.append("}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "facade_reference.json")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
