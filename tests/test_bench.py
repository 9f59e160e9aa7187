"""`python -m bench --quick` runs and produces well-formed results (not a speed test)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
