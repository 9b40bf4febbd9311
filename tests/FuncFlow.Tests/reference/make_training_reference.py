"""Writes training_reference.json: PyTorch's learning-rate schedules and a training run with parameter groups.

- "cosine": CosineAnnealingLR(T_max=10, eta_min=0.2 * lr) factors lr_t / lr for t = 0..10.
- "warmup_cosine": SequentialLR(LinearLR(start_factor=0.25, total_iters=3), CosineAnnealingLR(T_max=6),
  milestones=[3]) factors for t = 0..12 (the cosine is clamped after T_max in FuncFlow, so t <= 9 are compared).
- "groups": Sequential(Linear(3, 4), Tanh(), Linear(4, 2)) in float64 trained 6 full-batch steps on MSE by SGD with
  momentum 0.9 and two parameter groups (layer 0: lr 0.1, weight_decay 0.01; 2.weight: lr 0.05), 2.bias frozen,
  under SequentialLR(LinearLR(0.5, total_iters=2), CosineAnnealingLR(T_max=4), milestones=[2]).
Run: /usr/bin/python3 make_training_reference.py
"""
import json
import warnings

import torch

warnings.filterwarnings("ignore")
torch.manual_seed(3)


def factors(make, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"] / 2.0)
        opt.step()
        sched.step()
    return out


cosine = factors(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.4), 11)
warmup = factors(
    lambda o: torch.optim.lr_scheduler.SequentialLR(
        o,
        [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=3),
         torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6)],
        milestones=[3]),
    13)

model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
initial = {k: v.clone() for k, v in model.state_dict().items()}
x = torch.randn(5, 3, dtype=torch.float64)
y = torch.randn(5, 2, dtype=torch.float64)
model[2].bias.requires_grad_(False)
opt = torch.optim.SGD([
    {"params": model[0].parameters(), "lr": 0.1, "weight_decay": 0.01},
    {"params": [model[2].weight], "lr": 0.05},
], lr=1.0, momentum=0.9)
sched = torch.optim.lr_scheduler.SequentialLR(
    opt,
    [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2),
     torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)],
    milestones=[2])
losses = []
for _ in range(6):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    losses.append(loss.item())
    loss.backward()
    opt.step()
    sched.step()


def rows(t):
    return t.tolist()


json.dump({
    "torch": torch.__version__,
    "cosine": {"steps": 10, "minFactor": 0.2, "factors": cosine},
    "warmup_cosine": {"warmup": 3, "startFactor": 0.25, "steps": 6, "factors": warmup},
    "groups": {
        "x": rows(x), "y": rows(y),
        "initial": {k: rows(v) for k, v in initial.items()},
        "final": {k: rows(v) for k, v in model.state_dict().items()},
        "losses": losses,
    },
}, open("training_reference.json", "w"), indent=1)
