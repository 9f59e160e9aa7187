"""Timed cases: prepare every contender, check its answer, then time them interleaved.

For one case all contenders are built and warmed up first (compilation, caches, pools),
each output is checked against the float64 reference, and then the timed runs go round
robin: run r times every contender once, starting one further along each round, so slow
drift of the machine (other load, thermal, page cache) is spread evenly over contenders.
Before each timed run the harness idles `settle_s`, so worker threads that the previous
library leaves spinning (OpenBLAS, OpenMP, PoCL) are asleep and do not share the 2 cores
with the next one, then runs untimed steps of the contender about to be timed for `wake_s`
(the steps right after an idle pause pay for the cores waking up), then the timed step(s):
each contender is timed hot, as in a loop, without the others' threads in the way.

Public names: Settings, run_timed_case, summarize.
"""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.cases import Case
from bench.contenders.base import Unsupported
from bench.workloads import make_inputs, reference, relative_error


@dataclass(frozen=True)
class Settings:
    """How hard to measure."""

    quick: bool
    runs: int                 # timed runs per contender per case (median reported)
    warmup: int               # untimed steps before timing
    seed: int = 0
    budget_s: float = 60.0    # stop timing a contender on a case after this much time
    # idle time before each timed run: lets the previous library's spinning worker threads
    # (OpenBLAS, OpenMP, PoCL) go to sleep, so they do not steal the 2 cores from the next
    settle_s: float = 0.1
    # untimed steps (at least one, for at least this long) right before each timed one: after
    # the idle pause every library runs slower until the cores are back up to speed (on this
    # VM a 2 ms softmax took 5 ms by its own device timer right after 0.1 s of sleep, 3.2 ms
    # after one untimed step, 2.0 ms only after ~35 ms of steps), a cost that would flatten
    # every ratio between fast contenders
    wake_s: float = 0.05


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def summarize(case: Case, times_s: list[float]) -> dict[str, Any]:
    """Median, spread and the derived rates of one contender's timings."""
    med = statistics.median(times_s)
    out: dict[str, Any] = {
        "median_ms": med * 1e3, "min_ms": min(times_s) * 1e3, "max_ms": max(times_s) * 1e3,
        "times_ms": [t * 1e3 for t in times_s], "runs": len(times_s),
    }
    if case.bytes:
        out["gbps"] = case.bytes / med / 1e9
    if case.flops:
        out["gflops"] = case.flops / med / 1e9
    if case.metric == "steps/s":
        out["steps_per_s"] = 1.0 / med
    if case.metric == "us/call":
        out["us_per_call"] = med * 1e6
    return out


def _check(case: Case, prepared: Any, ref: Any) -> dict[str, Any]:
    try:
        err = relative_error(prepared.output(), ref)
    except Exception as e:
        return {"check": "error", "check_error": _error_text(e)}
    return {"rel_err": err, "check": "ok" if err <= case.tol else "MISMATCH"}


def _wake(prepared: Any, seconds: float) -> None:
    """Untimed steps of the contender about to be timed: one, then more until `seconds` passed."""
    if seconds <= 0:
        return
    end = time.perf_counter() + seconds
    prepared.time_once(1)
    while time.perf_counter() < end:
        prepared.time_once(1)


def run_timed_case(case: Case, contenders: list[Any], settings: Settings,
                   on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Results of one case: {contender name: {status, median_ms, ...}}."""
    arrays = make_inputs(case.kind, case.params, settings.seed)
    ref = reference(case.kind, case.params, arrays)
    results: dict[str, dict[str, Any]] = {}
    prepared: dict[str, Any] = {}
    for c in contenders:
        if on_progress:
            on_progress(c.name)
        if not c.supports(case.kind, settings.quick):
            results[c.name] = {"status": "skip", "error": "not run in --quick mode"}
            continue
        t0 = time.perf_counter()
        try:
            p = c.prepare(case.kind, case.params, settings.warmup, settings.seed, arrays=arrays)
        except Unsupported as e:
            results[c.name] = {"status": "skip", "error": _error_text(e)}
            continue
        except Exception as e:  # a missing feature or a crash: n/a, keep going
            results[c.name] = {"status": "n/a", "error": _error_text(e)}
            continue
        prepared[c.name] = p
        results[c.name] = {"status": "ok", "prepare_s": time.perf_counter() - t0,
                           "kernels": p.kernels(), **_check(case, p, ref)}
        if p.kernels() == 0 and results[c.name]["check"] == "ok":
            # a step that launches nothing is being served a memoized result: not a timing
            results[c.name]["check"] = "NO-KERNELS"

    times: dict[str, list[float]] = {name: [] for name in prepared}
    spent: dict[str, float] = {name: 0.0 for name in prepared}
    names = list(prepared)
    for r in range(settings.runs):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name not in prepared or spent[name] > settings.budget_s:
                continue
            if settings.settle_s > 0:
                time.sleep(settings.settle_s)
            try:
                _wake(prepared[name], settings.wake_s)
                t = prepared[name].time_once(case.reps)
            except Exception as e:
                results[name] = {"status": "n/a", "error": _error_text(e)}
                prepared.pop(name).close()
                continue
            times[name].append(t)
            spent[name] += t * case.reps
    for name, p in prepared.items():
        results[name].update(summarize(case, times[name]))
        p.close()
    prepared.clear()
    gc.collect()
    return results
