"""The lowered IR's checker and printer: what the renderers assume of a `LoweredKernel`.

`lower` turns a kernel into instructions that the renderers emit region by region, binding
each instruction's value to a variable; they never check what they read. So a lowering bug
shows up as a C compile error, a KeyError deep in an Emitter, or a kernel that reads the wrong
element. `verify_lowered` states those assumptions and raises `LoweredIRError` (naming the
kernel, the instruction and the rule) at the first one broken:

- every operand is an earlier instruction of the same region (a reduction's, matmul's or
  conv's value enters other regions only as an `acc` instruction in the region reading it);
- loads read input buffers (never outputs) of their own dtype, within the buffer's elements;
- every view (loads, random numbers, pad guards) has the shape of the loop domain of its
  region: the output's for "outer", keep + reduced dims for the row stages, ...;
- every output is stored exactly once, from a value of its dtype;
- alu instructions have their op's arity and dtypes; stages and their acc values agree.

`LAZYGRAD_VERIFY=1` runs it on every lowered kernel. `format_lowered` prints one.

Regions are named by `_rk` ("inner{k}" for the loop of reduction stage k) in messages and
in the table of loop domains.

Public names: LoweredIRError, verify_lowered, format_lowered.
"""
from __future__ import annotations

from typing import Any

from lazygrad.codegen.lower import TOTAL, Instr, LoweredKernel, Region
from lazygrad.dtypes import bool_
from lazygrad.ir.ops import COMPARISONS, ELEMENTWISE, PRIMITIVES, Op
from lazygrad.ir.verify import IRError
from lazygrad.ir.view import ShapeTracker, View


class LoweredIRError(IRError):
    """A lowered kernel breaks an assumption of the renderers (a bug in lowering); an IRError
    that names the kernel and the instruction instead of a node."""

    def __init__(self, lk: LoweredKernel, rule: str, at: int | None = None) -> None:
        where = f"instruction {at} ({_instr_text(lk, at)})" if at is not None and 0 <= at < len(lk.instrs) else "the kernel"
        outs = ", ".join(f"#{o.uid} {o.op.value} {tuple(o.shape)} from {o.origin}" for o in lk.kernel.outputs)
        Exception.__init__(self, f"lowered IR: {rule}; at {where} of the {_kind(lk)} kernel computing {outs}")
        self.lk, self.rule, self.at = lk, rule, at
        self.node = lk.kernel.output


def _v(x: Any) -> Any:
    """An enum member's value, anything else as it is."""
    return getattr(x, "value", x)


def _kind(lk: LoweredKernel) -> str:
    return str(_v(lk.kernel.kind))


def _rk(ins: Instr) -> str:
    """The loop an instruction runs in, as a name: "inner{k}" for reduction stage k."""
    return f"inner{ins.stage}" if ins.region is Region.INNER else _v(ins.region)


# --- the loop domain of each region ------------------------------------------------------------------
def _domains(lk: LoweredKernel) -> dict[str, tuple[int, ...] | None]:
    """Region -> the shape its views index (None: each load indexes its own buffer's shape)."""
    kind = _kind(lk)
    out = tuple(lk.out_shape)
    row = tuple(lk.keep_shape) + tuple(lk.red_shape)
    stages = {f"inner{k}": row for k in range(len(lk.stage_ops))}
    core = lk.kernel.core
    if kind == "elementwise":
        return {"outer": out}
    if kind in ("reduce", "rowwise"):
        return {"outer": out, "row": row, **stages}
    if kind == "rowtotal":
        return {"outer": tuple(lk.total.rows_shape) if lk.total else (), "final": out, **stages}
    if kind == "matmul" and core is not None:
        a = (lk.panels.a if lk.panels else None) or core.srcs[0]
        b = (lk.panels.b if lk.panels else None) or core.srcs[1]
        return {"a": tuple(a.shape), "b": tuple(b.shape), "outer": out}
    if kind == "conv":
        return {"cx": None, "cw": None, "outer": out}
    return {}  # sort, gather: the template indexes its buffers itself, no instructions


def _st_shape(st: Any) -> tuple[int, ...] | None:
    return tuple(st.shape) if isinstance(st, ShapeTracker) else None


def _index_range(v: View) -> tuple[int, int] | None:
    """Lowest and highest buffer position the valid elements of view v address (None: none)."""
    box = v.mask or tuple((0, s) for s in v.shape)
    if any(lo >= hi for lo, hi in box):
        return None
    lo = hi = v.offset
    for (a, b), st in zip(box, v.strides):
        ends = (a * st, (b - 1) * st)
        lo += min(ends)
        hi += max(ends)
    return lo, hi


