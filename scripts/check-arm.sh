#!/usr/bin/env bash
# Runs the CPU path as ARM machines run it (Apple Silicon under Linux, Graviton, Grace: no AVX-512 kernels,
# the portable conv path) here, under emulation: builds the test binaries for aarch64-unknown-linux-gnu with
# Debian's cross toolchain (gcc-aarch64-linux-gnu, which also brings the aarch64 glibc that qemu loads) and
# runs them under qemu-user (qemu-aarch64-static): the forward parity tests of the four sizes against
# PyTorch, the train-step fixture (units 2-3 trained one batch, against PyTorch) and one predict identity case
# against upstream's outputs. The emulated run's time is printed as a curiosity, not as a speed.
#
# The predict test runs the binary whose path cargo baked into it; without a binfmt registration the kernel
# cannot run an aarch64 file, so that path gets a shell wrapper that starts qemu on the real binary (kept
# beside it as openspliceai-rs.aarch64).
#
# usage: scripts/check-arm.sh   (ci-setup.sh installs qemu-user-static and gcc-aarch64-linux-gnu)
#   target dir: $OSAI_ARM_TARGET_DIR [~/.cache/osai-targets/aarch64] (kept between runs)
#   OSAI_ARM_QUICK=1: skip the 10000nt forward parity (the slowest under emulation)
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
export CARGO_TARGET_DIR=${OSAI_ARM_TARGET_DIR:-$HOME/.cache/osai-targets/aarch64}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)

qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$qemu" ] || ! command -v aarch64-linux-gnu-gcc >/dev/null || [ ! -d "$sysroot/lib" ]; then
  echo "check-arm: needs qemu-user-static and gcc-aarch64-linux-gnu (apt-get install; scripts/ci-setup.sh" \
    "installs them): qemu=${qemu:-absent}, aarch64-linux-gnu-gcc=$(command -v aarch64-linux-gnu-gcc || echo absent)" >&2
  exit 1
fi

t0=$(date +%s)
# rustup can refuse a target whose files are already there (a concurrent install): what matters is the std
if ! rustup target add "$target" >/dev/null 2>&1 && [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
  echo "check-arm: rustup target add $target failed and no std for it is installed" >&2
  exit 1
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export QEMU_LD_PREFIX=$sysroot
log=$CARGO_TARGET_DIR/no-run.log
mkdir -p "$CARGO_TARGET_DIR"
cargo test --release --locked --target "$target" --no-run --test parity --test train_step --test predict 2>&1 \
  | tee "$log"
echo "check-arm: build: $(( $(date +%s) - t0 )) s"

test_bin() { # NAME → the test binary cargo just built for tests/NAME.rs
  local b
  b=$(grep -oE "[^ (]*/$target/release/deps/$1-[0-9a-f]+" "$log" | tail -1)
  [ -n "$b" ] || { echo "check-arm: no test binary for tests/$1.rs in $log" >&2; exit 1; }
  echo "$b"
}
parity=$(test_bin parity)
train_step=$(test_bin train_step)
predict=$(test_bin predict)

# The binary the predict test runs: an aarch64 file fresh from cargo goes beside the path, a wrapper takes it.
bin=$CARGO_TARGET_DIR/$target/release/openspliceai-rs
if [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ]; then
  mv -f "$bin" "$bin.aarch64"
fi
printf '#!/bin/sh\n# written by scripts/check-arm.sh: runs the aarch64 binary under qemu\nexec "%s" -L "%s" "%s" "$@"\n' \
  "$qemu" "$sysroot" "$bin.aarch64" >"$bin"
chmod +x "$bin"
file_out=$(file -b "$bin.aarch64" 2>/dev/null || true)
echo "check-arm: the binary: ${file_out:-$bin.aarch64}"

run() { # WHAT BINARY TEST-NAMES... → runs the named tests of BINARY under qemu, prints the time
  local what=$1 b=$2 t1
  shift 2
  t1=$(date +%s)
  echo "-- check-arm: $what (emulated)"
  "$qemu" -L "$sysroot" "$b" --exact "$@"
  echo "check-arm: $what: $(( $(date +%s) - t1 )) s"
}
sizes=(forward_parity_80nt forward_parity_400nt forward_parity_2000nt forward_parity_10000nt)
[ "${OSAI_ARM_QUICK:-0}" = 1 ] && unset 'sizes[3]'
t0=$(date +%s)
run "forward parity vs PyTorch" "$parity" "${sizes[@]}"
run "train step (units 2-3, one batch) vs PyTorch" "$train_step" \
  transfer_step_losses_and_gradients_match_pytorch transfer_step_state_after_adamw_matches_pytorch
run "predict identity vs upstream (400nt)" "$predict" mini_400nt_descriptions_minus_names_and_short_records
echo "check-arm: emulated tests: $(( $(date +%s) - t0 )) s (a curiosity: qemu, not an ARM machine's speed)"
echo "check-arm: all passed in $(( $(date +%s) - start )) s"
