"""Writes FuncFlow's independent references, computed with PyTorch (run with /usr/bin/python3):

reference.json  every operation's forward value and, for differentiable ones, its vector-Jacobian product
                for a seeded random cotangent, in float64 on small random inputs (ReferenceTests.fs);
extremes.json   every elementwise operation at the extremes of float64 and float32 (signed zeros,
                subnormals, overflow thresholds, infinities, NaN): forward values and gradients with a
                cotangent of ones; binary cross-entropy at probabilities 0 and 1 (ExtremeValueTests.fs).

Deterministic (fixed seeds, one thread), prints nothing. Numbers are JSON numbers written with Python's
repr (which round-trips doubles exactly); NaN and the infinities, which JSON lacks, are the strings "nan",
"inf" and "-inf". A float32 value is written as the double it converts to exactly.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
SQRT_HALF = 0.7071067811865476
HERE = os.path.dirname(os.path.abspath(__file__))


def numbers(t):
    out = []
    for v in t.detach().reshape(-1).tolist():
        v = float(v)
        out.append(v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")))
    return out


def write(name, document):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(document, f, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------------------------------------------------
# Elementwise operations as FuncFlow defines them, in PyTorch.

def in_float64(f):
    """f's value and gradient computed in float64 and rounded once to the input's dtype, as FuncFlow computes
    these functions of float32 values: PyTorch's float32 kernels lose digits at the extremes (its float32 silu
    is -0 at -89, where the value is -2e-37; its expm1 gradient, result + 1, is 0 below -17)."""
    return lambda x: f(x.double()).to(x.dtype)


class WithDerivative(torch.autograd.Function):
    """value(x) with the gradient g * derivative(x), for functions whose PyTorch gradient loses a tail."""

    @staticmethod
    def forward(ctx, x, value, derivative):
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return value(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.derivative(x), None, None


def sigmoid(x):
    """The logistic function with its lower tail: e^x / (1 + e^x) below 0 (torch.sigmoid is 0 at -710)."""
    return torch.where(x > 0, 1.0 / (1.0 + torch.exp(-x)), torch.exp(x) / (1.0 + torch.exp(x)))


def log1p(x):
    """torch.log1p, but x below the smallest normal number and log x above 1 / eps^2, where the functions are
    equal in the dtype: PyTorch's log1p flushes subnormals to 0 and gives infinity for 1e308."""
    info = torch.finfo(x.dtype)
    return torch.where(x.abs() < info.tiny, x, torch.where(x > 1.0 / info.eps ** 2, torch.log(x), torch.log1p(x)))


