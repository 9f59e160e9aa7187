"""Lowering: a scheduled Kernel's node tree → a flat list of typed instructions whose loads
carry ShapeTrackers mapping the kernel's loop indices to buffer positions.

Views are composed here: a movement node contributes no instruction, it only changes the
ShapeTracker its source is read through. PAD contributes a guard (its padded region holds a
constant, which is not the same as padding the source's inputs).

Regions say which loop an instruction runs in:
- "outer": once per output element (elementwise kernels, a reduction's epilogue);
- "inner{k}": inside the loop of reduction stage k (its producers);
- "row": per element of a row after every stage (row-wise kernels writing full rows).
A reduction's value is an "acc" instruction (value = stage index) in the regions that read it.

Public names: Instr, LoweredKernel, RowFusionError, lower.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dtypes import DType
from .graph import Node
from .ops import ELEMENTWISE, MOVEMENT, REDUCE, Op
from .scheduler import Kernel
from .view import ShapeTracker, prod


class RowFusionError(Exception):
    """A reduction fused row-wise is read through something other than a row broadcast."""

    def __init__(self, node: Node, msg: str) -> None:
        super().__init__(msg)
        self.node = node


@dataclass(frozen=True)
class Instr:
    """kind: load | const | rand | alu | acc | pad. `args` are instruction indices (alu, pad,
    acc) or a buffer argument index (load)."""

    kind: str
    dtype: DType
    args: tuple[int, ...]
    region: str
    st: ShapeTracker | None = None
    op: Op | None = None
    value: Any = None
    origin: str = ""


@dataclass
class LoweredKernel:
    kernel: Kernel
    instrs: list[Instr]
    buffers: list[Node]           # argument order: outputs first, then inputs
    out_shape: tuple[int, ...]    # shape of the output
    red_shape: tuple[int, ...] = ()   # reduced dims of the row domain (reduce/rowwise kernels)
    keep_shape: tuple[int, ...] = ()  # kept dims of the row domain (flat index == output index)
    result: int = -1              # instruction index of the first stored value
    results: list[int] = field(default_factory=list)      # one per output
    out_sts: list[ShapeTracker] = field(default_factory=list)  # loop index -> output position
    inner_result: int = -1        # the value accumulated by stage 0
    stage_results: list[int] = field(default_factory=list)    # per stage: value accumulated
    stage_ops: list[Op] = field(default_factory=list)         # per stage: SUM or RMAX
    reduce_op: Op | None = None
    row_output: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return len(self.results)


def _movement_st(node: Node) -> ShapeTracker:
    """The view that reads `node` (a movement op) out of its source's contiguous layout."""
    src = node.srcs[0]
    st = ShapeTracker.from_shape(src.shape)
    op, arg = node.op, node.arg
    if op is Op.RESHAPE:
        return st.reshape(arg)
    if op is Op.PERMUTE:
        return st.permute(arg)
    if op is Op.EXPAND:
        return st.expand(arg)
    if op is Op.PAD:
        return st.pad(arg[0])
    if op is Op.SHRINK:
        return st.shrink(arg)
    if op is Op.FLIP:
        return st.flip(arg)
    if op is Op.DETACH:
        return st
    raise AssertionError(op)


def _same_index(a: ShapeTracker, b: ShapeTracker) -> bool:
    if a == b:
        return True
    if a.shape != b.shape:
        return False
    names = [f"i{d}" for d in range(len(a.shape))]
    return a.expr(names) == b.expr(names)


