"""Matrix products: shape rules of matmul (1-D, 2-D, batched, broadcast batch dims), the
MATMUL node, and when its operands are packed into panels first.

A matmul is one MATMUL node (its kernel fuses the elementwise chain after it). Large operands
that the kernel would read with a long stride per K step (B rows N elements apart, or a
transposed A) are first copied into panels (`lower.pack_panels`): tiles stored contiguously
along K, which the kernel streams at full speed. The copy is one cheap kernel; the logical
operand stays a view of the panels, so autodiff and every other reader see a plain matrix.

Public names: matmul, matmul_nodes, linear, pack_policy.
"""
from __future__ import annotations

from lazygrad import dtypes as dt
from lazygrad.config import settings
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.codegen.lower import PANEL_A, PANEL_B, operand_view, pack_panels, unpack_panels
from lazygrad.frontend.tensor import Tensor, broadcast_shapes
from lazygrad.ir.view import ShapeTracker

# Packing pays once the operand is read by several work-items and its rows are far apart;
# measured on PoCL/AVX-512 (bench/bench_matmul.py): below this many multiply-adds the copy
# kernel costs more than the strided reads.
PACK_MIN_MACS = 64 * 64 * 64


def pack_policy() -> str:
    """LAZYGRAD_MATMUL_PACK: 'auto' (default), '1' always pack B, '0' never pack."""
    return settings().matmul_pack


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


def _matmul_kernel(a: Tensor, b: Tensor) -> Tensor:
    """(..., M, K) @ (..., K, N) with equal batch dims."""
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = a.shape[:-2]
    if 0 in (m, n, k) or 0 in batch:
        return Tensor.zeros(*(batch + (m, n)), dtype=a.dtype)
    return Tensor._from(matmul_nodes(a.node, b.node), a, b)


def matmul_nodes(a: Node, b: Node) -> Node:
    """The MATMUL node of a (..., M, K) and b (..., K, N) (equal batch dims), its operands
    packed into panels first where that pays. Autodiff builds its gradient products here too."""
    pack_a, pack_b = _should_pack(a, b)
    if pack_a:
        a = unpack_panels(pack_panels(a, PANEL_A, _a_tile(), "matmul A packed into row panels"), PANEL_A,
                          a.shape[-2])
    if pack_b:
        b = unpack_panels(pack_panels(b, PANEL_B, _b_tile(b.dtype), "matmul B packed into column panels"),
                          PANEL_B, b.shape[-1])
    return gr.matmul(a, b)


def _b_tile(d: dt.DType) -> int:
    from lazygrad.codegen.render import matmul_panel_width
    return matmul_panel_width(d)


def _a_tile() -> int:
    from lazygrad.codegen.render import matmul_panel_rows
    return matmul_panel_rows()


def _should_pack(a: Node, b: Node) -> tuple[bool, bool]:
    """(pack A, pack B). An operand seen through stacked views (im2col windows, reshaped
    transposes) is always packed: the matmul would recompute a div/mod index per element per
    tile. A plain strided operand is packed when the product is large and the kernel would
    read it badly: B rows far apart (a new cache line and page every K step) or not along N,
    A not along K."""
    policy = pack_policy()
    if policy == "0":
        return False, False
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = 1
    for s in a.shape[:-2]:
        batch *= s
    big = m * n * k * batch >= PACK_MIN_MACS and m >= 16
    a_st, _ = operand_view(a)
    b_st, _ = operand_view(b)
    a_multi, b_multi = len(a_st.views) > 1, len(b_st.views) > 1
    if policy == "1":
        return a_multi or not _unit_stride(a_st, -1), True
    b_rows_far = n * b.dtype.itemsize > 1024
    pack_b = b_multi or (big and (not _unit_stride(b_st, -1) or b_rows_far))
    pack_a = a_multi or (big and not _unit_stride(a_st, -1) and m > 1)
    return pack_a, pack_b


def _unit_stride(st: ShapeTracker, dim: int) -> bool:
    """Does a single-view operand read consecutive elements along `dim`?"""
    v = st.views[-1]
    return len(st.views) == 1 and (v.strides[dim] in (0, 1) or v.shape[dim] == 1)
