#!/usr/bin/env bash
# The `cuda` binary for old clusters: `--features cuda`, release, linked by Zig against glibc 2.17 (RHEL/CentOS
# 7 era) with `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`; nvcc 13.0 from scripts/nvcc.sh (as
# .ci/run), Zig and cargo-zigbuild from scripts/zig.sh. Then checks that no dynamic symbol needs a glibc newer
# than 2.17 (`objdump -T`) and that no CUDA library is linked (they are opened at run time).
#
# usage: scripts/build-cuda-glibc.sh [--tests]
#   --tests  also builds the `train_step` and `device_ops` test binaries of the same build (for
#            scripts/gpu-check.sh; checked the same way)
# Target dir: $OSAI_CUDA_TARGET_DIR, else ~/.cache/osai-targets/cuda-glibc217 (kept between runs).
# Progress goes to stderr; stdout gets one line per executable: NAME<TAB>PATH (openspliceai-rs first).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
glibc=2.17
target=x86_64-unknown-linux-gnu
tests=0
for a in "$@"; do
  case $a in
    --tests) tests=1 ;;
    *) echo "build-cuda-glibc: unknown argument $a (see the header of $0)" >&2; exit 2 ;;
  esac
done
fail() { echo "FAIL: build-cuda-glibc: $*" >&2; exit 1; }
export CARGO_TARGET_DIR=${OSAI_CUDA_TARGET_DIR:-$HOME/.cache/osai-targets/cuda-glibc217}
export CARGO_INCREMENTAL=0
cuda_root=$(scripts/nvcc.sh ensure) || fail "no nvcc (scripts/nvcc.sh ensure failed)"
zig_bin=$(scripts/zig.sh ensure) || fail "no Zig (scripts/zig.sh ensure failed)"
export CUDA_ROOT=$cuda_root CUDA_PATH=$cuda_root PATH=$cuda_root/bin:$zig_bin:$PATH
# The target is the host's triple, so pkg-config would hand the build machine's zlib (/usr/include, its
# newer glibc headers) to minimap2-sys, and Zig's glibc 2.17 headers then fail on it; zlib is compiled in.
export ZLIB_NO_PKG_CONFIG=1

executables() { # cargo's JSON messages on stdin → NAME<TAB>PATH of each executable built
  python3 "$here/scripts/cargo-executables.py"
}
t0=$(date +%s)
list=$(cargo zigbuild --release --locked --target "$target.$glibc" --features cuda --message-format json \
  | executables) || fail "cargo zigbuild --target $target.$glibc --features cuda"
if [ "$tests" = 1 ]; then
  list+=$'\n'$(cargo-zigbuild test --release --locked --target "$target.$glibc" --features cuda --no-run \
    --test train_step --test device_ops --message-format json | executables) \
    || fail "cargo zigbuild test --no-run --target $target.$glibc --features cuda"
fi
list=$(awk '!seen[$0]++' <<< "$list") # cargo test names the binary again
echo "build-cuda-glibc: built in $(( $(date +%s) - t0 )) s" >&2

# Each executable: the newest GLIBC_x.y any of its dynamic symbols needs, and no CUDA library linked.
while IFS=$'\t' read -r name path; do
  [ -n "$name" ] || continue
  newest=$(objdump -T "$path" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -1 || true)
  echo "build-cuda-glibc: $name needs glibc $newest at most ($path)" >&2
  [ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -V | tail -1)" = "$glibc" ] \
    || fail "$path needs glibc $newest (> $glibc): $(objdump -T "$path" | grep -E "GLIBC_$newest" | head -3)"
  if objdump -p "$path" | grep -E 'NEEDED' | grep -qiE 'libcu|libnv'; then
    fail "$path links a CUDA library: $(objdump -p "$path" | grep NEEDED | tr -s ' ' | tr '\n' ' ')"
  fi
done <<< "$list"
awk -F'\t' '$1 == "openspliceai-rs"' <<< "$list"
awk -F'\t' '$1 != "openspliceai-rs" && $1 != ""' <<< "$list"
