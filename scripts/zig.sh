#!/usr/bin/env bash
# Zig (the C cross-compiler for the C parts: zlib, mimalloc, minimap2) and cargo-zigbuild, both from PyPI, in a
# Python venv used as a cache: the one place that looks them up and installs them (the macOS type-check, the
# ARM, static and old-glibc builds call this; nothing else spells the layout).
#
# usage: scripts/zig.sh find|ensure [VENV]
#   find    prints the venv's bin directory (it holds `zig`, a wrapper that runs the PyPI zig, and
#           `cargo-zigbuild`) when both are there; prints nothing and exits 0 when they are not
#   ensure  the same, but installs them into VENV first when absent; exit 1 when the install fails
# VENV defaults to $OSAI_ZIG_VENV, else ~/.cache/osai-zig. Progress goes to stderr, the directory to stdout.
set -euo pipefail
# shellcheck source=scripts/pip-venv.sh
. "$(dirname "$0")/pip-venv.sh"

packages=("ziglang==0.13.*" "cargo-zigbuild==0.20.*")

find_bin() { # VENV → its bin directory when zig and cargo-zigbuild are there, else nothing
  if [ -x "$1/bin/zig" ] && [ -x "$1/bin/cargo-zigbuild" ]; then
    echo "$1/bin"
  fi
  return 0
}

install() { # VENV → installs the packages and the `zig` wrapper (about 50 MB the first time)
  echo "zig.sh: installing zig and cargo-zigbuild from PyPI into $1" >&2
  pip_venv_install "$1" "${packages[@]}"
  printf '#!/bin/sh\nexec "%s/bin/python3" -m ziglang "$@"\n' "$1" >"$1/bin/zig"
  chmod +x "$1/bin/zig"
}

cmd=${1:-}
venv=${2:-${OSAI_ZIG_VENV:-$HOME/.cache/osai-zig}}
case $cmd in
  find) find_bin "$venv" ;;
  ensure)
    bin=$(find_bin "$venv")
    if [ -z "$bin" ]; then
      install "$venv" || { echo "zig.sh: the install into $venv failed" >&2; exit 1; }
      bin=$(find_bin "$venv")
      [ -n "$bin" ] || { echo "zig.sh: installed, but no zig or cargo-zigbuild in $venv/bin" >&2; exit 1; }
    fi
    echo "$bin"
    ;;
  *) echo "usage: scripts/zig.sh find|ensure [VENV]" >&2; exit 2 ;;
esac
