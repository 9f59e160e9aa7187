"""Codegen: a lowered kernel → OpenCL C source and launch sizes, through Jinja templates.

Decisions made here: which loop dimensions merge (every view reads them as one strided run),
the vector width (elementwise work on floatN vectors with a scalar tail: PoCL vectorises
builtins on vector types well and scalar code poorly), and the reduction strategy (one
output per work-item with vector loads when there are enough outputs to fill the device,
a work-group tree reduction otherwise).

Public names: RenderedKernel, op_expr, render_elementwise, render_reduce, render_rowtotal, render_matmul,
render_pack, matmul_candidates, MatmulGeometry (codegen.dispatch: render, RENDERERS).
"""
from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from lazygrad.dtypes import DType, bool_, unsigned_cl
from lazygrad.dtypes import float32 as _FLOAT32
from lazygrad.codegen.lower import TOTAL, Instr, InstrKind, LoweredKernel, Region, lower_operand
from lazygrad.ir.panels import PANEL_B, pack_source
from lazygrad.ir.ops import MOVEMENT, CL_CONSTANTS, PRIMITIVES, Op, cl_constant, reduce_identity
from lazygrad.runtime.device import current_target, get_device
from lazygrad import templating  # templating.template: the Oclgrind run spies on which get used
from lazygrad.runtime.tune import MatmulConfig
from lazygrad.ir.view import ShapeTracker, View, prod, s_div, s_mod
from lazygrad.scheduling.kinds import KernelKind


@dataclass
class RenderedKernel:
    name: str
    source: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    flops: int
    bytes: int
    # scalar arguments after the buffers (and RAND seeds), typed numpy scalars: values that vary
    # between otherwise identical kernels (an LSTM step's time offset) so they share one program
    scalars: tuple = ()


# --- literals and types -------------------------------------------------------------------------
def vtype(dt: DType, w: int) -> str:
    return dt.cl + (str(w) if w > 1 else "")


def literal(value: float | int | bool, dt: DType) -> str:
    """`value` as an OpenCL C literal of type `dt`, always an atom: a negative number is
    parenthesised, so an operator before it never fuses with its sign (`-` of -7 is `(-(-7))`,
    not the decrement `--7`)."""
    if dt is bool_:
        return "1" if value else "0"
    if dt.is_int:
        bits = dt.bits
        # a Python int out of the dtype's range wraps into it, like torch's scalars (x - 2**31
        # on int32 subtracts INT_MIN); a wider literal would also change the expression's type
        if dt.is_unsigned:
            v = int(value) % 2 ** bits
            return f"{v}u" if bits == 32 else f"(({dt.cl}){v})"
        v = (int(value) + 2 ** (bits - 1)) % 2 ** bits - 2 ** (bits - 1)
        if v == -(2 ** (bits - 1)):  # "-2147483648" is minus a literal too big for int
            s = f"({v + 1}L-1)" if dt.name == "int64" else f"({v + 1}-1)"
        else:
            s = f"{v}L" if dt.name == "int64" else str(v)
            s = f"({s})" if v < 0 else s
        # char and short literals are typed: an int literal would make a builtin's overload
        # ambiguous (max(char, int))
        return f"(({dt.cl}){s})" if bits < 32 else s
    v = float(value)
    if math.isnan(v):
        s = "NAN"
    elif math.isinf(v):
        s = "INFINITY" if v > 0 else "(-INFINITY)"
    else:
        s = repr(v)
        if "e" not in s and "." not in s:
            s += ".0"
        s = s + ("f" if dt.name == "float32" else "")
        if s.startswith("-"):
            s = f"({s})"
    if dt.name == "float16":
        return f"((half){s})"
    if dt.name == "float64" and s in ("NAN", "INFINITY", "(-INFINITY)"):
        return f"((double){s})"
    return s


def vliteral(value: float | int | bool, dt: DType, w: int) -> str:
    lit = literal(value, dt)
    if w == 1:
        return lit
    if dt is bool_:  # vector bools are all-ones masks
        lit = "-1" if value else "0"
    return f"(({vtype(dt, w)})({lit}))"


_MASK_INT = {1: "char", 2: "short", 4: "int", 8: "long"}


def op_expr(op: Op, args: list[str], in_dt: DType, out_dt: DType, w: int) -> str:
    """The OpenCL expression of elementwise `op` on operands `args` (already typed)."""
    p = PRIMITIVES[op]
    if op is Op.WHERE:
        c, a, b = args
        if w == 1:
            if out_dt.is_float and literal(-0.0, out_dt) in (a, b):
                # LLVM 14 (PoCL 3.0) reads `x < 0 ? -0.0 : x` as maxnum(x, -0.0), which may give
                # -0.0 for x = +0.0 (it takes the constant -0.0 for a non-zero), and its work-item
                # vectorizer does so even in scalar code (clip(x, -0.0) turned +0.0 into -0.0: fuzz
                # seed 772435783); the select() builtin is not pattern-matched. It is ~7x slower
                # than ?: in scalar code (no implicit vectorization), so only here.
                return f"select({b},{a},({_MASK_INT[out_dt.itemsize]})({c}))"
            return f"({c}?{a}:{b})"
        mask = _MASK_INT[out_dt.itemsize if out_dt is not bool_ else 4]
        return f"select({b},{a},convert_{mask}{w}({c}))"
    if op is Op.CAST:
        return cast_expr(args[0], in_dt, out_dt, w)
    if op is Op.BITCAST:  # OpenCL's as_type: the same bits, a type of the same size
        return f"as_{out_dt.cl}{w if w > 1 else ''}({args[0]})"
    fmt = p.cl_bool if (p.cl_bool and in_dt is bool_) else p.cl_int if (p.cl_int and not in_dt.is_float) else p.cl
    assert fmt is not None, op
    if p.wraps and in_dt.is_int:
        return wrapping(fmt, in_dt, w).format(*args)
    if op in (Op.CMPLT, Op.CMPEQ) and in_dt.is_float:
        # -0.0 and +0.0 compare equal, so a comparison with +0.0 is the same test; with the
        # constant -0.0 LLVM 14 folds the select reading it into a wrong maxnum (see WHERE)
        args = [vliteral(0.0, in_dt, w) if a == vliteral(-0.0, in_dt, w) else a for a in args]
    named = {k: vliteral(cl_constant(k, in_dt.name), in_dt, w) for k in CL_CONSTANTS if "{" + k + "}" in fmt}
    expr = fmt.format(*args, one=vliteral(1, in_dt, w), zero=vliteral(0, in_dt, w), **named)
    if op in (Op.CMPLT, Op.CMPEQ) and w > 1 and in_dt.itemsize != 4:
        expr = f"convert_int{w}({expr})"  # vector comparisons give masks as wide as the operands
    if op is Op.NOT and w > 1 and in_dt is not bool_ and in_dt.itemsize != 4:
        expr = f"convert_int{w}({expr})"
    return expr


def wrapping(fmt: str, d: DType, w: int) -> str:
    """`fmt` (operands {0}, {1} or {a}, {b}) computed on the bits of integer type `d` as
    unsigned, where overflow wraps (signed overflow is undefined in OpenCL C); the result
    is reinterpreted back, so it is two's complement wrapping like torch's. Scalar char and
    short operands are promoted to int by C before the operator (and ushort * ushort can
    overflow that int), so they are computed as uint and truncated to their width; vector
    operators work in the element type itself."""
    names = re.findall(r"\{(\w*)\}", fmt)
    if not names:
        return fmt
    s, u = vtype(d, w), unsigned_cl(d) + (str(w) if w > 1 else "")
    if w == 1 and d.itemsize < 4:
        body = fmt.replace("{", "((uint)({").replace("}", "}))")
        return f"(({u})({body}))" if d.is_unsigned else f"as_{s}(({u})({body}))"
    if d.is_unsigned:  # uint, uchar vectors: the operators wrap already
        return fmt
    return f"as_{s}" + fmt.replace("{", f"as_{u}(" + "{").replace("}", "})")


def combine(op: Op, d: DType, w: int) -> str:
    """A reduction's combine step on operands {a} and {b} of type `d` with `w` lanes: its row
    of the op table (the integer form for integers, wrapping where the op wraps). Float max
    propagates NaN like numpy and torch (fmax alone would drop it: max([1, nan]) = 1),
    integer max is the builtin."""
    p = PRIMITIVES[op]
    fmt = (p.cl if d.is_float else p.cl_int or p.cl).format("{a}", "{b}")
    return wrapping(fmt, d, w) if p.wraps and d.is_int else fmt


