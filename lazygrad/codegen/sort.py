"""Codegen of the sort kernel (templates/sort.cl.j2): a SORT node over the rows of its last
axis → OpenCL C and launch sizes. One work-item per element counts the elements of its row
that come before it and writes the value (or its index) at that rank: no vectors (the
comparisons are scalar, every element's reads are the same row), no local memory. Long rows
are merge-sorted instead (frontend.sorting): a merge level (SortArg.run) is one work-item per
key, binary-searching the partner run (templates/sort_merge.cl.j2).

Public names: ORDER, render_sort.
"""
from __future__ import annotations

from lazygrad.codegen.render import RenderedKernel, _bytes, _common, _kernel_name, _local_for
from lazygrad.codegen.lower import LoweredKernel
from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.ir.view import prod

# (float, descending) -> (comes before, equal) as C expressions of xj, xi: NaN is the largest
# value (torch), and NaNs are equal to each other so a stable sort keeps their order
ORDER: dict[tuple[bool, bool], tuple[str, str]] = {
    (True, False): ("(xj < xi) | (isnan(xi) & !isnan(xj))", "(xj == xi) | (isnan(xj) & isnan(xi))"),
    (True, True): ("(xj > xi) | (isnan(xj) & !isnan(xi))", "(xj == xi) | (isnan(xj) & isnan(xi))"),
    (False, False): ("(xj < xi)", "(xj == xi)"),
    (False, True): ("(xj > xi)", "(xj == xi)"),
}


def render_sort(lk: LoweredKernel) -> RenderedKernel:
    """The sort kernel of `lk` (a kernel of kind "sort": the SORT node and its input buffer):
    the rank count of whole rows, or one merge level (SortArg.run > 0)."""
    node = lk.kernel.core
    assert node is not None and len(lk.buffers) == 2, lk.buffers
    src = lk.buffers[1]
    n = node.shape[-1] if node.shape else 1
    total = prod(node.shape)
    ity = "long" if total >= 2**31 - 64 else "int"
    if node.arg.run:
        return _render_merge(lk, n, total, ity)
    before, equal = ORDER[(src.dtype.is_float, node.arg.descending)]
    lsz = _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "S")
    source = codegen_template().render(
        name=name, ity=ity, total=total, n=n, guard=gsz != total, t=src.dtype.cl, out_t=node.dtype.cl,
        before=before, equal=equal, indices=node.arg.indices, **_common(lk))
    return RenderedKernel(name, source, (gsz,), (lsz,), 2 * total * n, _bytes(lk))


def _render_merge(lk: LoweredKernel, n: int, total: int, ity: str) -> RenderedKernel:
    node = lk.kernel.core
    lsz = _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "S")
    source = templating.template("sort_merge.cl.j2").render(
        name=name, ity=ity, total=total, n=n, run=node.arg.run, guard=gsz != total, t=node.dtype.cl, **_common(lk))
    steps = max(1, node.arg.run.bit_length())
    return RenderedKernel(name, source, (gsz,), (lsz,), 2 * total * steps, _bytes(lk))


def codegen_template():
    """The sort template (through codegen's loader, which tests spy on)."""
    return templating.template("sort.cl.j2")
