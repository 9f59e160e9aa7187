"""Pooling beyond conv.py's 2-D floor-mode max / average: 1-D and 3-D pools, ceil_mode,
return_indices and max_unpool2d, all on conv.py's sliding-window views.

- 1-D pools are 2-D pools with a unit height; 3-D pools pool (H, W) of every depth plane in
  2-D, then the depth in 1-D (max and sums are separable, and so are the counts that divide
  an average, being products of per-axis counts).
- ceil_mode adds the extra windows torch's ceil rule allows (the last one must start inside
  the input or its left padding) by padding the right end with the pool's identity; an
  average divides by torch's divisor: the window clipped to the padded input
  (count_include_pad) or to the input.
- max pools take each window's first maximum (argmax, then a one-hot select), so the gradient
  goes to that one element like torch's; return_indices picks its flat index h * W + w out of
  the same windows of a tensor of positions.
- adaptive pools: torch's windows [floor(i * n / o), ceil((i + 1) * n / o)) per dim; an average
  is a matmul with a host-built averaging matrix per dim, a max the first maximum of the
  windows' elements stacked on a new axis (row-major first, as torch's gradient and indices).

Public names: max_pool1d, max_pool2d, max_pool3d, avg_pool1d, avg_pool2d, avg_pool3d, max_unpool2d,
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, adaptive_max_pool1d, adaptive_max_pool2d.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazygrad.frontend.conv import first_max, windows
from lazygrad.frontend.convnd import tuple_arg
from lazygrad.frontend.indexing import _pick, index_select
from lazygrad.frontend.resample import adaptive_avg_dim, adaptive_bounds
from lazygrad import dtypes as dt
from lazygrad.ir.ops import Op, reduce_identity
from lazygrad.frontend.tensor import Tensor, stack
from lazygrad.frontend import conv as _conv


def _geometry(x: Tensor, nd: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
              op: str) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, padding, dilation, out, extra right padding) per spatial dim."""
    if x.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D input (N, C, {', '.join('DHW'[3 - nd:])}), got shape {x.shape}")
    k = tuple_arg(kernel_size, nd, "kernel_size", op, 1)
    s = k if stride is None or stride == [] or stride == () else tuple_arg(stride, nd, "stride", op, 1)
    p = tuple_arg(padding, nd, "padding", op, 0)
    d = tuple_arg(dilation, nd, "dilation", op, 1)
    if any(pp * 2 > kk for pp, kk in zip(p, k)):
        raise ValueError(f"{op}: padding {p} should be at most half of kernel size {k}")
    outs, extra = [], []
    for size, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, d):
        span = size + 2 * pp - dd * (kk - 1) - 1
        o = (-(-span // ss) if ceil_mode else span // ss) + 1
        if ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1   # torch: the last window must start inside the input or its left padding
        if o <= 0:
            raise ValueError(f"{op}: input {x.shape} is too small for kernel {k} with padding {p} "
                             f"and dilation {d}")
        outs.append(o)
        extra.append(max(0, (o - 1) * ss + dd * (kk - 1) + 1 - (size + 2 * pp)))
    return k, s, p, d, tuple(outs), tuple(extra)


def _windows2d(x: Tensor, k, s, p, d, extra, value) -> Tensor:
    if any(extra):
        x = x.pad(((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), value=value)
    return windows(x, k, s, p, d, value, "pool")


def _max2d(x: Tensor, k, s, p, d, extra, return_indices: bool):
    low = reduce_identity(Op.RMAX, x.dtype)
    win = _windows2d(x, k, s, p, d, extra, low)                    # (N, C, kh, kw, OH, OW)
    n, c, kh, kw, oh, ow = win.shape
    h, w = x.shape[2:]
    values, first = first_max(win.reshape(n, c, kh * kw, oh, ow), 2)
    if not return_indices:
        return values
    pos = Tensor._positions(h * w).reshape(1, 1, h, w)
    pwin = _windows2d(pos, k, s, p, d, extra, -1).reshape(1, 1, kh * kw, oh, ow)
    idx = _pick(pwin.expand(n, c, kh * kw, oh, ow), 2, first)
    return values, idx


def _returned(values: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """(values, indices) as a pool returns them: the positions, counted in int32 where they fit,
    stored as int64 like torch's (the cast fuses into the kernel that picks them)."""
    return values, positions.cast(dt.index_dtype)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False):
    """torch.nn.functional.max_pool2d with ceil_mode and return_indices (flat h * W + w, int64)."""
    k, s, p, d, _, extra = _geometry(x, 2, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    out = _max2d(x, k, s, p, d, extra, return_indices)
    return _returned(*out) if return_indices else out


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False):
    """torch.nn.functional.max_pool1d over (N, C, L)."""
    k, s, p, d, _, extra = _geometry(x, 1, kernel_size, stride, padding, dilation, ceil_mode, "max_pool1d")
    out = _max2d(x.unsqueeze(2), (1,) + k, (1,) + s, (0,) + p, (1,) + d, (0,) + extra, return_indices)
    if return_indices:
        return _returned(out[0].squeeze(2), out[1].squeeze(2))
    return out.squeeze(2)


def _depth_last(y: Tensor, n: int, c: int, depth: int) -> Tensor:
    """(N, C*D, H, W) -> (N, C*H*W, 1, D)."""
    h, w = y.shape[2:]
    return y.reshape(n, c, depth, h, w).permute(0, 1, 3, 4, 2).reshape(n, c * h * w, 1, depth)


def _depth_back(z: Tensor, n: int, c: int, h: int, w: int) -> Tensor:
    od = z.shape[-1]
    return z.reshape(n, c, h, w, od).permute(0, 1, 4, 2, 3)


def max_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False):
    """torch.nn.functional.max_pool3d over (N, C, D, H, W): (H, W) per plane, then depth (the
    first maximum of the first plane holding the window's maximum: torch's d, h, w scan order);
    with return_indices, (values, flat d * H * W + h * W + w indices)."""
    k, s, p, d, _, extra = _geometry(x, 3, kernel_size, stride, padding, dilation, ceil_mode, "max_pool3d")
    n, c, depth, h, w = x.shape
    y = _max2d(x.reshape(n, c * depth, h, w), k[1:], s[1:], p[1:], d[1:], extra[1:], return_indices)
    plane = y[0] if return_indices else y
    oh, ow = plane.shape[2:]
    dk, ds, dp, dd, de = (1, k[0]), (1, s[0]), (0, p[0]), (1, d[0]), (0, extra[0])
    z = _max2d(_depth_last(plane, n, c, depth), dk, ds, dp, dd, de, return_indices)
    if not return_indices:
        return _depth_back(z, n, c, oh, ow)
    values, at = z                                    # at: the depth of the picked plane
    m, od = c * oh * ow, values.shape[-1]
    # the (h, w) index of that plane's maximum, taken at depth `at`
    hw = _depth_last(y[1], n, c, depth).reshape(n, m, 1, depth).expand(n, m, od, depth)
    idx = at.reshape(n, m, od) * (h * w) + _pick(hw, 3, at.reshape(n, m, od))
    return _returned(_depth_back(values, n, c, oh, ow), _depth_back(idx.reshape(n, m, 1, od), n, c, oh, ow))


def _divisor(size: int, k: int, s: int, p: int, o: int, include_pad: bool) -> np.ndarray:
    """torch's avg_pool divisor along one axis: the window clipped to the padded input
    (count_include_pad) or to the input itself."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, size + p)
    if include_pad:
        return (end - start).astype(np.float64)
    return (np.minimum(end, size) - np.maximum(start, 0)).astype(np.float64)


def _avg2d(x: Tensor, k, s, p, extra, outs, include_pad: bool, divisor_override: int | None) -> Tensor:
    if not x.dtype.is_float:
        raise TypeError(f"avg_pool: expected a floating point input, got {x.dtype.name}")
    total = _windows2d(x, k, s, p, (1, 1), extra, 0.0).sum(axis=(2, 3))
    if divisor_override:
        return total / float(divisor_override)
    h, w = x.shape[2:]
    div = np.outer(_divisor(h, k[0], s[0], p[0], outs[0], include_pad), _divisor(w, k[1], s[1], p[1], outs[1], include_pad))
    return total * Tensor((1.0 / div).astype(x.dtype.np), dtype=x.dtype)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """torch.nn.functional.avg_pool2d with ceil_mode and divisor_override."""
    k, s, p, _, outs, extra = _geometry(x, 2, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    return _avg2d(x, k, s, p, extra, outs, count_include_pad, divisor_override)


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """torch.nn.functional.avg_pool1d over (N, C, L)."""
    k, s, p, _, outs, extra = _geometry(x, 1, kernel_size, stride, padding, 1, ceil_mode, "avg_pool1d")
    return _avg2d(x.unsqueeze(2), (1,) + k, (1,) + s, (0,) + p, (0,) + extra, (1,) + outs, count_include_pad,
                  None).squeeze(2)


def avg_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """torch.nn.functional.avg_pool3d over (N, C, D, H, W) (its divisor is the product of the
    per-axis ones, so planes then depth is exact)."""
    k, s, p, _, outs, extra = _geometry(x, 3, kernel_size, stride, padding, 1, ceil_mode, "avg_pool3d")
    n, c, depth, h, w = x.shape
    ovr = 1 if divisor_override else None   # sums, divided once at the end
    y = _avg2d(x.reshape(n, c * depth, h, w), k[1:], s[1:], p[1:], extra[1:], outs[1:], count_include_pad, ovr)
    oh, ow = y.shape[2:]
    z = _avg2d(_depth_last(y, n, c, depth), (1, k[0]), (1, s[0]), (0, p[0]), (0, extra[0]), (1, outs[0]),
               count_include_pad, ovr)
    out = _depth_back(z, n, c, oh, ow)
    return out / float(divisor_override) if divisor_override else out


def max_unpool2d(x: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Any = None) -> Tensor:
    """torch.nn.functional.max_unpool2d: zeros of (N, C, H_out, W_out) with x's values at the
    flat `indices` of max_pool2d(return_indices=True): a scatter (its gradient, the gather)."""
    op = "max_unpool2d"
    if x.ndim != 4 or indices.shape != x.shape:
        raise ValueError(f"{op}: expected a 4-D input and indices of the same shape, got {x.shape} and {indices.shape}")
    k = tuple_arg(kernel_size, 2, "kernel_size", op, 1)
    s = k if stride is None else tuple_arg(stride, 2, "stride", op, 1)
    p = tuple_arg(padding, 2, "padding", op, 0)
    n, c, h, w = x.shape
    size = tuple((i - 1) * ss - 2 * pp + kk for i, ss, pp, kk in zip((h, w), s, p, k))
    if output_size is not None:
        size = tuple(output_size)[-2:]
    out = Tensor.zeros(n, c, size[0] * size[1], dtype=x.dtype)
    flat = out.scatter(2, indices.reshape(n, c, h * w), x.reshape(n, c, h * w))
    return flat.reshape(n, c, *size)


def _adaptive_sizes(x: Tensor, output_size: Any, nd: int, op: str) -> tuple[int, ...]:
    """torch's output_size: an int or nd entries, None keeping the input's size."""
    if x.ndim != nd + 2 and x.ndim != nd + 1:
        raise ValueError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape {x.shape}")
    sizes = (output_size,) * nd if isinstance(output_size, (int, np.integer)) or output_size is None else tuple(output_size)
    if len(sizes) != nd:
        raise ValueError(f"{op}: output_size {output_size!r} must give {nd} sizes")
    spatial = x.shape[-nd:]
    out = tuple(int(spatial[k]) if v is None else int(v) for k, v in enumerate(sizes))
    if min(out) < 0 or any(o == 0 and i > 0 for o, i in zip(out, spatial)) or any(i == 0 for i in spatial):
        raise ValueError(f"{op}: output_size {output_size!r} and input {x.shape} must be non-empty")
    return out


def _adaptive_avg(x: Tensor, output_size: Any, nd: int, op: str) -> Tensor:
    sizes = _adaptive_sizes(x, output_size, nd, op)
    if not x.dtype.is_float:
        raise TypeError(f"{op}: expected a floating point input, got {x.dtype.name}")
    for k, o in enumerate(sizes):
        x = adaptive_avg_dim(x, x.ndim - nd + k, o)
    return x


def adaptive_avg_pool1d(x: Tensor, output_size: Any) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool1d over (N, C, L) or (C, L)."""
    return _adaptive_avg(x, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d over (N, C, H, W) or (C, H, W): per dim, the
    mean of windows [floor(i * n / o), ceil((i + 1) * n / o)) (a matmul with an averaging matrix)."""
    return _adaptive_avg(x, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(x: Tensor, output_size: Any) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool3d over (N, C, D, H, W) or (C, D, H, W)."""
    return _adaptive_avg(x, output_size, 3, "adaptive_avg_pool3d")


def _adaptive_max_dim(x: Tensor, dim: int, n_out: int, carry: Tensor | None = None):
    """Each adaptive window's first maximum along `dim`: (values, source positions along dim,
    `carry` taken at the same elements). The windows, of lengths up to L, are L index_selects
    stacked on a last axis (positions past a window's end read the max's identity)."""
    n_in = x.shape[dim]
    start, end = adaptive_bounds(n_in, n_out)
    span = int((end - start).max())
    shape = [1] * x.ndim
    shape[dim] = n_out
    low = reduce_identity(Op.RMAX, x.dtype)
    vals, carried = [], []
    for j in range(span):
        pos = np.minimum(start + j, n_in - 1).astype(np.int32)
        inside = Tensor((start + j < end).reshape(shape))
        vals.append(inside.where(index_select(x, dim, pos), low))
        if carry is not None:
            carried.append(index_select(carry, dim, pos))
    last = x.ndim
    values, first = first_max(stack(vals, last), last)
    where = first + Tensor(start.reshape(shape).astype(np.int32))
    return values, where, (_pick(stack(carried, last), last, first) if carry is not None else None)


def adaptive_max_pool1d(x: Tensor, output_size: Any, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool1d over (N, C, L) or (C, L)."""
    (o,) = _adaptive_sizes(x, output_size, 1, "adaptive_max_pool1d")
    values, pos, _ = _adaptive_max_dim(x, x.ndim - 1, o)
    return _returned(values, pos) if return_indices else values


def adaptive_max_pool2d(x: Tensor, output_size: Any, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool2d over (N, C, H, W) or (C, H, W); the gradient goes
    to each window's first maximum in row-major order, as torch's (the first row holding the
    window's maximum, then its first column); return_indices gives flat h * W + w indices."""
    oh, ow = _adaptive_sizes(x, output_size, 2, "adaptive_max_pool2d")
    w = x.shape[-1]
    rows, cols, _ = _adaptive_max_dim(x, x.ndim - 1, ow)
    values, r, c = _adaptive_max_dim(rows, x.ndim - 2, oh, carry=cols)
    return _returned(values, r * w + c) if return_indices else values


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_max_pool2d(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max pooling over (N, C, H, W) input, torch.nn.functional.max_pool2d's arguments (stride
    defaults to kernel_size); with return_indices, (values, flat h * W + w indices)."""
    if ceil_mode or return_indices:
        return max_pool2d(self, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _conv.max_pool2d(self, kernel_size, stride, padding, dilation)


def _method_avg_pool2d(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
               count_include_pad: bool = True, ceil_mode: bool = False, divisor_override: int | None = None) -> Tensor:
    """Average pooling over (N, C, H, W) input, torch.nn.functional.avg_pool2d's arguments."""
    if ceil_mode or divisor_override:
        return avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _conv.avg_pool2d(self, kernel_size, stride, padding, count_include_pad)


TENSOR_METHODS = {"max_pool2d": _method_max_pool2d, "avg_pool2d": _method_avg_pool2d}
