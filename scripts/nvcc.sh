#!/usr/bin/env bash
# nvcc 13.0 from PyPI, in a Python venv used as a cache: the one place that looks it up and installs it
# (.ci/run, scripts/gpu-pack.sh and scripts/ci-cold-path.sh call this; nothing else spells the layout).
#
# usage: scripts/nvcc.sh find|ensure [VENV]
#   find    prints the CUDA root (VENV/lib/python3*/site-packages/nvidia/cu13) when its bin/nvcc is there;
#           prints nothing and exits 0 when it is not (a missing or half-made VENV is not an error)
#   ensure  the same, but installs the packages into VENV first when nvcc is absent; exit 1 when the
#           install fails or leaves no nvcc
# VENV defaults to $OSAI_NVCC_VENV, else ~/.cache/osai-nvcc. Progress goes to stderr, the root to stdout.
set -euo pipefail
# shellcheck source=scripts/pip-venv.sh
. "$(dirname "$0")/pip-venv.sh"

packages=("nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-runtime==13.0.*"
  "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*")

# Every lookup is a glob in a loop, never `ls | head` (which fails under pipefail when nothing matches).
find_root() { # VENV → the CUDA root on stdout, or nothing
  local d
  for d in "$1"/lib/python3*/site-packages/nvidia/cu13; do
    if [ -x "$d/bin/nvcc" ]; then
      echo "$d"
      return 0
    fi
  done
  return 0
}

install() { # VENV → installs the packages (downloads about 0.2 GB into pip's cache the first time)
  echo "nvcc.sh: installing nvcc 13.0 from PyPI into $1" >&2
  pip_venv_install "$1" "${packages[@]}"
}

cmd=${1:-}
venv=${2:-${OSAI_NVCC_VENV:-$HOME/.cache/osai-nvcc}}
case $cmd in
  find) find_root "$venv" ;;
  ensure)
    root=$(find_root "$venv")
    if [ -z "$root" ]; then
      install "$venv" || { echo "nvcc.sh: the install into $venv failed" >&2; exit 1; }
      root=$(find_root "$venv")
      [ -n "$root" ] || { echo "nvcc.sh: installed, but no nvidia/cu13/bin/nvcc in $venv" >&2; exit 1; }
    fi
    echo "$root"
    ;;
  *) echo "usage: scripts/nvcc.sh find|ensure [VENV]" >&2; exit 2 ;;
esac
