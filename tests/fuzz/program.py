"""Fuzz programs: typed records, the seeded generator, and the reference evaluators.

A `Program` is input leaves plus a list of `Instr` (an op of the table applied to earlier
values with literal parameters). The generator builds it and evaluates the numpy reference as
it goes (so a row's `make` can look at shapes, dtypes and values); `evaluate` runs it again in
numpy or torch, optionally *perturbed*: every op that rounds gets a random error of a few
units in the last place (scaled by the op's `mag` for reductions). The spread of the perturbed
runs around the unperturbed one is the tolerance a result is compared with: it grows where
the program cancels or amplifies rounding errors, and it exposes discontinuities (a
comparison, cast or argmax that flips under a rounding-sized change is not checked).

Public names: Leaf, Instr, Program, generate, evaluate, Noise, code_for, ENV_NP, ENV_TORCH.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .ops import ROWS, TABLE, lit
from .refs import TR, R, RefError, is_float
from .values import DTYPES, FLOATS, np_dtype, random_array, random_shape, special_scalar

_NOFULL = object()


@dataclass
class Leaf:
    name: str
    dtype: str
    data: np.ndarray               # in the nominal dtype (float32 data for a float32 leaf)
    grad: bool = False              # requires_grad (gradient programs)
    full: Any = _NOFULL             # Tensor.full(shape, full) instead of an array

    @property
    def is_full(self) -> bool:
        return self.full is not _NOFULL


@dataclass
class Instr:
    name: str
    row: str
    args: tuple[str, ...]
    params: dict[str, Any]


@dataclass
class Program:
    seed: int
    leaves: list[Leaf]
    instrs: list[Instr]
    outputs: list[str]
    grad_output: str | None = None   # the float value whose gradient is checked
    grad_weight: np.ndarray | None = None
    error: Instr | None = None       # an extra op the reference refuses: lazygrad must raise
    dtypes: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def copy(self, **kw) -> Program:
        return replace(self, leaves=list(self.leaves), instrs=list(self.instrs), outputs=list(self.outputs),
                       dtypes=dict(self.dtypes), shapes=dict(self.shapes), **kw)


# --- evaluation ---------------------------------------------------------------------------------------
ENV_NP = {"np": np, "R": R, "nan": np.nan, "inf": np.inf}
ENV_TORCH = {"torch": torch, "F": F, "TR": TR, "np": np, "nan": float("nan"), "inf": float("inf")}


def code_for(template: str, args: list[str], params: dict[str, Any]) -> str:
    names = dict(zip("xyz", args))
    return template.format(**names, **{k: lit(v) for k, v in params.items()})


@functools.lru_cache(maxsize=8192)
def _compiled(src: str):
    return compile(src, "<fuzz>", "eval")


def run_template(template: str, env: dict, operands: list[Any], params: dict[str, Any]) -> Any:
    src = code_for(template, ["_x", "_y", "_z"][:len(operands)], params)
    return eval(_compiled(src), env, dict(zip(("_x", "_y", "_z"), operands)))  # noqa: S307


K_ULPS = 16  # rounding error injected per op in a perturbed run, in units of eps
EPS = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}


@dataclass
class Noise:
    """The errors injected into perturbed run k: value name -> (relative, absolute) arrays."""

    terms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def leaf_value(leaf: Leaf, lib: str, grad: bool = False):
    a = leaf.data
    rep = R.rnd(a.astype(np.float64) if is_float(leaf.dtype) else a, leaf.dtype)
    return TR.tensor(rep, leaf.dtype, grad and leaf.grad) if lib == "torch" else rep


def _apply(ins: Instr, srcs: list, in_dtypes: list[str], lib: str):
    row = TABLE[ins.row]
    targets = row.conv(in_dtypes, ins.params)
    conv = TR.conv if lib == "torch" else R.conv
    ops = [conv(s, d, t) for s, d, t in zip(srcs, in_dtypes, targets)]
    out_d = row.out(targets, ins.params)
    params = ins.params
    c = params.get("c")
    if lib == "np" and isinstance(c, float) and math.isfinite(c) and targets:
        # torch computes with the Python scalar converted to the tensor's float dtype: x % 1e30
        # on float32 uses float32(1e30) (fuzz seed 772436415 compared with the exact 1e30)
        cd = targets[0] if is_float(targets[0]) else out_d if is_float(out_d) else None
        if cd is not None:
            params = {**params, "c": float(R.rnd(np.float64(c), cd))}
    with np.errstate(all="ignore"):
        v = run_template(row.torch if lib == "torch" else row.np, ENV_TORCH if lib == "torch" else ENV_NP, ops,
                         params)
    v = TR.rnd(v, out_d) if lib == "torch" else R.rnd(v, out_d)
    return v, out_d, ops


def evaluate(p: Program, lib: str = "np", noise: Noise | None = None, make_noise: int | None = None,
             grad: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values of every leaf and instruction (numpy arrays or torch tensors), and the leaves
    (torch tensors requiring grad when `grad`). `make_noise=k` draws perturbed run k's noise
    into `noise` (numpy only); a given `noise` is applied."""
    env: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    leaves = {}
    for leaf in p.leaves:
        env[leaf.name] = leaves[leaf.name] = leaf_value(leaf, lib, grad)
        dtypes[leaf.name] = leaf.dtype
    for i, ins in enumerate(p.instrs):
        v, d, ops = _apply(ins, [env[a] for a in ins.args], [dtypes[a] for a in ins.args], lib)
        row = TABLE[ins.row]
        if is_float(d) and not row.exact:
            if make_noise is not None:
                rng = np.random.default_rng([p.seed, make_noise, i])
                shape = np.shape(v)
                rel = K_ULPS * EPS[d] * rng.uniform(-1, 1, shape)
                ab = np.zeros(shape)
                if row.mag is not None:
                    with np.errstate(all="ignore"):
                        m = np.asarray(run_template(row.mag, ENV_NP, ops, ins.params), np.float64)
                    ab = K_ULPS * EPS[d] * np.where(np.isfinite(m), m, 0.0) * rng.uniform(-1, 1, shape)
                    # a sum whose terms' magnitudes overflow the dtype depends on the order of
                    # its additions (inf - inf or not): not checked there (NaN in this run)
                    over = np.broadcast_to(m > np.finfo(np_dtype(d)).max, shape)
                    ab = np.where(over, np.nan, ab)
                noise.terms[ins.name] = (rel, ab)
            if noise is not None and ins.name in noise.terms:
                rel, ab = noise.terms[ins.name]
                if lib == "torch":
                    v = TR.rnd(v * torch.tensor(1 + rel) + torch.tensor(ab), d)
                else:
                    with np.errstate(all="ignore"):
                        v = R.rnd(v * (1 + rel) + ab, d)
        env[ins.name] = v
        dtypes[ins.name] = d
    return env, leaves


