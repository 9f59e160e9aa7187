"""The scheduler: cut the lazy DAG into kernels, recording why every cut was made.

Rules (in `decide_boundaries`, the realize rules in one place):
- nodes already realized are kernel inputs, never recomputed;
- the tensors asked for are kernel outputs ("user realize");
- a reduction (or matmul, or conv2d) is the core of a kernel; its elementwise consumers fuse after it as
  long as each has a single consumer and the same output elements; where that chain stops,
  the value is stored, with the reason it stopped (broadcast, several consumers, ...);
- elementwise and movement nodes are never stored unless one of those rules asks: they are
  recomputed inside every kernel that reads them (views become index expressions);
- a conv2d reads its operands straight from buffers: an operand that is not one (through
  reshapes) is stored first ("conv2d operand ...");
- an LSTM_CELL node (one nn.LSTM step, passes/fuse_lstm.py) is a kernel of its own reading its
  sources through strided views like an attention node;
- an ATTENTION node (passes/fuse_attention.py, the attention gradient) is a kernel of its own
  with the other parts of its family (O with its logsumexp, dK with dV), reading each source
  through one strided view of a buffer or a constant (anything else is stored first), and
  writing an output that is a flat view of it (a `.grad` detach) directly;
- a kernel with too many buffer arguments or too costly to build is split ("too many kernel
  arguments", "kernel too large": scheduling/cost.py);
- LAZYGRAD_FUSE=0 stores every primitive ("fusion disabled").

Kernels are frozen records: what the engine learns rendering and building one (its name,
source, launch sizes, a narrower vector width) goes into a record of its own
(engine.scheduled.ScheduledKernel), never back into the schedule.

Public names: Kernel, schedule, decide_boundaries, fusion_enabled, flat_base, attention_core (and, from their
own modules, KernelKind and Cut / CutReason).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from lazygrad.config import settings
from lazygrad.ir.graph import Node, toposort, user_line
from lazygrad.ir.movement import row_broadcast_read, row_reads_from
from lazygrad.ir.attention import KERNEL_OF, Decline, strided_view
from lazygrad.ir.lstm import CellDecline
from lazygrad.ir.ops import ATTENTIONS, CORES, ELEMENTWISE, GATHERS, LSTMS, MOVEMENT, OWN_KERNEL, PRIMITIVES, REDUCE, SCATTERS, SORTS, Op
from lazygrad.ir.view import prod
from lazygrad.scheduling.cost import MAX_KERNEL_COST, SHARED_VALUE_COST, ConeCounter, statement_cost
from lazygrad.scheduling.cuts import Cut, CutReason
from lazygrad.scheduling.kinds import KernelKind

MAX_BUFFERS_PER_KERNEL = 48


def fusion_enabled() -> bool:
    return settings().fuse


@dataclass(frozen=True)
class Kernel:
    """One kernel launch as scheduled: the nodes it computes (`ops`), what it reads and
    writes, and why its output is stored instead of fused into its consumer (`reason`).
    Frozen: no stage after the scheduler writes into it (the lists are never mutated either)."""

    output: Node
    kind: KernelKind
    inputs: list[Node]             # nodes read from buffers (realized or earlier kernels)
    ops: list[Node]                # the nodes fused into this kernel, in dependency order
    reason: Cut                    # why `output` is a kernel boundary
    core: Node | None = None       # the reduction / matmul node, when there is one
    reduces: list[Node] = field(default_factory=list)  # every reduction fused here (row-wise: several)
    extra_outputs: list[Node] = field(default_factory=list)  # multi-output kernels
    extra_reasons: list[Cut] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    edge_reasons: dict[int, Cut] = field(default_factory=dict)  # input uid -> why not fused

    @property
    def outputs(self) -> list[Node]:
        return [self.output, *self.extra_outputs]

    @property
    def reasons(self) -> list[Cut]:
        return [self.reason, *self.extra_reasons]

    @property
    def op_names(self) -> list[str]:
        """The primitives computed (views, constants and buffers left out), in order."""
        return [n.op.value for n in self.ops if n.op not in MOVEMENT and n.op not in (Op.BUFFER, Op.CONST)]

    def user_ops(self) -> list[tuple[str, str]]:
        """The user-level ops fused here, (op, source line) once each in order of first
        appearance: `relu @ model.py:12`, where `op_names` lists its compare-and-select."""
        seen: dict[tuple[str, str], None] = {}
        for n in self.ops:
            if n.op in MOVEMENT or n.op in (Op.BUFFER, Op.CONST):
                continue
            seen.setdefault((n.label or n.op.value, user_line(n.origin)), None)
        return list(seen)

    def user_summary(self) -> str:
        """`relu, max_pool2d @ model.py:12; linear @ model.py:14`: the user-level ops by line."""
        by_line: dict[str, list[str]] = {}
        for op, origin in self.user_ops():
            by_line.setdefault(origin, []).append(op)
        return "; ".join(f"{', '.join(ops)} @ {line}" for line, ops in by_line.items()) or "copy"

    def ops_by_origin(self) -> list[tuple[str, list[str]]]:
        """Every fused op (views and constants included), grouped by the user source line
        that created it, in order of first appearance: what a kernel's comments cite."""
        groups: dict[str, list[str]] = {}
        for n in self.ops:
            if n.op is Op.BUFFER:
                continue
            label = f"const {n.arg!r}" if n.op is Op.CONST else n.op.value
            groups.setdefault(n.origin, []).append(label)
        return list(groups.items())

    def __repr__(self) -> str:
        return kernel_repr(self, self.kind, str(self.reason))


