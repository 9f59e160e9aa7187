"""Resampling and padding modes: interpolate (nearest, linear / bilinear / trilinear, bicubic
(torch's A = -0.75), with align_corners both ways, area; size or scale_factor) and pad with torch's F.pad widths (last dim
first) in the modes constant, reflect, replicate and circular, asymmetric and negative.

Both are views and lookups known from the geometry alone: a pad mode is a concatenation of
flipped, expanded or wrapped slices (one fused kernel with what follows); an interpolation
is, per resized dim, an index_select of the source rows it reads (host-computed indices)
mixed with host-computed weights, so its gradient is the scatter of those weights.

Public names: pad, interpolate, PadMode, CUBIC_A, adaptive_bounds, adaptive_avg_dim.
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


CUBIC_A = -0.75  # torch's bicubic: the cubic convolution kernel's A (Keys)


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """torch's get_cubic_upsample_coefficients: the 4 tap weights at fraction t, (len(t), 4)."""
    a = CUBIC_A

    def near(x):   # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):    # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def _source(dst: np.ndarray, n_in: int, n_out: int, scale: float | None, align_corners: bool | None,
            clamp: bool) -> np.ndarray:
    """torch's area_pixel_compute_source_index (cubic: not clamped at 0)."""
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0
    src = (dst + 0.5) * _src_scale(n_in, n_out, scale) - 0.5
    return np.maximum(src, 0.0) if clamp else src


def _mix(out: Tensor, dim: int, taps: list[np.ndarray], weights: np.ndarray) -> Tensor:
    """sum_k weights[:, k] * out.index_select(dim, taps[k]): host-computed rows and weights."""
    shape = [1] * out.ndim
    shape[dim] = weights.shape[0]
    total: Tensor | None = None
    for k, idx in enumerate(taps):
        term = index_select(out, dim, idx.astype(np.int32)) * Tensor(weights[:, k].reshape(shape), dtype=out.dtype)
        total = term if total is None else total + term
    assert total is not None
    return total


def adaptive_bounds(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive pooling windows along one dim: [floor(i * n_in / n_out),
    ceil((i + 1) * n_in / n_out)) for each output i."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def adaptive_avg_dim(x: Tensor, dim: int, n_out: int) -> Tensor:
    """The mean of each adaptive window along `dim`: a product with a host-built (n_in, n_out)
    averaging matrix (windows of any length, one matmul; its gradient is the transpose)."""
    n_in = x.shape[dim]
    start, end = adaptive_bounds(n_in, n_out)
    m = np.zeros((n_in, n_out), np.float64)
    for o, (a, b) in enumerate(zip(start, end)):
        m[a:b, o] = 1.0 / (b - a)
    last = x.transpose(dim, -1) if dim != x.ndim - 1 else x
    y = last @ Tensor(m.astype(x.dtype.np), dtype=x.dtype)
    return y.transpose(dim, -1) if dim != x.ndim - 1 else y


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> Tensor:
    """torch.nn.functional.interpolate over (N, C, ...) for modes 'nearest', 'linear' (3-D),
    'bilinear' (4-D), 'trilinear' (5-D) and 'bicubic' (4-D), with align_corners both ways, and
    'area' (adaptive average pooling to the output size)."""
    if x.ndim < 3:
        raise ValueError(f"interpolate: expected an (N, C, ...) input of 3 to 5 dims, got shape {x.shape}")
    if mode in ("nearest", "area"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners only applies to the linear and bicubic modes")
    elif mode in _LINEAR or mode == "bicubic":
        want = _LINEAR.get(mode, 2)
        if want != x.ndim - 2:
            raise ValueError(f"interpolate: mode {mode!r} needs a {want + 2}-D input, got shape {x.shape}")
    else:
        raise NotImplementedError(f"interpolate: mode {mode!r} (supported: nearest, linear, bilinear, "
                                  "trilinear, bicubic, area)")
    if not x.dtype.is_float:
        raise TypeError(f"interpolate: expected a floating point input, got {x.dtype.name}")
    sizes, scales = _sizes(x, size, scale_factor, recompute_scale_factor)
    out = x
    for k, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim = 2 + k
        n_in = x.shape[dim]
        dst = np.arange(n_out, dtype=np.float64)
        if mode == "area":
            out = adaptive_avg_dim(out, dim, n_out)
            continue
        if mode == "nearest":
            src = np.minimum(np.floor(dst * _src_scale(n_in, n_out, scale)).astype(np.int64), n_in - 1)
            out = index_select(out, dim, src.astype(np.int32))
            continue
        if mode == "bicubic":
            src = _source(dst, n_in, n_out, scale, align_corners, clamp=False)
            base = np.floor(src).astype(np.int64)
            taps = [np.clip(base - 1 + j, 0, n_in - 1) for j in range(4)]
            out = _mix(out, dim, taps, _cubic_weights(src - base).astype(x.dtype.np))
            continue
        src = _source(dst, n_in, n_out, scale, align_corners, clamp=True)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w1 = (src - i0).astype(x.dtype.np)
        shape = [1] * x.ndim
        shape[dim] = n_out
        lo, hi = index_select(out, dim, i0.astype(np.int32)), index_select(out, dim, i1.astype(np.int32))
        w1t = Tensor(w1.reshape(shape), dtype=x.dtype)
        out = lo * (1 - w1t) + hi * w1t     # torch: l0 * x0 + l1 * x1, l0 = 1 - l1
    return out
