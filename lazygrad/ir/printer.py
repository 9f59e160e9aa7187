"""The graph IR's printer: any graph (forward, gradient, after passes) as text.

`format_graph(roots)` gives one line per node, sources first:

    #12    add                      (2, 3)         float32  (#10,#11)  <- model.py:4 relu

id (the node's uid, the one IRError names), op and arg, shape, dtype, sources, and where the
node came from (the user's source line, or "grad of OP #id @ line" for autodiff's nodes) with
the user-level op that made it. A realized node is marked `realized` and its sources are not
walked: what a realize would compute is what is printed.

Public names: format_graph, format_node.
"""
from __future__ import annotations

from collections.abc import Sequence

from lazygrad.ir.graph import Node, toposort
from lazygrad.ir.ops import Op


def _op_text(n: Node) -> str:
    if n.op is Op.BUFFER:
        return "buffer"
    return n.op.value if n.arg is None else f"{n.op.value} {n.arg}"


def format_node(n: Node) -> str:
    """One node as `format_graph` prints it."""
    srcs = ",".join(f"#{s.uid}" for s in n.srcs)
    mark = " realized" if n.realized is not None and n.op is not Op.BUFFER else ""
    label = f" {n.label}" if n.label else ""
    line = (f"#{n.uid:<6} {_op_text(n):<24} {str(n.shape):<14} {n.dtype.name:<8} ({srcs}){mark}"
            f"  <- {n.origin}{label}")
    return line


def format_graph(roots: Sequence[Node]) -> str:
    """Every node `roots` depend on, one line each in dependency order (stopping at realized
    nodes, which are printed)."""
    return "\n".join(format_node(n) for n in toposort(list(roots)))
