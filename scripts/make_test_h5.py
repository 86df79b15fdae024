#!/usr/bin/env python3
"""Write the small h5py-made HDF5 files under tests/data/ that tests/data.rs reads.

Each file holds the same formula-defined windows (tests/data.rs recomputes them), stored the
ways h5py users store them: contiguous int8 (create-data's own layout), chunked + gzip + shuffle
int8 (HDF5's default and 1.10 'v110' formats), uint8, bool and float32.
Window g (counted over the file), row r of X: inside rows [7000 + 100g, 8200 + 100g) a base
(7r + 3g + r // 5) % 4, except N (all-zero) where (r + g) % 13 == 0; N elsewhere.
Y position p: acceptor (1) where p % 500 == 17g + 3, donor (2) where p % 500 == 250 + g, else 0.

usage: scripts/make_test_h5.py [OUT_DIR]   (default tests/data; needs h5py and numpy)
"""
import os
import sys

import h5py
import numpy as np


def window(g):
    x = np.zeros((15000, 4), np.int8)
    for r in range(7000 + 100 * g, 8200 + 100 * g):
        if (r + g) % 13 != 0:
            x[r, (7 * r + 3 * g + r // 5) % 4] = 1
    lab = np.zeros(5000, np.int64)
    p = np.arange(5000)
    lab[p % 500 == 17 * g + 3] = 1
    lab[p % 500 == 250 + g] = 2
    y = np.zeros((5000, 3), np.int8)
    y[p, lab] = 1
    return x, y


def shards(sizes):
    g = 0
    for n in sizes:
        xs, ys = zip(*(window(g + i) for i in range(n)))
        g += n
        yield np.stack(xs), np.stack(ys)[None]


def write(path, sizes, dtype=np.int8, libver="earliest", **kw):
    with h5py.File(path, "w", libver=libver) as f:
        for i, (x, y) in enumerate(shards(sizes)):
            ykw = dict(kw)
            if "chunks" in kw:
                ykw["chunks"] = (1, 1, 1000, 3)
            f.create_dataset(f"X{i}", data=x.astype(dtype), **kw)
            f.create_dataset(f"Y{i}", data=y.astype(dtype), **ykw)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data")
    os.makedirs(out, exist_ok=True)
    gz = dict(chunks=(1, 1000, 4), compression="gzip", compression_opts=4, shuffle=True)
    write(f"{out}/h5py_contiguous_i8.h5", [1])
    write(f"{out}/h5py_chunked_gzip_shuffle_i8.h5", [3, 2], **gz)
    write(f"{out}/h5py_v110_chunked_gzip_shuffle_i8.h5", [3, 2], libver=("v110", "v110"), **gz)
    write(f"{out}/h5py_chunked_gzip_u8.h5", [2, 1], dtype=np.uint8, chunks=(1, 1000, 4), compression="gzip")
    write(f"{out}/h5py_chunked_gzip_bool.h5", [2], dtype=bool, chunks=(1, 1000, 4), compression="gzip")
    write(f"{out}/h5py_chunked_gzip_shuffle_f32.h5", [2], dtype=np.float32, **gz)
    for name in sorted(os.listdir(out)):
        print(f"{name}: {os.path.getsize(os.path.join(out, name))} bytes")


if __name__ == "__main__":
    main()
