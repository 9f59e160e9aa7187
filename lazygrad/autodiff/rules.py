"""Autodiff as a DAG rewrite: the gradient of a node is more lazy graph.

`vjp_rules[op](g, node)` returns, for each source of `node`, the node of the gradient
contribution (or None where none flows); ops without a rule are listed in NO_GRAD_OPS, and an
assert keeps the two covering every Op. `grad(root, wrt)` walks the graph once in reverse
topological order (iteratively, never below a detach), sums contributions, and returns
gradient nodes that schedule and fuse like any other graph: forward and backward realized
together become few kernels. Every node a rule makes is labelled "grad of OP #id @ file:line"
after the forward node it differentiates, so `format_grad_graph` can print where it came from.

Tensors are the front end's (lazygrad/frontend/autograd.py: Tensor.backward, lg.grad); this
package sees nodes only.

Public names: vjp_rules, selective_rules, NO_GRAD_OPS, grad, grad_walk, format_grad_graph.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.config import settings
from lazygrad.ir.attention import AttentionMatch, Part, attention_node, causal_keep, part_node
from lazygrad.ir.attention import match as attention_match
from lazygrad.ir.graph import Node, toposort, with_origin
from lazygrad.ir import lstm
from lazygrad.ir.ops import REDUCE, Op
from lazygrad.ir.view import prod
from lazygrad.ir.windows import conv2d_im2col

Rule = Callable[[Node, Node], tuple[Node | None, ...]]


# --- small builders on nodes (no broadcasting: shapes already match) --------------------------

def _grad_label(n: Node) -> str:
    """The user-level op of n's gradient nodes: `relu_grad` (once: a rule that builds on
    another rule's nodes keeps `conv2d_grad`)."""
    label = n.label or n.op.value
    return label if label.endswith("_grad") else f"{label}_grad"

def _c(v: float, like: Node) -> Node:
    return gr.const(v, like.dtype, like.shape)


def add(a: Node, b: Node) -> Node: return gr.elementwise(Op.ADD, a, b)
def sub(a: Node, b: Node) -> Node: return gr.elementwise(Op.SUB, a, b)
def mul(a: Node, b: Node) -> Node: return gr.elementwise(Op.MUL, a, b)
def div(a: Node, b: Node) -> Node: return gr.elementwise(Op.DIV, a, b)
def neg(a: Node) -> Node: return gr.elementwise(Op.NEG, a)


def _as(x: Node, d: dt.DType) -> Node:
    return x if x.dtype == d else gr.elementwise(Op.CAST, x, dtype=d)


def _where(c: Node, a: Node, b: Node) -> Node:
    return gr.elementwise(Op.WHERE, c, a, b, dtype=a.dtype)


def _sum_to(g: Node, shape: tuple[int, ...]) -> Node:
    """Sum `g` over the dims where `shape` was broadcast (size 1), keeping them."""
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, g.shape)) if s == 1 and t != 1)
    return gr.reduce(Op.SUM, g, axes) if axes else g


def _max_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    a, b = n.srcs
    # torch.maximum's rule: an operand gets the gradient unless it is the smaller one (then
    # exactly 0, even where g is NaN or inf: a select, not a product), ties split it evenly;
    # with a NaN operand (no order) both get all of it
    lt = gr.elementwise(Op.CMPLT, a, b, dtype=dt.bool_)
    gt = gr.elementwise(Op.CMPLT, b, a, dtype=dt.bool_)
    eq = gr.elementwise(Op.CMPEQ, a, b, dtype=dt.bool_)
    split = _where(eq, mul(g, _c(0.5, g)), g)
    return _where(lt, _c(0.0, g), split), _where(gt, _c(0.0, g), split)


def _mod_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    # fmod(a, b) = a - trunc(a / b) b: d/da = 1, d/db = -trunc(a / b) = -(a - n) / b; for b = 0
    # (n is NaN) torch's -(a / b): +-inf, NaN for 0 / 0
    a, b = n.srcs
    quotient = _where(gr.elementwise(Op.CMPEQ, b, _c(0.0, b), dtype=dt.bool_), div(a, b), div(sub(a, n), b))
    return g, neg(mul(g, quotient))


def _rmax_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    (x,) = n.srcs
    axes = n.arg
    hit = _as(gr.elementwise(Op.CMPEQ, x, gr.expand(n, x.shape), dtype=dt.bool_), g.dtype)
    count = gr.reduce(Op.SUM, hit, axes)  # ties share the gradient evenly
    return (mul(hit, gr.expand(div(g, count), x.shape)),)


