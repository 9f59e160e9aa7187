"""Standalone measurement (not a `python -m bench` case): the gather kernel against the one-hot
select-and-sum it replaced, for an embedding lookup, and the sort kernel against torch.

    PYTHONPATH=$PWD python bench/gather_lookup.py
"""
from __future__ import annotations

import time

import numpy as np
import torch

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.frontend.indexing import _pick


def best_ms(f, runs: int = 5) -> float:
    f()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3


def main() -> None:
    v, d, t = 10000, 64, 2048
    w = Tensor(np.random.default_rng(0).standard_normal((v, d)).astype(np.float32))
    idx = Tensor(np.random.default_rng(1).integers(0, v, t).astype(np.int32))
    gather = lambda: w[idx].numpy()  # noqa: E731
    onehot = lambda: _pick(w.unsqueeze(0).expand(t, v, d), 1, idx.reshape(t, 1)).numpy()  # noqa: E731
    assert np.array_equal(gather(), onehot())
    print(f"embedding lookup V={v} D={d} T={t}: gather kernel {best_ms(gather):.1f} ms, "
          f"one-hot select+sum {best_ms(onehot, 2):.1f} ms (best of runs, read back included)")
    rows, n = 256, 1024
    a = np.random.default_rng(2).standard_normal((rows, n)).astype(np.float32)
    x, tx = Tensor(a), torch.tensor(a)
    print(f"sort ({rows}, {n}) along the rows: lazygrad {best_ms(lambda: x.sort(1).values.numpy()):.1f} ms, "
          f"torch {best_ms(lambda: tx.sort(1).values.numpy()):.1f} ms")


if __name__ == "__main__":
    main()
