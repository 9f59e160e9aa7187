"""The op surface of issue 16 (part A) against torch, from one table of cases.

Each `Case` names a lazygrad call and the torch call it must equal, the input domain and the
dtypes. Every case is checked on a plain input, a non-contiguous one (a transposed view), a
size-0 dim, a size-1 dim and a 0-d tensor: values vs torch in each dtype, and gradients vs
torch.autograd for the float cases marked `grad`. Then: torch's conventions (max(dim) pairs,
`to`), and kernel counts (elementwise ops add no kernel to a fused chain).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
import lazygrad.nn.functional as F
from lazygrad import Tensor, nn

FP64 = lg.device().caps.fp64
FLOATS = ("float32", "float64") if FP64 else ("float32",)
INTS = ("int32", "int64")
TORCH_DT = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32, "int64": torch.int64,
            "bool": torch.bool}
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-11, atol=1e-12)}


@dataclass(frozen=True)
class Case:
    """One op: `lg_fn` on lazygrad tensors equals `torch_fn` on torch tensors (default: the same
    callable), for `arity` inputs drawn uniformly from `domain` (ints: integers in it) in each
    of `dtypes`; `grad`: gradients vs torch.autograd too; `specials`: also 0, -0.0, ±inf, NaN."""

    name: str
    lg_fn: Callable
    torch_fn: Callable | None = None
    arity: int = 1
    domain: tuple[float, float] = (-3.0, 3.0)
    dtypes: tuple[str, ...] = FLOATS
    grad: bool = True
    specials: bool = False
    tol: dict = field(default_factory=dict)


def C(name: str, fn: Callable, tfn: Callable | None = None, **kw) -> Case:
    return Case(name, fn, tfn, **kw)


CASES = [
    # --- math -------------------------------------------------------------------------------------
    C("isfinite", lambda x: x.isfinite(), lambda x: torch.isfinite(x), grad=False, specials=True, dtypes=FLOATS + INTS),
    C("isinf", lambda x: x.isinf(), lambda x: torch.isinf(x), grad=False, specials=True),
    C("isposinf", lambda x: x.isposinf(), lambda x: torch.isposinf(x), grad=False, specials=True, dtypes=FLOATS + INTS),
    C("isneginf", lambda x: x.isneginf(), lambda x: torch.isneginf(x), grad=False, specials=True),
    C("isnan", lambda x: x.isnan(), lambda x: torch.isnan(x), grad=False, specials=True),
    C("isclose", lambda a, b: a.isclose(b, rtol=0.1, atol=0.2), lambda a, b: torch.isclose(a, b, rtol=0.1, atol=0.2),
      arity=2, grad=False, specials=True),
    C("isclose_nan", lambda a, b: a.isclose(a, equal_nan=True), lambda a, b: torch.isclose(a, a, equal_nan=True),
      arity=2, grad=False, specials=True),
    C("log10", lambda x: x.log10(), domain=(0.01, 100.0)),
    C("log2", lambda x: x.log2(), domain=(0.01, 100.0)),
    C("exp2", lambda x: x.exp2()),
    C("trunc", lambda x: x.trunc(), specials=True, dtypes=FLOATS + INTS),
    C("floor", lambda x: x.floor(), specials=True, dtypes=FLOATS + INTS),
    C("ceil", lambda x: x.ceil(), specials=True, dtypes=FLOATS + INTS),
    C("round", lambda x: x.round(), specials=True),
    C("round_decimals", lambda x: x.round(decimals=2), lambda x: torch.round(x, decimals=2)),
    C("round_decimals_neg", lambda x: x.round(decimals=-1), lambda x: torch.round(x, decimals=-1), domain=(-300, 300)),
    C("frac", lambda x: x.frac()),
    C("copysign", lambda a, b: a.copysign(b), lambda a, b: torch.copysign(a, b), arity=2),
    C("fmod", lambda a, b: a.fmod(b), lambda a, b: torch.fmod(a, b), arity=2, domain=(0.5, 4.0)),
    C("fmod_int", lambda a, b: a.fmod(b.abs() + 1), lambda a, b: torch.fmod(a, b.abs() + 1), arity=2,
      domain=(-20, 20), dtypes=INTS, grad=False),
    C("remainder", lambda a, b: a.remainder(b), lambda a, b: torch.remainder(a, b), arity=2, domain=(0.5, 4.0)),
    C("div_trunc", lambda a, b: a.div(b, rounding_mode="trunc"), lambda a, b: torch.div(a, b, rounding_mode="trunc"),
      arity=2, domain=(0.5, 8.0), grad=False),
    C("div_floor", lambda a, b: a.div(-b, rounding_mode="floor"), lambda a, b: torch.div(a, -b, rounding_mode="floor"),
      arity=2, domain=(0.5, 8.0), grad=False),
    C("div_trunc_int", lambda a, b: a.div(b.abs() + 1, rounding_mode="trunc"),
      lambda a, b: torch.div(a, b.abs() + 1, rounding_mode="trunc"), arity=2, domain=(-20, 20), dtypes=INTS, grad=False),
    C("div_floor_int", lambda a, b: a.div(b.abs() + 1, rounding_mode="floor"),
      lambda a, b: torch.div(a, b.abs() + 1, rounding_mode="floor"), arity=2, domain=(-20, 20), dtypes=INTS, grad=False),
    C("logaddexp", lambda a, b: a.logaddexp(b), lambda a, b: torch.logaddexp(a, b), arity=2, domain=(-30, 30)),
    C("logaddexp_inf", lambda a, b: a.logaddexp(a), lambda a, b: torch.logaddexp(a, a), arity=2, specials=True, grad=False),
    C("logaddexp2", lambda a, b: a.logaddexp2(b), lambda a, b: torch.logaddexp2(a, b), arity=2, domain=(-30, 30)),
    C("asin", lambda x: x.asin(), domain=(-0.95, 0.95)),
    C("acos", lambda x: x.acos(), domain=(-0.95, 0.95)),
    C("atan", lambda x: x.atan(), domain=(-20, 20), specials=True),
    C("atan2", lambda a, b: a.atan2(b), lambda a, b: torch.atan2(a, b), arity=2),
    C("sinh", lambda x: x.sinh(), domain=(-89, 89)),
    C("sinh_small", lambda x: x.sinh(), domain=(-1e-3, 1e-3)),
    C("cosh", lambda x: x.cosh(), domain=(-89, 89)),
    C("tanh", lambda x: x.tanh()),
    C("asinh", lambda x: x.asinh(), domain=(-50, 50)),
    C("asinh_huge", lambda x: (x * 1e10).asinh(), lambda x: (x * 1e10).asinh(), domain=(1, 1e9), grad=False),
    C("acosh", lambda x: x.acosh(), domain=(1.01, 50)),
    C("acosh_below_one", lambda x: x.acosh(), domain=(-1e6, 1), specials=True, grad=False),
    C("atanh", lambda x: x.atanh(), domain=(-0.95, 0.95)),
    C("erf", lambda x: x.erf()),
    C("erfc", lambda x: x.erfc(), domain=(-3, 9)),
    C("lerp", lambda a, b: a.lerp(b, 0.3), lambda a, b: torch.lerp(a, b, 0.3), arity=2),
    C("lerp_tensor_weight", lambda a, b: a.lerp(b, b.sigmoid()), lambda a, b: torch.lerp(a, b, b.sigmoid()), arity=2),
    C("hypot", lambda a, b: a.hypot(b), lambda a, b: torch.hypot(a, b), arity=2),
    C("hypot_big", lambda a, b: (a * 1e30).hypot(b * 1e30), lambda a, b: torch.hypot(a * 1e30, b * 1e30), arity=2,
      dtypes=("float32",), grad=False),
    C("hypot_range", lambda a, b: (a * 1e300).hypot(b * 1e-300) + (a * 1e-310).hypot(b * 1e-310) * 1e300,
      lambda a, b: torch.hypot(a * 1e300, b * 1e-300) + torch.hypot(a * 1e-310, b * 1e-310) * 1e300, arity=2,
      dtypes=FLOATS[1:], grad=False),
    C("and", lambda a, b: a & b, arity=2, domain=(-100, 100), dtypes=INTS, grad=False),
    C("or", lambda a, b: a | b, arity=2, domain=(-100, 100), dtypes=INTS, grad=False),
    C("xor", lambda a, b: a ^ b, arity=2, domain=(-100, 100), dtypes=INTS, grad=False),
    C("invert", lambda x: ~x, domain=(-100, 100), dtypes=INTS, grad=False),
    C("rand_scalar", lambda x: 6 & x, domain=(-100, 100), dtypes=INTS, grad=False),
    C("lshift", lambda a, b: a << (b.abs() % 40), arity=2, domain=(-100, 100), dtypes=INTS, grad=False),
    C("rshift", lambda a, b: a >> (b.abs() % 70), arity=2, domain=(-100, 100), dtypes=INTS, grad=False),
    C("rlshift", lambda x: 3 << (x.abs() % 8), domain=(-100, 100), dtypes=INTS, grad=False),
    C("rrshift", lambda x: 1000 >> (x.abs() % 12), domain=(-100, 100), dtypes=INTS, grad=False),
    C("int_pow", lambda a, b: a ** (b.abs() % 12), lambda a, b: a ** (b.abs() % 12), arity=2, domain=(-9, 9),
      dtypes=INTS, grad=False),
    C("int_pow_wraps", lambda a, b: a ** (b.abs() * 3 + 20), lambda a, b: a ** (b.abs() * 3 + 20), arity=2,
      domain=(-9, 9), dtypes=INTS, grad=False),
    C("int_pow_scalar", lambda x: x ** 3 + 2 ** (x.abs() % 9) + x ** 0, lambda x: x ** 3 + 2 ** (x.abs() % 9) + x ** 0,
      domain=(-50, 50), dtypes=INTS, grad=False),
    C("int_pow_float", lambda x: x ** 0.5 + x ** 2.5, lambda x: x ** 0.5 + x ** 2.5, domain=(0, 50), dtypes=INTS,
      grad=False),
    C("prod_dtype", lambda x: x.prod(-1, dtype=lg.float64 if FP64 else lg.float32),
      lambda x: x.prod(-1, dtype=torch.float64 if FP64 else torch.float32), domain=(-3, 3), dtypes=INTS, grad=False),
    C("prod_int", lambda x: x.prod(0), lambda x: x.prod(0), domain=(-3, 3), dtypes=INTS, grad=False),
    C("std_mean", lambda x: lg.std_mean(x, -1)[0] * 2 + lg.std_mean(x, -1)[1],
      lambda x: torch.std_mean(x, -1)[0] * 2 + torch.std_mean(x, -1)[1]),
    C("var_mean", lambda x: lg.var_mean(x, 0, keepdim=True)[0] - lg.var_mean(x, 0, keepdim=True)[1],
      lambda x: torch.var_mean(x, 0, keepdim=True)[0] - torch.var_mean(x, 0, keepdim=True)[1]),
    # --- activations (torch.nn.functional's) ----------------------------------------------------------
    # torch's float64 hardsigmoid gradient is g times a float32 1/6 (relative error 3e-8)
    C("hardsigmoid", lambda x: x.hardsigmoid(), lambda x: TF.hardsigmoid(x), domain=(-5, 5),
      tol=dict(rtol=1e-6, atol=1e-7)),
    C("hardswish", lambda x: x.hardswish(), lambda x: TF.hardswish(x), domain=(-5, 5)),
    C("hardtanh", lambda x: x.hardtanh(-0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0)),
    C("hardtanh_bounds", lambda x: x.clip(-1.0, 1.0).hardtanh(), lambda x: TF.hardtanh(x.clip(-1.0, 1.0))),
    C("relu6", lambda x: x.relu6(), lambda x: TF.relu6(x), domain=(-3, 9)),
    C("selu", lambda x: x.selu(), lambda x: TF.selu(x)),
    # torch's float64 celu gradient uses float32 coefficients (relative error 1.5e-7)
    C("celu", lambda x: x.celu(0.7), lambda x: TF.celu(x, 0.7), domain=(-90, 20), tol=dict(rtol=1e-6, atol=1e-7)),
    C("mish", lambda x: x.mish(), lambda x: TF.mish(x), domain=(-30, 30)),
    C("softsign", lambda x: x.softsign(), lambda x: TF.softsign(x)),
    C("quick_gelu", lambda x: x.quick_gelu(), lambda x: x * torch.sigmoid(1.702 * x)),
    C("gelu_default_is_erf", lambda x: x.gelu(), lambda x: TF.gelu(x)),
    C("gelu_negative_tail", lambda x: x.gelu(), lambda x: TF.gelu(x), domain=(-9, -2)),
    C("gelu_tanh", lambda x: x.gelu(approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    C("logsigmoid", lambda x: x.logsigmoid(), lambda x: TF.logsigmoid(x), domain=(-100, 100)),
    C("softmin", lambda x: x.softmin(-1), lambda x: TF.softmin(x, -1)),
    C("F_softmin", lambda x: F.softmin(x, dim=0), lambda x: TF.softmin(x, dim=0)),
    C("F_normalize", lambda x: F.normalize(x, dim=-1), lambda x: TF.normalize(x, dim=-1)),
    C("F_normalize_p1", lambda x: F.normalize(x, p=1, dim=0), lambda x: TF.normalize(x, p=1, dim=0)),
    C("F_softmax_dtype", lambda x: F.softmax(x, dim=-1, dtype=lg.float32), lambda x: TF.softmax(x, -1, dtype=torch.float32),
      grad=False),
    C("F_log_softmax", lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    C("F_elementwise", lambda x: F.relu(x) + F.elu(x, 0.5) + F.leaky_relu(x, 0.2) + F.silu(x) + F.sigmoid(x) + F.tanh(x)
      + F.softplus(x, 2.0) + F.selu(x) + F.celu(x) + F.mish(x) + F.hardswish(x) + F.gelu(x, approximate="tanh"),
      lambda x: TF.relu(x) + TF.elu(x, 0.5) + TF.leaky_relu(x, 0.2) + TF.silu(x) + TF.sigmoid(x) + TF.tanh(x)
      + TF.softplus(x, 2.0) + TF.selu(x) + TF.celu(x) + TF.mish(x) + TF.hardswish(x) + TF.gelu(x, approximate="tanh")),
    C("F_pad", lambda x: F.pad(x, (1, 2)), lambda x: TF.pad(x, (1, 2))),
    C("F_pad_crop", lambda x: F.pad(x, (-1, 0, 1, 1), value=2.0), lambda x: TF.pad(x, (-1, 0, 1, 1), value=2.0)),
    # --- shape ops --------------------------------------------------------------------------------
    C("tril", lambda x: x.tril(), lambda x: x.tril(), dtypes=FLOATS + INTS),
    C("triu_offset", lambda x: x.triu(1) + lg.tril(x, -1) * 2, lambda x: x.triu(1) + torch.tril(x, -1) * 2),
    C("roll", lambda x: x.roll(2, -1), lambda x: x.roll(2, -1), dtypes=FLOATS + INTS),
    C("roll_dims", lambda x: x.roll((1, -3), (0, 1)), lambda x: x.roll((1, -3), (0, 1))),
    C("roll_flat", lambda x: x.roll(4), lambda x: x.roll(4)),
    C("diagonal", lambda x: x.diagonal(), lambda x: x.diagonal()),
    C("diagonal_offset", lambda x: x.diagonal(1, -1, -2) + x.diagonal(-1).sum(),
      lambda x: x.diagonal(1, -1, -2) + x.diagonal(-1).sum()),
    C("diag_of_vector", lambda x: x.flatten().diag(2), lambda x: x.flatten().diag(2)),
    C("diag_of_vector_below", lambda x: x.flatten().diag(-1), lambda x: x.flatten().diag(-1)),
    C("unflatten", lambda x: x.unflatten(-1, (-1, 1)), lambda x: x.unflatten(-1, (-1, 1)), dtypes=FLOATS + INTS),
    C("repeat_interleave", lambda x: x.repeat_interleave(3, dim=-1), lambda x: x.repeat_interleave(3, dim=-1)),
    C("repeat_interleave_flat", lambda x: x.repeat_interleave(2), lambda x: x.repeat_interleave(2)),
    C("repeat_interleave_counts", lambda x: x.repeat_interleave([1, 0, 2], dim=0),
      lambda x: x.repeat_interleave(torch.tensor([1, 0, 2]), dim=0)),
    C("unfold", lambda x: x.unfold(-1, 2, 1), lambda x: x.unfold(-1, 2, 1)),
    C("unfold_dim0_step", lambda x: x.unfold(0, 2, 2) * 1, lambda x: x.unfold(0, 2, 2) * 1),
    C("clone_neg", lambda x: x.clone().neg() + lg.neg(x) + x.negative(), lambda x: x.clone().neg() + torch.neg(x) + x.negative()),
    C("meshgrid", lambda a, b: sum(lg.meshgrid(a.flatten(), b.flatten()[:4], indexing="xy")),
      lambda a, b: sum(torch.meshgrid(a.flatten(), b.flatten()[:4], indexing="xy")), arity=2),
    C("module_level", lambda a, b: lg.where(a > 0, lg.exp(a), lg.maximum(a, b)) + lg.sum(b, -1, keepdim=True)
      + lg.matmul(a, lg.transpose(b, 0, 1)).sum() + lg.flatten(lg.stack([a, b]), 1).sum(),
      lambda a, b: torch.where(a > 0, torch.exp(a), torch.maximum(a, b)) + torch.sum(b, -1, keepdim=True)
      + torch.matmul(a, torch.transpose(b, 0, 1)).sum() + torch.flatten(torch.stack([a, b]), 1).sum(), arity=2),
    C("module_cat", lambda a, b: lg.cat([a, b], -1) + lg.concat([b, a], dim=-1), lambda a, b: torch.cat([a, b], -1)
      + torch.concat([b, a], dim=-1), arity=2, dtypes=FLOATS + INTS),
    # --- dtypes -----------------------------------------------------------------------------------
    C("bitcast", lambda x: x.view(lg.int64 if x.dtype is lg.float64 else lg.int32) + 1,
      lambda x: x.view(torch.int64 if x.dtype is torch.float64 else torch.int32) + 1, grad=False, specials=True),
    C("bitcast_back", lambda x: (x.view(lg.int64 if x.dtype is lg.float64 else lg.int32) ^ 1).view(x.dtype) * 2,
      lambda x: (x.view(torch.int64 if x.dtype is torch.float64 else torch.int32) ^ 1).view(x.dtype) * 2, grad=False),
    C("bitcast_int", lambda x: x.view(lg.float32 if x.dtype is lg.int32 else lg.float64).isnan(),
      lambda x: x.view(torch.float32 if x.dtype is torch.int32 else torch.float64).isnan(), domain=(-1e9, 1e9),
      dtypes=INTS if FP64 else ("int32",), grad=False),
    # --- conventions ------------------------------------------------------------------------------
    C("max_dim_values", lambda x: x.max(-1).values, lambda x: x.max(-1).values),
    C("max_dim_indices", lambda x: x.max(0).indices, lambda x: x.max(0).indices.int(), dtypes=FLOATS + INTS, grad=False),
    C("min_dim_keepdim", lambda x: x.min(-1, keepdim=True)[0], lambda x: x.min(-1, keepdim=True)[0]),
    C("min_dim_indices", lambda x: x.min(dim=-1)[1], lambda x: x.min(dim=-1)[1].int(), dtypes=FLOATS + INTS, grad=False),
    C("max_all", lambda x: x.max(), lambda x: x.max()),
    C("amax", lambda x: x.amax(-1), lambda x: x.amax(-1)),
    C("amin_dims", lambda x: x.amin((0, -1)), lambda x: x.amin((0, -1)), dtypes=FLOATS + INTS),
    C("max_other", lambda a, b: a.max(b), lambda a, b: a.max(b), arity=2),
]
# ops whose torch version refuses some of the shapes every case is run on
REDUCING = {"softmin", "F_softmin", "F_normalize", "F_normalize_p1", "F_softmax_dtype", "F_log_softmax", "F_pad",
            "F_pad_crop", "tril", "triu_offset", "roll_dims", "diagonal", "diagonal_offset", "unfold", "unfold_dim0_step",
            "repeat_interleave_counts", "module_level", "diag_of_vector", "diag_of_vector_below", "meshgrid",
            "unflatten", "module_cat", "roll", "repeat_interleave", "max_dim_values", "max_dim_indices", "min_dim_keepdim", "min_dim_indices", "max_all", "amax", "amin_dims",
            "prod_dtype", "prod_int", "std_mean", "var_mean"}

# cases whose arguments fit the plain (3, 5) shape only (three repeat counts for dim 0, windows
# of 2 along a dim)
FIXED_SHAPE = {"repeat_interleave_counts", "unfold", "unfold_dim0_step"}


def _inputs(case: Case, shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lo, hi = case.domain
    out = []
    for _ in range(case.arity):
        a = rng.uniform(lo, hi, shape)
        if case.specials and a.size >= 6:
            a.reshape(-1)[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0]
        out.append(a)
    return out


def _as(a: np.ndarray, dtype: str, noncontig: bool) -> tuple[Tensor, torch.Tensor]:
    npd = np.dtype(dtype)
    if npd.kind in "iu":
        a = np.nan_to_num(np.round(a), nan=0, posinf=7, neginf=-7)
    v = a.astype(npd)
    if noncontig and v.ndim == 2:
        t = Tensor(np.ascontiguousarray(v.T), dtype=dtype).T  # a permuted view
    else:
        t = Tensor(v, dtype=dtype)
    return t, torch.tensor(v)


SHAPES = {"plain": (3, 5), "noncontig": (3, 5), "size0": (0, 5), "size1": (1, 1), "zero_d": ()}


def _shapes(case: Case) -> list[str]:
    # a max or prod over an empty dim has no value in torch either (tested in test_ops.py)
    if case.name in FIXED_SHAPE:
        return ["plain", "noncontig"]
    return [s for s in SHAPES if not (case.name in REDUCING and s in ("size0", "zero_d"))]


def _run(case: Case, dtype: str, shape_name: str, grad: bool):
    arrays = _inputs(case, SHAPES[shape_name], seed=hash(case.name) % 1000)
    pairs = [_as(a, dtype, shape_name == "noncontig") for a in arrays]
    if grad:
        for t, tt in pairs:
            t.requires_grad_()
            tt.requires_grad_()
    out = case.lg_fn(*[p[0] for p in pairs])
    want = (case.torch_fn or case.lg_fn)(*[p[1] for p in pairs])
    return pairs, out, want


def _check_values(out: Tensor, want: torch.Tensor, dtype: str, case: Case) -> None:
    got = out.numpy()
    w = want.detach().numpy()
    assert got.shape == w.shape, f"{case.name}: shape {got.shape} != torch {w.shape}"
    if w.dtype.kind in "biu":
        np.testing.assert_array_equal(got, w, err_msg=case.name)
    else:
        assert got.dtype == w.dtype, f"{case.name}: dtype {got.dtype} != torch {w.dtype}"
        np.testing.assert_allclose(got, w, equal_nan=True, err_msg=case.name, **(case.tol or TOL[str(w.dtype)]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_values_match_torch(case: Case):
    # every shape kind in the first dtype, the plain shape in the others (each shape is a
    # kernel to compile: this keeps the file near a minute)
    runs = [(d, _run(case, d, s, grad=False)) for d in case.dtypes for s in (_shapes(case) if d == case.dtypes[0]
                                                                               else ["plain"])]
    lg.realize(*[r[1] for _, r in runs])  # one schedule for all of them
    for d, (_, out, want) in runs:
        _check_values(out, want, d, case)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=lambda c: c.name)
def test_gradients_match_torch(case: Case):
    dtype = FLOATS[-1]
    for s in ("plain", "noncontig"):
        pairs, out, want = _run(case, dtype, s, grad=True)
        w = np.random.default_rng(1).standard_normal(tuple(want.shape))
        grads = lg.grad((out * Tensor(w, dtype=dtype)).sum(), [p[0] for p in pairs], allow_unused=True)
        tgrads = torch.autograd.grad((want * torch.tensor(w, dtype=TORCH_DT[dtype])).sum(), [p[1] for p in pairs],
                                     allow_unused=True)
        for i, (gr, tg) in enumerate(zip(grads, tgrads)):
            expect = np.zeros(pairs[i][1].shape) if tg is None else tg.numpy()
            got = np.zeros(pairs[i][1].shape) if gr is None else gr.numpy()
            np.testing.assert_allclose(got, expect, equal_nan=True, err_msg=f"{case.name} grad {i} ({s})",
                                       **(case.tol or TOL[dtype]))


def test_the_table_covers_every_dtype_and_shape_kind():
    # the checks above would pass vacuously on an empty table or one dtype
    assert len(CASES) > 60 and {d for c in CASES for d in c.dtypes} >= {"float32", "int32", "int64"}
    assert sum(c.grad for c in CASES) > 30 and sum(c.specials for c in CASES) > 8


# --- torch's conventions ----------------------------------------------------------------------------
def test_max_dim_is_a_named_tuple_like_torch():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], np.float32)
    r = Tensor(x).max(1)
    values, indices = r
    tr = torch.tensor(x).max(1)
    assert r.values is values and r.indices is indices and len(r) == 2
    assert values.tolist() == tr.values.tolist() and indices.tolist() == tr.indices.tolist()  # first of ties
    _, pred = Tensor(x).max(1)  # the newcomer's idiom: the indices, not the values
    assert pred.tolist() == [1, 0]
    assert isinstance(Tensor(x).max(), Tensor) and Tensor(x).max().item() == 7.0
    assert Tensor(x).min(dim=0).indices.tolist() == torch.tensor(x).min(dim=0).indices.tolist()
    assert Tensor(np.float32(3.0)).max(0).indices.item() == 0


def test_max_dim_gradient_goes_to_the_first_index_like_torch():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], np.float32)
    t = Tensor(x, requires_grad=True)
    t.max(1).values.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    tt.max(1).values.sum().backward()
    assert t.grad.tolist() == tt.grad.tolist() == [[0, 1, 0], [1, 0, 0]]
    t2 = Tensor(x, requires_grad=True)
    t2.amax(1).sum().backward()  # amax splits ties, like torch.amax
    assert t2.grad.tolist() == [[0, 0.5, 0.5], [0.5, 0, 0.5]]


def test_max_dim_errors_name_the_op():
    x = Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="amax"):
        x.max((0, 1))
    with pytest.raises(IndexError, match="max: axis 2"):
        x.max(2)
    with pytest.raises(IndexError, match="min"):
        Tensor(np.zeros((0, 3), np.float32)).min(0)


def test_to_takes_dtypes_devices_and_tensors():
    x = Tensor([1.5, -2.5])
    assert x.to("cpu") is x and x.to(device="cpu") is x and x.cpu() is x and x.device == "cpu"
    assert x.to(lg.int32).tolist() == [1, -2] and x.to(dtype=lg.int64).dtype is lg.int64
    assert x.to(Tensor([1], dtype=lg.int32)).dtype is lg.int32
    assert x.to("cpu", lg.int32).dtype is lg.int32 and x.to(torch.device("cpu")) is x
    c = x.to(copy=True)
    assert c is not x and c.tolist() == x.tolist()
    if FP64:
        assert x.to(lg.float64).dtype is lg.float64
    with pytest.raises(ValueError, match="one device"):
        x.to("cuda")


def test_allclose_is_a_python_bool():
    a = Tensor([1.0, 2.0, float("nan")])
    assert a.allclose(a, equal_nan=True) is True and a.allclose(a) is False
    assert Tensor([1.0]).allclose(Tensor([1.0 + 1e-7])) is True


def test_bitcast_refuses_indivisible_sizes():
    # between sizes the last dim scales like torch's (tests/test_dtypes16.py), and must divide;
    # a bool is one byte (torch.tensor([True]).view(torch.int32) raises too)
    with pytest.raises(ValueError, match="divisible by 2 to be viewed as int64"):
        Tensor([1.0]).view(lg.int64)
    with pytest.raises(ValueError, match="divisible by 4 to be viewed as int32"):
        Tensor([True]).view(lg.bool_).view(lg.int32)


def test_shift_and_bitwise_refuse_floats():
    with pytest.raises(TypeError, match="lshift"):
        Tensor([1.0]) << 1
    with pytest.raises(ValueError, match="rounding_mode"):
        Tensor([1.0]).div(2, rounding_mode="round")


# --- fusion: elementwise ops add no kernel to a chain ------------------------------------------------
ELEMENTWISE_IN_CHAIN = {
    "hypot": lambda x: x.hypot(x * 2),
    "logaddexp": lambda x: x.logaddexp(-x),
    "copysign": lambda x: x.copysign(x - 1),
    "trunc_frac": lambda x: x.trunc() + x.frac(),
    "sinh_cosh": lambda x: x.sinh() * x.cosh(),
    "asinh_atanh": lambda x: x.asinh() + (x * 0.1).atanh(),
    "inverse_trig": lambda x: (x * 0.1).asin() + (x * 0.1).acos() + x.atan() + x.atan2(x + 1),
    "erf_erfc": lambda x: x.erf() + x.erfc(),
    "isfinite_where": lambda x: x.isfinite().where(x, 0.0),
    "round_decimals": lambda x: x.round(decimals=1),
    "lerp": lambda x: x.lerp(x * 3, 0.7),
    "hardswish": lambda x: x.hardswish(),
    "hardtanh_relu6": lambda x: x.hardtanh(-2.0, 2.0) + x.relu6(),
    "clamp": lambda x: x.clamp(-0.5, 0.5),
    "selu_celu_mish": lambda x: x.selu() + x.celu(0.5) + x.mish(),
    "gelu_erf": lambda x: x.gelu(),
    "logsigmoid_softsign": lambda x: x.logsigmoid() * x.softsign(),
    "tril_triu": lambda x: x.tril() + x.triu(2),
    "masked_fill_like": lambda x: (x > 0.3).where(-1e9, x),
    "isclose": lambda x: x.isclose(x * 1.0001).where(x, 0.0),
}


# compound ops read their input several times (hypot, logaddexp, round with decimals, ...): the
# scheduler counts each fused node once, as lowering emits it (scheduling/cost.py), so none of
# them cuts a chain (a per-read count did: round(decimals=1) alone counted 26867 ops)
@pytest.mark.parametrize("name", list(ELEMENTWISE_IN_CHAIN))
def test_elementwise_ops_add_no_kernel_to_a_chain(name):
    x = Tensor(np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32))
    y = ((ELEMENTWISE_IN_CHAIN[name](x) + 1).relu()).sum(1)
    assert len(lg.schedule(y)) == 1, name
    # and four of them in a row, between other ops, are one kernel too (within the budget)
    z = x
    for _ in range(4):
        z = (ELEMENTWISE_IN_CHAIN[name](z) * 0.5 + 0.1).tanh()
    ks = lg.schedule(z.sum(1))
    assert len(ks) == 1, (name, [k.reason for k in ks])


# --- nn modules: each activation as torch.nn's module of the same name ------------------------------
MODULES = [("ReLU6", {}), ("Hardsigmoid", {}), ("Hardswish", {}), ("Hardtanh", dict(min_val=-0.5, max_val=2.0)),
           ("SELU", {}), ("CELU", dict(alpha=0.5)), ("Mish", {}), ("Softsign", {}), ("LogSigmoid", {}),
           ("Softmin", dict(dim=1)), ("ReLU", dict(inplace=True)), ("ELU", dict(alpha=0.3)), ("SiLU", {}),
           ("GELU", dict(approximate="tanh")), ("LeakyReLU", dict(negative_slope=0.2))]


def test_activation_modules_match_torch_modules():
    x = np.random.default_rng(3).uniform(-5, 5, (4, 6)).astype(np.float32)
    outs = [getattr(nn, name)(**kw)(Tensor(x)) for name, kw in MODULES]
    lg.realize(*outs)
    for (name, kw), out in zip(MODULES, outs):
        want = getattr(torch.nn, name)(**kw)(torch.tensor(x))
        np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=2e-5, atol=2e-6, err_msg=name)
        assert repr(getattr(nn, name)(**kw)).startswith(name)


def test_functional_layers_take_torchs_signatures():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    t, tt = Tensor(x), torch.tensor(x)
    pairs = [
        (F.conv2d(t, Tensor(w), Tensor(b), stride=1, padding=1), TF.conv2d(tt, torch.tensor(w), torch.tensor(b), 1, 1)),
        (F.max_pool2d(t, 2), TF.max_pool2d(tt, 2)), (F.avg_pool2d(t, 3, 2, 1), TF.avg_pool2d(tt, 3, 2, 1)),
        (F.layer_norm(t, (6, 6)), TF.layer_norm(tt, (6, 6))),
        (F.batch_norm(t, None, None, training=True), TF.batch_norm(tt, None, None, training=True)),
        (F.linear(t, Tensor(w.reshape(4, -1)[:, :6])), TF.linear(tt, torch.tensor(w.reshape(4, -1)[:, :6]))),
        (F.dropout(t, 0.5, training=False), TF.dropout(tt, 0.5, training=False)),
        (F.softmax(Tensor(x[0, 0])), TF.softmax(torch.tensor(x[0, 0]), dim=1)),  # torch's implicit dim
    ]
    lg.realize(*[p[0] for p in pairs])
    for i, (got, want) in enumerate(pairs):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5, err_msg=str(i))
    y = rng.integers(0, 3, 2)
    logits = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), Tensor(y)).item(),
                               TF.cross_entropy(torch.tensor(logits), torch.tensor(y)).item(), rtol=1e-5)
    np.testing.assert_allclose(F.mse_loss(Tensor(logits), Tensor(logits * 2)).item(),
                               TF.mse_loss(torch.tensor(logits), torch.tensor(logits * 2)).item(), rtol=1e-5)


def test_activation_errors():
    with pytest.raises(ValueError, match="approximate"):
        Tensor([1.0]).gelu("fast")
    with pytest.raises(ValueError, match="hardtanh"):
        Tensor([1.0]).hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="pad"):
        F.pad(Tensor([1.0]), (1, 1, 1, 1))
    # F.max_pool2d passes ceil_mode and return_indices through (issue 16 part B's pooling)
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    got, idx = F.max_pool2d(Tensor(x), 2, ceil_mode=True, return_indices=True)
    want, widx = TF.max_pool2d(torch.tensor(x), 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(idx.numpy(), widx.numpy())


# --- einsum: torch's equations, values and gradients, and the kernels of matmul ------------------------
EINSUM = [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ii->i", [(4, 4)]),
          ("ii", [(4, 4)]), ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]), ("i,i->", [(5,), (5,)]), ("i,j->ij", [(3,), (4,)]),
          ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]), ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
          ("ijk,jl,lk->i", [(2, 3, 4), (3, 5), (5, 4)]), ("ij,kj", [(3, 4), (5, 4)]), ("bij,j->bi", [(2, 3, 4), (4,)]),
          ("ij,ij->ij", [(3, 1), (1, 4)]), ("iij->j", [(3, 3, 2)]), ("i j , j k -> i k", [(0, 4), (4, 2)]),
          ("ij,jk->ik", [(1, 1), (1, 1)])]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[f"{e}:{s}" for e, s in EINSUM])
def test_einsum_matches_torch(eq, shapes):
    dtype = FLOATS[-1]
    rng = np.random.default_rng(5)
    arrs = [rng.standard_normal(s) for s in shapes]
    ts = [Tensor(a, dtype=dtype, requires_grad=True) for a in arrs]
    tts = [torch.tensor(a, dtype=TORCH_DT[dtype], requires_grad=True) for a in arrs]
    out, want = lg.einsum(eq, *ts), torch.einsum(eq, *tts)
    w = rng.standard_normal(tuple(want.shape))
    # allow_unused: an empty product is a constant (no path back to its operands)
    grads = lg.grad((out * Tensor(w, dtype=dtype)).sum(), ts, allow_unused=True)
    tgrads = torch.autograd.grad((want * torch.tensor(w, dtype=TORCH_DT[dtype])).sum(), tts)
    lg.realize(out, *[gr for gr in grads if gr is not None])
    _check_values(out, want, dtype, Case("einsum", lambda: None))
    for gr, tg in zip(grads, tgrads):
        np.testing.assert_allclose(np.zeros(tg.shape) if gr is None else gr.numpy(), tg.numpy(), **TOL[dtype])
    assert lg.einsum(eq, ts).shape == out.shape  # the operands as one list, like torch


def test_einsum_is_the_matmul_kernel_with_its_epilogue():
    rng = np.random.default_rng(6)
    a, b = (Tensor(rng.standard_normal(s).astype(np.float32)) for s in ((2, 16, 32), (2, 32, 8)))
    via_einsum = lg.schedule((lg.einsum("bij,bjk->bik", a, b) + 1).relu())
    via_matmul = lg.schedule(((a @ b) + 1).relu())
    assert [k.kind for k in via_einsum] == [k.kind for k in via_matmul] and len(via_einsum) == 1
    assert "matmul" in str(via_einsum[0].kind)
    # a contraction keeping nothing of one side is one reduce kernel, like (x * v).sum(-1)
    x, v = Tensor(rng.standard_normal((8, 16)).astype(np.float32)), Tensor(rng.standard_normal(16).astype(np.float32))
    assert len(lg.schedule(lg.einsum("ij,j->i", x, v) * 2)) == 1


def test_einsum_errors():
    a = Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="sizes 3 and 4"):
        lg.einsum("ij,jk->ik", a, Tensor(np.zeros((4, 2), np.float32)))
    with pytest.raises(ValueError, match="operand subscripts"):
        lg.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="name 3 dims"):
        lg.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="output subscripts"):
        lg.einsum("ij->iz", a)


# --- creation ------------------------------------------------------------------------------------------
def test_creation_functions_match_torch():
    cases = [
        (lg.linspace(-1, 2, 7), torch.linspace(-1, 2, 7)), (lg.linspace(0, 1, 1), torch.linspace(0, 1, 1)),
        (lg.linspace(3, -3, 0), torch.linspace(3, -3, 0)), (lg.logspace(-2, 2, 5), torch.logspace(-2, 2, 5)),
        (lg.logspace(0, 3, 4, base=2), torch.logspace(0, 3, 4, base=2)),
        (lg.tensor([[1, 2]]), torch.tensor([[1, 2]], dtype=torch.int32)), (lg.zeros(2, 3), torch.zeros(2, 3)),
        (lg.ones((2,)), torch.ones((2,))), (lg.full((2, 2), 1.5), torch.full((2, 2), 1.5)),
        (lg.arange(2, 9, 3), torch.arange(2, 9, 3)), (lg.eye(3, 2), torch.eye(3, 2)),
        (lg.empty(2, 0), torch.zeros(2, 0)),
        (lg.zeros_like(lg.ones(2, dtype=lg.int32)), torch.zeros(2, dtype=torch.int32)),
        (lg.ones_like(lg.zeros(3)), torch.ones(3)), (lg.full_like(lg.zeros(2), 7.0), torch.full((2,), 7.0)),
        (Tensor.ones_like(lg.zeros(2, 2)), torch.ones(2, 2)),
    ]
    for i, (got, want) in enumerate(cases):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=str(i))
        assert got.numpy().dtype == want.numpy().dtype, i


def test_random_creation_has_the_right_shape_range_and_moments():
    lg.manual_seed(0)
    r = lg.randint(-3, 5, (20000,)).numpy()
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 4 and set(np.unique(r)) == set(range(-3, 5))
    assert lg.randint(7, size=(3, 2)).shape == (3, 2)
    n = lg.normal(2.0, 0.5, size=(20000,)).numpy()
    assert abs(n.mean() - 2.0) < 0.02 and abs(n.std() - 0.5) < 0.02
    m = lg.normal(lg.tensor([0.0, 100.0]), 1.0).numpy()
    assert m.shape == (2,) and abs(m[1] - 100) < 6
    x = lg.zeros(4, 5)
    assert lg.rand_like(x).shape == (4, 5) and lg.randn_like(x).dtype is lg.float32
    assert 0 <= lg.rand_like(x).numpy().min() and lg.rand_like(x).numpy().max() < 1


def test_import_lazygrad_exposes_torchs_module_names():
    assert lg.nn.Linear and lg.optim.SGD and lg.utils.data.DataLoader and lg.float is lg.float32
    assert lg.long is lg.int64 and lg.double is lg.float64


def test_utils_data_like_torch():
    from lazygrad.utils.data import DataLoader, Dataset, TensorDataset, random_split
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    ds = TensorDataset(Tensor(x), Tensor(y))
    assert len(ds) == 10 and ds[3][0].tolist() == [6.0, 7.0]
    train, val = random_split(ds, [0.8, 0.2], generator=0)
    assert len(train) == 8 and len(val) == 2
    assert sorted(train.indices + val.indices) == list(range(10))
    seen = [yb for _, yb in DataLoader(train, batch_size=3, shuffle=True, generator=1)]
    assert [len(b) for b in seen] == [3, 3, 2] and sorted(v for b in seen for v in b.tolist()) == sorted(train.indices)
    assert len(DataLoader(train, batch_size=3, drop_last=True)) == 2
    for xb, yb in DataLoader(ds, batch_size=4):
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])

    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.float32(i), "y": i * i}
    b = next(iter(DataLoader(Squares(), batch_size=5)))
    assert b["x"].tolist() == [0, 1, 2, 3, 4] and b["y"].tolist() == [0, 1, 4, 9, 16]
    with pytest.raises(ValueError, match="add up"):
        random_split(ds, [3, 3])


def test_shape_op_errors():
    with pytest.raises(ValueError, match="tril"):
        Tensor([1.0]).tril()
    with pytest.raises(ValueError, match="unfold"):
        Tensor([1.0, 2.0]).unfold(0, 3, 1)
    with pytest.raises(ValueError, match="unflatten"):
        Tensor([1.0, 2.0, 3.0]).unflatten(0, (2, -1))
    with pytest.raises(ValueError, match="meshgrid"):
        lg.meshgrid(Tensor([1.0]), indexing="yx")
    with pytest.raises(ValueError, match="roll"):
        Tensor([1.0]).roll((1, 2), 0)
