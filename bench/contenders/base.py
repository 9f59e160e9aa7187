"""The contract between the harness and a contender.

A contender module provides, per kind, a *builder*: ``builder(params, arrays) -> Runnable``.
Building converts the numpy inputs into the contender's own tensors (not timed) and returns
a Runnable whose ``step()`` does one complete operation, including waiting for the device,
and returns the contender-native result. The harness times ``step()``.

Public names: Runnable, Builder, Unsupported, Contender, Prepared, LocalPrepared.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bench.workloads import Arrays, Params, make_inputs


class Unsupported(Exception):
    """The contender has no implementation of this kind (shown as '—', not as a failure)."""


@dataclass
class Runnable:
    """One prepared operation.

    step: runs the op to completion (device synchronized) and returns the native result.
    to_numpy: converts a native result to numpy (for the correctness check, not timed).
    count_kernels: runs step once and returns how many kernels it launched, or None.
    check_first: check the result of the very first step rather than a later one (a
      training step checks the first loss, before warm-up updates change the weights).
    """

    step: Callable[[], Any]
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    count_kernels: Callable[[], int | None] | None = None
    check_first: bool = False


Builder = Callable[[Params, Arrays], Runnable]


class Prepared(Protocol):
    """A contender ready to time one case (local or in a worker subprocess)."""

    def time_once(self, reps: int) -> float:
        """Seconds per operation, averaged over `reps` back-to-back operations."""
        ...

    def output(self) -> np.ndarray: ...

    def kernels(self) -> int | None: ...

    def close(self) -> None: ...


@dataclass
class LocalPrepared:
    """A Runnable warmed up in this process."""

    runnable: Runnable
    _kernels: int | None = None
    _last: Any = None
    _first: np.ndarray | None = None

    def time_once(self, reps: int) -> float:
        step = self.runnable.step
        t0 = time.perf_counter()
        for _ in range(reps):
            # drop the previous result first: a hash-consing lazy library (lazygrad) would
            # otherwise find the identical, still-alive graph already realized and do nothing
            self._last = None
            self._last = step()
        return (time.perf_counter() - t0) / reps

    def output(self) -> np.ndarray:
        if self._first is not None:
            return self._first
        if self._last is None:
            self._last = self.runnable.step()
        return np.asarray(self.runnable.to_numpy(self._last))

    def kernels(self) -> int | None:
        return self._kernels

    def close(self) -> None:
        self.runnable = None  # type: ignore[assignment]
        self._last = None


@dataclass
class Contender:
    """A named set of builders, one per supported kind.

    version: returns the library version string (imported lazily).
    quick_kinds: kinds run in --quick mode (None = all); expensive compilers opt out.
    env: extra environment; a contender with env (or remote=True) runs in a worker process.
    """

    name: str
    builders: Callable[[], dict[str, Builder]]
    version: Callable[[], str]
    description: str = ""
    quick_kinds: frozenset[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    remote: bool = False

    def supports(self, kind: str, quick: bool) -> bool:
        return not (quick and self.quick_kinds is not None and kind not in self.quick_kinds)

    def prepare(self, kind: str, params: Params, warmup: int, seed: int = 0,
                arrays: Arrays | None = None, count_kernels: bool = True) -> LocalPrepared:
        """Build, warm up (compiles, caches, allocator pools) and count kernels.

        warmup is the number of untimed steps (at least one, which also checks it runs)."""
        table = self.builders()
        if kind not in table:
            raise Unsupported(f"{self.name} has no {kind} implementation")
        arrays = make_inputs(kind, params, seed) if arrays is None else arrays
        runnable = table[kind](params, arrays)
        prepared = LocalPrepared(runnable)
        for i in range(max(warmup, 1)):
            prepared._last = None
            prepared._last = runnable.step()
            if i == 0 and runnable.check_first:
                prepared._first = np.asarray(runnable.to_numpy(prepared._last))
        if count_kernels and runnable.count_kernels is not None:
            prepared._last = None
            try:
                prepared._kernels = runnable.count_kernels()
            except Exception:  # kernel counts are informative only
                prepared._kernels = None
        return prepared