def cast_expr(x: str, src: DType, dst: DType, w: int) -> str:
    if src == dst:
        return x
    if src.is_float and dst.is_int:
        # A C conversion of NaN or of an out-of-range float is undefined (x86 gives INT_MIN,
        # GPUs saturate). Defined here as OpenCL's saturating conversion: rounds toward zero,
        # too large -> the type's max/min, NaN -> 0 (spelled out: PoCL's _sat gives INT_MIN).
        if w == 1:
            return f"(isnan({x})?0:convert_{dst.cl}_sat({x}))"
        return (f"select(convert_{dst.cl}{w}_sat({x}),({dst.cl}{w})(0),"
                f"convert_{_MASK_INT[dst.itemsize]}{w}(isnan({x})))")
    if _wraps_into_signed(src, dst):
        # an integer out of a signed type's range converts implementation-defined in C99 (which
        # OpenCL's conversions follow); into the unsigned type of its width it wraps, defined
        u = unsigned_cl(dst) + (str(w) if w > 1 else "")
        return f"as_{vtype(dst, w)}(({u})({x}))" if w == 1 else f"as_{vtype(dst, w)}(convert_{u}({x}))"
    if w == 1:
        if dst is bool_:
            return f"({x}!={literal(0, src)})"
        return f"(({dst.cl})({x}))"
    if dst is bool_:
        e = f"({x}!={vliteral(0, src, w)})"
        return e if src.itemsize == 4 or src is bool_ else f"convert_int{w}({e})"
    if src is bool_:
        return f"convert_{dst.cl}{w}(-({x}))"
    return f"convert_{dst.cl}{w}({x})"


def _wraps_into_signed(src: DType, dst: DType) -> bool:
    """An integer cast whose values may fall outside the signed destination's range: from a
    wider integer, or from the unsigned one of the same width (torch wraps them)."""
    return (src.is_int and dst.is_int and not dst.is_unsigned and
            (src.itemsize > dst.itemsize or (src.itemsize == dst.itemsize and src.is_unsigned)))


# --- loop-dimension merging ---------------------------------------------------------------------
def _mergeable(sts: list[ShapeTracker], d: int) -> bool:
    for st in sts:
        v = st.views[-1]
        if v.strides[d] != v.strides[d + 1] * v.shape[d + 1]:
            return False
        if v.mask is not None and (v.mask[d] != (0, v.shape[d]) or v.mask[d + 1] != (0, v.shape[d + 1])):
            return False
    return True


def merge_dims(shape: tuple[int, ...], sts: list[ShapeTracker], segments: list[int]) -> tuple[int, ...]:
    """Merge adjacent dims (within each segment of lengths `segments`) that every view reads
    as one strided run; drop size-1 dims."""
    out: list[int] = []
    start = 0
    for seglen in segments:
        seg: list[int] = []
        for d in range(start, start + seglen):
            s = shape[d]
            if s == 1:
                continue
            if seg and _mergeable_pair(shape, sts, d, start):
                seg[-1] *= s
            else:
                seg.append(s)
        out.extend(seg if seg else [])
        start += seglen
    return tuple(out)


def _mergeable_pair(shape: tuple[int, ...], sts: list[ShapeTracker], d: int, seg_start: int) -> bool:
    # previous non-1 dim within the segment
    p = d - 1
    while p >= seg_start and shape[p] == 1:
        p -= 1
    if p < seg_start:
        return False
    for st in sts:
        v = st.views[-1]
        if v.strides[p] != v.strides[d] * v.shape[d]:
            return False
        if v.mask is not None and (v.mask[p] != (0, v.shape[p]) or v.mask[d] != (0, v.shape[d])):
            return False
    return True


def _unravel(flat: str, shape: tuple[int, ...], names: list[str], lines: list[str], ity: str) -> None:
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        e = flat if acc == 1 else f"({flat}/{acc})"
        if d > 0:
            e = f"({e}%{shape[d]})"
        lines.append(f"{ity} {names[d]} = {e};")
        acc *= shape[d]