# --- generation -----------------------------------------------------------------------------------------
@dataclass
class Value:
    name: str
    dtype: str
    shape: tuple[int, ...]
    ref: np.ndarray


_WEIGHTS = np.array([r.weight for r in ROWS])
_LEAF_DTYPES = (("float32", 0.45), ("float64", 0.1), ("int32", 0.1), ("int64", 0.05), ("bool", 0.1),
                ("uint8", 0.06), ("int8", 0.05), ("int16", 0.04), ("uint32", 0.05))


class GenContext:
    """What a row's `make` sees: the random stream, the values so far, and helpers that pick
    an existing value or add a new input leaf."""

    def __init__(self, rng: np.random.Generator, program: Program, grad: bool, errors: bool) -> None:
        self.rng = rng
        self.p = program
        self.grad = grad
        self.values: dict[str, Value] = {}
        self._errors = errors
        self.wanted_error = False
        self.new_leaves: list[Leaf] = []

    def want_error(self) -> bool:
        """Should this make deliberately produce parameters torch refuses? (sometimes)"""
        if self._errors and not self.wanted_error and self.rng.random() < 0.06:
            self.wanted_error = True
        return self.wanted_error

    def dtype(self, choices: tuple[str, ...]) -> str:
        if self.grad:
            fl = [d for d in choices if d in FLOATS]
            if fl and self.rng.random() < 0.85:
                return fl[0] if self.rng.random() < 0.85 or len(fl) == 1 else fl[1]
        ws = np.array([w for d, w in _LEAF_DTYPES if d in choices])
        return str(self.rng.choice([d for d, _ in _LEAF_DTYPES if d in choices], p=ws / ws.sum()))

    def _add_leaf(self, leaf: Leaf) -> Value:
        self.new_leaves.append(leaf)
        v = Value(leaf.name, leaf.dtype, tuple(leaf.data.shape), leaf_value(leaf, "np"))
        self.values[leaf.name] = v
        return v

    def _leaf_name(self) -> str:
        return f"x{len(self.p.leaves) + len(self.new_leaves)}"

    def leaf(self, shape: tuple[int, ...], d: str, profile: str | None = None) -> Value:
        rng = self.rng
        if profile is None:
            profile = "finite" if self.grad else ("special" if rng.random() < 0.5 else "normal")
        if not self.grad and rng.random() < 0.08:
            value = special_scalar(rng, d)
            data = np.full(shape, value, dtype=np_dtype(d))
            return self._add_leaf(Leaf(self._leaf_name(), d, data, full=value))
        data = random_array(rng, shape, d, profile)
        return self._add_leaf(Leaf(self._leaf_name(), d, data, grad=self.grad and d in FLOATS))

    def leaf_from(self, data: np.ndarray, d: str) -> Value:
        return self._add_leaf(Leaf(self._leaf_name(), d, data.astype(np_dtype(d))))

    def pick(self, pred) -> Value | None:
        """A random existing value satisfying `pred`, preferring recent ones."""
        vals = [v for v in self.values.values() if pred(v)]
        if not vals:
            return None
        w = np.arange(1, len(vals) + 1, dtype=float)
        return vals[int(self.rng.choice(len(vals), p=w / w.sum()))]

    def producer(self, v: Value) -> Instr | None:
        for ins in self.p.instrs:
            if ins.name == v.name:
                return ins
        return None

    def value(self, name: str) -> Value:
        return self.values[name]


