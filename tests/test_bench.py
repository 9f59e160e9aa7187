"""`python -m bench --quick` runs and produces well-formed results (not a speed test)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_produces_wellformed_results(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, env={**os.environ, "TQDM_DISABLE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    md = (tmp_path / "latest-quick.md").read_text()
    data = json.loads((tmp_path / "latest-quick.json").read_text())
    assert (tmp_path / "latest-quick_chain.png").stat().st_size > 1000
    assert data["meta"] and data["cases"]
    names = {c["name"] for c in data["cases"]}
    assert any(n.startswith("chain") for n in names) and any("softmax" in n for n in names)
    for case in data["cases"]:
        res = case["results"]
        assert {"numpy", "lazygrad"} <= set(res), case["name"]
        for contender, r in res.items():
            assert r["status"] in ("ok", "n/a", "error", "skip"), (case["name"], contender, r)
            if r["status"] == "ok":
                assert r["median_ms"] > 0
        if res["lazygrad"]["status"] == "ok":
            assert res["lazygrad"].get("check") == "ok", (case["name"], res["lazygrad"])
    chain = next(c for c in data["cases"] if c["name"].startswith("chain"))
    assert chain["results"]["lazygrad"]["kernels"] == 1
    assert "lazygrad" in md and "numpy" in md



def test_harness_times_each_contender_hot_after_its_idle_pause(monkeypatch):
    """Each timed step follows untimed steps of the same contender (the steps right after the
    idle pause pay for the cores waking up); only the timed, hot steps enter the median."""
    sys.path.insert(0, str(ROOT))
    import bench.harness as harness
    from bench.cases import Case
    from bench.contenders.base import Contender, Runnable

    idle: dict[str, bool] = {}

    def contender(name: str, hot_s: float) -> Contender:
        def build(p, a) -> Runnable:
            def step():
                time.sleep(0.05 if idle.get(name, True) else hot_s)  # slow after a pause
                idle[name] = False
                return a["x"]
            return Runnable(step, count_kernels=lambda: 1)
        return Contender(name, builders=lambda: {"copy": build}, version=lambda: "0")

    real_sleep = time.sleep

    def pause(s: float) -> None:  # the harness's settle pause puts every contender to sleep
        idle.clear()
        real_sleep(s)
    monkeypatch.setattr(harness.time, "sleep", pause)
    res = harness.run_timed_case(Case("t", "g", "copy", {"n": 64}), [contender("a", 0.002), contender("b", 0.006)],
                                 harness.Settings(quick=True, runs=3, warmup=1, settle_s=0.001))
    assert res["a"]["runs"] == res["b"]["runs"] == 3
    assert res["a"]["max_ms"] < 40 and res["b"]["max_ms"] < 40, res   # no step right after a pause
    assert res["a"]["median_ms"] < res["b"]["median_ms"]
