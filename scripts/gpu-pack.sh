#!/usr/bin/env bash
# Fills .gpu/ with what scripts/gpu-check.sh needs on a GPU machine that has no Rust and no network: the
# stripped `cuda` binary, the stripped and gzipped `train_step` and `device_ops` test binaries of the same
# build, and the fixtures they read (parity/, openspliceai-mane/); under the device tool's 64 MiB carry limit.
# Then, with the device tool: carry [".gpu"], command `scripts/gpu-check.sh` (its defaults find .gpu/).
#
# usage: scripts/gpu-pack.sh [TARGET_DIR|-] [FIXTURES_DIR]
#   TARGET_DIR    where `cargo build --release --features cuda` built; `-` or absent: the glibc-2.17 cuda build
#                 CI makes (scripts/build-cuda-glibc.sh --tests, which builds what is missing)
#   FIXTURES_DIR  [$OSAI_FIXTURES, else ../shared/fixtures]
# It builds the test binary if it is missing (`cargo test --release --features cuda --no-run`) with the
# environment .ci/run builds with (nvcc from the PyPI venv $OSAI_NVCC_VENV [~/.cache/osai-nvcc]; another
# CUDA_ROOT/CUDA_PATH than the build's makes cargo rebuild everything).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target=${1:--}
fixtures=${2:-${OSAI_FIXTURES:-$here/../shared/fixtures}}
for d in parity openspliceai-mane; do
  [ -d "$fixtures/$d" ] || { echo "gpu-pack: $fixtures/$d not found" >&2; exit 2; }
done
if [ "$target" = - ]; then
  built=$(scripts/build-cuda-glibc.sh --tests)
  exe() { awk -F'\t' -v n="$1" '$1 == n { p = $2 } END { print p }' <<< "$built"; }
  bin=$(exe openspliceai-rs) test_bin=$(exe train_step) ops_bin=$(exe device_ops)
else
  bin=$target/release/openspliceai-rs
  [ -x "$bin" ] || { echo "gpu-pack: $bin not found: build the cuda binary first (see .ci/run)" >&2; exit 2; }
  cuda_root=$(scripts/nvcc.sh find)
  [ -n "$cuda_root" ] && export CUDA_ROOT=$cuda_root CUDA_PATH=$cuda_root PATH=$cuda_root/bin:$PATH
  export CARGO_INCREMENTAL=0
  test_binary() { # NAME → path of that integration-test binary of the cuda build (built if missing)
    CARGO_TARGET_DIR=$target cargo test --release --locked --features cuda --no-run --test "$1" \
      --message-format json 2>/dev/null | grep -o "\"executable\":\"[^\"]*$1[^\"]*\"" | tail -1 | cut -d'"' -f4 \
      || true  # a failed build or no match: the [ -x ] check below says so
  }
  test_bin=$(test_binary train_step)
  ops_bin=$(test_binary device_ops)
fi
for t in "$bin" "$test_bin" "$ops_bin"; do
  [ -x "$t" ] || { echo "gpu-pack: could not build the cuda binary and its test binaries (train_step, device_ops)" >&2; exit 2; }
done

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF /.gpu/ "$exclude" 2>/dev/null || echo /.gpu/ >> "$exclude"
rm -rf .gpu && mkdir -p .gpu/fixtures
strip -o .gpu/openspliceai-rs "$bin"
strip -o .gpu/train_step "$test_bin" && gzip -9 .gpu/train_step
strip -o .gpu/device_ops "$ops_bin" && gzip -9 .gpu/device_ops
cp -r "$fixtures/parity" "$fixtures/openspliceai-mane" .gpu/fixtures/
chmod -R u+w .gpu
du -sh .gpu
echo "gpu-pack: .gpu/ ready; on the GPU machine: scripts/gpu-check.sh (device cuda, binaries and fixtures from .gpu/)"
