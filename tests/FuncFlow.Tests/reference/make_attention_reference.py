"""Writes attention_reference.json: PyTorch's scaled dot-product attention, nn.MultiheadAttention and a pre-norm
nn.TransformerEncoderLayer in float64, the reference that NN/AttentionTests.fs holds FuncFlow's attention to.

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.Tests/reference/make_attention_reference.py

Every case has its inputs (and parameters), a fixed random r of the output's shape, the output, and the
gradients of sum(output * r) with respect to each input and parameter.
"sdpa": F.scaled_dot_product_attention (in PyTorch 1.13, its forerunner F._scaled_dot_product_attention) without a mask, causal (also with fewer queries than keys: torch's
tril(ones(L, S))), with a key padding mask (a boolean attn_mask [B, 1, 1, S], True = attend), on rank-3 and
rank-4 inputs, and with scores in the thousands (the stable softmax).
"mha": nn.MultiheadAttention(batch_first=True) with random weights and biases: self-attention, causal (a
boolean attn_mask, True = masked), with key_padding_mask (True = padding), and cross-attention (key and value
from another sequence). The padding is written with FuncFlow's convention, 1 = real key.
"block": nn.TransformerEncoderLayer(norm_first=True, activation="gelu", dropout=0, batch_first=True) with random
parameters, without and with a causal mask. Its linear weights are written in FuncFlow's [in; out] layout.
"sinusoidal": the encoding of Attention Is All You Need, computed here from its formula.
"gelu_tanh": F.gelu(x, approximate="tanh") on a grid, for TransformerBlock's BlockActivation.GeluTanh.
Arrays are flat and row-major; Python's repr writes each double exactly.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(11)
DT = torch.float64


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def tensor(t):
    return {"shape": list(t.shape), "values": flat(t)}


def randn(*shape):
    return torch.randn(*shape, dtype=DT)


def with_grads(output, leaves):
    r = randn(*output.shape)
    (output * r).sum().backward()
    return {
        "r": tensor(r),
        "output": tensor(output),
        "grads": {name: tensor(t.grad) for name, t in leaves.items()},
    }


def sdpa(q, k, v, mask, causal):
    # F.scaled_dot_product_attention from PyTorch 2.0; Debian's PyTorch 1.13 has its forerunner, with the same
    # math (a boolean mask, True = attend; is_causal the lower triangle of ones(L, S)).
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    return F._scaled_dot_product_attention(q, k, v, mask, 0.0, False, causal)[0]


def sdpa_case(name, q_shape, k_shape, v_shape, causal=False, padding=None, scale=1.0):
    q, k, v = ((scale * randn(*s)).requires_grad_() for s in (q_shape, k_shape, v_shape))
    mask = None
    if padding is not None:
        keep = torch.tensor(padding, dtype=torch.bool)  # [B, S], True = real key
        mask = keep.reshape([keep.shape[0]] + [1] * (len(q_shape) - 2) + [keep.shape[1]])
    out = sdpa(q, k, v, mask, causal)
    case = {"name": name, "causal": causal, "inputs": {"q": tensor(q), "k": tensor(k), "v": tensor(v)}}
    if padding is not None:
        case["padding"] = tensor(torch.tensor(padding, dtype=DT))
    case.update(with_grads(out, {"q": q, "k": k, "v": v}))
    return case


def mha_case(name, batch, queries, keys, embed, heads, causal=False, padding=None, cross=False):
    mha = torch.nn.MultiheadAttention(embed, heads, batch_first=True, dtype=DT)
    with torch.no_grad():
        mha.in_proj_bias.copy_(0.3 * randn(3 * embed))
        mha.out_proj.bias.copy_(0.3 * randn(embed))
    query = randn(batch, queries, embed).requires_grad_()
    if cross:
        key = randn(batch, keys, embed).requires_grad_()
        value = randn(batch, keys, embed).requires_grad_()
        inputs = {"query": query, "key": key, "value": value}
    else:
        key = value = query
        inputs = {"query": query}
    attn_mask = torch.ones(queries, keys, dtype=torch.bool).triu(1) if causal else None
    key_padding_mask = None if padding is None else ~torch.tensor(padding, dtype=torch.bool)
    out, _ = mha(query, key, value, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)
    params = dict(mha.named_parameters())
    case = {
        "name": name,
        "embed": embed,
        "heads": heads,
        "causal": causal,
        "cross": cross,
        "inputs": {n: tensor(t) for n, t in inputs.items()},
        "params": {n: tensor(p) for n, p in params.items()},
    }
    if padding is not None:
        case["padding"] = tensor(torch.tensor(padding, dtype=DT))
    case.update(with_grads(out, {**inputs, **params}))
    return case


def block_case(name, batch, length, dim, heads, hidden, causal):
    layer = torch.nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=hidden, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, dtype=DT
    )
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * randn(*p.shape))
    x = randn(batch, length, dim).requires_grad_()
    mask = torch.full((length, length), float("-inf"), dtype=DT).triu(1) if causal else None
    out = layer(x, src_mask=mask)
    params = dict(layer.named_parameters())
    result = with_grads(out, {"input": x, **params})

    # FuncFlow's Linear holds weight [out; in], as torch's: names and layouts carry over as they are.
    result["grads"] = {n: tensor(params[n].grad) if n in params else g for n, g in result["grads"].items()}
    case = {
        "name": name,
        "dim": dim,
        "heads": heads,
        "hidden": hidden,
        "causal": causal,
        "inputs": {"input": tensor(x)},
        "params": {n: tensor(p) for n, p in params.items()},
    }
    case.update(result)
    return case


def sinusoidal(length, dim):
    rows = [
        [
            (math.sin if c % 2 == 0 else math.cos)(p / 10000 ** ((c - c % 2) / dim))
            for c in range(dim)
        ]
        for p in range(length)
    ]
    return {"length": length, "dim": dim, "values": [v for row in rows for v in row]}


reference = {
    "sdpa": [
        sdpa_case("plain rank 4", [2, 2, 4, 3], [2, 2, 4, 3], [2, 2, 4, 5]),
        sdpa_case("causal", [2, 2, 4, 3], [2, 2, 4, 3], [2, 2, 4, 3], causal=True),
        sdpa_case("causal, fewer queries than keys", [1, 2, 3, 4], [1, 2, 5, 4], [1, 2, 5, 2], causal=True),
        sdpa_case("key padding rank 4", [2, 2, 3, 4], [2, 2, 5, 4], [2, 2, 5, 3], padding=[[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
        sdpa_case("key padding rank 3", [3, 4, 2], [3, 4, 2], [3, 4, 3], padding=[[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]]),
        sdpa_case("large scores", [1, 3, 4], [1, 3, 4], [1, 3, 2], scale=40.0),
    ],
    "mha": [
        mha_case("self-attention", 2, 4, 4, 6, 2),
        mha_case("causal self-attention", 2, 5, 5, 8, 4, causal=True),
        mha_case("key padding", 2, 4, 4, 6, 3, padding=[[1, 1, 1, 0], [1, 1, 1, 1]]),
        mha_case("cross-attention", 2, 3, 5, 4, 2, cross=True),
    ],
    "block": [
        block_case("pre-norm block", 2, 4, 6, 2, 12, False),
        block_case("causal pre-norm block", 2, 5, 8, 2, 16, True),
    ],
    "sinusoidal": sinusoidal(7, 6),
    "gelu_tanh": (lambda x: {"x": flat(x), "y": flat(F.gelu(x, approximate="tanh"))})(
        torch.linspace(-6, 6, 25, dtype=DT)
    ),
}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention_reference.json")
with open(path, "w") as f:
    json.dump(reference, f)
print("wrote", path)
