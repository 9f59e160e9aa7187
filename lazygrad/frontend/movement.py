"""Movement as Tensor methods: reshape/view, permute/transpose, expand, pad, shrink, flip,
squeeze/unsqueeze, slicing helpers, cat and stack helpers: views, no data copied.

The Tensor class lists none of these: lazygrad/frontend/__init__.py installs TENSOR_METHODS.

Public names: TENSOR_METHODS.
"""
from __future__ import annotations

import math
import numpy as np
from collections.abc import Sequence
from typing import Any

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.ir.ops import Op
from lazygrad.ir.view import prod
from lazygrad.frontend.bitcast import bitcast
from lazygrad.frontend.tensor import Tensor, _getitem, _norm_axis, _py, _shape_arg, broadcast_shapes


def _method_reshape(self, *shape: Any) -> Tensor:
    """The same elements in a new shape (one size may be -1); a view when the layout allows,
    like torch. Also `view`."""
    shape = _shape_arg(shape)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = prod(tuple(s for s in shape if s != -1))
        if known == 0 or self.numel() % known:
            raise ValueError(f"reshape: cannot reshape tensor of shape {self.shape} ({self.numel()} elements) into {shape}")
        shape = tuple(self.numel() // known if s == -1 else s for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"reshape: negative size in {shape}")
    if prod(shape) != self.numel():
        raise ValueError(f"reshape: cannot reshape tensor of shape {self.shape} ({self.numel()} elements) into {shape}")
    return Tensor._from(g.reshape(self.node, shape), self)


def _method_view(self, *shape: Any) -> Tensor:
    """`reshape` (a view when the layout allows); `view(dtype)` reinterprets the bits as
    another dtype, like torch (a bitcast: `x.view(lg.int32)` of float32; `x.view(lg.uint8)`
    of int32 has a last dim four times as long)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
        return self.bitcast(shape[0])
    return self.reshape(*shape)


def _method_bitcast(self, dtype: Any) -> Tensor:
    """The same bits read as `dtype` (not bool), like torch's view(dtype): between sizes the
    last dim scales by their ratio; no gradient."""
    return bitcast(self, dtype)


def _method_permute(self, *order: Any) -> Tensor:
    """The dims reordered as `order` (a view): `x.permute(1, 0)` swaps two dims."""
    order = _shape_arg(order)
    if len(order) != self.ndim:
        raise ValueError(f"permute: order {order} does not match {self.ndim} dims of shape {self.shape}")
    norm = tuple(_norm_axis(o, self.ndim, "permute") for o in order)
    if sorted(norm) != list(range(self.ndim)):
        raise ValueError(f"permute: {order} is not a permutation of the dims of shape {self.shape}")
    return Tensor._from(g.permute(self.node, norm), self)


def _method_transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap dims `dim0` and `dim1` (default the last two; a 0-d or 1-d tensor is returned as
    is)."""
    if self.ndim < 2 and dim0 in (-2, -1) and dim1 in (-2, -1):
        return self
    a, b = _norm_axis(dim0, self.ndim, "transpose"), _norm_axis(dim1, self.ndim, "transpose")
    order = list(range(self.ndim))
    order[a], order[b] = order[b], order[a]
    return self.permute(*order)


@property
def _method_T(self) -> Tensor:
    """The tensor with all its dims reversed (a view, no copy): the transpose of a matrix."""
    return self.permute(*reversed(range(self.ndim)))


def _method_flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims `start_dim`..`end_dim` into one (a 0-d tensor becomes shape (1,))."""
    if self.ndim == 0:
        return self.reshape(1)
    s, e = _norm_axis(start_dim, self.ndim, "flatten"), _norm_axis(end_dim, self.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} is after end_dim {end_dim}")
    return self.reshape(self.shape[:s] + (prod(self.shape[s:e + 1]),) + self.shape[e + 1:])


def _method_squeeze(self, dim: Any = None) -> Tensor:
    """Remove dims of size 1 (all of them, or only those in `dim`)."""
    if dim is None:
        return self.reshape(tuple(s for s in self.shape if s != 1))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = {_norm_axis(d, self.ndim, "squeeze") for d in dims}
    return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1)))


def _method_unsqueeze(self, dim: int) -> Tensor:
    """Insert a dim of size 1 at position `dim` (negative counts from the end, like torch)."""
    if not -self.ndim - 1 <= dim <= self.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {self.ndim} dims")
    d = dim % (self.ndim + 1)
    return self.reshape(self.shape[:d] + (1,) + self.shape[d:])


def _method_expand(self, *shape: Any) -> Tensor:
    """Broadcast size-1 dims to `shape` without copying (-1 keeps a size); new leading dims may
    be added."""
    shape = _shape_arg(shape)
    if len(shape) < self.ndim:
        raise ValueError(f"expand: target {shape} has fewer dims than shape {self.shape}")
    if any(t < -1 for t in shape):
        raise ValueError(f"expand: invalid size in {shape} for shape {self.shape} (sizes are >= 0, or -1 to keep one)")
    if any(t == -1 for t in shape[:len(shape) - self.ndim]):
        raise ValueError(f"expand: -1 is not allowed for the new leading dims of {shape} (shape {self.shape})")
    x = self.reshape((1,) * (len(shape) - self.ndim) + self.shape) if len(shape) > self.ndim else self
    new = tuple(s if t == -1 else t for s, t in zip(x.shape, shape))
    for s, t in zip(x.shape, new):
        if s != t and s != 1:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape}")
    return Tensor._from(g.expand(x.node, new), x)


def _method_expand_as(self, other: Tensor) -> Tensor:
    """`expand` to the shape of `other`."""
    return self.expand(other.shape)


def _method_broadcast_to(self, shape: Any) -> Tensor:
    """Broadcast to `shape` by numpy/torch broadcasting rules (a view)."""
    return self._expand_to(broadcast_shapes(self.shape, tuple(shape), op="broadcast_to")) if tuple(shape) != self.shape else self


def _method_flip(self, dims: Any = None, *more: int) -> Tensor:
    """Reverse the order of elements along `dims` (all dims when None)."""
    if dims is None:
        dims = tuple(range(self.ndim))
    elif isinstance(dims, int):
        dims = (dims,) + more
    axes = tuple(_norm_axis(d, self.ndim, "flip") for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip: dims {tuple(dims)} name the same dim twice (shape {self.shape})")
    return Tensor._from(g.flip(self.node, axes), self)


def _method_pad(self, widths: Any, value: float = 0.0, mode: str = "constant") -> Tensor:
    """numpy-style widths ((before0, after0), ...) per dim (an int or one pair broadcasts);
    negative widths crop."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} (only 'constant')")
    if isinstance(widths, int):
        widths = ((widths, widths),) * self.ndim
    widths = tuple(tuple(w) if isinstance(w, (tuple, list)) else (w, w) for w in widths)
    if len(widths) == 1 and self.ndim > 1:
        widths = widths * self.ndim
    if len(widths) != self.ndim or any(len(w) != 2 for w in widths):
        raise ValueError(f"pad: widths {widths} do not give (before, after) for each of {self.ndim} dims of {self.shape}")
    crop = tuple((max(0, -b), s - max(0, -a)) for (b, a), s in zip(widths, self.shape))
    if any(lo > hi for lo, hi in crop):
        raise ValueError(f"pad: negative widths {widths} crop more than shape {self.shape}")
    x = Tensor._from(g.shrink(self.node, crop), self) if any(b < 0 or a < 0 for b, a in widths) else self
    pos = tuple((max(0, b), max(0, a)) for b, a in widths)
    return Tensor._from(g.pad(x.node, pos, _py(value, x.dtype)), x)


