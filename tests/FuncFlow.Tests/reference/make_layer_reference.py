"""Writes layer_reference.json: PyTorch's normalisation, convolution and pooling layers in float64, the
reference that LayerReferenceTests.fs and NormalizationTests.fs hold FuncFlow's layers to.

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.Tests/reference/make_layer_reference.py

"batchnorm2d": three SGD training steps of BatchNorm2d (non-default eps and momentum, random affine
parameters) on MSE against a target, each on a new batch: per step the output, the loss, the gradients of the
loss with respect to the input, weight and bias, then the parameters and the buffers (running_mean,
running_var, num_batches_tracked) after the optimiser's step; then the output in eval mode on a fresh input.
"layers": one forward and backward pass of other layers in training mode on random inputs, with random
parameters (PyTorch's initial ones plus noise): the output and the gradients of sum(output * r) (r a fixed random tensor) with respect to the
input and each parameter.
Arrays are flat and row-major; Python's repr writes each double exactly.
"""

import json
import os

import torch

torch.manual_seed(0)
DT = torch.float64


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def randn(*shape):
    return torch.randn(*shape, dtype=DT)


def batchnorm2d_case(momentum=0.2):
    """momentum=None: the running statistics are the cumulative average of every batch's."""
    shape = [4, 3, 3, 2]
    eps, lr, steps = 1e-3, 0.5, 3
    bn = torch.nn.BatchNorm2d(3, eps=eps, momentum=momentum).to(DT)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.5 * randn(3))
        bn.bias.copy_(0.5 * randn(3))
    case = {"shape": shape, "eps": eps, "momentum": momentum, "lr": lr,
            "weight": flat(bn.weight), "bias": flat(bn.bias), "steps": []}
    opt = torch.optim.SGD(bn.parameters(), lr=lr)
    bn.train()
    for k in range(steps):
        # Channel means and spreads that differ, so a statistic over the wrong axes is visibly wrong.
        x = (randn(*shape) * torch.tensor([1.0, 2.0, 0.5], dtype=DT).reshape(1, 3, 1, 1)
             + torch.tensor([0.5, -1.0, 3.0], dtype=DT).reshape(1, 3, 1, 1)).requires_grad_()
        target = randn(*shape)
        opt.zero_grad()
        out = bn(x)
        loss = torch.nn.functional.mse_loss(out, target)
        loss.backward()
        step = {"x": flat(x), "target": flat(target), "output": flat(out), "loss": float(loss),
                "grad_input": flat(x.grad), "grad_weight": flat(bn.weight.grad), "grad_bias": flat(bn.bias.grad)}
        opt.step()
        step.update({"weight": flat(bn.weight), "bias": flat(bn.bias), "running_mean": flat(bn.running_mean),
                     "running_var": flat(bn.running_var), "num_batches_tracked": int(bn.num_batches_tracked)})
        case["steps"].append(step)
    bn.eval()
    x = randn(*shape) + 1.0
    case["eval"] = {"x": flat(x), "output": flat(bn(x))}
    return case


def layer_case(name, module, shape, args):
    module = module.to(DT)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p + 0.5 * randn(*p.shape))
    module.train()
    x = (randn(*shape) * 1.5 + 0.5).requires_grad_()
    out = module(x)
    r = randn(*out.shape)
    (out * r).sum().backward()
    return {"name": name, "args": args, "shape": shape, "x": flat(x), "r": flat(r), "output": flat(out),
            "grad_input": flat(x.grad),
            "params": {n: {"value": flat(p), "grad": flat(p.grad)} for n, p in module.named_parameters()}}


def conv_case(kind, shape, out_channels, kernel, stride, padding, dilation, groups, bias):
    module = kind(shape[1], out_channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    args = {"out_channels": out_channels, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
            "groups": groups, "bias": bias}
    return layer_case(kind.__name__.lower(), module, shape, args)


def layer_cases():
    return [
        layer_case("batchnorm1d", torch.nn.BatchNorm1d(4, eps=1e-4, momentum=0.3), [5, 4], {"features": 4, "eps": 1e-4}),
        layer_case("batchnorm1d", torch.nn.BatchNorm1d(3), [4, 3, 5], {"features": 3, "eps": 1e-5}),
        layer_case("layernorm", torch.nn.LayerNorm([3, 4], eps=1e-4), [2, 5, 3, 4], {"shape": [3, 4], "eps": 1e-4}),
        layer_case("groupnorm", torch.nn.GroupNorm(2, 6, eps=1e-4), [3, 6, 2, 3], {"groups": 2, "channels": 6, "eps": 1e-4}),
        # Convolution and pooling layers: every hyper-parameter away from its default somewhere.
        conv_case(torch.nn.Conv2d, [2, 4, 7, 6], 6, [3, 2], [2, 1], [1, 0], [1, 2], 2, True),
        conv_case(torch.nn.Conv2d, [3, 2, 5, 5], 3, [3, 3], [1, 1], [1, 1], [1, 1], 1, False),
        conv_case(torch.nn.Conv1d, [2, 3, 9], 4, [3], [2], [1], [1], 1, True),
        conv_case(torch.nn.Conv1d, [2, 4, 10], 2, [2], [1], [0], [3], 2, False),
        layer_case("maxpool2d", torch.nn.MaxPool2d(3, stride=2, padding=1), [2, 3, 7, 6], {"kernel": 3, "stride": 2, "padding": 1}),
        layer_case("avgpool2d", torch.nn.AvgPool2d(3, stride=2, padding=1), [2, 3, 7, 6], {"kernel": 3, "stride": 2, "padding": 1}),
        layer_case("adaptiveavgpool2d", torch.nn.AdaptiveAvgPool2d(1), [2, 3, 5, 4], {"size": [1, 1]}),
        layer_case("adaptiveavgpool2d", torch.nn.AdaptiveAvgPool2d((2, 3)), [2, 3, 4, 6], {"size": [2, 3]}),
        layer_case("flatten", torch.nn.Flatten(), [2, 3, 2, 2], {"start": 1}),
        # Uneven windows: PyTorch's start floor(i H / h) and end ceil((i + 1) H / h), overlapping.
        layer_case("adaptiveavgpool2d", torch.nn.AdaptiveAvgPool2d((3, 4)), [2, 3, 7, 6], {"size": [3, 4]}),
        layer_case("adaptiveavgpool2d", torch.nn.AdaptiveAvgPool2d((5, 2)), [1, 2, 3, 5], {"size": [5, 2]}),
    ]


def main():
    reference = {"torch": torch.__version__, "batchnorm2d": batchnorm2d_case(), "layers": layer_cases()}
    # Drawn after the others, so that their random values stay as they were.
    reference["batchnorm2d_cumulative"] = batchnorm2d_case(momentum=None)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_reference.json")
    with open(path, "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