class Elu(torch.autograd.Function):
    """ELU with alpha 1.5: PyTorch's gradient (elu_backward), with the value from expm1, since F.elu computes
    exp(x) - 1, which loses every digit near 0 (-1.5000001e-10 at -1e-10)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, 1.5 * torch.expm1(torch.clamp(x, max=0.0)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(g, 1.5, 1, 1, False, x)


UNARY = {
    "neg": torch.neg,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    # log(1 + e^x) without torch.softplus's linear cut-over above 20 (off by 2e-9 there): logaddexp is exact.
    "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x)),
    # FuncFlow's sign keeps NaN, as NumPy's does; PyTorch's maps it to 0.
    "sign": lambda x: torch.where(torch.isnan(x), x, torch.sign(x)),
    # 1 where x > 0, else 0 (NaN gives 0); piecewise constant, so its gradient is zero.
    "step": lambda x: (x > 0).to(x.dtype),
    # ops group.
    "sin": torch.sin,
    "cos": torch.cos,
    "log1p": in_float64(log1p),
    # PyTorch's expm1 gradient, result + 1, is 0 below -37 in float64; e^x keeps the tail.
    "expm1": in_float64(lambda x: WithDerivative.apply(x, torch.expm1, torch.exp)),
    "erf": in_float64(torch.erf),
    "erfc": in_float64(torch.erfc),
    # F.gelu computes x (1 + erf(x / sqrt 2)) / 2, which loses the lower tail (0 at x = -20); erfc keeps it.
    "gelu": in_float64(lambda x: 0.5 * x * torch.erfc(-x * SQRT_HALF)),
    # PyTorch's silu gradient goes through torch.sigmoid, which is 0 below -709.
    "silu": in_float64(lambda x: WithDerivative.apply(x, F.silu, lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x))))),
    "logSigmoid": in_float64(F.logsigmoid),
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,
    "leakyRelu": in_float64(lambda x: F.leaky_relu(x, 0.2)),
    "elu": in_float64(Elu.apply),
    "clamp": lambda x: torch.clamp(x, -0.5, 2.0),
    "clampMin": lambda x: torch.clamp(x, min=-0.5),
    "clampMax": lambda x: torch.clamp(x, max=1.0),
    "rsqrt": torch.rsqrt,
}

BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "pow": torch.pow,
    "equal": lambda a, b: (a == b).to(a.dtype),
    # ops group.
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}

DIFFERENTIABLE_BINARY = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"}


def vjp(f, inputs, cotangent, differentiable):
    """f's value and the gradients of sum(cotangent * f) with respect to the inputs marked differentiable
    (None for the others)."""
    xs = [x.clone().requires_grad_(d) for x, d in zip(inputs, differentiable)]
    y = f(*xs)
    wanted = [x for x in xs if x.requires_grad]
    if wanted and y.requires_grad:
        grads = iter(torch.autograd.grad(y, wanted, cotangent, allow_unused=True))
        out = []
        for x in xs:
            if x.requires_grad:
                g = next(grads)
                out.append(torch.zeros_like(x) if g is None else g)
            else:
                out.append(None)
    else:
        out = [torch.zeros_like(x) if x.requires_grad else None for x in xs]
    return y.detach(), out


# ---------------------------------------------------------------------------------------------------------
# reference.json: every operation in float64, small random inputs.

gen = torch.Generator().manual_seed(20250101)


def uniform(shape, low, high):
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


def normal(shape):
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def distinct(shape):
    """Values at least 0.1 apart, so that a maximum has no tie."""
    n = math.prod(shape)
    order = torch.randperm(n, generator=gen).to(torch.float64)
    return (0.25 * order - 1.0 + 0.1 * torch.rand(n, generator=gen, dtype=torch.float64)).reshape(shape)


cases = []


def case(name, op, params, inputs, f, differentiable=None):
    """Records op(inputs) and its vjp for a seeded random cotangent of the output's shape."""
    if differentiable is None:
        differentiable = [True] * len(inputs)
    y0 = f(*inputs)
    cotangent = normal(tuple(y0.shape))
    y, grads = vjp(f, inputs, cotangent, differentiable)
    cases.append({
        "name": name,
        "op": op,
        "params": params,
        "inputs": [{"shape": list(x.shape), "data": numbers(x)} for x in inputs],
        "output": {"shape": list(y.shape), "data": numbers(y)},
        "cotangent": numbers(cotangent),
        "grads": [None if g is None else numbers(g) for g in grads],
    })


UNARY_DOMAINS = {"log": (0.1, 3.0), "sqrt": (0.1, 3.0), "log1p": (-0.9, 3.0), "rsqrt": (0.1, 3.0)}
for name, f in UNARY.items():
    low, high = UNARY_DOMAINS.get(name, (-3.0, 3.0))
    x = uniform((3, 4), low, high)
    if name in ("abs", "relu", "sign", "step", "leakyRelu", "elu"):
        x = x + 0.2 * torch.sign(x)  # away from the kink at 0
    case(name, name, {}, [x], f)

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1)),
                   ((), (2, 3)), ((2, 3), ()), ((2, 1, 4), (3, 1))]
