#!/usr/bin/env python3
"""PyTorch's side of benches/bf16.sh: OpenSpliceAI 0.0.7's own SpliceAI class with a MANE checkpoint, timed on
the CPU the way `openspliceai-rs bench` times ours, in f32 or under torch.autocast("cpu", dtype=torch.bfloat16).

usage: pytorch-baseline.sh python benches/bf16_torch.py --flank F --checkpoint MODEL.pt
           [--precision f32|bf16] [--batch B] [--reps N] [--threads T]

Workloads (one process per flank and precision, as `bench -f F --precision P`):
  eval        model.eval(), torch.no_grad(): forward of B windows (upstream's predict/test loop)
  train -u 2  model.train(), every parameter frozen but the last two ResidualUnits' (upstream transfer's
              freezing, BatchNorm on batch statistics): forward + loss + backward of B windows
  train -A    the same with every parameter trained (--unfreeze-all)
The train step is what ours times: no optimizer step in either (AdamW on 0.7 M parameters is negligible).
Inputs are N(0, 1) values of the model's input shape (B, 4, 5000 + F), as `bench` draws them: the arithmetic
does not depend on the values. One warm-up run, then the best of --reps. Prints one JSON object per line.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
import torch
from openspliceai.train_base.openspliceai import ResidualUnit, SpliceAI

CFG = {80: ([11] * 4, [1] * 4), 400: ([11] * 8, [1] * 4 + [4] * 4),
       2000: ([11] * 8 + [21] * 4, [1] * 4 + [4] * 4 + [10] * 4),
       10000: ([11] * 8 + [21] * 4 + [41] * 4, [1] * 4 + [4] * 4 + [10] * 4 + [25] * 4)}
# upstream's BATCH_SIZE per flanking size (18·2, 18·2, 12·2, 6·2), ours' `bench` default too
BATCH = {80: 36, 400: 36, 2000: 24, 10000: 12}
SL = 5000


def best_of(reps, fn):
    fn()  # warm-up (oneDNN builds its primitives on the first call)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flank", type=int, required=True, choices=sorted(CFG))
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    p.add_argument("--batch", type=int)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.reps < 1 or (a.batch is not None and a.batch < 1):
        sys.exit("error: --reps and --batch must be at least 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    batch = a.batch or BATCH[a.flank]
    W, AR = (np.asarray(v) for v in CFG[a.flank])
    model = SpliceAI(32, W, AR)
    try:
        sd = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(sd, strict=True)
    except Exception as e:  # a wrong file or flank: say which, no traceback
        sys.exit(f"error: {a.checkpoint} does not load into SpliceAI-{a.flank}: {e}")
    x = torch.randn(batch, 4, SL + a.flank)
    y = torch.zeros(batch, 3, SL)
    y[:, 0, :] = 1.0
    bf16 = a.precision == "bf16"

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def emit(workload, secs):
        print(json.dumps({"tool": "pytorch", "precision": a.precision, "flank": a.flank, "workload": workload,
                          "batch": batch, "step_ms": secs * 1e3, "ms_per_window": secs * 1e3 / batch,
                          "windows_per_s": batch / secs}), flush=True)

    print(json.dumps({"info": f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
                              f"cpu capability {torch.backends.cpu.get_cpu_capability()}, "
                              f"mkldnn bf16 {torch.ops.mkldnn._is_mkldnn_bf16_supported()}"}), flush=True)

    model.eval()

    def eval_step():
        with torch.no_grad(), autocast():
            model(x)

    emit("eval", best_of(a.reps, eval_step))

    model.train()
    units = [m for m in model.residual_units if isinstance(m, ResidualUnit)]
    for name, trained in (("train -u 2", units[-2:]), ("train -A", [model])):
        for q in model.parameters():
            q.requires_grad = False
        for m in trained:
            for q in m.parameters():
                q.requires_grad = True

        def train_step():
            model.zero_grad(set_to_none=True)
            with autocast():
                yp = model(x)
            # upstream's categorical_crossentropy_2d, in f32 (autocast leaves the loss to the caller)
            yp = yp.float()
            loss = -torch.mean(y[:, 0, :] * torch.log(yp[:, 0, :] + 1e-10)
                               + y[:, 1, :] * torch.log(yp[:, 1, :] + 1e-10)
                               + y[:, 2, :] * torch.log(yp[:, 2, :] + 1e-10))
            loss.backward()

        emit(name, best_of(a.reps, train_step))

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"tool": "pytorch", "precision": a.precision, "flank": a.flank, "peak_rss_mib": rss}))


if __name__ == "__main__":
    main()
