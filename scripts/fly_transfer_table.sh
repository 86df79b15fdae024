#!/usr/bin/env bash
# The transfer-guidance table of docs/commands.md ("Which layers to train"): OpenSpliceAI-MANE 400nt →
# D. melanogaster chr2L genes (../shared/data/dmel-chr2L), 6 epochs, CosineAnnealingWarmRestarts,
# cross-entropy, best model by validation loss, test scored over every window holding a site. Prints one
# row per setting.
# usage: scripts/fly_transfer_table.sh OUT_DIR [EPOCHS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$1; epochs=${2:-6}
bin=$here/target/release/openspliceai-rs
data=$here/../shared/data/dmel-chr2L
model=$here/../shared/fixtures/openspliceai-mane/400nt/model_400nt_rs10.pt
mkdir -p "$out"
run() {
  local name=$1; shift
  "$bin" transfer -train "$data/dataset_train.h5" -test "$data/dataset_test.h5" \
    --validation-dataset "$data/dataset_validation.h5" -m "$model" -f 400 -n "$epochs" \
    -s CosineAnnealingWarmRestarts -l cross_entropy_loss -p "$name" -o "$out" --device cpu --quiet \
    --overwrite "$@" > "$out/$name.log" 2>&1
}
run u2 -u 2
run A -A
run u2fbn -u 2 --freeze-bn
python3 - "$out" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
def rows(name):
    path = glob.glob(os.path.join(out, f"SpliceAI_{name}_400_0_rs42", "0", "metrics.jsonl"))[0]
    return [json.loads(l) for l in open(path)]
def fmt(r):
    a, d = r["acceptor"], r["donor"]
    return f"{a['topk']:.3f} / {a['auprc']:.3f} | {d['topk']:.3f} / {d['auprc']:.3f}"
print("| run | acceptor top-1 / AUPRC | donor top-1 / AUPRC | validation loss over epochs | epoch s |")
print("| --- | --- | --- | --- | --- |")
base = rows("u2")
zs = [r for r in base if r["epoch"] == -1 and r["split"] == "test"][0]
print(f"| zero-shot (no training) | {fmt(zs)} | — | — |")
for name, label in [("u2", "`transfer -u 2`"), ("A", "`transfer -A`"), ("u2fbn", "`transfer -u 2 --freeze-bn`")]:
    rs = rows(name)
    val = [r for r in rs if r["split"] == "val" and r["epoch"] >= 0]
    best = min(val, key=lambda r: (r["loss"], r["epoch"]))
    test = [r for r in rs if r["split"] == "test" and r["epoch"] == best["epoch"]][0]
    losses = " → ".join(f"{r['loss']:.5f}" for r in val)
    secs = [sum(r["seconds"] for r in rs if r["epoch"] == e) for e in sorted({r["epoch"] for r in val})]
    print(f"| {label} (best epoch {best['epoch']}) | {fmt(test)} | {losses} | {' / '.join(f'{s:.0f}' for s in secs)} |")
PY
