#!/usr/bin/env python3
"""Compares the F32 tensors two .safetensors files share, with only Python's standard library (the GPU
machine and CI may have no numpy or Rust).

usage: safetensors_diff.py GOT WANT [--keys a,b] [--atol X] [--rtol Y]

For each tensor: max |got - want| and that over max |want|. A tensor passes when every element has
|got - want| <= atol + rtol * max|want|. Prints one line per tensor and a last line
`worst: KEY max_abs=... rel=...`; exit 1 when a tensor fails, a key is missing, or shapes differ.
"""
import argparse
import array
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            continue
        a, b = meta["data_offsets"]
        values = array.array("f")
        values.frombytes(data[a:b])
        if sys.byteorder != "little":
            values.byteswap()
        out[key] = (meta["shape"], values)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("got")
    p.add_argument("want")
    p.add_argument("--keys", help="comma-separated tensor names (default: all F32 tensors of WANT)")
    p.add_argument("--atol", type=float, default=0.0)
    p.add_argument("--rtol", type=float, default=0.0)
    p.add_argument("--quiet", action="store_true", help="print only the worst line")
    args = p.parse_args()
    got, want = load(args.got), load(args.want)
    keys = args.keys.split(",") if args.keys else sorted(want)
    ok = True
    worst = (None, 0.0, 0.0)
    for key in keys:
        if key not in want or key not in got:
            print(f"{key}: missing in {'WANT ' + args.want if key not in want else 'GOT ' + args.got}")
            ok = False
            continue
        (gs, g), (ws, w) = got[key], want[key]
        if gs != ws:
            print(f"{key}: shape {gs} vs {ws}")
            ok = False
            continue
        scale = max((abs(v) for v in w), default=0.0)
        diff = max((abs(a - b) for a, b in zip(g, w)), default=0.0)
        if diff != diff or any(v != v for v in g):
            diff = float("inf")
        rel = diff / scale if scale > 0 else diff
        passed = diff <= args.atol + args.rtol * scale
        ok &= passed
        if not args.quiet:
            print(f"{key}: max_abs={diff:.3e} rel={rel:.3e} {'ok' if passed else 'FAIL'}")
        if worst[0] is None or rel > worst[2]:
            worst = (key, diff, rel)
    print(f"worst: {worst[0]} max_abs={worst[1]:.3e} rel={worst[2]:.3e} {'ok' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
