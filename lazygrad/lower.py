"""Lowering: a scheduled Kernel's node tree → a flat list of typed instructions whose loads
carry ShapeTrackers mapping the kernel's loop indices to buffer positions.

Views are composed here: a movement node contributes no instruction, it only changes the
ShapeTracker its source is read through. PAD contributes a guard (its padded region holds a
constant, which is not the same as padding the source's inputs).

Public names: Instr, LoweredKernel, lower.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dtypes import DType
from .graph import Node
from .ops import ELEMENTWISE, MOVEMENT, REDUCE, Op
from .scheduler import Kernel
from .view import ShapeTracker, prod


@dataclass(frozen=True)
class Instr:
    """kind: load | const | rand | alu | acc | pad. `args` are instruction indices (alu, pad)
    or a buffer argument index (load). `region` is 'inner' (inside a reduction loop) or
    'outer' (once per output element)."""

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
    buffers: list[Node]           # argument order: output first, then inputs
    out_shape: tuple[int, ...]    # shape of the outer loop (the output)
    red_shape: tuple[int, ...] = ()  # shape of the reduction loop (reduce kernels)
    keep_shape: tuple[int, ...] = ()  # kept dims of the reduction domain (flat == output)
    result: int = -1              # instruction index of the stored value
    inner_result: int = -1        # instruction index accumulated in the reduction loop
    reduce_op: Op | None = None
    extra: dict = field(default_factory=dict)


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


def lower(kernel: Kernel) -> LoweredKernel:
    root = kernel.output
    buffers: list[Node] = [root] + list(kernel.inputs)
    arg_of = {n.uid: i for i, n in enumerate(buffers)}
    arg_of[root.uid] = 0
    input_uids = {n.uid for n in kernel.inputs}
    instrs: list[Instr] = []
    memo: dict[tuple[int, ShapeTracker, str], int] = {}
    lk = LoweredKernel(kernel, instrs, buffers, root.shape)

    core = kernel.core
    inner_st: ShapeTracker | None = None
    if core is not None and core.op in REDUCE:
        src = core.srcs[0]
        axes = core.arg
        keep = [i for i in range(len(src.shape)) if i not in axes]
        lk.keep_shape = tuple(src.shape[i] for i in keep)
        lk.red_shape = tuple(src.shape[i] for i in axes)
        lk.reduce_op = core.op
        inner_st = ShapeTracker.from_shape(src.shape).permute(tuple(keep) + tuple(axes))

    rand_index = {n.uid: i for i, n in enumerate(x for x in kernel.ops if x.op is Op.RAND)}
    lk.extra["n_seeds"] = len(rand_index)

    def emit(ins: Instr) -> int:
        instrs.append(ins)
        return len(instrs) - 1

    # iterative post-order over (node, st, region); value of an item = instruction index
    top = (root, ShapeTracker.from_shape(root.shape), "outer", True)
    stack: list[tuple[Node, ShapeTracker, str, bool, bool]] = [(*top, False)]
    while stack:
        node, st, region, is_root, ready = stack.pop()
        key = (node.uid, st, region)
        if key in memo:
            continue
        as_input = (not is_root) and node.uid in input_uids
        if as_input or (node.op is Op.BUFFER):
            memo[key] = emit(Instr("load", node.dtype, (arg_of[node.uid],), region, st, origin=node.origin))
            continue
        if node.op is Op.CONST:
            memo[key] = emit(Instr("const", node.dtype, (), region, value=node.arg, origin=node.origin))
            continue
        if node.op is Op.RAND:
            # seeds are scalar kernel arguments (in order of appearance in kernel.ops)
            memo[key] = emit(Instr("rand", node.dtype, (), region, st, value=rand_index[node.uid],
                                   origin=node.origin))
            continue
        children = _children(node, st, region, core, inner_st)
        if not ready:
            stack.append((node, st, region, is_root, True))
            for c in children:
                if (c[0].uid, c[1], c[2]) not in memo:
                    stack.append((c[0], c[1], c[2], False, False))
            continue
        vals = tuple(memo[(c[0].uid, c[1], c[2])] for c in children)
        if node.op in MOVEMENT:
            if node.op is Op.PAD:
                child_st = children[0][1]
                memo[key] = emit(Instr("pad", node.dtype, vals, region, child_st, value=node.arg[1],
                                       origin=node.origin))
            else:
                memo[key] = vals[0]
        elif node is core and core.op in REDUCE:
            lk.inner_result = vals[0]
            memo[key] = emit(Instr("acc", node.dtype, vals, "outer", op=node.op, origin=node.origin))
        elif node.op in ELEMENTWISE:
            memo[key] = emit(Instr("alu", node.dtype, vals, region, op=node.op, value=node.arg,
                                   origin=node.origin))
        elif node.op is Op.CONTIGUOUS:
            memo[key] = vals[0]
        else:
            raise NotImplementedError(f"lowering {node.op} in kernel {kernel}")
    lk.result = memo[(root.uid, ShapeTracker.from_shape(root.shape), "outer")]
    return lk


def _children(node: Node, st: ShapeTracker, region: str, core: Node | None,
              inner_st: ShapeTracker | None) -> list[tuple[Node, ShapeTracker, str]]:
    if node.op in MOVEMENT:
        return [(node.srcs[0], _movement_st(node).compose(st), region)]
    if node is core and node.op in REDUCE:
        assert inner_st is not None
        # the outer index is the flat index of the kept dims: the epilogue reaches the core
        # through flat reshapes only (schedule guarantees it)
        return [(node.srcs[0], inner_st, "inner")]
    return [(s, st, region) for s in node.srcs]
