#!/usr/bin/env bash
# Installs what .ci/run needs beyond Rust, each piece only when it is absent, so that the first run on a new
# machine and every later one take the same path. Nothing here may end the run because a cache is missing:
# a piece that cannot be installed is reported, and the step that needs it says SKIP (or fails under CI).
#   - libhdf5-dev and pkg-config (Debian): the libhdf5 differential test (`--features libhdf5`)
#   - bedtools (Debian): `predict`'s BED checked by `bedtools getfasta` (tests/predict_bed.rs)
#   - tabix and bcftools (Debian): `variant -O x.vcf.gz` read back by tabix and bcftools
#   - qemu-user-static and gcc-aarch64-linux-gnu (Debian): the ARM run under emulation (scripts/check-arm.sh)
#   - nvcc 13.0 from PyPI in the venv $OSAI_NVCC_VENV [~/.cache/osai-nvcc]: the `cuda` build (scripts/nvcc.sh)
# Cargo's own caches (~/.cargo/registry, target/, target/cuda) are created by cargo itself.
# usage: scripts/ci-setup.sh   (OSAI_CI_SKIP_CUDA=1: no nvcc)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

t0=$(date +%s)
if pkg-config --exists hdf5 2>/dev/null; then
  echo "setup: libhdf5-dev: present"
elif command -v apt-get >/dev/null; then
  echo "setup: libhdf5-dev: installing (apt-get)"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libhdf5-dev pkg-config) \
    >/dev/null 2>&1; then
    echo "setup: libhdf5-dev: installed in $(( $(date +%s) - t0 )) s"
  else
    echo "warning: setup: could not install libhdf5-dev and pkg-config with apt-get"
  fi
else
  echo "warning: setup: no apt-get: libhdf5-dev must be installed by hand for the differential test"
fi

if command -v bedtools >/dev/null; then
  echo "setup: bedtools: present"
elif command -v apt-get >/dev/null; then
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bedtools) >/dev/null 2>&1; then
    echo "setup: bedtools: installed"
  else
    echo "warning: setup: could not install bedtools with apt-get"
  fi
else
  echo "warning: setup: no apt-get: bedtools must be installed by hand for predict's BED test"
fi

if command -v tabix >/dev/null && command -v bcftools >/dev/null; then
  echo "setup: tabix, bcftools: present"
elif command -v apt-get >/dev/null; then
  echo "setup: tabix, bcftools: installing (apt-get)"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tabix bcftools) \
    >/dev/null 2>&1; then
    echo "setup: tabix, bcftools: installed"
  else
    echo "warning: setup: could not install tabix and bcftools with apt-get"
  fi
else
  echo "warning: setup: no apt-get: tabix and bcftools must be installed by hand for the BGZF VCF test"
fi

if command -v qemu-aarch64-static >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null; then
  echo "setup: qemu-user-static, gcc-aarch64-linux-gnu: present"
elif command -v apt-get >/dev/null; then
  echo "setup: qemu-user-static, gcc-aarch64-linux-gnu: installing (apt-get)"
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static \
    gcc-aarch64-linux-gnu) >/dev/null 2>&1; then
    echo "setup: qemu-user-static, gcc-aarch64-linux-gnu: installed"
  else
    echo "warning: setup: could not install qemu-user-static and gcc-aarch64-linux-gnu with apt-get"
  fi
else
  echo "warning: setup: no apt-get: qemu-user-static and gcc-aarch64-linux-gnu must be installed by hand" \
    "for the ARM run"
fi

if [ "${OSAI_CI_SKIP_CUDA:-0}" = 1 ]; then
  echo "setup: nvcc: not needed (OSAI_CI_SKIP_CUDA=1)"
  exit 0
fi
t1=$(date +%s)
had=$("$here/scripts/nvcc.sh" find)
if root=$("$here/scripts/nvcc.sh" ensure); then
  if [ -n "$had" ]; then
    echo "setup: nvcc: present at $root"
  else
    echo "setup: nvcc: installed at $root in $(( $(date +%s) - t1 )) s"
  fi
else
  echo "warning: setup: could not install nvcc from PyPI"
fi
