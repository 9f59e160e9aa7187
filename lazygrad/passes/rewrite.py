"""The driver of a graph pass: an iterative bottom-up rewrite of the unrealized graph.

Nodes are immutable and hash-consed, so a rewrite never edits one: a node whose sources were
replaced is made again from the new sources with its own op, arg, shape, dtype, origin and
label (provenance and kernel names survive a pass), and a node the pass replaces gets the
subgraph `apply` builds, made under the replaced node's origin and label.

Public names: Pass, rewrite, remake.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lazygrad.ir import graph as gr
from lazygrad.ir.graph import Node, toposort, with_origin
from lazygrad.target import Target


@dataclass(frozen=True)
class Pass:
    """One backend decision: `match` is asked of every node (keep it cheap), `apply` builds
    the replacement of a matched node (same shape and dtype), or returns None to keep it."""

    name: str
    match: Callable[[Node, Target], bool]
    apply: Callable[[Node, Target], Node | None]


def remake(n: Node, srcs: tuple[Node, ...]) -> Node:
    """`n` with new sources: same op, arg, shape, dtype, origin and label."""
    return gr.make(n.op, srcs, n.shape, n.dtype, n.arg, origin=n.origin, label=n.label)


def rewrite(outputs: list[Node], p: Pass, target: Target) -> list[Node]:
    """`outputs` with pass `p` applied below them (never below a realized node: a buffer is
    a buffer). Returns the replacement of each output, itself where nothing changed."""
    new: dict[int, Node] = {}
    for n in toposort(outputs):
        if n.realized is not None:
            continue
        srcs = tuple(new.get(s.uid, s) for s in n.srcs)
        m = n if all(a is b for a, b in zip(srcs, n.srcs)) else remake(n, srcs)
        if p.match(m, target):
            with with_origin(m.origin, m.label):
                r = p.apply(m, target)
            if r is not None:
                assert r.shape == m.shape and r.dtype == m.dtype, (p.name, m, r)
                m = r
        if m is not n:
            new[n.uid] = m
    return [new.get(o.uid, o) for o in outputs]
