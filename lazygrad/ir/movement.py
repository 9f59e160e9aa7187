"""The view a kernel reads a node through: runs of movement nodes composed into ShapeTrackers.

A movement node (reshape, permute, expand, pad, shrink, flip) is no computation, only a new
way to index its source. Lowering, the matmul packing pass and the scheduler all need the
same answer to "through which view is this node read?", so the composition lives here, with
the graph, and not in one of the stages that ask.

Public names: movement_st, movement_chain, fold_views, operand_view, same_index, row_broadcast_read,
row_reads_from.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from lazygrad.ir.graph import Node
from lazygrad.ir.ops import ELEMENTWISE, MOVEMENT, PRIMITIVES, REDUCE, Op
from lazygrad.ir.view import ShapeTracker, View, prod


def movement_st(node: Node) -> ShapeTracker:
    """The view that reads `node` (a movement op) out of its source's contiguous layout (the
    op table's view of the op)."""
    return PRIMITIVES[node.op].view(ShapeTracker.from_shape(node.srcs[0].shape), node.arg)


def operand_view(x: Node) -> tuple[ShapeTracker, Node]:
    """The view through which a kernel reading x would load its first non-movement source
    (pads included, as masks)."""
    st = ShapeTracker.from_shape(x.shape)
    n = x
    while n.op in MOVEMENT and n.realized is None:
        if n.op is Op.PAD:
            st = fold_views(movement_st(n).compose(st))
            n = n.srcs[0]
            continue
        n, chain = movement_chain(n, lambda m: m.realized is not None)
        st = fold_views(chain.compose(st))
    return st, n


# --- composing views ------------------------------------------------------------------------
# a pad is a guard with a fill value, not part of a chain of plain views
_APPLY = {op: PRIMITIVES[op].view for op in MOVEMENT if op is not Op.PAD}


def movement_chain(node: Node, stop) -> tuple[Node, ShapeTracker]:
    """Follow a run of movement ops (not PAD: a pad is a guard with a fill value) down from
    `node` to the first other node or one where `stop(n)` holds; return that node and the view
    of it that `node` is, built bottom-up: each op applied to the view below folds into it
    where it can, so long chains (conv windows) stay a few views instead of one per op."""
    chain: list[tuple[Op, Any]] = []
    n = node
    while n.op in _APPLY and (n is node or not stop(n)):
        chain.append((n.op, n.arg))
        n = n.srcs[0]
    return n, _chain_view(n.shape, tuple(chain))


@lru_cache(maxsize=4096)
def _chain_view(shape: tuple[int, ...], chain: tuple[tuple[Op, Any], ...]) -> ShapeTracker:
    # a function of the chain's ops and args alone: every training step rebuilds the same one
    st = ShapeTracker.from_shape(shape)
    for op, arg in reversed(chain):
        st = _APPLY[op](st, arg)
    return st


@lru_cache(maxsize=4096)
def fold_views(st: ShapeTracker) -> ShapeTracker:
    """Fold every adjacent pair of views that composes into one view (ShapeTracker.simplify
    only looks at the top pair; a stacked composition leaves foldable pairs further down)."""
    views = list(st.views)
    changed = True
    while changed and len(views) > 1:
        changed = False
        for i in range(len(views) - 1, 0, -1):
            if views[i - 1].contiguous:
                # the view below maps flat index to buffer index unchanged: every index the
                # view above produces for a valid (unmasked) element is already a buffer index
                del views[i - 1]
                changed = True
                break
            pair = ShapeTracker((views[i - 1], views[i])).simplify()
            folded = pair.views[0] if len(pair.views) == 1 else _fold_carry_free(views[i - 1], views[i])
            if folded is not None:
                views[i - 1:i + 1] = [folded]
                changed = True
                break
    return ShapeTracker(tuple(views))


def _digits(v: int, radix: tuple[int, ...]) -> list[int]:
    """v in the mixed radix of a row-major shape (the outermost digit is unbounded)."""
    out = []
    for size in reversed(radix[1:]):
        out.append(v % size)
        v //= size
    out.append(v)
    return out[::-1]