for name, f in BINARY.items():
    for sa, sb in BROADCAST_PAIRS:
        if name == "pow":
            a, b = uniform(sa, 0.3, 2.0), uniform(sb, -2.0, 2.0)
        elif name == "div":
            a, b = uniform(sa, -2.0, 2.0), uniform(sb, 0.5, 2.0) * torch.sign(uniform(sb, -1.0, 1.0))
        elif name in ("maximum", "minimum"):
            # Whole numbers and halves, so that some pairs tie (each gets half the gradient).
            a = 0.5 * torch.randint(-3, 4, sa, generator=gen).to(torch.float64)
            b = 0.5 * torch.randint(-3, 4, sb, generator=gen).to(torch.float64)
        elif name == "equal":
            # Small whole numbers, so that some pairs are equal.
            a = torch.randint(0, 3, sa, generator=gen).to(torch.float64)
            b = torch.randint(0, 3, sb, generator=gen).to(torch.float64)
        else:
            a, b = uniform(sa, -2.0, 2.0), uniform(sb, -2.0, 2.0)
        differentiable = [name in DIFFERENTIABLE_BINARY] * 2
        case(f"{name} {list(sa)} {list(sb)}", name, {}, [a, b], f, differentiable)

for p in [2.0, 3.0, 0.5, -1.0, -2.5, 1.5, 0.0]:
    case(f"powScalar {p}", "powScalar", {"p": p}, [uniform((3, 4), 0.3, 2.0)], lambda x, p=p: torch.pow(x, p))

for sa, sb in [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((1, 1), (1, 3))]:
    case(f"matmul {list(sa)} {list(sb)}", "matmul", {}, [normal(sa), normal(sb)], torch.matmul)

for shape, perm in [((2, 3, 4), [2, 0, 1]), ((2, 3, 4), [1, 0, 2]), ((2, 3, 4), [0, 2, 1]), ((3, 4), [1, 0])]:
    case(f"permute {perm}", "permute", {"perm": perm}, [normal(shape)], lambda x, perm=perm: x.permute(*perm))

for shape, target in [((2, 3, 4), [6, 4]), ((2, 3, 4), [4, -1]), ((3, 4), [12]), ((12,), [2, 2, 3])]:
    case(f"reshape {list(shape)} {target}", "reshape", {"shape": target}, [normal(shape)],
         lambda x, target=target: x.reshape(target))

for shape, target in [((3, 1), [2, 3, 4]), ((4,), [3, 4]), ((), [2, 2]), ((1, 3, 1), [2, 3, 2])]:
    case(f"broadcastTo {list(shape)} {target}", "broadcastTo", {"shape": target}, [normal(shape)],
         lambda x, target=target: x.broadcast_to(target))

REDUCTIONS = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax,
              # ops group.
              "prod": torch.prod, "min": torch.amin,
              "logSumExp": lambda x, dim=(0, 1, 2), keepdim=False: torch.logsumexp(x, dim=dim, keepdim=keepdim)}
for kind, f in REDUCTIONS.items():
    for axis in [0, 1, 2]:
        for keep in [False, True]:
            case(f"{kind} axis {axis} keep {keep}", kind, {"axis": axis, "keepDim": keep}, [distinct((2, 3, 4))],
                 lambda x, f=f, axis=axis, keep=keep: f(x, dim=axis, keepdim=keep))
    case(f"{kind} all", kind, {"axis": None, "keepDim": False}, [distinct((2, 3, 4))], lambda x, f=f: f(x))

# ops group: products with zeros (one in a row, two in a row), log-sum-exp of large values, several axes at once,
# variance and standard deviation.
with_zeros = distinct((2, 3, 4))
with_zeros[0, 1, 2] = 0.0
with_zeros[1, 0, 1] = 0.0
with_zeros[1, 2, 1] = 0.0
for axis in [0, 1, 2]:
    case(f"prod with zeros axis {axis}", "prod", {"axis": axis, "keepDim": False}, [with_zeros],
         lambda x, axis=axis: torch.prod(x, dim=axis))
case("prod with one zero, all", "prod", {"axis": None, "keepDim": False}, [uniform((2, 3), 0.5, 1.5) * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)], torch.prod)
case("logSumExp of large values", "logSumExp", {"axis": 1, "keepDim": False}, [1000.0 * normal((3, 4))],
     lambda x: torch.logsumexp(x, dim=1))
