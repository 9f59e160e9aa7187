"""Reductions as Tensor methods: sum, mean, max/min (and their (values, indices) forms),
prod, var/std, logsumexp, softmax and log_softmax, argmax/argmin, any/all.

The Tensor class lists none of these: lazygrad/frontend/__init__.py installs TENSOR_METHODS.

Public names: TENSOR_METHODS.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.ir.ops import Op
from lazygrad.ir.view import prod
from lazygrad.frontend.return_types import ValuesIndices
from lazygrad.frontend.tensor import Tensor, Scalar, _infinite_slope, _norm_axis, _values_indices


def _method_axes(self, axis: Any, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(self.ndim))
    if isinstance(axis, (list, tuple)):
        axes = tuple(_norm_axis(a, self.ndim, op) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: repeated axis in {axis}")
        return axes if self.ndim else ()
    return (_norm_axis(axis, self.ndim, op),) if self.ndim else ()


def _method_reduce(self, op: Op, axis: Any, keepdim: bool, name: str, empty: Scalar | None = None) -> Tensor:
    """`op` over `axis`. Over a zero-size axis a sum gives 0; a max has no identity and
    raises IndexError like torch's, unless `empty` gives the value (any: False)."""
    axes = self._axes(axis, name)
    x = self
    if op is Op.RMAX and any(x.shape[a] == 0 for a in axes):
        if empty is None:
            self._require_nonempty(axis, name)
        out_shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape))
        out = Tensor.full(out_shape, empty, dtype=self.dtype)
        return out if keepdim else out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))
    if x.dtype is dt.bool_:
        x = x.cast(dt.default_int)  # prod counts (torch), max is cast back below
    if all(x.shape[a] == 1 for a in axes):
        # over length-1 axes a reduction is the identity (no kernel, fuses as elementwise);
        # a float sum starts from +0.0 like torch's, so a lone -0.0 sums to +0.0
        out = x + 0.0 if op is Op.SUM and x.dtype.is_float else x
    else:  # a long reduction may be split in two at realize (passes.split_reduce)
        out = Tensor._from(g.reduce(op, x.node, axes), x)
    if self.dtype is dt.bool_ and op is Op.RMAX:
        out = out.cast(dt.bool_)
    if keepdim:
        return out
    return out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))


def _method_require_nonempty(self, axis: Any, name: str) -> None:
    """IndexError (torch's) for a reduction without identity over a zero-size dim."""
    for a in self._axes(axis, name) if self.ndim else ((0,) if self.numel() == 0 else ()):
        if self.shape[a] == 0:
            raise IndexError(f"{name}: cannot reduce over dim {a} of size 0 in shape {self.shape} "
                             f"(a {name} of no elements has no value; torch raises too)")


def _method_sum(self, axis: Any = None, keepdim: bool = False, dim: Any = None, dtype: Any = None) -> Tensor:
    """Sum over `axis`/`dim` (an int, a tuple, or None for all), keeping reduced dims as size 1
    with `keepdim=True`. Bools and int32 are summed into int64 like torch; `dtype=` chooses."""
    x = self.cast(dtype if dtype is not None else dt.sum_dtype(self.dtype))
    return x._reduce(Op.SUM, axis if dim is None else dim, keepdim, "sum")


