"""Codegen: a lowered kernel → OpenCL C source and launch sizes, through Jinja templates.

Decisions made here: which loop dimensions merge (every view reads them as one strided run),
the vector width (elementwise work on floatN vectors with a scalar tail: PoCL vectorises
builtins on vector types well and scalar code poorly), and the reduction strategy (one
output per work-item with vector loads when there are enough outputs to fill the device,
a work-group tree reduction otherwise).

Public names: render, RenderedKernel, op_expr.
"""
from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .dtypes import DType, bool_
from .lower import Instr, LoweredKernel
from .ops import PRIMITIVES, Op
from .runtime import get_device
from .view import ShapeTracker, prod

_TEMPLATE_DIRS = [Path(__file__).resolve().parent.parent / "templates", Path(__file__).resolve().parent / "templates"]


def _template_dirs() -> list[str]:
    """The source tree's templates/ (editable installs) or the installed lazygrad.templates."""
    dirs = [str(d) for d in _TEMPLATE_DIRS if (d / "elementwise.cl.j2").is_file()]
    if not dirs:
        from importlib.resources import files
        dirs.append(str(files("lazygrad.templates")))
    return dirs


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_template_dirs()), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


_jinja: jinja2.Environment | None = None


def template(name: str) -> jinja2.Template:
    global _jinja
    if _jinja is None:
        _jinja = _env()
    return _jinja.get_template(name)


@dataclass
class RenderedKernel:
    name: str
    source: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    flops: int
    bytes: int


# --- literals and types -------------------------------------------------------------------------
def vtype(dt: DType, w: int) -> str:
    return dt.cl + (str(w) if w > 1 else "")


def literal(value: float | int | bool, dt: DType) -> str:
    if dt is bool_:
        return "1" if value else "0"
    if dt.is_int:
        v = int(value)
        if v == -(2 ** (8 * dt.itemsize - 1)):  # "-2147483648" is minus a literal too big for int
            return f"({v + 1}L-1)" if dt.name == "int64" else f"({v + 1}-1)"
        return f"{v}L" if dt.name == "int64" else str(v)
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
            return f"({c}?{a}:{b})"
        mask = _MASK_INT[out_dt.itemsize if out_dt is not bool_ else 4]
        return f"select({b},{a},convert_{mask}{w}({c}))"
    if op is Op.CAST:
        return cast_expr(args[0], in_dt, out_dt, w)
    fmt = p.cl_int if (p.cl_int and not in_dt.is_float) else p.cl
    assert fmt is not None, op
    expr = fmt.format(*args, one=vliteral(1, in_dt, w), zero=vliteral(0, in_dt, w))
    if op in (Op.CMPLT, Op.CMPEQ) and w > 1 and in_dt.itemsize != 4:
        expr = f"convert_int{w}({expr})"  # vector comparisons give masks as wide as the operands
    if op is Op.NOT and w > 1 and in_dt is not bool_ and in_dt.itemsize != 4:
        expr = f"convert_int{w}({expr})"
    return expr


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
        lanes = []
        for j in range(w):
            names = self.names[:-1] + [f"({self.names[-1]}+{j})"]
            idx, valid = st.expr(names)
            e = f"{buf}[{idx}]"
            if dt is bool_:
                e = f"(int){e}"
            lanes.append(f"({' && '.join(valid)}?{e}:{literal(0, dt)})" if valid else e)
        g = f"(({vtype(dt, w)})({','.join(lanes)}))"
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
        if ins.kind == "load":
            e = self.load_expr(f"buf{ins.args[0]}", ins.dtype, ins.st)
        elif ins.kind == "const":
            self.var[i] = vliteral(ins.value, ins.dtype, w)
            return self.var[i]
        elif ins.kind == "rand":
            e = self.rand_expr(int(ins.value), ins.st)
        elif ins.kind == "alu":
            srcs = [self.lk.instrs[a] for a in ins.args]
            in_dt = srcs[-1].dtype if ins.op is Op.WHERE else srcs[0].dtype
            e = op_expr(ins.op, [self.var[a] for a in ins.args], in_dt, ins.dtype, w)
        elif ins.kind == "pad":
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

    def run(self, region: str, upto: int | None = None) -> None:
        for i, ins in enumerate(self.lk.instrs):
            if ins.region == region and ins.kind != "acc" and i not in self.var:
                self.emit(i, ins)

    def hoist(self, region: str, lines: list[str]) -> None:
        """Emit into `lines` (before a row loop) the instructions of `region` that depend only
        on constants and earlier reductions: computed once per row, not once per element."""
        invariant: set[int] = set()
        body, self.lines = self.lines, lines
        for i, ins in enumerate(self.lk.instrs):
            if ins.kind in ("const", "acc"):
                invariant.add(i)
                if ins.kind == "const" and ins.region == region and i not in self.var:
                    self.emit(i, ins)  # binds the literal, writes no line
            elif ins.region == region and ins.kind == "alu" and all(a in invariant for a in ins.args):
                invariant.add(i)
                if i not in self.var:
                    self.emit(i, ins)
        self.lines = body


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
    env = os.environ.get("LAZYGRAD_VEC")
    if env:
        return int(env)
    caps = get_device().caps
    return 8 if caps.is_cpu else 4


