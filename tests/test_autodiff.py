"""Autodiff as a DAG rewrite (issue 3): gradients of every differentiable op against
torch.autograd and central finite differences, the hard cases, second order, fused forward +
backward, the printable gradient graph, and the errors.

Inputs are float64 when the device has fp64 (finite differences need it), float32 otherwise
(then finite differences are skipped). Shapes are tiny and shared so kernels are reused.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lazygrad as lg
from lazygrad import Tensor

FP64 = lg.device().caps.fp64
NP_DT = np.float64 if FP64 else np.float32
LG_DT = lg.float64 if FP64 else lg.float32
TOL = dict(rtol=1e-7, atol=1e-9) if FP64 else dict(rtol=1e-4, atol=1e-5)
FD_EPS = 1e-6
needs_fp64 = pytest.mark.skipif(not FP64, reason="the OpenCL device has no fp64: no finite differences")


# --- inputs ---------------------------------------------------------------------------------------
def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(NP_DT)


def pos(*shape: int, seed: int = 0) -> np.ndarray:
    """Positive inputs (log, sqrt, pow bases), away from 0."""
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype(NP_DT)


def arr(data: list) -> np.ndarray:
    return np.array(data, dtype=NP_DT)


def T(a: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A lazygrad tensor of the test dtype (a float64 numpy array alone would become float32)."""
    return Tensor(a, dtype=LG_DT, requires_grad=requires_grad)


# --- the helper every op test uses ---------------------------------------------------------------
def _weighted_loss(out, w, mod):
    """sum(out * w): a scalar whose upstream gradient w is random, not all ones."""
    return (out * mod.tensor(w) if mod is torch else out * T(w)).sum()


def check_grad(fn, inputs: list[np.ndarray], tfn=None, fd: bool = True, tol: dict | None = None) -> None:
    """d sum(fn(*xs) * w)/dxs from `loss.backward()` matches torch.autograd (tfn, default fn,
    run on torch tensors) and, in float64, central finite differences of lazygrad's forward."""
    tol = tol or TOL
    xs = [T(a, requires_grad=True) for a in inputs]
    out = fn(*xs)
    w = np.random.default_rng(99).standard_normal(out.shape).astype(NP_DT)
    _weighted_loss(out, w, lg).backward()
    lg.realize(out, *[x.grad for x in xs])
    grads = [x.grad.numpy() for x in xs]

    txs = [torch.tensor(a, requires_grad=True) for a in inputs]
    tout = (tfn or fn)(*txs)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), **tol, err_msg="forward")
    tgrads = torch.autograd.grad(_weighted_loss(tout, w, torch), txs, allow_unused=True)
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        assert g.shape == inputs[i].shape
        want = np.zeros_like(inputs[i]) if tg is None else tg.numpy()
        np.testing.assert_allclose(g, want, **tol, err_msg=f"grad of input {i} vs torch")
    if fd and FP64:
        check_finite_differences(fn, inputs, w, grads)


def check_finite_differences(fn, inputs: list[np.ndarray], w: np.ndarray, grads: list[np.ndarray]) -> None:
    """grads == d sum(fn(*xs) * w)/dxs by central differences, one element at a time."""
    def f(arrays: list[np.ndarray]) -> float:
        # weight on the host: the forward kernels are then the ones check_grad already compiled
        return float((fn(*[T(a) for a in arrays]).numpy() * w).sum())
    for i, a in enumerate(inputs):
        num = np.zeros_like(a)
        for j in range(a.size):
            hi, lo = [b.copy() for b in inputs], [b.copy() for b in inputs]
            hi[i].flat[j] += FD_EPS
            lo[i].flat[j] -= FD_EPS
            num.flat[j] = (f(hi) - f(lo)) / (2 * FD_EPS)
        np.testing.assert_allclose(grads[i], num, rtol=1e-5, atol=1e-6,
                                   err_msg=f"grad of input {i} vs finite differences")


def case(name: str, fn, *inputs: np.ndarray, tfn=None, fd: bool = True, tol: dict | None = None):
    return pytest.param(fn, list(inputs), tfn, fd, tol, id=name)


A = randn(2, 3)
B = randn(2, 3, seed=1)
P = pos(2, 3)
COL = randn(2, 1, seed=2)
ROW = randn(1, 3, seed=3)
X3 = randn(2, 3, 2, seed=4)
ERF_TOL = dict(rtol=1e-5, atol=1e-6)   # erf is a 1.5e-7 approximation (Abramowitz-Stegun)


