"""The graph IR's checker: the invariants every stage after the builders relies on.

The builders in graph.py assert some of these as they build; nodes made by `graph.make`
directly (autodiff rules, lowering's panels, future graph passes) and nodes whose fields were
changed afterwards are checked nowhere else. `verify_graph` walks a list of nodes in dependency
order (what `toposort` returns) and raises `IRError` at the first node that breaks a rule,
naming it (op, uid, shape, dtype, origin) and the rule. `LAZYGRAD_VERIFY=1` runs it on every
realize; the tests always do.

The rules are a table keyed by op, built from the op table's categories (`ops.PRIMITIVES`):
every op gets the common checks, its category's and its own, so a new op of a known category
is checked without a new line here.

Public names: IRError, verify_graph, describe_node.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from lazygrad.dtypes import DTYPES, DType, bool_
from lazygrad.ir.attention import FORWARD_PARTS, AttentionArg, Decline
from lazygrad.ir.lstm import PLANES, CellDecline
from lazygrad.ir.graph import ConvArg, GatherArg, Iota, Node, SegmentArg, SortArg
from lazygrad.ir.ops import COMPARISONS, PRIMITIVES, Op
from lazygrad.ir.view import prod


class IRError(Exception):
    """A node breaks an invariant of the graph IR (a bug in whatever built or rewrote it)."""

    def __init__(self, node: Node, rule: str) -> None:
        super().__init__(f"graph IR: {rule}; at {describe_node(node)}")
        self.node = node
        self.rule = rule


def describe_node(n: Node) -> str:
    """`#12 add (2, 3) float32 from model.py:4 (relu)`: the node as a message names it."""
    label = f" ({n.label})" if n.label else ""
    # a broken node may hold anything in op and dtype: name them as they are
    return f"#{n.uid} {getattr(n.op, 'value', n.op)} {n.shape} {getattr(n.dtype, 'name', n.dtype)} from {n.origin}{label}"


# A check returns what is wrong with the node, or None. It may assume the common checks
# passed (right arity, a tuple shape, a known dtype, Node sources).
Check = Callable[[Node], "str | None"]


def _shapes(n: Node) -> str:
    return ", ".join(str(tuple(s.shape)) for s in n.srcs)


def _dtypes(n: Node) -> str:
    return ", ".join(s.dtype.name for s in n.srcs)


def _is_int_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x)


# --- common to every op ------------------------------------------------------------------------
# These run on every node of every realize under LAZYGRAD_VERIFY, so they are one function with
# the common case first. A dtype must be one of the module's DType objects, not an equal copy:
# the renderers test `dt is bool_`; so the later checks compare dtypes by identity too (the
# dataclass's == is slow).
_ARITY = {op: p.arity for op, p in PRIMITIVES.items()}


def _differ(a: DType, b: DType) -> bool:
    return a is not b


def _sizes_ok(shape: Any) -> bool:
    if type(shape) is tuple:
        for s in shape:
            if type(s) is not int or s < 0:
                break
        else:
            return True
    return _is_int_tuple(shape) and all(s >= 0 for s in shape)  # numpy ints, or a bad shape


def _common(n: Node) -> str | None:
    srcs = n.srcs
    want = _ARITY[n.op]
    if type(srcs) is not tuple or (len(srcs) != want and want >= 0):
        return f"{n.op.value} takes {want} sources, has {len(srcs)}"
    for s in srcs:
        if not isinstance(s, Node):
            return f"source {s!r} is not a Node"
        # make() numbers nodes as it creates them, after their sources: a source with a later
        # uid was swapped in afterwards, and is how a cycle could form
        if s.uid >= n.uid:
            return f"source #{s.uid} was created after the node (uids must increase)"
    if not _sizes_ok(n.shape):
        return f"shape {n.shape!r} is not a tuple of sizes >= 0"
    d = n.dtype
    if DTYPES.get(getattr(d, "name", None)) is not d:
        return f"dtype {d!r} is not a lazygrad dtype (one of lazygrad.dtypes' objects)"
    buf = n.realized
    if buf is not None:
        size, bdt = getattr(buf, "size", None), getattr(buf, "dtype", None)
        if size != n.numel:
            return f"realized buffer holds {size} elements, the node {n.numel}"
        if bdt is not d:
            return f"realized buffer is {getattr(bdt, 'name', bdt)}, the node {d.name}"
    return None


_COMMON: tuple[Check, ...] = (_common,)


# --- by category ------------------------------------------------------------------------------
def _same_shape(n: Node) -> str | None:
    if any(tuple(s.shape) != n.shape for s in n.srcs):
        return f"sources of shapes {_shapes(n)} differ from the output shape {n.shape}"
    return None


def _same_dtype(n: Node) -> str | None:
    """Arithmetic: every source and the output share one dtype (the Tensor layer casts)."""
    if any(_differ(s.dtype, n.dtype) for s in n.srcs):
        return f"sources of dtypes {_dtypes(n)} differ from the output dtype {n.dtype.name}"
    return None


def _bool_of_equal(n: Node) -> str | None:
    """Comparisons and NOT: sources of one dtype, a bool result."""
    if n.dtype is not bool_:
        return f"{n.op.value} gives bool, not {n.dtype.name}"
    if any(_differ(s.dtype, n.srcs[0].dtype) for s in n.srcs):
        return f"{n.op.value} compares sources of different dtypes {_dtypes(n)}"
    return None


def _where(n: Node) -> str | None:
    c, a, b = n.srcs
    if c.dtype is not bool_:
        return f"where's condition is {c.dtype.name}, not bool"
    if _differ(a.dtype, n.dtype) or _differ(b.dtype, n.dtype):
        return f"where's branches are {a.dtype.name}, {b.dtype.name}; the output {n.dtype.name}"
    return None


def _bitcast(n: Node) -> str | None:
    s = n.srcs[0].dtype
    if s.itemsize != n.dtype.itemsize or bool_ in (s, n.dtype):
        return f"bitcast of {s.name} to {n.dtype.name}: only between non-bool dtypes of one size"
    return None


def _shifts(n: Node) -> str | None:
    return None if n.dtype.is_int else f"{n.op.value} of {n.dtype.name}: shifts are for integers"


def _reduce(n: Node) -> str | None:
    src = n.srcs[0]
    axes, nd = n.arg, len(src.shape)
    if not _is_int_tuple(axes) or not axes or list(axes) != sorted(set(axes)) or not all(0 <= a < nd for a in axes):
        return f"reduce axes {axes!r} are not sorted distinct axes of a {nd}-d source"
    want = tuple(1 if i in axes else s for i, s in enumerate(src.shape))
    if n.shape != want:
        return f"reducing {tuple(src.shape)} over {axes} gives {want}, not {n.shape}"
    if _differ(n.dtype, src.dtype):
        return f"reduction changes the dtype {src.dtype.name} to {n.dtype.name}"
    return None


def _keeps_dtype(n: Node) -> str | None:
    return None if not _differ(n.dtype, n.srcs[0].dtype) else f"view changes the dtype {n.srcs[0].dtype.name} to {n.dtype.name}"


# --- movement: the arg agrees with both shapes ----------------------------------------------------
def _reshape(n: Node) -> str | None:
    src = n.srcs[0]
    if n.arg != n.shape:
        return f"reshape arg {n.arg!r} is not the shape {n.shape}"
    if prod(n.shape) != src.numel:
        return f"reshape of {tuple(src.shape)} ({src.numel} elements) to {n.shape} ({prod(n.shape)})"
    return None


def _permute(n: Node) -> str | None:
    src = n.srcs[0]
    order = n.arg
    if not _is_int_tuple(order) or sorted(order) != list(range(len(src.shape))):
        return f"permute order {order!r} is not a permutation of {len(src.shape)} axes"
    want = tuple(src.shape[i] for i in order)
    return None if n.shape == want else f"permuting {tuple(src.shape)} by {order} gives {want}, not {n.shape}"


def _expand(n: Node) -> str | None:
    src = n.srcs[0]
    if n.arg != n.shape:
        return f"expand arg {n.arg!r} is not the shape {n.shape}"
    if len(src.shape) != len(n.shape) or any(s not in (1, o) for s, o in zip(src.shape, n.shape)):
        return f"expand of {tuple(src.shape)} to {n.shape}: only size-1 dims grow (same number of dims)"
    return None


def _pad(n: Node) -> str | None:
    src = n.srcs[0]
    if not (isinstance(n.arg, tuple) and len(n.arg) == 2):
        return f"pad arg {n.arg!r} is not (widths, value)"
    widths, value = n.arg
    if (not isinstance(widths, tuple) or len(widths) != len(src.shape)
            or not all(_is_int_tuple(w) and len(w) == 2 and min(w) >= 0 for w in widths)):
        return f"pad widths {widths!r} are not one (before, after) >= 0 per axis of {tuple(src.shape)}"
    if not isinstance(value, (bool, int, float)):
        return f"pad value {value!r} is not a number"
    want = tuple(s + b + a for s, (b, a) in zip(src.shape, widths))
    return None if n.shape == want else f"padding {tuple(src.shape)} by {widths} gives {want}, not {n.shape}"


def _shrink(n: Node) -> str | None:
    src = n.srcs[0]
    bounds = n.arg
    if (not isinstance(bounds, tuple) or len(bounds) != len(src.shape)
            or not all(_is_int_tuple(b) and len(b) == 2 and 0 <= b[0] <= b[1] <= s for b, s in zip(bounds, src.shape))):
        return f"shrink bounds {bounds!r} are not 0 <= lo <= hi <= size per axis of {tuple(src.shape)}"
    want = tuple(hi - lo for lo, hi in bounds)
    return None if n.shape == want else f"shrinking {tuple(src.shape)} to {bounds} gives {want}, not {n.shape}"


def _flip(n: Node) -> str | None:
    nd = len(n.shape)
    if not _is_int_tuple(n.arg) or list(n.arg) != sorted(set(n.arg)) or not all(0 <= a < nd for a in n.arg):
        return f"flip axes {n.arg!r} are not sorted distinct axes of {nd} dims"
    return _same_shape(n)


def _no_arg(n: Node) -> str | None:
    return None if n.arg is None else f"{n.op.value} takes no arg, has {n.arg!r}"


# --- sources ----------------------------------------------------------------------------------------
def _buffer(n: Node) -> str | None:
    # a BUFFER is never computed: it has a buffer, or says how the engine fills it (Iota)
    if n.arg is None:
        return "a buffer node without a realized buffer" if n.realized is None else None
    if not isinstance(n.arg, Iota) or n.shape != (n.arg.n,):
        return f"buffer arg {n.arg!r} is not the Iota of its shape {n.shape}"
    return None


def _const(n: Node) -> str | None:
    v = n.arg
    if n.shape != ():
        return f"a constant has shape (), not {n.shape} (broadcast it with expand)"
    if not isinstance(v, (bool, int, float)):
        return f"constant {v!r} is a {type(v).__name__}, not a Python bool, int or float"
    # the literal is printed with int(): 2.5 would silently become 2. (A whole number out of
    # the dtype's range is allowed: it wraps into it, like torch's scalars.)
    if n.dtype.is_int and isinstance(v, float) and not v.is_integer():
        return f"constant {v!r} is not a whole number for {n.dtype.name}"
    return None


def _rand(n: Node) -> str | None:
    if not isinstance(n.arg, (int, np.integer)) or isinstance(n.arg, bool) or n.arg < 0:
        return f"rand seed {n.arg!r} is not an int >= 0"
    return None if n.dtype.name == "float32" else f"rand gives float32, not {n.dtype.name}"


# --- special kernels ------------------------------------------------------------------------------
def _matmul_arg(n: Node) -> str | None:
    # None, or why the attention pattern it ends (passes/fuse_attention.py) or the LSTM cell it
    # computes (passes/fuse_lstm.py) was not fused
    if n.arg is None or isinstance(n.arg, (Decline, CellDecline)):
        return None
    return f"matmul arg {n.arg!r} is neither None nor a Decline"


def _matmul(n: Node) -> str | None:
    a, b = n.srcs
    if len(a.shape) < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        return f"matmul of {tuple(a.shape)} and {tuple(b.shape)}: (..., M, K) @ (..., K, N) with equal batch dims"
    want = tuple(a.shape[:-1]) + (b.shape[-1],)
    if n.shape != want:
        return f"matmul of {tuple(a.shape)} and {tuple(b.shape)} gives {want}, not {n.shape}"
    return _same_dtype(n)


def _conv2d(n: Node) -> str | None:
    x, w = n.srcs
    arg = n.arg
    if not isinstance(arg, ConvArg):
        return f"conv2d arg {arg!r} is not a ConvArg"
    if len(x.shape) != 4 or len(w.shape) != 4:
        return f"conv2d of {tuple(x.shape)} by {tuple(w.shape)}: both are 4-d"
    if arg.groups < 1 or w.shape[1] * arg.groups != x.shape[1] or w.shape[0] % arg.groups:
        return f"conv2d of {tuple(x.shape)} by {tuple(w.shape)} in {arg.groups} groups: channels do not match"
    want = (x.shape[0], w.shape[0]) + tuple(arg.out_size(x.shape[2:], w.shape[2:]))
    if n.shape != want:
        return f"conv2d of {tuple(x.shape)} by {tuple(w.shape)} with {arg} gives {want}, not {n.shape}"
    return _same_dtype(n)


def _contiguous(n: Node) -> str | None:
    # arg: None, or the reason lowering packed matmul panels (a str, part of the node's identity)
    if n.arg is not None and not isinstance(n.arg, str):
        return f"contiguous arg {n.arg!r} is neither None nor a reason"
    return _same_shape(n) or _keeps_dtype(n)


def _sort(n: Node) -> str | None:
    if not isinstance(n.arg, SortArg):
        return f"sort arg {n.arg!r} is not a SortArg"
    src = n.srcs[0]
    if n.arg.indices and not n.dtype.is_int:
        return f"argsort gives integer indices, not {n.dtype.name}"
    if not n.arg.indices and n.dtype is not src.dtype:
        return f"sorted values are {src.dtype.name}, not {n.dtype.name}"
    return _same_shape(n)


def _gather(n: Node) -> str | None:
    x, idx = n.srcs
    arg = n.arg
    if not isinstance(arg, GatherArg):
        return f"gather arg {arg!r} is not a GatherArg"
    nd = len(x.shape)
    if not 0 <= arg.axis < nd or len(idx.shape) != nd:
        return f"gather along axis {arg.axis} of {tuple(x.shape)} with indices {tuple(idx.shape)}: axis or dims"
    full = arg.full_shape(n.shape)
    if len(full) != nd or (arg.squeeze and full[arg.axis] != 1):
        return f"gather's output {n.shape} (squeeze={arg.squeeze}) does not fit {nd}-d operands"
    if any(i not in (1, o) for i, o in zip(idx.shape, full)):
        return f"gather indices {tuple(idx.shape)} do not broadcast to {full}"
    if any(k != arg.axis and a != 1 and a < o for k, (a, o) in enumerate(zip(x.shape, full))):
        return f"gather reads {tuple(x.shape)} beyond its size for output {full}"
    if not idx.dtype.is_int:
        return f"gather indices are {idx.dtype.name}, not integers"
    return None if n.dtype is x.dtype else f"gather of {x.dtype.name} gives {n.dtype.name}"


def _segment_sum(n: Node) -> str | None:
    g, keys, idx = n.srcs
    arg = n.arg
    if not isinstance(arg, SegmentArg):
        return f"segment_sum arg {arg!r} is not a SegmentArg"
    if not 0 <= arg.axis < len(g.shape) or keys.shape != (g.shape[arg.axis],):
        return f"segment_sum of {tuple(g.shape)} along axis {arg.axis} with keys {tuple(keys.shape)}: axis or sizes"
    if n.shape != g.shape[:arg.axis] + (arg.size,) + g.shape[arg.axis + 1:]:
        return f"segment_sum's output {n.shape} is not {tuple(g.shape)} with {arg.size} along axis {arg.axis}"
    if keys.dtype.name != "int64" or idx.shape != keys.shape or not idx.dtype.is_int:
        return f"segment_sum keys {keys.dtype.name} {tuple(keys.shape)} / index {idx.dtype.name} {tuple(idx.shape)}"
    return None if n.dtype is g.dtype else f"segment_sum of {g.dtype.name} gives {n.dtype.name}"


def _attention(n: Node) -> str | None:
    arg = n.arg
    if not isinstance(arg, AttentionArg):
        return f"attention arg {arg!r} is not an AttentionArg"
    want = 3 + arg.n_masks + (0 if arg.part in FORWARD_PARTS else 3)
    if len(n.srcs) != want:
        return f"attention {arg.part.value} with mask {arg.mask.value} takes {want} sources, has {len(n.srcs)}"
    q, k, v = n.srcs[:3]
    nd = len(n.shape)
    if any(len(s.shape) != nd for s in n.srcs):
        return f"attention sources {_shapes(n)} are not all {nd}-d"
    if k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
        return f"attention q, k, v shapes {_shapes(n)} do not fit"
    if any(s.dtype is not n.dtype for s in (q, k, v)):
        return f"attention of {_dtypes(n)} gives {n.dtype.name}"
    return None


def _lstm_cell(n: Node) -> str | None:
    xw, h, c, w = n.srcs
    if len(h.shape) != 2:
        return f"lstm cell state {tuple(h.shape)} is not (N, H)"
    N, H = h.shape
    want = [("xw", xw, (N, 4 * H)), ("c", c, (N, H)), ("w_hh", w, (4 * H, H))]
    for what, x, shape in want:
        if x.shape != shape:
            return f"lstm cell {what} is {tuple(x.shape)}, not {shape} for a state {tuple(h.shape)}"
    if n.shape != (PLANES, N, H) or n.arg is not None:
        return f"lstm cell of state {tuple(h.shape)} gives {n.shape} (arg {n.arg!r}), not {(PLANES, N, H)}"
    return None


_BY_CATEGORY: dict[str, tuple[Check, ...]] = {
    "source": (),
    "unary": (_same_shape, _same_dtype),
    "binary": (_same_shape, _same_dtype),
    "ternary": (_same_shape, _where),
    "cast": (_same_shape,),
    "reduce": (_reduce,),
    "movement": (_keeps_dtype,),
    "matmul": (_matmul_arg, _matmul),
    "conv": (_conv2d,),
    "copy": (_contiguous,),
    "sort": (_sort,),
    "gather": (_gather,),
    "scatter": (_segment_sum,),
    "attention": (_attention,),
    "lstm": (_lstm_cell,),
}
# rules of single ops; `_REPLACES` names category checks an op's own rule supersedes
_BY_OP: dict[Op, tuple[Check, ...]] = {
    Op.BUFFER: (_buffer,), Op.CONST: (_const,), Op.RAND: (_rand,),
    Op.SHL: (_shifts,), Op.SHR: (_shifts,), Op.BITCAST: (_bitcast,),
    Op.RESHAPE: (_reshape,), Op.PERMUTE: (_permute,), Op.EXPAND: (_expand,), Op.PAD: (_pad,),
    Op.SHRINK: (_shrink,), Op.FLIP: (_flip,), Op.DETACH: (_no_arg, _same_shape),
    **{op: (_bool_of_equal,) for op in COMPARISONS | {Op.NOT}},
}
_REPLACES: dict[Op, tuple[Check, ...]] = {op: (_same_dtype,) for op in COMPARISONS | {Op.NOT}}

CHECKS: dict[Op, tuple[Check, ...]] = {
    op: _COMMON + tuple(c for c in _BY_CATEGORY[p.category] if c not in _REPLACES.get(op, ()))
    + _BY_OP.get(op, ())
    for op, p in PRIMITIVES.items()}


def verify_graph(nodes: Iterable[Node]) -> None:
    """Check `nodes`, a graph in dependency order (`toposort(roots)`), raising IRError at the
    first violation: every node's own rules, and that the sources of every node not yet
    realized come before it in the list (the walk below a realized node stops, so its
    sources need not be there)."""
    seen: set[int] = set()
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"verify_graph: {n!r} is not a Node")
        op = n.op
        if not isinstance(op, Op):
            raise IRError(n, f"op {op!r} is not an Op")
        if n.uid in seen:
            raise IRError(n, "the node appears twice in the graph's order")
        for check in CHECKS[op]:
            what = check(n)
            if what is not None:
                raise IRError(n, what)
        if n.realized is None:
            missing = [s for s in n.srcs if s.uid not in seen]
            if missing:
                raise IRError(n, f"source #{missing[0].uid} does not come before the node "
                                 "(not in dependency order, or a cycle)")
        seen.add(n.uid)
