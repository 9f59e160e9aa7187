"""Cumulative ops along a dim: cumsum, cumprod, cummax, cummin, logcumsumexp.

Each is a masked reduction over a (prefix, element) square: output i reduces the elements
j <= i of its row, `where(j <= i, x_j, identity)`, an O(n^2) pass per row that the scheduler
fuses into reduction kernels like any other (no scan primitive; for the row lengths of
everyday models, up to a few thousand, that is one kernel and cheaper than a launch per
step of a parallel scan). Selects, never products with the 0/1 mask: inf * 0 is NaN.
Gradients are the autodiff of the same graph: cumprod's through the product rule, which
is torch's at zeros; cummax/cummin take their values through a gather at their indices, so
the gradient goes to the chosen element only, as in torch.

Public names: cumsum, cumprod, cummax, cummin, logcumsumexp, ValuesIndices.
"""
from __future__ import annotations

from typing import NamedTuple

from lazygrad import dtypes as dt
from lazygrad.frontend.indexing import _pick
from lazygrad.ir.ops import Op, reduce_identity
from lazygrad.frontend.tensor import Tensor, _norm_axis
from typing import Any


class ValuesIndices(NamedTuple):
    """torch's (values, indices) pair of cummax / cummin."""

    values: Tensor
    indices: Tensor


def _square(x: Tensor, dim: int, op: str) -> tuple[Tensor, Tensor, int]:
    """x with `dim` moved last and a prefix axis before it (..., 1, n), the mask j <= i of shape
    (n, n) (i: prefix, j: element), and the normalized dim."""
    ax = _norm_axis(dim, max(1, x.ndim), op)
    n = x.shape[ax] if x.ndim else 1
    xt = (x.reshape(1) if x.ndim == 0 else x).transpose(ax, -1).unsqueeze(-2)
    tri = Tensor._positions(n).reshape(n, 1) >= Tensor._positions(n).reshape(1, n)
    return xt, tri, ax


def _back(out: Tensor, x: Tensor, ax: int) -> Tensor:
    return out.reshape(()) if x.ndim == 0 else out.transpose(ax, -1)


def cumsum(x: Tensor, dim: int) -> Tensor:
    """Inclusive prefix sums along `dim`; bools and int32 accumulate in int64 like torch."""
    xt, tri, ax = _square(x.cast(dt.sum_dtype(x.dtype)), dim, "cumsum")
    return _back(tri.where(xt, 0).sum(-1), x, ax)


def cumprod(x: Tensor, dim: int) -> Tensor:
    """Inclusive prefix products along `dim` (ints in int64 like torch); the gradient at zeros
    is torch's (the product of the other elements of each prefix)."""
    xt, tri, ax = _square(x.cast(dt.sum_dtype(x.dtype)), dim, "cumprod")
    return _back(tri.where(xt, 1).prod(-1).cast(xt.dtype), x, ax)


def _cumext(x: Tensor, dim: int, largest: bool, op: str) -> ValuesIndices:
    xt, tri, ax = _square(x, dim, op)
    if x.numel() == 0:
        return ValuesIndices(x + 0, Tensor.zeros(x.shape, dtype=dt.index_dtype))
    v = xt if largest else xt._order_reversed()
    low = reduce_identity(Op.RMAX, x.dtype)  # the dtype's lowest value (0 for unsigned)
    best = tri.where(v, low).amax(-1, keepdim=True).detach()          # (..., n, 1) over prefixes
    # torch's index: the last element equal to the running extreme, or the last NaN so far
    hit = tri & ((v == best) | (v != v)) if x.dtype.is_float else tri & (v == best)
    n = tri.shape[0]
    idx = hit.where(Tensor._positions(n), -1).amax(-1)                       # (..., n)
    # through the index, so the gradient goes to it alone; a one-hot pick over the row (not the
    # gather kernel): the scan is O(n^2) already, and the pick fuses into its kernel
    values = _pick(xt._expand_to(xt.shape[:-2] + (n, n)), xt.ndim - 1, idx)
    return ValuesIndices(_back(values, x, ax), _back(idx.cast(dt.index_dtype), x, ax))  # torch's int64


def cummax(x: Tensor, dim: int) -> ValuesIndices:
    """Running maximum along `dim` and the index of the element it came from (the last one on
    ties, NaN once seen), like torch.cummax."""
    return _cumext(x, dim, True, "cummax")


def cummin(x: Tensor, dim: int) -> ValuesIndices:
    """Running minimum along `dim` and its indices, like torch.cummin."""
    return _cumext(x, dim, False, "cummin")


def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along `dim`, stable: each prefix is shifted by its own running
    maximum (detached), so a prefix far below the row's maximum does not underflow."""
    if not x.dtype.is_float:
        x = x.cast(dt.default_float)
    xt, tri, ax = _square(x, dim, "logcumsumexp")
    if x.numel() == 0:
        return x + 0.0
    m = tri.where(xt, float("-inf")).amax(-1, keepdim=True).detach()   # (..., n, 1)
    m = (m == float("-inf")).where(0.0, m)                             # all -inf so far: no shift
    m = (m == float("inf")).where(0.0, m)
    s = tri.where((xt - m).exp(), 0.0).sum(-1)
    return _back(s.log() + m.squeeze(-1), x, ax)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_cumsum(self, axis: int = 0, dim: int | None = None) -> Tensor:
    """Inclusive prefix sum along an axis (an O(n²) masked sum per row, one kernel; see
    lazygrad.frontend.scan); bools and int32 accumulate in int64 like torch."""
    return cumsum(self, axis if dim is None else dim)


def _method_cumprod(self, dim: int) -> Tensor:
    """Inclusive prefix product along `dim` (torch.cumprod, its gradient at zeros too)."""
    return cumprod(self, dim)


def _method_cummax(self, dim: int) -> Any:
    """torch.cummax: (values, indices) of the running maximum along `dim`."""
    return cummax(self, dim)


def _method_cummin(self, dim: int) -> Any:
    """torch.cummin: (values, indices) of the running minimum along `dim`."""
    return cummin(self, dim)


def _method_logcumsumexp(self, dim: int) -> Tensor:
    """torch.logcumsumexp: log of the running sum of exp along `dim`, computed stably."""
    return logcumsumexp(self, dim)


TENSOR_METHODS = {"cumsum": _method_cumsum, "cumprod": _method_cumprod, "cummax": _method_cummax, "cummin": _method_cummin, "logcumsumexp": _method_logcumsumexp}
