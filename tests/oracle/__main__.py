"""`python -m tests.oracle --update` rewrites corpus.json; without it, prints the differences."""
from __future__ import annotations

import argparse
import json

from tests.oracle.capture import CORPUS, capture
from tests.oracle.compare import differences


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.oracle")
    ap.add_argument("--update", action="store_true", help="rewrite tests/oracle/corpus.json")
    ns = ap.parse_args()
    now = capture()
    if ns.update:
        CORPUS.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"wrote {CORPUS}: {len(now)} programs, {sum(map(len, now.values()))} kernels")
        return 0
    diffs = differences(json.loads(CORPUS.read_text()), now)
    print("\n".join(diffs) or "identical")
    return 1 if diffs else 0


raise SystemExit(main())