def kernel_repr(k: Kernel, title: str, reason: str) -> str:
    """`Kernel(<title>: ops -> output from [inputs]; reason)`: a scheduled kernel's title is
    its kind, a rendered one's its name (engine.scheduled)."""
    names = k.op_names
    ops = "+".join(names[:8]) + (f"+...({len(names)} ops)" if len(names) > 8 else "") or "copy"
    ins = ", ".join(_shape_str(i.shape) for i in k.inputs)
    out = k.output
    return f"Kernel({title}: {ops} -> {_shape_str(out.shape)} {out.dtype.name} from [{ins}]; {reason})"


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _consumers(nodes: list[Node]) -> dict[int, list[Node]]:
    cons: dict[int, list[Node]] = defaultdict(list)
    for n in nodes:
        if n.realized is not None:
            continue
        for s in n.srcs:
            cons[s.uid].append(n)
    return cons


def _is_flat_reshape(n: Node) -> bool:
    """A reshape (or detach, an identity view) keeps every element at the same flat position,
    so a kernel computing the source's element i also computes the reshape's element i."""
    return n.op is Op.RESHAPE or n.op is Op.DETACH


def decide_boundaries(outputs: list[Node], nodes: list[Node]) -> dict[int, Cut]:
    """uid → cut, for every node whose value is stored in a buffer by some kernel."""
    fuse = fusion_enabled()
    out_uids = {o.uid for o in outputs}
    stored: dict[int, Cut] = {}
    for o in outputs:
        if o.realized is None:
            stored[o.uid] = Cut(CutReason.USER_REALIZE)
    cons = _consumers(nodes)
    if not fuse:
        _store_conv_operands(nodes, stored)
        _store_sort_inputs(nodes, stored)
        for n in nodes:
            if n.realized is None and n.op not in (Op.BUFFER, Op.CONST) and n.op not in MOVEMENT:
                stored.setdefault(n.uid, Cut(CutReason.FUSION_DISABLED))
        # views still fuse into their reader: a copy per view would only add kernels
        return stored
    claimed: set[int] = set()  # nodes already part of some reduction's epilogue
    for n in nodes:
        if n.realized is not None:
            continue
        if n.op is Op.CONTIGUOUS:  # arg: why the library copies (none: the user asked)
            stored.setdefault(n.uid, Cut(CutReason.LIBRARY_COPY, (n.arg,)) if n.arg else Cut(CutReason.CONTIGUOUS))
        if n.op in OWN_KERNEL:
            stored.setdefault(n.uid, _own_kernel_cut(n))
        if n.op not in REDUCE and n.op not in CORES:
            continue
        # walk the single-consumer chain of elementwise ops after the reduction
        cur = n
        while True:
            if cur.uid in out_uids:
                break
            users = cons.get(cur.uid, [])
            if len({u.uid for u in users}) != 1:
                region = _reconverging_epilogue(cur, cons, out_uids, claimed) if users else None
                if region is None:
                    stored.setdefault(cur.uid, Cut(CutReason.SEVERAL_CONSUMERS, (len(users),)) if users
                                      else Cut(CutReason.UNUSED))
                    break
                members, cur = region
                claimed.update(members)
                continue
            nxt = users[0]
            if nxt.uid in claimed:
                stored.setdefault(cur.uid, Cut(CutReason.CONSUMER_CLAIMED))
                break
            if nxt.op in ELEMENTWISE or _is_flat_reshape(nxt):
                claimed.add(nxt.uid)
                cur = nxt
                continue
            if nxt.op is Op.EXPAND:
                why = Cut(CutReason.REDUCE_FEEDS_BROADCAST)
            elif nxt.op in REDUCE or nxt.op in CORES:
                why = Cut(CutReason.REDUCE_FEEDS_REDUCE, (nxt.op.value,))
            elif nxt.op in MOVEMENT:
                why = Cut(CutReason.VIEW_OF_REDUCTION, (nxt.op.value,))
            else:
                why = Cut(CutReason.FEEDS_OP, (nxt.op.value,))
            stored.setdefault(cur.uid, why)
            break
    _alias_attention_outputs(outputs, stored, cons)
    _store_conv_operands(nodes, stored)  # after the epilogues: an operand may be stored already
    _store_sort_inputs(nodes, stored)
    _store_costly_prologues(nodes, stored)
    _split_large(nodes, stored)
    _store_shared(nodes, stored)
    return stored


