#!/usr/bin/env bash
# The static Linux binary: `x86_64-unknown-linux-musl`, release, default features (mimalloc as the global
# allocator, minimap2 included; the same CPU features as the glibc build: baseline x86-64, the AVX-512
# kernels chosen at run time), built with Zig as the C compiler and linker (scripts/zig.sh). Then checks
# that `ldd` finds no dynamic dependency, that mimalloc is the allocator at run time, and runs `quickstart`
# with it; packs dist/openspliceai-rs-VERSION-x86_64-linux-musl.tar.gz (binary, LICENSEs, README).
#
# usage: scripts/build-static.sh [--no-quickstart] [--no-tar]
# Target dir: $OSAI_MUSL_TARGET_DIR, else ~/.cache/osai-targets/musl (kept: a warm rebuild takes seconds).
# Prints the binary's path on its last line. Needs rustup (to add the target) and PyPI (Zig, once).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target=x86_64-unknown-linux-musl
quickstart=1
tar=1
for a in "$@"; do
  case $a in
    --no-quickstart) quickstart=0 ;;
    --no-tar) tar=0 ;;
    *) echo "build-static: unknown argument $a (see the header of $0)" >&2; exit 2 ;;
  esac
done
fail() { echo "FAIL: build-static: $*" >&2; exit 1; }
export CARGO_TARGET_DIR=${OSAI_MUSL_TARGET_DIR:-$HOME/.cache/osai-targets/musl}
export CARGO_INCREMENTAL=0

if command -v rustup >/dev/null; then
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
fi
zig_bin=$(scripts/zig.sh ensure) || fail "no Zig (scripts/zig.sh ensure failed)"
export PATH=$zig_bin:$PATH

t0=$(date +%s)
cargo zigbuild --release --locked --target "$target" || fail "cargo zigbuild --target $target"
echo "build-static: built in $(( $(date +%s) - t0 )) s"
bin=$CARGO_TARGET_DIR/$target/release/openspliceai-rs

echo "-- ldd $bin"
# glibc's ldd says "not a dynamic executable" (static) or "statically linked" (static-pie); either is fine,
# a list of libraries is not.
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "$ldd_out"
grep -qE 'not a dynamic executable|statically linked' <<< "$ldd_out" || fail "$bin is not static"
if command -v file >/dev/null; then file "$bin"; fi
"$bin" --version || fail "$bin does not run"

echo "-- mimalloc is the global allocator"
# mimalloc prints its statistics at exit when asked; the Rust heap's allocations show up there only when
# mimalloc serves them (musl's own malloc is several times slower for the tensors' churn).
# A small bench run allocates tens of MiB of tensors: mimalloc's arenas must have committed MiB (or GiB).
stats=$(MIMALLOC_SHOW_STATS=1 "$bin" bench -f 80 --batch-size 2 --reps 1 --device cpu 2>&1 >/dev/null || true)
committed=$(awk '$1 == "committed" && $2 == ":" { print $3, $4; exit }' <<< "$stats")
grep -qE '^(MiB|GiB)$' <<< "${committed#* }" \
  || fail "mimalloc committed no MiB of memory (MIMALLOC_SHOW_STATS=1 says '${committed:-nothing}'): is it the global allocator?"
echo "mimalloc is the allocator: its arenas committed $committed (peak) for a small bench run"

if [ "$quickstart" = 1 ]; then
  echo "-- quickstart with the static binary"
  qs=$(mktemp -d)
  trap 'rm -rf "$qs"' EXIT
  "$bin" quickstart --device cpu --dir "$qs/quickstart" || fail "quickstart"
fi

if [ "$tar" = 1 ]; then
  version=$("$bin" --version | awk '{ print $2 }')
  name=openspliceai-rs-$version-x86_64-linux-musl
  stage=$CARGO_TARGET_DIR/dist/$name
  rm -rf "$stage" && mkdir -p "$stage" dist
  strip -o "$stage/openspliceai-rs" "$bin" 2>/dev/null || cp "$bin" "$stage/openspliceai-rs"
  cp LICENSE-APACHE LICENSE-MIT README.md "$stage/"
  tar -C "$(dirname "$stage")" -czf "dist/$name.tar.gz.tmp" "$name"
  mv "dist/$name.tar.gz.tmp" "dist/$name.tar.gz"
  echo "build-static: packed dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1))"
fi
echo "$bin"
