"""The fuse_lstm pass: an LSTM_CELL node (one nn.LSTM time step, ir/lstm.py) stays the node
the fused kernel computes (templates/lstm.cl.j2: the gates' matmul and the cell update, one
kernel per step), or becomes the primitive graph it stands for: with LAZYGRAD_FUSE=0 (one
kernel per primitive), or where the kernel declines it, its matmul then carrying the
`CellDecline` (the scheduler notes why on that kernel's cut).

Public names: FUSE_LSTM.
"""
from __future__ import annotations

from lazygrad.config import settings
from lazygrad.ir import lstm
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target


def _match(n: Node, target: Target) -> bool:
    return n.op is Op.LSTM_CELL


def _apply(n: Node, target: Target) -> Node | None:
    if not settings().fuse:
        return lstm.expand(n)
    why = lstm.decline(n)
    return lstm.expand(n, why) if why else None


FUSE_LSTM = Pass("fuse_lstm", _match, _apply)
