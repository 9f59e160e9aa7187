"""Reliability (issue 8): a long training run does not grow memory and is deterministic.

2,000 steps of a small MLP (plain Tensor ops with dropout, loss.backward(), a manual SGD update
realized together with the loss every step). Measured: host memory (Python objects alive,
tracemalloc over the last 200 steps, RSS), device memory (live lazygrad Buffers and their
bytes, the pool, device allocations), the plan and program caches; and a second run in a fresh
process with the same seed must give bit-identical losses and weights.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = 2000
WARMUP = 200          # plans built, programs compiled, pool filled
TRACE_FROM = STEPS - 200
SAMPLE_EVERY = 50

pytestmark = pytest.mark.slow

_TRAIN = r'''
def train(steps, seed, probe=None):
    """SGD on a 8-16-1 MLP with dropout; returns sampled losses and the final weights."""
    import numpy as np
    import lazygrad as lg
    from lazygrad import Tensor
    lg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = Tensor(rng.normal(size=(32, 8)).astype(np.float32))
    Y = Tensor(np.sin(rng.normal(size=(32, 1))).astype(np.float32))
    params = [Tensor.randn(8, 16, requires_grad=True), Tensor.zeros(16, requires_grad=True),
              Tensor.randn(16, 1, requires_grad=True), Tensor.zeros(1, requires_grad=True)]
    losses = []
    for step in range(steps):
        w1, b1, w2, b2 = params
        h = (X @ w1 * 0.35 + b1).relu()
        h = (Tensor.rand(32, 16) > 0.1).where(h * (1 / 0.9), 0.0)      # dropout: device RNG
        loss = ((h @ w2 * 0.25 + b2 - Y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.assign(p.detach() - 0.05 * p.grad)
        lg.realize(loss, *params)                                      # one realize per step
        if step % 50 == 0 or step == steps - 1:
            losses.append(loss.item())
        if probe is not None:
            probe(step)
    return losses, [p.numpy() for p in params]
'''
exec(_TRAIN)  # noqa: S102 - the same code runs here and in the second process


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def long_run() -> dict:
    import lazygrad as lg
    from lazygrad.runtime.device import memory_stats

    samples: dict[int, dict] = {}
    gc.collect()
    # buffers other test modules still hold (module-level tensors, caches): not this run's
    samples[-1] = dict(memory_stats())

    def probe(step: int) -> None:
        if step == TRACE_FROM:
            gc.collect()
            tracemalloc.start()
        if step in (WARMUP, TRACE_FROM, STEPS - 1):
            gc.collect()
            c = lg.counters
            samples[step] = dict(objects=len(gc.get_objects()), rss=_rss(), **memory_stats(),
                                 allocated=c.buffers_allocated, schedules=c.schedules_built,
                                 compiled=c.programs_compiled,
                                 traced=tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0)

    try:
        losses, params = train(STEPS, seed=0, probe=probe)  # noqa: F821 - defined by exec above
    finally:
        tracemalloc.stop()
    return dict(losses=losses, params=params, samples=samples)


def test_training_makes_progress(long_run: dict) -> None:
    losses = long_run["losses"]
    assert len(losses) == STEPS // SAMPLE_EVERY + 1 and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses[::8]


def test_no_host_memory_growth(long_run: dict) -> None:
    s = long_run["samples"]
    warm, mid, end = s[WARMUP], s[TRACE_FROM], s[STEPS - 1]
    # Python objects alive: a leaked graph per step would add thousands
    assert end["objects"] - warm["objects"] < 200, (warm["objects"], end["objects"])
    # bytes allocated by Python over the last 200 steps and still held (tracemalloc); a leaked
    # step graph is ~20 KB, so 200 steps of leaking would hold MBs (measured: ~60 KB, mostly the
    # node-interning dict's table being resized)
    assert end["traced"] - mid["traced"] < 256_000, end["traced"] - mid["traced"]
    assert end["rss"] - warm["rss"] < 16 << 20, (warm["rss"], end["rss"])


def test_no_device_memory_growth(long_run: dict) -> None:
    s = long_run["samples"]
    warm, end = s[WARMUP], s[STEPS - 1]
    for k in ("live_buffers", "live_bytes", "pooled_buffers", "pooled_bytes"):
        assert end[k] == warm[k], (k, warm[k], end[k])
    assert end["allocated"] == warm["allocated"]     # every buffer after warm-up came from the pool
    # weights, grads' inputs, data: not one per step (11 in a process of its own; counted from
    # what was alive before the run, since earlier test modules may keep buffers of their own)
    assert end["live_buffers"] - s[-1]["live_buffers"] < 40


def test_caches_are_steady(long_run: dict) -> None:
    s = long_run["samples"]
    assert s[STEPS - 1]["schedules"] == s[WARMUP]["schedules"]
    assert s[STEPS - 1]["compiled"] == s[WARMUP]["compiled"]


def test_second_process_gives_identical_results(long_run: dict, tmp_path: Path) -> None:
    script = _TRAIN + (
        "\nimport json, sys\nlosses, params = train(%d, seed=0)\n"
        "print(json.dumps({'losses': losses, 'params': [p.tobytes().hex() for p in params]}))\n" % STEPS)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other["losses"] == long_run["losses"]                          # bit-identical floats
    assert other["params"] == [p.tobytes().hex() for p in long_run["params"]]


def test_different_seed_differs(long_run: dict) -> None:
    losses, _ = train(60, seed=1)  # noqa: F821
    assert losses[:2] != long_run["losses"][:2]
