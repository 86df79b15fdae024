"""Writes the calibration fixture of tests/calibrate.rs with OpenSpliceAI 0.0.7's own code (run it with the
python of a venv holding torch and openspliceai==0.0.7, from this directory):

- {fit,clamp}_logits.f32 (M x 3 float32, little-endian) and {fit,clamp}_labels.u8 (M class indices):
  synthetic logits whose three classes are miscalibrated differently, with some unlabelled positions (all-zero
  one-hot rows, which upstream's argmax makes class 0). `fit` stops early on a rising loss; in `clamp` class 0
  is so under-confident that its temperature ends on the clamp at 0.05, and the learning rate is cut three
  times on the way;
- {fit,clamp}_upstream.json: upstream's `ModelWithTemperature.set_temperature` on them (every step as its scheduler
  sees it: the loss, the learning rate, the temperature after the step), the temperature it restores, and
  upstream's NLL/ECE (`compute_ece_nll`), Brier scores (`calculate_brier_scores`) and reliability curves
  (`compute_calibration_curve`, 30 uniform bins) before and after; plus numpy's text of a few float32
  temperature vectors (what upstream writes to temperature.txt).
"""
import json

import numpy as np
import torch
from torch import nn

_Base = torch.optim.lr_scheduler.ReduceLROnPlateau
trajectory = []


class _Plateau(_Base):
    def __init__(self, optimizer, *args, verbose=None, **kwargs):
        super().__init__(optimizer, *args, **kwargs)

    def step(self, metrics, *args, **kwargs):
        group = self.optimizer.param_groups[0]
        trajectory.append({
            "loss": float(metrics),
            "lr": float(group["lr"]),
            "temperature": [float(v) for v in group["params"][0].detach().tolist()],
        })
        return super().step(metrics, *args, **kwargs)


torch.optim.lr_scheduler.ReduceLROnPlateau = _Plateau

from openspliceai.calibrate.temperature_scaling import ModelWithTemperature  # noqa: E402
from openspliceai.calibrate.calibrate_utils import (  # noqa: E402
    calculate_brier_scores, compute_calibration_curve)

torch.set_num_threads(1)


def fixture(name, seed, windows, length, scales, noise, unlabelled):
    trajectory.clear()
    rng = np.random.default_rng(seed)
    m = windows * length
    base = rng.normal(0.0, 1.0, size=(m, 3))
    base[:, 0] += 3.0
    p = np.exp(base) / np.exp(base).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    onehot = np.eye(3)[labels]
    if unlabelled:
        onehot[rng.random(m) < unlabelled] = 0.0
    logits = base * np.array(scales)
    if noise:
        logits = logits + rng.normal(0, noise, size=(m, 3))
    logits = logits.astype(np.float32)
    x = torch.tensor(logits.reshape(windows, length, 3).transpose(0, 2, 1).copy())
    y = torch.tensor(onehot.reshape(windows, length, 3).transpose(0, 2, 1).copy(), dtype=torch.float32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2, shuffle=False)
    wrapped = ModelWithTemperature(nn.Identity(), 3)
    wrapped.set_temperature(loader, {"CL": 10000, "N_GPUS": 1})
    labels_used = wrapped.labels.numpy().astype(np.uint8)
    flat_logits = wrapped.logits.detach()

    def report(t):
        scaled = flat_logits / torch.clamp(torch.tensor(t, dtype=torch.float32), 0.05, 5.0)
        nll, ece = wrapped.compute_ece_nll(scaled, wrapped.labels)
        probs = torch.softmax(scaled, dim=1).numpy()
        curves = []
        for i in range(3):
            prob_true, prob_pred, counts = compute_calibration_curve(
                (labels_used == i).astype(int), probs[:, i], n_bins=30, strategy="uniform")
            curves.append({"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist(),
                           "bin_counts": counts.tolist()})
        brier = calculate_brier_scores(labels_used, probs, probs)[0]
        return {"temperature": [float(v) for v in t], "nll": nll, "ece": ece,
                "brier": [float(b) for b in brier], "curves": curves}

    fitted = [float(v) for v in wrapped.temperature.detach().tolist()]
    texts = []
    for vec in ([1.0, 1.0, 1.0], fitted, [0.05, 5.0, 1.2345678], [1.5, 0.25, 3.0], [0.123456789, 4.99999, 1.1],
                rng.uniform(0.05, 5.0, size=3).tolist()):
        arr = np.array(vec, dtype=np.float32)
        texts.append({"values": [float(v) for v in arr], "text": str(arr)})
    flat_logits.numpy().astype("<f4").tofile(f"{name}_logits.f32")
    labels_used.tofile(f"{name}_labels.u8")
    with open(f"{name}_upstream.json", "w") as f:
        json.dump({"positions": int(m), "steps": len(trajectory), "trajectory": trajectory,
                   "temperature": fitted, "before": report([1.0, 1.0, 1.0]), "after": report(fitted),
                   "temperature_texts": texts}, f, indent=1)
    print(name, len(trajectory), "steps; temperature", fitted)


fixture("fit", 25, 4, 1000, [0.6, 2.0, 9.0], 0.05, 0.02)
fixture("clamp", 3, 2, 1000, [0.03, 1.0, 1.0], 0.0, 0.0)
