"""The scheduler: cut the lazy DAG into kernels, recording why every cut was made.

Rules (in `decide_boundaries`, the realize rules in one place):
- nodes already realized are kernel inputs, never recomputed;
- the tensors asked for are kernel outputs ("user realize");
- a reduction (or matmul) is the core of a kernel; its elementwise consumers fuse after it as
  long as each has a single consumer and the same output elements; where that chain stops,
  the value is stored, with the reason it stopped (broadcast, several consumers, ...);
- elementwise and movement nodes are never stored unless one of those rules asks: they are
  recomputed inside every kernel that reads them (views become index expressions);
- a kernel with too many buffer arguments or too many ops is split ("too many kernel
  arguments", "kernel too large");
- LAZYGRAD_FUSE=0 stores every primitive ("fusion disabled").

Public names: Kernel, schedule, decide_boundaries, fusion_enabled.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from .graph import Node, toposort
from .ops import ELEMENTWISE, MOVEMENT, REDUCE, Op
from .view import prod

MAX_OPS_PER_KERNEL = 400
MAX_BUFFERS_PER_KERNEL = 48


def fusion_enabled() -> bool:
    return os.environ.get("LAZYGRAD_FUSE", "1") not in ("0", "false", "False")


@dataclass
class Kernel:
    """One kernel launch: the nodes it computes (`ops`), what it reads and writes, and why
    its output is stored instead of fused into its consumer (`reason`)."""

    output: Node
    kind: str                      # "elementwise" | "reduce" | "matmul"
    inputs: list[Node]             # nodes read from buffers (realized or earlier kernels)
    ops: list[Node]                # the nodes fused into this kernel, in dependency order
    reason: str                    # why `output` is a kernel boundary
    core: Node | None = None       # the reduction / matmul node, when there is one
    name: str = ""
    source: str = ""
    global_size: tuple[int, ...] = ()
    local_size: tuple[int, ...] | None = None
    origins: list[str] = field(default_factory=list)
    edge_reasons: dict[int, str] = field(default_factory=dict)  # input uid -> why not fused

    @property
    def outputs(self) -> list[Node]:
        return [self.output]

    @property
    def op_names(self) -> list[str]:
        return [n.op.value for n in self.ops if n.op not in MOVEMENT and n.op not in (Op.BUFFER, Op.CONST)]

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
        names = self.op_names
        ops = "+".join(names[:8]) + (f"+...({len(names)} ops)" if len(names) > 8 else "") or "copy"
        ins = ", ".join(_shape_str(i.shape) for i in self.inputs)
        out = self.output
        return (f"Kernel({self.name or self.kind}: {ops} -> {_shape_str(out.shape)} {out.dtype.name} "
                f"from [{ins}]; {self.reason})")


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
    """A reshape keeps every element at the same flat position, so a kernel computing the
    source's element i also computes the reshape's element i."""
    return n.op in (Op.RESHAPE, Op.DETACH)


def decide_boundaries(outputs: list[Node], nodes: list[Node]) -> dict[int, str]:
    """uid → reason, for every node whose value is stored in a buffer by some kernel."""
    fuse = fusion_enabled()
    out_uids = {o.uid for o in outputs}
    stored: dict[int, str] = {}
    for o in outputs:
        if o.realized is None:
            stored[o.uid] = "user realize"
    cons = _consumers(nodes)
    if not fuse:
        for n in nodes:
            if n.realized is None and n.op not in (Op.BUFFER, Op.CONST) and n.op not in MOVEMENT:
                stored.setdefault(n.uid, "fusion disabled (LAZYGRAD_FUSE=0)")
        # views still fuse into their reader: a copy per view would only add kernels
        return stored
    claimed: set[int] = set()  # nodes already part of some reduction's epilogue
    for n in nodes:
        if n.realized is not None:
            continue
        if n.op is Op.CONTIGUOUS:
            stored.setdefault(n.uid, "explicit contiguous()")
        if n.op not in REDUCE and n.op is not Op.MATMUL:
            continue
        # walk the single-consumer chain of elementwise ops after the reduction
        cur = n
        while True:
            if cur.uid in out_uids:
                break
            users = cons.get(cur.uid, [])
            if len(users) != 1:
                stored.setdefault(cur.uid, f"{len(users)} consumers of a reduction result" if users else "unused")
                break
            nxt = users[0]
            if nxt.uid in claimed:
                stored.setdefault(cur.uid, "consumer already fused with another reduction")
                break
            if nxt.op in ELEMENTWISE or _is_flat_reshape(nxt):
                claimed.add(nxt.uid)
                cur = nxt
                continue
            if nxt.op is Op.EXPAND:
                why = "reduce feeding a broadcast"
            elif nxt.op in REDUCE or nxt.op is Op.MATMUL:
                why = f"reduction feeding another {nxt.op.value}"
            elif nxt.op in MOVEMENT:
                why = f"{nxt.op.value} view of a reduction result"
            else:
                why = f"feeds {nxt.op.value}"
            stored.setdefault(cur.uid, why)
            break
    _split_large(nodes, stored)
    return stored


def _split_large(nodes: list[Node], stored: dict[int, str]) -> None:
    """Store intermediates so that no kernel fuses more than MAX_OPS_PER_KERNEL ops or reads
    more than MAX_BUFFERS_PER_KERNEL buffers (a bound on generated source and arguments)."""
    size: dict[int, int] = {}
    bufs: dict[int, frozenset[int]] = {}
    for n in nodes:
        if n.realized is not None or n.op is Op.BUFFER:
            size[n.uid], bufs[n.uid] = 0, frozenset((n.uid,))
            continue
        s = 1
        b: frozenset[int] = frozenset()
        for src in n.srcs:
            if src.uid in stored and src.realized is None:
                b = b | {src.uid}
            else:
                s += size[src.uid]
                b = b | bufs[src.uid]
        if n.uid not in stored:
            if s > MAX_OPS_PER_KERNEL and n.op not in MOVEMENT:
                stored[n.uid] = f"kernel too large (> {MAX_OPS_PER_KERNEL} fused ops)"
            elif len(b) > MAX_BUFFERS_PER_KERNEL:
                # store the sources that bring in the most buffers
                for src in sorted(n.srcs, key=lambda x: -len(bufs.get(x.uid, ()))):
                    if src.uid not in stored and src.realized is None and src.op is not Op.CONST:
                        stored[src.uid] = f"too many kernel arguments (> {MAX_BUFFERS_PER_KERNEL} buffers)"
                        b = frozenset(x for x in b if x not in bufs[src.uid]) | {src.uid}
                    if len(b) <= MAX_BUFFERS_PER_KERNEL:
                        break
        if n.uid in stored:
            size[n.uid], bufs[n.uid] = 0, frozenset((n.uid,))
        else:
            size[n.uid], bufs[n.uid] = s, b


def _kernel_for(root: Node, stored: dict[int, str]) -> Kernel:
    """Collect the fused tree under `root`, stopping at stored or realized nodes."""
    ops: list[Node] = []
    inputs: dict[int, Node] = {}
    seen: set[int] = set()
    core: Node | None = None
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        n, done = stack.pop()
        if done:
            ops.append(n)
            continue
        if n.uid in seen:
            continue
        seen.add(n.uid)
        if n is not root and (n.realized is not None or n.uid in stored):
            inputs[n.uid] = n
            continue
        if n.op in REDUCE or n.op is Op.MATMUL:
            if core is None:
                core = n
        stack.append((n, True))
        for s in reversed(n.srcs):
            stack.append((s, False))
    kind = "elementwise"
    if core is not None:
        kind = "matmul" if core.op is Op.MATMUL else "reduce"
    origins: list[str] = []
    for n in ops:
        if n.origin not in origins and n.op not in (Op.BUFFER,):
            origins.append(n.origin)
    edge = {uid: stored.get(uid, "realized earlier") for uid in inputs}
    return Kernel(root, kind, list(inputs.values()), ops, stored[root.uid], core, origins=origins,
                  edge_reasons=edge)


def schedule(outputs: list[Node]) -> list[Kernel]:
    """The kernels that realize `outputs`, in launch order (not yet rendered)."""
    nodes = toposort(outputs)
    stored = decide_boundaries(outputs, nodes)
    kernels: list[Kernel] = []
    for n in nodes:
        if n.uid in stored and n.realized is None and n.op is not Op.BUFFER:
            if prod(n.shape) == 0:
                continue  # nothing to compute; realize allocates an empty buffer
            kernels.append(_kernel_for(n, stored))
    return kernels
