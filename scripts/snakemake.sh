#!/usr/bin/env bash
# Snakemake 9 and its SLURM executor plugin from PyPI, in a Python venv used as a cache: the one place that
# looks them up and installs them (scripts/ci-workflow.sh calls this; nothing else spells the layout).
#
# usage: scripts/snakemake.sh find|ensure [VENV]
#   find    prints the venv's bin directory (it holds `snakemake`) when snakemake and the slurm plugin are
#           there; prints nothing and exits 0 when they are not (a missing or half-made VENV is not an error)
#   ensure  the same, but installs them into VENV first when absent; exit 1 when the install fails
# VENV defaults to $OSAI_SNAKEMAKE_VENV, else ~/.cache/osai-snakemake. Progress goes to stderr, the
# directory to stdout.
set -euo pipefail
# shellcheck source=scripts/pip-venv.sh
. "$(dirname "$0")/pip-venv.sh"

packages=("snakemake==9.*" "snakemake-executor-plugin-slurm==2.*")

find_bin() { # VENV → its bin directory when snakemake and the plugin are importable there, else nothing
  if [ -x "$1/bin/snakemake" ] &&
    "$1/bin/python3" -c 'import snakemake_executor_plugin_slurm' >/dev/null 2>&1; then
    echo "$1/bin"
  fi
  return 0
}

install() { # VENV → installs the packages (about 60 MB the first time)
  echo "snakemake.sh: installing snakemake and snakemake-executor-plugin-slurm from PyPI into $1" >&2
  pip_venv_install "$1" "${packages[@]}"
}

cmd=${1:-}
venv=${2:-${OSAI_SNAKEMAKE_VENV:-$HOME/.cache/osai-snakemake}}
case $cmd in
  find) find_bin "$venv" ;;
  ensure)
    bin=$(find_bin "$venv")
    if [ -z "$bin" ]; then
      install "$venv" || { echo "snakemake.sh: the install into $venv failed" >&2; exit 1; }
      bin=$(find_bin "$venv")
      [ -n "$bin" ] || { echo "snakemake.sh: installed, but no snakemake with the slurm plugin in $venv" >&2; exit 1; }
    fi
    echo "$bin"
    ;;
  *) echo "usage: scripts/snakemake.sh find|ensure [VENV]" >&2; exit 2 ;;
esac
