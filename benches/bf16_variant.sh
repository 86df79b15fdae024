#!/usr/bin/env bash
# What bf16 changes in `variant` outputs (issue 28, item 4): the shared 91-record fly VCF scored with one
# OpenSpliceAI-MANE model per flanking size (rs10, as tests/variant.rs), `--compute-precision f32` and `bf16`,
# at upstream's default `-p 2`. Per flank: records whose score INFO entry differs at all, DS_* values that
# differ / all DS_* values, DP_* values that differ, and the largest |DS(bf16) - DS(f32)|.
# usage: benches/bf16_variant.sh [FLANK...]        (default: 80 400 2000 10000)
#   OSAI_BIN     the binary (default target/release/openspliceai-rs)
#   OSAI_SHARED  the shared data folder (default ../shared)
#   OSAI_BF16    passed through (emulate: the portable bf16 emulation; off: f32, so nothing may change)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${OSAI_SHARED:-../shared}
data=$shared/data/predict-variant/inputs
models=$shared/fixtures/openspliceai-mane
bin=${OSAI_BIN:-target/release/openspliceai-rs}
[ -x "$bin" ] || { echo "error: no binary at $bin (cargo build --release, or set OSAI_BIN)" >&2; exit 2; }
for f in "$data/region200k.fa" "$data/genes_region200k.txt" "$data/variants.vcf"; do
  [ -f "$f" ] || { echo "error: missing $f (the shared predict/variant data; set OSAI_SHARED)" >&2; exit 2; }
done
flanks=("$@")
[ ${#flanks[@]} -gt 0 ] || flanks=(80 400 2000 10000)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "binary: $bin ($("$bin" --version 2>/dev/null | head -1 || true))"
for f in "${flanks[@]}"; do
  m=$models/${f}nt/model_${f}nt_rs10.pt
  [ -f "$m" ] || { echo "error: missing checkpoint $m (flanking size $f: one of 80 400 2000 10000)" >&2; exit 2; }
  for p in f32 bf16; do
    # stderr holds the line saying what bf16 runs as (native, emulated, or f32 with the reason)
    if ! "$bin" variant -q --no-provenance -R "$data/region200k.fa" -A "$data/genes_region200k.txt" \
      -I "$data/variants.vcf" -m "$m" -f "$f" -p 2 --compute-precision "$p" \
      -O "$tmp/${f}_$p.vcf" 2>"$tmp/${f}_$p.err"; then
      echo "error: variant -f $f --compute-precision $p failed:" >&2
      cat "$tmp/${f}_$p.err" >&2
      exit 1
    fi
    [ "$p" = f32 ] || grep -i "precision" "$tmp/${f}_$p.err" | sed "s/^/  bf16 -f $f: /" || true
  done
done
python3 - "$tmp" "${flanks[@]}" <<'PY'
import sys

tmp, flanks = sys.argv[1], sys.argv[2:]


def records(path):
    """(CHROM, POS, ID, REF, ALT) -> the score INFO entries, one list of '|' fields per entry."""
    out = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t")
        info = dict(kv.split("=", 1) if "=" in kv else (kv, "") for kv in cols[7].split(";"))
        score = info.get("OpenSpliceAI", info.get("SpliceAI", ""))
        out[tuple(cols[:5])] = [e.split("|") for e in score.split(",")] if score else []
    return out


print()
print("| flank | records | records whose score entry differs | records with a DS_* change "
      "| DS_* values that differ / all | DP_* values that differ / all | largest \\|ΔDS\\| |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for f in flanks:
    a, b = records(f"{tmp}/{f}_f32.vcf"), records(f"{tmp}/{f}_bf16.vcf")
    if a.keys() != b.keys():
        sys.exit(f"error: flank {f}: the f32 and bf16 outputs hold different records")
    rec_diff = rec_ds = ds_diff = ds_all = dp_diff = dp_all = 0
    worst = 0.0
    for k in a:
        ea, eb = a[k], b[k]
        if ea != eb:
            rec_diff += 1
        if len(ea) != len(eb):
            sys.exit(f"error: flank {f}: record {k} has {len(ea)} vs {len(eb)} score entries")
        rec_ds += any(x[2:6] != y[2:6] for x, y in zip(ea, eb))
        for x, y in zip(ea, eb):
            if len(x) < 10 or len(y) < 10:
                continue  # a record without scores ('.' fields are compared as text above)
            for i in range(2, 6):
                ds_all += 1
                if x[i] != y[i]:
                    ds_diff += 1
                    try:
                        worst = max(worst, abs(float(x[i]) - float(y[i])))
                    except ValueError:
                        pass
            for i in range(6, 10):
                dp_all += 1
                dp_diff += x[i] != y[i]
    n = len(a)
    pct = lambda d, t: f"{d} / {t} ({100.0 * d / t:.1f}%)" if t else f"{d} / 0"
    print(f"| {f} | {n} | {pct(rec_diff, n)} | {pct(rec_ds, n)} | {pct(ds_diff, ds_all)} | {pct(dp_diff, dp_all)} | {worst:.2f} |")
PY
