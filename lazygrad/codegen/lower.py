"""Lowering: a scheduled Kernel's node tree → a flat list of typed instructions whose loads
carry ShapeTrackers mapping the kernel's loop indices to buffer positions.

Views are composed here: a movement node contributes no instruction, it only changes the
ShapeTracker its source is read through. PAD contributes a guard (its padded region holds a
constant, which is not the same as padding the source's inputs).

Regions (`Region`) say which loop an instruction runs in:
- OUTER: once per output element (elementwise kernels, a reduction's epilogue);
- INNER, with the instruction's `stage` k: inside the loop of reduction stage k (its producers);
- ROW: per element of a row after every stage (row-wise kernels writing full rows);
- FINAL: once, after a row total (the total's epilogue);
- A / B: a matmul operand's element, indexed by the operand's own (..., M, K) / (..., K, N)
  shape, or by its panel shape when it was packed (the codegen owns the K loop);
- CX / CW: a conv2d's input and weight: one load each, of the buffer holding them (the
  codegen indexes them itself).
A reduction's value is an ACC instruction (value = stage index, TOTAL for a row total) in the
regions that read it; a matmul's is an ACC instruction whose args are its A and B values, a
conv2d's likewise. What only some kinds of kernel have is typed on LoweredKernel: a matmul's
`panels`, a row total's `total`, a row-wise kernel's `twins`.

Runs of movement ops are composed bottom-up (`movement_chain`) and stacked views folded where
they compose (`fold_views`), so long view chains (conv windows) index in one or two views.

The views themselves are composed by ir.movement, the panel pattern is ir.panels.

Public names: Instr, InstrKind, Region, TOTAL, Panels, RowTotal, LoweredKernel, RowFusionError,
lower, lower_operand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lazygrad.dtypes import DType
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import ELEMENTWISE, MOVEMENT, Op
from lazygrad.scheduling.kinds import KernelKind
from lazygrad.scheduling.scheduler import Kernel, flat_base
from lazygrad.ir.movement import fold_views, movement_chain, movement_st as _movement_st, same_index
from lazygrad.ir.panels import PANEL_A, PANEL_B, panel_source
from lazygrad.ir.view import ShapeTracker, prod


class RowFusionError(Exception):
    """A reduction fused row-wise is read through something other than a row broadcast."""

    def __init__(self, node: Node, msg: str) -> None:
        super().__init__(msg)
        self.node = node


class InstrKind(Enum):
    LOAD = "load"    # args: (buffer argument index,); st: the view the buffer is read through
    CONST = "const"  # value: the constant
    RAND = "rand"    # value: the index of its seed argument; st: the index it hashes
    ALU = "alu"      # op (elementwise), value: the node's arg; args: instruction indices
    ACC = "acc"      # a reduction's, matmul's or conv's value; args: what it accumulates
    PAD = "pad"      # args: (the padded value,); st: the pad's view (its mask); value: the fill


class Region(Enum):
    OUTER = "outer"
    INNER = "inner"   # with the instruction's stage
    ROW = "row"
    FINAL = "final"
    A = "a"
    B = "b"
    CX = "cx"
    CW = "cw"


TOTAL = -1  # the ACC value of a row total's grand total (row stages are 0, 1, ...)


@dataclass(frozen=True)
class Instr:
    """One instruction; `args` are instruction indices (ALU, PAD, ACC) or a buffer argument
    index (LOAD). `stage` is the reduction stage of an INNER instruction (0 elsewhere)."""

    kind: InstrKind
    dtype: DType
    args: tuple[int, ...]
    region: Region
    st: ShapeTracker | None = None
    op: Op | None = None
    value: Any = None
    origin: str = ""
    stage: int = 0

    def runs_in(self, region: Region, stage: int = 0) -> bool:
        return self.region is region and self.stage == stage


Loop = tuple[Region, int]  # where lowering visits a node: a region and its stage
OUTER: Loop = (Region.OUTER, 0)
ROW: Loop = (Region.ROW, 0)
FINAL: Loop = (Region.FINAL, 0)


@dataclass(frozen=True)
class Panels:
    """A matmul's operands as its kernel reads them: the stored panel buffer each one is a
    view of (ir.panels.pack_panels), or None where it is read through its own view."""

    a: Node | None = None
    b: Node | None = None


@dataclass(frozen=True)
class RowTotal:
    """A row-total kernel's last reduction, over the per-row values of its row stages."""

    rows_shape: tuple[int, ...]  # the shape of the per-row values it reduces
    op: Op                       # its reduction
    result: int                  # the instruction of the per-row value it accumulates


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
    stage_ops: list[Op] = field(default_factory=list)         # per stage: a REDUCE op
    reduce_op: Op | None = None
    row_output: bool = False
    n_seeds: int = 0              # RAND nodes, each with a seed argument after the buffers
    panels: Panels | None = None  # matmul kernels
    total: RowTotal | None = None  # row-total kernels
    # row-wise kernels writing full rows: row-output instruction -> the same value computed by
    # the last stage (the row loop may read it back instead of recomputing it)
    twins: dict[int, int] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return len(self.results)



