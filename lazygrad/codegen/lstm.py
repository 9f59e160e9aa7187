"""Codegen of the fused LSTM step (templates/lstm.cl.j2): an LSTM_CELL node (ir/lstm.py) →
OpenCL C and launch sizes.

One work-item per hidden unit and block of ROW_BLOCK batch rows: the dot products of its h
rows with the four gate rows of w_hh (i, f, g, o) along the hidden dim, in vectors of the
target's verified `loop_lanes` (1 where a row of h or w_hh is not contiguous), then the cell
update on the four sums, writing the six planes of the cell's value. Operands are read
through one strided view each (xw[t] is a slice of the all-steps input matmul, h and c
planes of the previous step's value: no copy), its offset a kernel argument (so the steps
share a program), a constant one (a zero initial state) as a literal.

Public names: ROW_BLOCK, render_lstm.
"""
from __future__ import annotations

import numpy as np

from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.codegen.attention import _hsum
from lazygrad.codegen.lower import LoweredKernel
from lazygrad.codegen.render import RenderedKernel, _bytes, _common, _kernel_name, _local_for, literal, op_expr
from lazygrad.ir.attention import strided_view
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.ir.view import prod
from lazygrad.runtime.device import current_target

# batch rows per work-item: they share the four w_hh vectors of each step along the hidden dim
ROW_BLOCK = 2

_NAMES = ("XW", "HH", "C", "W")


def _operand(nm: str, src: Node, arg_of: dict[int, int]) -> dict:
    """How the kernel reads the 2-D `src`: the buffer (or literal), its offset (a kernel
    argument `off_<nm>`, value `offset`), row and column strides."""
    base, view = strided_view(src, lambda m: m.uid in arg_of)
    assert view is not None, src
    if base.op is Op.CONST and base.uid not in arg_of:
        return dict(buf=None, value=literal(base.arg, src.dtype), base="0", sr=0, sc=0, offset=None)
    sr, sc = view.strides
    return dict(buf=f"buf{arg_of[base.uid]}", value=None, base=f"off_{nm}", sr=sr, sc=sc, offset=view.offset)


def render_lstm(lk: LoweredKernel) -> RenderedKernel:
    """The fused step of `lk` (kind "lstm": one LSTM_CELL node, its value the kernel's output)."""
    node = lk.kernel.core
    assert node is not None and node.op is Op.LSTM_CELL
    _, N, H = node.shape
    d = node.dtype
    target = current_target()
    rb = ROW_BLOCK if N >= ROW_BLOCK else 1
    blocks = (N + rb - 1) // rb
    total = blocks * H
    big = max([node.numel] + [prod(b.shape) for b in lk.buffers]) >= 2**31 - 64
    ity = "long" if big else "int"
    arg_of = {b.uid: i for i, b in enumerate(lk.buffers) if i >= 1}
    ops = {nm: _operand(nm, s, arg_of) for nm, s in zip(_NAMES, node.srcs)}
    # the operands' offsets are arguments, not literals: the steps of a sequence differ only in
    # the time slice of xw they read, so all but the first share one program (64 steps compiled
    # 64 programs when xw[t]'s offset was part of the source)
    offsets = [(nm, o["offset"]) for nm, o in ops.items() if o["offset"] is not None]
    params = _common(lk)["params"] + [f"const {ity} off_{nm}" for nm, _ in offsets]
    as_ity = np.int64 if ity == "long" else np.int32
    w = target.loop_lanes(d.itemsize)
    if any(ops[nm]["buf"] is not None and ops[nm]["sc"] != 1 for nm in ("HH", "W")) or H < w:
        w = 1  # a strided row is read element by element
    kv = H - H % w
    lsz = _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "L")
    source = _template().render(
        name=name, ity=ity, total=total, guard=gsz != total, rb=rb, ragged=N % rb != 0, N=N, H=H, NH=N * H,
        w=w, kv=kv, t=d.cl, tv=d.cl + (str(w) if w > 1 else ""), hsum=_hsum(w), ops=ops, out="buf0",
        zero=literal(0.0, d), one=literal(1.0, d), tanh=op_expr(Op.TANH, ["x"], d, d, 1),
        exp_neg_abs=op_expr(Op.EXP, ["(-fabs(x))"], d, d, 1), **{**_common(lk), "params": params})
    flops = 2 * N * 4 * H * H + 30 * N * H
    return RenderedKernel(name, source, (gsz,), (lsz,), flops, _bytes(lk), tuple(as_ity(v) for _, v in offsets))


def _template():
    return templating.template("lstm.cl.j2")