def test_checkers_catch_a_wrong_rule(monkeypatch):
    # the harness can fail: a sin rule off by 1% is caught by torch and by finite differences
    from lazygrad.autodiff.rules import mul, vjp_rules
    from lazygrad.ir.graph import elementwise
    from lazygrad.ir.ops import Op
    monkeypatch.setitem(vjp_rules, Op.SIN, lambda g, n: (mul(mul(g, elementwise(Op.COS, n.srcs[0])),
                                                              elementwise(Op.EXP, _const_like(0.01, g))),))
    with pytest.raises(AssertionError, match="vs torch"):
        check_grad(lambda x: x.sin(), [A])


@needs_fp64
def test_finite_differences_catch_a_wrong_gradient():
    w = randn(*A.shape, seed=99)
    check_finite_differences(lambda x: x.sin(), [A], w, [np.cos(A) * w])
    with pytest.raises(AssertionError, match="finite differences"):
        check_finite_differences(lambda x: x.sin(), [A], w, [np.cos(A) * w * 1.01])


def _const_like(v: float, like):
    from lazygrad.ir.graph import const
    return const(v, like.dtype, like.shape)


# --- elementwise ------------------------------------------------------------------------------------
ELEMENTWISE = [
    case("neg", lambda x: -x, A),
    case("exp", lambda x: x.exp(), A),
    case("log", lambda x: x.log(), P),
    case("sqrt", lambda x: x.sqrt(), P),
    case("rsqrt", lambda x: x.rsqrt(), P),
    case("reciprocal", lambda x: x.reciprocal(), P),
    case("square", lambda x: x.square(), A),
    case("sin", lambda x: x.sin(), A),
    case("cos", lambda x: x.cos(), A),
    case("tanh", lambda x: x.tanh(), A),
    case("sigmoid", lambda x: x.sigmoid(), A),
    case("abs", lambda x: x.abs(), A),
    case("relu", lambda x: x.relu(), A),
    case("leaky_relu", lambda x: x.leaky_relu(0.1), A, tfn=lambda x: F.leaky_relu(x, 0.1)),
    case("elu", lambda x: x.elu(), A, tfn=F.elu),
    case("silu", lambda x: x.silu(), A, tfn=F.silu),
    case("gelu_tanh", lambda x: x.gelu("tanh"), A, tfn=lambda x: F.gelu(x, approximate="tanh")),
    case("gelu_erf", lambda x: x.gelu("none"), A, tfn=F.gelu, tol=ERF_TOL),
    case("erf", lambda x: x.erf(), A, tol=ERF_TOL),
    case("softplus", lambda x: x.softplus(), A, tfn=F.softplus),
    case("softplus_beta_threshold", lambda x: (x * 4).softplus(beta=2.0, threshold=3.0), A,
         tfn=lambda x: F.softplus(x * 4, beta=2.0, threshold=3.0)),
    case("clip", lambda x: x.clip(-0.5, 0.4), A),
    case("exp2_log2", lambda x: x.exp2() + x.log2(), P),
    case("pow_scalar", lambda x: x ** 3, A),
    case("pow_frac", lambda x: x ** 1.5, P),
    case("rpow", lambda x: 2.0 ** x, A),
    case("pow_tensor", lambda x, y: x ** y, P, A),
    case("add_sub", lambda x, y: x + y - 2 * x, A, B),
    case("mul_div", lambda x, y: x * y / (y + 3), A, P),
    case("rsub_rdiv", lambda x: 1 - 2 / x, P),
    case("maximum", lambda x, y: x.maximum(y), A, B),
    case("minimum", lambda x, y: x.minimum(y), A, B),
    case("where", lambda x, y: Tensor.where(x > y, x * 2, y), A, B,
         tfn=lambda x, y: torch.where(x > y, x * 2, y)),
    case("where_broadcast", lambda c, r: Tensor.where(c > 0, c, r), COL, ROW,
         tfn=lambda c, r: torch.where(c > 0, c, r)),
    case("lerp", lambda x, y: x.lerp(y, 0.3), A, B),
    case("broadcast_both", lambda c, r: c * r + c / (r * r + 1), COL, ROW),
    case("cast_roundtrip", lambda x: (x.float() * 3).cast(x.dtype), A,
         tfn=lambda x: (x.float() * 3).to(x.dtype), fd=False, tol=dict(rtol=1e-6, atol=1e-6)),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", ELEMENTWISE)
def test_elementwise_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


# --- reductions (amax/amin split ties evenly; max(dim)/min(dim) give the first index its gradient) --
REDUCTIONS = [
    case("sum_all", lambda x: x.sum(), X3),
    case("sum_axis", lambda x: x.sum(1), X3),
    case("sum_axes_keepdim", lambda x: x.sum((0, 2), keepdim=True), X3),
    case("mean", lambda x: x.mean(0), X3),
    case("mean_all", lambda x: x.mean(), X3),
    case("amax_axis", lambda x: x.amax(1), X3),
    case("max_axis_values", lambda x: x.max(1).values, X3),
    case("max_all", lambda x: x.max(), X3),
    case("amin_axis_keepdim", lambda x: x.amin(2, keepdim=True), X3),
    case("min_axis_keepdim_values", lambda x: x.min(2, keepdim=True).values, X3),
    case("var", lambda x: x.var(1), X3),
    case("var_population", lambda x: x.var(0, correction=0), X3, tfn=lambda x: x.var(0, correction=0)),
    case("std", lambda x: x.std(2), X3),
    case("logsumexp", lambda x: x.logsumexp(1), X3),
    case("softmax", lambda x: x.softmax(1), X3),
    case("softmax_first", lambda x: x.softmax(0), X3),
    case("log_softmax", lambda x: x.log_softmax(-1), X3),
    case("prod", lambda x: x.prod(1), X3),
    case("cumsum", lambda x: x.cumsum(1), X3),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", REDUCTIONS)
def test_reduction_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


# ties: not differentiable there, so torch's conventions are the reference (no finite differences)
TIES = arr([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
TIES_B = arr([[1.0, 0.0, 3.0], [2.0, 5.0, -1.0]])
TIE_CASES = [
    case("maximum_ties", lambda x, y: x.maximum(y), TIES, TIES_B, fd=False),
    case("minimum_ties", lambda x, y: x.minimum(y), TIES, TIES_B, fd=False),
    case("amax_axis_ties", lambda x: x.amax(1), TIES, fd=False),
    case("max_axis_ties_values", lambda x: x.max(1).values, TIES, fd=False),
    case("max_all_ties", lambda x: x.max(), TIES, fd=False),
    case("amin_axis_ties", lambda x: x.amin(0), TIES, fd=False),
    case("min_axis_ties_values", lambda x: x.min(0).values, TIES, fd=False),
    case("relu_at_zero", lambda x: x.relu(), arr([[0.0, -1.0, 2.0]]), fd=False),
    case("abs_at_zero", lambda x: x.abs(), arr([[0.0, -1.0, 2.0]]), fd=False),
    case("clip_at_bounds", lambda x: x.clip(-1.0, 2.0), arr([[-1.0, 2.0, 0.5, 3.0, -4.0]]), fd=False),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", TIE_CASES)
def test_tie_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


# --- movement ops and indexing -----------------------------------------------------------------------
def _tpad(x, widths, value=0.0):
    flat = [w for pair in reversed(widths) for w in pair]  # F.pad wants the last dim first
    return F.pad(x, flat, value=value)


MOVEMENT = [
    case("reshape", lambda x: x.reshape(3, 4), X3),
    case("view_infer", lambda x: x.view(-1, 2), X3),
    case("permute", lambda x: x.permute(2, 0, 1), X3),
    case("transpose", lambda x: x.transpose(0, 2), X3),
    case("T", lambda x: x.T, A),
    case("permute_of_broadcast", lambda x, v: x.permute(2, 0, 1) * v, randn(1, 3, 2, seed=5),
         randn(2, 2, 2, 3, seed=6)),
    case("expand", lambda x: x.expand(2, 4, 3), randn(2, 1, 3, seed=5)),
    case("expand_new_dim", lambda x: x.expand(2, 2, 3), A),
    case("pad", lambda x: x.pad(((1, 0), (0, 2))), A, tfn=lambda x: _tpad(x, ((1, 0), (0, 2)))),
    case("pad_value_crop", lambda x: x.pad(((0, 1), (-1, 1)), value=1.5), A,
         tfn=lambda x: _tpad(x, ((0, 1), (-1, 1)), 1.5)),
    case("shrink", lambda x: x.shrink(((0, 1), (1, 3))), A, tfn=lambda x: x[0:1, 1:3]),
    case("flip", lambda x: x.flip(0), X3),
    case("flip_two", lambda x: x.flip((0, 2)), X3),
    case("repeat", lambda x: x.repeat(2, 1, 2), X3),
    case("repeat_new_dims", lambda x: x.repeat(2, 1, 1), A),
    case("squeeze", lambda x: x.squeeze(), randn(2, 1, 3, seed=5)),
    case("squeeze_dim", lambda x: x.squeeze(1), randn(2, 1, 3, seed=5)),
    case("unsqueeze", lambda x: x.unsqueeze(0) * x.unsqueeze(-1).sum(), A),
    case("flatten", lambda x: x.flatten(), X3),
    case("flatten_from", lambda x: x.flatten(1), X3),
    case("contiguous", lambda x: x.permute(2, 0, 1).contiguous() * x.sum(), X3),
    case("split", lambda x: x.split([1, 2], dim=1)[1], A, tfn=lambda x: x.split([1, 2], dim=1)[1]),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", MOVEMENT)
def test_movement_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


X4 = randn(4, 3, seed=6)
IDX = np.array([2, 0, 2, -1])  # repeated and negative: gradients accumulate
INDEXING = [
    case("int", lambda x: x[1], X3),
    case("slice", lambda x: x[:, 1:], X3),
    case("step", lambda x: x[::2], X4),
    case("negative_step", lambda x: x[::-1], X4, tfn=lambda x: x.flip(0)),
    case("negative_step_2_int", lambda x: x[::-2, 1], X4, tfn=lambda x: x.flip(0)[::2, 1]),
    case("negative_step_inner", lambda x: x[1:, 2:0:-1], X4, tfn=lambda x: x[1:, 1:3].flip(1)),
    case("none_ellipsis", lambda x: x[None, ..., 0], X3),
    case("ellipsis_none", lambda x: x[..., None, 1:], X3),
    case("int_tensor", lambda x: x[Tensor(IDX)], X4, tfn=lambda x: x[torch.tensor(IDX)]),
    case("int_list_inner", lambda x: x[:, [1, -1]], X4),
    case("int_tensor_2d_index", lambda x: x[1:, Tensor(np.array([[0, 2], [2, 2]]))], X4,
         tfn=lambda x: x[1:, torch.tensor([[0, 2], [2, 2]])]),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", INDEXING)
def test_getitem_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


# --- cat / stack / matmul (shape-based: holds for broadcast-mul+sum and a MATMUL node alike) ---------
COMBINE = [
    case("cat", lambda a, b: lg.cat([a, b], dim=1), A, B, tfn=lambda a, b: torch.cat([a, b], dim=1)),
    case("cat_same_twice", lambda a, b: lg.cat([a, b, a], dim=0), A, B,
         tfn=lambda a, b: torch.cat([a, b, a], dim=0)),
    case("cat_method", lambda a, b: a.cat(b, dim=-1), A, B, tfn=lambda a, b: torch.cat([a, b], dim=-1)),
    case("stack", lambda a, b: lg.stack([a, b], dim=0), A, B, tfn=lambda a, b: torch.stack([a, b], dim=0)),
    case("stack_last", lambda a, b: lg.stack([a, b], dim=-1), A, B,
         tfn=lambda a, b: torch.stack([a, b], dim=-1)),
    case("matmul_1d_1d", lambda a, b: a @ b, randn(3, seed=7), randn(3, seed=8)),
    case("matmul_1d_2d", lambda a, b: a @ b, randn(2, seed=7), A),
    case("matmul_2d_1d", lambda a, b: a @ b, A, randn(3, seed=8)),
    case("matmul_2d", lambda a, b: a @ b, A, randn(3, 2, seed=9)),
    case("matmul_batched", lambda a, b: a @ b, X3.transpose(0, 2, 1).copy(), randn(2, 3, 2, seed=9)),
    case("matmul_broadcast_batch", lambda a, b: a @ b, randn(2, 2, 3, seed=10), randn(3, 2, seed=9)),
    case("matmul_chain", lambda a, b: (a @ b).relu() @ b.T, A, randn(3, 2, seed=9)),
]


@pytest.mark.parametrize("fn,inputs,tfn,fd,tol", COMBINE)
def test_combine_grad(fn, inputs, tfn, fd, tol):
    check_grad(fn, inputs, tfn, fd, tol)


# --- hard cases ------------------------------------------------------------------------------------
def _torch_leaf(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, requires_grad=True)


def test_reused_non_leaf():
    a = T(A, requires_grad=True)
    b = a + a
    c = b * b
    c.sum().backward()
    ta = _torch_leaf(A)
    tb = ta + ta
    (tb * tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **TOL)
    np.testing.assert_allclose(a.grad.numpy(), 8 * A, **TOL)


def test_reused_non_leaf_many_paths():
    # one intermediate feeding a reduction, a broadcast and itself
    check_grad(lambda x: (lambda h: h * h.sum(1, keepdim=True) + h.exp() * h)(x.tanh()), [A])


def test_views_of_views():
    def fn(x):
        v = x.permute(2, 0, 1)[1:, ::-1]        # (1, 2, 3)... shrink, flip on a permute
        v = v.reshape(2, 3).T.flip(0)[::2]      # reshape of a view, transpose, flip, strided slice
        return v.pad(((1, 0), (0, 1))).expand(3, 3, 3)[:, 1:, None, :2]

    def tfn(x):
        v = x.permute(2, 0, 1)[1:].flip(1)
        v = v.reshape(2, 3).T.flip(0)[::2]
        return _tpad(v, ((1, 0), (0, 1))).expand(3, 3, 3)[:, 1:, None, :2]

    check_grad(fn, [X3], tfn)


def test_grad_of_permuted_broadcast_is_one_kernel():
    # the gradient of x.T broadcast against v is a reduction seen through a permute: autodiff
    # permutes the reduction's input, so no kernel copies a permuted reduction result
    xs, vs = randn(3, 4, seed=14), randn(5, 4, 3, seed=15)
    x = T(xs, requires_grad=True)
    (x.T * T(vs)).sum().backward()
    kernels = lg.schedule(x.grad)
    assert len(kernels) == 1, kernels
    tx = _torch_leaf(xs)
    (tx.T * torch.tensor(vs)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOL)


def test_broadcast_reduce_both_operands():
    a, b = randn(3, 1, 2, seed=11), randn(4, 1, seed=12)
    check_grad(lambda x, y: (x - y).square().mean(-1) * y.sum(), [a, b])


SECOND_ORDER = [  # (name, lazygrad fn, input, torch fn when it is spelled differently)
    ("exp", lambda x: x.exp(), A, None),
    ("log", lambda x: x.log(), P, None),
    ("sqrt", lambda x: x.sqrt(), P, None),
    ("reciprocal", lambda x: x.reciprocal(), P, None),
    ("sin_cos", lambda x: x.sin() * x.cos(), A, None),
    ("tanh", lambda x: x.tanh(), A, None),
    ("sigmoid", lambda x: x.sigmoid(), A, None),
    ("cube", lambda x: x * x * x, A, None),
    ("pow", lambda x: x ** 2.5, P, None),
    ("gelu", lambda x: x.gelu(approximate="tanh"), A, lambda x: F.gelu(x, approximate="tanh")),
    ("softplus", lambda x: x.softplus(), A, F.softplus),
    ("div", lambda x: (x + 3) / (x * x + 1), A, None),
]


@pytest.mark.parametrize("fn,data,tfn", [pytest.param(f, d, t, id=n) for n, f, d, t in SECOND_ORDER])
def test_second_order_elementwise(fn, data, tfn):
    """grad of grad (with a random upstream weight) against torch with create_graph=True."""
    w = randn(*data.shape, seed=13)
    x = T(data, requires_grad=True)
    (g,) = lg.grad(fn(x).sum(), [x])
    (gg,) = lg.grad((g * T(w)).sum(), [x])
    tx = _torch_leaf(data)
    (tg,) = torch.autograd.grad((tfn or fn)(tx).sum(), tx, create_graph=True)
    (tgg,) = torch.autograd.grad((tg * torch.tensor(w)).sum(), tx)
    lg.realize(g, gg)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), **TOL)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), **TOL)


def test_second_order_mixed_partials():
    # d/dy of (d/dx sum(x^2 y + sin(x y))) compared with torch
    xs, ys = A, B
    x, y = T(xs, requires_grad=True), T(ys, requires_grad=True)
    (gx,) = lg.grad((x * x * y + (x * y).sin()).sum(), [x])
    gy, gx2 = lg.grad(gx.sum(), [y, x])
    tx, ty = _torch_leaf(xs), _torch_leaf(ys)
    (tgx,) = torch.autograd.grad((tx * tx * ty + (tx * ty).sin()).sum(), tx, create_graph=True)
    tgy, tgx2 = torch.autograd.grad(tgx.sum(), [ty, tx])
    np.testing.assert_allclose(gy.numpy(), tgy.numpy(), **TOL)
    np.testing.assert_allclose(gx2.numpy(), tgx2.numpy(), **TOL)


def test_backward_create_graph_then_backward_again():
    x = T(A, requires_grad=True)
    (x.tanh() * x).sum().backward(create_graph=True)
    g1 = x.grad
    assert g1.requires_grad
    x.grad = None
    g1.sum().backward()
    tx = _torch_leaf(A)
    (tg,) = torch.autograd.grad((tx.tanh() * tx).sum(), tx, create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOL)


def test_accumulation_and_reset():
    x = T(A, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * A, **TOL)
    (x * x).sum().backward()           # accumulates like torch
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * A + 3, **TOL)
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full_like(A, 3), **TOL)
    x.zero_grad()
    assert x.grad is None
    (x.exp()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(A), **TOL)


def test_grad_is_detached_without_create_graph():
    x = T(A, requires_grad=True)
    (x * x).sum().backward()
    assert not x.grad.requires_grad
    g = x.grad
    x.grad = None
    (g * x).sum().backward()           # g is a constant here: d/dx = g = 2x, not 4x
    np.testing.assert_allclose(x.grad.numpy(), 2 * A, **TOL)


def test_detach_stops_gradient():
    x = T(A, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    (x * d + d.exp()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), A, **TOL)


def test_no_grad_stops_gradient():
    x = T(A, requires_grad=True)
    with lg.no_grad():
        z = x * 2
        s = x.sum()
    assert not z.requires_grad and not s.requires_grad
    (z * x + s).sum().backward()       # z and s are constants: d/dx = z = 2x
    np.testing.assert_allclose(x.grad.numpy(), 2 * A, **TOL)
    assert lg.is_grad_enabled()


def test_no_grad_result_is_not_differentiable():
    x = T(A, requires_grad=True)
    with lg.no_grad():
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="does not depend on an input of shape \\(2, 3\\)"):
        lg.grad(y, [x])