# --- instruction emission -------------------------------------------------------------------------
class Emitter:
    """Renders instructions of one region at one vector width into SSA lines."""

    def __init__(self, lk: LoweredKernel, names: list[str], w: int, shape: tuple[int, ...],
                 lines: list[str], prefix: str, ity: str) -> None:
        self.lk, self.names, self.w, self.shape = lk, names, w, shape
        self.lines, self.prefix, self.ity = lines, prefix, ity
        self.var: dict[int, str] = {}
        self.recip: dict[int, tuple[str, str]] = {}  # row-invariant divisor -> hoisted (reciprocal, scale)

    def st(self, st: ShapeTracker) -> ShapeTracker:
        return st.reshape(self.shape) if st.shape != self.shape else st

    def load_expr(self, buf: str, dt: DType, st: ShapeTracker) -> str:
        st = self.st(st)
        w = self.w
        if w == 1:
            idx, valid = st.expr(self.names)
            e = f"{buf}[{idx}]"
            if dt is bool_:
                e = f"((int){e})"
            return f"({' && '.join(valid)}?{e}:{literal(0, dt)})" if valid else e
        v = st.views[-1]
        last_mask_ok = v.mask is None or v.mask[-1] == (0, v.shape[-1])
        if st.single and last_mask_ok and v.strides[-1] in (0, 1):
            idx, valid = st.expr(self.names)
            if v.strides[-1] == 1:
                e = f"vload{w}(0,{buf}+{idx})"
                if dt is bool_:
                    e = f"(-convert_int{w}({e}))"
            else:
                e = f"(({vtype(dt, w)})({buf}[{idx}]))"
                if dt is bool_:
                    e = f"(-(({vtype(dt, w)})((int){buf}[{idx}])))"
            return f"({' && '.join(valid)}?{e}:{vliteral(0, dt, w)})" if valid else e
        return self.gather_expr(buf, dt, st)

    def _expr(self, st: ShapeTracker, names: list[str]) -> tuple[str, list[str]]:
        """Buffer index and validity terms of `st` at loop indices `names`."""
        return st.expr(names)

    def _lane(self, j: int) -> str:
        """The innermost loop index of vector lane j."""
        return f"({self.names[-1]}+{j})"

    def gather_expr(self, buf: str, dt: DType, st: ShapeTracker) -> str:
        """A vector assembled lane by lane (views that no vector load can read)."""
        lanes = []
        for j in range(self.w):
            idx, valid = self._expr(st, self.names[:-1] + [self._lane(j)])
            e = f"{buf}[{idx}]"
            if dt is bool_:
                e = f"(int){e}"
            lanes.append(f"({' && '.join(valid)}?{e}:{literal(0, dt)})" if valid else e)
        g = f"(({vtype(dt, self.w)})({','.join(lanes)}))"
        return f"(-{g})" if dt is bool_ else g

    def rand_expr(self, seed: int, st: ShapeTracker) -> str:
        st = self.st(st)
        if self.w == 1:
            idx, _ = st.expr(self.names)
            return f"lg_rand(seed{seed},(uint)({idx}))"
        lanes = []
        for j in range(self.w):
            idx, _ = st.expr(self.names[:-1] + [f"({self.names[-1]}+{j})"])
            lanes.append(f"lg_rand(seed{seed},(uint)({idx}))")
        return f"((float{self.w})({','.join(lanes)}))"

    def valid_expr(self, st: ShapeTracker) -> list[str] | str:
        st = self.st(st)
        if self.w == 1:
            return st.expr(self.names)[1]
        v = st.views[-1]
        if st.single and (v.mask is None or v.mask[-1] == (0, v.shape[-1])):
            return st.expr(self.names)[1]
        # per-lane validity as a mask vector
        lanes = []
        for j in range(self.w):
            valid = st.expr(self.names[:-1] + [f"({self.names[-1]}+{j})"])[1]
            lanes.append(f"(({' && '.join(valid)})?-1:0)" if valid else "-1")
        return f"((int{self.w})({','.join(lanes)}))"

    def emit(self, i: int, ins: Instr) -> str:
        w = self.w
        name = f"{self.prefix}{i}"
        ty = vtype(ins.dtype, w)
        comment = f"  // {ins.origin}" if ins.origin else ""
        if ins.kind is InstrKind.LOAD:
            e = self.load_expr(f"buf{ins.args[0]}", ins.dtype, ins.st)
        elif ins.kind is InstrKind.CONST:
            self.var[i] = vliteral(ins.value, ins.dtype, w)
            return self.var[i]
        elif ins.kind is InstrKind.RAND:
            e = self.rand_expr(int(ins.value), ins.st)
        elif ins.kind is InstrKind.ALU and ins.op is Op.DIV and ins.args[1] in self.recip:
            inv, scale = self.recip[ins.args[1]]
            e = f"(({self.var[ins.args[0]]}*{inv})*{scale})"
        elif ins.kind is InstrKind.ALU:
            srcs = [self.lk.instrs[a] for a in ins.args]
            in_dt = srcs[-1].dtype if ins.op is Op.WHERE else srcs[0].dtype
            e = op_expr(ins.op, [self.var[a] for a in ins.args], in_dt, ins.dtype, w)
        elif ins.kind is InstrKind.PAD:
            valid = self.valid_expr(ins.st)
            inner = self.var[ins.args[0]]
            fill = vliteral(ins.value, ins.dtype, w)
            if isinstance(valid, list):
                e = f"(({' && '.join(valid)})?{inner}:{fill})" if valid else inner
            else:
                mask = _MASK_INT[ins.dtype.itemsize if ins.dtype is not bool_ else 4]
                e = f"select({fill},{inner},convert_{mask}{w}({valid}))"
        else:
            raise AssertionError(ins.kind)
        self.lines.append(f"{ty} {name} = {e};{comment}")
        self.var[i] = name
        return name

    def run(self, region: Region, roots: list[int] | None = None, stage: int = 0) -> None:
        """Emit the instructions of `region` (and `stage`, for INNER) in order; with `roots`,
        only those they read (through values not bound yet)."""
        needed: set[int] | None = None
        if roots is not None:
            needed, stack = set(), [r for r in roots if r not in self.var]
            while stack:
                i = stack.pop()
                if i not in needed:
                    needed.add(i)
                    stack.extend(a for a in self.lk.instrs[i].args
                                 if self.lk.instrs[i].kind in _COMPUTED and a not in self.var)
        for i, ins in enumerate(self.lk.instrs):
            if ins.runs_in(region, stage) and ins.kind is not InstrKind.ACC and i not in self.var and \
                    (needed is None or i in needed):
                self.emit(i, ins)

    def hoist(self, region: Region, lines: list[str], stage: int = 0) -> None:
        """Emit into `lines` (before a row loop) the instructions of `region` (and `stage`)
        that depend only on constants and earlier reductions: computed once per row, not once
        per element."""
        invariant: set[int] = set()
        body, self.lines = self.lines, lines
        for i, ins in enumerate(self.lk.instrs):
            here = ins.runs_in(region, stage)
            if ins.kind in (InstrKind.CONST, InstrKind.ACC):
                invariant.add(i)
                if ins.kind is InstrKind.CONST and here and i not in self.var:
                    self.emit(i, ins)  # binds the literal, writes no line
            elif here and ins.kind is InstrKind.ALU and all(a in invariant for a in ins.args):
                invariant.add(i)
                if i not in self.var:
                    self.emit(i, ins)
            elif (here and ins.kind is InstrKind.ALU and ins.op is Op.DIV and ins.dtype.is_float
                  and ins.args[1] in invariant and ins.args[1] not in self.recip):
                # x / s with s fixed for the row: one division per row, a multiply per element
                # (as torch's softmax does; differs from x / s by at most an ulp or two). The
                # reciprocal of a tiny s overflows (0 / 4e-45 came out 0 * inf = NaN): such an
                # s is scaled by a power of two first and the product scaled back, exactly
                d = ins.args[1]
                if d not in self.var:
                    self.emit(d, self.lk.instrs[d])
                name, sc = f"{self.prefix}inv{d}", f"{self.prefix}sc{d}"
                ty, w = vtype(ins.dtype, self.w), self.w
                tiny, up = _RECIP_SCALE[ins.dtype.name]
                self.lines.append(f"{ty} {sc} = ((fabs({self.var[d]})<{vliteral(tiny, ins.dtype, w)})?"
                                  f"{vliteral(up, ins.dtype, w)}:{vliteral(1, ins.dtype, w)});")
                self.lines.append(f"{ty} {name} = ({vliteral(1, ins.dtype, w)}/({self.var[d]}*{sc}));")
                self.recip[d] = (name, sc)
        self.lines = body


_COMPUTED = (InstrKind.ALU, InstrKind.PAD)  # the instructions whose args are instructions to compute first

# dtype -> (below this |s| the reciprocal 1/s may overflow, the power of two s is scaled by)
_RECIP_SCALE = {"float16": (2.0 ** -14, 2.0 ** 16), "float32": (2.0 ** -126, 2.0 ** 64),
                "float64": (2.0 ** -1022, 2.0 ** 64)}


def store_expr(val: str, dt: DType, w: int, idx: str, buf: int = 0) -> str:
    if w == 1:
        v = f"(uchar)({val})" if dt is bool_ else val
        return f"buf{buf}[{idx}] = {v};"
    v = f"convert_uchar{w}(-({val}))" if dt is bool_ else val
    return f"vstore{w}({v},0,buf{buf}+{idx});"


def store_st(em: Emitter, val: str, dt: DType, st: ShapeTracker, buf: int) -> str:
    """Store through a view of the output (row-wise kernels whose loop order is permuted)."""
    st = em.st(st)
    w = em.w
    v = st.views[-1]
    if w == 1 or (st.single and v.strides[-1] == 1 and v.mask is None):
        idx, _ = st.expr(em.names)
        return store_expr(val, dt, w, idx, buf)
    parts = []
    for j in range(w):
        idx, _ = st.expr(em.names[:-1] + [f"({em.names[-1]}+{j})"])
        lane = f"{val}.s{j:x}"
        parts.append(store_expr(f"(-{lane})" if dt is bool_ else lane, dt, 1, idx, buf))
    return " ".join(parts)


# --- kernels --------------------------------------------------------------------------------------
def vector_width(dt_bytes: int) -> int:
    """Lanes per work-item for elementwise and row loops whose widest register element has
    `dt_bytes` bytes: the target's register bits / element bits, among widths its probe
    passed (16 floats on AVX-512: x*2+1 over 16M ran 5.7 -> 3.8 ms against float8)."""
    return current_target().loop_lanes(dt_bytes)


def reg_bytes(dtypes) -> int:
    """Widest element of the vectors a kernel holds in registers (a bool is an int there).
    char and short count as 4 bytes too: the probe verifies int and float vectors only, so a
    char kernel takes the lanes of a verified int vector (char16 at most on AVX-512), not the
    64 lanes of a 512-bit register nothing has checked."""
    return max((4 if d is bool_ else max(d.itemsize, 4) if d.is_int else d.itemsize for d in dtypes),
               default=4)


def _widths(widest: int) -> list[int]:
    """Candidate vector widths, widest first (a shape the widest does not divide may take a
    narrower one instead of falling back to scalar code)."""
    return [v for v in (16, 8, 4, 2) if v <= widest]


_VIEW_OPS = MOVEMENT | {Op.BUFFER, Op.CONST}


def _kernel_name(lk: LoweredKernel, prefix: str) -> str:
    """prefix_<the user-level ops of the kernel, first four>_<output shape>: `E_relu_exp_4096`,
    not the primitives those ops are made of (`Kernel.op_names` keeps them)."""
    seen: list[str] = []
    for n in lk.kernel.ops:
        if n.op in _VIEW_OPS:
            continue
        v = _IDENT.sub("_", n.label or n.op.value).strip("_") or n.op.value
        if v not in seen:
            seen.append(v)
    ops = "_".join(seen[:4]) or "copy"
    shape = "x".join(str(s) for s in lk.out_shape) or "1"
    return f"{prefix}_{ops}_{shape}"


_IDENT = re.compile(r"[^A-Za-z0-9_]+")


def _params(lk: LoweredKernel) -> list[str]:
    params = []
    n_out = max(1, lk.n_outputs)
    for i, n in enumerate(lk.buffers):
        q = "" if i < n_out else "const "
        params.append(f"__global {q}{n.dtype.cl_store}* restrict buf{i}")
    params += [f"const uint seed{i}" for i in range(lk.n_seeds)]
    return params


