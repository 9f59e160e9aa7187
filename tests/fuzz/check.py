"""Checking one program: lazygrad (fused, unfused, gradients) against the references.

- forward: lazygrad's fused values against the numpy float64 reference, and the unfused
  values (`lg.config.override(fuse=False)`: one kernel per primitive) against it too;
- gradient: `lg.grad` of the program's gradient output against torch float64 autograd of the
  same program;
- errors: an op the reference refuses (torch raises) must raise in lazygrad as well, when it is
  built (a lazy index out of range: at realize, under LAZYGRAD_CHECK_INDEX).

A comparison is dtype-aware: shapes and dtypes must be equal; integers and bools exactly
equal; floats within a tolerance three times the spread of the perturbed references (plus a few
units in the last place); NaN positions and infinities must match. Elements whose reference is
unstable under rounding-sized perturbations (a comparison that flips, an overflow at the edge)
are not compared. Gradients add torch's own float32 run to the spread, a norm-wise term and a
relative floor (GRAD_RTOL): see `compare`.

Programs are checked in batches realized together (one schedule, one OpenCL program build:
PoCL's build is most of a small program's cost); a failure inside a batch is re-checked alone.

Public names: Failure, Outcome, check_program, check_batch, compare, PERTURBED_RUNS.
"""
from __future__ import annotations

import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

import lazygrad as lg
from lazygrad import Tensor

from .ops import TABLE
from .program import EPS, Noise, Program, code_for, evaluate
from .refs import TR, R, RefError, is_float
from .values import np_dtype

PERTURBED_RUNS = 3
GRAD_RTOL = {"float32": 1e-4, "float64": 1e-12}
_LG_ENV = {"lg": lg, "Tensor": Tensor, "np": np, "nan": float("nan"), "inf": float("inf")}


@dataclass
class Failure:
    kind: str          # forward | unfused | grad | unfused-grad | raised | no-error | error-type | reference | law | harness
    value: str         # the value (or leaf, for gradients) that differs
    message: str
    category: str = "" # dtype | shape | nan | inf | value (what differs), or the exception type

    def same_as(self, other: Failure) -> bool:
        """The same failure for the shrinker: kind and category (a NaN mismatch that becomes a
        tolerance miss is another bug)."""
        return self.kind == other.kind and self.category == other.category


@dataclass
class Outcome:
    forward: bool = False
    unfused: bool = False
    grad: bool = False
    error: bool = False
    failure: Failure | None = None
    elements: int = 0


