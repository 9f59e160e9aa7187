"""Gather, scatter and select: the index ops of the Tensor API, derived from primitives.

Lookups (gather, index_select, tensor indexing, masked_select) are GATHER nodes: a kernel of
their own, one index read per output element (templates/gather.cl.j2); their gradient is the
scatter-add of the incoming gradient, a one-hot select and sum over the gathered axis
(`grad_x[p] = sum_j where(index_j == p, g_j, 0)`, one reduction kernel). Selects, never
products with the 0/1 mask: 0 * inf and 0 * nan are NaN and would spread into every value.
A scatter is the transposed select: for each target position p, a reduction over the
scattered elements j of `where(index_j == p, src_j, identity)`; scatter_reduce(include_self)
takes `self` as one more element of that reduction, so ties, zeros and counts (amax's split
gradient, prod's gradient at zeros, mean's divisor) follow torch's rules.

Ops whose result size depends on values (masked_select, nonzero, boolean-mask indexing, a
one_hot without num_classes) realize what decides the size and read it on the host, like
torch does on a GPU: they are a synchronisation point, and the result has no lazy history in
its size. Index tensors already on the device (realized) or given as lists are checked at
build time; a lazy index is checked at realize under LAZYGRAD_CHECK_INDEX=1 (else an
out-of-range lazy index selects 0).

Assignment `t[idx] = v` is functional: `t` then stands for a new lazy node (a select of v
placed into t, elementwise for basic indices and boolean masks, a scatter for tensor
indices), so gradients flow to both the old value and v. Other tensors holding the old value
(torch's views of `t`) do not change.

Public names: gather, scatter, scatter_add, scatter_reduce, index_select, masked_fill,
masked_select, nonzero, one_hot, advanced_index, setitem, is_advanced.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.frontend.tensor import Tensor, _getitem, _norm_axis, broadcast_shapes
from lazygrad.ir.view import prod
from lazygrad.frontend.tensor import is_grad_enabled


class Reduce(Enum):
    """How scatter_reduce combines the values that land on one position."""

    SUM = "sum"
    PROD = "prod"
    MEAN = "mean"
    AMAX = "amax"
    AMIN = "amin"


# --- index tensors ---------------------------------------------------------------------------------
def _index_tensor(i: Any, op: str) -> tuple[Tensor, np.ndarray | None]:
    """An integer index as a Tensor, and its values when they are known on the host."""
    if isinstance(i, Tensor):
        t, host = i, (i.numpy() if i.node.realized is not None else None)
    else:
        host = np.asarray(i)
        if host.size == 0 and host.dtype.kind == "f":
            host = host.astype(np.int32)  # an empty list
        if host.dtype.kind not in "iub":
            raise IndexError(f"{op}: tensor indices must be integers, got {host.dtype} values")
        t = Tensor(host.astype(np.int64) if host.dtype.kind == "u" else host)
    if t.dtype.is_float:
        raise IndexError(f"{op}: tensor indices must be integers, got {t.dtype.name}")
    if t.dtype is dt.bool_:
        raise IndexError(f"{op}: a bool tensor is a mask, not an index here")
    return t, host


def _checked(t: Tensor, host: np.ndarray | None, n: int, op: str, where: str) -> list[g.IndexCheck]:
    """Out-of-range values of index `t` into a dim of size n raise now (values known); a lazy
    index gets the check to attach to what reads it (LAZYGRAD_CHECK_INDEX=1, at realize)."""
    if host is not None and host.size and (host.min() < -n or host.max() >= n):
        bad = host.min() if host.min() < -n else host.max()
        # where = "dim K of shape S": the message reads "... for dim K with size N (shape S)"
        dim, _, shape = where.partition(" of shape ")
        raise IndexError(f"{op}: index {bad} is out of bounds for {dim} with size {n}" + (f" (shape {shape})" if shape else ""))
    return [] if host is not None else [g.IndexCheck(t.node, n, op, where)]


def _wrapped(t: Tensor, host: np.ndarray | None, n: int, op: str, where: str) -> Tensor:
    """Index `t` into a dim of size n, negatives counted from the end; out of range raises now
    (values known) or at realize (lazy, LAZYGRAD_CHECK_INDEX=1)."""
    checks = _checked(t, host, n, op, where)
    out = (t < 0).where(t + n, t)
    for c in checks:
        g.add_index_check(out.node, c)
    return out


def _attach(out: Tensor, checks: list[g.IndexCheck]) -> Tensor:
    for c in checks:
        g.add_index_check(out.node, c)
    return out


def _pick(y: Tensor, ax: int, idx: Tensor) -> Tensor:
    """y with dim `ax` removed, each element taken at position idx (broadcast against y without
    `ax`, already in range) along `ax`: the one-hot select and sum."""
    n = y.ndim
    idx = idx.reshape((1,) * (n - 1 - idx.ndim) + idx.shape).unsqueeze(ax)
    hot = idx == Tensor._positions(y.shape[ax]).reshape((y.shape[ax],) + (1,) * (n - ax - 1))
    picked = hot.where(y, 0)
    if y.dtype is dt.bool_:
        return picked.any(ax)
    # one term per output is nonzero, so y's own dtype holds the sum exactly
    return picked.sum(ax, dtype=y.dtype)


def _gather(x: Tensor, idx: Tensor, axis: int, shape: tuple[int, ...], squeeze: bool = False) -> Tensor:
    """The GATHER node: out[c] = x[c with c[axis] := idx[c]] (x and idx broadcast over size-1
    dims, negative indices from the end), its own kernel: one index read per output element,
    not a one-hot pass over the axis."""
    if idx.dtype.itemsize < 4 or idx.dtype is dt.bool_:
        idx = idx.cast(dt.default_int)
    return Tensor._from(g.gather(x.node, idx.node, axis, shape, squeeze), x)


# --- gather / index_select -------------------------------------------------------------------------
def _dim_of(x: Tensor, dim: int, op: str) -> int:
    return _norm_axis(dim, max(1, x.ndim), op)


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """torch.gather: `out[i][j][k] = x[i][index[i][j][k]][k]` for dim=1; `index` has x's number of
    dims and at most x's size in every other dim; out has index's shape."""
    it, host = _index_tensor(index, "gather")
    if it.ndim != x.ndim and not (max(it.ndim, x.ndim) <= 1):
        raise ValueError(f"gather: index {it.shape} must have as many dims as input {x.shape}")
    if x.ndim == 0 or it.ndim == 0:
        out = gather(x.reshape(-1), 0, host.reshape(-1) if host is not None else it.reshape(-1))
        return out.reshape(it.shape)
    d = _dim_of(x, dim, "gather")
    for k, (a, b) in enumerate(zip(it.shape, x.shape)):
        if k != d and a > b:
            raise ValueError(f"gather: index {it.shape} is larger than input {x.shape} in dim {k}")
    n = x.shape[d]
    checks = _checked(it, host, n, "gather", f"dim {d} of shape {x.shape}")
    if n == 0 or it.numel() == 0:
        return Tensor.zeros(it.shape, dtype=x.dtype)
    return _attach(_gather(x, it, d, it.shape), checks)


def index_select(x: Tensor, dim: int, index: Any) -> Tensor:
    """torch.index_select: the entries of x at the 1-D (or 0-d) integer `index` along `dim`."""
    it, host = _index_tensor(index, "index_select")
    if it.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {it.shape}")
    if x.ndim == 0:
        return gather(x, 0, host.reshape(-1) if host is not None else it.reshape(-1)).reshape(())
    d = _dim_of(x, dim, "index_select")
    n, k = x.shape[d], it.numel()
    checks = _checked(it, host, n, "index_select", f"dim {d} of shape {x.shape}")
    shape = x.shape[:d] + (k,) + x.shape[d + 1:]
    if n == 0 or prod(shape) == 0:
        return Tensor.zeros(shape, dtype=x.dtype)
    return _attach(_gather(x, it.reshape((1,) * d + (k,) + (1,) * (x.ndim - d - 1)), d, shape), checks)


# --- scatter ------------------------------------------------------------------------------------------
class _Scatter:
    """The common layout of the scatters: index dims I with the target axis (x's size n along
    dim d) inserted after d; axis d then runs over the scattered elements j."""

    def __init__(self, x: Tensor, dim: int, index: Any, src: Tensor | None, op: str) -> None:
        it, host = _index_tensor(index, op)
        if it.ndim != x.ndim:
            raise ValueError(f"{op}: index {it.shape} must have as many dims as self {x.shape}")
        d = _dim_of(x, dim, op)
        for k, (a, b) in enumerate(zip(it.shape, x.shape)):
            if k != d and a > b:
                raise ValueError(f"{op}: index {it.shape} is larger than self {x.shape} in dim {k}")
        if src is not None:
            if src.ndim != x.ndim or any(a > b for a, b in zip(it.shape, src.shape)):
                raise ValueError(f"{op}: index {it.shape} is larger than src {src.shape} (or the dims differ)")
            if src.dtype != x.dtype:
                raise TypeError(f"{op}: src dtype {src.dtype.name} differs from self dtype {x.dtype.name} (like torch)")
        self.x, self.d, self.op = x, d, op
        self.n = n = x.shape[d]
        self.region = it.shape[:d] + (n,) + it.shape[d + 1:]   # the part of x the index reaches
        it = _wrapped(it, host, n, op, f"dim {d} of shape {x.shape}")
        hot_shape = it.shape[:d + 1] + (n,) + it.shape[d + 1:]
        self.hot = it.unsqueeze(d + 1) == Tensor._positions(n).reshape((n,) + (1,) * (x.ndim - d - 1))
        self.hot = self.hot._expand_to(hot_shape)
        self.m = it.shape[d]
        self.src = None if src is None else src.shrink(tuple((0, s) for s in it.shape)).unsqueeze(d + 1)
        self.xr = x.shrink(tuple((0, s) for s in self.region)).unsqueeze(d)   # (.., 1, n, ..)

    def values(self, include_self: bool) -> tuple[Tensor, Tensor]:
        """(one-hot, values) over the j axis, with `self` as one more element when asked."""
        assert self.src is not None
        v = self.src._expand_to(self.hot.shape)
        if not include_self:
            return self.hot, v
        return (self.hot.cat(Tensor.full(self.xr.shape, True), dim=self.d),
                v.cat(self.xr, dim=self.d))

    def finish(self, r: Tensor) -> Tensor:
        """The result over the region (.., 1, n, ..) put back into x."""
        r = r.squeeze(self.d)
        if r.shape == self.x.shape:
            return r
        widths = tuple((0, s - t) for s, t in zip(self.x.shape, r.shape))
        inside = Tensor.full(r.shape, True).pad(widths, value=False)
        return inside.where(r.pad(widths), self.x)


def _to_tensor(v: Any, like: Tensor) -> Tensor:
    return v if isinstance(v, Tensor) else Tensor(np.asarray(v), dtype=like.dtype)


def scatter(x: Tensor, dim: int, index: Any, src: Any = None, value: Any = None, reduce: str | None = None) -> Tensor:
    """torch.scatter: a copy of x with `x[i][index[i][j]] = src[i][j]` (dim=1), or `value` (a
    scalar) for every indexed position. Where an index repeats, the last element (largest j)
    wins, as torch's CPU kernel does (torch leaves it unspecified). `reduce='add'|'multiply'`
    is scatter_reduce's sum / prod with self included."""
    if reduce is not None:
        table = {"add": "sum", "multiply": "prod"}
        if reduce not in table:
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        if src is None or not isinstance(src, Tensor):
            src = Tensor.full(_index_tensor(index, "scatter")[0].shape, src if value is None else value, dtype=x.dtype)
        return scatter_reduce(x, dim, index, src, table[reduce], include_self=True)
    if (src is None) == (value is None):
        if src is not None or value is not None:
            raise TypeError("scatter: give either src or value, not both")
        raise TypeError("scatter: missing src or value")
    if src is not None and not isinstance(src, Tensor):
        value, src = src, None  # torch.scatter(x, dim, index, 1.5): a scalar src is the value
    if value is not None:
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise ValueError(f"scatter: value must be a scalar, got shape {value.shape}")
        s = _Scatter(x, dim, index, None, "scatter")
        hit = s.hot.any(s.d, keepdim=True)
        return s.finish(hit.where(value, s.xr))
    s = _Scatter(x, dim, index, src, "scatter")
    # the last writer: the largest j that hits each position (-1: none)
    j = Tensor._positions(s.m).reshape((s.m,) + (1,) * (x.ndim - s.d))
    last = s.hot.where(j, -1).amax(s.d, keepdim=True)
    win = s.hot & (j == last)
    v = s.src._expand_to(s.hot.shape)
    val = win.where(v, 0).any(s.d, keepdim=True) if x.dtype is dt.bool_ else win.where(v, 0).sum(s.d, keepdim=True,
                                                                                                  dtype=x.dtype)
    return s.finish((last >= 0).where(val, s.xr))


