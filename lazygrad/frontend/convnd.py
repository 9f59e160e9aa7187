"""1-D, 3-D and transposed convolutions, lowered onto conv2d (the CONV2D node and its kernel).

- conv1d: conv2d with a unit height (views only), so it is one CONV2D node like a 2-D conv.
- conv3d: for each kernel depth tap i, the input depth slices that tap reads (a strided view,
  folded into the batch) convolved in 2-D with w[:, :, i]; the kd results are summed, one
  CONV2D node per tap.
- conv_transpose2d (and 1d): the gradient-of-conv formulation, a stride-1 conv2d of the input
  with stride - 1 zeros inserted between its elements (views: pad into strided slots), padded
  by dilation * (k - 1) - padding on each side (cropped where negative) plus output_padding
  after, by the weight transposed per group and flipped in space.

Public names: conv1d, conv3d, conv_transpose1d, conv_transpose2d, tuple_arg.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lazygrad.frontend.conv import PADDING_MODES, conv2d, string_padding
from lazygrad.frontend.tensor import Tensor


def tuple_arg(v: Any, n: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of n ints as an n-tuple, each >= minimum (torch's _ntuple)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        t = (int(v),) * n
    elif isinstance(v, (tuple, list)) and len(v) == n and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool)
                                                             for x in v):
        t = tuple(int(x) for x in v)
    else:
        raise TypeError(f"{op}: {name} must be an int or {n} ints, got {v!r}")
    if min(t) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return t


def _check(x: Tensor, w: Tensor, nd: int, op: str) -> None:
    if not isinstance(w, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(w).__name__}")
    if x.ndim != nd + 2 or w.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D input (N, C, ...) and weight, got shapes {x.shape} and {w.shape}")


def conv1d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv1d: x (N, C, L), w (O, C/groups, k), bias (O,); padding an int,
    'valid' or 'same'."""
    _check(x, w, 1, "conv1d")
    s, d = (tuple_arg(v, 1, nm, "conv1d", 1)[0] for v, nm in ((stride, "stride"), (dilation, "dilation")))
    if isinstance(padding, str):
        x, (p,) = string_padding(x, padding, w.shape[2:], (s,), (d,), "conv1d")
    else:
        p = tuple_arg(padding, 1, "padding", "conv1d", 0)[0]
    out = conv2d(x.unsqueeze(2), w.unsqueeze(2), bias, (1, s), (0, p), (1, d), groups)
    return out.squeeze(2)


def conv3d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv3d: x (N, C, D, H, W), w (O, C/groups, kd, kh, kw), bias (O,);
    padding an int, a triple, 'valid' or 'same'."""
    op = "conv3d"
    _check(x, w, 3, op)
    s, d = (tuple_arg(v, 3, nm, op, 1) for v, nm in ((stride, "stride"), (dilation, "dilation")))
    if isinstance(padding, str):
        x, p = string_padding(x, padding, w.shape[2:], s, d, op)
    else:
        p = tuple_arg(padding, 3, "padding", op, 0)
    n, c, depth, h, wd = x.shape
    o, _, kd, _, _ = w.shape
    od = (depth + 2 * p[0] - d[0] * (kd - 1) - 1) // s[0] + 1
    if od <= 0:
        raise ValueError(f"{op}: input {x.shape} is too small for kernel {w.shape[2:]} with padding {p} "
                         f"and dilation {d} (output depth would be {od})")
    xp = x.pad(((0, 0), (0, 0), (p[0], p[0]), (0, 0), (0, 0))) if p[0] else x
    out: Tensor | None = None
    for i in range(kd):
        start = i * d[0]
        sl = xp[:, :, start:start + (od - 1) * s[0] + 1:s[0]]                  # (N, C, OD, H, W)
        planes = sl.permute(0, 2, 1, 3, 4).reshape(n * od, c, h, wd)
        y = conv2d(planes, w[:, :, i], None, s[1:], p[1:], d[1:], groups)      # (N*OD, O, OH, OW)
        out = y if out is None else out + y
    assert out is not None
    oh, ow = out.shape[2:]
    out = out.reshape(n, od, o, oh, ow).permute(0, 2, 1, 3, 4)
    if bias is not None:
        if not isinstance(bias, Tensor) or bias.shape != (o,):
            raise ValueError(f"{op}: bias must be a Tensor of shape ({o},), got {getattr(bias, 'shape', bias)!r}")
        out = out + bias.reshape(1, o, 1, 1, 1)
    return out


def _dilate(x: Tensor, dim: int, s: int) -> Tensor:
    """x with s - 1 zeros between its elements along `dim` (views: pad into strided slots)."""
    if s == 1 or x.shape[dim] <= 1:
        return x
    sh = x.shape
    y = x.reshape(sh[:dim + 1] + (1,) + sh[dim + 1:])
    w = [(0, 0)] * y.ndim
    w[dim + 1] = (0, s - 1)
    y = y.pad(tuple(w)).reshape(sh[:dim] + (sh[dim] * s,) + sh[dim + 1:])
    return y.shrink(tuple((0, (sh[dim] - 1) * s + 1) if k == dim else (0, v) for k, v in enumerate(y.shape)))


def conv_transpose2d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """torch.nn.functional.conv_transpose2d: x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw);
    output (H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    _check(x, w, 2, op)
    s, p, d = (tuple_arg(v, 2, nm, op, m) for v, nm, m in
               ((stride, "stride", 1), (padding, "padding", 0), (dilation, "dilation", 1)))
    op_ = tuple_arg(output_padding, 2, "output_padding", op, 0)
    if any(a >= max(b, c) for a, b, c in zip(op_, s, d)):
        raise ValueError(f"{op}: output_padding {op_} must be smaller than stride {s} or dilation {d}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    n, c, h, wd = x.shape
    ci, og, kh, kw = w.shape
    if ci != c or c % groups:
        raise ValueError(f"{op}: input {x.shape} and weight {w.shape} do not match groups={groups} "
                         f"(weight dim 0 must be C_in = {c}, divisible by groups)")
    y = _dilate(_dilate(x, 2, s[0]), 3, s[1])
    widths = [(0, 0), (0, 0)]
    for k, (kk, pp, dd, oo) in enumerate(zip((kh, kw), p, d, op_)):
        edge = dd * (kk - 1) - pp
        widths.append((edge, edge + oo))
    y = y.pad(tuple(widths))   # negative widths crop: a padding beyond the kernel's reach
    # (C_in, C_out/g, kh, kw) -> (C_out, C_in/g, kh, kw) per group, flipped in space
    wt = w.reshape(groups, c // groups, og, kh, kw).permute(0, 2, 1, 3, 4).reshape(groups * og, c // groups, kh, kw)
    wt = wt.flip((2, 3))
    return conv2d(y, wt, bias, 1, 0, d, groups)


def conv_transpose1d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """torch.nn.functional.conv_transpose1d: conv_transpose2d with a unit height."""
    op = "conv_transpose1d"
    _check(x, w, 1, op)
    s_, p_, o_, d_ = (tuple_arg(v, 1, nm, op, m)[0] for v, nm, m in
                      ((stride, "stride", 1), (padding, "padding", 0), (output_padding, "output_padding", 0),
                       (dilation, "dilation", 1)))
    return conv_transpose2d(x.unsqueeze(2), w.unsqueeze(2), bias, (1, s_), (0, p_), (0, o_), groups, (1, d_)).squeeze(2)
