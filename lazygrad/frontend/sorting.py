"""Sorting: sort, argsort, topk, msort-style helpers, on the SORT node's own kernel.

A SORT node sorts the rows of its last axis (the front end moves `dim` there), stable, NaN
the largest value like torch; it yields the values or the indices (int64 like torch's; the
kernel counts ranks in int and stores long). Its kernel is a rank count (templates/sort.cl.j2):
one work-item per element, O(n) over its row, written at its rank, no host round trip. Rows past graph.MERGE_FROM
are merge sorted instead (O(n log n), a kernel per merge level). `sort` of a row is that
one kernel for the values (one more for the indices); topk is a sort cut to its first k.
The gradient of the values is the scatter of the incoming gradient to the indices.

Public names: sort, argsort, topk, SortResult.
"""
from __future__ import annotations

from typing import NamedTuple

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.frontend.tensor import Tensor, _norm_axis
from typing import Any


class SortResult(NamedTuple):
    """torch's (values, indices) pair of sort and topk."""

    values: Tensor
    indices: Tensor


def _key_dtype(x: Tensor, op: str) -> dt.DType:
    """The dtype the kernel compares in: bools as ints, half as float (both exact)."""
    if x.dtype is dt.bool_:
        return dt.default_int
    if x.dtype is dt.float16:
        return dt.float32
    return x.dtype


# Rows up to graph.MERGE_FROM long are one rank-counting kernel. Longer rows of keys up to 32
# bits are merge sorted (graph.merge_sort_keys): every key packed with its position into one
# unique int64, ordered like torch's stable sort, O(n log n) in 1 + log2(n / 256) kernels (a row
# of 1M was 10^12 compares, ~20 min here). 64-bit keys have no room for the position and keep
# the rank count.


def _packed_keys(key: Tensor, descending: bool) -> Tensor:
    """(..., n) keys of at most 32 bits -> unique int64s in torch's stable sort order: the key's
    order-preserving 32-bit image in the high half, its position in the low half. NaN is one
    NaN (the largest value), -0.0 is 0.0 (torch sorts them as equal, keeping their order)."""
    if key.dtype.is_float:
        k = key.cast(dt.float32)
        k = (k != k).where(float("nan"), k)
        k = (k == 0).where(0.0, k)
        bits = k.bitcast(dt.int32)
        # a float's bits order the non-negative ones; flipping all but the sign orders the rest
        s = (bits >= 0).where(bits, bits ^ 0x7FFFFFFF).cast(dt.int64)
    else:
        s = key.cast(dt.int64)
        if key.dtype is dt.uint32:
            s = s - 2**31
    if descending:
        s = -s - 1
    return s * 2**32 + Tensor.arange(key.shape[-1]).cast(dt.int64)


def _sorted(x: Tensor, dim: int, descending: bool, indices: bool, op: str) -> Tensor:
    if x.ndim == 0:
        return Tensor.zeros((), dtype=dt.index_dtype) if indices else x + (0 if not x.dtype.is_float else 0.0)
    ax = _norm_axis(dim, x.ndim, op)
    key = x.cast(_key_dtype(x, op)).transpose(ax, -1)
    if key.shape[-1] > g.MERGE_FROM and key.dtype.itemsize <= 4:
        keys = Tensor(g.merge_sort_keys(_packed_keys(key, descending).node))
        idx = (keys & 0xFFFFFFFF).cast(dt.index_dtype)
        out = idx if indices else x.transpose(ax, -1).gather(-1, idx)
        return out.transpose(ax, -1)
    node = g.sort(key.node, g.SortArg(bool(descending), indices), dt.index_dtype)
    out = Tensor(node) if indices else Tensor._from(node, key)
    out = out.transpose(ax, -1)
    return out if indices else out.cast(x.dtype)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    """torch.sort: (values, indices) along `dim`. Always stable (equal values keep their order,
    which torch only promises with stable=True); NaN sorts as the largest value."""
    return SortResult(_sorted(x, dim, descending, False, "sort"), _sorted(x, dim, descending, True, "sort"))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """torch.argsort: the indices that sort `x` along `dim` (stable)."""
    return _sorted(x, dim, descending, True, "argsort")


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
    """torch.topk: the k largest (or smallest) values along `dim` and their indices, in sorted
    order (also for sorted=False, which lets torch choose any order); ties by index."""
    n = x.shape[_norm_axis(dim, x.ndim, "topk")] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] (the size of dim {dim} of shape {x.shape}), got {k!r}")
    s = sort(x, dim, descending=largest)
    if x.ndim == 0:
        return s
    ax = _norm_axis(dim, x.ndim, "topk")
    keep = tuple((0, k) if d == ax else (0, size) for d, size in enumerate(x.shape))
    return SortResult(s.values.shrink(keep), s.indices.shrink(keep))


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """torch.sort: (values, indices) along `dim`, stable, on the sort kernel (lazygrad.frontend.sorting)."""
    return sort(self, dim, descending, stable)


def _method_argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """torch.argsort: the indices that sort the tensor along `dim` (stable)."""
    return argsort(self, dim, descending, stable)


def _method_topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """torch.topk: (values, indices) of the k largest (smallest) entries along `dim`."""
    return topk(self, k, dim, largest, sorted)


TENSOR_METHODS = {"sort": _method_sort, "argsort": _method_argsort, "topk": _method_topk}
