"""A bounded cache with least-recently-used eviction, for the plan and program caches: a
training loop whose shapes keep changing (a smaller last batch, evaluation at another size,
variable sequence lengths) must not grow them without end.

Each cache reports its size and evictions through `lg.counters` (`cache_entries()`,
`plan_evictions`, `program_evictions`).

Public names: LRUCache.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from lazygrad.counters import counters, register_cache

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Entries up to `limit()` (read at each insertion, so a setting applies at once)."""

    def __init__(self, name: str, limit: Callable[[], int]) -> None:
        self.name = name
        self.limit = limit
        self._d: OrderedDict[K, V] = OrderedDict()
        register_cache(name, self)

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        limit = max(1, self.limit())
        while len(self._d) > limit:
            self._d.popitem(last=False)
            counters.add_eviction(self.name)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        self._d.clear()
