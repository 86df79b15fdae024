#!/usr/bin/env bash
# The transfer-guidance table of docs/commands.md ("Which layers to train"): OpenSpliceAI-MANE 400nt →
# D. melanogaster chr2L genes (../shared/data/dmel-chr2L), 6 epochs, CosineAnnealingWarmRestarts,
# cross-entropy, best model by validation loss, test scored over every window holding a site. Prints one
# row per setting.
# usage: scripts/fly_transfer_table.sh OUT_DIR [EPOCHS] [PRECISION] [RUNS]
#   PRECISION: f32 (default) or bf16 (`--precision bf16`; the runs are named u2_bf16, A_bf16, ..., so f32
#   and bf16 runs can share OUT_DIR); RUNS: which settings, default "u2 A u2fbn".
#   BIN=path overrides the binary (default target/release/openspliceai-rs, or $CARGO_TARGET_DIR's).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$1; epochs=${2:-6}; precision=${3:-f32}; runs=${4:-u2 A u2fbn}
case $precision in
  f32) sfx= ;;
  bf16) sfx=_bf16 ;;
  *) echo "fly_transfer_table.sh: PRECISION must be f32 or bf16, got '$precision'" >&2; exit 2 ;;
esac
bin=${BIN:-${CARGO_TARGET_DIR:-$here/target}/release/openspliceai-rs}
data=$here/../shared/data/dmel-chr2L
model=$here/../shared/fixtures/openspliceai-mane/400nt/model_400nt_rs10.pt
mkdir -p "$out"
run() {
  local name=$1$sfx; shift
  "$bin" transfer -train "$data/dataset_train.h5" -test "$data/dataset_test.h5" \
    --validation-dataset "$data/dataset_validation.h5" -m "$model" -f 400 -n "$epochs" \
    -s CosineAnnealingWarmRestarts -l cross_entropy_loss -p "$name" -o "$out" --device cpu --quiet \
    --overwrite --precision "$precision" "$@" > "$out/$name.log" 2>&1
}
for r in $runs; do
  case $r in
    u2) run u2 -u 2 ;;
    A) run A -A ;;
    u2fbn) run u2fbn -u 2 --freeze-bn ;;
    *) echo "fly_transfer_table.sh: unknown run '$r' (u2, A or u2fbn)" >&2; exit 2 ;;
  esac
done
python3 - "$out" "$sfx" "$runs" "$precision" <<'PY'
import json, sys, glob, os
out, sfx, runs, precision = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
def rows(name):
    path = glob.glob(os.path.join(out, f"SpliceAI_{name}{sfx}_400_0_rs42", "0", "metrics.jsonl"))[0]
    return [json.loads(l) for l in open(path)]
def fmt(r):
    a, d = r["acceptor"], r["donor"]
    return f"{a['topk']:.3f} / {a['auprc']:.3f} | {d['topk']:.3f} / {d['auprc']:.3f}"
print("| run | acceptor top-1 / AUPRC | donor top-1 / AUPRC | validation loss over epochs | epoch s |")
print("| --- | --- | --- | --- | --- |")
base = rows(runs[0])
zs = [r for r in base if r["epoch"] == -1 and r["split"] == "test"][0]
print(f"| zero-shot (no training) | {fmt(zs)} | — | — |")
labels = {"u2": "`transfer -u 2`", "A": "`transfer -A`", "u2fbn": "`transfer -u 2 --freeze-bn`"}
for name in runs:
    label = labels[name] + ("" if precision == "f32" else f" `--precision {precision}`")
    rs = rows(name)
    val = [r for r in rs if r["split"] == "val" and r["epoch"] >= 0]
    best = min(val, key=lambda r: (r["loss"], r["epoch"]))
    test = [r for r in rs if r["split"] == "test" and r["epoch"] == best["epoch"]][0]
    losses = " → ".join(f"{r['loss']:.5f}" for r in val)
    secs = [sum(r["seconds"] for r in rs if r["epoch"] == e) for e in sorted({r["epoch"] for r in val})]
    print(f"| {label} (best epoch {best['epoch']}) | {fmt(test)} | {losses} | {' / '.join(f'{s:.0f}' for s in secs)} |")
PY