def test_equal_valued_leaves_get_their_own_gradients():
    # hash-consing makes equal lazy values one node; each leaf must still get only its own grad
    b1 = Tensor.zeros(3, requires_grad=True)
    b2 = Tensor.zeros(3, requires_grad=True)
    f1 = Tensor.full((3,), 2.0, requires_grad=True)
    c = Tensor.full((3,), 2.0)
    x = T(arr([1.0, 2.0, 3.0]))
    ((b1 + x) * 2 + b2 + f1 * c).sum().backward()
    np.testing.assert_allclose(b1.grad.numpy(), [2, 2, 2])
    np.testing.assert_allclose(b2.grad.numpy(), [1, 1, 1])
    np.testing.assert_allclose(f1.grad.numpy(), [2, 2, 2])
    assert c.grad is None and not c.requires_grad
    # requires_grad_ gives a leaf its own node too; calling it again keeps that node
    z1, z2 = Tensor.zeros(3).requires_grad_(), Tensor.zeros(3).requires_grad_()
    y = (z1 * 2 + z2).sum()
    z1.requires_grad_()
    y.backward()
    np.testing.assert_allclose(z1.grad.numpy(), [2, 2, 2])
    np.testing.assert_allclose(z2.grad.numpy(), [1, 1, 1])


def test_grad_wrt_intermediate_and_grad_output():
    x = T(A, requires_grad=True)
    h = x.exp()
    y = h * x
    gh, gx = lg.grad(y, [h, x], grad_output=T(B))
    tx = _torch_leaf(A)
    th = tx.exp()
    tgh, tgx = torch.autograd.grad(th * tx, [th, tx], grad_outputs=torch.tensor(B))
    np.testing.assert_allclose(gh.numpy(), tgh.numpy(), **TOL)
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), **TOL)