def attention_core(n: Node) -> Node | None:
    """The ATTENTION node n is, or is a flat reshape or detach of (a `.grad` is a detach of
    its gradient): the attention kernel writes it in n's buffer directly."""
    b = n
    while _is_flat_reshape(b) and b.realized is None:
        b = b.srcs[0]
    return b if b.op in ATTENTIONS and b.realized is None else None


def _alias_attention_outputs(outputs: list[Node], stored: dict[int, Cut], cons: dict[int, list[Node]]) -> None:
    """An output that is a flat view of an attention result nothing else reads is written by
    the attention kernel itself (no copy of dQ into `.grad`)."""
    out_uids = {o.uid for o in outputs}
    for o in outputs:
        a = attention_core(o)
        if a is None or a is o or a.uid in out_uids:
            continue
        chain, b = [], o
        while b is not a:
            chain.append(b)
            b = b.srcs[0]
        if all(len(cons.get(x.uid, [])) == 1 for x in [a] + chain[1:]) and not any(x.uid in stored for x in chain[1:]):
            stored.pop(a.uid, None)


def _own_kernel_cut(n: Node) -> Cut:
    if n.op in ATTENTIONS:
        return Cut(CutReason.ATTENTION, (n.arg.part.value,))
    if n.op in LSTMS:
        return Cut(CutReason.LSTM_CELL)
    return Cut(CutReason.SORT if n.op in SORTS else CutReason.SCATTER if n.op in SCATTERS else CutReason.GATHER)


def _reconverging_epilogue(start: Node, cons: dict[int, list[Node]], out_uids: set[int],
                           claimed: set[int]) -> tuple[set[int], Node] | None:
    """The elementwise nodes after `start` when its several readers all flow back into one
    node (relu = where(x > 0, x, 0) reads x twice; x*x lists x twice): (their uids, that last
    node). None if some value escapes the region on the way (it must be stored)."""
    region: dict[int, Node] = {}
    stack = [start]
    while stack:
        n = stack.pop()
        for u in cons.get(n.uid, []):
            if u.uid not in region and u.uid not in claimed and (u.op in ELEMENTWISE or _is_flat_reshape(u)):
                region[u.uid] = u
                stack.append(u)
    leaky = [n for n in (start, *region.values())
             if n.uid in out_uids or not cons.get(n.uid) or any(u.uid not in region for u in cons[n.uid])]
    if len(leaky) != 1 or leaky[0] is start:
        return None
    return set(region), leaky[0]


def flat_base(x: Node, stop: Callable[[Node], bool] = lambda n: False) -> Node:
    """The node below x's run of reshapes (and detaches), or the first one of them where
    `stop` holds: x is its value in the same flat order."""
    while _is_flat_reshape(x) and x.realized is None and not stop(x):
        x = x.srcs[0]
    return x


def _store_sort_inputs(nodes: list[Node], stored: dict[int, Cut]) -> None:
    """The sort and gather kernels read their inputs from plain buffers, like the direct conv
    its operands (an input that is not one, through reshapes, is stored first)."""
    for n in nodes:
        if n.op not in OWN_KERNEL or n.realized is not None:
            continue
        what = n.op.value
        if n.op in ATTENTIONS or n.op in LSTMS:
            _store_strided(n, stored)
            continue
        _store_plain(n, [f"{what} input"] * len(n.srcs), f"the {what} kernel", stored)


def _store_strided(n: Node, stored: dict[int, Cut]) -> None:
    """The attention and LSTM cell kernels read each source through one strided view (permuted,
    broadcast, sliced) of a buffer or a constant: a source seen through anything else (a pad, a
    reshape of a transpose) is copied, a computed one stored."""
    what = n.op.value.replace("_", " ")
    label, kernel = f"{what} operand", f"the {what} kernel"
    for src in n.srcs:
        base, view = strided_view(src, lambda m: m.realized is not None or m.uid in stored)
        if view is None or (base.op in MOVEMENT and base.realized is None and base.uid not in stored):
            if src.uid not in stored:
                stored[src.uid] = Cut(CutReason.OPERAND_VIEW, (label, base.op.value))
        elif base.realized is None and base.op not in (Op.BUFFER, Op.CONST) and base.uid not in stored:
            stored[base.uid] = Cut(CutReason.OPERAND_COMPUTED, (label, base.op.value, kernel))


