"""The fuse_attention pass: softmax(q kᵀ · scale [+ mask]) v, wherever the graph holds it, is
one ATTENTION node (one kernel with an online softmax over the K/V rows) instead of two
matmuls around a T×T softmax.

The pattern is recognised by ir.attention.match, the function autodiff asks too: a graph
autodiff differentiated as one attention (its dQ / dK / dV nodes read the forward's
logsumexp, an LSE part with the same sources) has its forward replaced here by the OUT part
of that same family, and the scheduler gives the two parts one kernel. A pattern the kernel
declines stays the plain graph, its last MATMUL remade with the `Decline` as its arg (a
matmul's only arg), and the scheduler notes why on that kernel's cut.

Off with LAZYGRAD_ATTENTION=0 or LAZYGRAD_FUSE=0 (both in the plan key).

Public names: FUSE_ATTENTION.
"""
from __future__ import annotations

from lazygrad.config import settings
from lazygrad.ir.attention import AttentionMatch, Decline, attention_node, match
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target


def _match(n: Node, target: Target) -> bool:
    return n.op is Op.MATMUL and n.srcs[0].op in (Op.DIV, Op.RESHAPE) and settings().attention and settings().fuse


def _apply(n: Node, target: Target) -> Node | None:
    m = match(n)
    if isinstance(m, Decline) and n.arg is None:
        # the product stays, carrying why (the scheduler notes it on its kernel's cut)
        return gr.make(Op.MATMUL, n.srcs, n.shape, n.dtype, m, origin=n.origin, label=n.label)
    # the 2-D product of a folded batch is the attention's output reshaped
    return gr.reshape(attention_node(m), n.shape) if isinstance(m, AttentionMatch) else None


FUSE_ATTENTION = Pass("fuse_attention", _match, _apply)
