#!/usr/bin/env bash
# CI's check of the cold path: runs scripts/ci-setup.sh (the only place .ci/run looks up and installs its
# caches) the way a new machine would meet it, with each cache location pointed at an empty temporary
# directory, and checks that every lookup of a missing cache answers "absent" instead of ending the script,
# and that the installs are reached and leave a working nvcc and Zig. It does not rebuild the cuda binary.
# It downloads the nvcc packages again each run (about 7 s here) and so needs PyPI: without it, CI fails
# here, on purpose (this is the check that the install works on a new machine).
# usage: scripts/ci-cold-path.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: cold path: $*" >&2; exit 1; }

echo "-- lookups of missing caches answer 'absent' and exit 0"
mkdir -p "$tmp/empty" "$tmp/half/lib/python3.11/site-packages/nvidia/cu13/bin"
for venv in "$tmp/none" "$tmp/empty" "$tmp/half"; do
  found=$("$here/scripts/nvcc.sh" find "$venv") || fail "nvcc.sh find $venv exited non-zero"
  [ -z "$found" ] || fail "nvcc.sh find $venv found '$found' in a venv without nvcc"
done

for tool in zig snakemake; do # the other cached venvs: a missing or empty one is "absent" too
  for venv in "$tmp/none" "$tmp/empty"; do
    found=$("$here/scripts/$tool.sh" find "$venv") || fail "$tool.sh find $venv exited non-zero"
    [ -z "$found" ] || fail "$tool.sh find $venv found '$found' in an empty venv"
  done
done

echo "-- scripts/zig.sh ensure into an empty venv: Zig and cargo-zigbuild install and run (a few seconds)"
zbin=$("$here/scripts/zig.sh" ensure "$tmp/cache/osai-zig") || fail "zig.sh ensure into an empty venv failed"
"$zbin/zig" version || fail "the installed zig does not run"
"$zbin/cargo-zigbuild" --version || fail "the installed cargo-zigbuild does not run"
# (Snakemake's install takes minutes; scripts/ci-workflow.sh runs it when its venv is absent.)

echo "-- scripts/ci-setup.sh with OSAI_NVCC_VENV empty: the install step is reached and succeeds"
log=$tmp/setup.log
OSAI_NVCC_VENV=$tmp/cache/osai-nvcc OSAI_CI_SKIP_CUDA=0 "$here/scripts/ci-setup.sh" 2>&1 | tee "$log" \
  || fail "ci-setup.sh exited non-zero"
grep -q "setup: nvcc: installed at" "$log" || fail "ci-setup.sh did not install nvcc into the empty venv"
root=$("$here/scripts/nvcc.sh" find "$tmp/cache/osai-nvcc")
[ -n "$root" ] || fail "no nvcc in $tmp/cache/osai-nvcc after the install"
"$root/bin/nvcc" --version | tail -1 || fail "the installed nvcc does not run"
echo "ci-cold-path: ok"