def _store_conv_operands(nodes: list[Node], stored: dict[int, Cut]) -> None:
    """The direct conv kernel indexes its operands as plain (N, C, H, W) / (O, C/g, kh, kw)
    arrays: an operand computed by a fused expression or seen through a view other than a
    reshape is stored first. (Stores already decided elsewhere are read in place.)"""
    for n in nodes:
        if n.op is Op.CONV2D and n.realized is None:
            _store_plain(n, ["conv2d input", "conv2d weight"], "the direct kernel", stored)


def _store_plain(n: Node, labels: list[str], kernel: str, stored: dict[int, Cut]) -> None:
    """Store each source of `n` that its kernel cannot read as a plain buffer: a view (other
    than reshapes) is copied, a computed value stored; `labels` name the sources in reasons."""
    for src, label in zip(n.srcs, labels):
        base = flat_base(src, lambda m: m.uid in stored)
        if base.realized is not None or base.op is Op.BUFFER or base.uid in stored:
            continue
        if base.op in MOVEMENT:
            stored.setdefault(src.uid, Cut(CutReason.OPERAND_VIEW, (label, base.op.value)))
        else:
            stored.setdefault(base.uid, Cut(CutReason.OPERAND_COMPUTED, (label, base.op.value, kernel)))


# An elementwise producer of a matmul operand is recomputed by every tile that reads it (A by
# each column block, B by each row block): a cast or a scale is free next to the FMAs, a
# transcendental is not.
MATMUL_PROLOGUE_FLOPS = 4


def _store_costly_prologues(nodes: list[Node], stored: dict[int, Cut]) -> None:
    for n in nodes:
        if n.op is not Op.MATMUL or n.realized is not None:
            continue
        for src in n.srcs:
            base = src
            while base.op in MOVEMENT and base.realized is None:
                base = base.srcs[0]
            if base.realized is not None or base.op not in ELEMENTWISE or base.uid in stored:
                continue
            cost = _fused_flops(base, stored)
            if cost > MATMUL_PROLOGUE_FLOPS:
                stored[base.uid] = Cut(CutReason.COSTLY_PROLOGUE, (base.op.value, cost))


def _fused_flops(root: Node, stored: dict[int, Cut]) -> int:
    """Flops per element of the ops a kernel would fuse under `root` (stops at buffers)."""
    total, seen, stack = 0, set(), [root]
    while stack:
        n = stack.pop()
        if n.uid in seen:
            continue
        seen.add(n.uid)
        if n is not root and (n.realized is not None or n.uid in stored):
            continue
        if n.op is Op.RAND:
            total += 16  # a keyed hash per element
        elif n.op in ELEMENTWISE:
            total += PRIMITIVES[n.op].flops
        elif n.op in REDUCE or n.op in CORES:
            total += 1000  # never recompute a reduction per tile
        stack.extend(n.srcs)
    return total


def _in_buffer(stored: dict[int, Cut]) -> Callable[[Node], bool]:
    """Whether a kernel reads a node from a buffer: realized, a host BUFFER, or stored."""
    return lambda m: m.realized is not None or m.op is Op.BUFFER or m.uid in stored


def _split_large(nodes: list[Node], stored: dict[int, Cut]) -> None:
    """Store intermediates so that no kernel costs more than MAX_KERNEL_COST to build (see
    scheduling/cost.py: each fused node counted once per view, weighted by its statement) or
    reads more than MAX_BUFFERS_PER_KERNEL buffers (a bound on kernel arguments)."""
    # bound[n] >= the fused cost under n: its statement plus its sources' bounds. A sum over
    # sources counts a shared node once per read, so it is exact on trees and grows
    # exponentially on DAGs (hypot(x, 2x) reads x twice); only where it passes a budget is
    # the cost counted exactly (ConeCounter), and the exact value is kept as the bound
    bound: dict[int, int] = {}
    bufs: dict[int, frozenset[int]] = {}

    cones = ConeCounter(_in_buffer(stored))
    for n in nodes:
        if n.realized is not None or n.op is Op.BUFFER:
            bound[n.uid], bufs[n.uid] = 1, frozenset((n.uid,))
            continue
        s = statement_cost(n)
        b: frozenset[int] = frozenset()
        for src in n.srcs:
            if src.uid in stored and src.realized is None:
                s += 1
                b = b | {src.uid}
            else:
                s += bound[src.uid]
                b = b | bufs[src.uid]
        if n.uid not in stored and n.op not in MOVEMENT and s > MAX_KERNEL_COST:
            s = cones.cost(n)
        if n.uid not in stored:
            if s > MAX_KERNEL_COST and n.op not in MOVEMENT:
                stored[n.uid] = Cut(CutReason.TOO_LARGE, (MAX_KERNEL_COST,))
            elif len(b) > MAX_BUFFERS_PER_KERNEL:
                # store the sources that bring in the most buffers
                for src in sorted(n.srcs, key=lambda x: -len(bufs.get(x.uid, ()))):
                    if src.uid not in stored and src.realized is None and src.op is not Op.CONST:
                        stored[src.uid] = Cut(CutReason.TOO_MANY_ARGUMENTS, (MAX_BUFFERS_PER_KERNEL,))
                        cones.forget()
                        b = frozenset(x for x in b if x not in bufs[src.uid]) | {src.uid}
                    if len(b) <= MAX_BUFFERS_PER_KERNEL:
                        break
        if n.uid in stored:
            bound[n.uid], bufs[n.uid] = 1, frozenset((n.uid,))
        else:
            bound[n.uid], bufs[n.uid] = s, b


