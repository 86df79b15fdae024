"""Runs OpenSpliceAI 0.0.7's `calibrate` under current torch, which no longer accepts ReduceLROnPlateau's
`verbose` argument: the scheduler is replaced by a subclass that drops it. Everything else is upstream's.

usage: python upstream_calibrate.py calibrate -m MODEL -train TRAIN.h5 -test TEST.h5 -f FLANK -o OUT -p NAME

With OSAI_TRAJECTORY=FILE it also writes, as JSON, every fitting step as upstream's scheduler sees it: the
loss it is stepped with, the temperature after the optimiser step (and clamp), and the learning rate used.
"""
import json
import os
import sys

import torch

_Base = torch.optim.lr_scheduler.ReduceLROnPlateau
_trajectory = []


class _Plateau(_Base):
    def __init__(self, optimizer, *args, verbose=None, **kwargs):
        super().__init__(optimizer, *args, **kwargs)

    def step(self, metrics, *args, **kwargs):
        group = self.optimizer.param_groups[0]
        _trajectory.append({
            "loss": float(metrics),
            "lr": float(group["lr"]),
            "temperature": [float(v) for v in group["params"][0].detach().cpu().tolist()],
        })
        return super().step(metrics, *args, **kwargs)


torch.optim.lr_scheduler.ReduceLROnPlateau = _Plateau

from openspliceai import openspliceai as cli  # noqa: E402

cli.main(sys.argv[1:])
path = os.environ.get("OSAI_TRAJECTORY")
if path:
    with open(path, "w") as f:
        json.dump(_trajectory, f, indent=1)
