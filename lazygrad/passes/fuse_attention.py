"""The fuse_attention pass: softmax(q kᵀ · scale [+ mask]) v, wherever the graph holds it, is
one ATTENTION node (one kernel with an online softmax over the K/V rows) instead of two
matmuls around a T×T softmax.

The pattern is recognised by ir.attention.match, the function autodiff asks too: a graph
autodiff differentiated as one attention (its dQ / dK / dV nodes read the forward's
logsumexp, an LSE part with the same sources) has its forward replaced here by the OUT part
of that same family, and the scheduler gives the two parts one kernel. A pattern the kernel
declines stays the plain graph; the scheduler notes why on its last matmul's cut.

Off with LAZYGRAD_ATTENTION=0 or LAZYGRAD_FUSE=0 (both in the plan key).

Public names: FUSE_ATTENTION.
"""
from __future__ import annotations

from lazygrad.config import settings
from lazygrad.ir.attention import AttentionMatch, attention_node, match
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target


def _match(n: Node, target: Target) -> bool:
    return n.op is Op.MATMUL and n.srcs[0].op is Op.DIV and settings().attention and settings().fuse


def _apply(n: Node, target: Target) -> Node | None:
    m = match(n)
    return attention_node(m) if isinstance(m, AttentionMatch) else None


FUSE_ATTENTION = Pass("fuse_attention", _match, _apply)
