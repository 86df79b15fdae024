#!/usr/bin/env python3
"""Check the structure of a PyTorch zip checkpoint without PyTorch (standard library only).

Usage: check_pt_structure.py [--torch-load] FILE.pt

Checks that:
  * the archive has a single top-level prefix and exactly one <prefix>/data.pkl;
  * data.pkl only references allowlisted globals (what torch.load(weights_only=True) needs for a state dict);
  * every persistent-id storage ('storage', torch.<T>Storage, key, location, numel) has a <prefix>/data/<key>
    record of exactly numel x element-size bytes;
  * every record's data starts at a multiple of 64 bytes in the file (PyTorch's alignment);
  * <prefix>/byteorder ("little") and <prefix>/version are present.
With --torch-load (needs PyTorch in the running interpreter), also loads the file with
torch.load(FILE, weights_only=True) and checks that it yields a dict of tensors.
Prints "ok: ..." and exits 0, or prints the first problem and exits 1.
"""

import pickletools
import struct
import sys
import zipfile

ALIGNMENT = 64

ALLOWED_GLOBALS = {
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_parameter",
    "torch._utils _rebuild_parameter_with_state",
    "torch device",
    "torch Size",
    "builtins set",
    "builtins frozenset",
    "_codecs encode",
    "torch.serialization _get_layout",
}

STORAGE_SIZES = {
    "FloatStorage": 4,
    "DoubleStorage": 8,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
}


class Problem(Exception):
    pass


def storage_ids(pkl):
    """Yields (storage_class, key, numel) for each persistent id, by symbolically tracking the pickle stack.

    Only the shapes of data torch writes are tracked: strings, ints, globals, MARK/TUPLE and memo round trips;
    anything else becomes an opaque placeholder.
    """
    stack, marks, memo = [], [], {}
    opaque = object()
    for op, arg, _pos in pickletools.genops(pkl):
        name = op.name
        if name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"):
            stack.append(str(arg))
        elif name in ("BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"):
            stack.append(int(arg))
        elif name == "GLOBAL":
            stack.append(("global", arg))
        elif name == "STACK_GLOBAL":
            n, m = stack.pop(), stack.pop()
            stack.append(("global", f"{m} {n}"))
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "TUPLE":
            m = marks.pop()
            items = tuple(stack[m:])
            del stack[m:]
            stack.append(items)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[arg])
        elif name == "BINPERSID":
            pid = stack.pop()
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise Problem(f"unexpected persistent id {pid!r}")
            cls = pid[1]
            if not (isinstance(cls, tuple) and cls[0] == "global" and cls[1].startswith("torch ")):
                raise Problem(f"persistent id names no torch storage class: {pid!r}")
            yield cls[1].split(" ", 1)[1], pid[2], pid[4]
            stack.append(opaque)
        elif name in ("APPENDS", "SETITEMS", "DICT", "LIST", "FROZENSET", "ADDITEMS", "POP_MARK"):
            m = marks.pop()
            del stack[m:]
            if name in ("DICT", "LIST", "FROZENSET"):
                stack.append(opaque)
        elif name in ("SETITEM",):
            del stack[-2:]
        elif name in ("APPEND", "BUILD", "POP"):
            del stack[-1:]
        elif name in ("REDUCE", "NEWOBJ"):
            del stack[-2:]
            stack.append(opaque)
        elif name == "STOP":
            break
        elif name in ("PROTO", "FRAME"):
            pass
        else:
            # EMPTY_DICT, EMPTY_LIST, NONE, NEWTRUE/NEWFALSE, BINFLOAT, BINBYTES, ...: one opaque value.
            stack.append(opaque)


def local_data_offset(raw, header_offset):
    sig, = struct.unpack_from("<I", raw, header_offset)
    if sig != 0x04034B50:
        raise Problem(f"no local file header at offset {header_offset}")
    name_len, extra_len = struct.unpack_from("<HH", raw, header_offset + 26)
    return header_offset + 30 + name_len + extra_len


def check(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise Problem(f"not a zip archive: {e}")
    infos = zf.infolist()
    names = [i.filename for i in infos]
    prefixes = {n.split("/", 1)[0] for n in names}
    if len(prefixes) != 1 or any("/" not in n for n in names):
        raise Problem(f"expected a single archive prefix, found {sorted(prefixes)}")
    prefix = prefixes.pop()
    pkls = [n for n in names if n.endswith("/data.pkl")]
    if pkls != [f"{prefix}/data.pkl"]:
        raise Problem(f"expected exactly {prefix}/data.pkl, found {pkls}")
    for required, expected in (("byteorder", b"little"), ("version", None)):
        rec = f"{prefix}/{required}"
        if rec not in names:
            raise Problem(f"missing record {rec}")
        if expected is not None and zf.read(rec) != expected:
            raise Problem(f"{rec} is {zf.read(rec)!r}, expected {expected!r}")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise Problem(f"record {info.filename} is compressed (PyTorch writes stored records)")
        off = local_data_offset(raw, info.header_offset)
        if off % ALIGNMENT != 0:
            raise Problem(f"record {info.filename}: data at offset {off} is not {ALIGNMENT}-byte aligned")
    pkl = zf.read(f"{prefix}/data.pkl")
    for op, arg, pos in pickletools.genops(pkl):
        if op.name == "GLOBAL" and arg not in ALLOWED_GLOBALS:
            module, _, attr = arg.partition(" ")
            if not (module == "torch" and attr in STORAGE_SIZES):
                raise Problem(f"data.pkl references the non-allowlisted global {arg!r} at byte {pos}")
        if op.name == "STACK_GLOBAL":
            raise Problem(f"data.pkl uses STACK_GLOBAL at byte {pos} (torch state dicts use GLOBAL)")
    n = 0
    seen = set()
    for cls, key, numel in storage_ids(pkl):
        if cls not in STORAGE_SIZES:
            raise Problem(f"storage {key} has unsupported type torch.{cls}")
        rec = f"{prefix}/data/{key}"
        if rec not in names:
            raise Problem(f"storage record {rec} is missing")
        size = zf.getinfo(rec).file_size
        want = numel * STORAGE_SIZES[cls]
        if size != want:
            raise Problem(f"storage record {rec} holds {size} bytes, expected {numel} x {cls} = {want}")
        seen.add(rec)
        n += 1
    extra = sorted(r for r in names if r.startswith(f"{prefix}/data/") and r not in seen)
    if extra:
        raise Problem(f"records not referenced by data.pkl: {extra[:5]}")
    if zf.testzip() is not None:
        raise Problem(f"CRC mismatch in record {zf.testzip()}")
    return f"{path}: prefix {prefix!r}, {n} storages, {len(names)} records, all {ALIGNMENT}-byte aligned"


def torch_load(path):
    import torch  # only with --torch-load

    obj = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise Problem(f"torch.load returned {type(obj).__name__}, not a dict of tensors")
    return f"torch {torch.__version__} loads {len(obj)} tensors with weights_only=True"


def main(argv):
    args = argv[1:]
    with_torch = "--torch-load" in args
    args = [a for a in args if a != "--torch-load"]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = args[0]
    try:
        msg = check(path)
        if with_torch:
            msg += "; " + torch_load(path)
    except ImportError as e:
        print(f"error: --torch-load needs PyTorch in this interpreter: {e}")
        return 1
    except Problem as e:
        print(f"error: {path}: {e}")
        return 1
    except (OSError, ValueError, KeyError, IndexError, struct.error) as e:
        print(f"error: {path}: {type(e).__name__}: {e}")
        return 1
    print(f"ok: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
