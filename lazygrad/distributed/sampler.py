"""DistributedSampler: each rank's share of a dataset's row indices, for DataLoader(sampler=).

Like torch.utils.data.DistributedSampler: every epoch all ranks draw the same permutation
(seeded by `seed + epoch`, so call `set_epoch(epoch)` at the start of each epoch), the order is
padded by repeating its first indices until it divides evenly (or cut short with
drop_last=True), and rank r takes every `num_replicas`-th index starting at r. So each rank
gets the same number of rows and, without padding, the ranks together cover the dataset
exactly once per epoch.

Public names: DistributedSampler.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from lazygrad.distributed.group import world


class DistributedSampler:
    """The row indices of rank `rank` of `num_replicas` (default: this process's World) for a
    dataset of `dataset` rows (an int, or anything with a length)."""

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        n = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        if n < 0:
            raise ValueError(f"DistributedSampler: dataset size must be >= 0, got {n}")
        if num_replicas is None or rank is None:
            w = world()
            num_replicas = w.size if num_replicas is None else num_replicas
            rank = w.rank if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is not in [0, {num_replicas})")
        self.n, self.num_replicas, self.rank = int(n), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        self.num_samples = self.n // self.num_replicas if drop_last else -(-self.n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of epoch `epoch` (the same on every rank) from the next pass on."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch (int64)."""
        order = (np.random.default_rng(self.seed + self.epoch).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        if self.total_size > self.n and self.n:
            # pad with the order's first indices (repeated if the padding is longer than it)
            order = np.resize(order, self.total_size)
        order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
