"""Codegen of the attention kernels (templates/attention.cl.j2): a family of ATTENTION nodes
(ir/attention.py) → OpenCL C and launch sizes.

One work-item per row, or on a CPU per ROW_BLOCK rows: query rows for the forward (O and its
logsumexp) and for dQ, key rows for dK and dV. Its rows of q (or k, v) and its accumulators
live in private arrays of vectors along the head dim; it walks the other side's rows (the
forward in tiles of TILE keys, keeping a running max, a running sum and the accumulator
rescaled once per tile: the online softmax), so the L×S scores never exist. Operands are read
through one strided view each (a permute, a batch broadcast, a slice: no copy), a constant
operand (a gradient seed) as a literal. The vector width is the target's `loop_lanes` (widths
the probe verified), down to one dividing the head dims, and 1 where a row is not contiguous;
a build failure is retried narrower by the engine like any kernel.

Public names: TILE, ROW_BLOCK, render_attention.
"""
from __future__ import annotations

from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.codegen.lower import LoweredKernel
from lazygrad.codegen.render import RenderedKernel, _bytes, _common, _kernel_name, _local_for, literal
from lazygrad.ir.attention import MaskKind, Part, strided_view
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.ir.view import prod
from lazygrad.runtime.device import current_target
from lazygrad.scheduling.scheduler import attention_core

# Keys per tile of the online softmax: the scores of a tile stay in registers and the
# accumulator is rescaled once per tile instead of once per key. 16 and 32 ran alike at
# (B=8, H=8, T=512, D=64) on the PoCL CPU device; 32 keeps the tile's private array small
# enough for a GPU's registers too.
TILE = 32

ROW_BLOCK = 8

_MODE = {Part.OUT: "fwd", Part.DQ: "dq", Part.DK: "dkv"}
_NAMES = ("Q", "K", "V")


def _operand(lk: LoweredKernel, src: Node, arg_of: dict[int, int], ity: str, nb: int) -> dict:
    """How the kernel reads `src` (batch dims, row, column): the buffer (or literal), the
    offset of its batch entry as an expression of b0.., and the row and column strides."""
    base, view = strided_view(src, lambda m: m.uid in arg_of)
    assert view is not None, src
    if base.op is Op.CONST and base.uid not in arg_of:
        return dict(buf=None, value=literal(base.arg, src.dtype), base="0", sr=0, sc=0)
    st = view.strides
    terms = [str(view.offset)] + [f"({ity})b{d}*{st[d]}" for d in range(nb) if st[d]]
    return dict(buf=f"buf{arg_of[base.uid]}", value=None, base="+".join(terms), sr=st[nb], sc=st[nb + 1],
                bool=src.dtype.name == "bool")


def render_attention(lk: LoweredKernel) -> RenderedKernel:
    """The attention kernel of `lk` (kind "attention": one family of ATTENTION nodes)."""
    outs = lk.kernel.outputs
    cores = [attention_core(o) for o in outs]  # an output may be a detach of its node (a .grad)
    node = cores[0]
    arg = node.arg
    mode = _MODE[Part.OUT if arg.part is Part.LSE else Part.DK if arg.part is Part.DV else arg.part]
    srcs = node.srcs
    q, k, v = srcs[:3]
    nb = len(node.shape) - 2
    batch = node.shape[:nb]
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    # rows per work-item (queries; keys for dK, dV): the rows share every K and V load and give the
    # core independent dot products: 1.04 s (1 row) -> 0.74 s (4) -> 0.63 s (8) at
    # (8, 8, 512, 64) causal on the PoCL CPU device (machine shared); a GPU has the
    # work-items for that
    own = L if mode != "dkv" else S   # the rows a work-item computes (queries, or keys)
    rb = ROW_BLOCK if current_target().is_cpu and own >= ROW_BLOCK else 1
    rows = (own + rb - 1) // rb
    total = prod(batch) * rows
    big = max([total * max(E, Ev, S)] + [prod(b.shape) for b in lk.buffers]) >= 2**31 - 64
    ity = "long" if big else "int"
    arg_of = {b.uid: i for i, b in enumerate(lk.buffers) if i >= len(outs)}
    names = list(_NAMES)
    if arg.mask in (MaskKind.KEEP, MaskKind.BOTH):
        names.append("KEEP")
    if arg.mask in (MaskKind.ADD, MaskKind.BOTH):
        names.append("ADD")
    if mode != "fwd":
        names += ["DO", "LSE", "DELTA"]
    ops = {name: _operand(lk, s, arg_of, ity, nb) for name, s in zip(names, srcs)}
    out_of = {c.arg.part.value: f"buf{i}" for i, c in enumerate(cores)}
    per_row = {"fwd": 2 * S * (E + Ev), "dq": 2 * S * (2 * E + Ev), "dkv": 2 * L * (2 * E + 2 * Ev)}[mode]
    # CPU: one work-item per work-group. PoCL turns a work-group into a loop over its items
    # and its private arrays into arrays per item, which cost 2x at (8, 8, 512, 64)
    # (2.1 s against 4.0 s with 64 scalar); a GPU wants its work-groups full.
    target = current_target()
    lsz = 1 if target.is_cpu else _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "A")
    d = node.dtype
    w = _width(target.loop_lanes(d.itemsize), E, Ev, [ops[nm] for nm in ("Q", "K", "V", "DO") if nm in ops])
    source = _template().render(rb=rb, w=w, tv=d.cl + (str(w) if w > 1 else ""), hsum=_hsum(w),
        name=name, mode=mode, ity=ity, total=total, guard=gsz != total, rows=rows, batch=list(batch),
        L=L, S=S, E=E, Ev=Ev, tile=TILE, t=d.cl, ops=ops, outs=out_of, scale=literal(arg.scale, d),
        causal=arg.causal, safe=arg.safe, zero=literal(0.0, d), **_common(lk))
    return RenderedKernel(name, source, (gsz,), (lsz,), total * per_row, _bytes(lk))


def _width(lanes: int, e: int, ev: int, rows: list[dict]) -> int:
    """Vector lanes along the head dim: the target's, down to one that divides E and Ev; 1
    when a row of q, k, v or dO is not contiguous (a strided row is read element by element)."""
    if any(o["buf"] is not None and o["sc"] != 1 for o in rows):
        return 1
    w = lanes
    while w > 1 and (e % w or ev % w):
        w //= 2
    return w


def _hsum(w: int) -> str:
    """The sum of the lanes of a vector x as an expression: halves added down to one lane."""
    if w == 1:
        return "(x)"
    expr, n = "(x)", w
    while n > 1:
        n //= 2
        expr = f"({expr}.lo + {expr}.hi)" if n > 1 else f"({expr}.s0 + {expr}.s1)"
    return expr


def _template():
    return templating.template("attention.cl.j2")
