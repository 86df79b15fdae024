#!/usr/bin/env bash
# The example report of docs/outputs.md (details: docs/report-example.md): OpenSpliceAI-MANE 400nt →
# D. melanogaster chr2L genes (../shared/data/dmel-chr2L), 4 epochs each of `transfer -u 2 --freeze-bn`,
# `transfer -u 2`, `transfer -A` and `train` from scratch (CosineAnnealingWarmRestarts, cross-entropy, CPU),
# then `report` over the four runs: OUT_DIR/report.html and one SVG per chart (docs/report-example.svg is
# OUT_DIR/report-loss.svg).
# usage: scripts/fly_report.sh OUT_DIR [EPOCHS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$1; epochs=${2:-4}
bin=$here/target/release/openspliceai-rs
data=$here/../shared/data/dmel-chr2L
model=$here/../shared/fixtures/openspliceai-mane/400nt/model_400nt_rs10.pt
mkdir -p "$out"
common=(-train "$data/dataset_train.h5" -test "$data/dataset_test.h5" --validation-dataset "$data/dataset_validation.h5"
  -f 400 -n "$epochs" -s CosineAnnealingWarmRestarts -l cross_entropy_loss -o "$out/runs" --device cpu --quiet --overwrite)
"$bin" transfer -m "$model" -p u2fbn -u 2 --freeze-bn "${common[@]}" > "$out/u2fbn.log" 2>&1
"$bin" transfer -m "$model" -p u2 -u 2 "${common[@]}" > "$out/u2.log" 2>&1
"$bin" transfer -m "$model" -p A -A "${common[@]}" > "$out/A.log" 2>&1
"$bin" train -p scratch "${common[@]}" > "$out/scratch.log" 2>&1
runs=()
for p in u2fbn u2 A scratch; do runs+=("$out/runs/SpliceAI_${p}_400_0_rs42/0"); done
"$bin" report "${runs[@]}" -o "$out/report.html" --format svg
