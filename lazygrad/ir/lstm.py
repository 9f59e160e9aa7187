"""The LSTM cell in the graph: one LSTM_CELL node per time step, which one fused kernel computes
(templates/lstm.cl.j2), or the primitive graph it stands for.

nn.LSTM builds, per step with a state, `cell_node(xw, h, c, w_hh)`: xw (N, 4H) is the step's
input part of the gates (x_t W_ihᵀ + biases, one matmul over all steps), h and c (N, H) the
state, w_hh (4H, H) the hidden weight in torch's layout (gate blocks i, f, g, o of H rows).
Its value is (PLANES, N, H): the new h and c, then the gate activations σ(i), σ(f), tanh(g),
σ(o) the backward reads instead of recomputing the gates' matmul. The next step reads planes
0 and 1 as strided views of the same buffer, so a step is one kernel writing one buffer.

The gradient (autodiff/rules.py: `_lstm_cell_rule`) is plain graph from the saved planes:
the gate gradients (one elementwise kernel), their product with w_hh for dh and their
contribution to w_hh. The `fuse_lstm` pass keeps the node when the kernel takes it and
otherwise replaces it by `expand(n)`, today's graph (the matmul h w_hhᵀ with xw in its
epilogue, then the elementwise cell), whose matmul carries the `CellDecline` with why.

Public names: PLANES, H_PLANE, C_PLANE, GATE_PLANES, CellDecline, cell_node, plane, decline,
expand, sigmoid, promoted, reference.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op

PLANES = 6
H_PLANE, C_PLANE = 0, 1
GATE_PLANES = (2, 3, 4, 5)   # σ(i), σ(f), tanh(g), σ(o): torch's gate order
_DTYPES = frozenset({"float32", "float64"})


class CellDecline(NamedTuple):
    """The fused LSTM cell kernel does not take this step: why (the arg of the fallback's matmul)."""

    why: str


def cell_node(xw: Node, h: Node, c: Node, w_hh: Node) -> Node:
    """The cell of one step, in the promoted dtype of its operands (like a matmul's)."""
    n, hid = h.shape
    return gr.make(Op.LSTM_CELL, (xw, h, c, w_hh), (PLANES, n, hid), promoted(xw, h, c, w_hh))


def promoted(*xs: Node) -> dt.DType:
    d = xs[0].dtype
    for x in xs[1:]:
        d = dt.promote(d, x.dtype)
    return d


def plane(s: Node, p: int) -> Node:
    """Plane p (N, H) of a cell's value s (PLANES, N, H): a strided view, no copy."""
    _, n, hid = s.shape
    return gr.reshape(gr.shrink(s, ((p, p + 1), (0, n), (0, hid))), (n, hid))


def decline(n: Node) -> str:
    """Why the fused kernel does not take the cell n, or ''."""
    ds = {s.dtype.name for s in n.srcs}
    if len(ds) > 1:
        return f"operands of different dtypes ({', '.join(sorted(ds))})"
    if n.dtype.name not in _DTYPES:
        return f"{n.dtype.name} (the fused kernel computes in float32 or float64)"
    if 0 in n.shape:
        return "an empty dimension"
    return ""


def sigmoid(x: Node) -> Node:
    """The front end's overflow-free logistic (frontend/elementwise.py): e = exp(-|x|),
    (x >= 0 ? 1 : e) / (1 + e)."""
    zero, one = gr.const(0.0, x.dtype, x.shape), gr.const(1.0, x.dtype, x.shape)
    neg = gr.elementwise(Op.CMPLT, x, zero, dtype=dt.bool_)
    e = gr.elementwise(Op.EXP, gr.elementwise(Op.WHERE, neg, x, gr.elementwise(Op.NEG, x)))
    return gr.elementwise(Op.DIV, gr.elementwise(Op.WHERE, neg, e, one), gr.elementwise(Op.ADD, one, e))


def expand(n: Node, why: str = "") -> Node:
    """The primitive graph of the cell n: the gates' matmul (carrying `CellDecline(why)` when
    the kernel declined it), the cell update, the planes stacked."""
    d = n.dtype
    xw, h, c, w = (x if x.dtype is d else gr.elementwise(Op.CAST, x, dtype=d) for x in n.srcs)
    N, H = h.shape
    mm = gr.make(Op.MATMUL, (h, gr.permute(w, (1, 0))), (N, 4 * H), d, CellDecline(why) if why else None)
    pre = gr.elementwise(Op.ADD, xw, mm)
    i, f, g, o = (gr.shrink(pre, ((0, N), (k * H, (k + 1) * H))) for k in range(4))
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o)
    g = gr.elementwise(Op.TANH, g)
    c2 = gr.elementwise(Op.ADD, gr.elementwise(Op.MUL, f, c), gr.elementwise(Op.MUL, i, g))
    h2 = gr.elementwise(Op.MUL, o, gr.elementwise(Op.TANH, c2))
    out: Node | None = None
    for p, v in enumerate((h2, c2, i, f, g, o)):
        v = gr.pad(gr.reshape(v, (1, N, H)), ((p, PLANES - 1 - p), (0, 0), (0, 0)))
        out = v if out is None else gr.elementwise(Op.ADD, out, v)
    assert out is not None
    # stored: the next step reads h and c (folded into its matmul's prologue instead, the
    # whole recurrence so far would be recomputed there)
    return gr.make(Op.CONTIGUOUS, (out,), out.shape, d, "the LSTM step's state, stored for the next step")


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def reference(srcs: list[np.ndarray]) -> np.ndarray:
    """The value of an LSTM_CELL node from its sources' values (the interpreter's)."""
    xw, h, c, w = srcs
    H = h.shape[1]
    pre = xw + h @ w.T
    i, f, o = (_np_sigmoid(pre[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
    g = np.tanh(pre[:, 2 * H:3 * H])
    c2 = f * c + i * g
    return np.stack([o * np.tanh(c2), c2, i, f, g, o])
