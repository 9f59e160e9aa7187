"""Feeding numpy datasets to training loops: mini-batches and a progress bar.

    loader = DataLoader(X, y, batch_size=64, shuffle=True, seed=0, drop_last=True)
    for epoch in range(3):
        bar = progress(loader, desc=f"epoch {epoch}")
        for xb, yb in bar:
            ...
            bar.log(loss=loss, acc=acc, n=len(yb))   # running averages in the bar

With `sampler=` (e.g. lazygrad.distributed.DistributedSampler) the loader batches the row
indices the sampler gives, in its order, instead of 0..n-1 or its own shuffle.

Float arrays become float32 tensors and integer arrays int32 (the device defaults).
`drop_last=True` keeps every batch the same shape, so a training step has one graph
structure and reuses one cached plan (a short last batch builds and compiles a second one).

Public names: DataLoader, Progress, progress.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from lazygrad.frontend.tensor import Tensor


def _device_array(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    if a.dtype.kind in "iu":
        return a.astype(np.int32, copy=False)
    return a


class DataLoader:
    """Mini-batches of aligned numpy arrays as Tensors (a tuple per batch, or one Tensor when
    given one array). With shuffle, each pass draws a new order from a generator seeded once,
    so a run is reproducible from `seed`. A `sampler` (an iterable of row indices with a
    length, re-iterated every pass) chooses the rows instead, like torch's DataLoader."""

    def __init__(self, *arrays: Any, batch_size: int = 32, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False, sampler: Any = None) -> None:
        if not arrays:
            raise ValueError("DataLoader: give at least one array")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.arrays = [_device_array(np.asarray(a)) for a in arrays]
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"DataLoader: arrays must have the same number of rows, got {[len(a) for a in self.arrays]}")
        self.n = lengths.pop()
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive (the sampler orders the rows)")
        self.batch_size, self.shuffle, self.drop_last, self.sampler = batch_size, shuffle, drop_last, sampler
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        rows = self.n if self.sampler is None else len(self.sampler)
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
            if order.size and (order.min() < 0 or order.max() >= self.n):
                raise IndexError(f"DataLoader: the sampler gave row {int(order.max())} or {int(order.min())}; "
                                 f"the arrays have {self.n} rows")
            return order
        return self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = tuple(Tensor(np.ascontiguousarray(a[idx])) for a in self.arrays)
            yield batch if len(batch) > 1 else batch[0]


class Progress:
    """A tqdm bar over an iterable that shows running averages of logged metrics. Tensor values
    are read (a device sync) only when the bar redraws, not at every step."""

    def __init__(self, iterable: Iterable[Any], desc: str | None = None, total: int | None = None,
                 **tqdm_kwargs: Any) -> None:
        self.bar = tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, **tqdm_kwargs)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}
        self._pending: list[tuple[str, Any, float]] = []
        self._last = 0.0
        self._interval = float(tqdm_kwargs.get("mininterval", 0.1))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.bar)

    def __len__(self) -> int:
        return len(self.bar)

    def log(self, n: float = 1, **metrics: Any) -> None:
        """Add metric values (floats or one-element Tensors) measured on `n` samples."""
        self._pending.extend((k, v, n) for k, v in metrics.items())
        now = time.perf_counter()
        if not self.bar.disable and now - self._last >= self._interval:
            self._last = now
            self._flush()
            self.bar.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in self.averages().items()), refresh=True)

    def _flush(self) -> None:
        for k, v, n in self._pending:
            value = v.item() if isinstance(v, Tensor) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + value * n
            self.counts[k] = self.counts.get(k, 0.0) + n
        self._pending.clear()

    def averages(self) -> dict[str, float]:
        """Running average of every logged metric so far."""
        self._flush()
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def close(self) -> None:
        """Show the final running averages and close the bar."""
        avg = self.averages()
        if avg and not self.bar.disable:
            self.bar.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in avg.items()), refresh=False)
        self.bar.close()


def progress(iterable: Iterable[Any], desc: str | None = None, total: int | None = None, **tqdm_kwargs: Any) -> Progress:
    """Wrap `iterable` in a progress bar; call `.log(loss=..., acc=...)` inside the loop."""
    return Progress(iterable, desc=desc, total=total, **tqdm_kwargs)
