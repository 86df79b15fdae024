#!/usr/bin/env python3
"""Reference learning-rate sequences for tests/schedule.rs, from real PyTorch.

Replicates OpenSpliceAI 0.0.7's stepping (train_base/utils.py, train_epoch/train_model):
the scheduler is built as in transfer/transfer.py (milestones [E-4..E-1], lr 1e-4) or
train/train.py (milestones [E-5..E-1], lr 1e-3), or CosineAnnealingWarmRestarts(T_0=5,
T_mult=1, eta_min=1e-5); after every batch (global index b from 0 across epochs, B batches per
epoch) upstream calls ``scheduler.step(b / B)`` and logs ``scheduler.get_last_lr()[0]`` to
learning_rate_every_batch.txt. The lr batch b trains with is ``optimizer.param_groups[0]['lr']``
read before its optimizer step (batch 0: whatever the scheduler's constructor set).

Run: ../shared/tools/pytorch-baseline.sh python scripts/schedule_reference.py
Prints, per case, `trained` (lr each batch trains with) and `logged` (lr logged after each batch)
with repr() (shortest round-trip) floats, ready to paste into tests/schedule.rs.
"""
import warnings

import torch

warnings.filterwarnings("ignore")


def run(kind, mode, epochs, batches):
    p = torch.nn.Parameter(torch.zeros(1))
    base = 1e-4 if mode == "transfer" else 1e-3
    opt = torch.optim.AdamW([p], lr=base)
    if kind == "MultiStepLR":
        n = 4 if mode == "transfer" else 5
        ms = [epochs - k for k in range(n, 0, -1)]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=ms, gamma=0.5)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=5, T_mult=1, eta_min=1e-5, last_epoch=-1)
    trained, logged = [], []
    g = 0
    for _epoch in range(epochs):
        for _i in range(batches):
            trained.append(opt.param_groups[0]["lr"])
            opt.zero_grad()
            p.grad = torch.zeros(1)
            opt.step()
            sched.step(g / batches)
            logged.append(sched.get_last_lr()[0])
            g += 1
    return trained, logged


CASES = [
    ("MultiStepLR", "transfer", 5, 3),
    ("MultiStepLR", "train", 7, 2),
    ("CosineAnnealingWarmRestarts", "transfer", 12, 4),
    ("CosineAnnealingWarmRestarts", "transfer", 2, 8),
    # short runs: a milestone at epoch 0 or below (E <= 4 transfer, E <= 5 train)
    ("MultiStepLR", "transfer", 4, 2),
    ("MultiStepLR", "transfer", 1, 1),
    ("MultiStepLR", "transfer", 2, 3),
    ("MultiStepLR", "train", 5, 2),
    ("MultiStepLR", "train", 3, 2),
    ("CosineAnnealingWarmRestarts", "train", 6, 3),
]

if __name__ == "__main__":
    print("torch", torch.__version__)
    for kind, mode, e, b in CASES:
        trained, logged = run(kind, mode, e, b)
        print(f"# {kind} {mode} E={e} B={b}")
        print("trained = [" + ", ".join(repr(x) for x in trained) + "]")
        print("logged = [" + ", ".join(repr(x) for x in logged) + "]")