def _store_shared(nodes: list[Node], stored: dict[int, Cut]) -> None:
    """Store the values that several kernels would each recompute, where recomputing costs
    more than SHARED_VALUE_COST (scheduling/cost.py). An elementwise value is fused into
    every kernel that reads it: a forward activation read by the next layer and by its
    gradient is computed twice, with everything under it down to the last stored value. Which
    kernels hold a node is taken from the cuts made so far (not updated as values are stored
    here: a node counted in two kernels may end up in one, stored on the safe side)."""
    holders: dict[int, set[int]] = defaultdict(set)  # node -> the kernels (stored roots) computing it
    for r in nodes:
        if r.uid not in stored or r.realized is not None or r.op is Op.BUFFER:
            continue
        seen, stack = {r.uid}, list(r.srcs)
        while stack:
            n = stack.pop()
            if n.uid in seen or n.realized is not None or n.op is Op.BUFFER or n.uid in stored:
                continue
            seen.add(n.uid)
            holders[n.uid].add(r.uid)
            stack.extend(n.srcs)

    cones = ConeCounter(_in_buffer(stored))
    for n in nodes:
        if n.op not in ELEMENTWISE or len(holders.get(n.uid, ())) < 2 or n.uid in stored:
            continue
        cost = cones.cost(n)
        if cost > SHARED_VALUE_COST:
            stored[n.uid] = Cut(CutReason.COSTLY_SHARED, (len(holders[n.uid]), cost))
            cones.forget()


def _tree(roots: list[Node], stored: dict[int, Cut], through: frozenset[int] | set[int] = frozenset()
          ) -> tuple[list[Node], dict[int, Node]]:
    """The fused nodes under `roots` (dependency order) and the stored/realized inputs they read.
    Stored nodes in `through` are recomputed here instead of read (row reductions)."""
    ops: list[Node] = []
    inputs: dict[int, Node] = {}
    seen: set[int] = set()
    root_uids = {r.uid for r in roots}
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, done = stack.pop()
        if done:
            ops.append(n)
            continue
        if n.uid in seen:
            continue
        seen.add(n.uid)
        if n.uid not in root_uids and (n.realized is not None or (n.uid in stored and n.uid not in through)):
            inputs[n.uid] = n
            continue
        stack.append((n, True))
        for s in reversed(n.srcs):
            stack.append((s, False))
    return ops, inputs


def _kernel_for(roots: list[Node], stored: dict[int, Cut], through: frozenset[int] | set[int] = frozenset()
                ) -> Kernel:
    """The kernel computing `roots` (one, or several sharing a domain), stopping at stored or
    realized nodes (except those in `through`, which it recomputes)."""
    ops, inputs = _tree(roots, stored, through)
    reduces = [n for n in ops if n.op in REDUCE]
    matmuls = [n for n in ops if n.op is Op.MATMUL]
    convs = [n for n in ops if n.op is Op.CONV2D]
    sorts = [n for n in ops if n.op in SORTS]
    gathers = [n for n in ops if n.op in GATHERS]
    scatters = [n for n in ops if n.op in SCATTERS]
    attentions = [a for a in (attention_core(r) for r in roots) if a is not None]
    cells = [n for n in ops if n.op in LSTMS]
    root = roots[0]
    kind: KernelKind
    if attentions:
        kind, core = KernelKind.ATTENTION, attentions[0]
    elif cells:
        kind, core = KernelKind.LSTM, cells[0]
    elif sorts:
        kind, core = KernelKind.SORT, sorts[0]
    elif gathers:
        kind, core = KernelKind.GATHER, gathers[0]
    elif scatters:
        kind, core = KernelKind.SCATTER, scatters[0]
    elif convs:
        kind, core = KernelKind.CONV, convs[0]
    elif matmuls:
        kind, core = KernelKind.MATMUL, matmuls[0]
    elif len(reduces) > 1 and _domain(reduces[-1]) != _domain(reduces[0]):
        kind, core = KernelKind.ROWTOTAL, reduces[-1]
    elif len(reduces) > 1 or (reduces and _row_output(root, reduces)):
        kind, core = KernelKind.ROWWISE, reduces[-1]
    elif reduces:
        kind, core = KernelKind.REDUCE, reduces[0]
    else:
        kind, core = KernelKind.ELEMENTWISE, None
    origins: list[str] = []
    for n in ops:
        if n.origin not in origins and n.op not in (Op.BUFFER,):
            origins.append(n.origin)
    edge = {uid: stored.get(uid, _REALIZED_EARLIER) for uid in inputs}
    reason = stored[root.uid]
    if kind is KernelKind.MATMUL and isinstance(core.arg, Decline):
        # the end of an attention pattern the fused kernel declined (passes/fuse_attention.py)
        reason = reason.noted(Cut(CutReason.ATTENTION_DECLINED, (core.arg.why,)))
    elif kind is KernelKind.MATMUL and isinstance(core.arg, CellDecline):
        # the gates' matmul of an LSTM step the fused cell kernel declined (passes/fuse_lstm.py)
        reason = reason.noted(Cut(CutReason.LSTM_DECLINED, (core.arg.why,)))
    return Kernel(root, kind, list(inputs.values()), ops, reason, core, reduces=reduces,
                  extra_outputs=list(roots[1:]), extra_reasons=[stored[r.uid] for r in roots[1:]],
                  origins=origins, edge_reasons=edge)


