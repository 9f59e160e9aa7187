"""Convolution and pooling over (N, C, H, W) tensors.

- conv2d = one CONV2D node (graph.conv2d): a direct-convolution kernel (templates/conv.cl.j2,
  codegen_conv.py) whose epilogue takes bias and any activation after it, so a conv layer is
  one graph node and one kernel. Its gradient (autodiff) differentiates the im2col formulation
  below, which is also the fallback where the direct kernel does not apply (`use_direct`).
- im2col: `windows` turns every sliding window into two new axes (kernel position, output
  position) using only views: pad, reshape, expand, shrink, permute. Overlapping windows come
  from a repeat trick: the flattened input repeated R times and re-cut into rows `shift`
  elements longer starts each new row `shift` elements further on (shift = dilation along W,
  dilation rows along H). No data is copied by the views; the windows as an im2col matrix
  (N, groups, C/g*kh*kw, OH*OW) times the weights (groups, O/g, C/g*kh*kw) is one batched
  MATMUL (`conv2d_im2col_nodes`), its operand packed into panels by one copy kernel where
  linalg decides. Its gradient is the transpose of the views (col2im: shrinks, pads and a sum
  over the repeat axis) and matmuls.
- max_pool2d / avg_pool2d = a max / sum over the two kernel axes of the windows (one reduce
  kernel; padding is -inf / 0 as torch does).

Public names: conv2d, conv2d_im2col_nodes, use_direct, conv_policy, max_pool2d, avg_pool2d, windows,
conv_output_size, output_size.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazygrad.config import settings
from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node, conv_output_size
from lazygrad.frontend.linalg import matmul_nodes
from lazygrad.ir.ops import Op, reduce_identity
from lazygrad.frontend.tensor import Tensor

Pair = tuple[int, int]


def _pair(v: Any, name: str, op: str, minimum: int) -> Pair:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        p = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, (int, np.integer)) for x in v):
        p = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    if min(p) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return p


def output_size(shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                op: str) -> Pair:
    """(OH, OW) of a window sweep over an (N, C, H, W) input; a clear error if it is empty."""
    oh, ow = (conv_output_size(shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]) for i in (0, 1))
    if oh <= 0 or ow <= 0:
        raise ValueError(f"{op}: input {shape} is too small for kernel {kernel} with padding {padding} "
                         f"and dilation {dilation} (output would be {oh}x{ow})")
    return oh, ow


def _shifted_rows(x: Tensor, k: int, shift: int) -> Tensor:
    """x (..., T) -> (..., k, T) with y[..., r, j] = x[..., (j + r*shift) mod T]. Views only:
    the row repeated R times and re-cut into rows of T + shift elements starts every new row
    `shift` elements further on."""
    lead = x.shape[:-1]
    T = x.shape[-1]
    keep = [(0, s) for s in lead]
    if k == 1:
        return x.reshape(*lead, 1, T)
    reps = -(-(k * (T + shift)) // T)
    y = x.reshape(*lead, 1, T).expand(*lead, reps, T).reshape(*lead, reps * T)
    y = y.shrink(keep + [(0, k * (T + shift))]).reshape(*lead, k, T + shift)
    return y.shrink(keep + [(0, k), (0, T)])


def windows(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
            value: float = 0.0, op: str = "windows") -> Tensor:
    """(N, C, H, W) -> (N, C, kh, kw, OH, OW) sliding windows, padded with `value`:
    y[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    Everything is flattened first so the stacked views stay few and narrow (each level of a
    multi-view index costs a division per dim in every kernel that reads it)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    oh, ow = output_size(x.shape, kernel, stride, padding, dilation, op)
    # rows/columns past the last window are never kept, but the stride cuts below need them
    hp, wp = max(h + 2 * ph, oh * sh), max(w + 2 * pw, ow * sw)
    nc = n * c
    xp = x.reshape(nc, h, w)
    if (hp, wp) != (h, w):
        xp = xp.pad(((0, 0), (ph, hp - h - ph), (pw, wp - w - pw)), value=value)
    if dh == 1 and dw == 1 and kh <= sh and kw <= sw:
        # windows do not overlap: cut rows into strides and keep the first k of each
        y = xp.shrink(((0, nc), (0, oh * sh), (0, ow * sw))).reshape(nc, oh, sh, ow, sw)
        y = y.shrink(((0, nc), (0, oh), (0, kh), (0, ow), (0, kw)))          # (NC, OH, kh, OW, kw)
        return y.reshape(n, c, oh, kh, ow, kw).permute(0, 1, 3, 5, 2, 4)
    t = nc * hp * wp
    y = _shifted_rows(xp.reshape(t), kw, dw)                                  # (kw, T): + j*dw
    y = _shifted_rows(y, kh, dh * wp)                                         # (kw, kh, T): + i*dh rows
    y = y.reshape(kw, kh, nc, hp * wp).shrink(((0, kw), (0, kh), (0, nc), (0, oh * sh * wp)))
    y = y.reshape(kw, kh, nc, oh, sh * wp).shrink(((0, kw), (0, kh), (0, nc), (0, oh), (0, ow * sw)))
    if sw > 1:
        y = y.reshape(kw, kh, nc, oh, ow, sw).shrink(((0, kw), (0, kh), (0, nc), (0, oh), (0, ow), (0, 1)))
    y = y.reshape(kw, kh, n, c, oh, ow)
    return y.permute(2, 3, 1, 0, 4, 5)


def conv2d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: x (N, C, H, W), w (O, C/groups, kh, kw), bias (O,)."""
    op = "conv2d"
    if not isinstance(w, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(w).__name__}")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W) and weight (O, C/groups, kH, kW), "
                         f"got shapes {x.shape} and {w.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    s, d = _pair(stride, "stride", op, 1), _pair(dilation, "dilation", op, 1)
    p = _pair(padding, "padding", op, 0)
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    if c % groups or o % groups or cg * groups != c:
        raise ValueError(f"{op}: input {x.shape} with {c} channels and weight {w.shape} do not match "
                         f"groups={groups} (weight dim 1 must be C/groups = {c / groups:g}, O divisible by groups)")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (o,)):
        raise ValueError(f"{op}: bias must be a Tensor of shape ({o},), got "
                         f"{getattr(bias, 'shape', type(bias).__name__)}")
    d_ = dt.promote(x.dtype, w.dtype)
    if not d_.is_float:
        raise TypeError(f"{op}: expected floating point input and weight, got {x.dtype.name} and {w.dtype.name}")
    x, w = x.cast(d_), w.cast(d_)
    output_size(x.shape, (kh, kw), s, p, d, op)
    arg = gr.ConvArg(s, p, d, int(groups))
    if use_direct(x.shape, w.shape, arg, d_):
        out = Tensor._from(gr.conv2d(x.node, w.node, arg), x, w)
    else:
        out = Tensor._from(conv2d_im2col_nodes(x.node, w.node, arg), x, w)
    if bias is not None:
        # built from nodes: the same graph as out + bias.reshape(1, o, 1, 1), without the
        # broadcasting machinery (its Python cost is a good part of a small conv's time)
        b = bias.cast(d_)
        wide = gr.expand(gr.reshape(b.node, (1, o, 1, 1)), out.shape)
        out = Tensor._from(gr.elementwise(Op.ADD, out.node, wide), out, b)
    return out


def conv2d_im2col_nodes(x: Node, w: Node, arg: gr.ConvArg, pack: bool = True) -> Node:
    """The convolution as the windows of x (an im2col matrix of views) times the weights: one
    batched MATMUL. The fallback of the direct kernel (`pack`: its operands packed where linalg
    says), and, unpacked, what CONV2D's gradient differentiates: the gradient products then
    pack their own operands (dw reads the transposed windows once, not a packed copy again)."""
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    groups = arg.groups
    win = windows(Tensor._from(x), (kh, kw), arg.stride, arg.padding, arg.dilation, 0.0, "conv2d")
    oh, ow = win.shape[-2:]
    kg = cg * kh * kw
    cols = win.reshape(n, groups, kg, oh * ow).node               # im2col, a view
    wm = gr.expand(gr.reshape(w, (1, groups, o // groups, kg)), (n, groups, o // groups, kg))
    out = matmul_nodes(wm, cols) if pack else gr.matmul(wm, cols)  # (N, g, O/g, OH*OW)
    return gr.reshape(out, (n, o, oh, ow))


# The direct kernel computes in the operands' own dtype; fp16 keeps the matmul path (which
# accumulates in float32).
_DIRECT_DTYPES = ("float32", "float64")


def conv_policy() -> str:
    """LAZYGRAD_CONV: 'auto' (default), 'direct' or 'im2col' (forces one path where it applies)."""
    return settings().conv


def use_direct(x_shape: tuple[int, ...], w_shape: tuple[int, ...], arg: gr.ConvArg, d: dt.DType) -> bool:
    """Direct kernel (one CONV2D node) or windows + matmul? Measured on PoCL (AVX-512, 2 cores;
    conv + bias + relu, ms direct / im2col): (32,3,32,32)x(16,3,3,3) 0.3/1.1, (8,64,32,32)x
    (64,64,3,3) pad 1 4.7/27, (8,128,16,16)x(128,128,3,3) 1.9/26, (4,512,8,8)x(512,512,3,3)
    6/15, and 1x1 convs (a plain matmul: 8x256x16x16 by 256 1.3/1.2, 8x512x16x16 by 512
    4.7/3.8-6.5, 8x1024x8x8 by 1024 6-9/6.6-7.1) within noise of each other. So: direct for
    every float32/float64 conv; the im2col matmul for other dtypes or when LAZYGRAD_CONV says."""
    return d.name in _DIRECT_DTYPES and conv_policy() != "im2col"


def _pool_args(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               op: str) -> tuple[Pair, Pair, Pair, Pair]:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {x.shape}")
    k = _pair(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _pair(stride, "stride", op, 1)
    p = _pair(padding, "padding", op, 0)
    d = _pair(dilation, "dilation", op, 1)
    eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    if any(pp * 2 > e for pp, e in zip(p, eff)):
        raise ValueError(f"{op}: padding {p} should be at most half of the effective kernel size {tuple(eff)}")
    return k, s, p, d


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """torch.nn.functional.max_pool2d (floor mode); padding counts as -inf."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation, "max_pool2d")
    return windows(x, k, s, p, d, reduce_identity(Op.RMAX, x.dtype), "max_pool2d").amax((2, 3))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               count_include_pad: bool = True) -> Tensor:
    """torch.nn.functional.avg_pool2d (floor mode)."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, 1, "avg_pool2d")
    if not x.dtype.is_float:
        raise TypeError(f"avg_pool2d: expected a floating point input, got {x.dtype.name}")
    total = windows(x, k, s, p, d, 0.0, "avg_pool2d").sum(axis=(2, 3))
    if count_include_pad or p == (0, 0):
        return total * (1.0 / (k[0] * k[1]))
    # the number of real (unpadded) elements under each window, from the geometry alone
    h, w = x.shape[2:]
    rows = _window_counts(h, k[0], s[0], p[0])
    cols = _window_counts(w, k[1], s[1], p[1])
    counts = np.outer(rows, cols).astype(x.dtype.np)
    return total / Tensor(counts, dtype=x.dtype)


def _window_counts(size: int, k: int, s: int, p: int) -> np.ndarray:
    o = conv_output_size(size, k, s, p, 1)
    starts = np.arange(o) * s - p
    return np.minimum(starts + k, size) - np.maximum(starts, 0)