def scatter_add(x: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """torch.scatter_add: a copy of x with `src[i][j]` added at `x[i][index[i][j]]` (dim=1)."""
    return scatter_reduce(x, dim, index, src, "sum", include_self=True)


def _lowest(d: dt.DType) -> float | int | bool:
    return float("-inf") if d.is_float else (int(np.iinfo(d.np).min) if d.is_int else False)


def _highest(d: dt.DType) -> float | int | bool:
    return float("inf") if d.is_float else (int(np.iinfo(d.np).max) if d.is_int else True)


def scatter_reduce(x: Tensor, dim: int, index: Any, src: Tensor, reduce: str, include_self: bool = True) -> Tensor:
    """torch.scatter_reduce: the values of src landing on each position of x (through index along
    dim) reduced by 'sum', 'prod', 'mean', 'amax' or 'amin', together with x's own value when
    include_self; positions nothing lands on keep x. Integer means round down, like torch."""
    try:
        how = Reduce(reduce)
    except ValueError:
        raise ValueError(f"scatter_reduce: reduce must be one of {[r.value for r in Reduce]}, got {reduce!r}") from None
    src = _to_tensor(src, x)
    s = _Scatter(x, dim, index, src, "scatter_reduce")
    hot, v = s.values(include_self)
    d, xd = s.d, x.dtype
    if not include_self and how in (Reduce.AMAX, Reduce.AMIN):
        # torch splits the gradient among the tied values counting self when it equals the
        # result even though self is excluded (and gets none of it): self joins the reduction
        # detached, where it ties the result of src alone
        fill = _lowest(xd) if how is Reduce.AMAX else _highest(xd)
        alone = hot.where(v, fill)
        alone = (alone.amax(d, keepdim=True) if how is Reduce.AMAX else alone.amin(d, keepdim=True)).detach()
        xr = s.xr.detach()
        hot = hot.cat(Tensor.full(s.xr.shape, True), dim=d)
        v = v.cat((xr == alone).where(xr, fill), dim=d)
    if xd is dt.bool_ and how is not Reduce.AMAX and how is not Reduce.AMIN:
        raise TypeError(f"scatter_reduce: {how.value} of bool tensors is not supported")
    if how is Reduce.SUM or how is Reduce.MEAN:
        r = hot.where(v, 0).sum(d, keepdim=True, dtype=xd)
        if how is Reduce.MEAN:
            count = hot.sum(d, keepdim=True, dtype=xd)
            count = (count == 0).where(1, count)
            r = r / count if xd.is_float else r // count
    elif how is Reduce.PROD:
        r = hot.where(v, 1).prod(d, keepdim=True).cast(xd)
    elif how is Reduce.AMAX:
        r = hot.where(v, _lowest(xd)).amax(d, keepdim=True)
    else:
        r = hot.where(v, _highest(xd)).amin(d, keepdim=True)
    if not include_self:
        r = s.hot.any(d, keepdim=True).where(r, s.xr)
    return s.finish(r)


# --- masks --------------------------------------------------------------------------------------------
def _bool_mask(mask: Any, op: str) -> Tensor:
    m = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
    if m.dtype is not dt.bool_:
        raise TypeError(f"{op}: mask must be a bool tensor, got {m.dtype.name} (like torch)")
    return m


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """torch.masked_fill: x with `value` (a scalar or a 0-d tensor, which gets a gradient) where
    the bool `mask` (broadcast against x) is true. Elementwise: it fuses with its neighbours."""
    m = _bool_mask(mask, "masked_fill")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a scalar or a 0-d tensor, got shape {value.shape}")
        value = value.cast(x.dtype)
    elif not isinstance(value, (bool, int, float, np.generic)):
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {type(value).__name__}")
    elif not x.dtype.is_float and isinstance(value, float):
        if not float(value).is_integer():
            raise TypeError(f"masked_fill: value {value} does not fit the {x.dtype.name} tensor")
        value = int(value)
    shape = broadcast_shapes(x.shape, m.shape, op="masked_fill")
    return m._expand_to(shape).where(value, x._expand_to(shape))


def _host_mask(m: Tensor) -> np.ndarray:
    return m.numpy().astype(bool)


def masked_select(x: Tensor, mask: Any) -> Tensor:
    """torch.masked_select: the 1-D tensor of the elements of x (broadcast with the bool mask)
    where mask is true, in row-major order. Its size depends on the mask's values: the mask is
    realized and read on the host, the elements are then picked lazily (a gradient flows)."""
    m = _bool_mask(mask, "masked_select")
    shape = broadcast_shapes(x.shape, m.shape, op="masked_select")
    pos = np.flatnonzero(_host_mask(m._expand_to(shape)))
    return _take_flat(x._expand_to(shape), pos)


def _take_flat(x: Tensor, pos: np.ndarray) -> Tensor:
    """The elements of x at host-known flat positions, as a 1-D tensor."""
    flat = x.reshape(-1)
    k = len(pos)
    if k == 0:
        return Tensor.zeros((0,), dtype=x.dtype)
    return _gather(flat, Tensor(pos.astype(np.int32 if flat.shape[0] < 2**31 else np.int64)), 0, (k,))


def nonzero(x: Tensor, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """torch.nonzero: the (count, ndim) indices of the nonzero elements in row-major order, or with
    as_tuple one 1-D tensor per dim. The count depends on values: x is realized and read on the
    host; the indices are int64 like torch's and carry no gradient."""
    host = x.numpy() != 0
    if as_tuple:
        return tuple(Tensor(i.astype(np.int64), dtype=dt.index_dtype) for i in np.nonzero(np.atleast_1d(host)))
    return Tensor(np.argwhere(host).astype(np.int64), dtype=dt.index_dtype)


def one_hot(t: Tensor, num_classes: int = -1) -> Tensor:
    """torch.nn.functional.one_hot: t.shape + (num_classes,) of 0/1 ints (int64 like torch's);
    num_classes=-1 reads max(t) + 1 on the host. Elementwise: it fuses with its consumer."""
    it, host = _index_tensor(t, "one_hot")
    if num_classes == -1:
        host = it.numpy() if host is None else host
        num_classes = int(host.max()) + 1 if host.size else 0
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be a non-negative int or -1, got {num_classes!r}")
    if host is not None and host.size:
        if host.min() < 0:
            raise ValueError(f"one_hot: class values must be non-negative, got {host.min()}")
        if host.max() >= num_classes:
            raise ValueError(f"one_hot: class value {host.max()} is not smaller than num_classes {num_classes}")
    out = (it.unsqueeze(-1) == Tensor._positions(num_classes)).cast(dt.index_dtype)
    if host is None:
        g.add_index_check(out.node, g.IndexCheck(it.node, num_classes, "one_hot", f"num_classes {num_classes}"))
    return out


# --- advanced indexing ------------------------------------------------------------------------------
def _is_array(i: Any) -> bool:
    return isinstance(i, (Tensor, list, np.ndarray))


def is_advanced(idx: Any) -> bool:
    """Does this __getitem__ index hold a tensor, list or array (advanced indexing)?"""
    return any(_is_array(i) for i in (idx if isinstance(idx, tuple) else (idx,)))


def _is_mask(i: Any) -> bool:
    if isinstance(i, Tensor):
        return i.dtype is dt.bool_
    a = np.asarray(i) if isinstance(i, (list, np.ndarray)) else None
    return a is not None and a.dtype == np.bool_ and a.size > 0 or (a is not None and a.dtype == np.bool_)


def _expand_masks(x: Tensor, idx: tuple) -> tuple:
    """Ellipsis expanded to full slices and every bool mask replaced by the integer index arrays
    of its true elements (read on the host: the selection's size depends on them)."""
    consumed = sum(i.ndim if isinstance(i, Tensor) and _is_mask(i) else np.asarray(i).ndim if _is_mask(i) else
                   0 if i is None or i is Ellipsis else 1 for i in idx)
    if sum(1 for i in idx if i is Ellipsis) > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    if consumed > x.ndim:
        raise IndexError(f"getitem: too many indices ({consumed}) for tensor of shape {x.shape}")
    out: list = []
    dim = 0
    for i in idx:
        if i is Ellipsis:
            out += [slice(None)] * (x.ndim - consumed)
            dim += x.ndim - consumed
        elif _is_mask(i):
            m = _host_mask(i) if isinstance(i, Tensor) else np.asarray(i, dtype=bool)
            want = x.shape[dim:dim + m.ndim]
            if m.shape != want:
                raise IndexError(f"getitem: mask of shape {m.shape} does not match dims {dim}.. {want} of "
                                 f"shape {x.shape}")
            out += [Tensor(a.astype(np.int32)) for a in np.nonzero(m)] if m.ndim else [Tensor(np.zeros(int(m), np.int32))]
            dim += m.ndim
        else:
            out.append(i)
            dim += i is not None
    return tuple(out)


def advanced_index(x: Tensor, idx: Any) -> Tensor:
    """x[idx] with tensor, list or bool-mask indices, numpy/torch advanced indexing: the index
    arrays broadcast together to a shape B; B replaces their dims where they are adjacent, and
    comes first when a slice or None separates them. Ints stay basic indices (torch). The
    indexed dims are merged into one and picked by the one-hot select (one kernel)."""
    idx = _expand_masks(x, idx if isinstance(idx, tuple) else (idx,))
    basic, adv, dims, xdims = [], [], [], []   # dims: the dim of each array index in the basic result
    out_dim = x_dim = 0
    for i in idx:
        if _is_array(i):
            adv.append(i)
            dims.append(out_dim)
            xdims.append(x_dim)
            basic.append(slice(None))
            out_dim += 1
        else:
            basic.append(i)
            out_dim += not isinstance(i, (int, np.integer))
        x_dim += i is not None
    y = _getitem(x, tuple(basic))
    if not adv:
        return y
    tensors = [_index_tensor(i, "getitem") for i in adv]
    sizes = [y.shape[d] for d in dims]
    b_shape = broadcast_shapes(*(t.shape for t, _ in tensors), op="getitem (index arrays)")
    flat: Tensor | None = None
    checks: list[g.IndexCheck] = []
    for (t, host), n, xd in zip(tensors, sizes, xdims):
        where = f"dim {xd} of shape {x.shape}"
        if len(tensors) == 1:   # the gather kernel wraps a negative index itself
            checks += _checked(t, host, n, "getitem", where)
            flat = t._expand_to(b_shape)
            continue
        w = _wrapped(t, host, n, "getitem", where)
        flat = w._expand_to(b_shape) if flat is None else flat * n + w._expand_to(b_shape)
    assert flat is not None
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    p = dims[0] if adjacent else 0
    rest = [k for k in range(y.ndim) if k not in dims]
    order = rest[:p] + dims + rest[p:]
    ym = y.permute(*order)
    pre, post = ym.shape[:p], ym.shape[p + len(dims):]
    total = prod(tuple(sizes))
    out_shape = pre + b_shape + post
    if total == 0 or prod(out_shape) == 0:
        return Tensor.zeros(out_shape, dtype=x.dtype)
    ym = ym.reshape(pre + (1,) * len(b_shape) + (total,) + post)
    at = flat.reshape((1,) * len(pre) + b_shape + (1,) + (1,) * len(post))
    return _attach(_gather(ym, at, p + len(b_shape), pre + b_shape + (1,) + post, squeeze=True), checks)


# --- assignment ------------------------------------------------------------------------------------
def _value_tensor(v: Any, x: Tensor) -> Tensor:
    t = v if isinstance(v, Tensor) else Tensor(np.asarray(v), dtype=x.dtype)
    return t.cast(x.dtype)


def _placed(x: Tensor, idx: tuple, v: Tensor, fill: Any) -> Tensor:
    """v (of the shape of x[idx], basic indices only) put where x[idx] reads, `fill` elsewhere:
    views only (flip, pad into strided slots, pad into place)."""
    # one (start, step, count) per dim of x; ints are count-1 dims squeezed in x[idx]
    consumed = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.ndim - consumed) + idx[k + 1:]
    else:
        idx = idx + (slice(None),) * (x.ndim - consumed)
    parts = [i for i in idx if i is not None]
    vshape = [s for i, s in zip(idx, _sel_shape(x, idx)) if i is not None]
    v = v.reshape(tuple(vshape))
    for d, (i, n) in enumerate(zip(parts, x.shape)):
        if isinstance(i, (int, np.integer)):
            start, step, count = int(i) % n, 1, 1
        else:
            start, stop, step = i.indices(n)
            count = len(range(start, stop, step))
        if count == 0:
            return None  # type: ignore[return-value]
        if step < 0:
            v = v.flip(d)
            start, step = start + (count - 1) * step, -step
        if step > 1:
            sh = v.shape
            v = v.reshape(sh[:d + 1] + (1,) + sh[d + 1:])
            w = [(0, 0)] * v.ndim
            w[d + 1] = (0, step - 1)
            v = v.pad(tuple(w), value=fill).reshape(sh[:d] + (count * step,) + sh[d + 1:])
            v = v.shrink(tuple((0, (count - 1) * step + 1) if k == d else (0, s) for k, s in enumerate(v.shape)))
        w = [(0, 0)] * v.ndim
        w[d] = (start, n - start - v.shape[d])
        v = v.pad(tuple(w), value=fill)
    return v


def _sel_shape(x: Tensor, idx: tuple) -> tuple[int, ...]:
    """Per entry of a full basic index (no Ellipsis): its size in x[idx] (1 for ints and None)."""
    out, dim = [], 0
    for i in idx:
        if i is None:
            out.append(1)
            continue
        n = x.shape[dim]
        out.append(1 if isinstance(i, (int, np.integer)) else len(range(*i.indices(n))))
        dim += 1
    return tuple(out)


def setitem(x: Tensor, idx: Any, value: Any) -> Tensor:
    """The value of x after torch's `x[idx] = value`, as a new lazy tensor: basic indices and
    bool masks select elementwise (no extra kernel in a fused chain), tensor indices scatter
    (last writer wins on repeats). `value` broadcasts to x[idx]'s shape."""
    sel = advanced_index(x, idx) if is_advanced(idx) else _getitem(x, idx)
    v = _value_tensor(value, x)
    try:
        vb = v._expand_to(broadcast_shapes(v.shape, sel.shape, op="setitem"))
    except ValueError:
        vb = None
    if vb is None or vb.shape != sel.shape:
        raise ValueError(f"setitem: value of shape {v.shape} cannot be broadcast to the indexed shape {sel.shape}")
    tup = idx if isinstance(idx, tuple) else (idx,)
    if len(tup) == 1 and _is_mask(tup[0]) and v.numel() == 1:
        m = _bool_mask(tup[0], "setitem")
        if m.shape == x.shape[:m.ndim]:
            return m.reshape(m.shape + (1,) * (x.ndim - m.ndim))._expand_to(x.shape).where(v.reshape(()), x)
    if not is_advanced(idx):
        vals = _placed(x, tup, vb, 0)
        if vals is None:
            return x
        inside = _placed(x, tup, Tensor.full(sel.shape, True), False)
        return inside.where(vals, x)
    # tensor indices: scatter into the flat positions the index selects (positions of an arange)
    pos = advanced_index(Tensor._positions(x.numel()).reshape(x.shape) if x.numel() else
                         Tensor.zeros(x.shape, dtype=dt.default_int), idx).reshape(-1)
    flat = scatter(x.reshape(-1), 0, pos, vb.reshape(-1))
    return flat.reshape(x.shape)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_setitem(self, idx: Any, value: Any) -> None:
    """torch's `t[idx] = value`, functional: `t` then stands for a new lazy value (value
    selected into the old one), so gradients flow to both; tensors holding the old value
    (torch's views of `t`) keep it. A leaf that requires grad cannot be assigned (torch)."""
    if self.requires_grad and not self._inputs and is_grad_enabled():
        raise RuntimeError("setitem: a leaf tensor that requires grad cannot be assigned in place "
                           "(like torch); assign into a clone, or under lg.no_grad()")
    old = Tensor.__new__(Tensor)
    old.node, old.requires_grad, old._inputs, old.grad = self.node, self.requires_grad, self._inputs, None
    new = setitem(old, idx, value)
    self.node, self.requires_grad, self._inputs = new.node, new.requires_grad or self.requires_grad, new._inputs


def _method_gather(self, dim: int, index: Any) -> Tensor:
    """torch.gather: `out[i][j] = self[i][index[i][j]]` for dim=1 (see lazygrad.frontend.indexing)."""
    return gather(self, dim, index)


def _method_index_select(self, dim: int, index: Any) -> Tensor:
    """torch.index_select: the entries at the 1-D integer `index` along `dim`."""
    return index_select(self, dim, index)


def _method_scatter(self, dim: int, index: Any, src: Any = None, value: Any = None, reduce: str | None = None) -> Tensor:
    """torch.scatter: a copy with `self[i][index[i][j]] = src[i][j]` (dim=1), or = value."""
    return scatter(self, dim, index, src, value, reduce)


def _method_scatter_add(self, dim: int, index: Any, src: Tensor) -> Tensor:
    """torch.scatter_add: a copy with `src[i][j]` added at `self[i][index[i][j]]` (dim=1)."""
    return scatter_add(self, dim, index, src)


def _method_scatter_reduce(self, dim: int, index: Any, src: Tensor, reduce: str, include_self: bool = True) -> Tensor:
    """torch.scatter_reduce with 'sum', 'prod', 'mean', 'amax' or 'amin'."""
    return scatter_reduce(self, dim, index, src, reduce, include_self)


def _method_masked_fill(self, mask: Any, value: Any) -> Tensor:
    """torch.masked_fill: `value` where the bool `mask` is true (elementwise, fuses)."""
    return masked_fill(self, mask, value)


def _method_masked_select(self, mask: Any) -> Tensor:
    """torch.masked_select: the 1-D tensor of elements where `mask` is true (reads the mask)."""
    return masked_select(self, mask)


def _method_nonzero(self, as_tuple: bool = False) -> Any:
    """torch.nonzero: the indices of the nonzero elements (reads the values on the host)."""
    return nonzero(self, as_tuple)


TENSOR_METHODS = {"_advanced_index": advanced_index, "__setitem__": _method_setitem, "gather": _method_gather, "index_select": _method_index_select, "scatter": _method_scatter, "scatter_add": _method_scatter_add, "scatter_reduce": _method_scatter_reduce, "masked_fill": _method_masked_fill, "masked_select": _method_masked_select, "nonzero": _method_nonzero}
