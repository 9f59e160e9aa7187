"""Resampling and padding modes: interpolate (nearest, linear / bilinear / trilinear, with
align_corners both ways, size or scale_factor) and pad with torch's F.pad widths (last dim
first) in the modes constant, reflect, replicate and circular, asymmetric and negative.

Both are views and lookups known from the geometry alone: a pad mode is a concatenation of
flipped, expanded or wrapped slices (one fused kernel with what follows); an interpolation
is, per resized dim, an index_select of the source rows it reads (host-computed indices)
mixed with host-computed weights, so its gradient is the scatter of those weights.

Public names: pad, interpolate, PadMode.
"""
from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np

from lazygrad.frontend.indexing import index_select
from lazygrad.frontend.tensor import Tensor, cat


class PadMode(Enum):
    """torch's F.pad modes."""

    CONSTANT = "constant"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    CIRCULAR = "circular"


def _slice(x: Tensor, dim: int, lo: int, hi: int) -> Tensor:
    return x.shrink(tuple((lo, hi) if k == dim else (0, s) for k, s in enumerate(x.shape)))


def _pad_dim(x: Tensor, dim: int, before: int, after: int, mode: PadMode) -> Tensor:
    n = x.shape[dim]
    if before < 0 or after < 0:
        # torch: circular crops first and wraps what is left; reflect and replicate pad the
        # whole dim first and crop the result
        if mode is PadMode.CIRCULAR:
            y = _slice(x, dim, max(0, -before), n - max(0, -after))
            return _pad_dim(y, dim, max(0, before), max(0, after), mode)
        y = _pad_dim(x, dim, max(0, before), max(0, after), mode)
        return _slice(y, dim, max(0, -before), y.shape[dim] - max(0, -after))
    if not before and not after:
        return x
    if mode is PadMode.REFLECT:
        if before >= n or after >= n:
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than dim {dim} of size {n}")
        parts = [_slice(x, dim, 1, before + 1).flip(dim), x, _slice(x, dim, n - after - 1, n - 1).flip(dim)]
    elif mode is PadMode.REPLICATE:
        if n == 0:
            raise ValueError(f"pad: replicate padding of dim {dim} of size 0")
        grow = (lambda t, m: t.expand(tuple(m if k == dim else s for k, s in enumerate(t.shape))))
        parts = [grow(_slice(x, dim, 0, 1), before), x, grow(_slice(x, dim, n - 1, n), after)]
    else:
        if before > n or after > n:
            raise ValueError(f"pad: circular padding ({before}, {after}) must be at most dim {dim} of size {n}")
        parts = [_slice(x, dim, n - before, n), x, _slice(x, dim, 0, after)]
    return cat([p for p in parts if p.shape[dim]], dim=dim)


def pad(x: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """torch.nn.functional.pad: `pad` = (left, right) of the last dim, then of the one before,
    ...; negative widths crop. Modes constant (with `value`), reflect, replicate, circular."""
    try:
        how = PadMode(mode)
    except ValueError:
        raise ValueError(f"pad: mode must be one of {[m.value for m in PadMode]}, got {mode!r}") from None
    widths = list(pad)
    if len(widths) % 2 or len(widths) // 2 > x.ndim or not all(isinstance(w, (int, np.integer)) for w in widths):
        raise ValueError(f"pad: expected an even number of ints (at most 2 per dim of {x.shape}), got {pad!r}")
    if how is PadMode.CONSTANT:
        full = [(0, 0)] * x.ndim
        for i in range(len(widths) // 2):
            full[x.ndim - 1 - i] = (int(widths[2 * i]), int(widths[2 * i + 1]))
        return x.pad(tuple(full), value=0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: a value only applies to mode 'constant', not {mode!r}")
    if len(widths) // 2 > x.ndim - 1:
        raise ValueError(f"pad: mode {mode!r} pads at most the {x.ndim - 1} trailing dims of {x.shape} (torch)")
    for i in range(len(widths) // 2):
        x = _pad_dim(x, x.ndim - 1 - i, int(widths[2 * i]), int(widths[2 * i + 1]), how)
    return x


_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _sizes(x: Tensor, size: Any, scale_factor: Any, recompute: bool | None) -> tuple[list[int], list[float | None]]:
    nd = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        sizes = [int(size)] * nd if isinstance(size, (int, np.integer)) else [int(s) for s in size]
        if len(sizes) != nd:
            raise ValueError(f"interpolate: size {size} must give {nd} sizes for input {x.shape}")
        return sizes, [None] * nd
    scales = [float(scale_factor)] * nd if isinstance(scale_factor, (int, float)) else [float(s) for s in scale_factor]
    if len(scales) != nd or min(scales) <= 0:
        raise ValueError(f"interpolate: scale_factor {scale_factor} must give {nd} positive factors for input {x.shape}")
    sizes = [int(math.floor(i * s)) for i, s in zip(x.shape[2:], scales)]
    return sizes, ([None] * nd if recompute else scales)


def _src_scale(n_in: int, n_out: int, scale: float | None) -> float:
    """torch's area_pixel_compute_scale without align_corners: 1/scale_factor when given."""
    return 1.0 / scale if scale is not None else n_in / n_out


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> Tensor:
    """torch.nn.functional.interpolate over (N, C, ...) for modes 'nearest', 'linear' (3-D),
    'bilinear' (4-D) and 'trilinear' (5-D), with align_corners both ways."""
    if x.ndim < 3:
        raise ValueError(f"interpolate: expected an (N, C, ...) input of 3 to 5 dims, got shape {x.shape}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError("interpolate: align_corners only applies to the linear modes")
    elif mode in _LINEAR:
        if _LINEAR[mode] != x.ndim - 2:
            raise ValueError(f"interpolate: mode {mode!r} needs a {_LINEAR[mode] + 2}-D input, got shape {x.shape}")
    else:
        raise NotImplementedError(f"interpolate: mode {mode!r} (supported: nearest, linear, bilinear, trilinear)")
    if not x.dtype.is_float:
        raise TypeError(f"interpolate: expected a floating point input, got {x.dtype.name}")
    sizes, scales = _sizes(x, size, scale_factor, recompute_scale_factor)
    out = x
    for k, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim = 2 + k
        n_in = x.shape[dim]
        dst = np.arange(n_out, dtype=np.float64)
        if mode == "nearest":
            src = np.minimum(np.floor(dst * _src_scale(n_in, n_out, scale)).astype(np.int64), n_in - 1)
            out = index_select(out, dim, src.astype(np.int32))
            continue
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0
        else:
            src = np.maximum((dst + 0.5) * _src_scale(n_in, n_out, scale) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w1 = (src - i0).astype(x.dtype.np)
        shape = [1] * x.ndim
        shape[dim] = n_out
        lo, hi = index_select(out, dim, i0.astype(np.int32)), index_select(out, dim, i1.astype(np.int32))
        w1t = Tensor(w1.reshape(shape), dtype=x.dtype)
        out = lo * (1 - w1t) + hi * w1t     # torch: l0 * x0 + l1 * x1, l0 = 1 - l1
    return out
