"""Probe cases, each measurement in a fresh subprocess: cold start and peak memory.

Cold start: wall time from spawning ``python -m bench.probes`` to the first result of the
workload (interpreter start, imports, graph build, compile, run), without the time spent
making the numpy inputs. "cold" uses empty compile caches (a new XDG_CACHE_HOME,
LAZYGRAD_CACHE_DIR, POCL_CACHE_DIR, tinygrad CACHEDB, inductor dir); "warm" is a second
process on the caches the cold one left behind.

Peak memory: the process's peak RSS (VmHWM, reset after imports and inputs, so it covers
the first step with its compilations and a second step), that baseline, and the peak
extra resident memory *during* the second step (sampled from /proc/self/statm every
millisecond): what one step of the workload needs once everything is compiled.

The child side is ``python -m bench.probes MODE CONTENDER KIND PARAMS_JSON``; it prints one
line ``BENCH_PROBE {json}``.

Public names: run_probe_case, probe_main, PROBE_PREFIX.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.cases import ProbeCase
from bench.contenders.remote import REPO_ROOT
from bench.envsetup import isolated_cache_env

PROBE_PREFIX = "BENCH_PROBE "
PROBE_TIMEOUT_S = 900.0
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------
# child side


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class _PeakSampler:
    """Samples resident memory in a thread until stopped; keeps the maximum."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s, self.peak = interval_s, _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self) -> "_PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _reset_peak() -> None:
    """Restart the VmHWM high-water mark from the current RSS (Linux >= 4.0), so the peak
    excludes whatever happened before (imports, making the inputs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _maxrss_bytes() -> int:
    """Peak resident memory of this process image.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of the
    (large) harness process would report the harness's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def probe_main(argv: list[str]) -> dict[str, Any]:
    """Run one probe in this (fresh) process and return its measurements."""
    mode, name, kind, params = argv[0], argv[1], argv[2], json.loads(argv[3])
    t_spawn = float(os.environ.get("BENCH_SPAWN_TIME", time.time()))
    t_main = time.time()
    from bench.contenders import BY_NAME
    from bench.workloads import make_inputs
    contender = BY_NAME[name]
    t_inputs = time.time()
    arrays = make_inputs(kind, params, 0)
    inputs_s = time.time() - t_inputs
    t_import = time.time()
    lib_version = contender.version()  # imports the library
    import_s = time.time() - t_import
    baseline = _rss_bytes()
    _reset_peak()
    t_first = time.time()
    prepared = contender.prepare(kind, params, warmup=1, arrays=arrays, count_kernels=False)
    first_s = time.time() - t_first
    result: dict[str, Any] = {
        "version": lib_version,
        "to_first_result_ms": (time.time() - t_spawn - inputs_s) * 1e3,
        "interpreter_ms": (t_main - t_spawn) * 1e3,
        "import_ms": import_s * 1e3,
        "first_step_ms": first_s * 1e3,
    }
    if mode == "memory":
        before = _rss_bytes()
        with _PeakSampler() as sampler:
            prepared.time_once(1)
        result.update({
            "maxrss_mb": _maxrss_bytes() / 2**20,   # VmHWM since the baseline
            "baseline_mb": baseline / 2**20,
            "peak_over_baseline_mb": (_maxrss_bytes() - baseline) / 2**20,
            "step_peak_extra_mb": (sampler.peak - before) / 2**20,
            "inputs_mb": sum(a.nbytes for a in arrays.values()) / 2**20,
        })
    return result


# ---------------------------------------------------------------------------------------
# parent side


def _spawn(mode: str, contender: Any, kind: str, params: dict[str, Any],
           extra_env: dict[str, str], log: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(contender.env)
    env.update(extra_env)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
    env["BENCH_SPAWN_TIME"] = repr(time.time())
    proc = subprocess.run(
        [sys.executable, "-m", "bench.probes", mode, contender.name, kind, json.dumps(params)],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"### {mode} {contender.name} {kind} {params} rc={proc.returncode}\n")
            f.write(proc.stdout[-4000:] + proc.stderr[-4000:] + "\n")
    for line in proc.stdout.splitlines():
        if line.startswith(PROBE_PREFIX):
            return json.loads(line[len(PROBE_PREFIX):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"probe exited with code {proc.returncode}: {tail[:300]}")


def _median_of(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _cold(case: ProbeCase, contender: Any, runs: int, log: Path | None) -> dict[str, Any]:
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
            env = isolated_cache_env(Path(tmp))
            cold.append(_spawn("cold", contender, case.workload, case.params, env, log))
            warm.append(_spawn("cold", contender, case.workload, case.params, env, log))
    out: dict[str, Any] = {"status": "ok", "runs": runs, "cold": cold, "warm": warm}
    for key in ("to_first_result_ms", "import_ms", "first_step_ms", "interpreter_ms"):
        out[f"cold_{key}"] = _median_of(cold, key)
        out[f"warm_{key}"] = _median_of(warm, key)
    return out


def _memory(case: ProbeCase, contender: Any, runs: int, log: Path | None) -> dict[str, Any]:
    samples = [_spawn("memory", contender, case.workload, case.params, {}, log)
               for _ in range(runs)]
    out: dict[str, Any] = {"status": "ok", "runs": runs, "samples": samples}
    for key in ("maxrss_mb", "baseline_mb", "peak_over_baseline_mb", "step_peak_extra_mb",
                "inputs_mb"):
        out[key] = _median_of(samples, key)
    return out


def run_probe_case(case: ProbeCase, contender: Any, runs: int,
                   log: Path | None = None) -> dict[str, Any]:
    """One contender's cold-start or memory result for `case` ('n/a' on failure)."""
    if case.workload not in contender.builders():
        return {"status": "skip", "error": f"{contender.name} has no {case.workload} implementation"}
    try:
        if case.probe == "cold":
            return _cold(case, contender, runs, log)
        return _memory(case, contender, runs, log)
    except Exception as e:
        text = f"{type(e).__name__}: {e}"
        return {"status": "n/a", "error": text[:300]}


def _child() -> None:
    result = probe_main(sys.argv[1:])
    sys.stdout.write(PROBE_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _child()