for op, f in [("sumAxes", torch.sum), ("meanAxes", torch.mean)]:
    for axes in [[0, 2], [2, 0], [1], [0, 1, 2], [-1, 0]]:
        for keep in [False, True]:
            case(f"{op} {axes} keep {keep}", op, {"axes": axes, "keepDim": keep}, [normal((2, 3, 4))],
                 lambda x, f=f, axes=axes, keep=keep: f(x, dim=axes, keepdim=keep))
for op, f in [("variance", torch.var), ("std", torch.std)]:
    for unbiased in [True, False]:
        case(f"{op} all unbiased {unbiased}", op, {"unbiased": unbiased, "axes": None, "keepDim": False}, [normal((2, 3, 4))],
             lambda x, f=f, unbiased=unbiased: f(x, unbiased=unbiased))
        for axes in [[0], [1, 2], [2, 0]]:
            for keep in [False, True]:
                case(f"{op} {axes} unbiased {unbiased} keep {keep}", op, {"unbiased": unbiased, "axes": axes, "keepDim": keep},
                     [normal((2, 3, 4))], lambda x, f=f, axes=axes, unbiased=unbiased, keep=keep: f(x, dim=axes, unbiased=unbiased, keepdim=keep))

for axis, shapes in [(0, [(1, 3, 4), (2, 3, 4)]), (1, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]), (2, [(2, 3, 1), (2, 3, 3)])]:
    case(f"concat axis {axis}", "concat", {"axis": axis}, [normal(s) for s in shapes],
         lambda *xs, axis=axis: torch.cat(xs, dim=axis))

for axis, start, length in [(0, 1, 1), (1, 0, 2), (1, 1, 2), (2, 3, 1), (2, 1, 2)]:
    case(f"slice axis {axis} from {start} length {length}", "slice", {"axis": axis, "start": start, "length": length},
         [normal((2, 3, 4))], lambda x, axis=axis, start=start, length=length: x.narrow(axis, start, length))

for axis, before, after in [(0, 1, 0), (1, 2, 1), (2, 0, 3), (2, 1, 1)]:
    def pad(x, axis=axis, before=before, after=after):
        widths = [0, 0] * (x.dim() - 1 - axis) + [before, after]  # F.pad lists the last axis first
        return F.pad(x, widths)
    case(f"pad axis {axis} before {before} after {after}", "pad", {"axis": axis, "before": before, "after": after},
         [normal((2, 3, 4))], pad)

# Indices are whole numbers held as floats, as FuncFlow takes them; a repeated index accumulates.
for ishape in [(4,), (2, 3)]:
    idx = torch.tensor([4, 0, 2, 0, 4, 1][: math.prod(ishape)], dtype=torch.float64).reshape(ishape)
    case(f"gather indices {list(ishape)}", "gather", {}, [normal((5, 3)), idx],
         lambda x, i: x[i.long()], [True, False])
    case(f"scatterAdd indices {list(ishape)}", "scatterAdd", {"rows": 5}, [normal(ishape + (3,)), idx],
         lambda v, i: torch.zeros(5, 3, dtype=torch.float64).index_add(0, i.long().reshape(-1), v.reshape(-1, 3)),
         [True, False])

case("oneHot 4", "oneHot", {"classes": 4}, [torch.tensor([[3.0, 0.0, 1.0], [1.0, 2.0, 3.0]], dtype=torch.float64)],
     lambda labels: F.one_hot(labels.long(), 4).to(torch.float64), [False])

for axis in [0, 1, 2]:
    case(f"softmax axis {axis}", "softmax", {"axis": axis}, [2.0 * normal((2, 3, 4))],
         lambda x, axis=axis: torch.softmax(x, dim=axis))
    case(f"logSoftmax axis {axis}", "logSoftmax", {"axis": axis}, [2.0 * normal((2, 3, 4))],
         lambda x, axis=axis: torch.log_softmax(x, dim=axis))

# ops group: where, with the condition, a and b each broadcast.
for sc, sa, sb in [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)), ((4,), (2, 3, 4), ()), ((2, 1, 4), (3, 1), (1, 4))]:
    cond = torch.randint(0, 2, sc, generator=gen).to(torch.float64)
    case(f"where {list(sc)} {list(sa)} {list(sb)}", "where", {}, [cond, normal(sa), normal(sb)],
         lambda c, a, b: torch.where(c != 0, a, b), [False, True, True])