# --- comparison ---------------------------------------------------------------------------------------
def compare(got: np.ndarray, got_dtype: str, ref: np.ndarray, ref_dtype: str, perturbed: list[np.ndarray],
            normwise: bool = False, scale: float = 0.0, computed_in: str | None = None) -> str | None:
    """None if `got` matches the reference; otherwise why not (first bad element). `normwise`
    (gradients): each element may also be off by a few units in the last place of the
    largest element and by GRAD_RTOL of its own value: lazygrad differentiates composite
    functions term by term (silu' = s + x s (1 - s) cancels near x = -1.3, softmax's backward
    goes through its division rule) where torch uses closed forms. `scale` (gradients): the
    largest incoming gradient (the grad_output weights): a gradient that cancels to about 0 (a
    shift-invariant softmax: (sum g s)(1 - sum s)) keeps rounding errors of that size, 1.5e-8
    in float32 where torch float64 has -1.7e-18 (fuzz seed 663362205). `computed_in`
    (gradients): the least precise float dtype the program computes in, whose rounding the
    tolerance allows for: a float64 leaf's gradient through a float32 result (a float64 0-d
    operand of a float32 tensor gives float32, like torch) is summed in float32 (seed 974916945)."""
    if got_dtype != ref_dtype:
        return f"dtype: {got_dtype}, expected {ref_dtype}"
    if tuple(got.shape) != tuple(np.shape(ref)):
        return f"shape: {tuple(got.shape)}, expected {tuple(np.shape(ref))}"
    ref = np.asarray(ref)
    if not is_float(ref_dtype):
        stable = np.ones(ref.shape, bool)
        for q in perturbed:
            stable &= np.asarray(q) == ref
        bad = stable & (got != ref)
        if bad.any():
            i = _first(bad)
            return f"value: element {i}: {got[i]!r}, expected {ref[i]!r}"
        return None
    g = got.astype(np.float64)
    qs = [np.asarray(q, np.float64) for q in perturbed]
    if normwise:
        # an infinite incoming gradient through a composite op's terms (silu: inf * s + inf *
        # x s' at x = 0 has an inf * 0) is NaN where torch's closed form gives +-inf: both
        # non-finite, documented in docs/semantics.md ("Gradients through composite ops")
        g = np.where(np.isnan(g) & np.isinf(ref), ref, g)
    nan = np.isnan(ref)
    stable_nan = np.ones(ref.shape, bool)
    for q in qs:
        stable_nan &= np.isnan(q) == nan
    bad = stable_nan & (np.isnan(g) != nan)
    if bad.any():
        i = _first(bad)
        return f"nan: element {i}: {g[i]!r}, expected {ref[i]!r} (NaN positions differ)"
    inf = np.isinf(ref)
    stable_inf = stable_nan & ~nan
    for q in qs:
        stable_inf &= np.where(inf, q == ref, np.isfinite(q))
    bad = stable_inf & ((inf & (g != ref)) | (~inf & ~np.isfinite(g)))
    if bad.any():
        i = _first(bad)
        return f"inf: element {i}: {g[i]!r}, expected {ref[i]!r}"
    with np.errstate(invalid="ignore", over="ignore"):
        spread = np.zeros(ref.shape)
        for q in qs:
            spread = np.maximum(spread, np.where(np.isfinite(q) & np.isfinite(ref), np.abs(q - ref), 0.0))
        eps = EPS[ref_dtype] if computed_in is None else max(EPS[ref_dtype], EPS[computed_in])
        tiny = np.finfo(np_dtype(ref_dtype)).tiny
        tol = 3 * spread + 4 * eps * np.abs(ref) + 4 * tiny
        if normwise and np.isfinite(ref).any():
            rtol = GRAD_RTOL[ref_dtype] if computed_in is None else max(GRAD_RTOL[ref_dtype], GRAD_RTOL[computed_in])
            tol = tol + 8 * eps * max(np.abs(ref[np.isfinite(ref)]).max(), scale) + rtol * np.abs(ref)
        fin = stable_inf & ~inf & np.isfinite(g)
        bad = fin & ~(np.abs(g - ref) <= tol)
    if bad.any():
        i = _first(bad)
        return f"value: element {i}: {g[i]!r}, expected {ref[i]!r} (tolerance {tol[i]:.3g})"
    return None


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.argwhere(mask)[0]) if mask.ndim else ()


# --- lazygrad -----------------------------------------------------------------------------------------
def leaf_code(leaf, literal: bool) -> str:
    """The lazygrad line making a leaf (with the data as a literal for reproducers)."""
    from .ops import lit
    grad = ", requires_grad=True" if leaf.grad else ""
    if leaf.is_full:
        return f"Tensor.full({lit(tuple(leaf.data.shape))}, {lit(leaf.full)}, dtype=lg.{leaf.dtype}{grad})"
    data = array_literal(leaf.data, leaf.dtype) if literal else "_data"
    return f"Tensor({data}, dtype=lg.{leaf.dtype}{grad})"


def array_literal(a: np.ndarray, d: str) -> str:
    npd = "bool_" if d == "bool" else d
    if a.size == 0:
        return f"np.zeros({tuple(a.shape)}, dtype=np.{npd})"

    def item(v):
        if d == "bool":
            return repr(bool(v))
        if d.startswith(("int", "uint")):
            return repr(int(v))
        v = float(v)
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))

    def nest(x):
        return "[" + ", ".join(nest(e) for e in x) + "]" if isinstance(x, list) else item(x)
    body = nest(a.tolist())
    return f"np.array({body}, dtype=np.{npd})"


