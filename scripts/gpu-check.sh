#!/usr/bin/env bash
# The one check a session lent a GPU runs (no network, maybe no Rust), and that CI runs with `--device cpu`
# so that it never rots. Prints one table; exits 1 when a step failed.
#
# usage: scripts/gpu-check.sh [--device cuda|cpu] [--bin BIN] [--train-step-test BIN] [--ops-test BIN]
#                             [--features LIST] [--fixtures DIR] [--out DIR]
#
#   --bin              the openspliceai-rs binary [.gpu/openspliceai-rs, else target/release/openspliceai-rs
#                      ($CARGO_TARGET_DIR/release/... when set)]; built when absent (below)
#   --train-step-test  the `train_step` integration-test binary of the same build
#                      (`cargo test --release [--features cuda] --no-run --test train_step` prints its path)
#                      [.gpu/train_step, or .gpu/train_step.gz]; built when absent (below)
#   --ops-test         the `device_ops` integration-test binary of the same build: our CUDA ops (GEMM-plan
#                      conv, device BatchNorm) against the CPU ops, forward and every gradient
#                      [.gpu/device_ops, or .gpu/device_ops.gz]; built when absent (below)
#   --features         the cargo features of those builds [cuda with --device cuda, none with --device cpu]
#   --fixtures         ../shared/fixtures (parity/, openspliceai-mane/) [$OSAI_FIXTURES, else ../shared/fixtures,
#                      else .gpu/fixtures]
#   --out              scratch folder [a new temporary one]
#
# What is not given and not in .gpu/ is built here when cargo is on the PATH (one command on a GPU box with
# Rust): `cargo build --release` and `cargo test --release --no-run --test train_step --test device_ops`
# with --features, into $CARGO_TARGET_DIR or target/ (a binary already there is used as it is: build it with
# the same features); nvcc from scripts/nvcc.sh when a cuda build finds none on the PATH. Without cargo, a
# missing test binary is reported as a failed step ("no test binary").
#
# Steps: forward parity against PyTorch for 80/400/2000/10000nt, and in bf16 and TF32 against the same f32
# fixtures within their tolerances (80nt only on the CPU); the `-u 2` train-step fixture
# (tests/train_step.rs with OSAI_TEST_DEVICE); a one-epoch 80nt `transfer -u 2` on the device against the
# same run on the CPU (model_0.pt); the CUDA ops against the CPU ops (tests/device_ops.rs; on the CPU its
# GPU test skips, on CUDA it must run); `bench --memory` for the default and the stock-op graph (bytes a
# training step keeps, and on CUDA the device memory); `bench` with peak memory (device memory from nvidia-smi on CUDA, peak
# RSS on the CPU), and `bench --precision bf16|tf32`; `quickstart`. scripts/gpu-pack.sh puts the binaries and fixtures in .gpu/. On a GPU machine
# without cuBLAS on the loader's path, the lib folders of Python's nvidia-* packages (PyTorch's CUDA wheels)
# are added to LD_LIBRARY_PATH.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
device=cuda
bin=
test_bin=
ops_bin=
fixtures=${OSAI_FIXTURES:-$here/../shared/fixtures}
[ -d "$fixtures" ] || fixtures=$here/.gpu/fixtures
out=
features=
features_set=0
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --train-step-test) test_bin=$2; shift 2 ;;
    --ops-test) ops_bin=$2; shift 2 ;;
    --features) features=$2; features_set=1; shift 2 ;;
    --fixtures) fixtures=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "gpu-check: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ "$features_set" = 1 ] || { [ "$device" = cuda ] && features=cuda; }
[ -n "$out" ] || out=$(mktemp -d)
mkdir -p "$out"