case("addN of 3", "addN", {}, [normal((3, 4)) for _ in range(3)], lambda *xs: xs[0] + xs[1] + xs[2])
case("addN of 4", "addN", {}, [normal((2, 3)) for _ in range(4)], lambda *xs: xs[0] + xs[1] + xs[2] + xs[3])

for dim, copies in [(0, 2), (1, 3), (2, 2)]:
    case(f"expand dim {dim} copies {copies}", "expand", {"dim": dim, "copies": copies}, [normal((3, 4))],
         lambda x, dim=dim, copies=copies: x.unsqueeze(dim).expand(*([3, 4][:dim] + [copies] + [3, 4][dim:])))

case("mse", "mse", {}, [normal((4, 3)), normal((4, 3))], F.mse_loss)
case("mse target [12]", "mse", {}, [normal((4, 3)), normal((12,))], lambda p, t: F.mse_loss(p, t.reshape(4, 3)))
case("sumSquaredError", "sumSquaredError", {}, [normal((5, 1)), normal((5, 1))],
     lambda p, t: ((p - t) * (p - t)).sum(0))
case("sumSquaredError [5, 2]", "sumSquaredError", {}, [normal((5, 2)), normal((5, 2))],
     lambda p, t: ((p - t) * (p - t)).sum(0))
case("crossEntropy", "crossEntropy", {}, [2.0 * normal((4, 5)), torch.tensor([3.0, 0.0, 4.0, 3.0], dtype=torch.float64)],
     lambda x, labels: F.cross_entropy(x, labels.long()), [True, False])
case("binaryCrossEntropy", "binaryCrossEntropy", {},
     [uniform((6,), 0.05, 0.95), torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)],
     F.binary_cross_entropy, [True, False])
case("binaryCrossEntropy soft targets", "binaryCrossEntropy", {}, [uniform((2, 3), 0.05, 0.95), uniform((2, 3), 0.0, 1.0)],
     F.binary_cross_entropy, [True, False])
case("binaryCrossEntropyWithLogits", "binaryCrossEntropyWithLogits", {},
     [3.0 * normal((6,)), torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)],
     F.binary_cross_entropy_with_logits)

# Convolution and pooling (the conv group). Parameters are lists with one entry per spatial axis.
for sa, sb in [((3, 4), (2, 4, 5)), ((2, 3, 4), (5, 2, 4, 3))]:
    case(f"matmul {list(sa)} {list(sb)} (missing leading axes)", "matmul", {}, [normal(sa), normal(sb)], torch.matmul)


def conv_case(dims, x_shape, w_shape, stride, padding, dilation, groups):
    conv = F.conv1d if dims == 1 else F.conv2d
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    case(f"conv{dims}d x {list(x_shape)} w {list(w_shape)} {params}", f"conv{dims}d", params,
         [normal(x_shape), normal(w_shape)],
         lambda x, w: conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups))


conv_case(1, (2, 3, 9), (4, 3, 3), [1], [0], [1], 1)
conv_case(1, (2, 4, 10), (6, 2, 3), [2], [1], [2], 2)
conv_case(1, (1, 6, 7), (3, 2, 2), [1], [2], [1], 3)
conv_case(2, (2, 3, 6, 5), (4, 3, 3, 3), [1, 1], [0, 0], [1, 1], 1)
conv_case(2, (2, 3, 7, 6), (4, 3, 3, 2), [2, 2], [1, 1], [1, 1], 1)
conv_case(2, (1, 2, 7, 7), (3, 2, 3, 3), [1, 1], [0, 0], [2, 2], 1)
conv_case(2, (2, 4, 6, 6), (6, 2, 3, 3), [1, 1], [1, 1], [1, 1], 2)
conv_case(2, (1, 6, 5, 6), (3, 2, 2, 3), [1, 1], [1, 0], [1, 1], 3)
conv_case(2, (2, 4, 9, 8), (4, 2, 3, 2), [2, 1], [1, 2], [2, 1], 2)
conv_case(2, (2, 1, 8, 8), (6, 1, 5, 5), [1, 1], [2, 2], [1, 1], 1)  # LeNet's first layer, smaller

