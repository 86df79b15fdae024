#!/usr/bin/env bash
# create-data speed and memory on the fly 2R inputs (../shared/data/create-data/inputs), beside OpenSpliceAI 0.0.7's
# figures recorded in ../shared/data/create-data/upstream/*/time.txt.
#   benches/create_data.sh [REPS]      (builds the release binary first; needs GNU time at /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
DATA=${OSAI_CREATE_DATA:-../shared/data/create-data}
IN=$DATA/inputs
cargo build --release --quiet
BIN=target/release/openspliceai-rs
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

upstream() { # run-name → "CPU s, peak MB" from upstream's /usr/bin/time -v record
  local t=$DATA/upstream/$1/time.txt
  awk -F': ' '/User time/{u=$2} /System time/{s=$2} /Maximum resident/{m=$2}
    END{printf "%.0f CPU s, %.0f MB", u+s, m/1024}' "$t"
}

printf '| run | ours: wall s | ours: CPU s | ours: peak RSS MB | upstream (CPU s, peak RSS) |\n| --- | --- | --- | --- | --- |\n'
for mode in default all_isoforms; do
  flags=(--upstream-bugs -q)
  [ "$mode" = all_isoforms ] && flags+=(--parse-type all_isoforms)
  for _ in $(seq "$REPS"); do
    rm -rf "$OUT/run"
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/time" "$BIN" create-data \
      --annotation-gff "$IN/dmel_chr2R_dm3.gff3.gz" --genome-fasta "$IN/dmel_chr2R_dm3.fa.gz" \
      --output-dir "$OUT/run" "${flags[@]}" > /dev/null
    read -r wall user sys rss < "$OUT/time"
    printf '| fly_%s | %s | %.2f | %.0f | %s |\n' "$mode" "$wall" "$(echo "$user + $sys" | bc)" \
      "$(echo "$rss / 1024" | bc)" "$(upstream "fly_$mode")"
  done
done
