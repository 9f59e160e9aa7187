"""Shape ops with torch's names: masks, rolls, windows, diagonals, repeats; views and
elementwise selects over the existing nodes (tril/triu are a where against index comparisons
and fuse into their neighbours; roll is a concatenation of two views, one kernel).

Public names: tril, triu, roll, diagonal, diag, unflatten, repeat_interleave, unfold, clone,
meshgrid.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lazygrad.ir.windows import windows
from lazygrad.frontend.tensor import Tensor, _norm_axis, cat


def _tri_mask(x: Tensor, diagonal: int, upper: bool, op: str) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op}: the input needs at least 2 dims, got shape {x.shape}")
    r, c = x.shape[-2:]
    offset = Tensor._positions(c).reshape(1, c) - Tensor._positions(r).reshape(r, 1)  # column - row
    return offset >= diagonal if upper else offset <= diagonal


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (column - row <= diagonal), zeros above."""
    return _tri_mask(x, diagonal, False, "tril").where(x, Tensor.full((), 0, dtype=x.dtype))


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (column - row >= diagonal), zeros below."""
    return _tri_mask(x, diagonal, True, "triu").where(x, Tensor.full((), 0, dtype=x.dtype))


def roll(x: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
    """Shift elements along `dims` cyclically by `shifts` (flattened when dims is None)."""
    if dims is None:
        if not isinstance(shifts, int):
            raise ValueError("roll: several shifts need as many dims")
        return roll(x.flatten(), shifts, 0).reshape(x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    for s, d in zip(shifts, dims):
        ax = _norm_axis(d, x.ndim, "roll")
        n = x.shape[ax]
        k = s % n if n else 0
        if k:
            lo = [slice(None)] * x.ndim
            hi = [slice(None)] * x.ndim
            lo[ax], hi[ax] = slice(n - k, n), slice(0, n - k)
            x = cat([x[tuple(lo)], x[tuple(hi)]], dim=ax)
    return x


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of dims dim1 and dim2 (offset > 0 above it), as the last dim of a view."""
    a, b = _norm_axis(dim1, x.ndim, "diagonal"), _norm_axis(dim2, x.ndim, "diagonal")
    if a == b:
        raise ValueError(f"diagonal: dim1 and dim2 are the same dim {a} (shape {x.shape})")
    rest = [k for k in range(x.ndim) if k not in (a, b)]
    y = x.permute(*rest, a, b)
    r, c = y.shape[-2:]
    lead = y.shape[:-2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    m = max(0, min(r - r0, c - c0))
    y = y.shrink([(0, s) for s in lead] + [(min(r0, r), min(r0, r) + m), (min(c0, c), min(c0, c) + m)])
    if m == 0:
        return y.reshape(*lead, 0)
    # the diagonal of an m x m block is every (m + 1)-th element of its flat view
    return y.reshape(*lead, m * m)[..., ::m + 1]


_diagonal = diagonal  # diag's argument of torch's name `diagonal` hides the function


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """torch.diag: a 1-D tensor becomes the square matrix with it on diagonal `diagonal`; a 2-D
    tensor gives that diagonal."""
    if x.ndim == 2:
        return _diagonal(x, diagonal)
    if x.ndim != 1:
        raise ValueError(f"diag: the input must be 1-D or 2-D, got shape {x.shape}")
    k = abs(diagonal)
    n = x.shape[0] + k
    offset = Tensor._positions(n).reshape(1, n) - Tensor._positions(n).reshape(n, 1)  # column - row
    v = x.pad(((0, k),))
    v = v.reshape(n, 1) if diagonal >= 0 else v.reshape(1, n)  # by row above, by column below
    return (offset == diagonal).where(v, Tensor.full((), 0, dtype=x.dtype))


def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim `dim` into `sizes` (one may be -1)."""
    ax = _norm_axis(dim, x.ndim, "unflatten")
    sizes = tuple(sizes)
    if sizes.count(-1) > 1:
        raise ValueError(f"unflatten: only one size may be -1, got {sizes}")
    known = int(np.prod([s for s in sizes if s != -1]))
    n = x.shape[ax]
    if -1 in sizes:
        if known == 0 or n % known:
            raise ValueError(f"unflatten: sizes {sizes} do not divide dim {dim} of size {n}")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    if int(np.prod(sizes)) != n:
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to dim {dim} of size {n} (shape {x.shape})")
    return x.reshape(*x.shape[:ax], *sizes, *x.shape[ax + 1:])


def repeat_interleave(x: Tensor, repeats: Any, dim: int | None = None) -> Tensor:
    """Repeat each element `repeats` times along `dim` (flattened when None); `repeats` an int
    (a view) or one count per element (a list, array or realized tensor: a gather)."""
    if dim is None:
        x, dim = x.flatten(), 0
    ax = _norm_axis(dim, x.ndim, "repeat_interleave")
    n = x.shape[ax]
    if isinstance(repeats, Tensor):
        repeats = repeats.numpy()
    if isinstance(repeats, (int, np.integer)) or (np.ndim(repeats) == 0):
        r = int(repeats)
        if r < 0:
            raise ValueError(f"repeat_interleave: repeats must be >= 0, got {r}")
        shape = list(x.shape)
        y = x.unsqueeze(ax + 1).expand(*shape[:ax + 1], r, *shape[ax + 1:])
        return y.reshape(*shape[:ax], n * r, *shape[ax + 1:])
    counts = np.asarray(repeats).reshape(-1)
    if counts.size != n or (counts < 0).any():
        raise ValueError(f"repeat_interleave: {counts.size} repeat counts (each >= 0) for dim {dim} of size {n}")
    index = np.repeat(np.arange(n), counts)
    return x[(slice(None),) * ax + (Tensor(index.astype(np.int32)),)]


def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: the windows of `size` elements every `step` along `dimension`, that dim
    becoming the window count and a new last dim of `size` (a view, the windows of pooling)."""
    ax = _norm_axis(dimension, x.ndim, "unfold") if x.ndim else 0
    n = x.shape[ax] if x.ndim else 1
    if size < 0 or step <= 0 or size > n:
        raise ValueError(f"unfold: size {size} (at most {n}) and step {step} (positive) for dim {dimension} "
                         f"of shape {x.shape}")
    if x.ndim == 0:
        return x.reshape(size) if size == 1 else x.reshape(0)
    moved = x.transpose(ax, -1) if ax != x.ndim - 1 else x
    lead = moved.shape[:-1]
    m = int(np.prod(lead)) if lead else 1
    flat = moved.reshape(1, m, 1, n)
    w = Tensor._from(windows(flat.node, (1, size), (1, step), (0, 0), (1, 1), 0.0), flat)
    count = (n - size) // step + 1
    y = w.reshape(m, size, count).permute(0, 2, 1).reshape(*lead, count, size)
    return y.transpose(ax, -2) if ax != x.ndim - 1 else y


def clone(x: Tensor) -> Tensor:
    """The same values as a new tensor (the graph is immutable: no copy is needed until
    written, and nothing writes in place); gradients flow through like torch's clone."""
    return Tensor._from(x.node, x)


def meshgrid(*tensors: Tensor | Sequence[Tensor], indexing: str = "ij") -> list[Tensor]:
    """torch.meshgrid: 1-D tensors broadcast against each other into N-D grids (views);
    indexing 'ij' (matrix, torch's default) or 'xy' (Cartesian: the first two dims swapped)."""
    ts = list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if any(t.ndim > 1 for t in ts):
        raise ValueError(f"meshgrid: the inputs must be 0-D or 1-D, got shapes {[t.shape for t in ts]}")
    ts = [t.reshape(-1) for t in ts]
    order = list(range(len(ts)))
    if indexing == "xy" and len(ts) >= 2:
        order[0], order[1] = 1, 0
    shape = tuple(ts[k].shape[0] for k in order)
    out = []
    for i, t in enumerate(ts):
        pos = order.index(i)
        out.append(t.reshape(*[-1 if k == pos else 1 for k in range(len(ts))]).expand(*shape))
    return out


# the Tensor methods these functions are (lazygrad/frontend/__init__ installs them)
METHODS = {"tril": tril, "triu": triu, "roll": roll, "diagonal": diagonal, "diag": diag, "unflatten": unflatten,
           "repeat_interleave": repeat_interleave, "unfold": unfold, "clone": clone}