for x_shape, kernel, stride, padding, dilation in [((2, 3, 5, 6), [2, 3], [1, 1], [0, 0], [1, 1]),
                                                   ((1, 2, 7, 6), [3, 2], [2, 1], [1, 2], [2, 1])]:
    params = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    case(f"unfold x {list(x_shape)} {params}", "unfold", params, [normal(x_shape)],
         lambda x, kernel=kernel, stride=stride, padding=padding, dilation=dilation:
         F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride))
    size = list(x_shape[2:])
    cols = F.unfold(torch.zeros(x_shape, dtype=torch.float64), kernel, dilation=dilation, padding=padding, stride=stride)
    params = params | {"size": size}
    case(f"fold to {size} {params}", "fold", params, [normal(tuple(cols.shape))],
         lambda c, size=size, kernel=kernel, stride=stride, padding=padding, dilation=dilation:
         F.fold(c, size, kernel, dilation=dilation, padding=padding, stride=stride))
# 1-D: F.unfold takes images, so a 1-D input is a 1-tall image.
case("unfold 1-D x [2, 3, 8] kernel 3 stride 2 padding 1 dilation 2", "unfold",
     {"kernel": [3], "stride": [2], "padding": [1], "dilation": [2]}, [normal((2, 3, 8))],
     lambda x: F.unfold(x.unsqueeze(2), (1, 3), dilation=(1, 2), padding=(0, 1), stride=(1, 2)))


def ties(shape):
    """Small whole numbers, so that windows hold equal maxima."""
    return torch.randint(0, 3, shape, generator=gen).to(torch.float64)


def pool_backward(pool, x, g):
    """max pooling's vjp at x for cotangent g, differentiable in g (create_graph)."""
    x = x.detach().requires_grad_()
    return torch.autograd.grad(pool(x), x, g, create_graph=True)[0]


POOLS = [((2, 3, 6, 6), [2, 2], [2, 2], [0, 0]), ((1, 2, 7, 7), [3, 3], [2, 2], [1, 1]),
         ((2, 2, 5, 7), [3, 2], [1, 2], [1, 0])]
for x_shape, kernel, stride, padding in POOLS:
    params = {"kernel": kernel, "stride": stride, "padding": padding}
    pool = lambda x, kernel=kernel, stride=stride, padding=padding: F.max_pool2d(x, kernel, stride, padding)
    case(f"maxPool2d x {list(x_shape)} {params}", "maxPool2d", params, [distinct(x_shape)], pool)
    case(f"maxPool2d ties x {list(x_shape)} {params}", "maxPool2d", params, [ties(x_shape)], pool)
    out = pool(torch.zeros(x_shape, dtype=torch.float64))
    # The gradient itself as a function of (x, cotangent): its value, and its vjp in the cotangent.
    case(f"maxPool2dBackward ties x {list(x_shape)} {params}", "maxPool2dBackward", params,
         [ties(x_shape), normal(tuple(out.shape))],
         lambda x, g, pool=pool: pool_backward(pool, x, g), [False, True])
    case(f"avgPool2d x {list(x_shape)} {params}", "avgPool2d", params, [normal(x_shape)],
         lambda x, kernel=kernel, stride=stride, padding=padding: F.avg_pool2d(x, kernel, stride, padding))
for x_shape in [(2, 3, 4, 5), (1, 2, 1, 1)]:
    case(f"globalAvgPool2d x {list(x_shape)}", "globalAvgPool2d", {}, [normal(x_shape)],
         lambda x: F.adaptive_avg_pool2d(x, 1))

# shapeops group. matmul with NumPy's rules: 1-D operands (the added axis removed) and batch axes of length 1
# broadcast against the other operand's, on either side.
for sa, sb in [((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
               ((2, 1, 3, 4), (3, 4, 5)), ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 2)), ((2, 3, 4), (1, 4, 5))]:
    case(f"matmul {list(sa)} {list(sb)} (NumPy rules)", "matmul", {}, [normal(sa), normal(sb)], torch.matmul)

