"""Data types: what a tensor element is on the host (numpy) and on the device (OpenCL C).

Public names: DType, bool_, int32, int64, float16, float32, float64, DTYPES, as_dtype,
promote, default_float, default_int, sum_dtype, least_upper_float.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=True)
class DType:
    """An element type. `priority` orders the promotion lattice bool < ints < floats."""

    name: str
    np: type
    cl: str  # OpenCL C scalar type used in registers
    cl_store: str  # OpenCL C type used in buffers (bool is stored as uchar)
    itemsize: int
    priority: int
    is_float: bool
    is_int: bool

    def __repr__(self) -> str:
        return f"lg.{self.name}"

    def __hash__(self) -> int:
        # every graph node's intern key holds a dtype: the name's cached hash instead of a
        # fresh hash of all eight fields (equal dtypes have equal names)
        return hash(self.name)

    def __reduce__(self) -> tuple:
        # copy, deepcopy and pickle give back the module's object: stages compare dtypes by
        # identity (`dt is bool_`), and an equal copy hash-conses with the real one, so a cast
        # to a pickled bool rendered as an int cast (0.5 -> False) for every user of that node
        return (as_dtype, (self.name,))

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype of this element type (host arrays)."""
        return np.dtype(self.np)


bool_ = DType("bool", np.bool_, "int", "uchar", 1, 0, False, False)
int32 = DType("int32", np.int32, "int", "int", 4, 2, False, True)
int64 = DType("int64", np.int64, "long", "long", 8, 3, False, True)
float16 = DType("float16", np.float16, "half", "half", 2, 5, True, False)
float32 = DType("float32", np.float32, "float", "float", 4, 6, True, False)
float64 = DType("float64", np.float64, "double", "double", 8, 7, True, False)

DTYPES: dict[str, DType] = {d.name: d for d in (bool_, int32, int64, float16, float32, float64)}
default_float = float32
default_int = int32

# numpy dtypes that have no direct lazygrad type map to the nearest one that holds them
_NP_TO_DTYPE: dict[np.dtype, DType] = {
    np.dtype(np.bool_): bool_,
    np.dtype(np.int8): int32, np.dtype(np.int16): int32, np.dtype(np.int32): int32,
    np.dtype(np.uint8): int32, np.dtype(np.uint16): int32,
    np.dtype(np.int64): int32, np.dtype(np.uint32): int64, np.dtype(np.uint64): int64,
    np.dtype(np.float16): float16, np.dtype(np.float32): float32, np.dtype(np.float64): float32,
}


def as_dtype(d: object) -> DType:
    """Accept a DType, its name, a numpy dtype or a Python type and return the DType."""
    if isinstance(d, DType):
        return DTYPES.get(d.name, d)  # the module's object, not an equal copy (see __reduce__)
    if isinstance(d, str) and d in DTYPES:
        return DTYPES[d]
    if d is bool:
        return bool_
    if d is int:
        return default_int
    if d is float:
        return default_float
    try:
        npd = _native(np.dtype(d))  # type: ignore[call-overload]
    except TypeError as e:
        raise TypeError(f"dtype: {d!r} is not a data type lazygrad knows") from e
    if npd == np.float64:
        return float64
    if npd == np.int64:
        return int64
    if npd in _NP_TO_DTYPE:
        return _NP_TO_DTYPE[npd]
    raise TypeError(f"dtype: numpy dtype {npd} has no lazygrad equivalent")


def from_numpy_array_dtype(npd: np.dtype) -> DType:
    """Dtype a numpy array becomes on a device without fp64: float64 → float32, and int64 →
    int32 (lazygrad's default int), unless asked explicitly. With fp64, the Tensor layer keeps
    float64 (like torch.tensor)."""
    if npd.kind not in "biuf":
        raise TypeError(f"Tensor: numpy array of dtype {npd} is not numeric")
    return _NP_TO_DTYPE.get(_native(npd), float32)


def _native(npd: np.dtype) -> np.dtype:
    """The same dtype in native byte order: '>i4' (big-endian data from a file) is an int32
    too, not an unknown dtype that falls back to float32."""
    return npd.newbyteorder("=") if npd.byteorder not in ("=", "|") else npd


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op on two tensors (PyTorch's lattice)."""
    return a if a.priority >= b.priority else b


# a sum (and cumsum) of bools or int32 counts in int64, like torch: int32 overflows at 2**31
_SUM_DTYPE: dict[str, DType] = {"bool": int64, "int32": int64}


def sum_dtype(d: DType) -> DType:
    """Dtype a sum over elements of dtype `d` accumulates in and returns (torch's rule)."""
    return _SUM_DTYPE.get(d.name, d)


def least_upper_float(d: DType) -> DType:
    """Dtype of a float-valued op (exp, division, mean) applied to `d`."""
    return d if d.is_float else default_float
