"""torch.utils.data's names: datasets, splits and a DataLoader that batches them into Tensors.

    ds = TensorDataset(Tensor(x), Tensor(y))
    train, val = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(0))
    for xb, yb in DataLoader(train, batch_size=64, shuffle=True, drop_last=True):
        ...

A batch of a TensorDataset (or a Subset of one) is gathered on the host from its arrays in one
step (one upload per batch, not one per sample); other datasets are indexed sample by sample
and their samples stacked (numbers, arrays and Tensors, or tuples/dicts of them).

Public names: Dataset, TensorDataset, Subset, random_split, DataLoader, default_collate.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lazygrad.frontend.tensor import Tensor


class Dataset:
    """A map-style dataset: `__getitem__(i)` and `__len__` (subclass it, like torch's)."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors (or arrays) of one first size."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.arrays = [t.numpy() if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        self.dtypes = [t.dtype if isinstance(t, Tensor) else None for t in tensors]
        n = {len(a) for a in self.arrays}
        if len(n) != 1:
            raise ValueError(f"TensorDataset: tensors of different first sizes {sorted(n)}")

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor(a[index], dtype=d) for a, d in zip(self.arrays, self.dtypes))

    def __len__(self) -> int:
        return len(self.arrays[0])


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Random disjoint Subsets of the given lengths, or fractions summing to 1 (the remainder
    of the rounding goes round-robin to the first ones, like torch); `generator` is a numpy
    Generator or a seed."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and any(0 < f < 1 for f in lengths):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(s) for s in lengths]
    if sum(sizes) != n:
        raise ValueError(f"random_split: lengths {list(lengths)} do not add up to the dataset's {n} samples")
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    perm = rng.permutation(n)
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start:start + s].tolist()))
        start += s
    return out


def default_collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch: Tensors and arrays along a new first dim, numbers
    into a 1-D tensor, tuples and dicts field by field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(f)) for f in zip(*samples))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, Tensor):
        return Tensor(np.stack([s.numpy() for s in samples]), dtype=first.dtype)
    return Tensor(np.stack([np.asarray(s) for s in samples]))


def _tensor_rows(ds: Dataset) -> tuple[TensorDataset, list[int] | None] | None:
    """The TensorDataset under `ds` (through Subsets) and the index map, if there is one."""
    idx: list[int] | None = None
    while isinstance(ds, Subset):
        idx = ds.indices if idx is None else [ds.indices[i] for i in idx]
        ds = ds.dataset
    return (ds, idx) if isinstance(ds, TensorDataset) else None


class DataLoader:
    """Batches of a dataset like torch's DataLoader (batch_size, shuffle, drop_last,
    collate_fn; `generator` a numpy Generator or seed for the shuffle)."""

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Any = None, generator: Any = None, **ignored: Any) -> None:
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.collate_fn = collate_fn
        self.rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        rows = _tensor_rows(self.dataset) if self.collate_fn is None else None
        for b in range(len(self)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            if rows is not None:
                ds, idx = rows
                pick = batch if idx is None else np.asarray(idx)[batch]
                yield tuple(Tensor(a[pick], dtype=d) for a, d in zip(ds.arrays, ds.dtypes))
            else:
                yield (self.collate_fn or default_collate)([self.dataset[int(i)] for i in batch])
