#!/usr/bin/env python3
"""cargo's JSON messages (--message-format json) on stdin -> NAME<TAB>PATH of each executable it built, one per
line: the one reader of cargo's output for scripts/build-cuda-glibc.sh and scripts/gpu-check.sh."""
import json
import sys

for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"] + "\t" + m["executable"])
