"""Convolution and pooling over (N, C, H, W) tensors: argument checks and torch's signatures.

- conv2d = one CONV2D node (graph.conv2d): a direct-convolution kernel (templates/conv.cl.j2,
  codegen/conv.py) whose epilogue takes bias and any activation after it, so a conv layer is
  one graph node and one kernel. The choose_conv pass (lazygrad/passes) turns it into the
  windows + matmul formulation (ir.windows.conv2d_im2col) where the direct kernel does not
  apply; its gradient rule (autodiff) differentiates that formulation too.
- windows: every sliding window as two new axes, with views only (ir.windows).
- max_pool2d = each window's first maximum (first_max: argmax and a pick, one row-wise kernel;
  the gradient goes to that element as torch's), avg_pool2d = a sum over the two kernel axes of
  the windows (one reduce kernel); padding is -inf / 0 as torch does.

Public names: conv2d, max_pool2d, avg_pool2d, first_max, string_padding, PADDING_MODES, windows,
conv_output_size, output_size.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import conv_output_size
from lazygrad.ir.windows import windows as ir_windows
from lazygrad.ir.ops import Op, reduce_identity
from lazygrad.frontend.indexing import _pick
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


def windows(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
            value: float = 0.0, op: str = "windows") -> Tensor:
    """(N, C, H, W) -> (N, C, kh, kw, OH, OW) sliding windows, padded with `value`:
    y[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw] (views only: ir.windows)."""
    output_size(x.shape, kernel, stride, padding, dilation, op)
    return Tensor._from(ir_windows(x.node, kernel, stride, padding, dilation, value), x)


PADDING_MODES = ("same", "valid")


def string_padding(x: Tensor, padding: str, kernel: tuple[int, ...], stride: tuple[int, ...],
                   dilation: tuple[int, ...], op: str) -> tuple[Tensor, tuple[int, ...]]:
    """torch's padding='valid' (none) and 'same' (the output as long as the input; stride 1
    only, as torch): a total of dilation * (k - 1) per spatial dim, half on each side and the
    odd one on the right (torch pads the input by it first). Returns the input, padded on the
    right where the total is odd, and the symmetric padding left to the convolution."""
    if padding not in PADDING_MODES:
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of {PADDING_MODES}")
    nd = len(kernel)
    if padding == "valid":
        return x, (0,) * nd
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    odd = tuple(t % 2 for t in total)
    if any(odd):
        x = x.pad(((0, 0), (0, 0)) + tuple((0, o) for o in odd))
    return x, tuple(t // 2 for t in total)


def conv2d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: x (N, C, H, W), w (O, C/groups, kh, kw), bias (O,);
    padding an int, a pair, 'valid' or 'same'."""
    op = "conv2d"
    if not isinstance(w, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(w).__name__}")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W) and weight (O, C/groups, kH, kW), "
                         f"got shapes {x.shape} and {w.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    s, d = _pair(stride, "stride", op, 1), _pair(dilation, "dilation", op, 1)
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    if isinstance(padding, str):
        x, p = string_padding(x, padding, (kh, kw), s, d, op)
    else:
        p = _pair(padding, "padding", op, 0)
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
    # one CONV2D node: the choose_conv pass decides at realize whether the direct kernel
    # computes it or the windows + matmul formulation (ir.windows.conv2d_im2col)
    out = Tensor._from(gr.conv2d(x.node, w.node, gr.ConvArg(s, p, d, int(groups))), x, w)
    if bias is not None:
        # built from nodes: the same graph as out + bias.reshape(1, o, 1, 1), without the
        # broadcasting machinery (its Python cost is a good part of a small conv's time)
        b = bias.cast(d_)
        wide = gr.expand(gr.reshape(b.node, (1, o, 1, 1)), out.shape)
        out = Tensor._from(gr.elementwise(Op.ADD, out.node, wide), out, b)
    return out


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


def first_max(flat: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """(values, positions) of each window's first maximum along `axis` (NaN first, as argmax):
    the value is picked at that position, not taken as a max, so its gradient goes to that one
    element like torch's max pools (a max's gradient splits between tied elements). One
    row-wise kernel forward, as the max alone was (its argmax and the pick fuse row-wise). The
    positions are int32 where they fit (the pick counts in them); a pool that returns them
    casts to int64."""
    first = flat._first_max_index(axis, False, "max_pool")
    return _pick(flat, axis, first), first


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """torch.nn.functional.max_pool2d (floor mode); padding counts as -inf; the gradient goes to
    each window's first maximum in scan order (row-major over the window), as torch's."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation, "max_pool2d")
    win = windows(x, k, s, p, d, reduce_identity(Op.RMAX, x.dtype), "max_pool2d")
    n, c, kh, kw, oh, ow = win.shape
    return first_max(win.reshape(n, c, kh * kw, oh, ow), 2)[0]


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


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_conv2d(self, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d on (N, C, H, W) input and (O, C/groups, kH, kW) weight."""
    return conv2d(self, w, bias, stride, padding, dilation, groups)


TENSOR_METHODS = {"conv2d": _method_conv2d}