# no instructions: the template indexes its buffers (codegen/sort.py, gather.py, attention.py, lstm.py)
_TEMPLATE_INDEXED = frozenset({KernelKind.SORT, KernelKind.GATHER, KernelKind.SCATTER, KernelKind.ATTENTION, KernelKind.LSTM})
_ROW_KINDS = frozenset({KernelKind.REDUCE, KernelKind.ROWWISE, KernelKind.ROWTOTAL})  # stages over rows


def _cite(node: Node) -> str:
    """What a kernel line's comment names: the user-level op and the user's source line."""
    return f"{node.label} @ {node.origin}" if node.label else node.origin





def lower(kernel: Kernel) -> LoweredKernel:
    roots = kernel.outputs
    buffers: list[Node] = list(roots) + list(kernel.inputs)
    arg_of = {n.uid: i for i, n in enumerate(buffers)}
    root_uids = {r.uid for r in roots}
    input_uids = {n.uid for n in kernel.inputs}
    instrs: list[Instr] = []
    memo: dict[tuple[int, ShapeTracker, Loop], int] = {}
    root = roots[0]
    lk = LoweredKernel(kernel, instrs, buffers, root.shape)
    if kernel.kind in _TEMPLATE_INDEXED:
        # the template indexes its input buffers itself; its outputs are the first buffers
        # (an attention kernel may write two: O and its logsumexp, dK and dV)
        lk.results = [-1] * len(roots) if len(roots) > 1 else []
        return lk

    reduces = kernel.reduces if kernel.kind in _ROW_KINDS else []
    total: Node | None = None
    if kernel.kind is KernelKind.ROWTOTAL:
        # the last reduction sums per-row values over all rows: it is not a row stage
        total, reduces = reduces[-1], reduces[:-1]
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
        lk.row_output = kernel.kind is KernelKind.ROWWISE and root.shape == full and root.shape != reduces[-1].shape
    matmul = kernel.core if kernel.core is not None and kernel.core.op is Op.MATMUL else None
    conv = kernel.core if kernel.core is not None and kernel.core.op is Op.CONV2D else None
    if matmul is not None:
        lk.panels = Panels(panel_source(matmul.srcs[0], PANEL_A, input_uids),
                           panel_source(matmul.srcs[1], PANEL_B, input_uids))
    rand_index = {n.uid: i for i, n in enumerate(x for x in kernel.ops if x.op is Op.RAND)}
    lk.n_seeds = len(rand_index)

    def emit(ins: Instr) -> int:
        instrs.append(ins)
        return len(instrs) - 1

    def children(node: Node, st: ShapeTracker, region: Loop) -> list[tuple[Node, ShapeTracker, Loop]]:
        if node is matmul:
            assert lk.panels is not None
            return _matmul_children(node, lk.panels)
        if node is conv:
            # operands are buffers seen through reshapes at most (the scheduler stores others)
            def inside(m: Node) -> bool:
                return m.uid in input_uids
            return [(b, ShapeTracker.from_shape(b.shape), (r, 0)) for b, r in
                    ((flat_base(node.srcs[0], inside), Region.CX), (flat_base(node.srcs[1], inside), Region.CW))]
        if node.op is Op.PAD:
            return [(node.srcs[0], _movement_st(node).compose(st), region)]
        if node.op in MOVEMENT:
            base, chain = movement_chain(node, lambda n: n.realized is not None or n.uid in input_uids)
            return [(base, fold_views(chain.compose(st)), region)]
        if node.uid in stage_of:
            assert dom_st is not None
            return [(node.srcs[0], dom_st, (Region.INNER, stage_of[node.uid]))]
        if node is total:
            return [(node.srcs[0], ShapeTracker.from_shape(node.srcs[0].shape), OUTER)]
        return [(s, st, region) for s in node.srcs]

    def lower_root(r: Node, st: ShapeTracker, region: Loop) -> int:
        stack: list[tuple[Node, ShapeTracker, Loop, bool]] = [(r, st, region, False)]
        while stack:
            node, nst, reg, ready = stack.pop()
            key = (node.uid, nst, reg)
            if key in memo:
                continue
            is_root = node.uid in root_uids and node is r
            at, stage = reg
            if (not is_root and node.uid in input_uids) or node.op is Op.BUFFER:
                memo[key] = emit(Instr(InstrKind.LOAD, node.dtype, (arg_of[node.uid],), at, nst, origin=_cite(node),
                                       stage=stage))
                continue
            if node.op is Op.CONST:
                memo[key] = emit(Instr(InstrKind.CONST, node.dtype, (), at, value=node.arg, origin=_cite(node),
                                       stage=stage))
                continue
            if node.op is Op.RAND:
                # seeds are scalar kernel arguments (in order of appearance in kernel.ops)
                memo[key] = emit(Instr(InstrKind.RAND, node.dtype, (), at, nst, value=rand_index[node.uid],
                                       origin=_cite(node), stage=stage))
                continue
            kids = children(node, nst, reg)
            if not ready:
                stack.append((node, nst, reg, True))
                for c in kids:
                    if (c[0].uid, c[1], c[2]) not in memo:
                        stack.append((c[0], c[1], c[2], False))
                continue
            vals = tuple(memo[(c[0].uid, c[1], c[2])] for c in kids)
            if node is matmul or node is conv:
                memo[key] = emit(Instr(InstrKind.ACC, node.dtype, vals, at, op=node.op, origin=_cite(node),
                                       stage=stage))
            elif node is total:
                lk.total = RowTotal(node.srcs[0].shape, node.op, vals[0])
                memo[key] = emit(Instr(InstrKind.ACC, node.dtype, vals, at, op=node.op, value=TOTAL,
                                       origin=_cite(node), stage=stage))
            elif node.uid in stage_of:
                k = stage_of[node.uid]
                lk.stage_results[k] = vals[0]
                _check_row_read(node, nst, at, full)
                memo[key] = emit(Instr(InstrKind.ACC, node.dtype, vals, at, op=node.op, value=k, origin=_cite(node),
                                       stage=stage))
            elif node.op is Op.PAD:
                memo[key] = emit(Instr(InstrKind.PAD, node.dtype, vals, at, kids[0][1], value=node.arg[1],
                                       origin=_cite(node), stage=stage))
            elif node.op in MOVEMENT or node.op is Op.CONTIGUOUS:
                memo[key] = vals[0]
            elif node.op in ELEMENTWISE:
                memo[key] = emit(Instr(InstrKind.ALU, node.dtype, vals, at, op=node.op, value=node.arg,
                                       origin=_cite(node), stage=stage))
            else:
                raise NotImplementedError(f"lowering {node.op} in kernel {kernel}")
        return memo[(r.uid, st, region)]

    for r in roots:
        region: Loop
        if total is not None:
            st, region = ShapeTracker.from_shape(r.shape), FINAL
        elif lk.row_output and r.shape == full:
            assert dom_st is not None
            st, region = dom_st, ROW
        else:
            st, region = ShapeTracker.from_shape(r.shape), OUTER
        lk.out_sts.append(st)
        lk.results.append(lower_root(r, st, region))
    if lk.row_output and reduces:
        # row-output instructions that the last stage computes too (same node, same index):
        # the row loop may read such a value back instead of recomputing it
        last = (Region.INNER, len(reduces) - 1)
        lk.twins = {i: memo[(uid, st, last)] for (uid, st, reg), i in memo.items()
                    if reg == ROW and (uid, st, last) in memo}
    lk.result = lk.results[0]
    if lk.stage_results:
        lk.inner_result = lk.stage_results[0]
    return lk