# index_select along each axis, indices repeated (the gradient accumulates) and missing (it is zero there);
# 2-D indices are NumPy's take, index_select of the flattened indices with the axis split back.
for axis in [0, 1, 2, -1]:
    idx = torch.tensor([2.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    case(f"indexSelect axis {axis}", "indexSelect", {"axis": axis}, [normal((3, 4, 5)), idx],
         lambda x, i, axis=axis: x.index_select(axis, i.long()), [True, False])
take = torch.tensor([[1.0, 0.0, 1.0], [3.0, 3.0, 2.0]], dtype=torch.float64)
case("indexSelect axis 1, indices [2, 3]", "indexSelect", {"axis": 1}, [normal((2, 4, 3)), take],
     lambda x, i: x.index_select(1, i.long().reshape(-1)).reshape(2, 2, 3, 3), [True, False])
for axis, rows, vshape in [(0, 4, (5, 3)), (1, 3, (2, 5, 2)), (2, 2, (2, 3, 5))]:
    idx = torch.tensor([1.0, 0.0, 1.0, rows - 1, 0.0], dtype=torch.float64)
    out = list(vshape)
    out[axis] = rows
    case(f"indexAdd axis {axis} rows {rows}", "indexAdd", {"axis": axis, "rows": rows}, [normal(vshape), idx],
         lambda v, i, axis=axis, out=out: torch.zeros(out, dtype=torch.float64).index_add(axis, i.long(), v),
         [True, False])

for axes in [[0], [2], [0, 2], [1, 0, 2], [-1]]:
    case(f"flip {axes}", "flip", {"axes": axes}, [normal((2, 3, 4))], lambda x, axes=axes: torch.flip(x, axes))

for axis in [0, 1, 2]:
    case(f"cumsum axis {axis}", "cumsum", {"axis": axis}, [normal((2, 3, 4))],
         lambda x, axis=axis: torch.cumsum(x, axis))
    case(f"reverseCumsum axis {axis}", "reverseCumsum", {"axis": axis}, [normal((2, 3, 4))],
         lambda x, axis=axis: torch.flip(torch.cumsum(torch.flip(x, [axis]), axis), [axis]))

for axis, before, after, value in [(0, 1, 0, 1.5), (1, 2, 1, -2.0), (2, 0, 3, 0.25), (2, 1, 1, float("-inf"))]:
    def pad_with(x, axis=axis, before=before, after=after, value=value):
        widths = [0, 0] * (x.dim() - 1 - axis) + [before, after]  # F.pad lists the last axis first
        return F.pad(x, widths, value=value)
    case(f"padWith {value} axis {axis} before {before} after {after}", "padWith",
         {"axis": axis, "before": before, "after": after, "value": value if math.isfinite(value) else "-inf"},
         [normal((2, 3, 4))], pad_with)

# Python's start:stop:step, None for an end; PyTorch slices forwards only, so the positions Python's slice
# picks are read with index_select (its gradient an index_add).
for axis, n, start, stop, step in [(0, 5, 1, 5, 2), (0, 5, None, None, 3), (1, 6, 4, 0, -1), (1, 6, None, None, -2),
                                   (2, 7, -2, None, -3), (2, 7, 1, -1, 2), (1, 6, 2, 2, 1), (2, 7, None, None, -1)]:
    shape = [2, 3, 4]
    shape[axis] = n
    picks = torch.tensor(list(range(n))[slice(start, stop, step)], dtype=torch.long)
    case(f"stridedSlice axis {axis} [{start}:{stop}:{step}]", "stridedSlice",
         {"axis": axis, "start": start, "stop": stop, "step": step}, [normal(tuple(shape))],
         lambda x, axis=axis, picks=picks: x.index_select(axis, picks))

write("reference.json", {"generator": "make_reference.py, torch " + torch.__version__.split("+")[0], "cases": cases})


# ---------------------------------------------------------------------------------------------------------
# extremes.json: elementwise operations at the edges of each dtype, gradients with a cotangent of ones.

TINY64 = [5e-324, 1e-310, 2.2250738585072014e-308, 1e-300]
BIG64 = [20.0, 30.0, 88.8, 103.9, 700.0, 709.78, 710.0, 745.2, 800.0, 1000.0, 1e300, 1e308, 1.7976931348623157e308]
TINY32 = [1.401298464324817e-45, 1e-40, 1.1754943508222875e-38, 1e-30]
BIG32 = [15.9, 20.0, 30.0, 88.0, 88.72, 89.0, 100.0, 103.9, 104.0, 1e30, 3e38, 3.4028234663852886e38]
COMMON = [1e-3, 0.1, 0.5, 0.62, 0.63, 1.0, 2.0]  # with both sides of FuncFlow's tanh switch-over at 0.625


def signed(values):
    return [s * v for v in values for s in (1.0, -1.0)]


UNARY_POINTS = {
    torch.float64: [0.0, -0.0] + signed(TINY64 + COMMON + BIG64) + [math.inf, -math.inf, math.nan],
    torch.float32: [0.0, -0.0] + signed(TINY32 + COMMON + BIG32) + [math.inf, -math.inf, math.nan],
}
# Pairs for binary operations: a smaller set, every combination.
BINARY_POINTS = {
    torch.float64: [0.0, -0.0] + signed([5e-324, 1e-300, 0.5, 1.0, 2.0, 3.0, 710.0, 1e308]) + [math.inf, -math.inf, math.nan],
    torch.float32: [0.0, -0.0] + signed([1.401298464324817e-45, 1e-30, 0.5, 1.0, 2.0, 3.0, 89.0, 3e38])
    + [math.inf, -math.inf, math.nan],
}
POW_EXPONENTS = [0.0, 2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.5, -2.5]


def elementwise(f, inputs, differentiable):
    y, grads = vjp(f, inputs, torch.ones_like(inputs[0]), differentiable)
    keys = ["grad"] if len(inputs) == 1 else ["gradA", "gradB"]
    return {"output": numbers(y)} | {k: numbers(g) for k, g in zip(keys, grads) if g is not None}


def extremes(dtype):
    x = torch.tensor(UNARY_POINTS[dtype], dtype=dtype)
    unary = {name: elementwise(f, [x], [True]) for name, f in UNARY.items()}
    pow_scalar = {repr(p): elementwise(lambda v, p=p: torch.pow(v, p), [x], [True]) for p in POW_EXPONENTS}
    points = torch.tensor(BINARY_POINTS[dtype], dtype=dtype)
    a = points.repeat_interleave(len(points))  # a[i * n + j] = points[i]
    b = points.repeat(len(points))             # b[i * n + j] = points[j]
    binary = {name: elementwise(f, [a, b], [name in DIFFERENTIABLE_BINARY] * 2) for name, f in BINARY.items()}
    return {"unaryPoints": numbers(x), "unary": unary, "powScalar": pow_scalar, "binaryPoints": numbers(points),
            "binary": binary}


# Binary cross-entropy at and near probabilities 0 and 1, per element (reduction "none"), with PyTorch's
# clamp of the logarithms at -100.
BCE_P = [0.0, 1.0, 1e-50, 1e-45, 1e-40, 1e-30, 1e-13, 1e-7, 0.3, 0.5, 0.9, 1.0 - 1e-7, 1.0 - 2.0 ** -24, 1.0 - 2.0 ** -53]


def bce(dtype):
    p = torch.tensor([v for v in BCE_P for _ in (0, 1)], dtype=dtype)
    t = torch.tensor([t for _ in BCE_P for t in (0.0, 1.0)], dtype=dtype)
    y, (g, _) = vjp(lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), [p, t], torch.ones_like(p), [True, False])
    return {"p": numbers(p), "target": numbers(t), "loss": numbers(y), "grad": numbers(g)}


write("extremes.json", {
    "generator": "make_reference.py, torch " + torch.__version__.split("+")[0],
    "float64": extremes(torch.float64) | {"binaryCrossEntropy": bce(torch.float64)},
    "float32": extremes(torch.float32) | {"binaryCrossEntropy": bce(torch.float32)},
})