def _method_shrink(self, bounds: Sequence[tuple[int, int]]) -> Tensor:
    """Keep the elements in [start, stop) along each dim, given one (start, stop) pair per dim
    (a view)."""
    return Tensor._from(g.shrink(self.node, tuple(tuple(b) for b in bounds)), self)


def _method_repeat(self, *sizes: Any) -> Tensor:
    """Tile the tensor `sizes[i]` times along each dim, like torch's `repeat` (numpy's `tile`)."""
    sizes = _shape_arg(sizes)
    if len(sizes) < self.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts for a tensor with {self.ndim} dims")
    x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
    inter = []
    for s in x.shape:
        inter += [1, s]
    expanded = []
    for r, s in zip(sizes, x.shape):
        expanded += [r, s]
    return x.reshape(inter).expand(expanded).reshape(tuple(r * s for r, s in zip(sizes, x.shape)))


def _method_split(self, size: int | Sequence[int], dim: int = 0) -> list[Tensor]:
    """Split along `dim` into pieces of `size` elements (the last may be shorter) or of the
    listed sizes; a list of views."""
    ax = _norm_axis(dim, self.ndim, "split")
    n = self.shape[ax]
    if isinstance(size, int) and (size < 0 or (size == 0 and n)):
        raise ValueError(f"split: split size {size} for dim {dim} of size {n} (shape {self.shape}); "
                         "it must be positive (0 only for an empty dim)")
    if isinstance(size, int) and (size == 0 or n == 0):
        return [self]  # an empty dim splits into one empty piece (torch)
    if not isinstance(size, int) and any(s < 0 for s in size):
        raise ValueError(f"split: negative size in {list(size)} (shape {self.shape})")
    sizes = [size] * (n // size) + ([n % size] if n % size else []) if isinstance(size, int) else list(size)
    if sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not add up to {n} along dim {dim} of {self.shape}")
    out, start = [], 0
    for s in sizes:
        bounds = [(0, d) for d in self.shape]
        bounds[ax] = (start, start + s)
        out.append(self.shrink(bounds))
        start += s
    return out


def _method_chunk(self, chunks: int, dim: int = 0) -> list[Tensor]:
    """Split along `dim` into `chunks` pieces of equal size (the last may be smaller), like
    torch."""
    n = self.shape[_norm_axis(dim, self.ndim, "chunk")]
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks} (shape {self.shape})")
    return self.split(max(1, math.ceil(n / chunks)), dim)


def _method_getitem(self, idx: Any) -> Tensor:
    return _getitem(self, idx)


TENSOR_METHODS = {
    "reshape": _method_reshape,
    "view": _method_view,
    "bitcast": _method_bitcast,
    "permute": _method_permute,
    "transpose": _method_transpose,
    "T": _method_T,
    "flatten": _method_flatten,
    "squeeze": _method_squeeze,
    "unsqueeze": _method_unsqueeze,
    "expand": _method_expand,
    "expand_as": _method_expand_as,
    "broadcast_to": _method_broadcast_to,
    "flip": _method_flip,
    "pad": _method_pad,
    "shrink": _method_shrink,
    "repeat": _method_repeat,
    "split": _method_split,
    "chunk": _method_chunk,
    "__getitem__": _method_getitem,
}