# Builds what is missing (see the header). cargo's JSON messages name the artifacts: no path guessing.
cargo_build() { # cargo ARGS... → prints the executables it built (one a line); its log goes to $out/build.log
  (
    cd "$here" || exit 1
    if [[ ,$features, == *,cuda,* ]] && ! command -v nvcc >/dev/null; then
      cuda_root=$(scripts/nvcc.sh find)
      [ -z "$cuda_root" ] || export CUDA_ROOT=$cuda_root CUDA_PATH=$cuda_root PATH=$cuda_root/bin:$PATH
    fi
    cargo "$@" --release --locked ${features:+--features "$features"} --message-format json 2>> "$out/build.log" \
      | python3 "$here/scripts/cargo-executables.py"
  )
}
can_build() { command -v cargo >/dev/null && [ -f "$here/Cargo.toml" ]; }
built() { # NAME LIST → the executable of NAME in LIST (cargo_build's output), or nothing
  awk -F'\t' -v n="$1" '$1 == n { p = $2 } END { if (p != "") print p }' <<< "$2"
}

if [ -z "$bin" ]; then
  bin=$here/.gpu/openspliceai-rs
  if [ ! -x "$bin" ]; then
    bin=${CARGO_TARGET_DIR:-$here/target}/release/openspliceai-rs
    if [ ! -x "$bin" ] && can_build; then
      echo "gpu-check: building the binary (cargo build --release ${features:+--features $features}; log $out/build.log)"
      b=$(built openspliceai-rs "$(cargo_build build --bin openspliceai-rs)")
      [ -z "$b" ] || bin=$b
    fi
  fi
fi
# A test binary given by flag is used as given (a wrong path is a failed step, not a silent build).
test_given=${test_bin:+1}
ops_given=${ops_bin:+1}
[ -n "$test_bin" ] || test_bin=$here/.gpu/train_step
[ -n "$ops_bin" ] || ops_bin=$here/.gpu/device_ops
missing() { [ -z "$1" ] && [ ! -x "$2" ] && [ ! -f "$2.gz" ]; } # GIVEN PATH → true when it must be built
if { missing "$test_given" "$test_bin" || missing "$ops_given" "$ops_bin"; } && can_build; then
  echo "gpu-check: building the test binaries (cargo test --release --no-run --test train_step --test device_ops${features:+ --features $features}; log $out/build.log)"
  tests=$(cargo_build test --no-run --test train_step --test device_ops)
  b=$(built train_step "$tests")
  if missing "$test_given" "$test_bin" && [ -n "$b" ]; then test_bin=$b; fi
  b=$(built device_ops "$tests")
  if missing "$ops_given" "$ops_bin" && [ -n "$b" ]; then ops_bin=$b; fi
fi
# gpu-pack.sh gzips the test binaries to stay under the device tool's carry limit.
unpack() { # PATH → prints a runnable path (PATH itself, or PATH.gz unpacked into $out)
  if [ ! -x "$1" ] && [ -f "$1.gz" ]; then
    gzip -dc "$1.gz" > "$out/$(basename "$1")" && chmod +x "$out/$(basename "$1")"
    echo "$out/$(basename "$1")"
  else
    echo "$1"
  fi
}
test_bin=$(unpack "$test_bin")
ops_bin=$(unpack "$ops_bin")
diff_py=$here/scripts/safetensors_diff.py
mane=$fixtures/openspliceai-mane
for need in "$bin" "$diff_py" "$fixtures/parity" "$mane"; do
  [ -e "$need" ] || { echo "gpu-check: $need not found" >&2; exit 2; }
done
export OSAI_FIXTURES=$fixtures

