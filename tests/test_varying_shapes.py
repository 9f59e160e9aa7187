"""A training loop whose batch size changes every step keeps memory bounded: the plan and
program caches stay within their budgets (least recently used entries go, counted in
lg.counters) and live device buffers stay flat after warm-up."""
from __future__ import annotations

import numpy as np

import lazygrad as lg
from lazygrad import Tensor, config, nn, optim
from lazygrad.counters import counters
from lazygrad.runtime.lru import LRUCache


def test_lru_cache_evicts_the_least_recently_used():
    c: LRUCache[str, int] = LRUCache("plan", lambda: 2)
    before = counters.plan_evictions
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1          # a is now the most recent
    c.put("c", 3)                   # b goes
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2
    assert counters.plan_evictions == before + 1


def test_varying_batch_sizes_keep_caches_and_buffers_bounded():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = optim.SGD(model.parameters(), lr=0.05)
    sizes = [int(s) for s in rng.choice([3, 5, 8, 13, 21, 34], 120)]   # 6 shapes, budget 4 plans
    dev = lg.device()
    live = []
    with config.override(plan_cache=4, program_cache=12):
        ev0 = counters.plan_evictions
        for i, b in enumerate(sizes):
            X = Tensor(rng.standard_normal((b, 12)).astype(np.float32))
            y = Tensor(rng.integers(0, 3, b))
            loss = model(X).cross_entropy(y)
            opt.zero_grad()
            loss.backward()
            opt.step(loss)
            assert np.isfinite(loss.item())
            entries = counters.cache_entries()
            assert entries["plan"] <= 4 and entries["program"] <= 12, entries
            if i >= 30:
                live.append(dev.pool.live_buffers)
        assert counters.plan_evictions > ev0           # the budget really was used
    assert max(live) <= min(live) + 8, (min(live), max(live))  # flat after warm-up
