"""A small autotuner: time a handful of candidate kernel configurations once per (device,
shape class) and remember the fastest in an on-disk JSON file next to the program cache.

The caller (codegen) owns what a configuration means: it passes the candidates, a heuristic
default and a function that times one candidate. This module only decides whether to time,
keeps the results, and never lets a failed candidate or an unwritable cache break a run.

LAZYGRAD_TUNE=0 skips timing and returns the heuristic (tests, reproducible builds).

Public names: MatmulConfig, tuning_enabled, choose, cache_path, clear_memory.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lazygrad.version import __version__
from lazygrad.config import settings
from lazygrad.runtime.device import _cache_dir, current_target, get_device


@dataclass(frozen=True)
class MatmulConfig:
    """One tiling of the matmul kernel: each work-item computes an mr x nr block of C with
    vectors of w lanes along N (nr = w * vectors per row), the K loop unrolled ku times;
    work-groups of lx x ly work-items (x over M tiles, y over N tiles)."""

    mr: int
    nr: int
    w: int
    ku: int
    lx: int
    ly: int

    def key(self) -> str:
        return f"{self.mr}x{self.nr}/w{self.w}/u{self.ku}/l{self.lx}x{self.ly}"


def tuning_enabled() -> bool:
    return settings().tune


def cache_path() -> Path:
    return _cache_dir() / "tune.json"


_memory: dict[str, dict] = {}
_loaded = False


def clear_memory() -> None:
    """Forget results held in memory (the disk file is re-read on next use)."""
    global _loaded
    _memory.clear()
    _loaded = False


def _device_key() -> str:
    c = get_device().caps
    # tuned configurations hold vector widths: another target (forced, probed) tunes anew
    return f"{c.name}|{c.driver}|{c.platform}|{__version__}|{current_target().key()}"


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        data = json.loads(cache_path().read_text())
        if isinstance(data, dict):
            _memory.update({k: v for k, v in data.items() if isinstance(v, dict)})
    except (OSError, ValueError):
        pass  # missing or corrupt: tune again


def _save() -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # merge with what other processes wrote meanwhile, then replace atomically
        try:
            on_disk = json.loads(path.read_text())
            if not isinstance(on_disk, dict):
                on_disk = {}
        except (OSError, ValueError):
            on_disk = {}
        on_disk.update(_memory)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-tune-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(on_disk, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache directory keeps results in memory only


def cached(kind: str, shape_class: str, candidates: Sequence[MatmulConfig]) -> MatmulConfig | None:
    """The configuration chosen earlier for this device and shape class, if any."""
    _load()
    hit = _memory.get(f"{kind}|{_device_key()}|{shape_class}")
    by_key = {c.key(): c for c in candidates}
    return by_key.get(hit["best"]) if hit is not None else None


def choose(kind: str, shape_class: str, candidates: Sequence[MatmulConfig], heuristic: MatmulConfig,
           measure: Callable[[MatmulConfig], float]) -> MatmulConfig:
    """The fastest of `candidates` for this device and shape class, timed once with `measure`
    (seconds; may raise) and then read from the cache. With tuning off: `heuristic`."""
    if not tuning_enabled() or len(candidates) <= 1:
        return heuristic
    _load()
    key = f"{kind}|{_device_key()}|{shape_class}"
    by_key = {c.key(): c for c in candidates}
    hit = _memory.get(key)
    if hit is not None and hit.get("best") in by_key:
        return by_key[hit["best"]]
    times: dict[str, float] = {}
    for cand in candidates:
        try:
            times[cand.key()] = float(measure(cand))
        except Exception as e:  # a candidate that does not build or run is just not chosen
            times[cand.key()] = float("inf")
            if settings().debug:
                print(f"[lazygrad] tune {kind} {shape_class}: {cand.key()} failed: {e}", file=sys.stderr)
    best_key = min(times, key=lambda k: times[k])
    if times[best_key] == float("inf"):
        return heuristic
    _memory[key] = {"best": best_key, "times": times, "config": asdict(by_key[best_key])}
    _save()
    if settings().debug:
        summary = ", ".join(f"{k} {t * 1e3:.2f}ms" for k, t in sorted(times.items(), key=lambda kv: kv[1]))
        print(f"[lazygrad] tune {kind} {shape_class}: {summary}", file=sys.stderr)
    return by_key[best_key]
