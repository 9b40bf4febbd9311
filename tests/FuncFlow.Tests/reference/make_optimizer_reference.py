"""Writes optimizer_reference.json: three steps of torch.optim optimisers in float64, the reference that
OptimizerReferenceTests.fs holds FuncFlow's optimisers to (within 1e-12).

Run from the repository root with Debian's Python, which has PyTorch:
    /usr/bin/python3 tests/FuncFlow.Tests/reference/make_optimizer_reference.py

Every case starts from the same parameter p0 and minimises 0.5 * sum(p^2) + sum(c * p), whose gradient
p + c is known in closed form and changes with p, so momentum and moments see a different gradient at
each step. A case records the parameter and the optimiser's state after each step, as flat row-major arrays (the
parameter's shape is "shape"); Python's repr writes each double exactly.
"""

import json
import os

import torch

STEPS = 3
SHAPE = [2, 3]
P0 = [1.0, -2.0, 0.5, 3.0, -0.25, 0.0]
C = [0.3, -0.7, 0.2, -1.5, 0.4, 0.9]


def sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    return {"kind": "sgd", "lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}


def adam(kind, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
    return {"kind": kind, "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": weight_decay}


def linear(steps):
    return {"kind": "linear", "steps": steps}


def exponential(gamma):
    return {"kind": "exponential", "gamma": gamma}


# (name, optimiser, schedule). FuncFlow's SGD has no dampening and its Adam no amsgrad, so neither is here.
CASES = [
    ("sgd", sgd(0.1), None),
    ("sgd weight decay", sgd(0.1, weight_decay=0.2), None),
    ("sgd momentum", sgd(0.1, momentum=0.9), None),
    ("sgd momentum weight decay", sgd(0.1, momentum=0.9, weight_decay=0.2), None),
    ("sgd nesterov", sgd(0.1, momentum=0.9, nesterov=True), None),
    ("sgd nesterov weight decay", sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.2), None),
    ("adam", adam("adam", 0.05), None),
    ("adam weight decay", adam("adam", 0.05, weight_decay=0.1), None),
    # A large eps and unusual betas, so that misplacing eps or a beta changes the result visibly.
    ("adam betas eps weight decay", adam("adam", 0.05, weight_decay=0.1, betas=(0.8, 0.95), eps=0.1), None),
    ("adamw", adam("adamw", 0.05), None),
    ("adamw weight decay", adam("adamw", 0.05, weight_decay=0.1), None),
    ("adamw betas eps weight decay", adam("adamw", 0.05, weight_decay=0.1, betas=(0.8, 0.95), eps=0.1), None),
    # LinearDecay 2 over three steps: factors 1, 1/2, then 0 (the clamp), while the state keeps updating.
    ("sgd momentum weight decay linear decay", sgd(0.1, momentum=0.9, weight_decay=0.2), linear(2)),
    ("adam weight decay linear decay", adam("adam", 0.05, weight_decay=0.1), linear(2)),
    ("sgd nesterov weight decay exponential decay", sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.2), exponential(0.5)),
    ("adamw weight decay exponential decay", adam("adamw", 0.05, weight_decay=0.1), exponential(0.5)),
]

# FuncFlow's state-variable suffixes and the torch state they hold.
STATE_NAMES = {"momentum_buffer": "momentum", "exp_avg": "adam_m", "exp_avg_sq": "adam_v"}


def make(p, spec):
    if spec["kind"] == "sgd":
        return torch.optim.SGD([p], lr=spec["lr"], momentum=spec["momentum"], nesterov=spec["nesterov"],
                               weight_decay=spec["weight_decay"])
    cls = torch.optim.Adam if spec["kind"] == "adam" else torch.optim.AdamW
    return cls([p], lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"],
               weight_decay=spec["weight_decay"])


def scheduler(opt, schedule):
    if schedule is None:
        return None
    if schedule["kind"] == "linear":
        n = schedule["steps"]
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1.0 - t / n))
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=schedule["gamma"])


def run(spec, schedule):
    p = torch.tensor(P0, dtype=torch.float64).reshape(SHAPE).requires_grad_()
    c = torch.tensor(C, dtype=torch.float64).reshape(SHAPE)
    opt = make(p, spec)
    sched = scheduler(opt, schedule)
    params, state = [], {}
    for _ in range(STEPS):
        opt.zero_grad()
        loss = 0.5 * (p * p).sum() + (c * p).sum()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        params.append(p.detach().reshape(-1).tolist())
        for key, name in STATE_NAMES.items():
            if opt.state[p].get(key) is not None:
                state.setdefault(name, []).append(opt.state[p][key].reshape(-1).tolist())
    return params, state


def main():
    cases = []
    for name, spec, schedule in CASES:
        params, state = run(spec, schedule)
        cases.append({"name": name, "optimizer": spec, "schedule": schedule, "params": params, "state": state})
    out = {
        "generator": "tests/FuncFlow.Tests/reference/make_optimizer_reference.py, torch " + torch.__version__,
        "loss": "0.5 * sum(p^2) + sum(c * p)",
        "shape": SHAPE,
        "p0": P0,
        "c": C,
        "steps": STEPS,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizer_reference.json")
    # One case per line: readable in a diff, without a line per number.
    head = json.dumps({k: v for k, v in out.items() if k != "cases"})[:-1]
    body = ",\n  ".join(json.dumps(c) for c in cases)
    with open(path, "w") as f:
        f.write(head + ',\n "cases": [\n  ' + body + "\n ]\n}\n")


if __name__ == "__main__":
    main()
