"""Codegen of the gather kernel (templates/gather.cl.j2): a GATHER node → OpenCL C and launch
sizes. One work-item per output element: unravel its index over the output shape, read the
index tensor there and x at the named position (zero strides where either broadcasts).

The scatter-add (templates/segment_sum.cl.j2, a SEGMENT_SUM node) is its counterpart for a
gather's gradient: one work-item per output row and block of columns sums its segment of the
sorted index.

Public names: render_gather, render_segment_sum.
"""
from __future__ import annotations

from lazygrad.codegen.render import RenderedKernel, _bytes, _common, _kernel_name, _local_for, literal
from lazygrad.codegen.lower import LoweredKernel
from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.scheduling.scheduler import flat_base
from lazygrad.ir.view import prod


def _strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Row-major strides of `shape`, 0 where a size-1 dim broadcasts over the output."""
    st, acc = [0] * len(shape), 1
    for k in range(len(shape) - 1, -1, -1):
        st[k] = 0 if shape[k] == 1 and out[k] != 1 else acc
        acc *= shape[k]
    return st


def _offset(names: list[str], strides: list[int], skip: int | None = None) -> str:
    terms = [f"{c}*{s}" if s != 1 else c for k, (c, s) in enumerate(zip(names, strides)) if s and k != skip]
    return "+".join(terms) or "0"


def render_gather(lk: LoweredKernel) -> RenderedKernel:
    """The gather kernel of `lk` (a kernel of kind "gather": the GATHER node, x and the index)."""
    node = lk.kernel.core
    assert node is not None
    inputs = {b.uid: i for i, b in enumerate(lk.buffers) if i > 0}
    uids = set(inputs)
    x, idx = (flat_base(s, lambda m: m.uid in uids) for s in node.srcs)
    x_arg, idx_arg = inputs[x.uid], inputs[idx.uid]
    out, ax = node.arg.full_shape(node.shape), node.arg.axis
    total = prod(out)
    ity = "long" if total >= 2**31 - 64 or prod(x.shape) >= 2**31 - 64 else "int"
    names, lines = _unravel(out, ity)
    xs = _strides(node.srcs[0].shape, out)
    xs[ax] = prod(node.srcs[0].shape[ax + 1:])   # the gathered axis is never broadcast
    lsz = _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "G")
    source = _template().render(
        name=name, ity=ity, total=total, guard=gsz != total, unravel=lines, n=node.srcs[0].shape[ax],
        idx_arg=idx_arg, x_arg=x_arg, idx_offset=_offset(names, _strides(node.srcs[1].shape, out)),
        x_offset=_offset(names, xs, skip=ax), x_stride=xs[ax], zero=literal(0, node.dtype), **_common(lk))
    return RenderedKernel(name, source, (gsz,), (lsz,), 0, _bytes(lk))


# columns of g a scatter-add work-item sums (its private accumulators): enough to keep a
# work-item's segment search (two binary searches) a small part of its work, few enough
# registers; an Embedding(10000, 128) gradient over 2,048 tokens took 59 ms with a work-item
# per element (each searching), see bench/long_rows.py for the figure with this
_SEGMENT_COLUMNS = 32


def render_segment_sum(lk: LoweredKernel) -> RenderedKernel:
    """The scatter-add kernel of `lk` (kind "scatter": the SEGMENT_SUM node, g and the sorted
    keys). The autodiff rule builds it along axis 0 of a g whose other dims are its rows."""
    node = lk.kernel.core
    assert node is not None and node.arg.axis == 0, node.arg
    inputs = {b.uid: i for i, b in enumerate(lk.buffers) if i > 0}
    uids = set(inputs)
    g, keys = (flat_base(s, lambda m: m.uid in uids) for s in node.srcs[:2])   # srcs[2]: for autodiff
    size, n = node.arg.size, node.srcs[1].shape[0]
    r = prod(node.shape[1:])
    rb = min(_SEGMENT_COLUMNS, r)
    n_blocks = -(-r // rb)
    total = size * n_blocks
    ity = "long" if max(prod(node.shape), prod(node.srcs[0].shape), n) >= 2**31 - 64 else "int"
    lsz = _local_for(total)
    gsz = (total + lsz - 1) // lsz * lsz
    name = _kernel_name(lk, "X")
    source = templating.template("segment_sum.cl.j2").render(
        name=name, ity=ity, total=total, guard=gsz != total, n=n, size=size, r=r, rb=rb, n_blocks=n_blocks,
        ragged=r % rb != 0, keys_arg=inputs[keys.uid], g_arg=inputs[g.uid], t=node.dtype.cl,
        zero=literal(0, node.dtype), **_common(lk))
    return RenderedKernel(name, source, (gsz,), (lsz,), prod(node.srcs[0].shape), _bytes(lk))


def _unravel(out: tuple[int, ...], ity: str) -> tuple[list[str], list[str]]:
    """Names c0.. of an output element's coordinates, and the lines computing them from gid."""
    names = [f"c{k}" for k in range(len(out))]
    lines, rest = [], "gid"
    for k in range(len(out) - 1, -1, -1):
        if k == 0:
            lines.append(f"{ity} {names[k]} = {rest};")
        else:
            lines.append(f"{ity} {names[k]} = {rest} % {out[k]};")
            lines.append(f"{ity} r{k} = {rest} / {out[k]};")
            rest = f"r{k}"
    return names, lines


def _template():
    return templating.template("gather.cl.j2")
