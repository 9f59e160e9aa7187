"""Cumulative ops along a dim: cumsum, cumprod, cummax, cummin, logcumsumexp.

Each is a masked reduction over a (prefix, element) square: output i reduces the elements
j <= i of its row, `where(j <= i, x_j, identity)`, an O(n^2) pass per row that the scheduler
fuses into reduction kernels like any other (no scan primitive; for rows up to DIRECT_MAX
that is one kernel and cheaper than a launch per step of a parallel scan). Longer rows are
scanned in blocks (the same masked reduction per block, a scan of the block totals, a
combine): O(n·BLOCK) work in a few kernels per level. Selects, never products with the 0/1 mask: inf * 0 is NaN.
Gradients are the autodiff of the same graph: cumprod's through the product rule, which
is torch's at zeros; cummax/cummin take their values through a gather at their indices, so
the gradient goes to the chosen element only, as in torch.

Public names: cumsum, cumprod, cummax, cummin, logcumsumexp, ValuesIndices.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from lazygrad import dtypes as dt
from lazygrad.frontend.indexing import _pick
from lazygrad.frontend.mathops import logaddexp
from lazygrad.ir.ops import Op, reduce_identity
from lazygrad.frontend.tensor import Tensor, _norm_axis
from typing import Any


class ValuesIndices(NamedTuple):
    """torch's (values, indices) pair of cummax / cummin."""

    values: Tensor
    indices: Tensor


# Rows up to DIRECT_MAX long are one masked O(n²) reduction kernel (16K selects per row at 128).
# Longer rows are scanned in blocks of BLOCK: the same masked reduction inside each block
# (n·BLOCK work), a scan of the block totals (recursively: 1M elements are 1M -> 31,250 -> 977
# -> 31), and the exclusive prefix of the totals combined into every block's own scan; 2-3
# kernels per level. Measured here (2 shared cores, hot): a (256, 1024) cumsum 285 ms direct,
# 12 ms blocked; (64, 256) 5.6 ms direct, 2.8 ms blocked; a 1M cumsum 249 ms with blocks of 128,
# 41 ms with 32, 36 ms with 16 (one more level). Before blocking a 1M cumsum was 10^12 selects.
DIRECT_MAX = 128
BLOCK = 32


def _tri(n: int) -> Tensor:
    """The mask j <= i of shape (n, n) (i: prefix, j: element)."""
    return Tensor._positions(n).reshape(n, 1) >= Tensor._positions(n).reshape(1, n)


def _last(x: Tensor, dim: int, op: str) -> tuple[Tensor, int]:
    """x with `dim` moved last (a 0-d x as one element), and the normalized dim."""
    ax = _norm_axis(dim, max(1, x.ndim), op)
    return (x.reshape(1) if x.ndim == 0 else x).transpose(ax, -1), ax


def _back(out: Tensor, x: Tensor, ax: int) -> Tensor:
    return out.reshape(()) if x.ndim == 0 else out.transpose(ax, -1)


