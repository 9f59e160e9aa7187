"""The benchmark cases: one table, with full and --quick sizes.

A Case is one row of the results table. ``kind`` says which operation it is (see
workloads.KINDS) and ``params`` its sizes; ``bytes``/``flops`` are the *minimum* traffic and
work, so GB/s and GFLOP/s are effective rates comparable across contenders. Probe cases
(cold start, peak memory) run in fresh subprocesses instead of the timed loop.

Public names: Case, ProbeCase, timed_cases, probe_cases, select.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

M = 1 << 20
F32 = 4


@dataclass(frozen=True)
class Case:
    """A timed case: every contender runs it, interleaved, median of `runs` timings."""

    name: str
    group: str
    kind: str
    params: dict[str, Any]
    bytes: int = 0          # minimum bytes read + written, for GB/s
    flops: int = 0          # useful floating-point operations, for GFLOP/s
    metric: str = "ms"      # what the headline number is: ms | us/call | steps/s
    reps: int = 1           # inner repetitions per timing (for tiny work items)
    tol: float = 1e-3       # allowed relative error vs the float64 reference

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())


@dataclass(frozen=True)
class ProbeCase:
    """A case measured in fresh subprocesses: cold start or peak memory."""

    name: str
    group: str
    probe: str                           # "cold" | "memory"
    workload: str                        # "issue2" | "mlp_step"
    params: dict[str, Any] = field(default_factory=dict)


def _human(n: int) -> str:
    return f"{n // M}M" if n % M == 0 else str(n)


def _chains(n: int) -> list[Case]:
    return [Case(f"chain{length}_{_human(n)}", "elementwise", "chain",
                 {"n": n, "length": length}, bytes=2 * F32 * n, flops=length * n)
            for length in (1, 2, 4, 8, 16)]


def _mlp_flops(batch: int, sizes: list[int]) -> int:
    # forward 2*b*i*o per layer, backward twice that
    return sum(6 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:]))


def timed_cases(quick: bool) -> list[Case]:
    """All timed cases, at quick or full sizes."""
    big = 16 * M
    cases: list[Case] = []
    for n in ((M,) if quick else (M, big)):
        cases += _chains(n)
    issue_n = 4 * M if quick else big
    cases += [
        Case(f"issue2_{_human(issue_n)}", "elementwise", "issue2", {"n": issue_n},
             bytes=2 * F32 * issue_n, flops=12 * issue_n),
        Case(f"x*2+1_{_human(issue_n)}", "elementwise", "copylike", {"n": issue_n},
             bytes=2 * F32 * issue_n, flops=2 * issue_n),
        Case(f"copy_{_human(issue_n)}", "elementwise", "copy", {"n": issue_n},
             bytes=2 * F32 * issue_n),
        Case(f"sum_sq_{_human(issue_n)}", "reduce", "sum_sq", {"n": issue_n},
             bytes=F32 * issue_n, flops=2 * issue_n),
    ]
    for rows, cols in ((4096, 1024), (64, 32768)):
        cases.append(Case(f"softmax_{rows}x{cols}", "rowwise", "softmax", {"shape": [rows, cols]},
                          bytes=2 * F32 * rows * cols, flops=5 * rows * cols))
        cases.append(Case(f"layernorm_{rows}x{cols}", "rowwise", "layernorm",
                          {"shape": [rows, cols]}, bytes=2 * F32 * rows * cols,
                          flops=7 * rows * cols))
    for size in ((256, 512) if quick else (512, 1024, 2048)):
        cases.append(Case(f"matmul_{size}", "matmul", "matmul", {"m": size, "k": size, "n": size},
                          bytes=3 * F32 * size * size, flops=2 * size ** 3,
                          tol=1e-4 * max(1.0, size / 256)))
    epi = 512 if quick else 1024
    cases.append(Case(f"relu(x@w+b)_{epi}", "matmul", "matmul_relu",
                      {"m": epi, "k": epi, "n": epi}, bytes=3 * F32 * epi * epi,
                      flops=2 * epi ** 3 + 2 * epi * epi, tol=1e-4 * max(1.0, epi / 256)))
    cases.append(Case("conv2d_relu_32x3x32x32", "conv", "conv2d_relu",
                      {"x": [32, 3, 32, 32], "w": [16, 3, 3, 3]},
                      bytes=F32 * (32 * 3 * 32 * 32 + 16 * 27 + 32 * 16 * 30 * 30),
                      flops=2 * 32 * 16 * 30 * 30 * 27))
    sizes = [784, 512, 512, 10]
    cases.append(Case("mlp_step_784-512-512-10_b256", "training", "mlp_step",
                      {"sizes": sizes, "batch": 256}, flops=_mlp_flops(256, sizes),
                      metric="steps/s", tol=1e-3))
    cases.append(Case("overhead_realize_16", "overhead", "overhead", {"n": 16},
                      metric="us/call", reps=20 if quick else 100))
    return cases


def probe_cases(quick: bool) -> list[ProbeCase]:
    """Cold-start and peak-memory cases (each contender in fresh subprocesses)."""
    mem_n = 4 * M if quick else 16 * M
    cases = [
        ProbeCase("cold_start_issue2_1M", "cold start", "cold", "issue2", {"n": M}),
        ProbeCase(f"peak_mem_issue2_{_human(mem_n)}", "memory", "memory", "issue2", {"n": mem_n}),
    ]
    if not quick:
        sizes = [784, 512, 512, 10]
        cases += [
            ProbeCase("cold_start_mlp_step", "cold start", "cold", "mlp_step",
                      {"sizes": sizes, "batch": 256}),
            ProbeCase("peak_mem_mlp_step", "memory", "memory", "mlp_step",
                      {"sizes": sizes, "batch": 256}),
        ]
    return cases


def _matches(patterns: list[str], name: str, group: str, kind: str) -> bool:
    return any(fnmatch.fnmatch(name, p) or p in (name, group, kind) or
               (not any(ch in p for ch in "*?[") and p in name) for p in patterns)


def select(cases: list[Any], only: list[str] | None) -> list[Any]:
    """Cases whose name, group or kind matches one of the `only` patterns (glob or substring)."""
    if not only:
        return list(cases)
    return [c for c in cases
            if _matches(only, c.name, c.group, getattr(c, "kind", getattr(c, "probe", "")))]