def test_training_loop_gradient_graph_does_not_grow():
    # parameters updated under no_grad: each step's gradient graph is one step's, not all so far
    rng = np.random.default_rng(16)
    xs, ys = rng.standard_normal((8, 3)).astype(NP_DT), rng.standard_normal(8).astype(NP_DT)
    w = T(np.zeros(3, NP_DT), requires_grad=True)
    w_ref = np.zeros(3)
    sizes = []
    for _ in range(5):
        loss = ((T(xs) @ w - T(ys)) ** 2).mean()
        loss.backward()
        sizes.append(len(lg.grad_graph(w.grad).splitlines()))
        with lg.no_grad():
            w.assign(w - 0.1 * w.grad)
        w.grad = None
        w.realize()
        w_ref = w_ref - 0.1 * (2 / 8) * xs.T @ (xs @ w_ref - ys)
    assert len(set(sizes)) == 1, sizes
    assert w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.numpy(), w_ref, **TOL)


def test_deep_graph_has_no_recursion_limit():
    x = T(A, requires_grad=True)
    y = x
    for _ in range(3000):   # deeper than Python's recursion limit
        y = y * 1.0001 + 0.0
    (g,) = lg.grad(y.sum(), [x])
    assert len(lg.grad_graph(g).splitlines()) > 3000


