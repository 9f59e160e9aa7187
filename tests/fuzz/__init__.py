"""A differential fuzzer for lazygrad: seeded random programs checked against numpy and torch.

Each program (tests/fuzz/program.py) mixes elementwise ops, casts, reductions, movement ops,
indexing, matmul and conv2d over 0-4-D inputs with odd, size-1 and size-0 dims and special
values; every op comes from one table (tests/fuzz/ops.py) that holds its lazygrad expression,
numpy reference, torch reference and domain. A program is checked fused and unfused against
its float64 numpy reference, its gradient against torch float64, and ops torch refuses must
raise (tests/fuzz/check.py). A failure is shrunk to a minimal reproducer (tests/fuzz/shrink.py).

    python -m tests.fuzz --seed 0 --count 200     # programs 0..199
    python -m tests.fuzz --minutes 30             # until the time is up, from a random seed

Program k of a run with --seed S has seed S + k: `--seed S+k --count 1` replays it alone.

Public names: run, Stats, generate, check_program, shrink, reproducer.
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .check import Failure, Outcome, check_batch, check_program
from .program import Program, generate
from .shrink import reproducer, shrink


BATCH = 8           # programs realized together (one schedule, one OpenCL program build)
UNFUSED_EVERY = 3   # programs whose seed is a multiple of this are also checked unfused


@dataclass
class Stats:
    programs: int = 0
    forward: int = 0       # programs whose fused values were checked
    unfused: int = 0       # ... and whose unfused values were checked
    grad: int = 0          # programs whose gradients were checked against torch
    errors: int = 0        # ops torch refuses that lazygrad refused too
    elements: int = 0
    seconds: float = 0.0
    failures: list[tuple[int, Failure, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"fuzz: {self.programs} programs in {self.seconds:.1f} s: {self.forward} forward "
                f"({self.unfused} also unfused), {self.grad} gradient, {self.errors} error checks, "
                f"{self.elements} values compared, {len(self.failures)} failures")


def _checked(ps: list[Program], seeds: list[int], unfused: bool, check_refs: bool) -> list:
    """check_batch, and where the checking itself raises (a reference torch refuses in a way
    the harness did not expect), each program alone, the one that raises failing as
    "harness" with its traceback, so a soak run reports it and goes on instead of dying."""
    marks = [unfused and s % UNFUSED_EVERY == 0 for s in seeds]
    try:
        return check_batch(ps, marks, check_refs)
    except Exception:  # noqa: BLE001 - any exception of the harness is a finding
        outs = []
        for p, u in zip(ps, marks):
            try:
                outs.append(check_program(p, u, check_refs))
            except Exception as e:  # noqa: BLE001
                out = Outcome()
                out.failure = Failure("harness", "", f"the fuzzer raised {type(e).__name__}: {e}".splitlines()[0][:300],
                                      type(e).__name__)
                out.failure.traceback = traceback.format_exc()  # type: ignore[attr-defined]
                outs.append(out)
        return outs


def run(seed: int = 0, count: int | None = None, minutes: float | None = None, unfused: bool = True,
        shrink_failures: bool = True, stop_after: int | None = 1, log: Callable[[str], None] = print,
        check_refs: bool = False) -> Stats:
    """Check programs seed, seed+1, ... (`count` of them, or for `minutes`). A failure is
    shrunk and printed as a reproducer; stops after `stop_after` failures (None: never)."""
    stats = Stats()
    t0 = time.monotonic()
    k = 0
    while True:
        n = BATCH if count is None else min(BATCH, count - k)
        if n <= 0 or (minutes is not None and time.monotonic() - t0 > minutes * 60):
            break
        seeds = list(range(seed + k, seed + k + n))
        k += n
        ps = [generate(s) for s in seeds]
        # every program fused; a third of them unfused as well (LAZYGRAD_FUSE=0 runs one kernel
        # per primitive: many kernels, each costing PoCL a compile at its first launch)
        outs = _checked(ps, seeds, unfused, check_refs)
        for s, p, out in zip(seeds, ps, outs):
            stats.programs += 1
            stats.forward += out.forward
            stats.unfused += out.unfused
            stats.grad += out.grad
            stats.errors += out.error
            stats.elements += out.elements
            if out.failure is None:
                continue
            f = out.failure
            log(f"fuzz: seed {s} FAILED ({f.kind}): {f.message}")
            if getattr(f, "traceback", None) and (f.kind.endswith("raised") or f.kind == "harness"):
                log(f.traceback)  # type: ignore[attr-defined]
            small = (shrink(p, f, log=log) if shrink_failures and not f.kind.startswith("batch") and f.kind != "harness"
                     else p)
            repro = reproducer(small, f.kind, f.message)
            log(f"--- reproducer (seed {s}, {len(small.instrs)} ops) ---\n{repro}\n---")
            stats.failures.append((s, f, repro))
        if stop_after is not None and len(stats.failures) >= stop_after:
            break
    stats.seconds = time.monotonic() - t0
    return stats


__all__ = ["run", "Stats", "generate", "check_program", "shrink", "reproducer", "Program"]
