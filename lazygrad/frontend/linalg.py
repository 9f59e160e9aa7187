"""Matrix products: shape rules of matmul (1-D, 2-D, batched, broadcast batch dims) and the
MATMUL node.

A matmul is one MATMUL node (its kernel fuses the elementwise chain after it). Whether its
operands are copied into panels first is decided at realize by the pack_matmul pass
(lazygrad/passes/pack_matmul.py), with the target in hand.

lstm_cell is one LSTM step (the gates' matmul h w_hhᵀ plus the input part, and the cell
update) as one LSTM_CELL node (ir/lstm.py), which the fuse_lstm pass keeps for the fused kernel
or replaces by the primitive graph.

Public names: matmul, linear, lstm_cell.
"""
from __future__ import annotations

from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.ir import lstm as lstm_ir
from lazygrad.frontend.tensor import Tensor, broadcast_shapes
from typing import Any

def matmul(a: Tensor, b: Tensor) -> Tensor:
    """torch.matmul semantics: 1-D operands are promoted and the added dim removed after."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} and {b.shape}")
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                         f"(inner dims {a.shape[-1]} and {b.shape[-2]})")
    d = dt.promote(a.dtype, b.dtype)
    if d is dt.bool_:
        d = dt.default_int
    a, b = a.cast(d), b.cast(d)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="matmul")
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if batch and all(s == 1 for s in b.shape[:-2]):
        # B shared by every batch entry: fold the batch into M, one bigger 2-D product
        rows = m
        for s in batch:
            rows *= s
        a2 = a._expand_to(batch + (m, k)).reshape(rows, k)  # explicit sizes: -1 is ambiguous when k == 0
        out = _matmul_kernel(a2, b.reshape(k, n)).reshape(batch + (m, n))
    else:
        out = _matmul_kernel(a._expand_to(batch + (m, k)), b._expand_to(batch + (k, n)))
    if squeeze_a:
        out = out.reshape(out.shape[:-2] + (n,))
    if squeeze_b:
        out = out.reshape(out.shape[:-1])
    return out


def linear(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """torch.nn.functional.linear: x @ w.T (+ bias); w is (out_features, in_features)."""
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input shape {x.shape} does not match weight shape {w.shape} "
                         f"(last dim of input must be in_features={w.shape[1]})")
    out = x.matmul(w.T)
    if bias is not None:
        if bias.shape not in ((w.shape[0],), ()):
            raise ValueError(f"linear: bias shape {bias.shape} does not match out_features {w.shape[0]}")
        out = out + bias
    return out


def lstm_cell(xw: Tensor, h: Tensor, c: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM step: xw (N, 4H) the input part of the gates (biases included), h and c (N, H)
    the state, w_hh (4H, H) in torch's layout (gate blocks i, f, g, o). (h', c', the cell's
    value (6, N, H) of which h' and c' are planes 0 and 1: views of one buffer)."""
    n, hid = h.shape
    for what, t, shape in (("xw", xw, (n, 4 * hid)), ("c", c, (n, hid)), ("w_hh", w_hh, (4 * hid, hid))):
        if t.shape != shape:
            raise ValueError(f"lstm_cell: {what} has shape {t.shape}, expected {shape} for a state {h.shape}")
    s = Tensor._from(lstm_ir.cell_node(xw.node, h.node, c.node, w_hh.node), xw, h, c, w_hh)
    return (Tensor._from(lstm_ir.plane(s.node, lstm_ir.H_PLANE), s), Tensor._from(lstm_ir.plane(s.node, lstm_ir.C_PLANE), s),
            s)


def _matmul_kernel(a: Tensor, b: Tensor) -> Tensor:
    """(..., M, K) @ (..., K, N) with equal batch dims."""
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = a.shape[:-2]
    if 0 in (m, n, k) or 0 in batch:
        return Tensor.zeros(*(batch + (m, n)), dtype=a.dtype)
    # one MATMUL node: the pack_matmul pass copies its operands into panels at realize where
    # that pays (a backend decision, made with the target in hand)
    return Tensor._from(gr.matmul(a.node, b.node), a, b)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_matmul(self, w: Any) -> Tensor:
    """Matrix product with torch.matmul's rules: 1-D operands are promoted and the added dim
    removed after, leading batch dims broadcast. `@` is the same."""
    return matmul(self, self._coerce(w, "matmul"))


def _method_linear(self, w: Tensor, b: Tensor | None = None) -> Tensor:
    """torch semantics: self @ w.T + b, w of shape (out_features, in_features)."""
    return linear(self, w, b)


TENSOR_METHODS = {"matmul": _method_matmul, "linear": _method_linear}