rows=()
failed=0
# row STEP OK|FAIL SECONDS DETAIL
row() {
  rows+=("$(printf '%-36s %-5s %8s  %s' "$1" "$2" "$3" "$4")")
  [ "$2" = ok ] || failed=1
  echo "-- $1: $2 ($3 s) $4"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# cuBLAS 13 (the nvcc 13.0 build's) from Python's nvidia-* packages (PyTorch's CUDA wheels) when the loader
# does not find it.
have_cublas() {
  ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13' && return 0
  local d dirs
  IFS=: read -ra dirs <<< "${LD_LIBRARY_PATH:-}"
  for d in "${dirs[@]}"; do [ -e "$d/libcublas.so.13" ] && return 0; done
  return 1
}
if [ "$device" != cpu ] && ! have_cublas && command -v python3 >/dev/null; then
  nv_libs=$(python3 - <<'PY'
import glob, os, site
dirs = {os.path.dirname(p) for sp in site.getsitepackages() for p in glob.glob(sp + "/nvidia/**/lib*.so*", recursive=True)}
print(":".join(sorted(dirs)))
PY
  )
  [ -z "$nv_libs" ] || export LD_LIBRARY_PATH=$nv_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

echo "gpu-check: device $device, binary $bin, fixtures $fixtures, output $out"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
"$bin" --version || { echo "gpu-check: $bin does not run" >&2; exit 2; }
peak_mem=
if [ "$device" != cpu ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi

# Runs "$@" while sampling used device memory (CUDA, nvidia-smi) or measuring peak RSS (CPU); sets peak_mem.
with_peak_memory() {
  peak_mem=n/a
  if [ "$device" != cpu ] && command -v nvidia-smi >/dev/null; then
    local log=$out/nvidia-smi.log
    : > "$log"
    (while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$log" 2>/dev/null
       sleep 0.2; done) &
    local poll=$!
    "$@"; local rc=$?
    kill "$poll" 2>/dev/null; wait "$poll" 2>/dev/null
    peak_mem="$(sort -n "$log" | tail -1) MiB device (nvidia-smi, whole GPU)"
    return $rc
  elif [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$out/time.txt" "$@"; local rc=$?
    peak_mem="$(awk '{printf "%.0f", $1/1024}' "$out/time.txt" | tail -1) MiB RSS"
    return $rc
  fi
  "$@"
}

# 1. Forward parity against PyTorch (eval mode, the MANE checkpoints), tolerance as tests/parity.rs.
for f in 80 400 2000 10000; do
  t=$(now)
  if "$bin" forward -m "$mane/${f}nt/model_${f}nt_rs10.pt" -f "$f" --input "$fixtures/parity/forward_${f}nt.safetensors" \
      --output "$out/forward_$f.safetensors" --device "$device" > "$out/forward_$f.log" 2>&1 \
    && d=$(python3 "$diff_py" "$out/forward_$f.safetensors" "$fixtures/parity/forward_${f}nt.safetensors" \
      --keys probs --atol 2e-5 --quiet); then
    row "forward parity ${f}nt" ok "$(since "$t")" "${d#worst: }"
  else
    row "forward parity ${f}nt" FAIL "$(since "$t")" "$(tail -1 "$out/forward_$f.log") ${d:-}"
  fi
done

# 1b. The same forwards with the GEMM plan in bf16 and TF32 (--precision; docs/gpu.md#bf16-and-tf32) against
# the f32 PyTorch fixtures: bf16 within 0.03 of every probability, TF32 within 0.004 (the CPU emulation of
# the same plan stays well inside both: tests/bf16_plan.rs). On CUDA the log must say the precision ran (no
# silent f32); on the CPU (CI) tf32 falls back to f32 with its message and bf16 runs the CPU kernels, 80nt only.
if [ "$device" = cpu ]; then low_flanks=(80); else low_flanks=(80 400 2000 10000); fi
for prec in bf16 tf32; do
  if [ "$prec" = bf16 ]; then atol=0.03; want='precision: bf16 conv GEMMs on CUDA'; else atol=0.004; want='precision: TF32 conv GEMMs on CUDA'; fi
  [ "$device" = cpu ] && want='precision'
  for f in "${low_flanks[@]}"; do
    t=$(now)
    d=
    log=$out/forward_${prec}_$f.log
    if "$bin" forward -m "$mane/${f}nt/model_${f}nt_rs10.pt" -f "$f" \
        --input "$fixtures/parity/forward_${f}nt.safetensors" --output "$out/forward_${prec}_$f.safetensors" \
        --device "$device" --precision "$prec" > "$log" 2>&1 \
      && grep -q "$want" "$log" \
      && d=$(python3 "$diff_py" "$out/forward_${prec}_$f.safetensors" "$fixtures/parity/forward_${f}nt.safetensors" \
        --keys probs --atol "$atol" --quiet); then
      row "forward $prec vs f32 fixture ${f}nt" ok "$(since "$t")" "${d#worst: } ($(grep -m1 'precision' "$log"))"
    else
      row "forward $prec vs f32 fixture ${f}nt" FAIL "$(since "$t")" "$(tail -1 "$log") ${d:-} (expected '$want' in the log)"
    fi
  done
done

# 2. The -u 2 train-step fixture (losses, gradients, AdamW step, state dict) on the device.
t=$(now)
if [ -x "$test_bin" ]; then
  if OSAI_TEST_DEVICE=$device CI=true "$test_bin" --test-threads 1 > "$out/train_step.log" 2>&1; then
    row "train-step fixture -u 2 (80nt)" ok "$(since "$t")" "$(grep -m1 'test result' "$out/train_step.log")"
  else
    row "train-step fixture -u 2 (80nt)" FAIL "$(since "$t")" "$(grep -m1 -E 'panicked|test result' "$out/train_step.log")"
  fi
else
  row "train-step fixture -u 2 (80nt)" FAIL 0 "not run: no test binary at $test_bin"
fi

# 3. One-epoch 80nt transfer -u 2 on the device, against the same run on the CPU.
t=$(now)
transfer_on() { # DEVICE TAG
  "$bin" transfer -train "$out/data/dataset_train.h5" -test "$out/data/dataset_test.h5" \
    -m "$mane/80nt/model_80nt_rs10.pt" -f 80 -u 2 -n 1 -p "check_$2" -o "$out/runs" --device "$1" \
    --quiet --overwrite > "$out/transfer_$2.log" 2>&1 \
    && "$bin" convert "$(find "$out/runs" -path "*check_$2*" -name model_0.pt | head -1)" \
      "$out/transfer_$2.safetensors" >> "$out/transfer_$2.log" 2>&1
}
if "$bin" example-data -o "$out/data" > "$out/example_data.log" 2>&1 \
  && transfer_on cpu cpu && transfer_on "$device" dev \
  && d=$(python3 "$diff_py" "$out/transfer_dev.safetensors" "$out/transfer_cpu.safetensors" --rtol 1e-3 --quiet); then
  row "transfer -u 2, 1 epoch: vs CPU" ok "$(since "$t")" "${d#worst: }"
else
  row "transfer -u 2, 1 epoch: vs CPU" FAIL "$(since "$t")" \
    "$(tail -qn1 "$out"/example_data.log "$out"/transfer_*.log 2>/dev/null | tr '\n' ' ') ${d:-}"
fi

# 3b. Our CUDA ops against the CPU ops (all of tests/device_ops.rs; its GPU test must run on CUDA).
t=$(now)
if [ -x "$ops_bin" ]; then
  if CI=true "$ops_bin" --test-threads 1 --nocapture > "$out/device_ops.log" 2>&1; then
    if [ "$device" != cpu ] && grep -q 'skipping: no CUDA device' "$out/device_ops.log"; then
      row "CUDA ops vs CPU ops" FAIL "$(since "$t")" "$(grep -m1 'skipping' "$out/device_ops.log")"
    else
      row "CUDA ops vs CPU ops" ok "$(since "$t")" \
        "$(grep -m1 'test result' "$out/device_ops.log")$(grep -q 'skipping: no CUDA' "$out/device_ops.log" && echo ' (GPU test skipped: no GPU)')"
    fi
  else
    row "CUDA ops vs CPU ops" FAIL "$(since "$t")" "$(grep -m1 -E 'panicked|test result' "$out/device_ops.log")"
  fi
else
  row "CUDA ops vs CPU ops" FAIL 0 "not run: no test binary at $ops_bin"
fi

# 3c. Bytes a training step keeps for backward: our ops (default) and the stock-op graph (OSAI_OPS=stock).
if [ "$device" = cpu ]; then mem_args=(-f 80 --batch-size 2); else mem_args=(-f 400 -f 10000); fi
for ops in default stock; do
  t=$(now)
  if [ "$ops" = stock ]; then ops_env=(OSAI_OPS=stock); else ops_env=(); fi
  if env "${ops_env[@]}" "$bin" bench --memory --device "$device" "${mem_args[@]}" > "$out/memory_$ops.log" 2>&1; then
    row "bench --memory, $ops ops" ok "$(since "$t")" \
      "$(awk '/^[0-9]+nt +train step/ {printf "%s %s kept %s MiB, peak %s, device %s; ", $1, ($4 == "--unfreeze" ? "-u 2" : "-A"), $(NF-5), $(NF-4), $(NF-3)}' "$out/memory_$ops.log")"
  else
    row "bench --memory, $ops ops" FAIL "$(since "$t")" "$(tail -1 "$out/memory_$ops.log")"
  fi
done

# 4. bench with peak memory (all four sizes on a GPU; 80nt with 4 windows on the CPU, to stay short).
t=$(now)
if [ "$device" = cpu ]; then bench_args=(-f 80 --batch-size 4 --reps 1); else bench_args=(--reps 3); fi
if with_peak_memory "$bin" bench --device "$device" "${bench_args[@]}" > "$out/bench.log" 2>&1; then
  row "bench ${bench_args[*]}" ok "$(since "$t")" "peak $peak_mem"
else
  row "bench ${bench_args[*]}" FAIL "$(since "$t")" "$(tail -1 "$out/bench.log")"
fi

# 4b. bench in bf16 and TF32 (eval forward and train steps through the GEMM plan in that precision).
if [ "$device" = cpu ]; then prec_bench_args=(-f 80 --batch-size 4 --reps 1); else prec_bench_args=(-f 400 -f 10000 --reps 3); fi
for prec in bf16 tf32; do
  t=$(now)
  if "$bin" bench --device "$device" --precision "$prec" "${prec_bench_args[@]}" > "$out/bench_$prec.log" 2>&1; then
    row "bench --precision $prec" ok "$(since "$t")" \
      "$(awk '/^SpliceAI-/ {f = $1; sub(/,$/, "", f)} /^(eval forward|train step --unfreeze-all)/ {printf "%s %s %s win/s; ", f, ($1 == "eval" ? "eval" : "-A"), $(NF-3)}' "$out/bench_$prec.log")"
  else
    row "bench --precision $prec" FAIL "$(since "$t")" "$(tail -1 "$out/bench_$prec.log")"
  fi
done

# 5. quickstart.
t=$(now)
if "$bin" quickstart --device "$device" --dir "$out/quickstart" > "$out/quickstart.log" 2>&1; then
  row "quickstart" ok "$(since "$t")" "$(grep -m1 'finished in' "$out/quickstart.log")"
else
  row "quickstart" FAIL "$(since "$t")" "$(tail -1 "$out/quickstart.log")"
fi

echo
echo "== bench ($device)"
cat "$out/bench.log"
for prec in bf16 tf32; do
  echo
  echo "== bench --precision $prec ($device)"
  cat "$out/bench_$prec.log"
done
for ops in default stock; do
  echo
  echo "== bench --memory ($ops ops, $device)"
  cat "$out/memory_$ops.log"
done
echo
echo "== gpu-check table (device $device)"
printf '%-36s %-5s %8s  %s\n' step result "time s" detail
printf '%s\n' "${rows[@]}"
exit $failed
