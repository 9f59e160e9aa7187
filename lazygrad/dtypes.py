"""Data types: what a tensor element is on the host (numpy) and on the device (OpenCL C).

Public names: DType, Kind, bool_, uint8, int8, int16, uint32, int32, int64, float16, float32,
float64, DTYPES, as_dtype, promote, PROMOTION, Weight, result_type, scalar_dtype, default_float,
default_int, index_dtype, sum_dtype, least_upper_float, unsigned_cl.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Kind(Enum):
    """The category of a dtype, in promotion order: a binary op's result has the higher kind."""

    BOOL = 0
    INT = 1  # signed and unsigned integers
    FLOAT = 2


@dataclass(frozen=True, eq=True)
class DType:
    """An element type; binary ops promote through PROMOTION (the lattice's join)."""

    name: str
    np: type
    cl: str  # OpenCL C scalar type used in registers
    cl_store: str  # OpenCL C type used in buffers (bool is stored as uchar)
    itemsize: int
    is_float: bool
    is_int: bool
    is_unsigned: bool = False

    @property
    def kind(self) -> Kind:
        """Bool, integer or float: the category promotion compares first."""
        return Kind.FLOAT if self.is_float else Kind.INT if self.is_int else Kind.BOOL

    @property
    def bits(self) -> int:
        """The width in bits (8 for bool, which is stored as a byte)."""
        return 8 * self.itemsize

    def __repr__(self) -> str:
        return f"lg.{self.name}"

    def __hash__(self) -> int:
        # every graph node's intern key holds a dtype: the name's cached hash instead of a
        # fresh hash of all the fields (equal dtypes have equal names)
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


bool_ = DType("bool", np.bool_, "int", "uchar", 1, False, False)
uint8 = DType("uint8", np.uint8, "uchar", "uchar", 1, False, True, True)
int8 = DType("int8", np.int8, "char", "char", 1, False, True)
int16 = DType("int16", np.int16, "short", "short", 2, False, True)
uint32 = DType("uint32", np.uint32, "uint", "uint", 4, False, True, True)
int32 = DType("int32", np.int32, "int", "int", 4, False, True)
int64 = DType("int64", np.int64, "long", "long", 8, False, True)
float16 = DType("float16", np.float16, "half", "half", 2, True, False)
float32 = DType("float32", np.float32, "float", "float", 4, True, False)
float64 = DType("float64", np.float64, "double", "double", 8, True, False)

DTYPES: dict[str, DType] = {d.name: d for d in (bool_, uint8, int8, int16, uint32, int32, int64,
                                                float16, float32, float64)}
default_float = float32
default_int = int32
# the dtype of the indices an op returns (argmax, sort, nonzero, max_pool's return_indices, ...):
# torch's int64, so they compare, promote and serialize like torch's. Kernels still count in int
# where the sizes fit and store int64; every OpenCL full-profile device has 64-bit integers
# (an embedded-profile one without cles_khr_int64 is refused at plan build, Device.supports).
index_dtype = int64

# numpy dtypes that have no direct lazygrad type map to the nearest one that holds them
# (int64 to lazygrad's default int32 unless asked: see from_numpy_array_dtype)
_NP_TO_DTYPE: dict[np.dtype, DType] = {
    np.dtype(np.bool_): bool_,
    np.dtype(np.int8): int8, np.dtype(np.int16): int16, np.dtype(np.int32): int32,
    np.dtype(np.uint8): uint8, np.dtype(np.uint16): int32,
    np.dtype(np.int64): int32, np.dtype(np.uint32): uint32, np.dtype(np.uint64): int64,
    np.dtype(np.float16): float16, np.dtype(np.float32): float32, np.dtype(np.float64): float32,
}


def unsigned_cl(d: DType) -> str:
    """The OpenCL C unsigned type of `d`'s width (integer arithmetic that must wrap is computed
    on it: signed overflow is undefined in OpenCL C)."""
    return _UNSIGNED_CL[d.itemsize]


_UNSIGNED_CL = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}


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


def _int_range(d: DType) -> tuple[int, int]:
    info = np.iinfo(d.np)
    return int(info.min), int(info.max)


