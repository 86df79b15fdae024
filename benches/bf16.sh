#!/usr/bin/env bash
# bf16 speed beside PyTorch (issue 28, item 5): eval (ms/window, windows/s) and train steps (-u 2, -A; ms per
# step of a batch) at each flanking size for openspliceai-rs f32 and bf16 (`bench --precision`) and for
# OpenSpliceAI 0.0.7's own SpliceAI class with the MANE checkpoint in PyTorch f32 and under
# torch.autocast("cpu", dtype=torch.bfloat16) (benches/bf16_torch.py), one after the other on the same cores
# with the same thread count; one process per tool, precision and flank, each under GNU time for its peak RSS.
# Both: the flank's default batch (36 at 400nt, 12 at 10000nt), N(0,1) windows of the input shape, one
# warm-up, then the best of REPS. Prints one markdown table.
# usage: benches/bf16.sh [FLANK...]          (default: 400 10000)
#   OSAI_BIN        our binary (default target/release/openspliceai-rs)
#   OSAI_SHARED     the shared folder: MANE checkpoints, tools/pytorch-baseline.sh (default ../shared)
#   OSAI_REPS       timed repetitions after the warm-up, best reported (default 3)
#   OSAI_THREADS    threads of both tools (default 2); both are pinned to CPUs 0..THREADS-1 (taskset)
#   OSAI_TOOLS      ours | pytorch | both (default both)
#   OSAI_BENCH_OUT  keep the raw outputs in this folder (default: a temporary folder, removed)
#   OSAI_BF16       passed through to ours (emulate | off), as for every command
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${OSAI_SHARED:-../shared}
models=$shared/fixtures/openspliceai-mane
baseline=$shared/tools/pytorch-baseline.sh
bin=${OSAI_BIN:-target/release/openspliceai-rs}
reps=${OSAI_REPS:-3}
threads=${OSAI_THREADS:-2}
tools=${OSAI_TOOLS:-both}
case $tools in ours | pytorch | both) ;; *) echo "error: OSAI_TOOLS=$tools: expected ours, pytorch or both" >&2; exit 2 ;; esac
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "error: OSAI_REPS=$reps: expected a whole number >= 1" >&2; exit 2; }
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "error: OSAI_THREADS=$threads: expected a whole number >= 1" >&2; exit 2; }
flanks=("$@")
[ ${#flanks[@]} -gt 0 ] || flanks=(400 10000)
for f in "${flanks[@]}"; do
  [ -f "$models/${f}nt/model_${f}nt_rs10.pt" ] ||
    { echo "error: flank $f: no checkpoint $models/${f}nt/model_${f}nt_rs10.pt (flanks: 80 400 2000 10000)" >&2; exit 2; }
done
if [ "$tools" != pytorch ]; then
  [ -x "$bin" ] || { echo "error: no binary at $bin (cargo build --release, or set OSAI_BIN)" >&2; exit 2; }
fi
if [ "$tools" != ours ]; then
  [ -f "$baseline" ] || { echo "error: missing $baseline (the PyTorch venv script; set OSAI_SHARED)" >&2; exit 2; }
  bash "$baseline" python -c 'import torch, openspliceai' || { echo "error: the PyTorch venv does not import torch and openspliceai" >&2; exit 2; }
fi
[ -x /usr/bin/time ] || { echo "error: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ -n "${OSAI_BENCH_OUT:-}" ]; then
  out=$OSAI_BENCH_OUT; mkdir -p "$out"
else
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge "$threads" ]; then pin=(taskset -c "0-$((threads - 1))"); fi

echo "# bf16 beside PyTorch: $(date -u '+%F %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "# CPU flags: $(grep -o -w 'avx512f\|avx512_bf16\|amx_bf16\|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "# threads $threads (${pin[*]:-not pinned}), best of $reps after a warm-up; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$tools" = pytorch ] || echo "# ours: $bin ($("$bin" --version 2>/dev/null | head -1 || true))"

for f in "${flanks[@]}"; do
  m=$models/${f}nt/model_${f}nt_rs10.pt
  for p in f32 bf16; do
    if [ "$tools" != pytorch ]; then
      echo "... ours ${f}nt $p" >&2
      RAYON_NUM_THREADS=$threads /usr/bin/time -v -o "$out/ours_${f}_$p.time" "${pin[@]}" \
        "$bin" bench --device cpu -f "$f" --precision "$p" --reps "$reps" >"$out/ours_${f}_$p.txt" 2>&1 ||
        { echo "error: ours bench -f $f --precision $p failed:" >&2; tail -5 "$out/ours_${f}_$p.txt" >&2; exit 1; }
    fi
    if [ "$tools" != ours ]; then
      echo "... pytorch ${f}nt $p" >&2
      OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads /usr/bin/time -v -o "$out/torch_${f}_$p.time" "${pin[@]}" \
        bash "$baseline" python benches/bf16_torch.py --flank "$f" --checkpoint "$m" --precision "$p" \
        --reps "$reps" --threads "$threads" >"$out/torch_${f}_$p.txt" 2>"$out/torch_${f}_$p.err" ||
        { echo "error: benches/bf16_torch.py --flank $f --precision $p failed:" >&2; tail -5 "$out/torch_${f}_$p.err" >&2; exit 1; }
    fi
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "${flanks[@]}" <<'PY'
import json, os, re, sys

out, flanks = sys.argv[1], [int(f) for f in sys.argv[2:]]
ROW = re.compile(r"^(eval forward|train step --unfreeze 2|train step --unfreeze-all)( \(f32\))?\s+([\d.]+)\s+([\d.]+)")
NAMES = {"eval forward": "eval", "train step --unfreeze 2": "train -u 2", "train step --unfreeze-all": "train -A"}


def rss_mib(path):
    for line in open(path):
        if "Maximum resident set size" in line:
            return int(line.split()[-1]) / 1024.0
    return None


def ours(f, p):
    """{workload: (ms/window, windows/s, batch, ran in f32 though bf16 was asked)}, notes, peak RSS."""
    txt = f"{out}/ours_{f}_{p}.txt"
    if not os.path.exists(txt):
        return None
    rows, batch, notes = {}, None, []
    for line in open(txt):
        m = re.match(r"^SpliceAI-\d+, batch (\d+):", line)
        if m:
            batch = int(m.group(1))
        elif "bf16" in line.lower() and not ROW.match(line) or line.startswith("conv kernel"):
            notes.append(line.strip())
        m = ROW.match(line)
        if m:
            rows[NAMES[m.group(1)]] = (float(m.group(3)), float(m.group(4)), batch, bool(m.group(2)))
    return rows, notes, rss_mib(f"{out}/ours_{f}_{p}.time")


def torch(f, p):
    txt = f"{out}/torch_{f}_{p}.txt"
    if not os.path.exists(txt):
        return None
    rows, notes, rss = {}, [], None
    for line in open(txt):
        o = json.loads(line)
        if "info" in o:
            notes.append(o["info"])
        elif "workload" in o:
            rows[o["workload"]] = (o["ms_per_window"], o["windows_per_s"], o["batch"], False)
    return rows, notes, rss_mib(f"{out}/torch_{f}_{p}.time")


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


res = {(t, f, p): g(f, p) for f in flanks for p in ("f32", "bf16") for t, g in (("ours", ours), ("torch", torch))}
notes = sorted({n for r in res.values() if r for n in r[1]})
for n in notes:
    print(f"# {n}")
print()
print("| workload | ours f32 | ours bf16 | PyTorch f32 | PyTorch bf16 | bf16/f32 ours | bf16/f32 PyTorch "
      "| ours bf16 vs PyTorch bf16 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
dagger = False
for f in flanks:
    cols = [res[(t, f, p)] for t, p in (("ours", "f32"), ("ours", "bf16"), ("torch", "f32"), ("torch", "bf16"))]
    for w in ("eval", "train -u 2", "train -A"):
        got = [c[0].get(w) if c else None for c in cols]
        batch = next((g[2] for g in got if g), None)
        # eval per window; a train step per batch (ms/window × batch)
        if w == "eval":
            specs = [(f"{f}nt eval, ms/window (batch {batch})", lambda g: g[0], True),
                     (f"{f}nt eval, windows/s", lambda g: g[1], False)]
        else:
            specs = [(f"{f}nt {w}, ms/step (batch {batch})", lambda g: g[0] * g[2], True)]
        for label, val, lower_better in specs:
            v = [val(g) if g else None for g in got]
            cells = [fmt(x, 2 if x is not None and x < 100 else 0) for x in v]
            if got[1] and got[1][3]:
                cells[1] += " †"
                dagger = True
            # speed-ups: > 1 means the first named is faster
            sp = (lambda a, b: ratio(a, b)) if lower_better else (lambda a, b: ratio(b, a))
            d = " †" if got[1] and got[1][3] else ""
            print(f"| {label} | " + " | ".join(cells)
                  + f" | {sp(v[0], v[1])}{d} | {sp(v[2], v[3])} | {sp(v[3], v[1])}{d} |")
    rss = [c[2] if c else None for c in cols]
    cells = [fmt(x, 0) for x in rss]
    print(f"| {f}nt peak RSS, MiB (whole process) | " + " | ".join(cells)
          + f" | {ratio(rss[1], rss[0])} | {ratio(rss[3], rss[2])} | {ratio(rss[1], rss[3])} |")
print()
print("Ratio columns: time ratios, > 1 = the bf16 side (or ours) is faster; on the RSS rows, plain memory ratios "
      "(bf16/f32, ours/PyTorch: < 1 = less memory). Ours' RSS covers `bench`'s per-layer conv rows too.")
if dagger:
    print("† `bench` ran this row in f32: this build's bf16 covers conv forwards only (its train rows say \"(f32)\").")
PY
