"""What a fused kernel costs to build: the statements lowering emits for it, each node once.

Lowering emits one statement per (node, view, loop) of a kernel (its memo), so a value read
several times — x in hypot(x, 2x), relu's where(x > 0, x, 0), a forward value read by its
gradient — is computed once. The scheduler used to count a node once per *read* (a tree
count), which grows exponentially with depth on such DAGs: a 16-op bench chain (mul, add,
relu, sub) counted > 400 and was cut in three, and compound ops (hypot, logaddexp, round with
decimals, selu + celu + mish, ...) cut a chain that lowering would emit as ~50 statements.

A statement's weight is what PoCL spends compiling it, in units of one arithmetic statement.
Measured (PoCL 3 / LLVM, 256-bit target, one elementwise kernel on 256x256 float32, fresh
lazygrad and PoCL caches, `/tmp` scripts in the commit message): an arithmetic statement costs
~1.3 ms of first-realize time, a transcendental (tanh, sin, erf: PoCL inlines its vector math
library) ~10 ms, i.e. about its `flops` in the op table (8); loads, selects and pads ~1. Views
and constants emit no statement (a view composes into the index, a constant is a literal).

The budget: build time is linear up to ~2000 units per kernel and superlinear after (a chain of
tanh/sin/hypot layers: 1000 statements 0.9 s over the base, 2000: 2.7 s, 4000: 9.1 s), so a
kernel is cut at MAX_KERNEL_COST = 1000.

Shared values: an elementwise value is recomputed in every kernel that reads it. Counting
each node once alone (the earlier attempt, 5b3f9ee) stored few values of a deep gradient, so
each backward kernel recomputed the forward chain: a 300-layer chain's gradient compiled 23107
distinct statements instead of 6041 (2.7x the first build). A value several kernels would
each compute is stored once its cone costs more than SHARED_VALUE_COST = 200: that gradient
builds 8427 distinct statements (first realize 7.9 CPU s vs 7.0 with the per-read count;
SHARED_VALUE_COST 100: 8.1 s, 50: 9.1 s; kernel time 1.39 -> 0.58 s).

Public names: MAX_KERNEL_COST, statement_cost, ConeCounter, fused_cost.
"""
from __future__ import annotations

from collections.abc import Callable

from lazygrad.ir.graph import Node
from lazygrad.ir.ops import ELEMENTWISE, MOVEMENT, PRIMITIVES, Op

MAX_KERNEL_COST = 1000
SHARED_VALUE_COST = 200

RAND_COST = 16  # a keyed hash per element


def statement_cost(n: Node) -> int:
    """The build cost of the statement lowering emits for `n` (0: it emits none)."""
    if n.op is Op.CONST or (n.op in MOVEMENT and n.op is not Op.PAD):
        return 0
    if n.op is Op.RAND:
        return RAND_COST
    if n.op in ELEMENTWISE:
        return PRIMITIVES[n.op].flops
    return 1  # a load, a pad's select, a reduction's or core's accumulate


class ConeCounter:
    """Counts `fused_cost` for a sequence of roots in dependency order, reusing the cones it
    counted before: a cone reached with no view in between is taken whole (a set union, not a
    walk), so a long chain of compound ops costs a walk of its new nodes only.
    `is_input(n)`: the kernel reads `n` from a buffer (one load). `forget()` after a node
    became an input, since the cones counted before may run through it."""

    def __init__(self, is_input: Callable[[Node], bool]) -> None:
        self.is_input = is_input
        self.paths: dict[tuple[int, int], int] = {}      # (path, movement node) -> path below it
        self.weight: dict[tuple[int, int], int] = {}     # (node, path) -> its statement's cost
        self.cones: dict[int, tuple[int, frozenset[tuple[int, int]]]] = {}  # uid -> (cost, cone)

    def forget(self) -> None:
        self.cones.clear()

    def cost(self, root: Node) -> int:
        """The cost of `root` and everything fused under it as lowering emits it: each node
        once per view it is read through (lowering's memo is keyed by node and view, so f(x)
        read through nine pooling windows is nine statements). A view is told apart by the
        movement nodes on the way to it (hash-consed, so the same view op reached twice is one
        view; two spellings of one view count twice, the safe side). Iterative: deep graphs."""
        own: set[tuple[int, int]] = set()
        known: list[tuple[int, frozenset[tuple[int, int]]]] = []
        stack = [(root, 0)]
        while stack:
            n, path = stack.pop()
            key = (n.uid, path)
            if key in own:
                continue
            if n is not root and self.is_input(n):
                own.add(key)
                self.weight[key] = 1
                continue
            if n is not root and path == 0 and n.uid in self.cones:
                known.append(self.cones[n.uid])
                continue
            own.add(key)
            self.weight[key] = statement_cost(n)
            if n.op in MOVEMENT and n.op is not Op.DETACH:  # detach: the same view, the same memo entry
                path = self.paths.setdefault((path, n.uid), len(self.paths) + 1)
            stack.extend((s, path) for s in n.srcs)
        if known:
            total, cone = max(known, key=lambda kc: len(kc[1]))
            rest = own.union(*(c for _, c in known)) - cone
            cone = cone | rest
        else:
            total, rest, cone = 0, own, frozenset(own)
        total += sum(map(self.weight.__getitem__, rest))
        self.cones[root.uid] = (total, cone)
        return total


    def cone(self, root: Node) -> frozenset[tuple[int, int]]:
        """What `cost(root)` counted: its (node, view) pairs."""
        return self.cones[root.uid][1]

    def total(self, cone: frozenset[tuple[int, int]]) -> int:
        """The cost of a union of cones (a multi-output kernel computes shared nodes once)."""
        return sum(map(self.weight.__getitem__, cone))


def fused_cost(root: Node, is_input: Callable[[Node], bool]) -> int:
    """The build cost of `root`'s kernel (see ConeCounter.cost)."""
    return ConeCounter(is_input).cost(root)
