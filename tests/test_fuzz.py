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


def test_a_harness_error_fails_its_program_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # a soak run died on a RuntimeError of the torch gradient reference (conv2d of a zero-width
    # input, which torch refuses): the run now checks the batch's programs alone, fails the one
    # that raises as "harness" with its traceback, and goes on
    import fuzz
    from fuzz import check

    real = fuzz.check_program

    def batch(*args, **kwargs):
        raise RuntimeError("a batch's reference raised")

    def alone(p, unfused=True, check_refs=False):
        if p is programs[1]:
            raise RuntimeError("Only zero batch or zero channel inputs are supported")
        return real(p, unfused, check_refs)

    programs: list = []
    generate = fuzz.generate

    def generated(seed: int):
        programs.append(generate(seed))
        return programs[-1]

    monkeypatch.setattr(fuzz, "generate", generated)
    monkeypatch.setattr(fuzz, "check_batch", batch)
    monkeypatch.setattr(fuzz, "check_program", alone)
    lines: list[str] = []
    stats = run(0, 3, stop_after=None, shrink_failures=False, log=lines.append)
    assert stats.programs == 3 and stats.forward == 2
    assert [(s, f.kind) for s, f, _ in stats.failures] == [(1, "harness")]
    assert any("zero channel" in line for line in lines)
    # and torch refusing a program's gradient means no gradient reference, not a crash
    monkeypatch.setattr(check, "evaluate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("refused")))
    assert check.torch_grads(programs[0], None) is None


def test_a_float64_leaf_through_a_float32_result_is_compared_at_float32_rounding() -> None:
    # soak seed 974916945, after torch's 0-d promotion: minimum(float32 tensor, float64 0-d) is
    # float32, so the 0-d leaf's gradient is a float32 sum (torch float32's too), off the float64
    # reference by 1e-7 where float64's eps allowed 6e-8
    stats = run(974916945, 1, stop_after=None, shrink_failures=False, log=lambda line: None)
    assert stats.grad == 1 and not stats.failures, stats.summary()
