"""Input data for fuzz programs: shapes with odd, size-1 and size-0 dims, and arrays that mix
ordinary numbers with the special values (NaN, +-inf, +-0, denormals, INT_MIN/INT_MAX).

Public names: DTYPES, FLOATS, INTS, random_shape, random_array, special_scalar, np_dtype.
"""
from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float64", "int32", "int64", "uint8", "int8", "int16", "uint32", "bool")
FLOATS = ("float32", "float64")
INTS = ("int32", "int64", "uint8", "int8", "int16", "uint32")

# dims: odd and size-1 on purpose; size-0 on its own (rare: it empties the whole program)
_DIMS = (1, 1, 2, 3, 3, 4, 5, 7)
MAX_NUMEL = 96


def np_dtype(name: str) -> np.dtype:
    return np.dtype({"bool": np.bool_}.get(name, name))


def random_shape(rng: np.random.Generator, ndim: int | None = None, allow_zero: bool = False) -> tuple[int, ...]:
    nd = int(rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])) if ndim is None else ndim
    while True:
        shape = [int(rng.choice(_DIMS)) for _ in range(nd)]
        if allow_zero and nd and rng.random() < 0.5:
            shape[int(rng.integers(nd))] = 0
        if int(np.prod(shape)) <= MAX_NUMEL:
            return tuple(shape)


def _float_specials(d: str) -> list[float]:
    f = np.finfo(np_dtype(d))
    tiny_denormal = float(f.smallest_subnormal)
    return [np.nan, np.inf, -np.inf, 0.0, -0.0, tiny_denormal, -tiny_denormal * 3, float(f.tiny) / 4,
            1.0, -1.0, 0.5, 88.7, -104.0, 1e30, -1e30, float(f.max), float(f.min), 20.0, -20.0]


def _int_specials(d: str) -> list[int]:
    i = np.iinfo(np_dtype(d))
    v = [int(i.min), int(i.max), 0, -1, 1, 2, int(i.max) // 2 + 1, int(i.min) + 1, 7, -7]
    return [x % (1 << i.bits) if i.min == 0 else x for x in v]  # unsigned: -1 is the max, wrapped


def special_scalar(rng: np.random.Generator, d: str, finite: bool = False) -> float | int | bool:
    """One constant of the kind that breaks code paths: NaN, +-inf, +-0, denormals, extremes."""
    if d == "bool":
        return bool(rng.random() < 0.5)
    if d in INTS:
        return int(rng.choice(_int_specials(d)))
    vals = [v for v in _float_specials(d) if not finite or np.isfinite(v)]
    if finite:
        vals = [v for v in vals if abs(v) < 1e4] + [2.0, -3.0, 0.25]
    return float(vals[int(rng.integers(len(vals)))])


def random_array(rng: np.random.Generator, shape: tuple[int, ...], d: str, profile: str) -> np.ndarray:
    """Values for an input of `shape`: profile 'normal' (small numbers), 'special' (normal
    sprinkled with special values), 'finite' (gradient programs: no NaN/inf, but zeros,
    denormals, ties) or 'index' (non-negative small ints)."""
    n = int(np.prod(shape))
    npd = np_dtype(d)
    if d == "bool":
        return (rng.random(n) < 0.5).reshape(shape)
    if d in INTS:
        if profile == "index":
            return rng.integers(0, 4, n).astype(npd).reshape(shape)
        a = rng.integers(-9, 10, n).astype(npd)
        if profile == "special" and n:
            k = rng.random(n) < 0.3
            sp = np.array(_int_specials(d), dtype=npd)
            a[k] = sp[rng.integers(len(sp), size=int(k.sum()))]
        return a.reshape(shape)
    a = rng.standard_normal(n) * float(rng.choice([0.5, 1.0, 3.0]))
    if rng.random() < 0.3:
        a = np.round(a * 2) / 2  # exact halves: ties for max/argmax, exact zeros
    if profile in ("special", "finite") and n:
        k = rng.random(n) < (0.3 if profile == "special" else 0.15)
        sp = [v for v in _float_specials(d) if profile == "special" or (np.isfinite(v) and abs(v) < 30)]
        a[k] = np.array(sp)[rng.integers(len(sp), size=int(k.sum()))]
    return a.astype(npd).reshape(shape)