def _check_row_read(r: Node, st: ShapeTracker, region: Region, full: tuple[int, ...]) -> None:
    """A reduction's value stands for one row: it may be read per row (OUTER, at its own
    shape) or broadcast over the row (INNER stages, ROW), nothing else."""
    axes = r.arg
    keep = [i for i in range(len(full)) if i not in axes]
    # a PAD's child view is composed unfolded (its PAD instruction masks the read), so a pad
    # that a shrink undoes reaches r as two views; folded, as the scheduler's
    # ir.movement.row_reads_from sees it, it is the plain broadcast it is (fuzz seed 863407544:
    # amax, padded, then abs's gradient through the pad)
    st = fold_views(st)
    if region is Region.OUTER:
        # the epilogue loops over the output's shape; reaching r through flat reshapes only,
        # the loop index is r's flat index
        want = ShapeTracker.from_shape(st.shape)
        if prod(st.shape) != prod(r.shape):
            raise RowFusionError(r, f"{r.op.value}{r.shape} is read with a different number of elements")
    else:
        want = ShapeTracker.from_shape(r.shape).expand(full).permute(tuple(keep) + tuple(axes))
    if not same_index(st, want):
        raise RowFusionError(r, f"{r.op.value}{r.shape} is read through a view that is not a row broadcast")










def _matmul_children(node: Node, panels: Panels) -> list[tuple[Node, ShapeTracker, Loop]]:
    out = []
    for src, region, panel in ((node.srcs[0], Region.A, panels.a), (node.srcs[1], Region.B, panels.b)):
        src = panel if panel is not None else src
        out.append((src, ShapeTracker.from_shape(src.shape), (region, 0)))
    return out


















def lower_operand(kernel: Kernel, x: Node) -> LoweredKernel:
    """Lower the fused expression of node x (inside `kernel`) in x's own index space, with
    the kernel's inputs as buffers 1.. (a packing kernel computes x, then writes it tiled)."""
    k = Kernel(x, KernelKind.ELEMENTWISE, kernel.inputs, kernel.ops, kernel.reason, origins=kernel.origins)
    if x.op is Op.BUFFER or any(i is x for i in kernel.inputs):
        # x is read straight from its buffer: argument position as in the real kernel
        pos = 1 + next(i for i, n in enumerate(kernel.inputs) if n is x)
        ins = Instr(InstrKind.LOAD, x.dtype, (pos,), Region.OUTER, ShapeTracker.from_shape(x.shape), origin=_cite(x))
        return LoweredKernel(k, [ins], [kernel.output] + list(kernel.inputs), x.shape, result=0, results=[0],
                             out_sts=[ShapeTracker.from_shape(x.shape)])
    return lower(k)
