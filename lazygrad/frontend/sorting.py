"""Sorting: sort, argsort, topk, msort-style helpers, on the SORT node's own kernel.

A SORT node sorts the rows of its last axis (the front end moves `dim` there), stable, NaN
the largest value like torch; it yields the values or the indices (int64 like torch's; the
kernel counts ranks in int and stores long). Its kernel is a rank count (templates/sort.cl.j2): one work-item per
element, O(n) over its row, written at its rank, no host round trip. `sort` of a row is that
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


def _sorted(x: Tensor, dim: int, descending: bool, indices: bool, op: str) -> Tensor:
    if x.ndim == 0:
        return Tensor.zeros((), dtype=dt.index_dtype) if indices else x + (0 if not x.dtype.is_float else 0.0)
    ax = _norm_axis(dim, x.ndim, op)
    key = x.cast(_key_dtype(x, op)).transpose(ax, -1)
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