def _method_max(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Any:
    """Like torch: without a dim, the largest value (a 0-d tensor; NaN if any value is NaN);
    `x.max(dim)` gives the named tuple `(values, indices)` of the maxima along `dim` and
    their first indices (`argmax`), the gradient going to that index only, like torch's;
    `x.max(other_tensor)` is `maximum`. `amax` gives the values over one or several dims."""
    if isinstance(axis, Tensor):
        return self.maximum(axis)
    ax = axis if dim is None else dim
    if ax is None:
        return self.amax(None, keepdim)
    return _values_indices(self, ax, keepdim, "max")


def _method_min(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Any:
    """Like torch: without a dim, the smallest value (a 0-d tensor); `x.min(dim)` gives the
    named tuple `(values, indices)` (`argmin`); `x.min(other_tensor)` is `minimum`. `amin`
    gives the values over one or several dims."""
    if isinstance(axis, Tensor):
        return self.minimum(axis)
    ax = axis if dim is None else dim
    if ax is None:
        return self.amin(None, keepdim)
    r = _values_indices(self._order_reversed(), ax, keepdim, "min")
    return ValuesIndices(r.values._order_reversed(), r.indices)


def _method_amax(self, dim: Any = None, keepdim: bool = False, axis: Any = None) -> Tensor:
    """torch.amax: the largest values over `dim` (an int, a tuple, or None for all dims), NaN
    if any value is NaN; the gradient is split evenly between tied maxima, like torch's."""
    return self._reduce(Op.RMAX, dim if axis is None else axis, keepdim, "max")


def _method_amin(self, dim: Any = None, keepdim: bool = False, axis: Any = None) -> Tensor:
    """torch.amin: the smallest values over `dim` (an int, a tuple, or None for all dims)."""
    dim = dim if axis is None else axis
    self._require_nonempty(dim, "min")
    return self._order_reversed().amax(dim, keepdim)._order_reversed()


def _method_mean(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """Mean over `axis`/`dim` (None: all elements), in float (integers are averaged in float32);
    NaN over zero elements, like torch."""
    axis = axis if dim is None else dim
    x = self.cast(dt.least_upper_float(self.dtype))
    n = prod(tuple(self.shape[a] for a in self._axes(axis, "mean")))
    s = x.sum(axis, keepdim)
    return s * (1.0 / n) if n else s * float("nan")


def _method_var(self, axis: Any = None, keepdim: bool = False, dim: Any = None, correction: float = 1,
        unbiased: bool | None = None) -> Tensor:
    """Variance, unbiased by default like torch (`correction=0` or `unbiased=False` for the
    population variance). With correction >= N, torch's value and gradient exactly: the sum
    of squares over max(0, N - correction), i.e. inf (NaN for a zero sum)."""
    axis = axis if dim is None else dim
    if unbiased is not None:
        correction = 1 if unbiased else 0
    x = self.cast(dt.least_upper_float(self.dtype))
    n = prod(tuple(self.shape[a] for a in self._axes(axis, "var")))
    d = x - x.mean(axis, keepdim=True)
    ss = (d * d).sum(axis, keepdim)
    dof = n - correction
    if dof > 0:
        return ss * (1.0 / dof)
    value = (ss * float("inf")).detach()  # ss / 0: inf, or NaN for ss == 0
    # torch's gradient here (FunctionsManual var_backward) is not the derivative of that
    # value: with dims, 2 / (N - correction) * (x - mean), finite for correction > N; over
    # the whole tensor, inf (NaN where x == mean)
    dd = d.detach()
    if axis is not None and dof < 0:
        slope = ss * (1.0 / dof)
        return value + (slope - slope.detach())
    weight = dd if axis is not None else (dd != 0).cast(dd.dtype)
    return value + _infinite_slope(x, weight).sum(axis, keepdim)


def _method_std(self, axis: Any = None, keepdim: bool = False, dim: Any = None, correction: float = 1,
        unbiased: bool | None = None) -> Tensor:
    """Standard deviation over `axis`/`dim`: the square root of `var` with the same arguments
    (unbiased by default, like torch); no gradient where it is 0."""
    v = self.var(axis, keepdim, dim, correction, unbiased)
    # like torch, no gradient where the deviation is 0 (sqrt's would be 0 * inf = NaN): the
    # square root of a stand-in 1 there, not selected
    zero = v == 0
    return zero.where(0.0, zero.where(1.0, v).sqrt())


def _method_prod(self, axis: Any = None, keepdim: bool = False, dim: Any = None, dtype: Any = None) -> Tensor:
    """Product of elements (a multiplying reduction: exact for integers, wrapping on
    overflow); bools and int32 multiply in int64 like torch, `dtype=` chooses."""
    return self.cast(dtype if dtype is not None else dt.sum_dtype(self.dtype))._reduce(Op.RPROD, axis if dim is None else dim, keepdim, "prod")


def _method_any(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """True if any element over `axis`/`dim` is nonzero (a bool tensor; uint8 for a uint8
    tensor, like torch); False over an empty axis (torch)."""
    r = (self != 0)._reduce(Op.RMAX, axis if dim is None else dim, keepdim, "any", empty=False)
    return _truth_dtype(r, self.dtype)


def _truth_dtype(r: Tensor, d: dt.DType) -> Tensor:
    # torch's any and all of a uint8 tensor are uint8 0/1 (its byte-mask legacy), bool otherwise
    return r.cast(dt.uint8) if d is dt.uint8 else r


def _method_all(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """True if every element over `axis`/`dim` is nonzero (a bool tensor; uint8 for a uint8
    tensor, like torch); True over an empty axis (torch)."""
    r = (self == 0)._reduce(Op.RMAX, axis if dim is None else dim, keepdim, "all", empty=False).logical_not()
    return _truth_dtype(r, self.dtype)


def _method_argmax(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """Index of the first maximum (flattened when axis is None, every dim kept as size 1
    under keepdim, like torch), int64 like torch."""
    return self._first_max_index(axis if dim is None else dim, keepdim, "argmax").cast(dt.index_dtype)


def _method_first_max_index(self, axis: Any, keepdim: bool, op: str = "argmax") -> Tensor:
    """argmax counted in lazygrad's index arithmetic (int32 while the dim fits it): what
    max(dim), the max pools and their picks use inside; argmax casts it to int64."""
    if axis is None:
        flat = self.flatten()._first_max_index(0, False, op)
        return flat.reshape((1,) * self.ndim) if keepdim else flat
    ax = _norm_axis(axis, self.ndim, op)
    if self.ndim == 0:
        return Tensor.full((), 0, dtype=dt.default_int)
    n = self.shape[ax]
    self._require_nonempty(ax, op)
    m = self == self.amax(ax, keepdim=True)
    if self.dtype.is_float:
        m = m | (self != self)  # a NaN is the maximum (max propagates it): its index, like torch
    rev = Tensor._positions(n, 0, -1).reshape((n,) + (1,) * (self.ndim - ax - 1))
    idx = (m.cast(dt.default_int) * rev).amax(ax, keepdim)
    return n - idx


def _method_argmin(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """Index of the first minimum over `axis`/`dim` (flattened when None), int64 like torch."""
    axis = axis if dim is None else dim
    self._require_nonempty(axis, "argmin")
    return self._order_reversed()._first_max_index(axis, keepdim, "argmin").cast(dt.index_dtype)


def _method_shift(self, axis: Any, op: str) -> Tensor:
    """The (detached) row maximum that keeps exp() of a row from overflowing, or 0 where
    there is none: a row of zero length (whose sum of exps is then 0) or of infinities."""
    if any(self.shape[a] == 0 for a in self._axes(axis, op)):
        return Tensor.full(tuple(1 if i in self._axes(axis, op) else s for i, s in enumerate(self.shape)), 0.0,
                           dtype=self.dtype)
    return self.amax(axis, keepdim=True).detach()


def _method_logsumexp(self, axis: Any = None, keepdim: bool = False, dim: Any = None) -> Tensor:
    """log(sum(exp(x))) over `axis`/`dim`, computed stably (the max is subtracted first);
    -inf over an empty axis (torch)."""
    axis = axis if dim is None else dim
    m = self._shift(axis, "logsumexp")
    m = (m == float("-inf")).where(0.0, m)  # all -inf rows: avoid -inf - -inf
    if self.dtype.is_float:
        # a row with +inf shifts by the largest finite value, not by 0 like torch's forward:
        # the value is the same (inf), and the gradient exp(x - m) / sum is then 0 at the
        # finite entries like torch's exp(x - logsumexp); shifted by 0, exp overflows there
        # and gives inf / inf = NaN (fuzz seed 772437428)
        m = (m == float("inf")).where(float(np.finfo(self.dtype.np).max), m)
    s = (self - m).exp().sum(axis, keepdim=True).log() + m
    return s if keepdim else s.reshape(tuple(x for i, x in enumerate(self.shape) if i not in self._axes(axis, "logsumexp")))


def _method_softmax(self, axis: int = -1, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`/`dim` (default the last), computed stably; one kernel
    per row-wise op."""
    axis = axis if dim is None else dim
    x = self.cast(dt.least_upper_float(self.dtype))
    e = (x - x._shift(axis, "softmax")).exp()
    return e / e.sum(axis, keepdim=True)


def _method_log_softmax(self, axis: int = -1, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along `axis`/`dim` (default the last), computed stably."""
    axis = axis if dim is None else dim
    x = self.cast(dt.least_upper_float(self.dtype))
    d = x - x._shift(axis, "log_softmax")
    return d - d.exp().sum(axis, keepdim=True).log()


TENSOR_METHODS = {
    "_axes": _method_axes,
    "_reduce": _method_reduce,
    "_require_nonempty": _method_require_nonempty,
    "sum": _method_sum,
    "max": _method_max,
    "min": _method_min,
    "amax": _method_amax,
    "amin": _method_amin,
    "mean": _method_mean,
    "var": _method_var,
    "std": _method_std,
    "prod": _method_prod,
    "any": _method_any,
    "all": _method_all,
    "argmax": _method_argmax,
    "_first_max_index": _method_first_max_index,
    "argmin": _method_argmin,
    "_shift": _method_shift,
    "logsumexp": _method_logsumexp,
    "softmax": _method_softmax,
    "log_softmax": _method_log_softmax,
}