# --- forward + backward of an MLP fuse when realized together ------------------------------------------
def _mlp(params: dict[str, np.ndarray], loss_kind: str):
    x = Tensor(params["x"])
    ws = {k: Tensor(v, requires_grad=True) for k, v in params.items() if k != "x" and k != "y"}
    h = (x @ ws["w1"] + ws["b1"]).relu()
    out = h @ ws["w2"] + ws["b2"]
    if loss_kind == "mse":
        loss = ((out - Tensor(params["y"])) ** 2).mean()
    else:  # softmax cross-entropy against one-hot targets, written with Tensor ops
        loss = -(out.log_softmax(1) * Tensor(params["y"])).sum(1).mean()
    return loss, ws


def _torch_mlp(params: dict[str, np.ndarray], loss_kind: str):
    ws = {k: _torch_leaf(v) for k, v in params.items() if k != "x" and k != "y"}
    out = (torch.tensor(params["x"]) @ ws["w1"] + ws["b1"]).relu() @ ws["w2"] + ws["b2"]
    y = torch.tensor(params["y"])
    loss = ((out - y) ** 2).mean() if loss_kind == "mse" else -(out.log_softmax(1) * y).sum(1).mean()
    loss.backward()
    return loss, ws


@pytest.mark.parametrize("loss_kind", ["mse", "cross_entropy"])
def test_mlp_forward_backward_fuse(loss_kind):
    rng = np.random.default_rng(21)
    params = {"x": rng.standard_normal((8, 4)), "w1": rng.standard_normal((4, 6)) * 0.5,
              "b1": rng.standard_normal(6) * 0.1, "w2": rng.standard_normal((6, 3)) * 0.5,
              "b2": rng.standard_normal(3) * 0.1,
              "y": np.eye(3)[rng.integers(0, 3, 8)] if loss_kind != "mse" else rng.standard_normal((8, 3))}
    params = {k: v.astype(np.float32) for k, v in params.items()}   # the default dtype

    # forward, then backward: two realizes
    loss, ws = _mlp(params, loss_kind)
    loss.backward()
    grads = [w.grad for w in ws.values()]
    n_forward = len(lg.schedule(loss))
    lg.counters.reset()
    lg.realize(loss)
    n_backward = len(lg.schedule(*grads))
    lg.realize(*grads)
    separate = lg.counters.kernels_launched
    assert separate == n_forward + n_backward

    # the same graph on fresh buffers, forward and backward in one realize
    loss2, ws2 = _mlp(params, loss_kind)
    loss2.backward()
    grads2 = [w.grad for w in ws2.values()]
    n_joint = len(lg.schedule(loss2, *grads2))
    lg.counters.reset()
    lg.realize(loss2, *grads2)
    joint = lg.counters.kernels_launched
    assert joint == n_joint
    # together: the forward's stored intermediates serve the backward (separately they are
    # recomputed), and the loss's row reductions are recomputed inside the gradient kernels
    assert joint < separate, f"together {joint} kernels, separately {n_forward} + {n_backward}"

    tloss, tws = _torch_mlp(params, loss_kind)
    tol = dict(rtol=1e-4, atol=1e-5)
    for lo in (loss, loss2):
        np.testing.assert_allclose(lo.item(), tloss.item(), **tol)
    for name, g, g2 in zip(ws, grads, grads2):
        np.testing.assert_allclose(g.numpy(), tws[name].grad.numpy(), **tol, err_msg=name)
        np.testing.assert_allclose(g2.numpy(), g.numpy(), **tol, err_msg=name)


