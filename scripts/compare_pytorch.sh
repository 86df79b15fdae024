#!/usr/bin/env bash
# Side-by-side: one-epoch `transfer` of openspliceai-rs and of OpenSpliceAI 0.0.7 (PyTorch, CPU) on the
# same data, printing epoch seconds (train + validation + test, as each tool reports it), wall seconds and
# peak RSS.
# usage: scripts/compare_pytorch.sh DATA_DIR OUT_DIR "400:-u 2" "400:-A" "10000:-u 2" ...
# DATA_DIR holds dataset_{train,validation,test}.h5 (upstream reads the sibling validation file; we are
# given it with --validation-dataset, so both train on the same windows). Needs the PyTorch venv of
# ../shared/tools/pytorch-baseline.sh and a release build (BIN overrides its path). PRECISIONS lists our
# runs' --precision values (default f32; e.g. PRECISIONS="f32 bf16"); upstream trains in f32 only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=$1; out=$2; shift 2
bin=${BIN:-$here/target/release/openspliceai-rs}
baseline=$here/../shared/tools/pytorch-baseline.sh
ckpt=$here/../shared/fixtures/openspliceai-mane
mkdir -p "$out"
printf '%-8s %-20s %12s %10s %12s\n' tool workload "epoch s" "wall s" "peak RSS MB"
for w in "$@"; do
  f=${w%%:*}; flags=${w#*:}; tag=$(echo "$f$flags" | tr -d ' -')
  m=$ckpt/${f}nt/model_${f}nt_rs10.pt
  runs=()
  for p in ${PRECISIONS:-f32}; do
    /usr/bin/time -v -o "$out/ours${p}_$tag.time" "$bin" transfer -train "$data/dataset_train.h5" \
      -test "$data/dataset_test.h5" --validation-dataset "$data/dataset_validation.h5" -m "$m" -f "$f" \
      $flags --precision "$p" -n 1 -p "ours${p}_$tag" -o "$out" --device cpu --quiet --overwrite \
      > "$out/ours${p}_$tag.log" 2>&1
    runs+=("ours$p")
  done
  /usr/bin/time -v -o "$out/torch_$tag.time" "$baseline" openspliceai transfer -train "$data/dataset_train.h5" \
    -test "$data/dataset_test.h5" -m "$m" -f "$f" $flags -n 1 -p "torch_$tag" -o "$out" \
    > "$out/torch_$tag.log" 2>&1
  runs+=(torch)
  for tool in "${runs[@]}"; do
    if [ "$tool" != torch ]; then
      # train + validation + test seconds of epoch 0 (our console prints a table, not upstream's line)
      epoch=$(python3 -c 'import json,sys; print(round(sum(r["seconds"] for r in map(json.loads, open(sys.argv[1])) if r["epoch"] == 0), 2))' \
        "$(find "$out" -path "*${tool}_$tag*" -name metrics.jsonl | head -1)")
    else
      epoch=$(grep -aoE -- '--- [0-9.]+ seconds ---' "$out/${tool}_$tag.log" | tail -1 | awk '{print $2}')
    fi
    wall=$(grep 'Elapsed (wall' "$out/${tool}_$tag.time" | awk '{print $NF}' | awk -F: '{print ($1*60+$2)}')
    rss=$(grep 'Maximum resident' "$out/${tool}_$tag.time" | awk '{printf "%.0f", $NF/1024}')
    printf '%-8s %-20s %12s %10s %12s\n' "$tool" "${f}nt $flags" "$epoch" "$wall" "$rss"
  done
done