def _extensions(lk: LoweredKernel) -> list[str]:
    names = {i.dtype.name for i in lk.instrs} | {n.dtype.name for n in lk.buffers}
    ext = []
    if "float16" in names:
        ext.append("cl_khr_fp16")
    if "float64" in names:
        ext.append("cl_khr_fp64")
    return ext


def _uses_rand(lk: LoweredKernel) -> bool:
    return any(i.kind is InstrKind.RAND for i in lk.instrs)


def _local_for(n_items: int, cap: int = 64) -> int:
    """Largest power-of-two work-group size ≤ cap that keeps padding waste small."""
    lsz = cap
    while lsz > 1 and lsz * 2 > n_items:
        lsz //= 2
    return max(1, lsz)


def _origin_lines(lk: LoweredKernel, width: int = 96) -> list[str]:
    """Header comment lines naming, for every fused op, the user source line that made it
    (inline `// file:line` comments only reach ops that emit a statement: not views, constants
    or the reduction itself)."""
    lines: list[str] = []
    for origin, ops in lk.kernel.ops_by_origin():
        text = " ".join(ops).replace("*/", "* /")
        wrapped = textwrap.wrap(text, width=max(24, width - len(origin)), break_on_hyphens=False) or [""]
        lines.append(f"{origin}: {wrapped[0]}")
        lines.extend(" " * (len(origin) + 2) + w for w in wrapped[1:])
    return lines


def _common(lk: LoweredKernel) -> dict:
    return dict(extensions=_extensions(lk), rand=_uses_rand(lk), params=_params(lk),
                origin_lines=_origin_lines(lk), reason=str(lk.kernel.reason), kind=lk.kernel.kind.value,
                n_ops=sum(1 for n in lk.kernel.ops if n.op is not Op.BUFFER))


