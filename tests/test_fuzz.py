"""The differential fuzzer (tests/fuzz) on a fixed budget of seeded programs.

FUZZ_COUNT programs (default 200, about 70 s here) are checked fused against numpy, a third of
them unfused too, the gradient programs against torch, and every op torch refuses must raise.
The seeds are fixed per target profile (FUZZ_SEED, or a base derived from LAZYGRAD_TARGET and
LAZYGRAD_FAULT), so each profile of .ci/matrix checks different programs and a failure is
replayed with `python -m tests.fuzz --seed S --count 1` under the same variables.
"""
from __future__ import annotations

import os
import zlib

import pytest

from fuzz import run

DEFAULT_COUNT = 200


def _seed_base() -> int:
    if os.environ.get("FUZZ_SEED"):
        return int(os.environ["FUZZ_SEED"])
    profile = f"{os.environ.get('LAZYGRAD_TARGET', '')}|{os.environ.get('LAZYGRAD_FAULT', '')}"
    return 14_000_000 + (zlib.crc32(profile.encode()) % 1000) * 10_000


def test_fuzz_programs_match_numpy_and_torch(capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("FUZZ_COUNT", DEFAULT_COUNT))
    seed = _seed_base()
    lines: list[str] = []
    stats = run(seed, count, stop_after=1, log=lines.append)
    with capsys.disabled():
        print(f"\n{stats.summary()} (seeds {seed}..{seed + count - 1})")
    assert not stats.failures, "\n".join(lines)
    assert stats.programs == count
    # every program's values were compared (none skipped), and the other checks really ran
    assert stats.forward == count, stats.summary()
    assert stats.unfused >= count // 4, stats.summary()
    assert stats.grad >= count // 4, stats.summary()
