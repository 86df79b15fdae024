#!/usr/bin/env bash
# CI: the `cuda` binary on a machine without a GPU or CUDA libraries. It must link no CUDA library, run the
# CPU commands, and refuse `--device cuda` with one clear error naming the missing library (no panic): the
# driver, then (with a stand-in driver library) cuBLAS.
# usage: scripts/ci-cuda-binary.sh BIN [FIXTURES_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$1
fixtures=${2:-${OSAI_FIXTURES:-$here/../shared/fixtures}}
ckpt=$fixtures/openspliceai-mane/80nt/model_80nt_rs10.pt
input=$fixtures/parity/forward_80nt.safetensors
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "-- ldd $bin"
ldd "$bin" | tee "$tmp/ldd"
if grep -qiE 'libcu|libnv' "$tmp/ldd"; then fail "the cuda binary links a CUDA library"; fi

echo "-- --help"
"$bin" --help > "$tmp/help" || fail "--help"
grep -q forward "$tmp/help" || fail "--help does not list the commands"

echo "-- inspect $ckpt"
"$bin" inspect "$ckpt" > "$tmp/inspect" || fail "inspect"
head -3 "$tmp/inspect"

echo "-- forward --device cpu (80nt fixture, against PyTorch)"
"$bin" forward -m "$ckpt" -f 80 --input "$input" --output "$tmp/probs.safetensors" --device cpu \
  || fail "forward --device cpu"
python3 "$here/scripts/safetensors_diff.py" "$tmp/probs.safetensors" "$input" --keys probs --atol 2e-5 \
  || fail "forward --device cpu differs from PyTorch"

echo "-- forward --device cuda: one clear error"
if "$bin" forward -m "$ckpt" -f 80 --input "$input" --output "$tmp/cuda.safetensors" --device cuda \
  > "$tmp/cuda.out" 2> "$tmp/cuda.err"; then
  fail "--device cuda succeeded on a machine without a GPU"
fi
cat "$tmp/cuda.err"
if grep -q panicked "$tmp/cuda.err"; then fail "--device cuda panicked"; fi
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so'; then
  echo "NOTE: this machine has a libcuda (a driver without a GPU?): not asserting the missing-driver message"
  grep -q "device \`cuda\` could not be opened" "$tmp/cuda.err" || fail "--device cuda: unexpected error"
else
  grep -q "device \`cuda\` could not be opened: cannot load the NVIDIA driver library (libcuda.so" \
    "$tmp/cuda.err" || fail "--device cuda: the error does not name the missing driver library"
fi
echo "-- forward --device cuda with a driver library but no cuBLAS: the error names cuBLAS"
# A stand-in libcuda.so.1 whose cuInit says "no device": the binary must get past the driver check and
# name the missing cuBLAS (checked before cuInit). Skipped where cuBLAS is installed or there is no cc.
if ldconfig -p 2>/dev/null | grep -q 'libcublas\.so'; then
  echo "NOTE: this machine has a libcublas: not checking the missing-cuBLAS message"
elif command -v cc >/dev/null; then
  printf 'int cuInit(unsigned f) { return 100; }\nint cuGetErrorString(int e, const char **s) { return 1; }\n' \
    > "$tmp/stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tmp/libcuda.so.1" "$tmp/stub.c"
  if LD_LIBRARY_PATH=$tmp "$bin" forward -m "$ckpt" -f 80 --input "$input" --output "$tmp/cuda.safetensors" \
    --device cuda > "$tmp/cublas.out" 2> "$tmp/cublas.err"; then
    fail "--device cuda succeeded with a stand-in driver"
  fi
  cat "$tmp/cublas.err"
  if grep -q panicked "$tmp/cublas.err"; then fail "--device cuda without cuBLAS panicked"; fi
  grep -q "device \`cuda\` could not be opened: cannot load the cuBLAS library" "$tmp/cublas.err" \
    || fail "--device cuda: the error does not name the missing cuBLAS"
else
  echo "NOTE: no C compiler: not checking the missing-cuBLAS message"
fi
echo "ci-cuda-binary: ok"