def _fold_carry_free(below: View, top: View) -> View | None:
    """One view for `top` read through `below`, when no valid element of `top` makes a carry
    between the digits of below's shape: then each of top's strides moves below's multi-index
    by fixed digits, and the composition is linear. This collapses the repeat trick of conv
    windows (a row repeated and re-cut with a shift) into the plain overlapping-window view.
    A mask on `below` carries over when each masked digit depends on one dim of `top`."""
    radix = below.shape
    if not radix or any(st < 0 for st in top.strides) or top.offset < 0 or prod(radix) == 0:
        return None
    box = top.mask or tuple((0, s) for s in top.shape)
    if any(lo >= hi for lo, hi in box):
        return None
    digs = [_digits(st, radix) for st in top.strides]
    off = _digits(top.offset, radix)
    for d in range(1, len(radix)):  # every digit but the outermost must stay below its size
        if off[d] + sum((hi - 1) * dg[d] for dg, (lo, hi) in zip(digs, box)) >= radix[d]:
            return None
    mask = list(box)
    if below.mask is not None:
        for d, (mlo, mhi) in enumerate(below.mask):
            if (mlo, mhi) == (0, radix[d]):
                continue
            movers = [e for e, dg in enumerate(digs) if dg[d] and top.shape[e] > 1]
            if not movers:
                if not mlo <= off[d] < mhi:
                    return None  # wholly outside: leave it to the general path
                continue
            if len(movers) > 1:
                return None
            e, c = movers[0], digs[movers[0]][d]
            lo = max(mask[e][0], -(-(mlo - off[d]) // c))
            hi = min(mask[e][1], -(-(mhi - off[d]) // c))
            if lo >= hi:
                return None
            mask[e] = (lo, hi)
    strides = tuple(sum(a * g for a, g in zip(below.strides, dg)) for dg in digs)
    offset = below.offset + sum(a * g for a, g in zip(below.strides, off))
    return View.create(top.shape, strides, offset, tuple(mask))


def same_index(a: ShapeTracker, b: ShapeTracker) -> bool:
    """Do the two views read the same element at every index?"""
    if a == b:
        return True
    if a.shape != b.shape:
        return False
    # a size-1 dim's index is always 0: its stride does not matter (a reduction over a
    # length-1 axis is read the same whether or not the view broadcasts it)
    names = ["0" if s == 1 else f"i{d}" for d, s in enumerate(a.shape)]
    return a.expr(names) == b.expr(names)


def row_broadcast_read(read: Node, red: Node, within: set[int]) -> bool:
    """Is every way the broadcast `read` (an EXPAND to the row domain) reaches the reduction
    `red` — down movement nodes (their views composed, as lowering composes them) and
    elementwise nodes (which keep the index) inside `within` — red broadcast over its own
    rows, element (.., i, .., j, ..) reading red's value of row i? The scheduler fuses a
    reduction row-wise only then, so lowering never meets a read it cannot express."""
    want = ShapeTracker.from_shape(red.shape).expand(read.shape)
    stack = [(read, ShapeTracker.from_shape(read.shape))]
    seen: set[tuple[int, ShapeTracker]] = set()
    while stack:
        n, st = stack.pop()
        if (n.uid, st) in seen:
            continue
        seen.add((n.uid, st))
        if n is red:
            if not same_index(st, want):
                return False
        elif n.uid in within and n.realized is None and n.op in MOVEMENT:
            stack.append((n.srcs[0], fold_views(movement_st(n).compose(st))))
        elif n.uid in within and n.realized is None and n.op in ELEMENTWISE:
            stack.extend((s, st) for s in n.srcs)
    return True


def row_reads_from(root: Node, red: Node, within: set[int], full: tuple[int, ...]) -> bool:
    """Does a kernel of root `root` (row domain `full`) read the reduction `red` the way a
    row-wise kernel can: as a row broadcast wherever it is read over full rows (a row output,
    or inside another reduction's loop over the row), and element for element where it is
    read per row (a per-row output)? The walk composes views from the root down as lowering
    does, through movement and elementwise nodes, and into the loop of every other reduction
    of the kernel (which runs over the full domain)."""
    want = ShapeTracker.from_shape(red.shape).expand(full)
    stack = [(root, ShapeTracker.from_shape(root.shape), root.shape == full)]
    seen: set[tuple[int, ShapeTracker, bool]] = set()
    while stack:
        n, st, rows = stack.pop()
        if (n.uid, st, rows) in seen:
            continue
        seen.add((n.uid, st, rows))
        if n is red:
            if not (same_index(st, want) if rows else prod(st.shape) == prod(red.shape)):
                return False
        elif n.uid not in within or n.realized is not None:
            continue
        elif n.op in MOVEMENT:
            stack.append((n.srcs[0], fold_views(movement_st(n).compose(st)), rows))
        elif n.op in ELEMENTWISE:
            stack.extend((s, st, rows) for s in n.srcs)
        elif n.op in REDUCE and n.srcs[0].shape == full:
            stack.append((n.srcs[0], ShapeTracker.from_shape(full), True))
    return True
