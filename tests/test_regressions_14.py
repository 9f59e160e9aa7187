"""Regressions found by the differential fuzzer (tests/fuzz, batch 14) and the issue behind it:
each test compares a lazygrad result with torch (float64 torch where precision matters)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

from conftest import close

nan, inf = float("nan"), float("inf")


def _t(a, dtype=torch.float32, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


# --- codegen: a negative literal is an atom ---------------------------------------------------------
@pytest.mark.parametrize("dtype, tdtype", [(lg.int64, torch.int64), (lg.int32, torch.int32), (lg.float32, torch.float32)])
def test_negation_of_a_negative_constant_builds_and_matches_torch(dtype, tdtype):
    # `-` of the literal -7 was rendered `(--7L)`: a decrement of a literal, a build error
    x = Tensor.full((1, 5), -7, dtype=dtype)
    close(-x, -torch.full((1, 5), -7, dtype=tdtype).numpy())
    close((-x).maximum(Tensor.full((1, 5), -3, dtype=dtype)), torch.full((1, 5), 7, dtype=tdtype).numpy())


# --- clip with a NaN bound ----------------------------------------------------------------------------
@pytest.mark.parametrize("lo, hi", [(nan, 2.0), (0.0, nan), (nan, None), (None, nan)])
def test_clip_with_a_nan_bound_is_nan_like_torch(lo, hi):
    data = [1.0, nan, 3.0, -inf]
    close(Tensor(data).clip(lo, hi), torch.clamp(_t(data), lo, hi).numpy())


def test_clip_with_a_tensor_bound_holding_nan_matches_torch():
    data, lo = [1.0, 2.0, 3.0], [0.0, nan, 5.0]
    close(Tensor(data).clip(Tensor(lo)), torch.clamp(_t(data), min=_t(lo)).numpy())


# --- transcendentals of special values (PoCL's libm) ---------------------------------------------------
@pytest.mark.parametrize("op", ["exp", "tanh", "log", "sqrt", "sin", "cos"])
@pytest.mark.parametrize("dtype, tdtype", [(lg.float32, torch.float32), (lg.float64, torch.float64)])
def test_constant_nan_through_a_transcendental_is_nan_like_torch(op, dtype, tdtype):
    # exp(NAN) and tanh(NAN) folded by the device compiler gave finite garbage (1e25, 6.9e-310)
    got = getattr(Tensor.full((3,), nan, dtype=dtype), op)()
    close(got, getattr(torch, op)(torch.full((3,), nan, dtype=tdtype)).numpy())


def test_mean_of_an_empty_tensor_then_exp_is_nan_like_torch():
    # the empty reduction is a compile-time 0, times NaN, then exp(NAN) folded to garbage
    close(Tensor.zeros(0).mean().exp(), torch.zeros(0).mean().exp().numpy())
    close(Tensor.zeros(3, 0).mean(1).tanh(), torch.zeros(3, 0).mean(1).tanh().numpy())


def test_tanh_saturates_to_exactly_one_like_torch():
    # PoCL's tanh returns 0.99999994 up to +-inf; torch and numpy round to +-1 from |x| = 9.0109
    data = [inf, -inf, 20.0, -20.0, 9.010914, 9.01091, 1e30, 0.5, -3.0, 1e-40, -0.0]
    for dtype, tdtype in ((lg.float32, torch.float32), (lg.float64, torch.float64)):
        got = Tensor(data, dtype=dtype).tanh().numpy()
        want = torch.tensor(data, dtype=tdtype).tanh().numpy()
        assert np.array_equal(got[:4], want[:4]) and np.all(np.abs(got[:4]) == 1.0)
        close(got, want, rtol=2e-7 if dtype is lg.float32 else 1e-15, atol=0)


def test_saturated_tanh_has_zero_gradient_like_torch():
    x = Tensor([inf, -30.0, 40.0], requires_grad=True)
    x.tanh().sum().backward()
    t = _t([inf, -30.0, 40.0], grad=True)
    t.tanh().sum().backward()
    close(x.grad, t.grad.numpy(), atol=0)


@pytest.mark.parametrize("op", ["sin", "cos"])
@pytest.mark.parametrize("big", [inf, 1e30, 1e7])
def test_vector_sin_cos_of_small_lanes_next_to_a_huge_lane_match_torch(op, big):
    # PoCL's float8 sin/cos: when one lane needs the large-argument reduction, every lane with
    # |x| < 2**-7 came back near 0.008
    rng = np.random.default_rng(0)
    data = (10.0 ** rng.uniform(-40, -2.2, 64) * rng.choice([-1, 1], 64)).astype(np.float32)
    data[::8] = big
    data[1::8] = 0.0078125
    got = getattr(Tensor(data), op)()
    close(got, getattr(torch, op)(torch.tensor(data, dtype=torch.float64)).numpy(), rtol=1e-6, atol=1e-45)


# --- integer sums accumulate in int64 (torch) -----------------------------------------------------------
def test_int32_sum_does_not_overflow_and_is_int64_like_torch():
    got = Tensor.full(3, 2**30, dtype=lg.int32).sum()
    want = torch.full((3,), 2**30, dtype=torch.int32).sum()
    assert got.dtype is lg.int64 and want.dtype == torch.int64
    assert got.item() == want.item() == 3 * 2**30


@pytest.mark.parametrize("data, dtype, tdtype", [
    ([[2**31 - 1, 5], [2**31 - 1, -7]], lg.int32, torch.int32),
    ([[True, True], [False, True]], lg.bool_, torch.bool),
    ([[2**62, 2**62], [1, -1]], lg.int64, torch.int64),
])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_int_and_bool_sum_and_cumsum_dtype_and_values_match_torch(data, dtype, tdtype, axis):
    x, t = Tensor(data, dtype=dtype), torch.tensor(data, dtype=tdtype)
    s, ts = x.sum(axis), (t.sum() if axis is None else t.sum(axis))
    assert s.dtype.name == str(ts.dtype).split(".")[1]
    close(s, ts.numpy())
    if axis is not None:
        c, tc = x.cumsum(axis), t.cumsum(axis)
        assert c.dtype.name == str(tc.dtype).split(".")[1]
        close(c, tc.numpy())


def test_sum_with_an_explicit_dtype_keeps_it_like_torch():
    x = Tensor([[1, 2], [3, 4]], dtype=lg.int32)
    assert x.sum(0, dtype=lg.int32).dtype is lg.int32
    close(x.sum(0, dtype=lg.int32), torch.tensor([[1, 2], [3, 4]], dtype=torch.int32).sum(0, dtype=torch.int32).numpy())


def test_integer_tensor_index_of_an_int_tensor_keeps_its_dtype():
    # the one-hot gather sums: with int64 sums the result must still be the indexed dtype
    x = Tensor([[1, -2, 3], [4, 5, -6]], dtype=lg.int32)
    y = x[Tensor([1, 0, 1])]
    assert y.dtype is lg.int32
    close(y, torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=torch.int32)[torch.tensor([1, 0, 1])].numpy())


# --- numpy input of any byte order ------------------------------------------------------------------------
@pytest.mark.parametrize("npdtype, want", [(">i4", lg.int32), (">i2", lg.int16), (">u2", lg.int32), (">f4", lg.float32),
                                           ("<i4", lg.int32), (">i8", lg.int32)])
def test_big_endian_numpy_arrays_keep_their_kind(npdtype, want):
    a = np.arange(5, dtype=npdtype)
    t = Tensor(a)
    assert t.dtype is want
    close(t, torch.from_numpy(a.astype(a.dtype.newbyteorder("="))).numpy().astype(want.np))
    assert lg.dtypes.as_dtype(np.dtype(">i8")) is lg.int64 and lg.dtypes.as_dtype(np.dtype(">f8")) is lg.float64


# --- zero-size tensors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", [True, False])
def test_stored_zero_size_intermediate_and_its_gradient_match_torch(fuse):
    # a zero-size node stored for a later kernel had no buffer: KeyError in engine.run_plan
    x = Tensor(np.ones((3, 0), np.float32), requires_grad=True)
    t = torch.ones(3, 0, requires_grad=True)
    with lg.config.override(fuse=fuse):
        y = (x * 2).exp()
        out = y.sum(1) + y.sum(1) * 2 + y.mean(1)
        close(out, ((t * 2).exp().sum(1) * 3 + (t * 2).exp().mean(1)).detach().numpy())
        (w := (x * 2).exp().sum(1) * 3).sum().backward()
        assert w.shape == (3,)
        assert x.grad.shape == (3, 0) and x.grad.numpy().shape == (3, 0)


def test_matmul_with_a_zero_inner_dim_is_zeros_like_torch():
    # (2, 4, 0) @ (0, 3) folded the batch into M with reshape(-1, 0): ambiguous, it raised
    close(Tensor.ones(2, 4, 0) @ Tensor.ones(0, 3), (torch.ones(2, 4, 0) @ torch.ones(0, 3)).numpy())
    close(Tensor.ones(0, 4, 2) @ Tensor.ones(2, 3), (torch.ones(0, 4, 2) @ torch.ones(2, 3)).numpy())
    close(Tensor.ones(2, 0) @ Tensor.ones(0), (torch.ones(2, 0) @ torch.ones(0)).numpy())


@pytest.mark.parametrize("name", ["sum", "mean", "any", "all", "logsumexp"])
@pytest.mark.parametrize("axis", [1, None, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_over_an_empty_axis_match_torch(name, axis, keepdim):
    # sum 0, mean NaN, any False, all True, logsumexp -inf (any/all/logsumexp raised)
    dims = (0, 1) if axis is None else axis
    want = getattr(torch, name)(torch.ones(3, 0), dims, keepdim=keepdim)
    got = getattr(Tensor.ones(3, 0), name)(axis, keepdim=keepdim)
    assert got.dtype.name == str(want.dtype).split(".")[1]
    close(got, want.numpy())


def test_softmax_and_log_softmax_over_an_empty_axis_are_empty_like_torch():
    for f in ("softmax", "log_softmax"):
        close(getattr(Tensor.ones(3, 0), f)(1), getattr(torch, f)(torch.ones(3, 0), 1).numpy())
        close(getattr(Tensor.ones(0, 4), f)(1), getattr(torch, f)(torch.ones(0, 4), 1).numpy())


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_max_like_reductions_over_an_empty_axis_raise_index_error_like_torch(name):
    with pytest.raises(IndexError):
        getattr(torch.ones(3, 0), "amax" if name == "max" else "amin" if name == "min" else name)(1)
    with pytest.raises(IndexError, match=rf"{name}: cannot .* dim 1 of size 0 in shape \(3, 0\)"):
        getattr(Tensor.ones(3, 0), name)(1)
    with pytest.raises(IndexError):
        getattr(Tensor.ones(0), name)()


@pytest.mark.parametrize("shape", [(2, 3), (4,), (2, 1, 3), ()])
def test_argmax_without_axis_keepdim_keeps_every_dim_like_torch(shape):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for name in ("argmax", "argmin"):
        got = getattr(Tensor(data), name)(keepdim=True)
        want = getattr(torch.tensor(data), name)(keepdim=True)
        assert got.shape == tuple(want.shape)
        close(got, want.numpy().astype(np.int32))


# --- validation gaps -------------------------------------------------------------------------------------
@pytest.mark.parametrize("lg_fn, torch_fn, match", [
    (lambda x: x.expand(-2, 3), lambda t: t.expand(-2, 3), r"expand: invalid size in \(-2, 3\)"),
    (lambda x: x.expand(-1, 1, 3), lambda t: t.expand(-1, 1, 3), "expand: -1 is not allowed for the new leading dims"),
    (lambda x: x.split(0), lambda t: t.split(0), "split: split size 0 for dim 0 of size 1"),
    (lambda x: x.split(-1, dim=1), lambda t: t.split(-1, dim=1), "split: split size -1"),
    (lambda x: x.chunk(0), lambda t: t.chunk(0), "chunk: chunks must be positive, got 0"),
    (lambda x: x.flip((0, 0)), lambda t: t.flip((0, 0)), r"flip: dims \(0, 0\) name the same dim twice"),
    (lambda x: x.flip((1, -1)), lambda t: t.flip((1, -1)), r"flip: dims \(1, -1\) name the same dim twice"),
])
def test_invalid_movement_arguments_raise_like_torch(lg_fn, torch_fn, match):
    with pytest.raises(RuntimeError):
        torch_fn(torch.ones(1, 3))
    with pytest.raises(ValueError, match=match):
        lg_fn(Tensor.ones(1, 3))


def test_split_and_chunk_of_an_empty_dim_give_one_empty_piece_like_torch():
    assert [tuple(p.shape) for p in Tensor.ones(0, 2).split(0)] == [tuple(p.shape) for p in torch.ones(0, 2).split(0)]
    assert [tuple(p.shape) for p in Tensor.ones(0, 2).split(3)] == [tuple(p.shape) for p in torch.ones(0, 2).split(3)]


# --- gradients at kinks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_softplus_value_and_gradient_match_torch_including_zero(beta):
    # at 0 the gradient was 0 (the kinks of |x| and relu); torch's is sigmoid(0) = 0.5
    data = [0.0, -0.0, 1e-8, -1e-8, 3.0, -3.0, -17.0, -30.0, -90.0, 25.0, 8.0]
    x = Tensor(data, requires_grad=True)
    y = x.softplus(beta=beta)
    y.sum().backward()
    t = _t(data, torch.float64, grad=True)
    ty = torch.nn.functional.softplus(t, beta=beta)
    ty.sum().backward()
    close(y, ty.detach().float().numpy(), rtol=2e-6, atol=0)   # log1p: accurate down to exp(-90)
    close(x.grad, t.grad.float().numpy(), rtol=2e-6, atol=0)
    assert x.grad.numpy()[0] == 0.5


def test_log1p_is_accurate_for_tiny_inputs_like_torch():
    data = [1e-10, -1e-10, 1e-5, -0.5, -1.0, 3.0, inf, -0.0, -2.0, nan, 1e30]
    close(Tensor(data).log1p(), torch.log1p(_t(data, torch.float64)).numpy(), rtol=2e-7, atol=0)
    x = Tensor([1e-10, 0.5, 3.0], requires_grad=True)
    x.log1p().sum().backward()
    close(x.grad, 1 / (1 + np.array([1e-10, 0.5, 3.0])), rtol=1e-6)


@pytest.mark.parametrize("data", [[0.0, -0.0, 2.0, -3.0, 1e-40], [inf, -inf, nan]])
def test_sign_is_differentiable_with_zero_gradient_like_torch(data):
    # sign was built from comparisons only: no gradient path, backward raised
    x = Tensor(data, requires_grad=True)
    (x.sign() * 3).sum().backward()
    t = _t(data, grad=True)
    (t.sign() * 3).sum().backward()
    close(x.grad, t.grad.numpy(), atol=0)
    close(x.sign(), torch.sign(_t(data)).numpy(), atol=0)
    (g,) = lg.grad((x.sign() * x).sum(), [x])  # d(sign(x) x)/dx = sign(x) where finite
    (tg,) = torch.autograd.grad((torch.sign(t) * t).sum(), [t])
    close(g, tg.numpy())


# --- out-of-range tensor indices ------------------------------------------------------------------------
X23 = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_concrete_out_of_range_index_raises_when_built_like_torch():
    with pytest.raises(IndexError):
        torch.tensor(X23)[torch.tensor([0, 5])]
    realized = (Tensor([0, 1]) + 4).realize()
    for idx in ([0, 5], np.array([-3, 0]), Tensor([0, 2]), realized):
        with pytest.raises(IndexError, match=r"getitem: index -?\d+ is out of bounds for dim 0 with size 2"):
            Tensor(X23)[idx]


@pytest.mark.parametrize("key, dim, size", [(lambda i: i + 4, 0, 2), (lambda i: (slice(None), i - 4), 1, 3)])
def test_lazy_out_of_range_index_raises_at_realize_with_check_index(monkeypatch, key, dim, size):
    monkeypatch.setenv("LAZYGRAD_CHECK_INDEX", "1")
    y = (Tensor(X23)[key(Tensor([0, 1]))] * 2).sum()  # building it is fine: the index is lazy
    with pytest.raises(IndexError, match=rf"getitem: index -?\d+ is out of bounds for dim {dim} of shape \(2, 3\) "
                                         rf"with size {size} .*LAZYGRAD_CHECK_INDEX"):
        y.numpy()
    with pytest.raises(IndexError):  # torch, with the same indices
        torch.tensor(X23)[key(torch.tensor([0, 1]))]


def test_lazy_in_range_index_with_check_index_matches_torch(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_CHECK_INDEX", "1")
    i, ti = Tensor([0, 1, 1]), torch.tensor([0, 1, 1])
    close(Tensor(X23)[i * 2 - 1], torch.tensor(X23)[ti * 2 - 1].numpy())
    close(Tensor(X23)[:, (i + 1) * -1], torch.tensor(X23)[:, (ti + 1) * -1].numpy())


def test_lazy_out_of_range_index_without_check_index_selects_zero(monkeypatch):
    # the documented behaviour when the check is off (docs/semantics.md): no kernel can raise
    monkeypatch.setenv("LAZYGRAD_CHECK_INDEX", "0")
    close(Tensor(X23)[Tensor([0, 1]) + 1], np.array([[3, 4, 5], [0, 0, 0]], np.float32))


# --- float floor division and remainder (torch.floor_divide / torch.remainder) ------------------------------
_A = [inf, -inf, 5.0, -5.0, 1.0, 0.0, -0.0, nan, 7.0, 1e30, -1e-30, -1e30, 7.5, -7.5, 3.0]
_B = [2.0, 2.0, inf, inf, 0.1, 3.0, 3.0, 1.0, 0.0, 88.7, 3.0, 88.7, -2.0, 2.0, -inf]


def test_float_remainder_matches_torch_for_large_quotients_and_special_values():
    # a - floor(a / b) * b gave inf for -1e30 % 88.7; fmod is exact
    close(Tensor(_A) % Tensor(_B), torch.remainder(_t(_A), _t(_B)).numpy(), rtol=1e-6, atol=0)
    close(Tensor(_A) % 88.7, torch.remainder(_t(_A), 88.7).numpy(), rtol=1e-6, atol=0)


def test_float_floor_division_matches_torch_and_python():
    # floor(1 / 0.1) is 10 (the quotient rounds up first); torch, numpy and Python give 9
    got = (Tensor(_A) // Tensor(_B)).numpy()
    want = torch.floor_divide(_t(_A), _t(_B)).numpy()
    close(got, want, rtol=1e-6, atol=0)
    real = ~np.isnan(want)
    assert np.array_equal(np.signbit(got[real]), np.signbit(want[real]))  # -0.0 // 3 is -0.0
    assert (Tensor([1.0]) // 0.1).item() == 1.0 // np.float32(0.1) == 9.0


def test_float_remainder_gradient_matches_torch():
    a, b = [3.5, -3.5, 7.25, -0.5], [2.0, 2.0, -1.5, 3.0]
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (x % y * Tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    tx, ty = _t(a, torch.float64, grad=True), _t(b, torch.float64, grad=True)
    (torch.remainder(tx, ty) * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)).sum().backward()
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())


# --- maximum/minimum gradients with NaN (torch's masks) ---------------------------------------------------
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_gradient_with_a_nan_operand_matches_torch(name):
    # with a NaN operand torch gives the gradient to both sides; lazygrad gave it to one
    a, b = [1.0, nan, 2.0, 3.0, nan], [nan, 1.0, 2.0, -1.0, nan]
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    getattr(x, name)(y).sum().backward()
    tx, ty = _t(a, grad=True), _t(b, grad=True)
    getattr(torch, name)(tx, ty).sum().backward()
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())


def test_minimum_with_a_scalar_masks_a_nan_gradient_like_torch():
    # the weights multiplied the gradient: 0 * NaN (from sqrt of the negative side) was NaN
    x = Tensor([[-20.0, 0.0, 0.0]], requires_grad=True)
    x.minimum(-3.0).sqrt().sum().backward()
    t = _t([[-20.0, 0.0, 0.0]], grad=True)
    torch.clamp_max(t, -3.0).sqrt().sum().backward()
    close(x.grad, t.grad.numpy())
    y = Tensor([5.0, 1.0], requires_grad=True)
    (y.maximum(Tensor([1.0, 4.0])).log() * Tensor([inf, 1.0])).sum().backward()
    ty = _t([5.0, 1.0], grad=True)
    (torch.maximum(ty, _t([1.0, 4.0])).log() * _t([inf, 1.0])).sum().backward()
    close(y.grad, ty.grad.numpy())


# --- signed zeros and bool arithmetic ---------------------------------------------------------------------
def test_abs_of_zeros_is_positive_zero_like_torch():
    data = [0.0, -0.0, -2.0, 3.0, -inf, nan]
    for dtype, tdtype in ((lg.float32, torch.float32), (lg.float64, torch.float64)):
        got = Tensor(data, dtype=dtype).abs().numpy()
        want = torch.tensor(data, dtype=tdtype).abs().numpy()
        close(got, want, atol=0)
        assert not np.signbit(got[:2]).any()
        close(1.0 / Tensor(data, dtype=dtype).abs(), (1.0 / torch.tensor(data, dtype=tdtype).abs()).numpy())
    x = Tensor([0.0, -2.0], requires_grad=True)
    x.abs().sum().backward()
    t = _t([0.0, -2.0], grad=True)
    t.abs().sum().backward()
    close(x.grad, t.grad.numpy())


@pytest.mark.parametrize("op", ["add", "mul", "maximum", "minimum"])
def test_bool_arithmetic_stays_bool_like_torch(op):
    # bool + bool was int32 (2 for True + True): torch and numpy give bool (or / and)
    a, b = [True, True, False, False], [True, False, True, False]
    f = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y}.get(op, lambda x, y: getattr(x, op)(y))
    tf = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y}.get(op, lambda x, y: getattr(torch, op)(x, y))
    got, want = f(Tensor(a), Tensor(b)), tf(torch.tensor(a), torch.tensor(b))
    assert got.dtype is lg.bool_ and want.dtype == torch.bool
    close(got, want.numpy())
    close(f(Tensor(a), Tensor(False)) | Tensor(b), (tf(torch.tensor(a), torch.tensor(False)) | torch.tensor(b)).numpy())


def test_bool_minus_bool_raises_like_torch():
    with pytest.raises(RuntimeError):
        torch.tensor([True]) - torch.tensor([False])
    with pytest.raises(TypeError, match="sub: bool tensors of shape"):
        Tensor([True]) - Tensor([False])


@pytest.mark.parametrize("name", ["floor", "ceil", "round"])
def test_floor_ceil_round_have_zero_gradient_and_signed_zeros_like_torch(name):
    # from 2**23 up floor passed its input through, gradient 1 included (exp(20).round() had
    # gradient 4.9e8); floor(-0.0) and round(-0.4) were +0.0
    data = [-0.0, 0.0, -0.4, 0.4, -0.5, 0.5, 1.5, 2.5, -2.5, 3e8, -3e8, 1e30, inf, -inf, nan, -0.7, 0.7]
    x = Tensor(data, requires_grad=True)
    y = getattr(x, name)()
    (y * 3).sum().backward()
    t = _t(data, grad=True)
    ty = getattr(torch, name)(t)
    (ty * 3).sum().backward()
    close(y, ty.detach().numpy(), atol=0)
    real = ~np.isnan(ty.detach().numpy())
    assert np.array_equal(np.signbit(y.numpy()[real]), np.signbit(ty.detach().numpy()[real]))
    close(x.grad, t.grad.numpy(), atol=0)
    close(Tensor([20.0], requires_grad=True).exp().round(), torch.tensor([20.0]).exp().round().numpy())


@pytest.mark.parametrize("op", ["le", "ge", "lt", "gt", "eq", "ne"])
def test_comparisons_with_nan_match_torch(op):
    # a <= b was not (b < a): true for NaN
    a, b = [nan, 1.0, nan, 2.0, -inf], [1.0, nan, nan, 2.0, -inf]
    close(getattr(Tensor(a), op)(Tensor(b)), getattr(torch, op)(_t(a), _t(b)).numpy())
    close(getattr(Tensor(a), op)(1.0), getattr(torch, op)(_t(a), 1.0).numpy())
    close(getattr(Tensor(a), op)(Tensor(True)), getattr(torch, op)(_t(a), torch.tensor(True)).numpy())


def test_sums_of_negative_zero_are_positive_zero_like_torch():
    # a sum over a length-1 axis returned its input: -0.0 (torch's sums start from +0.0)
    for x, t in ((Tensor([[-0.0, 1.0]]), _t([[-0.0, 1.0]])), (Tensor([-0.0]), _t([-0.0]))):
        for got, want in ((x.sum(0), t.sum(0)), (x.cumsum(0), t.cumsum(0)), (x.mean(0), t.mean(0))):
            close(1 / got, (1 / want).numpy())
    close(1 / Tensor([-0.0, -0.0]).cumsum(0), (1 / _t([-0.0, -0.0]).cumsum(0)).numpy())


@pytest.mark.parametrize("op", ["lt", "gt", "le", "ge"])
def test_ordering_comparisons_of_bool_tensors_match_torch(op):
    # in vector code a true bool is the mask -1, so True > False compared -1 > 0 (false)
    a = np.array([[True, True], [False, False], [False, True]] * 6)
    for x, y in ((a, np.array(True)), (np.array(True), a), (a, a[::-1].copy()), (a, np.array(False))):
        close(getattr(Tensor(x), op)(Tensor(y)), getattr(torch, op)(torch.tensor(x), torch.tensor(y)).numpy())


@pytest.mark.parametrize("fuse", [True, False])
def test_cat_and_stack_keep_negative_zero_like_torch(fuse):
    # each piece was padded with +0.0 and the pieces added: -0.0 + 0.0 is +0.0
    a, b = [[-0.0], [1.0]], [[0.0], [-0.0], [nan]]
    with lg.config.override(fuse=fuse):
        got = lg.cat([Tensor(a), Tensor(b)], dim=0)
        want = torch.cat([_t(a), _t(b)], dim=0)
        close(1 / got, (1 / want).numpy())
        close(1 / lg.stack([Tensor(a), Tensor(a)], dim=1), (1 / torch.stack([_t(a), _t(a)], dim=1)).numpy())
        x = Tensor([[-0.0]], requires_grad=True)
        lg.cat([x, Tensor([[4.0]])], dim=1).sqrt().sum().backward()
        t = _t([[-0.0]], grad=True)
        torch.cat([t, _t([[4.0]])], dim=1).sqrt().sum().backward()
        close(x.grad, t.grad.numpy())


# --- division by a row-invariant divisor (hoisted reciprocal) ----------------------------------------------
@pytest.mark.parametrize("dtype, tdtype", [(lg.float32, torch.float32), (lg.float64, torch.float64)])
def test_normalising_by_a_tiny_row_sum_matches_torch(dtype, tdtype):
    # x / s with s fixed per row is x * (1 / s): 1 / 3e-40 overflows, so 0 / s was 0 * inf = NaN
    tiny = 1e-40 if dtype is lg.float32 else 1e-310
    data = np.array([[tiny, 2 * tiny, 0.0, -tiny], [1.0, 2.0, 0.0, 3.0], [0.0, 0.0, tiny, 0.0]])
    x, t = Tensor(data, dtype=dtype), torch.tensor(data, dtype=tdtype)
    close(x / x.abs().sum(1, keepdim=True), (t / t.abs().sum(1, keepdim=True)).numpy(), rtol=1e-6)
    close((x / x.abs().sum(1, keepdim=True)).sum(1), (t / t.abs().sum(1, keepdim=True)).sum(1).numpy(), rtol=1e-6)


def test_sum_of_a_division_by_a_denormal_scalar_matches_torch():
    data = np.array([[-1.5, -2.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    x = Tensor(data, requires_grad=True)
    y = (x / -4.203895392974451e-45).sum(1)
    (g,) = lg.grad(y.sum(), [x])
    t = torch.tensor(data, requires_grad=True)
    ty = (t / -4.203895392974451e-45).sum(1)
    close(y, ty.detach().numpy())
    close(g, torch.autograd.grad(ty.sum(), [t])[0].numpy())


def test_cumsum_with_infinities_matches_torch():
    # the prefix sums multiplied by a 0/1 mask: inf * 0 = NaN in every prefix before the inf
    data = [[1.25, -0.5, 20.0, inf, 1.0], [-inf, 2.0, inf, 0.5, -1.0], [nan, 1.0, 2.0, 3.0, 4.0]]
    for axis in (0, 1):
        close(Tensor(data).cumsum(axis), torch.cumsum(_t(data), axis).numpy())
    x = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    (x.cumsum(1) * Tensor([[1.0, 10.0, 100.0]])).sum().backward()
    t = _t([[1.0, 2.0, 3.0]], grad=True)
    (torch.cumsum(t, 1) * _t([[1.0, 10.0, 100.0]])).sum().backward()
    close(x.grad, t.grad.numpy())


# --- conv2d: padded rows contribute 0 * w -----------------------------------------------------------------
@pytest.mark.parametrize("conv", ["direct", "im2col"])
@pytest.mark.parametrize("bad", [nan, inf])
def test_conv2d_zero_padding_takes_part_in_the_products(conv, bad):
    # the direct kernel skipped padded rows but multiplied padded columns by the weights: a NaN or
    # inf weight reached some border outputs and not others, and the im2col path differed. Padding
    # is zeros in the products (0 * inf = NaN) on every path, like torch on an explicitly padded
    # input (torch's own padding=... result here depends on its algorithm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    w[1, 2, 0, 1] = bad
    with lg.config.override(conv=conv):
        got = Tensor(x).conv2d(Tensor(w), padding=(2, 1), stride=(1, 2))
    padded = torch.nn.functional.pad(torch.tensor(x), (1, 1, 2, 2))
    want = torch.nn.functional.conv2d(padded, torch.tensor(w), stride=(1, 2))
    close(got, want.numpy(), rtol=1e-4, atol=1e-4)


def test_remainder_gradient_by_a_zero_divisor_matches_torch():
    # d(a % b)/db was -(a - fmod(a, b)) / b: NaN for b = 0 (fmod is NaN); torch gives -floor(a / b)
    a, b = [-0.5, 2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 2.0]
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (x % y * Tensor([3.9, 1.0, 1.0, 2.0])).sum().backward()
    tx, ty = _t(a, torch.float64, grad=True), _t(b, torch.float64, grad=True)
    (torch.remainder(tx, ty) * torch.tensor([3.9, 1.0, 1.0, 2.0], dtype=torch.float64)).sum().backward()
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())


@pytest.mark.parametrize("name", ["floor", "ceil", "round"])
def test_zero_gradient_of_rounding_stays_zero_under_an_infinite_incoming_gradient(name):
    # round's signed-zero fix multiplied its input by 0: 0 * inf = NaN in the gradient
    x = Tensor([0.0, 0.3, -2.6], requires_grad=True)
    (Tensor([-0.5, 1.0, 2.0]) % getattr(x, name)()).sum().backward()
    t = _t([0.0, 0.3, -2.6], torch.float64, grad=True)
    torch.remainder(torch.tensor([-0.5, 1.0, 2.0], dtype=torch.float64), getattr(torch, name)(t)).sum().backward()
    close(x.grad, t.grad.numpy())


# --- views: a 0-d read of padding --------------------------------------------------------------------------
def test_gradient_through_an_empty_slice_into_a_scalar_matches_torch():
    # the gradient of x1 pads an empty gradient to one element and reshapes it to 0-d: the
    # reshape dropped the "nothing valid" mask and the kernel read element 0 of the empty (NULL)
    # buffer: garbage, or a segfault (found by the fuzzer under LAZYGRAD_TARGET=512)
    x0 = Tensor(np.array([2.0], np.float32), requires_grad=True)
    x1 = Tensor(np.array(0.9, np.float32), requires_grad=True)
    y = (x0.mean(-1, keepdim=True).rsqrt() - x1)[:-2:2]
    gs = lg.grad(y, [x0, x1], grad_output=Tensor(np.zeros((0,), np.float32)))
    t0, t1 = _t([2.0], grad=True), _t(0.9, grad=True)
    ty = (t0.mean(-1, keepdim=True).rsqrt() - t1)[:0]
    tgs = torch.autograd.grad(ty, [t0, t1], torch.zeros(0))
    for g, tg in zip(gs, tgs):
        close(g, tg.numpy())


def test_a_scalar_view_entirely_in_padding_reads_the_fill_value():
    for fuse in (True, False):
        with lg.config.override(fuse=fuse):
            x = Tensor(np.zeros((0,), np.float32)).pad(((0, 1),), value=0.0).reshape(())
            close(x * 2 + 1, np.float32(1.0))
            close(Tensor([1.0, 2.0]).pad(((0, 1),), value=5.0)[2:3].reshape(()) * 2, np.float32(10.0))


def test_elu_gradient_at_large_inputs_and_expm1_accuracy_match_torch():
    # elu exponentiated every input: exp(inf) = inf, and the where's 0 for that unused branch
    # times it was a NaN gradient (x / -0.0 then elu; found by the fuzzer); exp(x) - 1 also lost
    # the digits of small x that torch's expm1 keeps
    data = [1e-8, -1e-8, 1e-4, -3.0, 0.5, 30.0, -100.0, inf, -inf, 0.0, -0.0, 88.0, 1e30]
    x = Tensor(data, requires_grad=True)
    y = x.elu()
    y.sum().backward()
    t = _t(data, torch.float64, grad=True)
    ty = torch.nn.functional.elu(t)
    ty.sum().backward()
    close(y, ty.detach().float().numpy(), rtol=1e-6, atol=0)
    close(x.grad, t.grad.float().numpy(), rtol=1e-6, atol=0)
    close(Tensor(data).expm1(), torch.expm1(_t(data, torch.float64)).float().numpy(), rtol=1e-6, atol=0)


def test_clip_passes_no_gradient_to_a_nan_input_like_torch():
    # clip(NaN) is NaN and torch's mask lo <= x <= hi is false there: gradient 0; the where
    # chain kept x and passed the gradient through (log of a negative, then clip; fuzzer soak)
    data = [-1.0, 0.5, 5.0, nan, 1.0, 0.04]
    x = Tensor(data, requires_grad=True)
    y = x.log().clip(-3.0, 1.0)
    (y * Tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).sum().backward()
    t = _t(data, grad=True)
    ty = t.log().clip(-3.0, 1.0)
    (ty * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).sum().backward()
    close(y, ty.detach().numpy())
    close(x.grad, t.grad.numpy())


I32_MIN, I64_MAX = -2**31, 2**63 - 1


@pytest.mark.parametrize("fuse", [True, False])
def test_signed_integer_overflow_wraps_like_torch(fuse):
    # signed overflow is undefined in OpenCL C and PoCL's compiler used that: x + INT_MIN gave
    # -1 for x = -1 (fuzz seed 663359781) and an int64 difference that overflows became 0 after
    # relu (seed 663361134); add, sub, mul, neg, << and sums are now computed as unsigned bits
    data = np.array([[[4, 6, 1, 5, -1, 9, 0]]], np.int32)
    with lg.config.override(fuse=fuse):
        x, t = Tensor(data, dtype=lg.int32), torch.tensor(data)
        close(x + I32_MIN, (t + I32_MIN).numpy())
        close(x - 2**31 + 1 - 5, (t - 2**31 + 1 - 5).numpy())
        close(x * 2**30 * 3, (t * 2**30 * 3).numpy())
        close(-(x + I32_MIN), (-(t + I32_MIN)).numpy())
        close(x << 30, (t << 30).numpy())
        b = Tensor(np.array([[[True], [False], [True]]]), dtype=lg.bool)
        v = b.sum(1, keepdim=True)
        w = (v.clip(4611686018427387904, -I64_MAX) - v).relu()
        tv = torch.tensor([[[True], [False], [True]]]).sum(1, keepdim=True)
        close(w, (tv.clip(4611686018427387904, -I64_MAX) - tv).relu().numpy())
        big = np.array([2**62, 2**62, 2**62, 5], np.int64)
        close(Tensor(big, dtype=lg.int64).sum(), torch.tensor(big).sum().numpy())
        close(Tensor(big, dtype=lg.int64).prod(), torch.tensor(big).prod().numpy())
        r = np.arange(-5, 3000, dtype=np.int32)
        close((Tensor(r) * 1_000_003).sum(), (torch.tensor(r) * 1_000_003).sum().numpy())


def test_shift_invariant_softmax_gradient_is_zero_to_rounding_and_floordiv_after_a_wrap():
    # fuzz soak: d softmax(min(|x1|, x2))/d x2 is (sum g s)(1 - sum s), 0 in exact arithmetic and
    # 1.5e-8 in float32 (the fuzzer's tolerance now scales with the incoming gradient); and
    # True // (x + -7) read a wrapped INT_MIN + -7 as negative before the adds wrapped (seed 663361598)
    x1 = Tensor([-1.0, 1.0, 0.0, 0.0, 0.0], requires_grad=True)
    x2 = Tensor(-1.0, requires_grad=True)
    w = Tensor([0.56, -0.91, -0.42, -0.42, -0.52])
    (g1, g2) = lg.grad(x1.abs().minimum(x2).softmax(0), [x1, x2], grad_output=w)
    assert abs(g2.item()) < 8 * np.finfo(np.float32).eps * 0.91
    np.testing.assert_array_equal(g1.numpy(), np.zeros(5, np.float32))
    data = np.array([[0], [-1], [-5], [-2147483648], [2]], np.int32)
    close(Tensor(True) // (Tensor(data, dtype=lg.int32) + -7), (torch.tensor(True) // (torch.tensor(data) + -7)).numpy())


def test_float32_log_softmax_of_a_dominant_row_rounds_like_torch_float32():
    # fuzz soak seed 772434723: log_softmax's largest entry is about -8e-9 in float64 and 0 in
    # float32 (torch's too), so a tiny number divided by it is inf; the fuzzer accepts a
    # non-finite value where torch float32 gives the same one (tests/fuzz/check.py)
    data = [[0.49024415, -0.79714054, 0.06530964, -0.33923206, 20.0]]
    x, t = Tensor(data), torch.tensor(data)
    close(x.log_softmax(-1), torch.log_softmax(t, -1).numpy(), rtol=1e-6, atol=1e-6)
    assert x.log_softmax(-1).numpy()[0, 4] == torch.log_softmax(t, -1).numpy()[0, 4] == 0.0
    out = (2.938735877055719e-39 / x.log_softmax(-1)).numpy()
    assert np.isinf(out[0, 4]) and np.isinf((2.938735877055719e-39 / torch.log_softmax(t, -1)).numpy()[0, 4])


# --- signed zeros through a select against -0.0 (an LLVM 14 fold) --------------------------------------
_ZEROS = np.tile(np.array([0.0, -0.0, 1.0, -1.0, nan, 0.0, -0.0, 2.0], np.float32), 8)


@pytest.mark.parametrize("n", [3, 64])
@pytest.mark.parametrize("name, lgf, tf", [
    ("clip min -0.0", lambda a: (a * 1.0).clip(-0.0, None), lambda t: (t * 1.0).clip(-0.0, None)),
    ("clip max -0.0", lambda a: a.clip(None, -0.0), lambda t: t.clip(None, -0.0)),
    ("where x<0 -0.0", lambda a: (a < 0).where(-0.0, a), lambda t: torch.where(t < 0, -0.0, t)),
    ("where x<-0.0 0.0", lambda a: (a < -0.0).where(0.0, a), lambda t: torch.where(t < -0.0, 0.0, t)),
    ("where x>-0.0 x", lambda a: (a > -0.0).where(a, -0.0), lambda t: torch.where(t > -0.0, t, -0.0)),
])
def test_a_select_against_negative_zero_keeps_the_sign_of_zero_like_torch(name, lgf, tf, n):
    # fuzz seed 772435783: PoCL's LLVM 14 turned `x < -0.0 ? -0.0 : x` (clip's select) into a
    # maxnum that gives -0.0 for +0.0, in scalar code too (its work-item vectorizer); 1 / clip(x)
    # was -inf where torch's is +inf
    x = _ZEROS[:n]
    got, want = lgf(Tensor(x)).numpy(), tf(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=name)
    close(got, want)


def test_clamp_takes_torchs_keywords():
    # a newcomer's x.clamp(min=0.0) raised TypeError: the keywords were min_ and max_
    x = np.array([-2.0, -0.5, 0.5, 2.0, nan], np.float32)
    t = torch.tensor(x)
    close(Tensor(x).clamp(min=0.0), t.clamp(min=0.0).numpy())
    close(Tensor(x).clamp(max=0.25), t.clamp(max=0.25).numpy())
    close(Tensor(x).clip(min=-1.0, max=1.0), t.clip(min=-1.0, max=1.0).numpy())
    close(Tensor(x).clamp_min(0.0), t.clamp_min(0.0).numpy())
    close(Tensor(x).clamp_max(0.0), t.clamp_max(0.0).numpy())
    close(lg.clamp(Tensor(x), min=0.5), torch.clamp(t, min=0.5).numpy())


def test_maximum_of_tied_zeros_is_the_second_operand_like_numpy_and_torchs_vector_path():
    # torch is not consistent here: below 16 elements its scalar loop keeps the first operand,
    # from 16 on its vector loop the second (docs/semantics.md); lazygrad is the second always
    a, b = np.zeros(64, np.float32), np.full(64, -0.0, np.float32)
    np.testing.assert_array_equal(np.signbit(Tensor(a).maximum(Tensor(b)).numpy()),
                                  np.signbit(torch.maximum(torch.tensor(a), torch.tensor(b)).numpy()))
    np.testing.assert_array_equal(np.signbit(Tensor(b).minimum(Tensor(a)).numpy()),
                                  np.signbit(torch.minimum(torch.tensor(b), torch.tensor(a)).numpy()))
    np.testing.assert_array_equal(np.signbit(Tensor(a[:3]).maximum(Tensor(b[:3])).numpy()), [True] * 3)


# --- logsumexp's gradient at +inf ---------------------------------------------------------------------
@pytest.mark.parametrize("row", [[-inf, inf, 1.7e38, -inf, inf], [inf, 1.0, -inf], [1.0, 2.0, 3.0],
                                 [-inf, -inf], [inf, inf], [nan, 1.0], [3e38, -1.0]])
def test_logsumexp_gradient_with_infinities_is_torchs(row):
    # fuzz seed 772437428: with a +inf entry the shift was 0, so a finite entry's exp overflowed
    # and its gradient was inf / inf = NaN; torch's exp(x - logsumexp) is 0 there
    x = np.array(row, np.float32)
    # (against float64 torch; at [3e38, 3e38] torch's exp(x - logsumexp) is 1 per entry, as
    # 3e38 + log 2 rounds to 3e38 even in float64; lazygrad's exp(x - max) / sum gives 0.5)
    lx, tx = Tensor(x, requires_grad=True), _t(x, torch.float64, grad=True)
    y, ty = lx.logsumexp(0), torch.logsumexp(tx, 0)
    ty.backward()
    close(y, torch.logsumexp(_t(x), 0).numpy())
    close(lg.grad(y, [lx])[0], tx.grad.numpy())


# --- prod's gradient with NaN, infinities and zeros ----------------------------------------------------
_PROD_ROWS = [[1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 3.0, 4.0], [0.0, 0.0, 3.0, 4.0], [nan, 0.0, 0.0, 0.0],
              [nan, 1.0, 2.0, 3.0], [inf, 2.0, 0.0, 1.0], [-inf, 2.0, -inf, 1.0], [inf, 1.0, 2.0, -3.0],
              [0.0, 0.0, 0.0, 0.0], [-2.0, 0.5, nan, inf]]


@pytest.mark.parametrize("rows", [(0, 1), (3, 4), (2, 5), (6, 7), (8, 9), (4, 7), (0, 4), (1, 6)])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_gradient_is_torchs_with_nan_inf_and_zeros(rows, dim):
    # fuzz seed 772438524: a row with a NaN and zeros had gradient 0 where torch's exclusive
    # products give NaN; torch's rule depends on whether the input has a zero anywhere
    x = np.array([_PROD_ROWS[r] for r in rows], np.float32)
    lx, tx = Tensor(x, requires_grad=True), _t(x, torch.float64, grad=True)
    y, ty = (lx.prod(), tx.prod()) if dim is None else (lx.prod(dim), tx.prod(dim))
    w = np.linspace(0.5, 1.5, ty.numel()).reshape(ty.shape)
    ty.backward(torch.tensor(w))
    got = lg.grad(y, [lx], grad_output=Tensor(w.astype(np.float32)))[0].numpy()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-5, equal_nan=True)


# --- a sum read by a max: computed once ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(9, 7), (5, 1000), (2, 3, 7), (16, 33)])
@pytest.mark.parametrize("name, lgf, tf", [
    ("sum.amax", lambda x: x.sum(-1).amax(), lambda t: t.sum(-1).amax()),
    ("mean.amax", lambda x: x.mean(-1).amax(), lambda t: t.mean(-1).amax()),
    ("logsumexp.amin", lambda x: x.logsumexp(-1).amin(), lambda t: torch.logsumexp(t, -1).amin()),
    ("sum == its max", lambda x: (x.sum(-1) == x.sum(-1).amax()).float().sum() + x.sum(-1).amax(),
     lambda t: (t.sum(-1) == t.sum(-1).amax()).float().sum() + t.sum(-1).amax()),
])
def test_a_max_of_sums_has_torchs_gradient(name, lgf, tf, shape, rng):
    # fuzz soak seed 895538741: the row-total kernel of the max added each row in one work-item,
    # the gradient's row-wise kernel recomputed the sums with 4 lanes and a tree, so no sum
    # equalled the max and the gradient was 0 (scheduler: a sum a max reads is computed once)
    d = rng.standard_normal(shape).astype(np.float32)
    x, t = Tensor(d, requires_grad=True), _t(d, grad=True)
    y, ty = lgf(x), tf(t)
    ty.backward()
    close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    close(lg.grad(y, [x])[0], t.grad.numpy(), rtol=1e-4, atol=1e-5)
    reasons = [str(k.reason) for k in lg.schedule(lg.grad(y, [x])[0])]
    assert any("max/min reads" in r for r in reasons) or name == "sum == its max", reasons


def test_index_check_realize_that_computes_an_output_keeps_the_plan_whole(monkeypatch):
    """LAZYGRAD_CHECK_INDEX=1 realizes a gather's lazy index first. When that index is itself an
    output (and is read through another gather), that realize computed it, and the plan built
    from the stale walk read nodes no kernel computed: an internal AssertionError (found by the
    blocked cummax, whose block index goes through a gather)."""
    monkeypatch.setenv("LAZYGRAD_CHECK_INDEX", "1")
    idx = Tensor(np.array([2, 0, 1], np.int32)) + 0
    perm = Tensor(np.array([1, 2, 0], np.int32)).gather(0, idx)
    vals = Tensor(np.array([10.0, 20.0, 30.0], np.float32)).gather(0, perm)
    lg.realize(perm, vals)
    np.testing.assert_array_equal(perm.numpy(), [0, 1, 2])
    np.testing.assert_array_equal(vals.numpy(), [10.0, 20.0, 30.0])
