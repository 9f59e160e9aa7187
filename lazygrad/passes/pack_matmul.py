"""pack_matmul: large matmul operands are copied into panels first.

Operands the kernel would read with a long stride per K step (B rows N elements apart, or a
transposed A) are copied into panels (`ir.panels.pack_panels`): tiles stored contiguously
along K, which the kernel streams at full speed. The copy is one cheap kernel; the logical
operand stays a view of the panels. Panel sizes are the target's (two vectors of B columns,
`Target.matmul_panel_rows` of A rows).

Public names: PACK_MATMUL, PACK_MIN_MACS, should_pack.
"""
from __future__ import annotations

from lazygrad.config import settings
from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node
from lazygrad.ir.movement import operand_view
from lazygrad.ir.ops import Op
from lazygrad.ir.panels import PANEL_A, PANEL_B, pack_panels, unpack_panels
from lazygrad.ir.view import ShapeTracker
from lazygrad.passes.rewrite import Pass
from lazygrad.target import Target

# Packing pays once the operand is read by several work-items and its rows are far apart;
# measured on PoCL/AVX-512 (bench/bench_matmul.py): below this many multiply-adds the copy
# kernel costs more than the strided reads.
PACK_MIN_MACS = 64 * 64 * 64


def should_pack(a: Node, b: Node) -> tuple[bool, bool]:
    """(pack A, pack B). An operand seen through stacked views (im2col windows, reshaped
    transposes) is always packed: the matmul would recompute a div/mod index per element per
    tile. A plain strided operand is packed when the product is large and the kernel would
    read it badly: B rows far apart (a new cache line and page every K step) or not along N,
    A not along K. LAZYGRAD_MATMUL_PACK: 'auto', '1' always pack B, '0' never pack."""
    policy = settings().matmul_pack
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


def _match(n: Node, target: Target) -> bool:
    return n.op is Op.MATMUL


def _apply(n: Node, target: Target) -> Node | None:
    a, b = n.srcs
    pack_a, pack_b = should_pack(a, b)
    if not (pack_a or pack_b):
        return None
    if pack_a:
        a = unpack_panels(pack_panels(a, PANEL_A, target.matmul_panel_rows(), "matmul A packed into row panels"),
                          PANEL_A, a.shape[-2])
    if pack_b:
        b = unpack_panels(pack_panels(b, PANEL_B, 2 * target.matmul_lanes(b.dtype.itemsize),
                                      "matmul B packed into column panels"), PANEL_B, b.shape[-1])
    # the arg (why an attention or LSTM cell around it was not fused) stays for the scheduler's note
    return gr.matmul(a, b) if n.arg is None else gr.make(Op.MATMUL, (a, b), n.shape, n.dtype, n.arg)


PACK_MATMUL = Pass("pack_matmul", _match, _apply)