def lower(kernel: Kernel) -> LoweredKernel:
    roots = kernel.outputs
    buffers: list[Node] = list(roots) + list(kernel.inputs)
    arg_of = {n.uid: i for i, n in enumerate(buffers)}
    root_uids = {r.uid for r in roots}
    input_uids = {n.uid for n in kernel.inputs}
    instrs: list[Instr] = []
    memo: dict[tuple[int, ShapeTracker, str], int] = {}
    root = roots[0]
    lk = LoweredKernel(kernel, instrs, buffers, root.shape)

    reduces = kernel.reduces if kernel.kind in ("reduce", "rowwise", "rowtotal") else []
    total: Node | None = None
    if kernel.kind == "rowtotal":
        # the last reduction sums per-row values over all rows: it is not a row stage
        total, reduces = reduces[-1], reduces[:-1]
        lk.extra["rows_shape"] = total.srcs[0].shape
        lk.extra["total_op"] = total.op
    stage_of = {r.uid: k for k, r in enumerate(reduces)}
    dom_st: ShapeTracker | None = None
    full: tuple[int, ...] = ()
    if reduces:
        full, axes = reduces[0].srcs[0].shape, reduces[0].arg
        keep = [i for i in range(len(full)) if i not in axes]
        lk.keep_shape = tuple(full[i] for i in keep)
        lk.red_shape = tuple(full[i] for i in axes)
        lk.stage_ops = [r.op for r in reduces]
        lk.reduce_op = reduces[0].op
        lk.stage_results = [-1] * len(reduces)
        dom_st = ShapeTracker.from_shape(full).permute(tuple(keep) + tuple(axes))
        lk.row_output = kernel.kind == "rowwise" and root.shape == full and root.shape != reduces[-1].shape
    rand_index = {n.uid: i for i, n in enumerate(x for x in kernel.ops if x.op is Op.RAND)}
    lk.extra["n_seeds"] = len(rand_index)

    def emit(ins: Instr) -> int:
        instrs.append(ins)
        return len(instrs) - 1

    def children(node: Node, st: ShapeTracker, region: str) -> list[tuple[Node, ShapeTracker, str]]:
        if node.op in MOVEMENT:
            return [(node.srcs[0], _movement_st(node).compose(st), region)]
        if node.uid in stage_of:
            assert dom_st is not None
            return [(node.srcs[0], dom_st, f"inner{stage_of[node.uid]}")]
        if node is total:
            return [(node.srcs[0], ShapeTracker.from_shape(node.srcs[0].shape), "outer")]
        return [(s, st, region) for s in node.srcs]

    def lower_root(r: Node, st: ShapeTracker, region: str) -> int:
        stack: list[tuple[Node, ShapeTracker, str, bool]] = [(r, st, region, False)]
        while stack:
            node, nst, reg, ready = stack.pop()
            key = (node.uid, nst, reg)
            if key in memo:
                continue
            is_root = node.uid in root_uids and node is r
            if (not is_root and node.uid in input_uids) or node.op is Op.BUFFER:
                memo[key] = emit(Instr("load", node.dtype, (arg_of[node.uid],), reg, nst, origin=node.origin))
                continue
            if node.op is Op.CONST:
                memo[key] = emit(Instr("const", node.dtype, (), reg, value=node.arg, origin=node.origin))
                continue
            if node.op is Op.RAND:
                # seeds are scalar kernel arguments (in order of appearance in kernel.ops)
                memo[key] = emit(Instr("rand", node.dtype, (), reg, nst, value=rand_index[node.uid],
                                       origin=node.origin))
                continue
            kids = children(node, nst, reg)
            if not ready:
                stack.append((node, nst, reg, True))
                for c in kids:
                    if (c[0].uid, c[1], c[2]) not in memo:
                        stack.append((c[0], c[1], c[2], False))
                continue
            vals = tuple(memo[(c[0].uid, c[1], c[2])] for c in kids)
            if node is total:
                lk.extra["total_result"] = vals[0]
                memo[key] = emit(Instr("acc", node.dtype, vals, reg, op=node.op, value="total", origin=node.origin))
            elif node.uid in stage_of:
                k = stage_of[node.uid]
                lk.stage_results[k] = vals[0]
                _check_row_read(node, nst, reg, full)
                memo[key] = emit(Instr("acc", node.dtype, vals, reg, op=node.op, value=k, origin=node.origin))
            elif node.op is Op.PAD:
                memo[key] = emit(Instr("pad", node.dtype, vals, reg, kids[0][1], value=node.arg[1],
                                       origin=node.origin))
            elif node.op in MOVEMENT or node.op is Op.CONTIGUOUS:
                memo[key] = vals[0]
            elif node.op in ELEMENTWISE:
                memo[key] = emit(Instr("alu", node.dtype, vals, reg, op=node.op, value=node.arg,
                                       origin=node.origin))
            else:
                raise NotImplementedError(f"lowering {node.op} in kernel {kernel}")
        return memo[(r.uid, st, region)]

    for r in roots:
        if total is not None:
            st, region = ShapeTracker.from_shape(r.shape), "final"
        elif lk.row_output and r.shape == full:
            assert dom_st is not None
            st, region = dom_st, "row"
        else:
            st, region = ShapeTracker.from_shape(r.shape), "outer"
        lk.out_sts.append(st)
        lk.results.append(lower_root(r, st, region))
    lk.result = lk.results[0]
    if lk.stage_results:
        lk.inner_result = lk.stage_results[0]
    return lk


def _check_row_read(r: Node, st: ShapeTracker, region: str, full: tuple[int, ...]) -> None:
    """A reduction's value stands for one row: it may be read per row ("outer", at its own
    shape) or broadcast over the row (inner stages, "row"), nothing else."""
    axes = r.arg
    keep = [i for i in range(len(full)) if i not in axes]
    if region == "outer":
        # the epilogue loops over the output's shape; reaching r through flat reshapes only,
        # the loop index is r's flat index
        want = ShapeTracker.from_shape(st.shape)
        if prod(st.shape) != prod(r.shape):
            raise RowFusionError(r, f"{r.op.value}{r.shape} is read with a different number of elements")
    else:
        want = ShapeTracker.from_shape(r.shape).expand(full).permute(tuple(keep) + tuple(axes))
    if not _same_index(st, want):
        raise RowFusionError(r, f"{r.op.value}{r.shape} is read through a view that is not a row broadcast")
