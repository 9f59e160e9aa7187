"""Matmul operands packed into panels: the node pattern the packing pass builds and the
lowering recognises.

A packed operand is a CONTIGUOUS copy of the operand's tiles stored along K; the matmul then
reads the logical operand as a view of those panels (`unpack_panels`), so every other reader
(autodiff, other kernels) still sees a plain matrix. Both directions are pure node
constructions; hash-consing makes recognising them exact (rebuild, compare identity).

Public names: PANEL_A, PANEL_B, pack_panels, unpack_panels, panel_source, pack_source.
"""
from __future__ import annotations

from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op


# --- matmul operands and panel layouts ---------------------------------------------------------
# A packed ("panel") operand stores a matrix as tiles of T rows (A) or columns (B) so that the
# matmul kernel streams it contiguously: A (..., M, K) as (..., ceil(M/T), K, T) and B
# (..., K, N) as (..., ceil(N/T), K, T), zero-padded to whole tiles. The kernel reads the
# panel buffer directly; everyone else (autodiff, other kernels) sees the logical operand as a
# view of it, built by `unpack_panels`.
PANEL_A = -2  # the tiled dim of a matmul operand: M of A, N of B


PANEL_B = -1


def pack_panels(x: Node, dim: int, tile: int, reason: str) -> Node:
    """x (..., R, C) packed into tiles of `tile` along dim (-2 or -1), stored by a copy kernel."""
    nd = len(x.shape)
    d = nd + dim
    size = x.shape[d]
    nt = -(-size // tile)
    lead = x.shape[:-2]
    b = tuple(range(len(lead)))
    widths = tuple((0, nt * tile - size if i == d else 0) for i in range(nd))
    p = gr.pad(x, widths)
    if dim == PANEL_A:  # (.., M, K) -> (.., Mt, T, K) -> (.., Mt, K, T)
        p = gr.reshape(p, lead + (nt, tile, x.shape[-1]))
        p = gr.permute(p, b + (nd - 2, nd, nd - 1))
    else:               # (.., K, N) -> (.., K, Nt, T) -> (.., Nt, K, T)
        p = gr.reshape(p, lead + (x.shape[-2], nt, tile))
        p = gr.permute(p, b + (nd - 1, nd - 2, nd))
    return gr.make(Op.CONTIGUOUS, (p,), p.shape, p.dtype, reason)


def unpack_panels(p: Node, dim: int, size: int) -> Node:
    """The logical operand (..., R, C) of the panel node p; `size` is the untiled length."""
    nd = len(p.shape) - 1
    lead = p.shape[:-3]
    b = tuple(range(len(lead)))
    nt, k, tile = p.shape[-3:]
    if dim == PANEL_A:  # (.., Mt, K, T) -> (.., Mt, T, K) -> (.., Mt*T, K)
        x = gr.reshape(gr.permute(p, b + (nd - 2, nd, nd - 1)), lead + (nt * tile, k))
        return gr.shrink(x, tuple((0, size if i == nd - 2 else s) for i, s in enumerate(x.shape)))
    # (.., Nt, K, T) -> (.., K, Nt, T) -> (.., K, Nt*T)
    x = gr.reshape(gr.permute(p, b + (nd - 1, nd - 2, nd)), lead + (k, nt * tile))
    return gr.shrink(x, tuple((0, size if i == nd - 1 else s) for i, s in enumerate(x.shape)))


def panel_source(x: Node, dim: int, input_uids: set[int]) -> Node | None:
    """The stored panel buffer that matmul operand x is exactly `unpack_panels` of, if any.
    Hash-consing makes the check exact: rebuilding the unpack views gives the same nodes."""
    p = x
    for op in (Op.SHRINK, Op.RESHAPE, Op.PERMUTE):
        if p.op is op:
            p = p.srcs[0]
        elif op is not Op.SHRINK:
            return None
    if p.uid not in input_uids or len(p.shape) != len(x.shape) + 1:
        return None
    return p if unpack_panels(p, dim, x.shape[dim]) is x else None


def pack_source(p: Node) -> tuple[Node, int, int] | None:
    """(logical operand, tiled dim, tile) if p is exactly `pack_panels` of some operand."""
    if p.op is not Op.CONTIGUOUS or not isinstance(p.arg, str) or len(p.shape) < 3:
        return None
    x = p.srcs[0]
    for op in (Op.PERMUTE, Op.RESHAPE, Op.PAD):
        if x.op is op:
            x = x.srcs[0]
        elif op is not Op.PAD:
            return None
    if len(x.shape) != len(p.shape) - 1:
        return None
    for dim in (PANEL_A, PANEL_B):
        if pack_panels(x, dim, p.shape[-1], p.arg) is p:
            return x, dim, p.shape[-1]
    return None
