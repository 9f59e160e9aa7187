"""Attention in the graph: the pattern softmax(q kᵀ · scale [+ mask]) v, recognised, and the
ATTENTION nodes one fused kernel computes in its place.

The front end builds attention (F.scaled_dot_product_attention or a user's own
`(q @ k.transpose(-2, -1) * s).softmax(-1) @ v`) from primitives: MATMUL → MUL by a constant →
optional WHERE(keep, ·, -inf) / ADD(mask) → the derived softmax (max, sub, exp, sum, div) →
MATMUL. `match(n)` asks of a MATMUL node whether it is the end of that chain, purely from the
graph (no device): an `AttentionMatch` (the operands as the graph holds them), a `Decline`
(the pattern is there but the kernel does not take it, with the reason), or None.

Two places ask, with the same function so their answers agree: autodiff (a matched MATMUL is
differentiated as one attention node, FlashAttention-2's backward, instead of through the
T×T softmax), and the `fuse_attention` pass (the plan replaces the MATMUL by an ATTENTION node).

One op, ATTENTION, with a `Part` in its arg, covers the five values the kernels compute; its
sources are always (q, k, v[, keep][, add]) and, for the backward parts, (dO, lse, Δ):
- OUT (..., L, Ev) and LSE (..., L, 1), the per-row logsumexp the backward recomputes the
  scores from: one forward kernel writes whichever of them the schedule needs;
- DQ (..., L, E): one kernel, one query row per work-item;
- DK (..., S, E) and DV (..., S, Ev): one kernel, one key row per work-item.
Batch dims are those of the output: q, k, v and the mask are read through their (broadcast)
views, so a broadcast operand costs no copy.

The causal mask is the graph `causal_keep` builds (positions from iota buffers compared), so
the matcher knows it for what it is and the kernel computes it from the indices instead of
reading an L×S mask.

Public names: Part, MaskKind, AttentionArg, AttentionMatch, Decline, MAX_HEAD_DIM, match,
causal_keep, attention_node, part_node, strided_view, reference, FORWARD_PARTS, KERNEL_OF.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import NamedTuple

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Iota, Node
from lazygrad.ir.movement import fold_views, movement_chain
from lazygrad.ir.ops import ELEMENTWISE, MOVEMENT, Op
from lazygrad.ir.view import View

# A work-item keeps its query (or key) row and its accumulators in private arrays of the
# head dim; 256 floats x 4 arrays is 4 KiB of registers/stack per work-item on the CPU, past
# that a GPU spills everything. Larger heads use the plain graph.
MAX_HEAD_DIM = 256
_DTYPES = frozenset({"float32", "float64"})


class Part(Enum):
    OUT = "out"
    LSE = "lse"
    DQ = "dq"
    DK = "dk"
    DV = "dv"


FORWARD_PARTS = frozenset({Part.OUT, Part.LSE})
# the kernel computing each part, named by its first part: three kernels, five values
KERNEL_OF: dict[Part, Part] = {Part.OUT: Part.OUT, Part.LSE: Part.OUT, Part.DQ: Part.DQ, Part.DK: Part.DK,
                               Part.DV: Part.DK}


class MaskKind(Enum):
    NONE = "none"
    KEEP = "keep"   # a bool mask, True = attend
    ADD = "add"     # a float mask added to the scores
    BOTH = "both"   # keep and add (a bool mask and a float one, as a user may write)


@dataclass(frozen=True)
class AttentionArg:
    """The arg of an ATTENTION node: which value (`part`), the scale, the mask sources it has,
    whether the causal (top-left) triangle is and-ed in, and whether a fully masked row gives
    zeros (`safe`, torch's SDPA) or NaN (a plain softmax written by the user: 0/0)."""

    part: Part
    scale: float
    mask: MaskKind = MaskKind.NONE
    causal: bool = False
    safe: bool = False

    @property
    def n_masks(self) -> int:
        return {MaskKind.NONE: 0, MaskKind.KEEP: 1, MaskKind.ADD: 1, MaskKind.BOTH: 2}[self.mask]

    def of(self, part: Part) -> AttentionArg:
        return replace(self, part=part)

    def family(self) -> AttentionArg:
        """The arg with the part left out: nodes of one family share a kernel."""
        return replace(self, part=Part.OUT)


class AttentionMatch(NamedTuple):
    """A recognised attention: the operands as the graph holds them (q (..., L, E), kᵀ
    (..., E, S), v (..., S, Ev), the keep and add masks at (..., L, S) or None), the arg and
    the batch dims of the output."""

    q: Node
    kt: Node
    v: Node
    keep: Node | None
    add: Node | None
    arg: AttentionArg
    batch: tuple[int, ...]   # the output's batch dims (q, kᵀ, v may have 1 where they broadcast)

    def sources(self) -> tuple[Node, ...]:
        """The forward sources of the ATTENTION nodes, each at the output's batch dims: q, k
        (kᵀ transposed back), v, masks."""
        nd = len(self.batch) + 2
        q, kt, v = (gr.expand(gr.reshape(x, (1,) * (nd - len(x.shape)) + x.shape), self.batch + x.shape[-2:])
                    for x in (self.q, self.kt, self.v))
        k = gr.permute(kt, tuple(range(nd - 2)) + (nd - 1, nd - 2))
        return (q, k, v) + tuple(m for m in (self.keep, self.add) if m is not None)


class Decline(NamedTuple):
    """The attention pattern is there, but the fused kernel does not take it: why."""

    why: str


# --- the pattern -------------------------------------------------------------------------------

def _const_value(n: Node) -> float | None:
    """The value of a constant seen through movement ops (a broadcast scalar), else None."""
    while n.op in MOVEMENT and n.realized is None:
        n = n.srcs[0]
    return float(n.arg) if n.op is Op.CONST and n.realized is None else None


def _last_axis(n: Node) -> bool:
    return n.arg == (len(n.srcs[0].shape) - 1,)


def _row_shift(c: Node, x: Node) -> bool:
    """c (one value per row) is computed from max(x, last dim) and constants only:
    softmax(x - c) is then softmax(x) wherever c is finite, whatever c is (the plain max, or
    the safe softmax's max with 0 in an all -inf row). The walk stops at the max."""
    stack, seen, found = [c], set(), False
    while stack:
        n = stack.pop()
        if n.uid in seen:
            continue
        seen.add(n.uid)
        if n.op is Op.RMAX and n.srcs[0] is x and _last_axis(n) and n.realized is None:
            found = True
            continue
        if n.realized is not None or not (n.op is Op.CONST or n.op in ELEMENTWISE or n.op in MOVEMENT):
            return False
        stack.extend(n.srcs)
    return found


def _softmax_of(p: Node) -> tuple[Node, bool] | None:
    """(x, safe) when p is softmax(x) over the last dim: e / sum(e) with e = exp(x - shift),
    the sum guarded against 0 (safe: a fully masked row gives 0) or not."""
    if p.op is not Op.DIV:
        return None
    e, den = p.srcs
    if den.op is not Op.EXPAND or e.op is not Op.EXP or e.srcs[0].op is not Op.SUB:
        return None
    den = den.srcs[0]
    safe = False
    if den.op is Op.WHERE:  # (s == 0).where(1, s)
        cond, one, s = den.srcs
        if not (cond.op is Op.CMPEQ and cond.srcs[0] is s and _const_value(cond.srcs[1]) == 0.0
                and _const_value(one) == 1.0):
            return None
        den, safe = s, True
    if den.op is not Op.SUM or den.srcs[0] is not e or not _last_axis(den):
        return None
    x, shift = e.srcs[0].srcs
    if shift.op is not Op.EXPAND or not _row_shift(shift.srcs[0], x):
        return None
    return x, safe


def _chain(top: Node, stops: set[int]) -> list[Node]:
    """The nodes from `top` down to the `stops` (neither them nor below): the pattern's own values."""
    out, stack, seen = [], [top], set()
    while stack:
        m = stack.pop()
        if m.uid in seen:
            continue
        seen.add(m.uid)
        if m.uid not in stops:
            out.append(m)
            stack.extend(m.srcs)
    return out


def _product(x: Node) -> tuple[Node, Node] | None:
    """(a, b) when x is a @ b over the batch dims: a batched MATMUL, or the 2-D one the front end
    folds the batch into when b has no batch (RESHAPE(MATMUL(RESHAPE(a), RESHAPE(b))))."""
    if x.op is Op.MATMUL:
        return x.srcs[0], x.srcs[1]
    if x.op is not Op.RESHAPE or x.srcs[0].op is not Op.MATMUL or len(x.srcs[0].shape) != 2:
        return None
    a2, b2 = x.srcs[0].srcs
    if a2.op is not Op.RESHAPE:
        return None
    a, b = a2.srcs[0], _unfold(b2)
    if b is None or len(a.shape) != len(x.shape) or a.shape[:-1] != x.shape[:-1]:
        return None
    return a, b


def _unfold(b2: Node) -> Node:
    """The node a 2-D operand of a folded product stands for: b (1.., K, N) below its reshape,
    or the 2-D node itself (read with batch dims of 1)."""
    if b2.op is Op.RESHAPE and b2.srcs[0].shape[-2:] == b2.shape and all(d == 1 for d in b2.srcs[0].shape[:-2]):
        return b2.srcs[0]
    return b2


def _scores(z: Node) -> tuple[Node, float] | None:
    """(the q kᵀ product, scale) when z is that product times (or over) a constant, or itself."""
    if _product(z) is not None:
        return z, 1.0
    if z.op is Op.MUL:
        for a, b in (z.srcs, z.srcs[::-1]):
            c = _const_value(b)
            if _product(a) is not None and c is not None:
                return a, c
    if z.op is Op.DIV and _product(z.srcs[0]) is not None:
        c = _const_value(z.srcs[1])
        if c is not None and c != 0.0:
            return z.srcs[0], 1.0 / c
    return None


def _is_causal(term: Node, L: int, S: int) -> bool:
    """term is causal_keep(L, S) (its graph exactly), read as a broadcast over the batch dims."""
    base, view = strided_view(term)
    if view is None or base.op is not Op.NOT or base.shape != (L, S) or base.realized is not None:
        return False
    if view.offset != 0 or view.strides[-2:] != (S, 1) or any(view.strides[:-2]):
        return False
    cmp = base.srcs[0]
    if cmp.op is not Op.CMPLT:
        return False
    want = [((L, 1), L), ((1, S), S)]
    for side, (shape, n) in zip(cmp.srcs, want):
        ex = side
        if ex.op is not Op.EXPAND or ex.srcs[0].op is not Op.RESHAPE or ex.srcs[0].shape != shape:
            return False
        io = ex.srcs[0].srcs[0]
        if io.op is not Op.BUFFER or not isinstance(io.arg, Iota) or io.arg.n != n:
            return False
    return True


def match(n: Node) -> AttentionMatch | Decline | None:
    """Is the MATMUL n the end of softmax(q kᵀ · scale [+ mask]) v over the last dim (batched,
    or the 2-D product the front end makes when v has no batch dims)?"""
    if n.op is not Op.MATMUL or n.realized is not None:
        return None
    p, v = n.srcs
    if p.op is Op.RESHAPE and len(p.shape) == 2 and p.srcs[0].op is Op.DIV:
        p, v = p.srcs[0], _unfold(v)   # folded: (B*L, S) @ (S, Ev) of p (..., L, S), v (1.., S, Ev)
    if p.op is not Op.DIV:
        return None
    soft = _softmax_of(p)
    if soft is None:
        return None
    x, safe = soft
    keep = add = None
    z = x
    if z.op is Op.WHERE and _const_value(z.srcs[2]) == float("-inf") and z.srcs[0].dtype is dt.bool_:
        keep, z = z.srcs[0], z.srcs[1]
    if _scores(z) is None and z.op is Op.ADD:
        for a, b in (z.srcs, z.srcs[::-1]):
            if _scores(a) is not None:
                z, add = a, b
                break
    sc = _scores(z)
    if sc is None:
        return None
    mm, scale = sc
    stops = {mm.uid} | {t.uid for t in (keep, add) if t is not None}
    if any(m.realized is not None for m in _chain(p, stops)):
        return None  # a value of the chain is computed already (the weights, asked for): use it
    q, kt = _product(mm)
    L, S = x.shape[-2], x.shape[-1]
    causal = False
    if keep is not None:
        terms = gr.terms_of(keep, Op.AND)
        rest = [t for t in terms if not _is_causal(t, L, S)]
        causal = len(rest) < len(terms)
        keep = None
        for t in rest:
            keep = t if keep is None else gr.elementwise(Op.AND, keep, t, dtype=dt.bool_)
    kind = {(False, False): MaskKind.NONE, (True, False): MaskKind.KEEP, (False, True): MaskKind.ADD,
            (True, True): MaskKind.BOTH}[(keep is not None, add is not None)]
    arg = AttentionArg(Part.OUT, scale, kind, causal, safe)
    why = _decline(q, kt, v, add, n)
    return Decline(why) if why else AttentionMatch(q, kt, v, keep, add, arg, x.shape[:-2])


def _decline(q: Node, kt: Node, v: Node, add: Node | None, n: Node) -> str:
    if n.arg is not None:
        return n.arg.why  # declined before (the pass marks the product it keeps)
    d = q.dtype
    if d.name not in _DTYPES:
        return f"{d.name} inputs (the fused kernel computes in float32 or float64)"
    if kt.dtype is not d or v.dtype is not d or (add is not None and add.dtype is not d):
        return "operands of different dtypes"
    e, ev = q.shape[-1], v.shape[-1]
    if max(e, ev) > MAX_HEAD_DIM:
        return f"head dim {max(e, ev)} > {MAX_HEAD_DIM} (the kernel keeps a row in private memory)"
    if 0 in n.shape or 0 in kt.shape:
        return "an empty dimension"
    return ""


# --- the nodes ---------------------------------------------------------------------------------

def causal_keep(length: int, source_length: int) -> Node:
    """The bool (L, S) graph keeping j <= i (torch's tril(ones(L, S)), top-left aligned):
    not (i < j) over iota positions, a pattern `match` knows."""
    i = gr.expand(gr.reshape(gr.iota(length, dt.default_int), (length, 1)), (length, source_length))
    j = gr.expand(gr.reshape(gr.iota(source_length, dt.default_int), (1, source_length)), (length, source_length))
    return gr.elementwise(Op.NOT, gr.elementwise(Op.CMPLT, i, j, dtype=dt.bool_), dtype=dt.bool_)


def _shape(part: Part, srcs: tuple[Node, ...]) -> tuple[int, ...]:
    q, k, v = srcs[:3]
    batch = q.shape[:-2]
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    return batch + {Part.OUT: (L, Ev), Part.LSE: (L, 1), Part.DQ: (L, E), Part.DK: (S, E), Part.DV: (S, Ev)}[part]


def part_node(srcs: tuple[Node, ...], arg: AttentionArg) -> Node:
    """The ATTENTION node computing `arg.part` from `srcs`."""
    return gr.make(Op.ATTENTION, srcs, _shape(arg.part, srcs), srcs[0].dtype, arg)


def attention_node(m: AttentionMatch, part: Part = Part.OUT) -> Node:
    return part_node(m.sources(), m.arg.of(part))


# --- reading operands ---------------------------------------------------------------------------

def strided_view(x: Node, stop=lambda n: n.realized is not None) -> tuple[Node, View | None]:
    """(base, view): x is the single unmasked strided view `view` of the contiguous `base`
    below its movement ops (stopping where `stop` holds), or view None if it is not one."""
    base, st = movement_chain(x, stop) if x.op in MOVEMENT and not stop(x) else (x, None)
    if st is None:
        return x, View.create(x.shape)
    st = fold_views(st)
    if len(st.views) != 1 or st.views[0].mask is not None:
        return base, None
    return base, st.views[0]


# --- numpy reference ------------------------------------------------------------------------------

def reference(srcs: list[np.ndarray], arg: AttentionArg) -> np.ndarray:
    """The value of an ATTENTION node from its sources' values (the interpreter's)."""
    q, k, v = srcs[:3]
    masks = srcs[3:3 + arg.n_masks]
    L, S = q.shape[-2], k.shape[-2]
    with np.errstate(all="ignore"):
        s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(arg.scale)
        keep = np.ones(s.shape, dtype=bool)
        if arg.mask in (MaskKind.KEEP, MaskKind.BOTH):
            keep = keep & masks[0]
        if arg.mask in (MaskKind.ADD, MaskKind.BOTH):
            s = s + masks[-1]
        if arg.causal:
            keep = keep & np.tril(np.ones((L, S), dtype=bool))
        s = np.where(keep, s, -np.inf)
        m = s.max(-1, keepdims=True)
        m_safe = np.where(np.isinf(m) & (m < 0), 0, m)
        e = np.exp(s - m_safe)
        total = e.sum(-1, keepdims=True)
        lse = np.log(total) + m_safe
        p = e / (np.where(total == 0, 1, total) if arg.safe else total)
        if arg.part is Part.OUT:
            return np.matmul(p, v)
        if arg.part is Part.LSE:
            return lse
        do, lse, delta = srcs[-3:]
        p = np.exp(s - lse)
        if arg.safe:
            p = np.where(np.isinf(lse) & (lse < 0), 0, p)
        dp = np.matmul(do, np.swapaxes(v, -1, -2))
        ds = p * (dp - delta)
        scale = q.dtype.type(arg.scale)
        if arg.part is Part.DQ:
            return np.matmul(ds, np.broadcast_to(k, ds.shape[:-2] + k.shape[-2:])) * scale
        if arg.part is Part.DK:
            return np.matmul(np.swapaxes(ds, -1, -2), q) * scale
        return np.matmul(np.swapaxes(p, -1, -2), do)