def render_elementwise(lk: LoweredKernel) -> RenderedKernel:
    root = lk.kernel.output
    n = prod(lk.out_shape)
    ity = "long" if n >= 2**31 - 64 else "int"
    sts = [i.st for i in lk.instrs if i.st is not None]
    out_st = ShapeTracker.from_shape(lk.out_shape)
    shape = merge_dims(lk.out_shape, sts + [out_st], [len(lk.out_shape)]) or (1,)
    widest = vector_width(reg_bytes([root.dtype] + [i.dtype for i in lk.instrs]))
    names = [f"x{d}" for d in range(len(shape))]
    vec_lines: list[str] = []
    tail_lines: list[str] = []
    inner = shape[-1]
    fits = [v for v in _widths(widest) if inner % v == 0 and n >= v]
    if fits:
        mode, w = "vector", fits[0]
        nitems = n // w
    elif widest > 1 and len(shape) == 1 and n >= 4 * widest:
        mode, w = "vector_tail", widest
        nitems = n // w + 1
    else:
        mode, w, nitems = "scalar", 1, n
    if mode != "scalar":
        lines = vec_lines
        vshape = shape[:-1] + (inner // w,) if mode == "vector" else (n // w,)
        _unravel("gid", vshape, names, lines, ity)
        lines.append(f"{names[-1]} *= {w};")
        em = Emitter(lk, names, w, shape, lines, "v", ity)
        em.run(Region.OUTER)
        for b, (res, out) in enumerate(zip(lk.results, lk.kernel.outputs)):
            lines.append(store_expr(em.var[res], out.dtype, w, "gid*" + str(w), b))
    if mode in ("vector_tail", "scalar"):
        lines = tail_lines
        em = Emitter(lk, ["t"] if mode == "vector_tail" else names, 1, shape, lines, "s", ity)
        if mode == "scalar":
            _unravel("gid", shape, names, lines, ity)
        em.run(Region.OUTER)
        for b, (res, out) in enumerate(zip(lk.results, lk.kernel.outputs)):
            lines.append(store_expr(em.var[res], out.dtype, 1, "t" if mode == "vector_tail" else "gid", b))
    lsz = _local_for(nitems)
    gsz = (nitems + lsz - 1) // lsz * lsz
    src = templating.template("elementwise.cl.j2").render(
        name=_kernel_name(lk, "E"), mode=mode, w=w, n=n, nitems=nitems, ity=ity,
        guard=gsz != nitems, vec_lines=vec_lines, tail_lines=tail_lines, tail_start=(n // w) * w,
        **_common(lk))
    return RenderedKernel(_kernel_name(lk, "E"), src, (gsz,), (lsz,), _flops(lk, n), _bytes(lk))


def _split_dims(mdom: tuple[int, ...], n_keep: int) -> tuple[list[int], list[int]]:
    """Split merged domain dims back into kept and reduced parts by their products."""
    keep_m: list[int] = []
    acc, k = 1, 0
    while acc < n_keep and k < len(mdom):
        keep_m.append(mdom[k])
        acc *= mdom[k]
        k += 1
    return keep_m or [1], list(mdom[k:]) or [1]



@dataclass
class RowLoops:
    """The row domain of a reduction / row-wise kernel after merging dims: kept dims (one
    row each, flat index o) and reduced dims (the loop over a row, w elements per step)."""

    n_out: int
    n_red: int
    ity: str
    keep_m: list[int]
    red_m: list[int]
    oshape: tuple[int, ...]
    w: int

    @property
    def mshape(self) -> tuple[int, ...]:
        return tuple(self.keep_m) + tuple(self.red_m)

    @property
    def keep_names(self) -> list[str]:
        return [f"k{d}" for d in range(len(self.keep_m))]

    @property
    def red_names(self) -> list[str]:
        return [f"r{d}" for d in range(len(self.red_m))]

    def chunk_lines(self) -> list[str]:
        """Index variables of chunk `rr` of a row."""
        lines: list[str] = []
        _unravel("rr", tuple(self.red_m[:-1]) + (self.red_m[-1] // self.w,), self.red_names, lines, self.ity)
        if self.w > 1:
            lines.append(f"{self.red_names[-1]} *= {self.w};")
        return lines


def _row_loops(lk: LoweredKernel, outer_shape: tuple[int, ...]) -> RowLoops:
    n_out = prod(lk.keep_shape)
    n_red = prod(lk.red_shape)
    ity = "long" if max(n_out * max(n_red, 1), 1) >= 2**31 - 64 else "int"
    row_sts = [i.st for i in lk.instrs if i.st is not None and i.region not in (Region.OUTER, Region.FINAL)]
    row_sts += [st for st in lk.out_sts if lk.row_output]
    outer_sts = [i.st for i in lk.instrs if i.region is Region.OUTER and i.st is not None]
    dom = lk.keep_shape + lk.red_shape
    mdom = merge_dims(dom, row_sts or [ShapeTracker.from_shape(dom)], [len(lk.keep_shape), len(lk.red_shape)])
    keep_m, red_m = _split_dims(mdom, n_out)
    oshape = merge_dims(outer_shape, outer_sts + [ShapeTracker.from_shape(outer_shape)], [len(outer_shape)]) or (1,)
    itemsize = reg_bytes([n.dtype for n in lk.buffers] + [i.dtype for i in lk.instrs])
    # the widest that divides the row (float16 on AVX-512: softmax over 1024 columns ran 1.2x
    # faster than with float8)
    w = next((v for v in _widths(vector_width(itemsize)) if red_m[-1] % v == 0 and n_red >= v), 1)
    return RowLoops(n_out, n_red, ity, keep_m, red_m, oshape, w)


@dataclass(frozen=True)
class Stash:
    """A value the last reduction stage computes and the row output needs again (softmax's
    exp(x - max)): the stage stores it into output buffer `buf` and the row loop reads it back
    (a load from cache instead of recomputing a transcendental)."""

    row: int     # the instruction in the row region
    stage: int   # its twin in the last stage's region
    buf: int     # the output buffer it passes through


def _cone_flops(lk: LoweredKernel, i: int, region: Region) -> int:
    """Flops of the instructions of `region` that value i is computed from; 0 when none of them
    reads the row (a per-row constant is hoisted out of the loop anyway)."""
    seen, stack, total, per_element = set(), [i], 0, False
    while stack:
        j = stack.pop()
        ins = lk.instrs[j]
        if j in seen or ins.region is not region:
            continue
        seen.add(j)
        per_element |= ins.kind in (InstrKind.LOAD, InstrKind.RAND)
        if ins.kind in _COMPUTED:
            total += PRIMITIVES[ins.op].flops if ins.kind is InstrKind.ALU and ins.op is not None else 0
            stack.extend(ins.args)
    return total if per_element else 0


STASH_MIN_FLOPS = 8  # a transcendental (exp, log, tanh ...) in the recomputed cone


def choose_stash(lk: LoweredKernel) -> Stash | None:
    """The costliest value shared by the last stage and the row output, if worth a store and
    a load, and an output buffer of its type it can pass through."""
    twins = lk.twins
    if not twins:
        return None
    frontier = {r for r in lk.results if r in twins}
    for i, ins in enumerate(lk.instrs):
        if ins.region is Region.ROW and i not in twins and ins.kind in _COMPUTED:
            frontier.update(a for a in ins.args if a in twins)
    cost = {i: _cone_flops(lk, i, Region.ROW) for i in frontier}
    for i in sorted(frontier, key=lambda i: (-cost[i], i)):
        if cost[i] < STASH_MIN_FLOPS:
            break
        dt = lk.instrs[i].dtype
        for b, (out, st) in enumerate(zip(lk.kernel.outputs, lk.out_sts)):
            v = st.views[-1]
            if out.dtype == dt and dt.is_float and st.single and v.mask is None:
                return Stash(i, twins[i], b)
    return None


STAGE_UNROLL = 4  # independent accumulators per stage


def _stage_blocks(lk: LoweredKernel, rl: RowLoops, stash: Stash | None = None, step: int = 1) -> list[dict]:
    """One loop over the row per reduction stage, accumulating acc{k} (w lanes), folded into
    the scalar racc{k}; the last stage also writes the stashed value, if any. The loop body is
    written with the accumulator as `@ACC`: the template runs it for STAGE_UNROLL consecutive
    chunks into as many accumulators, because one accumulator makes every step wait for the
    previous one (a compare-and-select max ran 4x slower than with four)."""
    stages = []
    w = rl.w
    n_chunks = rl.n_red // w
    unroll = STAGE_UNROLL if n_chunks >= 2 * STAGE_UNROLL * step else 1
    for k, (res, rop) in enumerate(zip(lk.stage_results, lk.stage_ops)):
        lines = rl.chunk_lines()
        em = Emitter(lk, rl.keep_names + rl.red_names, w, rl.mshape, lines, f"s{k}_", rl.ity)
        _bind_accs(em, lk, w)
        pre: list[str] = []
        em.hoist(Region.INNER, pre, stage=k)
        em.run(Region.INNER, stage=k)
        acc_dt = lk.instrs[res].dtype
        comb, comb1 = combine(rop, acc_dt, w), combine(rop, acc_dt, 1)  # on acc{k}'s lanes / on scalars
        lines.append("@ACC = " + comb.format(a="@ACC", b=em.var[res]) + f";  // {lk.kernel.reduces[k].origin}")
        if stash is not None and k == len(lk.stage_results) - 1:
            lines.append(store_st(em, em.var[stash.stage], lk.instrs[stash.stage].dtype,
                                  lk.out_sts[stash.buf], stash.buf) + "  // stashed for the row output")
        # the lanes fold one statement at a time: nesting the combine (which names its left
        # operand more than once for NaN-propagating max) would grow the source exponentially
        hsum = [f"{acc_dt.cl} racc{k} = acc{k}{'.s0' if w > 1 else ''};"]
        hsum += [f"racc{k} = " + comb1.format(a=f"racc{k}", b=f"acc{k}.s{j:x}") + ";" for j in range(1, w)]
        # a balanced tree, one statement per step (fixed order: results are reproducible)
        merge, gap = [], 1
        while gap < unroll:
            merge += [f"acc{k}_{j} = " + comb.format(a=f"acc{k}_{j}", b=f"acc{k}_{j + gap}") + ";"
                      for j in range(0, unroll - gap, 2 * gap)]
            gap *= 2
        stages.append(dict(k=k, lines=lines, pre=pre, acc_type=vtype(acc_dt, w), acc_scalar=acc_dt.cl,
                           identity=vliteral(reduce_identity(rop, acc_dt), acc_dt, w), hsum=hsum, combine=comb1,
                           unroll=unroll, merge=merge))
    return stages


def render_reduce(lk: LoweredKernel) -> RenderedKernel:
    """Reductions and row-wise kernels: per row (a kept index) run each reduction stage as a
    loop over the row, then the epilogue (one value per row) or the row output."""
    kernel = lk.kernel
    tgt = current_target()
    rl = _row_loops(lk, lk.out_shape)
    n_out, n_red, ity, w = rl.n_out, rl.n_red, rl.ity, rl.w
    keep_m, oshape, mshape = rl.keep_m, rl.oshape, rl.mshape
    # a work-group shares a row when the rows alone cannot fill the device
    enough_rows = tgt.reduce_rows_enough(n_out)
    chunks = n_red // w
    lsz = 1
    if not enough_rows and chunks >= 4:
        cap = tgt.reduce_group_cap()
        while lsz * 2 <= cap and lsz * 2 <= chunks:
            lsz *= 2
    keep_names, red_names = rl.keep_names, rl.red_names
    pre_lines: list[str] = []
    _unravel("o", tuple(keep_m), keep_names, pre_lines, ity)
    stash = choose_stash(lk) if lk.row_output else None
    stages = _stage_blocks(lk, rl, stash, lsz)
    # after the stages: the row output (row-wise kernels) or the per-row epilogue
    row_lines: list[str] = []
    row_pre: list[str] = []
    epi_lines: list[str] = []
    if lk.row_output:
        row_lines.extend(rl.chunk_lines())
        em = Emitter(lk, keep_names + red_names, w, mshape, row_lines, "w", ity)
        _bind_accs(em, lk, w)
        if stash is not None:
            dt = lk.instrs[stash.row].dtype
            load = em.load_expr(f"buf{stash.buf}", dt, lk.out_sts[stash.buf])
            row_lines.append(f"{vtype(dt, w)} wstash = {load};")
            em.var[stash.row] = "wstash"
        em.hoist(Region.ROW, row_pre)
        em.run(Region.ROW, lk.results if stash is not None else None)
        for b, (res, out, st) in enumerate(zip(lk.results, kernel.outputs, lk.out_sts)):
            row_lines.append(store_st(em, em.var[res], out.dtype, st, b))
    else:
        onames = [f"o{d}" for d in range(len(oshape))]
        _unravel("o", oshape, onames, epi_lines, ity)
        em2 = Emitter(lk, onames, 1, oshape, epi_lines, "e", ity)
        _bind_accs(em2, lk, 1)
        em2.run(Region.OUTER)
        for b, (res, out) in enumerate(zip(lk.results, kernel.outputs)):
            epi_lines.append(store_expr(em2.var[res], out.dtype, 1, "o", b))
    if lsz == 1:
        glsz = _local_for(n_out, tgt.row_local())
        gsz = (n_out + glsz - 1) // glsz * glsz
        local = (glsz,)
    else:
        gsz = n_out * lsz
        local = (lsz,)
    name = _kernel_name(lk, "W" if kernel.kind is KernelKind.ROWWISE else "R")
    src = templating.template("reduce.cl.j2").render(
        name=name, ity=ity, w=w, lsz=lsz, n_out=n_out, n_chunks=n_red // w, guard=(lsz == 1 and gsz != n_out),
        stages=stages, pre_lines=pre_lines, row_lines=row_lines, row_pre=row_pre, epi_lines=epi_lines,
        row_output=lk.row_output, **_common(lk))
    return RenderedKernel(name, src, (gsz,), local, _flops(lk, n_out * max(n_red, 1)), _bytes(lk))


def render_rowtotal(lk: LoweredKernel) -> RenderedKernel:
    """A full reduction over per-row values of a row-wise computation (the mean of per-row
    cross-entropies): one work-group; each work-item runs whole rows (all stages and the
    per-row value) and accumulates them, then a tree reduction and the final epilogue."""
    kernel = lk.kernel
    total = lk.total
    assert total is not None
    rl = _row_loops(lk, total.rows_shape)
    lsz = 1
    while lsz * 2 <= current_target().total_group_cap() and lsz * 2 <= rl.n_out:
        lsz *= 2
    pre_lines: list[str] = []
    _unravel("o", tuple(rl.keep_m), rl.keep_names, pre_lines, rl.ity)
    stages = _stage_blocks(lk, rl)
    row_lines: list[str] = []
    onames = [f"o{d}" for d in range(len(rl.oshape))]
    _unravel("o", rl.oshape, onames, row_lines, rl.ity)
    em = Emitter(lk, onames, 1, rl.oshape, row_lines, "e", rl.ity)
    _bind_accs(em, lk, 1)
    em.run(Region.OUTER)
    tres = total.result
    tdt = lk.instrs[tres].dtype
    comb = combine(total.op, tdt, 1)
    row_lines.append("total = " + comb.format(a="total", b=em.var[tres]) + ";")
    fin_lines: list[str] = []
    fshape = tuple(s for s in lk.out_shape if s != 1) or (1,)
    em2 = Emitter(lk, ["0"] * len(fshape), 1, fshape, fin_lines, "f", rl.ity)
    _bind_accs(em2, lk, 1)
    em2.run(Region.FINAL)
    for b, (res, out) in enumerate(zip(lk.results, kernel.outputs)):
        fin_lines.append(store_expr(em2.var[res], out.dtype, 1, "0", b))
    name = _kernel_name(lk, "T")
    src = templating.template("rowtotal.cl.j2").render(
        name=name, ity=rl.ity, w=rl.w, lsz=lsz, n_rows=rl.n_out, n_chunks=rl.n_red // rl.w, stages=stages,
        pre_lines=pre_lines, row_lines=row_lines, fin_lines=fin_lines, total_type=tdt.cl,
        total_identity=literal(reduce_identity(total.op, tdt), tdt), total_combine=comb, **_common(lk))
    return RenderedKernel(name, src, (lsz,), (lsz,), _flops(lk, rl.n_out * max(rl.n_red, 1)), _bytes(lk))


def _bind_accs(em: Emitter, lk: LoweredKernel, w: int) -> None:
    """Reduction values read by later stages or the row output: the per-row scalar, widened
    to the vector width."""
    for i, ins in enumerate(lk.instrs):
        if ins.kind is InstrKind.ACC:
            name = "total" if ins.value == TOTAL else f"racc{ins.value}"
            em.var[i] = name if w == 1 else f"(({vtype(ins.dtype, w)})({name}))"


def _flops(lk: LoweredKernel, n: int) -> int:
    return n * sum(PRIMITIVES[i.op].flops for i in lk.instrs if i.kind is InstrKind.ALU and i.op is not None)


def _bytes(lk: LoweredKernel) -> int:
    """Bytes a kernel moves: every output written once, every input read once."""
    return sum(prod(b.shape) * b.dtype.itemsize for b in lk.buffers)


# --- matmul ---------------------------------------------------------------------------------------
# PoCL compiles vloadN/vstoreN to out-of-line calls (no inlining), which costs more than the FMAs
# they feed; a dereference through a vector typedef with element alignment is a plain
# (unaligned) vector load. The typedef names are `<scalar><w>u`.
def _uvec(dt: DType, w: int) -> str:
    return f"{dt.cl}{w}u"


def _digit_spans(top: View, radix: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """For each dim of `top` (indexing the flat space of a row-major `radix` shape), the run of
    radix digits [j, i] it moves without carrying into any other dim's digits: its stride is
    the place value of digit i and its size fits in digits j..i. None if some dim does not
    line up like that, or two dims share a digit. Size-1 and stride-0 dims move no digit."""
    place = [1] * len(radix)
    for t in range(len(radix) - 2, -1, -1):
        place[t] = place[t + 1] * radix[t + 1]
    used: set[int] = set()
    spans: list[tuple[int, int]] = []
    for size, stride in zip(top.shape, top.strides):
        if size == 1 or stride == 0:
            spans.append((-1, -1))
            continue
        hits = [t for t in range(len(radix)) if place[t] == stride and radix[t] > 1]
        if not hits:
            return None
        i = hits[0]
        j, cap = i, radix[i]
        while cap < size and j > 0:
            j -= 1
            cap *= radix[j]
        if cap < size or any(t in used for t in range(j, i + 1)):
            return None
        used.update(range(j, i + 1))
        spans.append((j, i))
    return spans


def regroup(st: ShapeTracker, names: list[str]) -> tuple[ShapeTracker, list[str], list[str]]:
    """Index a view stack by the dims of a lower view wherever the view above it only moves
    whole runs of the lower view's digits (a reshape, a transpose of one, a window over
    one): a (n, K, N) im2col over (n, c, i, j, oh, ow) windows becomes c = k/9, i = k/3%3,
    ... and oh = n/30, ow = n%30 instead of unravelling one flat sum of all of them. Terms of
    different loop variables stay apart, so the compiler hoists the ones a loop does not
    change. Returns the remaining stack, its index names, and validity terms of the views
    dropped (their masks)."""
    valid: list[str] = []
    while len(st.views) >= 2 and st.views[-1].offset == 0:
        top, below = st.views[-1], st.views[-2]
        spans = _digit_spans(top, below.shape)
        if spans is None:
            break
        if top.mask is not None:
            for n, (lo, hi), size in zip(names, top.mask, top.shape):
                if lo > 0:
                    valid.append(f"{n}>={lo}")
                if hi < size:
                    valid.append(f"{n}<{hi}")
        new = ["0"] * len(below.shape)
        for n, (j, i) in zip(names, spans):
            if i < 0:
                continue  # a size-1 or broadcast dim moves no digit (its span is (-1, -1))
            acc = 1
            for t in range(i, j - 1, -1):
                e = s_div(n, acc) if acc > 1 else n
                new[t] = e if t == j else s_mod(e, below.shape[t])
                acc *= below.shape[t]
        st, names = ShapeTracker(st.views[:-1]), new
    return st, names, valid


class MatmulEmitter(Emitter):
    """Emitter for matmul operands, panel packing and epilogues: stacked views indexed group
    by group (`regroup`), vector loads through unaligned vector typedefs, and optionally lanes
    clamped to `clamp` along the last dim (partial N tiles read a valid element instead of
    running past the buffer; those lanes are never stored)."""

    def __init__(self, *args, clamp: int | None = None, **kw) -> None:
        super().__init__(*args, **kw)
        self.clamp = clamp

    def _expr(self, st: ShapeTracker, names: list[str]) -> tuple[str, list[str]]:
        st2, names2, valid = regroup(st, names)
        idx, more = st2.expr(names2)
        return idx, valid + more

    def load_expr(self, buf: str, dt: DType, st: ShapeTracker) -> str:
        w = self.w
        st = self.st(st)
        if w == 1:
            idx, valid = self._expr(st, self.names)
            e = f"{buf}[{idx}]"
            if dt is bool_:
                e = f"((int){e})"
            return f"({' && '.join(valid)}?{e}:{literal(0, dt)})" if valid else e
        if dt is not bool_ and self.clamp is None:
            st2, names2, top_valid = regroup(st, self.names)
            v = st2.views[-1]
            last = max((d for d, n in enumerate(names2) if self.names[-1] in n), default=-1)
            # lanes run along one dim of stride 1, unmasked, named by the lane index alone
            if (st2.single and last >= 0 and names2[last] == self.names[-1] and v.strides[last] == 1
                    and (v.mask is None or v.mask[last] == (0, v.shape[last]))
                    and sum(self.names[-1] in n for n in names2) == 1
                    and not any(self.names[-1] in t for t in top_valid)):
                idx, valid = st2.expr(names2)
                valid = top_valid + valid
                e = f"(*((const __global {_uvec(dt, w)}*)({buf}+{idx})))"
                return f"({' && '.join(valid)}?{e}:{vliteral(0, dt, w)})" if valid else e
        return self.gather_expr(buf, dt, st)

    def _lane(self, j: int) -> str:
        if self.clamp is not None:
            return f"min({self.names[-1]}+{j},{self.clamp})"
        return super()._lane(j)

    def valid_expr(self, st: ShapeTracker) -> list[str] | str:
        st = self.st(st)
        if self.w == 1:
            return self._expr(st, self.names)[1]
        lanes = []
        for j in range(self.w):
            valid = self._expr(st, self.names[:-1] + [f"({self.names[-1]}+{j})"])[1]
            lanes.append(f"(({' && '.join(valid)})?-1:0)" if valid else "-1")
        if all(x == "-1" for x in lanes):
            return []
        return f"((int{self.w})({','.join(lanes)}))"

    def rand_expr(self, seed: int, st: ShapeTracker) -> str:
        st = self.st(st)
        if self.w == 1:
            return f"lg_rand(seed{seed},(uint)({self._expr(st, self.names)[0]}))"
        lanes = [f"lg_rand(seed{seed},(uint)({self._expr(st, self.names[:-1] + [f'({self.names[-1]}+{j})'])[0]}))"
                 for j in range(self.w)]
        return f"((float{self.w})({','.join(lanes)}))"


@dataclass(frozen=True)
class MatmulGeometry:
    """What a matmul kernel computes: batch dims, M, N, K, and which operands are panels."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    a_tile: int   # rows per A panel (0: A read through its view)
    b_tile: int   # columns per B panel (0: B read through its view)
    itemsize: int = 4

    @staticmethod
    def of(lk: LoweredKernel) -> MatmulGeometry:
        core = lk.kernel.core
        assert core is not None and core.op is Op.MATMUL
        a = core.srcs[0]
        assert lk.panels is not None
        ap, bp = lk.panels.a, lk.panels.b
        return MatmulGeometry(tuple(core.shape[:-2]), core.shape[-2], core.shape[-1], a.shape[-1],
                              ap.shape[-1] if ap is not None else 0, bp.shape[-1] if bp is not None else 0,
                              core.dtype.itemsize)

    @property
    def batch_size(self) -> int:
        return prod(self.batch)

    def shape_class(self, dt: DType) -> str:
        def b(x: int) -> int:
            return 1 << max(0, (x - 1).bit_length())
        return (f"{dt.name}|b{b(self.batch_size)}|m{b(self.m)}|n{b(self.n)}|k{b(self.k)}"
                f"|pa{self.a_tile}|pb{self.b_tile}")


def _pow2_at_least(x: int, cap: int) -> int:
    p = 1
    while p < x and p < cap:
        p *= 2
    return p


def _clamp_local(cfg_l: int, tiles: int) -> int:
    """Work-group extent: the configured one, shrunk (power of two) when there are few tiles."""
    lsz = cfg_l
    while lsz > 1 and lsz // 2 >= tiles:
        lsz //= 2
    return lsz


def matmul_candidates(geo: MatmulGeometry) -> tuple[MatmulConfig, list[MatmulConfig]]:
    """The heuristic configuration and the handful of candidates the tuner times."""
    is_cpu = current_target().is_cpu
    pref = _matmul_vector_width(geo.itemsize)
    if geo.b_tile:
        w = pref
        while geo.b_tile % w:
            w //= 2
        nrs = [geo.b_tile]
    else:
        w = min(pref, _pow2_at_least(geo.n, pref))
        nrs = [w * v for v in ((2, 1, 3) if geo.n > w else (1,))]
    mrs = [geo.a_tile] if geo.a_tile else [min(m, geo.m) for m in ((8, 12, 6, 4) if is_cpu else (4, 8, 2))]
    locals_ = [(4, 4), (2, 2), (8, 8), (1, 1)] if is_cpu else [(8, 8), (16, 4), (4, 16)]
    # small products: the unrolled K loop costs more compile time than it saves at run time
    small = geo.m * geo.n * geo.k * geo.batch_size < 128 ** 3
    heur = MatmulConfig(mrs[0], nrs[0], w, 1 if small else 2, *locals_[0])
    seen: dict[str, MatmulConfig] = {}
    for mr in dict.fromkeys(mrs):
        for nr in nrs:
            if mr * (nr // w) > 24:  # accumulators beyond the register file spill
                continue
            seen.setdefault(f"{mr}/{nr}", MatmulConfig(mr, nr, w, 2, *locals_[0]))
    cands = list(seen.values())[:4]
    cands += [MatmulConfig(heur.mr, heur.nr, w, 2, *lxy) for lxy in locals_[1:]]
    cands.append(MatmulConfig(heur.mr, heur.nr, w, 4 if heur.mr <= 8 else 1, *locals_[0]))
    return heur, list({c.key(): c for c in cands}.values())


def render_matmul(lk: LoweredKernel, cfg: MatmulConfig | None = None) -> RenderedKernel:
    """A register-blocked matmul: each work-item owns an mr x nr block of C held in vector
    accumulators, streams A (broadcast scalars) and B (vectors along N) through the K loop, and
    runs the fused epilogue on its block before storing it."""
    geo = MatmulGeometry.of(lk)
    if cfg is None:  # the engine tunes (lazygrad/engine/tuning.py); codegen never launches a kernel
        cfg = matmul_candidates(geo)[0]
    return _render_matmul(lk, geo, cfg)


def _render_matmul(lk: LoweredKernel, geo: MatmulGeometry, cfg: MatmulConfig) -> RenderedKernel:
    root = lk.kernel.output
    core = lk.kernel.core
    assert core is not None
    mm_idx = next(i for i, ins in enumerate(lk.instrs) if ins.kind is InstrKind.ACC)
    a_val, b_val = lk.instrs[mm_idx].args
    dt = core.dtype
    acc_dt = dt if dt.name != "float16" else _FLOAT32
    w, mr, nr = cfg.w, cfg.mr, cfg.nr
    nv = nr // w
    M, N, K = geo.m, geo.n, geo.k
    mt, nt = -(-M // mr), -(-N // nr)
    big = max(prod(root.shape), prod(core.srcs[0].shape), prod(core.srcs[1].shape),
              *(prod(b.shape) for b in lk.buffers)) >= 2**31 - 1024
    ity = "long" if big else "int"
    bnames = [f"b{d}" for d in range(len(geo.batch))]
    pre: list[str] = []
    if geo.batch:
        _unravel("bt", geo.batch, bnames, pre, ity)
    assert lk.panels is not None
    a_src = lk.panels.a or core.srcs[0]
    b_src = lk.panels.b or core.srcs[1]
    a_shape, b_shape = tuple(a_src.shape), tuple(b_src.shape)
    # rows past M (last M tile) read row M-1: valid memory, results never stored
    for i in range(mr):
        if not geo.a_tile:
            pre.append(f"const {ity} am{i} = {f'min(m0+{i},{M - 1})' if M % mr else f'm0+{i}'};")
    for j in range(nv):
        if not geo.b_tile:
            pre.append(f"const {ity} bn{j} = n0+{j * w};")

    def k_body(kname: str, clamp_n: bool, tag: str) -> list[str]:
        lines: list[str] = []
        bvars = []
        for j in range(nv):
            names = bnames + (["nt", kname, str(j * w)] if geo.b_tile else [kname, f"bn{j}"])
            em = MatmulEmitter(lk, names, w, b_shape, lines, f"b{tag}_{j}_", ity,
                               clamp=(N - 1) if clamp_n and not geo.b_tile else None)
            em.run(Region.B)
            bvars.append(_as_acc(em.var[b_val], lk.instrs[b_val].dtype, acc_dt, w))
        for i in range(mr):
            names = bnames + (["mt", kname, str(i)] if geo.a_tile else [f"am{i}", kname])
            em = MatmulEmitter(lk, names, 1, a_shape, lines, f"a{tag}_{i}_", ity)
            em.run(Region.A)
            av = _as_acc(em.var[a_val], lk.instrs[a_val].dtype, acc_dt, 1)
            for j in range(nv):
                lines.append(f"c{i}_{j} += {av} * {bvars[j]};")
        return lines

    def k_loop(clamp_n: bool) -> list[str]:
        ku = max(1, min(cfg.ku, K))
        lines = [f"{ity} k = 0;", f"for (; k + {ku} <= {K}; k += {ku}) {{"]
        for u in range(ku):
            lines += ["  " + s for s in ["{"] + k_body("k" if u == 0 else f"(k+{u})", clamp_n, f"{u}")] + ["  }"]
        lines.append("}")
        if K % ku:
            lines += [f"for (; k < {K}; k++) {{"] + ["  " + s for s in k_body("k", clamp_n, "t")] + ["}"]
        return lines

    clamp_all = N < nr and not geo.b_tile  # every tile is partial: only the clamped loop
    full_loop = k_loop(clamp_all)
    edge_loop = k_loop(True) if (N % nr and not geo.b_tile and not clamp_all) else []
    # epilogue: whole tile as vectors, or element by element on partial tiles
    acc_ins = mm_idx
    vec_epi: list[str] = []
    for i in range(mr):
        for j in range(nv):
            names = bnames + [f"(m0+{i})", f"(n0+{j * w})"]
            lines: list[str] = []
            em = MatmulEmitter(lk, names, w, tuple(core.shape), lines, f"e{i}_{j}_", ity)
            em.var[acc_ins] = _from_acc(f"c{i}_{j}", acc_dt, dt, w)
            em.run(Region.OUTER)
            val = em.var[lk.result]
            vec_epi += lines + [_store_vec(val, root.dtype, w, f"obase+{i * N}+{j * w}")]
    scal_epi: list[str] = []
    em = MatmulEmitter(lk, bnames + ["(m0+i)", "(n0+j)"], 1, tuple(core.shape), scal_epi, "s", ity)
    em.var[acc_ins] = _from_acc("tile[i][j]", acc_dt, dt, 1)
    em.run(Region.OUTER)
    scal_epi.append(store_expr(em.var[lk.result], root.dtype, 1, "obase+i*%d+j" % N))
    spill = [f"*((__private {_uvec(acc_dt, w)}*)&tile[{i}][{j * w}]) = c{i}_{j};" if w > 1 else
             f"tile[{i}][{j}] = c{i}_{j};" for i in range(mr) for j in range(nv)]
    lx, ly = _clamp_local(cfg.lx, mt), _clamp_local(cfg.ly, nt)
    gx, gy = -(-mt // lx) * lx, -(-nt // ly) * ly
    name = _kernel_name(lk, "M")
    vec_attr = min_vector_width_attr(w * acc_dt.itemsize * 8)
    vec_types = sorted({(d.cl, ww) for d, ww in [(acc_dt, w)] + [(i.dtype, w) for i in lk.instrs]
                        if ww > 1 and d is not bool_})
    src = templating.template("matmul.cl.j2").render(
        name=name, ity=ity, mr=mr, nr=nr, nv=nv, w=w, M=M, N=N, K=K, n_mt=mt, n_nt=nt, lx=lx, ly=ly,
        guard=(gx != mt or gy != nt), acc_t=vtype(acc_dt, w), acc_scalar=acc_dt.cl,
        zero=vliteral(0, acc_dt, w), vec_types=vec_types, pre_lines=pre, full_loop=full_loop,
        edge_loop=edge_loop, vec_epi=vec_epi, scal_epi=scal_epi, spill=spill,
        full_m=(M % mr == 0), full_n=(N % nr == 0), cfg=cfg.key(), geo=geo, vec_attr=vec_attr, **_common(lk))
    epi_flops = sum(PRIMITIVES[i.op].flops for i in lk.instrs if i.kind is InstrKind.ALU and i.region is Region.OUTER)
    flops = 2 * geo.batch_size * M * N * K + epi_flops * prod(root.shape)
    return RenderedKernel(name, src, (gx, gy, geo.batch_size), (lx, ly, 1), flops, _bytes(lk))


def _as_acc(x: str, src: DType, acc: DType, w: int) -> str:
    return x if src == acc else cast_expr(x, src, acc, w)


def _from_acc(x: str, acc: DType, dst: DType, w: int) -> str:
    return x if acc == dst else cast_expr(x, acc, dst, w)


def _store_vec(val: str, dt: DType, w: int, idx: str) -> str:
    if w == 1 or dt is bool_:
        return store_expr(val, dt, w, idx)
    return f"*((__global {_uvec(dt, w)}*)(buf0+{idx})) = {val};"


def min_vector_width_attr(vec_bits: int) -> str:
    """Kernel attribute keeping accumulators wider than 256 bits whole (Target.wide_vector_attr)."""
    return current_target().wide_vector_attr(vec_bits)


def _matmul_vector_width(itemsize: int) -> int:
    """Lanes of the matmul's and conv's vectors: one register of the target."""
    return current_target().matmul_lanes(itemsize)


def matmul_panel_width(dt: DType) -> int:
    """Columns per packed B panel: two vectors (an AVX-512 pair on PoCL)."""
    return 2 * _matmul_vector_width(dt.itemsize)


def matmul_panel_rows() -> int:
    """Rows per packed A panel (the kernel's mr when A is packed)."""
    return current_target().matmul_panel_rows()


# --- packing matmul operands into panels -----------------------------------------------------------
def render_pack(lk: LoweredKernel) -> RenderedKernel | None:
    """The copy kernel that writes a matmul operand as panels (ir.panels.pack_panels), computed in
    the operand's own index space: each work-item fills one panel, walking K with the lanes of
    a tile side by side, so an im2col window costs an add per element instead of unravelling
    the panel index through the window views. None when the kernel is not a panel pack."""
    if lk.kernel.extra_outputs:
        return None  # merged with other copies into a multi-output kernel: the generic path
    found = pack_source(lk.kernel.output)
    if found is None:
        return None
    x, dim, tile = found
    lx = lower_operand(lk.kernel, x)
    root = lk.kernel.output
    dt = root.dtype
    batch = tuple(x.shape[:-2])
    along_last = dim == PANEL_B
    L, K = (x.shape[-1], x.shape[-2]) if along_last else (x.shape[-2], x.shape[-1])
    nt = -(-L // tile)
    ity = "long" if max(prod(root.shape), *(prod(b.shape) for b in lk.buffers)) >= 2**31 - 1024 else "int"
    bnames = [f"b{d}" for d in range(len(batch))]
    pre: list[str] = []
    if batch:
        _unravel("bt", batch, bnames, pre, ity)
    w = vector_width(dt.itemsize) if along_last else 1
    while w > 1 and tile % w:
        w //= 2
    full: list[str] = []
    if along_last:
        for j in range(tile // w):
            em = MatmulEmitter(lx, bnames + ["k", f"(l0+{j * w})"], w, tuple(x.shape), full, f"v{j}_", ity)
            em.run(Region.OUTER)
            full.append(_store_vec(em.var[lx.result], dt, w, f"o+{j * w}") if w > 1 else
                        store_expr(em.var[lx.result], dt, 1, f"o+{j}"))
    else:
        for j in range(tile):
            em = MatmulEmitter(lx, bnames + [f"(l0+{j})", "k"], 1, tuple(x.shape), full, f"v{j}_", ity)
            em.run(Region.OUTER)
            full.append(store_expr(em.var[lx.result], dt, 1, f"o+{j}"))
    edge: list[str] = []
    if along_last and w > 1:
        # the last, partial tile: lanes past L read a clamped (valid) element, stored as zero
        iota = ",".join(str(i) for i in range(w))
        for j in range(tile // w):
            em = MatmulEmitter(lx, bnames + ["k", f"(l0+{j * w})"], w, tuple(x.shape), edge, f"z{j}_", ity,
                               clamp=L - 1)
            em.run(Region.OUTER)
            mask = f"(((int{w})({iota}))+(int)(l0+{j * w})<{L})"
            if dt.itemsize != 4:
                mask = f"convert_{_MASK_INT[dt.itemsize]}{w}({mask})"
            val = f"select({vliteral(0, dt, w)},{em.var[lx.result]},{mask})"
            edge.append(_store_vec(val, dt, w, f"o+{j * w}"))
        edge_vec = True
    else:
        em = MatmulEmitter(lx, bnames + (["k", "lc"] if along_last else ["lc", "k"]), 1, tuple(x.shape), edge,
                           "s", ity)
        em.run(Region.OUTER)
        edge.append(store_expr(f"(l0+l<{L}?{em.var[lx.result]}:{literal(0, dt)})", dt, 1, "o+l"))
        edge_vec = False
    lsz = _local_for(nt, 8)
    gx = -(-nt // lsz) * lsz
    name = _kernel_name(lk, "P")
    vec_types = sorted({(d.cl, w) for d in {dt} | {i.dtype for i in lx.instrs} if w > 1 and d is not bool_})
    src = templating.template("matmul_pack.cl.j2").render(
        name=name, ity=ity, tile=tile, nt=nt, L=L, K=K, guard=gx != nt, pre_lines=pre, full_lines=full,
        edge_lines=edge, edge_vec=edge_vec, partial=L % tile != 0, vec_types=vec_types,
        what="B" if along_last else "A",
        **_common(lk))
    return RenderedKernel(name, src, (gx, prod(batch) if batch else 1), (lsz, 1), 0,
                          2 * prod(root.shape) * dt.itemsize)


# every kind of kernel the scheduler makes -> the function that renders it (last in the module:
# it names functions defined anywhere above; tests check that no kind is missing)
