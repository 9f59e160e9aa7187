"""split_reduce: a long reduction with few outputs becomes two reductions.

One work-group reduces one output row; a sum of a million elements into one value would run
on one core. Reshaped into SPLIT_PARTS partial rows, the first reduction gives SPLIT_PARTS
values per output (padded with the op's identity to whole parts) and a second reduces those.
Whether it pays is the target's call (`Target.split_reduce`: only when the rows alone cannot
occupy the device — a split also stops the reduction fusing row-wise into its consumer, as in
softmax).

Public names: SPLIT_REDUCE, SPLIT_MIN_LENGTH, SPLIT_PARTS, should_split.
"""
from __future__ import annotations

from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import REDUCE, reduce_identity
from lazygrad.ir.view import prod
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target

SPLIT_MIN_LENGTH = 1 << 15
SPLIT_PARTS = 64


def should_split(shape: tuple[int, ...], axes: tuple[int, ...], target: Target) -> bool:
    n_red = prod(tuple(shape[a] for a in axes))
    n_out = prod(tuple(s for i, s in enumerate(shape) if i not in axes))
    if n_red < SPLIT_MIN_LENGTH or n_out * SPLIT_PARTS > n_red:
        return False
    return target.split_reduce(n_out)


def _match(n: Node, target: Target) -> bool:
    return n.op in REDUCE and should_split(n.srcs[0].shape, n.arg, target)


def _apply(n: Node, target: Target) -> Node:
    (x,) = n.srcs
    axes, nd = n.arg, len(x.shape)
    keep = tuple(i for i in range(nd) if i not in axes)
    keep_shape = tuple(x.shape[i] for i in keep)
    n_red = prod(tuple(x.shape[a] for a in axes))
    flat = gr.reshape(gr.permute(x, keep + tuple(axes)), keep_shape + (n_red,))
    pad = (-n_red) % SPLIT_PARTS
    if pad:
        flat = gr.pad(flat, ((0, 0),) * len(keep) + ((0, pad),), reduce_identity(n.op, x.dtype))
    parts = gr.reshape(flat, keep_shape + (SPLIT_PARTS, (n_red + pad) // SPLIT_PARTS))
    first = gr.reduce(n.op, parts, (len(keep) + 1,))
    second = gr.reduce(n.op, first, (len(keep),))
    return gr.reshape(second, n.shape)


SPLIT_REDUCE = Pass("split_reduce", _match, _apply)