def _rprod_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """torch's prod backward. Without a zero anywhere in the input, out / x (NaN at a NaN or an
    infinity, as torch's division gives). With zeros, torch takes the product of the row's other
    elements (exclusive cumulative products) — except a full reduction with two or more zeros,
    which is 0. The other elements' product is composed from row counts, so it is exact in
    IEEE terms without a scan: NaN when another element is NaN or the others hold both a zero
    and an infinity, 0 when they hold a zero, ±inf when they hold an infinity, otherwise the
    product of the finite non-zeros divided by x (fuzz seed 772438524: a row with a NaN and
    zeros had gradient 0, torch's NaN)."""
    (x,) = n.srcs
    axes, shape = n.arg, n.srcs[0].shape
    b, i = dt.bool_, dt.default_int

    def test(op: Op, a: Node, c: Node) -> Node:
        return gr.elementwise(op, a, c, dtype=b)

    def count(mask: Node, over: tuple[int, ...] = axes) -> Node:
        return gr.expand(gr.reduce(Op.SUM, _as(mask, i), over), shape)

    def some(k: Node) -> Node:
        return test(Op.CMPLT, gr.const(0, i, shape), k)

    def minus(k: Node, mask: Node) -> Node:  # a row count without this element
        return gr.elementwise(Op.SUB, k, _as(mask, i))

    is0 = test(Op.CMPEQ, x, _c(0.0, x))
    isnan = gr.elementwise(Op.NOT, test(Op.CMPEQ, x, x), dtype=b)
    isinf = gr.elementwise(Op.OR, test(Op.CMPEQ, x, _c(math.inf, x)), test(Op.CMPEQ, x, _c(-math.inf, x)), dtype=b)
    neginf = test(Op.CMPEQ, x, _c(-math.inf, x))
    irregular = gr.elementwise(Op.OR, gr.elementwise(Op.OR, is0, isnan, dtype=b), isinf, dtype=b)
    zeros = count(is0)
    # out / x without zeros (the divisor is 1 at a zero so where's unused branch stays finite)
    nonzero = _where(is0, _c(1.0, x), x)
    by_x = div(gr.expand(gr.reduce(Op.RPROD, nonzero, axes), shape), nonzero)
    # the product of the other elements
    finite = _where(irregular, _c(1.0, x), x)
    f_others = div(gr.expand(gr.reduce(Op.RPROD, finite, axes), shape), finite)
    zeros_o, nans_o, infs_o = minus(zeros, is0), minus(count(isnan), isnan), minus(count(isinf), isinf)
    odd_neginf = test(Op.CMPEQ, gr.elementwise(Op.AND, minus(count(neginf), neginf), gr.const(1, i, shape)),
                      gr.const(1, i, shape))
    signed = _where(odd_neginf, neg(f_others), f_others)
    # one zero elsewhere: z * (the rest) is 0 but keeps that zero's derivative for a second
    # order (z: the sum of the row's zeros without this element's own)
    at_zero = _where(is0, x, _c(0.0, x))
    z = sub(gr.expand(gr.reduce(Op.SUM, at_zero, axes), shape), at_zero)
    one_zero = test(Op.CMPEQ, zeros_o, gr.const(1, i, shape))
    with_zero = _where(one_zero, mul(z, signed), _c(0.0, x))
    nan_others = gr.elementwise(Op.OR, some(nans_o), gr.elementwise(Op.AND, some(infs_o), some(zeros_o), dtype=b),
                                dtype=b)
    # ±inf as a select of constants, not signed * inf: a product with inf would send 0 * inf =
    # NaN into the second order wherever the where does not take it
    infinite = _where(test(Op.CMPLT, signed, _c(0.0, x)), _c(-math.inf, x), _c(math.inf, x))
    others = _where(nan_others, _c(math.nan, x), _where(some(zeros_o), with_zero, _where(some(infs_o), infinite, signed)))
    every = tuple(range(len(shape)))
    total = count(is0, every) if set(axes) != set(every) else zeros
    d = _where(some(total), others, by_x)
    if set(axes) == set(every):  # torch's prod() without a dim: 0 with two or more zeros
        d = _where(test(Op.CMPLT, gr.const(1, i, shape), total), _c(0.0, x), d)
    return (mul(gr.expand(g, shape), d),)


def _pow_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """torch's pow_backward_self / pow_backward_exponent: d/da is 0 where b == 0 (b a^(b-1) is
    0 * inf = NaN at a = 0), d/db is g * (0 where a == 0 and b >= 0, else a^b log a): the
    limit for b >= 0; for b < 0 at a = 0, inf * -inf."""
    a, b = n.srcs
    zero_a, zero_b = _c(0.0, a), _c(0.0, b)
    b0 = gr.elementwise(Op.CMPEQ, b, zero_b, dtype=dt.bool_)
    da = _where(b0, _c(0.0, g), mul(g, mul(b, gr.elementwise(Op.POW, a, sub(b, _c(1.0, b))))))
    a0 = gr.elementwise(Op.CMPEQ, a, zero_a, dtype=dt.bool_)
    # b >= 0 as b > 0 or b == 0: false for a NaN b, as in torch (not(b < 0) would be true)
    b_nonneg = gr.elementwise(Op.OR, gr.elementwise(Op.CMPLT, zero_b, b, dtype=dt.bool_), b0, dtype=dt.bool_)
    limit0 = gr.elementwise(Op.AND, a0, b_nonneg, dtype=dt.bool_)
    db = mul(g, _where(limit0, _c(0.0, g), mul(n, gr.elementwise(Op.LOG, a))))
    return da, db