# Integers by width, the order a join looks for the smallest that holds both operands' ranges:
# uint8 with int8 is int16, uint32 with any signed int below int64 is int64 (torch's rule for
# uint8, numpy's for uint32, which torch does not promote).
_INT_JOIN_ORDER = (uint8, int8, int16, uint32, int32, int64)
_FLOAT_ORDER = (float16, float32, float64)


def _join(a: DType, b: DType) -> DType:
    """The least upper bound of two dtypes in the promotion lattice: bool below every integer,
    every integer below every float (torch: int64 with float16 is float16), and within a kind
    the smallest dtype that holds both (int64 when no integer holds both ranges)."""
    if a.kind is not b.kind:
        return a if a.kind.value > b.kind.value else b
    if a.kind is Kind.FLOAT:
        return max(a, b, key=_FLOAT_ORDER.index)
    if a.kind is Kind.BOOL:
        return a
    (alo, ahi), (blo, bhi) = _int_range(a), _int_range(b)
    lo, hi = min(alo, blo), max(ahi, bhi)
    return next((d for d in _INT_JOIN_ORDER if _int_range(d)[0] <= lo and hi <= _int_range(d)[1]), int64)


# The promotion table of every pair of dtypes, built once from the lattice's join (the tests
# compare all of it with torch.result_type, and with numpy for uint32).
PROMOTION: dict[tuple[DType, DType], DType] = {
    (a, b): _join(a, b) for a in DTYPES.values() for b in DTYPES.values()}


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op on two tensors of the same weight (PyTorch's lattice; numpy's
    for uint32); `result_type` weighs 0-d tensors and Python scalars."""
    return PROMOTION[(a, b)]


class Weight(Enum):
    """How much an operand's dtype weighs in a binary op's result (torch.result_type's three
    states): a tensor with dims, a 0-d tensor, a Python scalar (bool, int, float)."""

    TENSOR = 0
    ZERO_DIM = 1
    SCALAR = 2


# A Python scalar's dtype in promotion: torch wraps an int as int64 and a float as the
# default float (float32); the tensor's dtype still wins within its kind (see result_type)
_SCALAR_DTYPE: dict[type, DType] = {bool: bool_, int: int64, float: default_float}


def scalar_dtype(v: object) -> DType:
    """The dtype a Python (or numpy) scalar takes part in promotion with."""
    if isinstance(v, (bool, np.bool_)):
        return _SCALAR_DTYPE[bool]
    if isinstance(v, (int, np.integer)):
        return _SCALAR_DTYPE[int]
    if isinstance(v, (float, np.floating)):
        return _SCALAR_DTYPE[float]
    raise TypeError(f"scalar_dtype: {type(v).__name__} is not a bool, int or float")


def result_type(*operands: tuple[DType, Weight]) -> DType:
    """The result dtype of an op on operands given as (dtype, weight), torch.result_type's rule:
    the operands of each weight are joined in the lattice (PROMOTION); then, from the heaviest
    down, a lighter group decides only if its kind is higher (bool < int < float), and then its
    own join is the result. So float32 with a 0-d float64 is float32, uint8 with a 0-d int64
    uint8, bool with an int scalar int64, but int32 with a 0-d float64 float64 and int32 with
    a float scalar float32 (the scalar's dtype is the default float)."""
    joined: dict[Weight, DType] = {}
    for d, w in operands:
        joined[w] = PROMOTION[(joined[w], d)] if w in joined else d
    if not joined:
        raise ValueError("result_type: no operands")
    out: DType | None = None
    for w in Weight:  # heaviest first: a dimensioned tensor, a 0-d one, a scalar
        d = joined.get(w)
        if d is not None and (out is None or d.kind.value > out.kind.value):
            out = d
    assert out is not None
    return out


# a sum (and cumsum, prod) of bools or integers counts in int64, like torch: int32 overflows
# at 2**31 (uint32 too: torch's sum of uint32 is int64)
_SUM_DTYPE: dict[str, DType] = {d.name: int64 for d in (bool_, uint8, int8, int16, uint32, int32)}


def sum_dtype(d: DType) -> DType:
    """Dtype a sum over elements of dtype `d` accumulates in and returns (torch's rule)."""
    return _SUM_DTYPE.get(d.name, d)


def least_upper_float(d: DType) -> DType:
    """Dtype of a float-valued op (exp, division, mean) applied to `d`."""
    return d if d.is_float else default_float