_REALIZED_EARLIER = Cut(CutReason.REALIZED_EARLIER)  # an input no kernel of this schedule stores


def _row_output(root: Node, reduces: list[Node]) -> bool:
    """A row-wise kernel writes its output over the full rows (softmax), not one value per
    row (a reduction's epilogue)."""
    r = reduces[0]
    return root.shape == r.srcs[0].shape and root.shape != r.shape


# --- row-wise fusion ---------------------------------------------------------------------------------
ROW_MAX_ELEMENTS = 1 << 22


def _domain(n: Node) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return n.srcs[0].shape, n.arg


def _plain_broadcast_uses(ops: list[Node], r: Node, full: tuple[int, ...], reds: list[Node]) -> bool:
    """Inside a kernel, `r` (one value per row) is read only as a broadcast over its rows or
    elementwise at its own shape. Per-row values (r, its reshapes, elementwise ops of them)
    are followed; wherever one is moved to the row domain's full shape, the view lowering will
    compose from there down to each reduction must be a row broadcast (the fuzzer found a
    per-row value padded into the row domain, fused by the shape rules and refused by lowering)."""
    ok_nodes = {r.uid}       # r and its size-1 reshapes
    per_row = {r.uid}        # ... and everything computed from them below the full shape
    within = {m.uid for m in ops}
    for n in ops:  # dependency order: a node's sources come before it
        if not any(s.uid in per_row for s in n.srcs):
            continue
        if n.op in MOVEMENT and n.shape == full:
            if not all(row_broadcast_read(n, red, within) for red in reds):
                return False  # padded, shrunk or transposed into the rows: not a row broadcast
            continue  # the broadcast itself (reduced dims back to full size): lowering reads racc here
        if (n.op in (Op.RESHAPE, Op.DETACH) and n.srcs[0].uid in ok_nodes
                and [d for d in n.shape if d != 1] == [d for d in n.srcs[0].shape if d != 1]):
            ok_nodes.add(n.uid)
            per_row.add(n.uid)
            continue
        if n.op in ELEMENTWISE or (n.op in MOVEMENT and not any(s.uid in ok_nodes for s in n.srcs)):
            per_row.add(n.uid)
            continue  # a per-row epilogue, or a per-row value on its way to the full shape
        if any(s.uid in ok_nodes for s in n.srcs):
            return False
    return True


def _root_reads_rows(root: Node, ops: list[Node], full: tuple[int, ...], reds: list[Node]) -> bool:
    """Every read of the fused reductions, with the view lowering composes from the kernel's
    root down (ir.movement.row_reads_from): softmax(0) written flipped, or a second reduction
    over the flipped softmax, reads row i from the reduction of row n-1-i (fused by the local
    read checks, refused by lowering: fuzz seed 863406059)."""
    within = {m.uid for m in ops}
    return all(row_reads_from(root, red, within, full) for red in reds)


def _read_by_an_extreme(nodes: list[Node], stored: dict[int, Cut]) -> set[int]:
    """Stored values that flow into a max/min reduction. Those computed by a float sum or
    product are not recomputed row-wise: a max's gradient (and `s == s.amax()`) compares the value with
    the max of it, which holds only if both read the same bits, and a kernel recomputing a sum
    adds in its own order (a row-total kernel's loop of one work-item per row against a
    row-wise kernel's 4 lanes and a tree: `x.sum(-1).amax()` had gradient 0 at shape (9, 7),
    fuzz soak seed 895538741)."""
    if not any(n.op is Op.RMAX for n in nodes):
        return set()
    cons = _consumers(nodes)
    reaches: set[int] = set()
    for n in reversed(nodes):  # consumers before their sources
        if any(c.op is Op.RMAX or c.uid in reaches for c in cons.get(n.uid, [])):
            reaches.add(n.uid)
    return {n.uid for n in nodes if n.uid in stored and n.uid in reaches}


