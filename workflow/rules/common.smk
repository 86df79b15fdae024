# Settings shared by both workflows: the binary, the device, the output folder, resources per kind of job.
import os
import shutil
import shlex


def _setting(key, default):
    value = config.get(key, default)
    return default if value is None else value


def _binary():
    """The openspliceai-rs binary: config `binary`, else $OPENSPLICEAI_RS, else this checkout's
    target/release/openspliceai-rs when it was built, else `openspliceai-rs` on PATH."""
    named = config.get("binary") or os.environ.get("OPENSPLICEAI_RS")
    built = os.path.join(workflow.basedir, "..", "target", "release", "openspliceai-rs")
    path = named or (built if os.path.exists(built) else shutil.which("openspliceai-rs"))
    if not path or not (os.path.isfile(path) or shutil.which(path)):
        raise WorkflowError(
            f"no openspliceai-rs binary: {named or 'openspliceai-rs'} was not found; set `binary` in the "
            "config (--config binary=PATH) or $OPENSPLICEAI_RS, or build target/release/openspliceai-rs"
        )
    return shlex.quote(os.path.abspath(path) if os.path.isfile(path) else path)


BIN = _binary()
OUT = str(_setting("outdir", "results")).rstrip("/")
DEVICE = str(_setting("device", "cpu"))
# A GPU is asked for (resource `gpu`) only when the device is one.
GPUS = 0 if DEVICE in ("cpu", "auto") else 1
RES = {
    # kind: threads, mem_mb, runtime (minutes); `resources:` in the config overrides any of them.
    "score": {"threads": 4, "mem_mb": 2000, "runtime": 240},
    "merge": {"threads": 1, "mem_mb": 1000, "runtime": 60},
    "create_data": {"threads": 1, "mem_mb": 4000, "runtime": 120},
    "train": {"threads": 4, "mem_mb": 8000, "runtime": 1440},
    "test": {"threads": 4, "mem_mb": 4000, "runtime": 240},
    "report": {"threads": 1, "mem_mb": 1000, "runtime": 20},
}
for _kind, _values in (config.get("resources") or {}).items():
    if _kind not in RES:
        raise WorkflowError(f"config resources: unknown job kind {_kind!r}; expected one of {', '.join(RES)}")
    RES[_kind].update(_values)


def res(kind, key):
    return RES[kind][key]

