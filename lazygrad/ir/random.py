"""Random numbers: a seeded counter that hands each rand() call its own 32-bit key.

The numbers themselves are computed on the device by a keyed integer hash of the element
index (see templates/common.cl.j2), so random tensors are lazy, fuse into their consumers
(dropout is one kernel), and are reproducible after `manual_seed`.

Public names: manual_seed, next_seed, rand_reference.
"""
from __future__ import annotations

import numpy as np

_state = {"seed": 0x1234, "counter": 0}


def manual_seed(seed: int) -> None:
    """Make every following random tensor reproducible."""
    _state["seed"] = int(seed) & 0xFFFFFFFF
    _state["counter"] = 0


def next_seed() -> int:
    _state["counter"] += 1
    x = (_state["seed"] * 0x9E3779B1 + _state["counter"] * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def rand_reference(seed: int, n: int) -> np.ndarray:
    """The same numbers the device computes for flat indices 0..n-1 (for tests and numpy)."""
    with np.errstate(over="ignore"):
        s = np.uint32(seed & 0xFFFFFFFF)
        x = _mix(np.arange(n, dtype=np.uint32) ^ s)
        x = _mix(x ^ (s * np.uint32(0x9E3779B9)))
    return (x >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