# --- the printable gradient graph ---------------------------------------------------------------------
def test_grad_graph_lists_ops_and_forward_origins():
    x = T(A, requires_grad=True)
    y = (x.exp() * x).sum(); line = _lineno()  # noqa: E702  (the origin line of exp, mul, sum)
    (gx,) = lg.grad(y, [x])
    text = lg.grad_graph(gx)
    lines = text.splitlines()
    listed: set[str] = set()
    for ln in lines:   # id, op, ..., (sources)  <- origin; sources listed before their users
        m = re.match(r"#(\d+) +(\w+).*\(([#\d,]*)\)  <- (.+)$", ln)
        assert m, ln
        for src in filter(None, m.group(3).split(",")):
            assert src.lstrip("#") in listed, f"source {src} listed after its user: {ln}"
        listed.add(m.group(1))
    ops = {re.match(r"#\d+ +(\w+)", ln).group(1) for ln in lines}
    assert {"exp", "mul", "add", "expand", "buffer"} <= ops
    here = f"test_autodiff.py:{line}"
    # the rules of mul and exp made muls, labelled with their forward node and its line
    # (constant-only gradient nodes, like the expanded seed, are shared between graphs by
    # hash-consing and keep the label of the graph that made them first)
    exp_ref = re.search(rf"^#\d+ +mul .*<- grad of exp #(\d+) @ {here}$", text, re.M)
    assert exp_ref, text
    assert re.search(rf"^#\d+ +mul .*<- grad of mul #\d+ @ {here}$", text, re.M), text
    # the forward exp node is listed (the gradient reads it), with the user's line as its origin
    assert re.search(rf"^#{exp_ref.group(1)} +exp +\(2, 3\) .*<- {here}$", text, re.M), text


