"""python -m tests.fuzz --seed S --count N | --minutes M  (see tests/fuzz/__init__.py)."""
from __future__ import annotations

import argparse
import os
import random
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    ap.add_argument("--seed", type=int, default=None, help="first program seed (default: 0, or random with --minutes)")
    ap.add_argument("--count", type=int, default=None, help="number of programs (default 100)")
    ap.add_argument("--minutes", type=float, default=None, help="run until this many minutes have passed")
    ap.add_argument("--no-unfused", action="store_true", help="skip the LAZYGRAD_FUSE=0 runs")
    ap.add_argument("--no-shrink", action="store_true", help="print failures without shrinking them")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    ap.add_argument("--check-refs", action="store_true", help="also check the torch program against the numpy one")
    a = ap.parse_args(argv)
    if a.count is None and a.minutes is None:
        a.count = 100
    seed = a.seed if a.seed is not None else (0 if a.minutes is None else random.randrange(10**9))
    os.environ.setdefault("LAZYGRAD_CHECK_INDEX", "1")
    from . import run
    print(f"fuzz: first seed {seed}", flush=True)
    stats = run(seed, a.count, a.minutes, unfused=not a.no_unfused, shrink_failures=not a.no_shrink,
                stop_after=None if (a.keep_going or a.minutes is not None) else 1,
                log=lambda s: print(s, flush=True), check_refs=a.check_refs)
    print(stats.summary())
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