def _blocks(x: Tensor, fill: Any) -> Tensor:
    """x's last axis padded with `fill` to whole blocks and split: (..., n) -> (..., m, BLOCK)."""
    n = x.shape[-1]
    m = -(-n // BLOCK)
    xp = x.pad(((0, 0),) * (x.ndim - 1) + ((0, m * BLOCK - n),), value=fill)
    return xp.reshape(*x.shape[:-1], m, BLOCK)


def _unblock(xb: Tensor, n: int) -> Tensor:
    """(..., m, BLOCK) -> (..., n): the blocks joined, the padding dropped."""
    return xb.reshape(*xb.shape[:-2], xb.shape[-2] * xb.shape[-1])[..., :n]


def _exclusive(pre: Tensor, fill: Any) -> Tensor:
    """An inclusive scan of the block totals shifted one block right: what comes before each block."""
    return pre[..., :-1].pad(((0, 0),) * (pre.ndim - 1) + ((1, 0),), value=fill)


def _scan(x: Tensor, direct: Callable[[Tensor], Tensor], combine: Callable[[Tensor, Tensor], Tensor],
          identity: Any) -> Tensor:
    """The inclusive scan of x along its last axis for an associative `combine` with `identity`:
    `direct` (the masked reduction) on short rows, blocked on long ones (see DIRECT_MAX)."""
    n = x.shape[-1]
    if n <= DIRECT_MAX:
        return direct(x)
    inner = direct(_blocks(x, identity))                              # (..., m, BLOCK)
    pre = _scan(inner[..., -1], direct, combine, identity)            # totals, scanned
    return _unblock(combine(_exclusive(pre, identity).unsqueeze(-1), inner), n)


def _direct_sum(x: Tensor) -> Tensor:
    return _tri(x.shape[-1]).where(x.unsqueeze(-2), 0).sum(-1)


def _direct_prod(x: Tensor) -> Tensor:
    return _tri(x.shape[-1]).where(x.unsqueeze(-2), 1).prod(-1).cast(x.dtype)


def _direct_logsumexp(x: Tensor) -> Tensor:
    # each prefix shifted by its own running maximum (detached), so a prefix far below the
    # row's maximum does not underflow
    tri, xt = _tri(x.shape[-1]), x.unsqueeze(-2)
    m = tri.where(xt, float("-inf")).amax(-1, keepdim=True).detach()   # (..., n, 1)
    m = (m == float("-inf")).where(0.0, m)                             # all -inf so far: no shift
    m = (m == float("inf")).where(0.0, m)
    s = tri.where((xt - m).exp(), 0.0).sum(-1)
    return s.log() + m.squeeze(-1)


def cumsum(x: Tensor, dim: int) -> Tensor:
    """Inclusive prefix sums along `dim`; bools and int32 accumulate in int64 like torch."""
    xl, ax = _last(x.cast(dt.sum_dtype(x.dtype)), dim, "cumsum")
    return _back(_scan(xl, _direct_sum, lambda a, b: a + b, 0), x, ax)


def cumprod(x: Tensor, dim: int) -> Tensor:
    """Inclusive prefix products along `dim` (ints in int64 like torch); the gradient at zeros
    is torch's (the product of the other elements of each prefix)."""
    xl, ax = _last(x.cast(dt.sum_dtype(x.dtype)), dim, "cumprod")
    return _back(_scan(xl, _direct_prod, lambda a, b: a * b, 1), x, ax)


def _running_max(v: Tensor) -> tuple[Tensor, Tensor]:
    """The running maximum of v along its last axis (detached) and torch's index of it: the
    last element equal to the running maximum, or the last NaN so far."""
    n = v.shape[-1]
    low = reduce_identity(Op.RMAX, v.dtype)  # the dtype's lowest value (0 for unsigned)
    if n <= DIRECT_MAX:
        tri, vt = _tri(n), v.unsqueeze(-2)
        best = tri.where(vt, low).amax(-1, keepdim=True).detach()       # (..., n, 1) over prefixes
        hit = tri & ((vt == best) | (vt != vt)) if v.dtype.is_float else tri & (vt == best)
        return best.squeeze(-1), hit.where(Tensor._positions(n), -1).amax(-1)
    b_in, i_in = _running_max(_blocks(v, low))                          # (..., m, BLOCK), in-block
    m = b_in.shape[-2]
    i_in = i_in + (Tensor._positions(m) * BLOCK).cast(i_in.dtype).reshape(m, 1)
    tot_b, tot_i = b_in[..., -1], i_in[..., -1]                         # each block's extreme
    pre_b, k = _running_max(tot_b)                                       # over blocks; k: which block
    pre_i = tot_i.gather(-1, k)
    ex_b, ex_i = _exclusive(pre_b, low).unsqueeze(-1), _exclusive(pre_i, 0).unsqueeze(-1)
    # ties go to the later element (the block's own), and so does a NaN
    take = (b_in != b_in) | ((ex_b == ex_b) & (b_in >= ex_b)) if v.dtype.is_float else b_in >= ex_b
    return _unblock(take.where(b_in, ex_b), n), _unblock(take.where(i_in, ex_i), n)


def _cumext(x: Tensor, dim: int, largest: bool, op: str) -> ValuesIndices:
    xl, ax = _last(x, dim, op)
    if x.numel() == 0:
        return ValuesIndices(x + 0, Tensor.zeros(x.shape, dtype=dt.index_dtype))
    n = xl.shape[-1]
    _, idx = _running_max(xl if largest else xl._order_reversed())
    # the values through the index, so the gradient goes to it alone: a one-hot pick over the
    # row on short rows (the scan is O(n^2) already, and the pick fuses into its kernel), the
    # gather kernel on long ones
    if n <= DIRECT_MAX:
        values = _pick(xl.unsqueeze(-2)._expand_to(xl.shape[:-1] + (n, n)), xl.ndim, idx)
    else:
        values = xl.gather(-1, idx)
    return ValuesIndices(_back(values, x, ax), _back(idx.cast(dt.index_dtype), x, ax))  # torch's int64


def cummax(x: Tensor, dim: int) -> ValuesIndices:
    """Running maximum along `dim` and the index of the element it came from (the last one on
    ties, NaN once seen), like torch.cummax."""
    return _cumext(x, dim, True, "cummax")


def cummin(x: Tensor, dim: int) -> ValuesIndices:
    """Running minimum along `dim` and its indices, like torch.cummin."""
    return _cumext(x, dim, False, "cummin")


def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along `dim`, stable (each prefix shifted by its running maximum;
    long rows combine their blocks with logaddexp)."""
    if not x.dtype.is_float:
        x = x.cast(dt.default_float)
    xl, ax = _last(x, dim, "logcumsumexp")
    if x.numel() == 0:
        return x + 0.0
    return _back(_scan(xl, _direct_logsumexp, logaddexp, float("-inf")), x, ax)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_cumsum(self, axis: int = 0, dim: int | None = None) -> Tensor:
    """Inclusive prefix sum along an axis (a masked sum per row, one kernel up to 128 elements, blocked beyond; see
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
