"""Process-wide counters of what the runtime did (`lg.counters`).

Public names: Counters, counters.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class Counters:
    """What ran since the last reset(). kernel_time is seconds of device time, summed from
    profiling events (only counted while timing is on: LAZYGRAD_DEBUG>=2 or counters.timing)."""

    kernels_launched: int = 0
    programs_compiled: int = 0
    cache_hits: int = 0          # programs loaded from the in-memory or on-disk cache
    disk_cache_hits: int = 0
    schedule_cache_hits: int = 0
    schedules_built: int = 0
    realizes: int = 0
    bytes_moved: int = 0
    flops: int = 0
    kernel_time: float = 0.0
    compile_time: float = 0.0
    buffers_allocated: int = 0
    buffers_reused: int = 0
    width_fallbacks: int = 0     # kernels rebuilt narrower after a failed build (target.py)
    row_fusion_retries: int = 0  # schedules redone because lowering refused a row fusion: a scheduler bug
    plan_evictions: int = 0      # plans dropped by the plan cache's LRU budget
    program_evictions: int = 0   # built programs dropped from the in-memory program cache
    timing: bool = field(default=False, repr=False)

    def reset(self) -> None:
        timing = self.timing
        for f in fields(self):
            setattr(self, f.name, f.default)
        self.timing = timing

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timing"}

    def add_eviction(self, cache: str) -> None:
        name = f"{cache}_evictions"
        setattr(self, name, getattr(self, name) + 1)

    @staticmethod
    def cache_entries() -> dict[str, int]:
        """Entries held right now by each bounded cache (plans, programs)."""
        return {name: len(c) for name, c in _caches.items()}


_caches: dict[str, object] = {}


def register_cache(name: str, cache: object) -> None:
    _caches[name] = cache


counters = Counters()
