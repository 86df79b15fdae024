# Sourced by scripts/nvcc.sh, zig.sh and snakemake.sh: the one way this project makes a Python venv used as a
# cache of PyPI tools.
# pip_venv_install VENV PACKAGE... → creates VENV (installing Debian's python3-venv when python3 lacks venv's
# ensurepip) and pip-installs the packages into it; progress goes to stderr.
pip_venv_install() {
  local venv=$1
  shift
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" >&2 && command -v apt-get >/dev/null; then
    # Debian's python3 ships venv's ensurepip separately.
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >&2
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
}
