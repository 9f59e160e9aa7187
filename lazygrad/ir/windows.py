"""Sliding windows as views, and the convolution they make with a matmul (im2col).

`windows` turns every window of an (N, C, H, W) node into two new axes with movement nodes
only: pad, reshape, expand, shrink, permute. Overlapping windows come from a repeat trick: the
flattened input repeated R times and re-cut into rows `shift` elements longer starts each new
row `shift` elements further on (shift = dilation along W, dilation rows along H). Nothing is
copied; `ir.movement.fold_views` collapses the repeat into the plain overlapping-window view.

`conv2d_im2col` is a convolution as those windows (an im2col matrix of views) times the
weights: one batched MATMUL. It is what the choose_conv pass turns a CONV2D into where the
direct kernel does not apply, and what CONV2D's gradient rule differentiates.

These are node builders: the front end checks the arguments (and raises for an empty output)
before it calls them.

Public names: windows, conv2d_im2col.
"""
from __future__ import annotations

from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import ConvArg, Node, conv_output_size

Pair = tuple[int, int]


def _scalar(value: float | int | bool, d: dt.DType) -> float | int | bool:
    """The fill value as the Python type of `d` (0 and 0.0 are different PAD args)."""
    return bool(value) if d is dt.bool_ else int(value) if d.is_int else float(value)


def _shifted_rows(x: Node, k: int, shift: int) -> Node:
    """x (..., T) -> (..., k, T) with y[..., r, j] = x[..., (j + r*shift) mod T]: the row
    repeated R times and re-cut into rows of T + shift elements starts every new row `shift`
    elements further on."""
    lead = x.shape[:-1]
    t = x.shape[-1]
    keep = tuple((0, s) for s in lead)
    if k == 1:
        return gr.reshape(x, (*lead, 1, t))
    reps = -(-(k * (t + shift)) // t)
    y = gr.reshape(gr.expand(gr.reshape(x, (*lead, 1, t)), (*lead, reps, t)), (*lead, reps * t))
    y = gr.reshape(gr.shrink(y, keep + ((0, k * (t + shift)),)), (*lead, k, t + shift))
    return gr.shrink(y, keep + ((0, k), (0, t)))


def windows(x: Node, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
            value: float | int | bool = 0.0) -> Node:
    """(N, C, H, W) -> (N, C, kh, kw, OH, OW) sliding windows, padded with `value`:
    y[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    Everything is flattened first so the stacked views stay few and narrow (each level of a
    multi-view index costs a division per dim in every kernel that reads it)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    # rows/columns past the last window are never kept, but the stride cuts below need them
    hp, wp = max(h + 2 * ph, oh * sh), max(w + 2 * pw, ow * sw)
    nc = n * c
    xp = gr.reshape(x, (nc, h, w))
    if (hp, wp) != (h, w):
        xp = gr.pad(xp, ((0, 0), (ph, hp - h - ph), (pw, wp - w - pw)), _scalar(value, x.dtype))
    if dh == 1 and dw == 1 and kh <= sh and kw <= sw:
        # windows do not overlap: cut rows into strides and keep the first k of each
        y = gr.reshape(gr.shrink(xp, ((0, nc), (0, oh * sh), (0, ow * sw))), (nc, oh, sh, ow, sw))
        y = gr.shrink(y, ((0, nc), (0, oh), (0, kh), (0, ow), (0, kw)))          # (NC, OH, kh, OW, kw)
        return gr.permute(gr.reshape(y, (n, c, oh, kh, ow, kw)), (0, 1, 3, 5, 2, 4))
    t = nc * hp * wp
    y = _shifted_rows(gr.reshape(xp, (t,)), kw, dw)                            # (kw, T): + j*dw
    y = _shifted_rows(y, kh, dh * wp)                                          # (kw, kh, T): + i*dh rows
    y = gr.shrink(gr.reshape(y, (kw, kh, nc, hp * wp)), ((0, kw), (0, kh), (0, nc), (0, oh * sh * wp)))
    y = gr.shrink(gr.reshape(y, (kw, kh, nc, oh, sh * wp)), ((0, kw), (0, kh), (0, nc), (0, oh), (0, ow * sw)))
    if sw > 1:
        y = gr.shrink(gr.reshape(y, (kw, kh, nc, oh, ow, sw)),
                      ((0, kw), (0, kh), (0, nc), (0, oh), (0, ow), (0, 1)))
    y = gr.reshape(y, (kw, kh, n, c, oh, ow))
    return gr.permute(y, (2, 3, 1, 0, 4, 5))


def conv2d_im2col(x: Node, w: Node, arg: ConvArg) -> Node:
    """The convolution of x (N, C, H, W) by w (O, C/groups, kh, kw) as the windows of x times
    the weights: one batched MATMUL (N, g, O/g, C/g*kh*kw) @ (N, g, C/g*kh*kw, OH*OW). Its
    operands are plain views; the pack_matmul pass packs them where that pays."""
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    groups = arg.groups
    win = windows(x, (kh, kw), arg.stride, arg.padding, arg.dilation, 0.0)
    oh, ow = win.shape[-2:]
    kg = cg * kh * kw
    cols = gr.reshape(win, (n, groups, kg, oh * ow))               # im2col, a view
    wm = gr.expand(gr.reshape(w, (1, groups, o // groups, kg)), (n, groups, o // groups, kg))
    return gr.reshape(gr.matmul(wm, cols), (n, o, oh, ow))          # (N, g, O/g, OH*OW)