# --- one rule per instruction kind --------------------------------------------------------------------
def _operands_here(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    for a in ins.args:
        if not isinstance(a, int) or not 0 <= a < i:
            return f"operand {a!r} is not an earlier instruction"
        if _rk(lk.instrs[a]) != _rk(ins):
            return f"operand {a} is computed in region {_rk(lk.instrs[a])!r}, not here"
    return None


def _alu_dtypes(lk: LoweredKernel, ins: Instr) -> str | None:
    dts = [lk.instrs[a].dtype for a in ins.args]
    if ins.op in (Op.CAST, Op.BITCAST):
        return None
    if ins.op is Op.WHERE:
        ok = dts[0] == bool_ and dts[1] == dts[2] == ins.dtype
    elif ins.op in COMPARISONS or ins.op is Op.NOT:
        ok = ins.dtype == bool_ and all(d == dts[0] for d in dts)
    else:
        ok = all(d == ins.dtype for d in dts)
    return None if ok else f"{ins.op.value} of {', '.join(d.name for d in dts)} gives {ins.dtype.name}"


def _alu(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    if ins.op not in ELEMENTWISE:
        return f"alu op {ins.op!r} is not elementwise"
    if len(ins.args) != PRIMITIVES[ins.op].arity:
        return f"{ins.op.value} takes {PRIMITIVES[ins.op].arity} operands, has {len(ins.args)}"
    return _operands_here(lk, i, ins) or _alu_dtypes(lk, ins)


def _pad(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    if len(ins.args) != 1 or ins.st is None:
        return "a pad guards one operand through a view"
    return _operands_here(lk, i, ins) or (None if lk.instrs[ins.args[0]].dtype == ins.dtype else
                                          f"pad of a {lk.instrs[ins.args[0]].dtype.name} value gives {ins.dtype.name}")


def _load(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    n_out = len(lk.kernel.outputs)
    if len(ins.args) != 1 or not isinstance(ins.args[0], int) or not n_out <= ins.args[0] < len(lk.buffers):
        return f"load of buffer {ins.args!r}: not one of the input buffers {n_out}..{len(lk.buffers) - 1}"
    buf = lk.buffers[ins.args[0]]
    if buf.dtype != ins.dtype:
        return f"load of {ins.dtype.name} from buffer {ins.args[0]} of {buf.dtype.name}"
    if not isinstance(ins.st, ShapeTracker):
        return "a load needs a view"
    span = _index_range(ins.st.views[0])
    if span is not None and (span[0] < 0 or span[1] >= buf.numel):
        return f"the view reads positions {span[0]}..{span[1]} of buffer {ins.args[0]} ({buf.numel} elements)"
    return None


def _const(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    if ins.args or not isinstance(ins.value, (bool, int, float)):
        return f"a constant has no operands and a number as value, not {ins.value!r}"
    return None


def _rand(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    seeds = lk.n_seeds
    if ins.args or not isinstance(ins.value, int) or not 0 <= ins.value < seeds:
        return f"random numbers of seed {ins.value!r}: the kernel has {seeds} seeds"
    return None if ins.st is not None else "random numbers need a view (their counter)"


def _acc(lk: LoweredKernel, i: int, ins: Instr) -> str | None:
    if not ins.args or any(not isinstance(a, int) or not 0 <= a < i for a in ins.args):
        return f"acc operands {ins.args!r} are not earlier instructions"
    regions = tuple(_rk(lk.instrs[a]) for a in ins.args)
    if isinstance(ins.value, int) and not isinstance(ins.value, bool) and ins.value != TOTAL:  # a stage's value
        k = ins.value
        if not 0 <= k < len(lk.stage_ops) or ins.op is not lk.stage_ops[k]:
            return f"acc of stage {k} ({ins.op}) does not match the stages {lk.stage_ops}"
        if ins.args != (lk.stage_results[k],):
            return f"acc of stage {k} reads {ins.args}, the stage accumulates {lk.stage_results[k]}"
        return None
    want = {Op.MATMUL: ("a", "b"), Op.CONV2D: ("cx", "cw")}.get(ins.op, ("outer",))  # the rest: a total
    return None if regions == want else f"acc of {_v(ins.op)} reads regions {regions}, not {want}"


_RULES = {"alu": _alu, "pad": _pad, "load": _load, "const": _const, "rand": _rand, "acc": _acc}
# the kinds whose value is per element of the domain, through a view of that shape
_VIEWED = frozenset({"load", "rand", "pad"})


def _check_instr(lk: LoweredKernel, domains: dict, i: int, ins: Instr) -> str | None:
    kind, region = _v(ins.kind), _rk(ins)
    rule = _RULES.get(kind)
    if rule is None:
        return f"unknown instruction kind {kind!r}"
    if region not in domains:
        return f"region {region!r} is not one of the {_kind(lk)} kernel's {sorted(domains)}"
    what = rule(lk, i, ins)
    if what is not None or kind not in _VIEWED:
        return what
    dom = domains[region]
    if dom is None and kind == "load":
        dom = tuple(lk.buffers[ins.args[0]].shape)  # conv operands: the buffer indexed as itself
    if dom is not None and _st_shape(ins.st) != dom:
        return f"its view has shape {_st_shape(ins.st)}, the {region!r} loop runs over {dom}"
    return None


def _check_kernel(lk: LoweredKernel, domains: dict) -> tuple[str, int | None] | None:
    outs = lk.kernel.outputs
    uids = [b.uid for b in lk.buffers]
    if len(set(uids)) != len(uids):
        return "a buffer is passed twice", None
    if [b.uid for b in lk.buffers[:len(outs)]] != [o.uid for o in outs]:
        return "the first buffers are not the kernel's outputs, in order", None
    if not domains:  # a template kernel indexes its buffers itself
        return ("a template kernel has no instructions", 0) if lk.instrs else None
    if len(lk.results) != len(outs) or len(lk.out_sts) != len(outs):
        return f"{len(lk.results)} results and {len(lk.out_sts)} output views for {len(outs)} outputs", None
    if not (len(lk.stage_ops) == len(lk.stage_results)):
        return f"{len(lk.stage_ops)} stage ops, {len(lk.stage_results)} stage results", None
    for k, r in enumerate(lk.stage_results):
        if not 0 <= r < len(lk.instrs) or _rk(lk.instrs[r]) != f"inner{k}":
            return f"stage {k} accumulates {r}, not a value of region 'inner{k}'", None
    for b, (r, out, st) in enumerate(zip(lk.results, outs, lk.out_sts)):
        if not 0 <= r < len(lk.instrs):
            return f"output {b} is stored from {r}, not an instruction", None
        ins = lk.instrs[r]
        if ins.dtype != out.dtype:
            return f"output {b} ({out.dtype.name}) is stored from a {ins.dtype.name} value", r
        dom = domains.get(_rk(ins))
        if dom is not None and _st_shape(st) != dom:
            return f"output {b} is stored through a view of shape {_st_shape(st)}, the loop runs over {dom}", r
    return None


def verify_lowered(lk: LoweredKernel) -> None:
    """Raise LoweredIRError at the first assumption of the renderers that `lk` breaks."""
    domains = _domains(lk)
    bad = _check_kernel(lk, domains)
    if bad is not None:
        raise LoweredIRError(lk, *bad)
    for i, ins in enumerate(lk.instrs):
        what = _check_instr(lk, domains, i, ins)
        if what is not None:
            raise LoweredIRError(lk, what, i)


# --- printing --------------------------------------------------------------------------------------
def _view_text(st: Any) -> str:
    if not isinstance(st, ShapeTracker):
        return str(st)
    parts = []
    for v in st.views:
        mask = f" mask={v.mask}" if v.mask else ""
        off = f"+{v.offset}" if v.offset else ""
        parts.append(f"{v.shape}:{v.strides}{off}{mask}")
    return " <- ".join(reversed(parts))  # the logical view first, the buffer's last


def _instr_text(lk: LoweredKernel, i: int) -> str:
    ins = lk.instrs[i]
    kind = _v(ins.kind)
    if kind == "load":
        what = f"buf{ins.args[0]}" if ins.args else "buf?"
    elif kind == "const":
        what = repr(ins.value)
    elif kind == "rand":
        what = f"seed{ins.value}"
    else:
        ops = ", ".join(f"%{a}" for a in ins.args)
        op = f"{_v(ins.op)} " if ins.op is not None else ""
        val = f" value={ins.value!r}" if ins.value is not None else ""
        what = f"{op}{ops}{val}"
    view = f"  view {_view_text(ins.st)}" if ins.st is not None else ""
    return f"%{i} = {kind} {what} {ins.dtype.name} [{_rk(ins)}]{view}"


def format_lowered(lk: LoweredKernel) -> str:
    """A lowered kernel as text: its domain, buffers, instructions and stores."""
    k = lk.kernel
    lines = [f"{_kind(lk)} kernel, out {tuple(lk.out_shape)}"
             + (f", keep {tuple(lk.keep_shape)} reduce {tuple(lk.red_shape)} stages "
                f"{[_v(o) for o in lk.stage_ops]} -> {lk.stage_results}" if lk.stage_ops else "")]
    n_out = len(k.outputs)
    for b, n in enumerate(lk.buffers):
        role = "out" if b < n_out else "in "
        lines.append(f"  buf{b} {role} #{n.uid} {n.op.value} {tuple(n.shape)} {n.dtype.name}")
    lines += [f"  {_instr_text(lk, i)}" for i in range(len(lk.instrs))]
    for b, (r, st) in enumerate(zip(lk.results, lk.out_sts)):
        lines.append(f"  store buf{b} <- %{r}  view {_view_text(st)}")
    return "\n".join(lines)