def fuse_rows(outputs: list[Node], nodes: list[Node], stored: dict[int, Cut],
              deny: frozenset[int] = frozenset()) -> dict[int, set[int]]:
    """Row-wise fusion: a consumer kernel recomputes the reductions it only broadcasts back
    over their own rows (one row per work-item), instead of reading them from a kernel of
    their own: softmax, log_softmax, layernorm, cross-entropy become one kernel each. A row
    reduction read by several such kernels is recomputed in each (a pass over a row in cache
    costs less than a launch and a round trip through memory); its own kernel is dropped when
    no kernel reads it any more. Returns, per kernel root, the stored nodes it recomputes;
    records why not where it does not fuse."""
    out_uids = {o.uid for o in outputs}
    roots = [n for n in nodes if n.uid in stored and n.realized is None and prod(n.shape) > 0]
    through: dict[int, set[int]] = {r.uid: set() for r in roots}
    exact = _read_by_an_extreme(nodes, stored)
    trees = {r.uid: _tree([r], stored) for r in roots}
    for k in roots:
        ops, ins = trees[k.uid]
        reds = [n for n in ops if n.op in REDUCE]
        if any(n.op in CORES or n.op in OWN_KERNEL for n in ops):
            continue
        domain = _domain(reds[-1]) if reds else None
        changed = True
        while changed:
            changed = False
            for uid, r in list(ins.items()):
                if r.realized is not None or uid in out_uids or uid not in trees:
                    continue
                r_ops, _ = trees[uid]
                r_reds = [n for n in r_ops if n.op in REDUCE]
                if not r_reds or any(n.op in CORES for n in r_ops):
                    continue
                if any(x.uid in deny for x in r_reds):
                    _note(stored, uid, Cut(CutReason.ROW_VIEW))
                    continue
                dom = _domain(r_reds[-1])
                if any(_domain(x) != dom for x in r_reds):
                    continue
                if domain is None and k.shape != dom[0]:
                    continue
                total = False
                if domain is not None and dom != domain:
                    total = _is_row_total(reds, domain, dom, ops, r)
                    if not total:
                        _note(stored, uid, Cut(CutReason.ROW_SHAPE))
                        continue
                if prod(tuple(dom[0][a] for a in dom[1])) > ROW_MAX_ELEMENTS:
                    _note(stored, uid, Cut(CutReason.ROW_TOO_LONG, (ROW_MAX_ELEMENTS,)))
                    continue
                if not total and not (_plain_broadcast_uses(ops + r_ops, r, dom[0], r_reds)
                                      and _root_reads_rows(k, ops + r_ops, dom[0], r_reds)):
                    _note(stored, uid, Cut(CutReason.ROW_VIEW))
                    continue
                if uid in exact and any(x.op in (Op.SUM, Op.RPROD) and x.dtype.is_float for x in r_reds):
                    _note(stored, uid, Cut(CutReason.ROW_EXACT))
                    continue
                # k recomputes r (and whatever r's own kernel recomputes)
                through[k.uid] |= {uid} | through[uid]
                ops, ins = _tree([k], stored, through[k.uid])
                trees[k.uid] = (ops, ins)
                domain = dom
                changed = True
                break
    # drop kernels nobody reads any more (every reader recomputes them), consumers first
    needed: set[int] = set(out_uids)
    for n in reversed(roots):
        if n.uid not in needed:
            del stored[n.uid]
            continue
        needed |= set(trees[n.uid][1])
    return {u: t for u, t in through.items() if u in stored}


def _note(stored: dict[int, Cut], uid: int, why: Cut) -> None:
    stored[uid] = stored[uid].noted(why)


TOTAL_MAX_ROWS = 1 << 14
TOTAL_MAX_ELEMENTS = 1 << 22


def _is_row_total(reds: list[Node], domain: tuple, row_dom: tuple, ops: list[Node], r: Node) -> bool:
    """The consumer kernel is one full reduction (a mean over rows) of the per-row values `r`
    of a row-wise kernel, reading them elementwise: both fit in one kernel where each
    work-item of a single work-group loops over rows (cross-entropy = one kernel)."""
    if len(reds) != 1 or len(domain[1]) != len(domain[0]):
        return False
    full, axes = row_dom
    n_rows = prod(full) // max(1, prod(tuple(full[a] for a in axes)))
    if prod(domain[0]) != n_rows or n_rows > TOTAL_MAX_ROWS or prod(full) > TOTAL_MAX_ELEMENTS:
        return False
    for n in ops:
        if any(x.uid == r.uid for x in n.srcs) and not (n.op in ELEMENTWISE or n.op in (Op.RESHAPE, Op.DETACH)
                                                      or n.op in REDUCE):
            return False
    return True


