#!/usr/bin/env bash
# CI: the repository stands alone. No comment, doc or script cites a document outside it (the reference
# notes a developer may have beside the clone: SPEC.md, CREATE-DATA.md, PREDICT-VARIANT.md, CANDLE-BUGS.md,
# GPU.md, STYLE.md, DESIGN.md, or any ../shared/*.md), and every relative link in the Markdown files points
# to a file that exists. Test data found beside the clone (../shared/data, ../shared/fixtures) is fine.
# usage: scripts/ci-standalone.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
pattern='(SPEC|CREATE-DATA|PREDICT-VARIANT|CANDLE-BUGS|GPU|STYLE|DESIGN)\.md|shared/[A-Za-z0-9_-]+\.md'
# This script names the documents it looks for; everything else tracked by git is checked.
hits=$(git ls-files -z | grep -zv '^scripts/ci-standalone.sh$' | xargs -0 grep -nE "$pattern" -- 2>/dev/null || true)
if [ -n "$hits" ]; then
  echo "FAIL: these lines cite a document outside the repository (say the fact, or point into docs/):"
  echo "$hits"
  fail=1
fi
python3 - <<'PY' || fail=1
import pathlib, re, subprocess, sys
files = subprocess.check_output(["git", "ls-files", "*.md"], text=True).split()
bad = []
for f in files:
    text = pathlib.Path(f).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path and not (pathlib.Path(f).parent / path).exists():
            bad.append(f"{f}: link to {target}: no such file")
if bad:
    print("FAIL: broken links in Markdown files:")
    print("\n".join(bad))
    sys.exit(1)
PY
[ "$fail" = 0 ] && echo "ci-standalone: ok (no outside document cited; Markdown links resolve)"
exit "$fail"