def build_lazygrad(p: Program, extra=None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The program as lazygrad tensors (every value), and the leaves."""
    env: dict[str, Tensor] = {}
    leaves = {}
    for leaf in p.leaves:
        code = leaf_code(leaf, literal=False)
        env[leaf.name] = leaves[leaf.name] = eval(code, _LG_ENV, {"_data": leaf.data})  # noqa: S307
    for ins in (p.instrs if extra is None else [*p.instrs, extra]):
        row = TABLE[ins.row]
        src = code_for(row.lg, [f"_v[{a!r}]" for a in ins.args], ins.params)
        env[ins.name] = eval(src, _LG_ENV, {"_v": env})  # noqa: S307
    return env, leaves


# --- the references -----------------------------------------------------------------------------------
@dataclass
class References:
    values: dict[str, np.ndarray]
    perturbed: list[dict[str, np.ndarray]]
    noises: list[Noise]
    dtypes: dict[str, str] = field(default_factory=dict)


def references(p: Program) -> References:
    base, _ = evaluate(p, "np")
    noises, pert = [], []
    for k in range(PERTURBED_RUNS):
        nz = Noise()
        env, _ = evaluate(p, "np", noise=nz, make_noise=k)
        noises.append(nz)
        pert.append(env)
    dtypes = {leaf.name: leaf.dtype for leaf in p.leaves}
    for ins in p.instrs:
        dtypes[ins.name] = _dtype_of(ins, dtypes)
    return References(base, pert, noises, dtypes)


def _dtype_of(ins, dtypes) -> str:
    row = TABLE[ins.row]
    ds = [dtypes[a] for a in ins.args]
    return row.out(row.conv(ds, ins.params), ins.params)


def torch_grads(p: Program, noise: Noise | None, native: bool = False) -> dict[str, np.ndarray] | None:
    """torch autograd of the program (float64 with values rounded to their dtype after every
    op; `native`: in the program's own dtypes, torch's float32 rounding included). None where
    torch has no gradient to compare with — nothing requires grad, or torch refuses the
    program: its conv2d raises on an input of zero width, which lazygrad computes (an empty
    result); that RuntimeError ended a soak run (seed 212241830's batch)."""
    try:
        with TR.native() if native else nullcontext():
            env, leaves = evaluate(p, "torch", noise=noise, grad=True)
    except RuntimeError:
        return None
    y = env[p.grad_output]
    wrt = [leaves[leaf.name] for leaf in p.leaves if leaf.grad]
    if not y.requires_grad or not wrt:
        return None
    w = torch.tensor(R.rnd(p.grad_weight.astype(np.float64), "float64"), dtype=y.dtype)
    gs = torch.autograd.grad(y, wrt, w, allow_unused=True)
    return {leaf.name: (np.zeros(leaf.data.shape) if g is None else g.detach().double().numpy())
            for leaf, g in zip([lf for lf in p.leaves if lf.grad], gs)}


def _float32_reproduces(p: Program, o: str, got: np.ndarray, gd: str, refs: References, why: str) -> str | None:
    """A NaN or infinity where the float64 reference is finite is accepted where torch,
    computing the program in its own dtypes (float32 rounding included), gives the same
    non-finite value (and an exact-dtype result where it gives the same result everywhere): float32 cannot hold the reference there (log_softmax of a row with one
    dominant value is 0 in float32, about -8e-9 in float64, and 2.9e-39 / it is inf: fuzz seed
    772434723). Everything else still compares with the float64 reference."""
    with TR.native():
        env, _ = evaluate(p, "torch")
    t = env[o]
    native = np.asarray(t.detach().numpy() if t.dtype != torch.bool else t.numpy(), np.float64)
    ref = np.asarray(refs.values[o], np.float64)
    g = np.asarray(got, np.float64)
    if not is_float(gd):
        # an exact result (a comparison, a cast) of a value float32 rounded the way torch
        # float32 does (0 ** 0 of a dominant log_softmax entry is 1 there: fuzz seed 772437327)
        return None if np.array_equal(g, native) else why
    # where lazygrad is exactly torch float32's value, torch float32 is the reference (a NaN in
    # float64 that float32 rounding avoids, or an infinity it makes)
    same = (np.isnan(native) & np.isnan(g)) | (native == g)
    if not same.any():
        return why
    ref2 = np.where(same, native, ref)
    pert = [np.where(same, native, np.asarray(q[o], np.float64)) for q in refs.perturbed]
    again = compare(got, gd, ref2.astype(np.asarray(refs.values[o]).dtype), refs.dtypes[o], pert)
    return None if again is None else why


def torch_forward_mismatch(p: Program, refs: References) -> str | None:
    """The torch reference must agree with the numpy one (a disagreement is a fuzzer bug)."""
    env, _ = evaluate(p, "torch")
    for o in p.outputs:
        t = env[o]
        got = t.detach().numpy() if t.dtype != torch.bool else t.numpy()
        why = compare(np.asarray(got), refs.dtypes[o], refs.values[o], refs.dtypes[o], [q[o] for q in refs.perturbed])
        if why:
            return f"{o}: torch reference {why}"
    return None


# --- programs ----------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    """A program with its references, before lazygrad runs."""

    p: Program
    refs: References | None
    want_grad: bool
    out: Outcome


def _prepare(p: Program, check_refs: bool) -> _Prepared:
    out = Outcome()
    want_grad = p.grad_output is not None and any(leaf.grad for leaf in p.leaves)
    try:
        refs = references(p)
    except RefError as e:
        out.failure = Failure("reference", "", f"numpy reference refused the program: {e}")
        return _Prepared(p, None, want_grad, out)
    if check_refs:
        why = torch_forward_mismatch(p, refs)
        if why:
            out.failure = Failure("reference", why.split(":")[0], why)
    return _Prepared(p, refs, want_grad, out)


def _built(p: Program, with_grad: bool) -> tuple[list[Tensor], list[Tensor]]:
    env, leaves = build_lazygrad(p)
    grads: list[Tensor] = []
    wrt = [leaves[leaf.name] for leaf in p.leaves if leaf.grad]
    if with_grad and p.grad_output is not None and wrt:
        y = env[p.grad_output]
        grads = lg.grad(y, wrt, grad_output=Tensor(p.grad_weight, dtype=y.dtype), allow_unused=True)
    return [env[o] for o in p.outputs], grads


def _raised(kind: str, e: BaseException) -> Failure:
    f = Failure("raised" if kind == "forward" else "unfused-raised", "", f"{type(e).__name__}: {e}".splitlines()[0][:300],
                type(e).__name__)
    f.traceback = traceback.format_exc()  # type: ignore[attr-defined]
    return f


def _run_batch(items: list[_Prepared], fuse: bool, kind: str) -> list[tuple[list, list] | None]:
    """Build every program, realize them all in ONE realize (one schedule and one program
    build for the batch: most of a fuzz program's cost is PoCL's fixed build overhead), read
    back. A program that fails to build is marked; if the shared realize raises, each
    program is realized alone to find the culprit."""
    built: list[tuple[list[Tensor], list[Tensor]] | None] = []
    with lg.config.override(fuse=fuse, cache=False, check_index=True):
        for it in items:
            try:
                built.append(_built(it.p, it.want_grad))
            except Exception as e:  # noqa: BLE001 - any exception is a finding
                it.out.failure = _raised(kind, e)
                built.append(None)
        live = [b for b in built if b is not None]
        retries = lg.counters.row_fusion_retries
        try:
            lg.realize(*[t for outs, gs in live for t in (*outs, *gs)])
        except Exception:  # noqa: BLE001 - realize each program alone to find which one raises
            for it, b in zip(items, built):
                if b is None:
                    continue
                try:
                    lg.realize(*b[0], *b[1])
                except Exception as e:  # noqa: BLE001
                    it.out.failure = _raised(kind, e)
        if lg.counters.row_fusion_retries != retries:
            # the law "the scheduler never needs lowering to say yes" (docs/design.md)
            for it in items:
                if it.out.failure is None:
                    it.out.failure = Failure("law", "", "lowering refused a row fusion the scheduler made "
                                                        "(engine retried without it: counters.row_fusion_retries)")
        result: list[tuple[list, list] | None] = []
        for it, b in zip(items, built):
            if b is None or it.out.failure is not None:
                result.append(None)
                continue
            try:
                result.append(([(t.numpy(), t.dtype.name) for t in b[0]], [g.numpy() for g in b[1]]))
            except Exception as e:  # noqa: BLE001
                it.out.failure = _raised(kind, e)
                result.append(None)
    return result


def _compare(it: _Prepared, vals: list, gvals: list, fuse: bool, kind: str) -> None:
    p, refs, out = it.p, it.refs, it.out
    for o, (got, gd) in zip(p.outputs, vals):
        why = compare(got, gd, refs.values[o], refs.dtypes[o], [q[o] for q in refs.perturbed])
        if why and (why.split(":")[0] in ("nan", "inf") or (why.startswith("value") and not is_float(gd))):
            why = _float32_reproduces(p, o, got, gd, refs, why)
        if why:
            out.failure = Failure(kind, o, f"{o} ({_row_of(p, o)}): {why}", why.split(":")[0])
            return
        out.elements += int(np.size(got))
    setattr(out, kind, True)
    if not (it.want_grad and gvals):
        return
    base = torch_grads(p, None)
    if base is None:
        return
    # the spread includes torch computing the same gradient in float32: rounding, overflow and
    # cancellation inside the gradient formulas themselves (1 - tanh^2 near 1, x / y^2 with a
    # tiny y), which perturbing the forward values does not reach
    pert = [torch_grads(p, nz) for nz in refs.noises] + [torch_grads(p, None, native=True)]
    w = np.abs(p.grad_weight.astype(np.float64))
    scale = float(w[np.isfinite(w)].max()) if np.isfinite(w).any() else 0.0
    floats = [d for d in refs.dtypes.values() if d in EPS]
    low = max(floats, key=lambda d: EPS[d]) if floats else None
    for leaf, g in zip([lf for lf in p.leaves if lf.grad], gvals):
        ref = R.rnd(base[leaf.name], leaf.dtype)
        why = compare(g, leaf.dtype, ref, leaf.dtype, [R.rnd(q[leaf.name], leaf.dtype) for q in pert if q is not None],
                      normwise=True, scale=scale, computed_in=low)
        native = pert[-1]
        if why and why.split(":")[0] in ("nan", "inf") and native is not None:
            # torch computing in float32 overflows the same gradient (an infinite incoming
            # gradient through sigmoid's terms: NaN here, -inf in torch float32, finite in
            # float64; fuzz seed 772437777): where both are non-finite, compare with it there
            n32 = np.asarray(native[leaf.name], np.float64)
            both = ~np.isfinite(n32) & ~np.isfinite(np.asarray(g, np.float64))
            if both.any():
                ref2 = np.where(both, np.asarray(g, np.float64), np.asarray(ref, np.float64))
                again = compare(g, leaf.dtype, ref2, leaf.dtype,
                                [np.where(both, np.asarray(g, np.float64), R.rnd(q[leaf.name], leaf.dtype))
                                 for q in pert if q is not None], normwise=True, scale=scale, computed_in=low)
                why = None if again is None else why
        if why:
            out.failure = Failure("grad" if fuse else "unfused-grad", leaf.name, f"d{p.grad_output}/d{leaf.name}: {why}",
                                  why.split(":")[0])
            return
    out.grad = out.grad or fuse


def check_batch(ps: list[Program], unfused: list[bool] | None = None, check_refs: bool = False) -> list[Outcome]:
    """Check programs together: fused (all of them, one realize), unfused (those marked in
    `unfused`, one realize), and their error probes. A program that fails inside a batch but
    not alone is reported with the seeds it was realized with. `check_refs`: also check that
    the torch program agrees with the numpy one (a fuzzer self-test for new table rows; off by
    default: torch has quirks of its own, 0.0 / a float64 denormal is NaN in torch 2.13)."""
    items = [_prepare(p, check_refs) for p in ps]
    unfused = unfused if unfused is not None else [True] * len(ps)
    for fuse, kind in ((True, "forward"), (False, "unfused")):
        todo = [it for it, u in zip(items, unfused) if it.out.failure is None and (fuse or u)]
        if not todo:
            continue
        for it, r in zip(todo, _run_batch(todo, fuse, kind)):
            if r is not None:
                _compare(it, *r, fuse, kind)
    for it in items:
        if it.out.failure is None and it.p.error is not None:
            it.out.failure = check_error(it.p)
            it.out.error = it.out.failure is None
    if len(items) > 1:
        for it in items:
            if it.out.failure is not None:
                alone = check_batch([it.p], [True], check_refs)[0]
                if alone.failure is None:
                    it.out.failure.message += (f" [only when realized together with seeds "
                                               f"{[q.seed for q in ps if q is not it.p]}]")
                    it.out.failure.kind = "batch-" + it.out.failure.kind
                else:
                    it.out.failure = alone.failure
    if any(it.out.failure is not None and it.out.failure.kind == "law" for it in items):
        # the retry counter is one per realize: once the program that needs it is found alone,
        # the others of its batch only shared its realize
        for it in items:
            if it.out.failure is not None and it.out.failure.kind == "batch-law":
                it.out.failure = None
    return [it.out for it in items]


def check_program(p: Program, unfused: bool = True, check_refs: bool = False) -> Outcome:
    return check_batch([p], [unfused], check_refs)[0]


def _row_of(p: Program, name: str) -> str:
    for ins in p.instrs:
        if ins.name == name:
            return ins.row
    return "cast"


ACCEPTED_ERRORS = (ValueError, IndexError, TypeError, ZeroDivisionError, RuntimeError)


def check_error(p: Program) -> Failure | None:
    """The reference refused p.error: lazygrad must raise when building it, or (a lazy index
    out of range, LAZYGRAD_CHECK_INDEX=1) when realizing it."""
    ins = p.error
    with lg.config.override(cache=False, check_index=True):
        try:
            env, _ = build_lazygrad(p, extra=ins)
        except ACCEPTED_ERRORS:
            return None
        except Exception as e:  # noqa: BLE001
            return Failure("error-type", "err", f"{ins.row}: raised {type(e).__name__}: {e}"[:300])
        if ins.row == "take":
            try:
                env[ins.name].realize()
            except IndexError:
                return None
            except Exception as e:  # noqa: BLE001
                return Failure("error-type", "err", f"take: raised {type(e).__name__} at realize: {e}"[:300])
    return Failure("no-error", "err", f"{ins.row} {ins.params} on {[p.shapes.get(a) for a in ins.args]} "
                                      f"{[p.dtypes.get(a) for a in ins.args]}: torch raises, lazygrad does not")