def _cast_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    src = n.srcs[0]
    return (_as(g, src.dtype),) if src.dtype.is_float else (None,)


def _expand_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    return (_sum_to(g, n.srcs[0].shape),)


def _pad_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    widths = n.arg[0]
    return (gr.shrink(g, tuple((b, b + s) for (b, _), s in zip(widths, n.srcs[0].shape))),)


def _shrink_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    return (gr.pad(g, tuple((lo, s - hi) for (lo, hi), s in zip(n.arg, n.srcs[0].shape))),)


def _only_unit_dims_differ(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return [s for s in a if s != 1] == [s for s in b if s != 1]


def _permute_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    inv = tuple(sorted(range(len(n.arg)), key=lambda i: n.arg[i]))
    out_shape = tuple(g.shape[i] for i in inv)
    red = g.srcs[0] if g.op is Op.RESHAPE and _only_unit_dims_differ(g.shape, g.srcs[0].shape) else g
    if red.op not in REDUCE:
        return (gr.permute(g, inv),)
    # g is a reduction (seen through a reshape that only adds or drops size-1 dims, as the
    # gradient of a broadcast is): permute the reduction's input instead, so its kernel writes
    # the gradient in the final layout; a permuted view of a reduction result would cost a copy
    # kernel (e.g. the weight gradient of x @ w). Size-1 dims stay where they are.
    red_dims = [i for i, s in enumerate(red.shape) if s != 1]
    red_dim_of = dict(zip([i for i, s in enumerate(g.shape) if s != 1], red_dims))
    order = list(range(len(red.shape)))
    for slot, d in zip(red_dims, [red_dim_of[i] for i in inv if g.shape[i] != 1]):
        order[slot] = d
    axes = tuple(i for i, d in enumerate(order) if d in red.arg)
    return (gr.reshape(gr.reduce(red.op, gr.permute(red.srcs[0], tuple(order)), axes), out_shape),)


def _matmul_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    # plain products: the pack_matmul pass packs their operands at realize, like the forward's
    a, b = n.srcs
    nd = len(a.shape)
    t = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    return (gr.matmul(g, gr.permute(b, t)), gr.matmul(gr.permute(a, t), g))


def _conv2d_input_grad(g: Node, n: Node) -> Node | None:
    """dL/dx of a direct CONV2D as a direct convolution itself (a transposed convolution):
    g dilated by the stride (zeros between its rows and columns), convolved with the weights
    flipped in space and with in/out channels swapped per group, padded by d(k-1) - p (and by
    the rows floor mode dropped at the end). None where that padding
    would be negative (p > d(k-1)): the windows formulation handles those. The col2im of the
    windows formulation was a chain of pad/reshape views summed in two reduce kernels with
    huge index expressions: 38 ms a launch for the digits CNN's conv2 (64x16x8x8 input) against
    ~1 ms for this kernel (LAZYGRAD_DEBUG=2, machine shared)."""
    x, w = n.srcs
    arg = n.arg
    if x.dtype.name not in ("float32", "float64"):
        return None
    nb, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    groups = arg.groups
    (sh, sw), (ph, pw), (dh, dw) = arg.stride, arg.padding, arg.dilation
    qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    if qh < 0 or qw < 0:
        return None
    _, _, oh, ow = n.shape
    if oh == 0 or ow == 0 or nb == 0:
        return None
    gd = g
    if sh > 1 or sw > 1:  # zeros between rows/columns: (.., oh, 1, ow, 1) padded to (sh, sw)
        gd = gr.reshape(gd, (nb, o, oh, 1, ow, 1))
        gd = gr.pad(gd, ((0, 0), (0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1)))
        gd = gr.reshape(gd, (nb, o, oh * sh, ow * sw))
        gd = gr.shrink(gd, ((0, nb), (0, o), (0, (oh - 1) * sh + 1), (0, (ow - 1) * sw + 1)))
    # the input rows past the last window's start (floor mode left them out of the output)
    # still take taps of it: g gets that many more zero rows at the end, the conv's padding
    # stays symmetric
    eh = h - ((oh - 1) * sh + 1 + 2 * qh - dh * (kh - 1))
    ew = wd - ((ow - 1) * sw + 1 + 2 * qw - dw * (kw - 1))
    assert 0 <= eh < sh and 0 <= ew < sw, (eh, ew, x.shape, n.shape, arg)
    gd = gr.pad(gd, ((0, 0), (0, 0), (0, eh), (0, ew)))
    og = o // groups
    wt = gr.reshape(w, (groups, og, cg, kh, kw))
    wt = gr.permute(wt, (0, 2, 1, 3, 4))                  # (groups, C/g, O/g, kh, kw)
    wt = gr.flip(gr.reshape(wt, (c, og, kh, kw)), (2, 3))
    dx = gr.conv2d(gd, wt, gr.ConvArg((1, 1), (qh, qw), (dh, dw), groups))
    assert dx.shape == x.shape, (dx.shape, x.shape)
    return dx


def _conv2d_rule(g: Node, n: Node, needed: tuple[bool, ...] = (True, True)) -> tuple[Node | None, ...]:
    # The input gradient is a transposed direct convolution where its geometry allows. The
    # rest: the direct kernel's values are those of the windows + matmul formulation, so
    # differentiate that (its gradients are matmuls and col2im views, and differentiable
    # again), only for the operands whose gradient is wanted (the col2im of dx is most of it).
    # the windows start with a reshape of each operand, and a reshape of a reshape is built on
    # the reshape's source: differentiate with respect to that node, reshape the result back
    bases = [s.srcs[0] if s.op is Op.RESHAPE else s for s in n.srcs]
    fast = None
    if needed[0] and bases[0] is not bases[1] and settings().conv != "im2col":
        fast = _conv2d_input_grad(g, n)
    want = (needed[0] and fast is None, needed[1])
    found: dict[int, Node | None] = {}
    if any(want):
        y = conv2d_im2col(*n.srcs, n.arg)
        wanted = [b for b, w in zip(bases, want) if w]
        # a walk that stops at x's base too: the weight gradient never follows a path through x
        stop = [bases[0]] if fast is not None else []
        found = dict(zip((b.uid for b in wanted), grad(y, wanted, g, below_wrt=False, also_stop=stop)))
    out: list[Node | None] = []
    for i, (s, b, w) in enumerate(zip(n.srcs, bases, want)):
        if i == 0 and fast is not None:
            out.append(fast)
            continue
        # one base under both operands (conv2d(x, x)): its gradient is the total of both, given once
        d = found.pop(b.uid, None) if w else None
        out.append(None if d is None else gr.reshape(d, s.shape))
    return tuple(out)


def _sort_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """Sorted values: the gradient goes back to where each value came from, the scatter of g
    to the sort's indices (a one-hot select and sum over the row: grad_x[i] = sum_r
    [idx[r] == i] g[r]). The indices carry no gradient."""
    if n.arg.indices:
        return (None,)
    (x,) = n.srcs
    idx = gr.sort(x, n.arg._replace(indices=True), dt.default_int)
    m = x.shape[-1]
    lead = x.shape[:-1]
    sq = lead + (m, m)                                   # (..., r, i)
    at = gr.expand(gr.reshape(idx, lead + (m, 1)), sq)
    ar = gr.expand(gr.reshape(gr.iota(m, dt.default_int), (1,) * len(lead) + (1, m)), sq)
    hot = gr.elementwise(Op.CMPEQ, at, ar, dtype=dt.bool_)
    picked = _where(hot, gr.expand(gr.reshape(g, lead + (m, 1)), sq), gr.const(0.0, g.dtype, sq))
    return (gr.reshape(gr.reduce(Op.SUM, picked, (len(lead),)), x.shape),)


# The one-hot scatter-add costs (output elements) x (positions along the axis) selects, and past
# a size the scheduler stores its square: an Embedding(10000, 128) over 2,048 tokens needed a 10 GB
# buffer. Past SCATTER_FROM selects, an index shared along the other dims is merge sorted once
# with its positions and a SEGMENT_SUM kernel sums each output position's segment in position
# order: O(J log J) to sort, one read of g per gathered element. Below it the one-hot sum fuses
# with its neighbours, fewer kernels.
SCATTER_FROM = 2**22


def _gather_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """Gathered values: the scatter-add of g to the positions read (grad_x[.., p, ..] =
    sum_j [idx[.., j, ..] == p] g[.., j, ..]: a one-hot select and sum over the gathered axis,
    or the sorted scatter-add past SCATTER_FROM), summed over the dims x was broadcast along and
    padded where x is longer than the output."""
    x, idx = n.srcs
    ax, out = n.arg.axis, n.arg.full_shape(n.shape)
    g = gr.reshape(g, out)
    m = x.shape[ax]
    neg = gr.elementwise(Op.CMPLT, idx, gr.const(0, idx.dtype, idx.shape), dtype=dt.bool_)
    idx = _where(neg, gr.elementwise(Op.ADD, idx, gr.const(m, idx.dtype, idx.shape)), idx)
    r = _sorted_scatter(g, idx, x.shape, ax, m) if prod(out) * m > SCATTER_FROM else None
    if r is None:
        sq = out[:ax + 1] + (m,) + out[ax + 1:]              # (.., j, p, ..)
        lift = out[:ax + 1] + (1,) + out[ax + 1:]
        at = gr.expand(gr.reshape(gr.expand(idx, out), lift), sq)
        ar = gr.expand(gr.reshape(gr.iota(m, idx.dtype), (1,) * (ax + 1) + (m,) + (1,) * (len(out) - ax - 1)), sq)
        hot = gr.elementwise(Op.CMPEQ, at, ar, dtype=dt.bool_)
        picked = _where(hot, gr.expand(gr.reshape(g, lift), sq), gr.const(0.0, g.dtype, sq))
        r = gr.reduce(Op.SUM, picked, (ax,))
        r = gr.reshape(r, out[:ax] + (m,) + out[ax + 1:])
    r = _sum_to(r, tuple(1 if k != ax and s == 1 else r.shape[k] for k, s in enumerate(x.shape)))
    widths = tuple((0, s - t) for s, t in zip(x.shape, r.shape))
    return gr.pad(r, widths), None


def _sorted_scatter(g: Node, idx: Node, x_shape: tuple[int, ...], ax: int, m: int) -> Node | None:
    """The gather's gradient through the sorted scatter-add, or None where it does not apply.
    The index varies along dims V (the gathered axis among them, or the axis has size 1 in the
    output); V's positions j (J of them) are the segments' elements, g moved to (J, rest..).
    Along a dim of V where x is not broadcast (a batch dim: the rows of a sort, take_along_dim)
    the segment is per batch coordinate: segment id = batch * m + index. The keys id << 32 | j are
    merge sorted, SEGMENT_SUM gives (batch * m, rest..), which goes back to g's layout with m
    along the axis and 1 along V's broadcast dims. An index outside [0, m) gets the id past the
    last, in no segment, so its gradient is dropped as the gather's read there is zero."""
    nd, out = len(g.shape), g.shape
    vary = [k for k in range(nd) if idx.shape[k] != 1]
    if not vary or (ax not in vary and out[ax] != 1):
        return None
    batch = [k for k in vary if k != ax and x_shape[k] != 1]
    bcast = [k for k in vary if k != ax and x_shape[k] == 1]
    rest = [k for k in range(nd) if k not in vary and k != ax]
    grid = tuple(out[k] for k in vary)
    j, nb = prod(grid), prod(tuple(out[k] for k in batch))
    if nb * m >= 2**31:
        return None
    moved = gr.permute(g, tuple(vary + rest + ([] if ax in vary else [ax])))
    moved = gr.reshape(moved, (j,) + tuple(out[k] for k in rest))
    i64 = _as(gr.reshape(idx, (j,)), dt.int64)
    c = lambda v: gr.const(v, dt.int64, (j,))  # noqa: E731
    bad = gr.elementwise(Op.OR, gr.elementwise(Op.CMPLT, i64, c(0), dtype=dt.bool_),
                         gr.elementwise(Op.CMPLT, c(m - 1), i64, dtype=dt.bool_), dtype=dt.bool_)
    seg = i64
    stride = m
    for k in reversed(batch):       # the batch coordinate of each position, row-major over batch
        at = gr.reshape(gr.iota(out[k], dt.int64), tuple(out[k] if d == k else 1 for d in vary))
        seg = add(seg, mul(gr.reshape(gr.expand(at, grid), (j,)), c(stride)))
        stride *= out[k]
    seg = _where(bad, c(nb * m), seg)
    keys = add(mul(seg, c(2**32)), gr.iota(j, dt.int64))
    s = gr.segment_sum(moved, gr.merge_sort_keys(keys), seg, 0, nb * m)       # (batch * m, rest..)
    dims = batch + [ax] + rest + bcast
    s = gr.reshape(s, tuple(out[k] for k in batch) + (m,) + tuple(out[k] for k in rest) + (1,) * len(bcast))
    return gr.permute(s, tuple(dims.index(d) for d in range(nd)))


def _segment_sum_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """A scatter-add is linear in g: its gradient is the gather of the incoming gradient at each
    position's index (one past the end reads 0)."""
    src, _, idx = n.srcs
    ax = n.arg.axis
    shape = tuple(s if k == ax else 1 for k, s in enumerate(src.shape))
    return gr.gather(g, gr.reshape(idx, shape), ax, src.shape), None, None


def _planes_of(g: Node) -> dict[int, Node]:
    """The nonzero planes of a cell's gradient g (PLANES, N, H), each (N, H). The gradient
    autodiff builds is a sum of pads of the planes nn reads (h and c: the gate planes are
    zero): read off those pads, so the rule computes no zeros; any other g is sliced."""
    terms = gr.terms_of(g, Op.ADD)
    _, N, H = g.shape
    out: dict[int, Node] = {}
    for t in terms:
        widths = t.arg[0] if t.op is Op.PAD and t.realized is None and t.arg[1] == 0.0 else None
        if widths is None or widths[1:] != ((0, 0), (0, 0)):
            return {p: lstm.plane(g, p) for p in range(lstm.PLANES)}
        src = t.srcs[0]
        for k in range(src.shape[0]):
            p = widths[0][0] + k
            v = gr.reshape(gr.shrink(src, ((k, k + 1), (0, N), (0, H))), (N, H))
            out[p] = v if p not in out else add(out[p], v)
    return out


def _lstm_cell_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    """The LSTM step's gradient from its saved gate activations (ir/lstm.py): one elementwise
    value for the four gates' pre-activation gradients, then dh = dgates w_hh and the step's
    w_hh contribution dgatesᵀ h, matmuls like the unfused graph's."""
    srcs = n.srcs
    xw, h, c, w = (x if x.dtype is n.dtype else _as(x, n.dtype) for x in srcs)  # mixed dtypes: declined
    planes = _planes_of(g)
    i, f, gg, o = (lstm.plane(n, p) for p in lstm.GATE_PLANES)
    c2 = lstm.plane(n, lstm.C_PLANE)
    one = _c(1.0, c2)
    tc = gr.elementwise(Op.TANH, c2)
    gh, gc = planes.get(lstm.H_PLANE), planes.get(lstm.C_PLANE)
    dc = None if gh is None else mul(mul(gh, o), sub(one, mul(tc, tc)))
    dc = gc if dc is None else dc if gc is None else add(gc, dc)

    def total(part: Node | None, plane_: int) -> Node | None:
        own = planes.get(plane_)
        return own if part is None else part if own is None else add(part, own)
    d_act = [total(None if dc is None else mul(dc, gg), lstm.GATE_PLANES[0]),
             total(None if dc is None else mul(dc, c), lstm.GATE_PLANES[1]),
             total(None if dc is None else mul(dc, i), lstm.GATE_PLANES[2]),
             total(None if gh is None else mul(gh, tc), lstm.GATE_PLANES[3])]
    slopes = [mul(i, sub(one, i)), mul(f, sub(one, f)), sub(one, mul(gg, gg)), mul(o, sub(one, o))]
    N, H = h.shape
    dpre: Node | None = None
    for k, (da, sl) in enumerate(zip(d_act, slopes)):
        if da is None:
            continue
        v = gr.pad(mul(da, sl), ((0, 0), (k * H, (3 - k) * H)))
        dpre = v if dpre is None else add(dpre, v)
    if dpre is None:
        return (None, None, None, None)
    dc_prev = None if dc is None else mul(dc, f)
    contribs = (dpre, gr.matmul(dpre, w), dc_prev, gr.matmul(gr.permute(dpre, (1, 0)), h))
    return tuple(x if x is None or x.dtype is s.dtype else _as(x, s.dtype) for x, s in zip(contribs, srcs))


# rules whose graphs are costly to build for sources no gradient is asked of: they are told
# which sources are wanted (vjp_rules holds them too, asked for every source)
selective_rules: dict[Op, Callable[[Node, Node, tuple[bool, ...]], tuple[Node | None, ...]]] = {
    Op.CONV2D: _conv2d_rule,
}


def _atan2_rule(g: Node, n: Node) -> tuple[Node | None, ...]:
    # d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)
    y, x = n.srcs
    r2 = add(mul(x, x), mul(y, y))
    return (div(mul(g, x), r2), neg(div(mul(g, y), r2)))


vjp_rules: dict[Op, Rule] = {
    Op.ADD: lambda g, n: (g, g),
    Op.SUB: lambda g, n: (g, neg(g)),
    Op.MUL: lambda g, n: (mul(g, n.srcs[1]), mul(g, n.srcs[0])),
    Op.DIV: lambda g, n: (div(g, n.srcs[1]), neg(div(mul(g, n), n.srcs[1]))),
    Op.NEG: lambda g, n: (neg(g),),
    Op.EXP: lambda g, n: (mul(g, n),),
    Op.LOG: lambda g, n: (div(g, n.srcs[0]),),
    Op.SQRT: lambda g, n: (div(g, mul(n, _c(2.0, n))),),
    Op.RECIP: lambda g, n: (neg(mul(g, mul(n, n))),),
    Op.SIN: lambda g, n: (mul(g, gr.elementwise(Op.COS, n.srcs[0])),),
    Op.COS: lambda g, n: (neg(mul(g, gr.elementwise(Op.SIN, n.srcs[0]))),),
    Op.TANH: lambda g, n: (mul(g, sub(_c(1.0, n), mul(n, n))),),
    # d erf = 2/sqrt(pi) exp(-x^2); d asin = 1/sqrt(1-x^2) = -d acos; d atan = 1/(1+x^2)
    Op.ERF: lambda g, n: (mul(g, mul(_c(2 / math.sqrt(math.pi), n),
                                     gr.elementwise(Op.EXP, neg(mul(n.srcs[0], n.srcs[0]))))),),
    Op.ERFC: lambda g, n: (neg(mul(g, mul(_c(2 / math.sqrt(math.pi), n),
                                          gr.elementwise(Op.EXP, neg(mul(n.srcs[0], n.srcs[0])))))),),
    Op.ASIN: lambda g, n: (div(g, gr.elementwise(Op.SQRT, sub(_c(1.0, n), mul(n.srcs[0], n.srcs[0])))),),
    Op.ACOS: lambda g, n: (neg(div(g, gr.elementwise(Op.SQRT, sub(_c(1.0, n), mul(n.srcs[0], n.srcs[0]))))),),
    Op.ATAN: lambda g, n: (div(g, add(_c(1.0, n), mul(n.srcs[0], n.srcs[0]))),),
    Op.ATAN2: _atan2_rule,
    Op.MAX: _max_rule,
    Op.MOD: _mod_rule,  # reached by float fmod only (no gradient flows into integer nodes)
    Op.POW: _pow_rule,
    Op.WHERE: lambda g, n: (None, _where(n.srcs[0], g, _c(0.0, g)), _where(n.srcs[0], _c(0.0, g), g)),
    Op.CAST: _cast_rule,
    Op.SUM: lambda g, n: (gr.expand(g, n.srcs[0].shape),),
    Op.RMAX: _rmax_rule,
    Op.RPROD: _rprod_rule,
    Op.RESHAPE: lambda g, n: (gr.reshape(g, n.srcs[0].shape),),
    Op.PERMUTE: _permute_rule,
    Op.EXPAND: _expand_rule,
    Op.PAD: _pad_rule,
    Op.SHRINK: _shrink_rule,
    Op.FLIP: lambda g, n: (gr.flip(g, n.arg),),
    Op.CONTIGUOUS: lambda g, n: (g,),
    Op.MATMUL: _matmul_rule,
    Op.CONV2D: _conv2d_rule,
    Op.SORT: _sort_rule,
    Op.GATHER: _gather_rule,
    Op.SEGMENT_SUM: _segment_sum_rule,
    Op.LSTM_CELL: _lstm_cell_rule,
}
# ops through which no gradient flows: comparisons, logic, integer math, sources, detach; and
# ATTENTION, which only the fuse_attention pass and the attention rule below build, after
# autodiff (a gradient of a gradient goes through the plain graph the user built)
NO_GRAD_OPS = {Op.CMPLT, Op.CMPEQ, Op.NOT, Op.AND, Op.OR, Op.XOR, Op.SHL, Op.SHR, Op.IDIV, Op.BITCAST, Op.BUFFER, Op.CONST,
               Op.RAND, Op.DETACH, Op.ATTENTION}
assert not (NO_GRAD_OPS & set(vjp_rules)) and NO_GRAD_OPS | set(vjp_rules) == set(Op), \
    "every op needs a gradient rule or an entry in NO_GRAD_OPS"


def _attention_rule(g: Node, n: Node, m: AttentionMatch, wanted: Callable[[Node], bool]) -> list[tuple[Node, Node]]:
    """The gradient of a recognised attention (ir.attention.match) as FlashAttention-2's
    backward: Δ = rowsum(dO * O) (a plain row reduction), then dQ in one kernel and dK, dV in
    another, both recomputing the scores from the forward's per-row logsumexp (an LSE part the
    forward kernel writes next to O). (operand, contribution) pairs for m's operands; the
    float mask's gradient (dS, an L×S value) is plain graph, built here and computed only if
    the mask needs it."""
    srcs = m.sources()
    o = attention_node(m)
    g, n = gr.reshape(g, o.shape), gr.reshape(n, o.shape)   # n may be the 2-D product of a folded batch
    lse = attention_node(m, Part.LSE)
    delta = gr.reduce(Op.SUM, mul(g, n), (len(n.shape) - 1,))
    bwd = srcs + (g, lse, delta)
    dq, dk, dv = (part_node(bwd, m.arg.of(p)) for p in (Part.DQ, Part.DK, Part.DV))
    kd = len(m.kt.shape)
    swap = tuple(range(kd - 2)) + (kd - 1, kd - 2)
    # kᵀ is usually k.transpose(-2, -1): dK goes to k itself, not through two permutes (a
    # permuted view of the kernel's output would cost a copy when dK is realized)
    kt = m.kt
    direct = kt.op is Op.PERMUTE and kt.arg == swap and wanted(kt.srcs[0])
    k_side = (kt.srcs[0], dk) if direct else (kt, gr.permute(dk, swap))
    out = [(m.q, dq), k_side, (m.v, dv)]
    if m.add is not None:
        out.append((m.add, _attention_score_grad(m, srcs, g, lse, delta)))
    return out


def _to_shape(c: Node, shape: tuple[int, ...]) -> Node:
    """A contribution at the attention's batch dims summed over those its operand broadcast
    along (an operand may have fewer dims: a 2-D key shared by every batch entry)."""
    if c.shape == shape:
        return c
    padded = (1,) * (len(c.shape) - len(shape)) + shape
    return gr.reshape(_sum_to(c, padded), shape)


def _attention_score_grad(m: AttentionMatch, srcs: tuple[Node, ...], g: Node, lse: Node, delta: Node) -> Node:
    """dS = P * (dO vᵀ - Δ), P = exp(S - lse) (0 where a safe row is fully masked): the
    gradient of the scores, and so of a float mask added to them."""
    q, k, v = srcs[:3]
    nd = len(g.shape)
    swap = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    full = g.shape[:-1] + (k.shape[-2],)
    s = mul(gr.matmul(q, gr.permute(k, swap)), gr.const(m.arg.scale, q.dtype, full))
    s = add(s, gr.expand(m.add, full)) if m.add.shape != full else add(s, m.add)
    keep = m.keep
    if m.arg.causal:
        tri = gr.expand(gr.reshape(causal_keep(full[-2], full[-1]), (1,) * (nd - 2) + full[-2:]), full)
        keep = tri if keep is None else gr.elementwise(Op.AND, gr.expand(keep, full), tri, dtype=dt.bool_)
    lse_f = gr.expand(lse, full)
    p = gr.elementwise(Op.EXP, sub(s, lse_f))
    ninf = gr.const(float("-inf"), q.dtype, full)
    zero = gr.const(0.0, q.dtype, full)
    if keep is not None:
        p = _where(gr.expand(keep, full) if keep.shape != full else keep, p, zero)
    if m.arg.safe:
        p = _where(gr.elementwise(Op.CMPEQ, lse_f, ninf, dtype=dt.bool_), zero, p)
    dp = gr.matmul(g, gr.permute(v, swap))
    return mul(p, sub(dp, gr.expand(delta, full)))


def grad_walk(roots: list[Node], into_roots: bool = False, stop_uids: frozenset[int] = frozenset()) -> list[Node]:
    """Nodes reachable from `roots`, sources first (iterative), without looking below ops no
    gradient flows through: below a detach lies only history (a parameter updated under
    no_grad is a detach of its update, whose sources are the whole previous training step),
    so this walk costs the size of one step, not of every step so far. `into_roots`: do look
    below roots that are such ops (to print a detached `.grad`). Nor below `stop_uids`."""
    root_uids = {r.uid for r in roots} if into_roots else set()
    return toposort(roots, stop_at_realized=False,
                    stop=lambda n: (n.op in NO_GRAD_OPS and n.uid not in root_uids) or n.uid in stop_uids)


def grad(root: Node, wrt: list[Node], seed: Node | None = None, below_wrt: bool = True,
         also_stop: list[Node] = ()) -> list[Node | None]:  # type: ignore[assignment]
    """d(root)/d(each of wrt), as nodes; None where root does not depend on it. `below_wrt=False`:
    only paths that do not pass through one wrt node (or one of `also_stop`) to reach another
    are followed, and the walk does not visit the graph below them (a rule differentiating a
    local subgraph)."""
    wanted = {w.uid for w in wrt}
    stops = frozenset(wanted | {s.uid for s in also_stop})
    order = grad_walk([root], stop_uids=frozenset() if below_wrt else stops)
    # nodes on some path from a wanted node to root
    relevant: set[int] = set()
    for n in order:
        if n.uid in wanted or (n.op not in NO_GRAD_OPS and any(s.uid in relevant for s in n.srcs)):
            relevant.add(n.uid)
    if seed is None:
        with with_origin(f"grad seed of {root.op.value} #{root.uid} @ {root.origin}", "grad_seed"):
            seed = gr.const(1.0, root.dtype, root.shape)
    grads: dict[int, Node] = {root.uid: seed}
    for n in reversed(order):
        g = grads.get(n.uid)
        if g is None or n.uid not in relevant or n.op in NO_GRAD_OPS:
            continue
        with with_origin(f"grad of {n.op.value} #{n.uid} @ {n.origin}", _grad_label(n)):
            fused = attention_match(n) if n.op is Op.MATMUL and settings().attention and settings().fuse else None
            if isinstance(fused, AttentionMatch):
                # one attention node, not the T×T softmax: its contributions go to the operands
                # of the whole pattern (the softmax still gets those of its other readers)
                for s, c in _attention_rule(g, n, fused, lambda x: x.uid in relevant):
                    if s.uid in relevant:
                        c = _to_shape(c, s.shape)
                        prev = grads.get(s.uid)
                        grads[s.uid] = c if prev is None else add(prev, c)
                continue
            selective = selective_rules.get(n.op)
            contribs = (selective(g, n, tuple(s.uid in relevant for s in n.srcs)) if selective is not None
                        else vjp_rules[n.op](g, n))
            for s, c in zip(n.srcs, contribs):
                if c is None or s.uid not in relevant:
                    continue
                if c.shape != s.shape:
                    c = gr.reshape(c, s.shape) if c.numel == s.numel else _sum_to(c, s.shape)
                prev = grads.get(s.uid)
                grads[s.uid] = c if prev is None else add(prev, c)
    return [grads.get(w.uid) for w in wrt]








def _describe(n: Node) -> str:
    if n.op is Op.BUFFER:
        return "buffer"
    return n.op.value if n.arg is None else f"{n.op.value} {n.arg}"


def format_grad_graph(nodes: list[Node]) -> str:
    """One line per node of the (gradient) graph, sources first: id, op (with its arg), shape,
    dtype, sources, and where it came from (the user's source line for forward nodes,
    "grad of OP #id @ file:line" for the nodes a VJP rule made for forward node #id).
    Stops below detach and other no-gradient ops (except at `nodes` themselves)."""
    lines = []
    for n in grad_walk(nodes, into_roots=True):
        srcs = ",".join(f"#{s.uid}" for s in n.srcs)
        lines.append(f"#{n.uid:<6} {_describe(n):<24} {str(n.shape):<14} {n.dtype.name:<8} ({srcs})  <- {n.origin}")
    return "\n".join(lines)