def _kernel_name(lk: LoweredKernel, prefix: str) -> str:
    seen: list[str] = []
    for n in lk.kernel.ops:
        v = n.op.value
        if n.op in (Op.BUFFER, Op.CONST) or n.op.name in ("RESHAPE", "PERMUTE", "EXPAND", "PAD", "SHRINK", "FLIP", "DETACH"):
            continue
        if v not in seen:
            seen.append(v)
    ops = "_".join(seen[:4]) or "copy"
    shape = "x".join(str(s) for s in lk.out_shape) or "1"
    return f"{prefix}_{ops}_{shape}"


def _params(lk: LoweredKernel) -> list[str]:
    params = []
    n_out = max(1, lk.n_outputs)
    for i, n in enumerate(lk.buffers):
        q = "" if i < n_out else "const "
        params.append(f"__global {q}{n.dtype.cl_store}* restrict buf{i}")
    params += [f"const uint seed{i}" for i in range(lk.extra.get("n_seeds", 0))]
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
    return any(i.kind == "rand" for i in lk.instrs)


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
                origin_lines=_origin_lines(lk), reason=lk.kernel.reason, kind=lk.kernel.kind,
                n_ops=sum(1 for n in lk.kernel.ops if n.op is not Op.BUFFER))


def render_elementwise(lk: LoweredKernel) -> RenderedKernel:
    root = lk.kernel.output
    n = prod(lk.out_shape)
    ity = "long" if n >= 2**31 - 64 else "int"
    sts = [i.st for i in lk.instrs if i.st is not None]
    out_st = ShapeTracker.from_shape(lk.out_shape)
    shape = merge_dims(lk.out_shape, sts + [out_st], [len(lk.out_shape)]) or (1,)
    w = vector_width(root.dtype.itemsize)
    names = [f"x{d}" for d in range(len(shape))]
    vec_lines: list[str] = []
    tail_lines: list[str] = []
    inner = shape[-1]
    if w > 1 and inner % w == 0 and n >= w:
        mode = "vector"
        nitems = n // w
    elif w > 1 and len(shape) == 1 and n >= 4 * w:
        mode = "vector_tail"
        nitems = n // w + 1
    else:
        mode, w, nitems = "scalar", 1, n
    if mode != "scalar":
        lines = vec_lines
        vshape = shape[:-1] + (inner // w,) if mode == "vector" else (n // w,)
        _unravel("gid", vshape, names, lines, ity)
        lines.append(f"{names[-1]} *= {w};")
        em = Emitter(lk, names, w, shape, lines, "v", ity)
        em.run("outer")
        for b, (res, out) in enumerate(zip(lk.results, lk.kernel.outputs)):
            lines.append(store_expr(em.var[res], out.dtype, w, "gid*" + str(w), b))
    if mode in ("vector_tail", "scalar"):
        lines = tail_lines
        em = Emitter(lk, ["t"] if mode == "vector_tail" else names, 1, shape, lines, "s", ity)
        if mode == "scalar":
            _unravel("gid", shape, names, lines, ity)
        em.run("outer")
        for b, (res, out) in enumerate(zip(lk.results, lk.kernel.outputs)):
            lines.append(store_expr(em.var[res], out.dtype, 1, "t" if mode == "vector_tail" else "gid", b))
    lsz = _local_for(nitems)
    gsz = (nitems + lsz - 1) // lsz * lsz
    src = template("elementwise.cl.j2").render(
        name=_kernel_name(lk, "E"), mode=mode, w=w, n=n, nitems=nitems, ity=ity,
        guard=gsz != nitems, vec_lines=vec_lines, tail_lines=tail_lines, tail_start=(n // w) * w,
        **_common(lk))
    return RenderedKernel(_kernel_name(lk, "E"), src, (gsz,), (lsz,), _flops(lk, n), _bytes(lk, n))


def _split_dims(mdom: tuple[int, ...], n_keep: int) -> tuple[list[int], list[int]]:
    """Split merged domain dims back into kept and reduced parts by their products."""
    keep_m: list[int] = []
    acc, k = 1, 0
    while acc < n_keep and k < len(mdom):
        keep_m.append(mdom[k])
        acc *= mdom[k]
        k += 1
    return keep_m or [1], list(mdom[k:]) or [1]


# float max propagates NaN like numpy and torch (fmax alone would drop it: max([1, nan]) = 1)
_COMBINE = {Op.SUM: ("({a}+{b})", "({a}+{b})"),
            Op.RMAX: ("(((({a})>({b}))|isnan({a}))?({a}):({b}))", "max({a},{b})")}


def _identity(op: Op, dt: DType) -> float | int:
    if op is Op.SUM:
        return 0
    if dt.is_float:
        return float("-inf")
    return -(2**63) if dt.name == "int64" else -(2**31)


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
    row_sts = [i.st for i in lk.instrs if i.st is not None and i.region not in ("outer", "final")]
    row_sts += [st for st in lk.out_sts if lk.row_output]
    outer_sts = [i.st for i in lk.instrs if i.region == "outer" and i.st is not None]
    dom = lk.keep_shape + lk.red_shape
    mdom = merge_dims(dom, row_sts or [ShapeTracker.from_shape(dom)], [len(lk.keep_shape), len(lk.red_shape)])
    keep_m, red_m = _split_dims(mdom, n_out)
    oshape = merge_dims(outer_shape, outer_sts + [ShapeTracker.from_shape(outer_shape)], [len(outer_shape)]) or (1,)
    w = vector_width(4)
    if not (w > 1 and red_m[-1] % w == 0 and n_red >= w):
        w = 1
    return RowLoops(n_out, n_red, ity, keep_m, red_m, oshape, w)


def _stage_blocks(lk: LoweredKernel, rl: RowLoops) -> list[dict]:
    """One loop over the row per reduction stage, accumulating acc{k} (w lanes), folded into
    the scalar racc{k}."""
    stages = []
    w = rl.w
    for k, (res, rop) in enumerate(zip(lk.stage_results, lk.stage_ops)):
        lines = rl.chunk_lines()
        em = Emitter(lk, rl.keep_names + rl.red_names, w, rl.mshape, lines, f"s{k}_", rl.ity)
        _bind_accs(em, lk, w)
        pre: list[str] = []
        em.hoist(f"inner{k}", pre)
        em.run(f"inner{k}")
        acc_dt = lk.instrs[res].dtype
        comb = _COMBINE[rop][0 if acc_dt.is_float else 1]
        lines.append(f"acc{k} = " + comb.format(a=f"acc{k}", b=em.var[res]) + f";  // {lk.kernel.reduces[k].origin}")
        hsum = f"acc{k}"
        if w > 1:
            hsum = f"acc{k}.s0"
            for j in range(1, w):
                hsum = comb.format(a=hsum, b=f"acc{k}.s{j:x}")
        stages.append(dict(k=k, lines=lines, pre=pre, acc_type=vtype(acc_dt, w), acc_scalar=acc_dt.cl,
                           identity=vliteral(_identity(rop, acc_dt), acc_dt, w), hsum=hsum, combine=comb))
    return stages


def render_reduce(lk: LoweredKernel) -> RenderedKernel:
    """Reductions and row-wise kernels: per row (a kept index) run each reduction stage as a
    loop over the row, then the epilogue (one value per row) or the row output."""
    kernel = lk.kernel
    caps = get_device().caps
    rl = _row_loops(lk, lk.out_shape)
    n_out, n_red, ity, w = rl.n_out, rl.n_red, rl.ity, rl.w
    keep_m, red_m, oshape, mshape = rl.keep_m, rl.red_m, rl.oshape, rl.mshape
    # a work-group shares a row when the rows alone cannot fill the device
    enough_rows = n_out >= 8 * caps.compute_units * (1 if caps.is_cpu else 32)
    chunks = n_red // w
    lsz = 1
    if not enough_rows and chunks >= 4:
        cap = min(caps.max_work_group_size, 16 if caps.is_cpu else 256)
        while lsz * 2 <= cap and lsz * 2 <= chunks:
            lsz *= 2
    keep_names, red_names = rl.keep_names, rl.red_names
    pre_lines: list[str] = []
    _unravel("o", tuple(keep_m), keep_names, pre_lines, ity)
    stages = _stage_blocks(lk, rl)
    # after the stages: the row output (row-wise kernels) or the per-row epilogue
    row_lines: list[str] = []
    row_pre: list[str] = []
    epi_lines: list[str] = []
    if lk.row_output:
        row_lines.extend(rl.chunk_lines())
        em = Emitter(lk, keep_names + red_names, w, mshape, row_lines, "w", ity)
        _bind_accs(em, lk, w)
        em.hoist("row", row_pre)
        em.run("row")
        for b, (res, out, st) in enumerate(zip(lk.results, kernel.outputs, lk.out_sts)):
            row_lines.append(store_st(em, em.var[res], out.dtype, st, b))
    else:
        onames = [f"o{d}" for d in range(len(oshape))]
        _unravel("o", oshape, onames, epi_lines, ity)
        em2 = Emitter(lk, onames, 1, oshape, epi_lines, "e", ity)
        _bind_accs(em2, lk, 1)
        em2.run("outer")
        for b, (res, out) in enumerate(zip(lk.results, kernel.outputs)):
            epi_lines.append(store_expr(em2.var[res], out.dtype, 1, "o", b))
    if lsz == 1:
        glsz = _local_for(n_out, 16 if caps.is_cpu else 64)
        gsz = (n_out + glsz - 1) // glsz * glsz
        local = (glsz,)
    else:
        gsz = n_out * lsz
        local = (lsz,)
    name = _kernel_name(lk, "W" if kernel.kind == "rowwise" else "R")
    src = template("reduce.cl.j2").render(
        name=name, ity=ity, w=w, lsz=lsz, n_out=n_out, n_chunks=n_red // w, guard=(lsz == 1 and gsz != n_out),
        stages=stages, pre_lines=pre_lines, row_lines=row_lines, row_pre=row_pre, epi_lines=epi_lines,
        row_output=lk.row_output, **_common(lk))
    n_out_elems = prod(lk.out_shape) * len(kernel.outputs)
    return RenderedKernel(name, src, (gsz,), local, _flops(lk, n_out * max(n_red, 1)), _bytes(lk, n_out_elems))


def render_rowtotal(lk: LoweredKernel) -> RenderedKernel:
    """A full reduction over per-row values of a row-wise computation (the mean of per-row
    cross-entropies): one work-group; each work-item runs whole rows (all stages and the
    per-row value) and accumulates them, then a tree reduction and the final epilogue."""
    kernel = lk.kernel
    caps = get_device().caps
    rl = _row_loops(lk, lk.extra["rows_shape"])
    lsz = 1
    while lsz * 2 <= min(caps.max_work_group_size, 64 if caps.is_cpu else 256) and lsz * 2 <= rl.n_out:
        lsz *= 2
    pre_lines: list[str] = []
    _unravel("o", tuple(rl.keep_m), rl.keep_names, pre_lines, rl.ity)
    stages = _stage_blocks(lk, rl)
    row_lines: list[str] = []
    onames = [f"o{d}" for d in range(len(rl.oshape))]
    _unravel("o", rl.oshape, onames, row_lines, rl.ity)
    em = Emitter(lk, onames, 1, rl.oshape, row_lines, "e", rl.ity)
    _bind_accs(em, lk, 1)
    em.run("outer")
    tres = lk.extra["total_result"]
    tdt = lk.instrs[tres].dtype
    comb = _COMBINE[lk.extra["total_op"]][0 if tdt.is_float else 1]
    row_lines.append("total = " + comb.format(a="total", b=em.var[tres]) + ";")
    fin_lines: list[str] = []
    fshape = tuple(s for s in lk.out_shape if s != 1) or (1,)
    em2 = Emitter(lk, ["0"] * len(fshape), 1, fshape, fin_lines, "f", rl.ity)
    _bind_accs(em2, lk, 1)
    em2.run("final")
    for b, (res, out) in enumerate(zip(lk.results, kernel.outputs)):
        fin_lines.append(store_expr(em2.var[res], out.dtype, 1, "0", b))
    name = _kernel_name(lk, "T")
    src = template("rowtotal.cl.j2").render(
        name=name, ity=rl.ity, w=rl.w, lsz=lsz, n_rows=rl.n_out, n_chunks=rl.n_red // rl.w, stages=stages,
        pre_lines=pre_lines, row_lines=row_lines, fin_lines=fin_lines, total_type=tdt.cl,
        total_identity=literal(_identity(lk.extra["total_op"], tdt), tdt), total_combine=comb, **_common(lk))
    return RenderedKernel(name, src, (lsz,), (lsz,), _flops(lk, rl.n_out * max(rl.n_red, 1)), _bytes(lk))


def _bind_accs(em: Emitter, lk: LoweredKernel, w: int) -> None:
    """Reduction values read by later stages or the row output: the per-row scalar, widened
    to the vector width."""
    for i, ins in enumerate(lk.instrs):
        if ins.kind == "acc":
            name = "total" if ins.value == "total" else f"racc{ins.value}"
            em.var[i] = name if w == 1 else f"(({vtype(ins.dtype, w)})({name}))"


def _flops(lk: LoweredKernel, n: int) -> int:
    return n * sum(PRIMITIVES[i.op].flops for i in lk.instrs if i.kind == "alu" and i.op is not None)


def _bytes(lk: LoweredKernel, n_out: int = 0) -> int:
    """Bytes a kernel moves: every output written once, every input read once."""
    return sum(prod(b.shape) * b.dtype.itemsize for b in lk.buffers)


def render(lk: LoweredKernel) -> RenderedKernel:
    if lk.kernel.kind in ("reduce", "rowwise"):
        return render_reduce(lk)
    if lk.kernel.kind == "rowtotal":
        return render_rowtotal(lk)
    if lk.kernel.kind == "elementwise":
        return render_elementwise(lk)
    raise NotImplementedError(f"no template for kernel kind {lk.kernel.kind}")