def generate(seed: int, errors: bool = True) -> Program:
    """A random program: 1-2 input leaves and 1-8 ops. About 45% are gradient programs (float
    leaves with finite values, the last float value's gradient checked against torch)."""
    rng = np.random.default_rng(seed)
    grad = bool(rng.random() < 0.5)
    p = Program(seed, [], [], [])
    ctx = GenContext(rng, p, grad, errors)
    for _ in range(int(rng.integers(1, 3))):
        d = ctx.dtype(DTYPES) if not grad else "float32"
        ctx.leaf(random_shape(rng, allow_zero=rng.random() < 0.12), d)
    p.leaves.extend(ctx.new_leaves)
    ctx.new_leaves.clear()
    n_ops = int(rng.integers(1, 9))
    for _ in range(n_ops):
        for _attempt in range(30):
            if _try_op(ctx, rng):
                break
    vals = list(ctx.values.values())
    last = vals[-1]
    p.outputs = [last.name]
    if len(vals) > 2 and rng.random() < 0.3:
        extra = vals[int(rng.integers(0, len(vals) - 1))]
        if extra.name not in p.outputs and extra.name.startswith("v"):
            p.outputs.append(extra.name)
    if grad:
        fl = [v for v in reversed(vals) if v.dtype in FLOATS and v.name.startswith("v")]
        if fl:
            p.grad_output = fl[0].name
            p.grad_weight = random_array(rng, fl[0].shape, fl[0].dtype, "normal")
            if p.grad_output not in p.outputs:
                p.outputs.append(p.grad_output)
    for name, v in ctx.values.items():
        p.dtypes[name], p.shapes[name] = v.dtype, v.shape
    return p


def _try_op(ctx: GenContext, rng: np.random.Generator) -> bool:
    row = ROWS[int(rng.choice(len(ROWS), p=_WEIGHTS / _WEIGHTS.sum()))]
    x = ctx.pick(lambda v: v.dtype in row.x)
    if x is None:
        return False
    ctx.new_leaves.clear()
    wanted_before = ctx.wanted_error
    made = row.make(ctx, x)
    if made is None:
        ctx.wanted_error = wanted_before
        for leaf in ctx.new_leaves:
            ctx.values.pop(leaf.name, None)
        return False
    operands, params = made
    name = f"v{len(ctx.p.instrs) + 1}"
    ins = Instr(name, row.name, tuple(o.name for o in operands), params)
    try:
        with np.errstate(all="ignore"):
            val, d, _ = _apply(ins, [o.ref for o in operands], [o.dtype for o in operands], "np")
    except RefError:
        ok = ctx.wanted_error and not wanted_before and ctx.p.error is None
        if ok:
            ctx.p.leaves.extend(ctx.new_leaves)
            ctx.p.error = Instr("err", row.name, ins.args, params)
        else:
            for leaf in ctx.new_leaves:
                ctx.values.pop(leaf.name, None)
        ctx.wanted_error = wanted_before
        return False
    except Exception as e:  # a reference that cannot evaluate these operands is a fuzzer bug
        raise AssertionError(f"fuzz reference {row.name} failed on {[o.shape for o in operands]} "
                             f"{[o.dtype for o in operands]} {params}: {type(e).__name__}: {e}") from e
    if ctx.wanted_error and not wanted_before:
        ctx.wanted_error = wanted_before  # the make asked for an error the reference did not raise
    if np.size(val) > 2000:
        for leaf in ctx.new_leaves:
            ctx.values.pop(leaf.name, None)
        return False
    ctx.p.leaves.extend(ctx.new_leaves)
    ctx.p.instrs.append(ins)
    ctx.values[name] = Value(name, d, tuple(np.shape(val)), val)
    return True