def merge_outputs(kernels: list[Kernel], stored: dict[int, Cut],
                  through: dict[int, set[int]] | None = None) -> list[Kernel]:
    """Multi-output kernels: elementwise kernels over the same shape become one kernel when
    none depends on another through anything but a same-position read (shared inputs are read
    once; an output another one reads elementwise is reused from registers, as in an
    optimizer step that writes a parameter and its moments), as long as the merged kernel stays
    within the build budget (scheduling/cost.py: the cuts that split a large kernel must not be
    merged back into one)."""
    produced_at: dict[int, int] = {}
    merged: list[list[Node]] = []
    kinds: list[KernelKind] = []
    group_inputs: list[set[int]] = []
    group_cones: list[frozenset[tuple[int, int]]] = []  # what each group computes (ConeCounter.cone)

    cones = ConeCounter(_in_buffer(stored))
    for k in kernels:
        deps = {i.uid for i in k.inputs if i.realized is None}
        target = None
        cone: frozenset[tuple[int, int]] = frozenset()
        if k.kind is KernelKind.ELEMENTWISE:
            cones.cost(k.output)
            cone = cones.cone(k.output)
            for gi in range(len(merged) - 1, -1, -1):
                members = {m.uid for m in merged[gi]}
                outside = [produced_at[d] for d in deps - members if d in produced_at]
                if outside and max(outside) >= gi:
                    break  # k needs a kernel launched at or after this group: no earlier group either
                n_args = len(group_inputs[gi] | {i.uid for i in k.inputs}) + len(merged[gi]) + 1
                if kinds[gi] is KernelKind.ELEMENTWISE and merged[gi][0].shape == k.output.shape and \
                        n_args <= MAX_BUFFERS_PER_KERNEL and cones.total(group_cones[gi] | cone) <= MAX_KERNEL_COST and \
                        _reads_elementwise(k, deps & members):
                    target = gi
                    break
        if target is None:
            merged.append(list(k.outputs))
            kinds.append(k.kind)
            group_inputs.append(set())
            group_cones.append(frozenset())
            target = len(merged) - 1
        else:
            merged[target].append(k.output)
        group_inputs[target] |= {i.uid for i in k.inputs}
        group_cones[target] |= cone
        produced_at[k.output.uid] = target
    through = through or {}
    return [_kernel_for(roots, stored, set().union(*(through.get(r.uid, set()) for r in roots)))
            for roots in merged]


def _attention_families(nodes: list[Node], stored: dict[int, Cut]) -> dict[int, list[Node]]:
    """The ATTENTION nodes one kernel computes together: the parts of one attention with the
    same sources (O with its logsumexp, dK with dV), by uid, each mapped to the whole family."""
    groups: dict[tuple, list[Node]] = {}
    for n in nodes:
        a = attention_core(n) if n.uid in stored and n.realized is None else None
        if a is not None and (a is n or a.uid not in stored):
            key = (tuple(s.uid for s in a.srcs), a.arg.family(), KERNEL_OF[a.arg.part])
            groups.setdefault(key, []).append(n)
    return {m.uid: g for g in groups.values() for m in g}


def _reads_elementwise(k: Kernel, uids: set[int]) -> bool:
    """Kernel k reads the nodes `uids` only as direct sources of elementwise ops (the same
    element position it computes), never through a view."""
    if not uids:
        return True
    for n in k.ops:
        for s in n.srcs:
            if s.uid in uids and n.op not in ELEMENTWISE:
                return False
    return True


def schedule(outputs: list[Node], deny_rows: frozenset[int] = frozenset()) -> list[Kernel]:
    """The kernels that realize `outputs`, in launch order (not yet rendered). Reductions in
    `deny_rows` are not fused row-wise (lowering found a read it cannot express)."""
    nodes = toposort(outputs)
    stored = decide_boundaries(outputs, nodes)
    through: dict[int, set[int]] = {}
    if fusion_enabled():
        through = fuse_rows(outputs, nodes, stored, deny_rows)
    kernels: list[Kernel] = []
    families = _attention_families(nodes, stored)
    for n in nodes:
        if n.uid in stored and n.realized is None and n.op is not Op.BUFFER:
            if prod(n.shape) == 0:
                continue  # nothing to compute; realize allocates an empty buffer
            roots = families.get(n.uid, [n])
            if roots[0] is not n:
                continue  # computed by its family's kernel
            kernels.append(_kernel_for(roots, stored, through.get(n.uid, set())))
    if fusion_enabled() and settings().multi_output:
        kernels = merge_outputs(kernels, stored, through)
    return kernels
