#!/usr/bin/env bash
# Epoch seconds of `transfer -u 2 --freeze-bn` with and without the frozen-prefix cache (2 epochs each;
# the cache pays off from the second epoch), and the cache's size per window.
# usage: scripts/cache_speed.sh DATA_DIR OUT_DIR FLANK...
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=$1; out=$2; shift 2
bin=$here/target/release/openspliceai-rs
mkdir -p "$out"
printf '%-7s %-9s %-28s %s\n' flank mode "epoch seconds (1st, 2nd)" "cache MB/window"
for f in "$@"; do
  m=$here/../shared/fixtures/openspliceai-mane/${f}nt/model_${f}nt_rs10.pt
  for mode in cached uncached; do
    extra=(); [ "$mode" = uncached ] && extra=(--no-cache)
    "$bin" transfer -train "$data/dataset_train.h5" -test "$data/dataset_test.h5" \
      --validation-dataset "$data/dataset_validation.h5" -m "$m" -f "$f" -u 2 --freeze-bn -n 2 \
      -p "${mode}_$f" -o "$out" --device cpu --quiet --overwrite "${extra[@]}" > "$out/${mode}_$f.log" 2>&1
    secs=$(grep -oE -- '--- [0-9.]+ seconds ---' "$out/${mode}_$f.log" | awk '{print $2}' | paste -sd, -)
    mb=$(grep -oE '[0-9.]+ MB per window' "$out/${mode}_$f.log" | awk '{print $1}' || true)
    printf '%-7s %-9s %-28s %s\n' "$f" "$mode" "$secs" "${mb:--}"
  done
done