def test_grad_graph_after_backward():
    x = T(A, requires_grad=True)
    (x.sin() * x).sum().backward()
    text = lg.grad_graph(x.grad)
    assert re.search(r"cos .*<- grad of sin #\d+ @ test_autodiff\.py:\d+", text), text
    assert "detach" in text.splitlines()[-1]     # .grad is detached from the graph


def _lineno() -> int:
    import inspect
    return inspect.currentframe().f_back.f_lineno


# --- errors --------------------------------------------------------------------------------------------
def test_backward_non_scalar_needs_gradient():
    x = T(A, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs, got shape \(2, 3\); pass a gradient"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient shape \(3,\) does not match tensor shape \(2, 3\)"):
        (x * 2).backward(T(arr([1.0, 2.0, 3.0])))
    (x * 2).backward(T(B))
    np.testing.assert_allclose(x.grad.numpy(), 2 * B, **TOL)


def test_backward_without_requires_grad_path():
    with pytest.raises(RuntimeError, match=r"tensor of shape \(\) does not require grad: no tensor with requires_grad"):
        T(A).sum().backward()
    x = T(A, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x.detach() * 2).sum().backward()
    y = (x * 2).sum()
    x.requires_grad_(False)
    with pytest.raises(RuntimeError, match=r"no tensor with requires_grad=True leads to the tensor of shape \(\)"):
        y.backward()


def test_lg_grad_errors():
    x = T(A, requires_grad=True)
    z = T(B, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: y has shape \(2, 3\); a grad_output is needed"):
        lg.grad(x * 2, [x])
    with pytest.raises(RuntimeError, match=r"does not depend on an input of shape \(2, 3\); pass allow_unused"):
        lg.grad((x * 2).sum(), [x, z])
    gx, gz = lg.grad((x * 2).sum(), [x, z], allow_unused=True)
    np.testing.assert_allclose(gz.numpy(), np.zeros_like(B))
    with pytest.raises(ValueError, match=r"grad_output shape \(3,\) does not match output shape \(2, 3\)"):
        lg.grad(x * 2, [x], grad_output=T(arr([1.0, 2.0, 3.0])))
    with pytest.raises(TypeError, match="grad: expected lazygrad Tensors, got ndarray"):
        lg.grad((x * 2).sum(), [A])
    with pytest.raises(TypeError, match="only floating point tensors can require grad"):
        Tensor([1, 2]).requires_grad_()
