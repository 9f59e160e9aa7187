"""Regressions found by a differential run against torch (batch 13): each test compares a
lazygrad result with torch (float64 torch where precision matters)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.nn import functional as LF

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# --- 1. matmul operands seen through a reshaped padded view ---------------------------------------
@pytest.mark.parametrize("pack", ["auto", "0", "1"])
def test_matmul_of_reshaped_padded_column_matches_torch(monkeypatch, pack):
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", pack)
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    b = Tensor(x).pad(((1, 1), (1, 1))).reshape(25, 1)
    out = Tensor.ones(1, 25) @ b
    tb = F.pad(torch.tensor(x), (1, 1, 1, 1)).reshape(25, 1)
    close(out, (torch.ones(1, 25) @ tb).numpy())
    assert out.item() == 36.0


def test_matmul_of_reshaped_padded_row_and_column_operands_match_torch():
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    tx = F.pad(torch.tensor(x), (1, 1, 1, 1))
    a = Tensor(x).pad(((1, 1), (1, 1))).reshape(1, 25) @ Tensor.ones(25, 4)
    close(a, (tx.reshape(1, 25) @ torch.ones(25, 4)).numpy())
    c = Tensor(x).pad(((1, 1), (1, 1))).reshape(25, 1) @ Tensor(np.arange(3, dtype=np.float32).reshape(1, 3))
    close(c, (tx.reshape(25, 1) @ torch.arange(3.0).reshape(1, 3)).numpy())


@pytest.mark.parametrize("cin,cout,padding", [(1, 3, 1), (1, 1, 1), (1, 2, 2)])
def test_conv2d_1x1_padded_single_channel_weight_grad_matches_torch(rng, cin, cout, padding):
    xn = rng.standard_normal((2, cin, 5, 5)).astype(np.float32)
    wn = rng.standard_normal((cout, cin, 1, 1)).astype(np.float32)
    x, w = Tensor(xn, requires_grad=True), Tensor(wn, requires_grad=True)
    y = x.conv2d(w, padding=padding)
    (y * y).sum().backward()
    tx, tw = _t64(xn, True), _t64(wn, True)
    ty = F.conv2d(tx, tw, padding=padding)
    (ty * ty).sum().backward()
    close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    close(w.grad, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    close(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)


# --- 2. integer min and split max/min use the dtype's own identity -------------------------------
I32_MIN, I32_MAX = -2**31, 2**31 - 1


@pytest.mark.parametrize("values", [[0, I32_MIN], [I32_MIN, I32_MAX, 5], [I32_MAX, 3, I32_MIN, -1]])
def test_int32_min_argmin_minimum_at_int_min_match_torch(values):
    x, t = Tensor(values, dtype=lg.int32), torch.tensor(values, dtype=torch.int32)
    assert x.min().item() == t.min().item()
    assert x.argmin().item() == t.argmin().item()
    assert x.max().item() == t.max().item()
    other = list(reversed(values))
    close(x.minimum(Tensor(other, dtype=lg.int32)), torch.minimum(t, torch.tensor(other, dtype=torch.int32)).numpy())
    close(x.maximum(Tensor(other, dtype=lg.int32)), torch.maximum(t, torch.tensor(other, dtype=torch.int32)).numpy())


def test_int64_min_at_int64_min_matches_torch():
    values = [0, -2**63, 2**63 - 1]
    x, t = Tensor(np.array(values, np.int64), dtype=lg.int64), torch.tensor(values, dtype=torch.int64)
    assert x.min().item() == t.min().item() and x.max().item() == t.max().item()
    assert x.argmin().item() == t.argmin().item()


@pytest.mark.parametrize("dtype,tdtype,fill", [(lg.int64, torch.int64, -3_000_000_000),
                                               (lg.int32, torch.int32, I32_MIN),
                                               (lg.int64, torch.int64, -2**63)])
def test_split_reduction_max_min_of_int_extremes_match_torch(dtype, tdtype, fill):
    # 40,001 elements: long enough to be split in two passes, padded up to a multiple of the parts
    data = np.full(40_001, fill, dtype=dtype.np)
    x, t = Tensor(data, dtype=dtype), torch.tensor(data)
    assert t.dtype == tdtype
    assert x.max().item() == t.max().item() == fill
    assert x.min().item() == t.min().item() == fill
    data[12345] = fill + 7
    x, t = Tensor(data, dtype=dtype), torch.tensor(data)
    assert x.max().item() == t.max().item() and x.min().item() == t.min().item()
    assert x.argmax().item() == t.argmax().item() == 12345


def test_split_reduction_float_max_of_all_neg_inf_matches_torch():
    data = np.full(40_001, -np.inf, dtype=np.float32)
    assert Tensor(data).max().item() == torch.tensor(data).max().item() == -np.inf
    assert Tensor(-data).min().item() == torch.tensor(-data).min().item() == np.inf


def test_reduce_identity_is_one_table_per_op_and_dtype():
    from lazygrad.ir.ops import REDUCE, reduce_identity
    for d in lg.dtypes.DTYPES.values():
        for op in REDUCE:
            v = reduce_identity(op, d)
            assert type(v) is type(d.np(0).item()), (op, d, v)
        assert reduce_identity(lg.ir.ops.Op.RMAX, d) == (-np.inf if d.is_float else np.iinfo(d.np).min if d.is_int else 0)


def test_int_max_pool_pads_with_int_min_like_torch():
    data = np.full((1, 1, 3, 3), I32_MIN, np.int32)
    x = Tensor(data, dtype=lg.int32)
    # torch has no integer max_pool2d: its float64 result on values exactly representable
    ref = F.max_pool2d(torch.tensor(data, dtype=torch.float64), 2, stride=1, padding=1).numpy().astype(np.int32)
    close(x.max_pool2d(2, stride=1, padding=1), ref)


# --- 5. ^ & | ~ on integer tensors are bitwise, on bools logical -----------------------------------
INTS_A = [5, 3, -7, 0, I32_MIN, I32_MAX]
INTS_B = [1, 6, 2, -1, -1, I32_MIN]


@pytest.mark.parametrize("name", ["xor", "and", "or"])
@pytest.mark.parametrize("dtype,tdtype", [(lg.int32, torch.int32), (lg.int64, torch.int64)])
def test_integer_bitwise_ops_match_torch(name, dtype, tdtype):
    fn = {"xor": lambda a, b: a ^ b, "and": lambda a, b: a & b, "or": lambda a, b: a | b}[name]
    a, b = Tensor(INTS_A, dtype=dtype), Tensor(INTS_B, dtype=dtype)
    ta, tb = torch.tensor(INTS_A, dtype=tdtype), torch.tensor(INTS_B, dtype=tdtype)
    out, ref = fn(a, b), fn(ta, tb)
    assert out.dtype is dtype
    close(out, ref.numpy())
    close(fn(a, 12), fn(ta, 12).numpy())
    close(fn(12, a), fn(12, ta).numpy())


def test_integer_bitwise_not_and_vector_width_rows_match_torch(rng):
    # long enough for vector lanes and a tail
    data = rng.integers(-2**31, 2**31, size=1037, dtype=np.int64).astype(np.int32)
    other = rng.integers(-2**31, 2**31, size=1037, dtype=np.int64).astype(np.int32)
    x, t = Tensor(data), torch.tensor(data)
    close(~x, (~t).numpy())
    close(x ^ Tensor(other), (t ^ torch.tensor(other)).numpy())
    assert x.min().item() == t.min().item() and x.argmin().item() == t.argmin().item()


def test_bool_xor_is_logical_and_returns_bool_like_torch():
    a, b = [True, False, True, False], [True, True, False, False]
    out = Tensor(a) ^ Tensor(b)
    ref = torch.tensor(a) ^ torch.tensor(b)
    assert out.dtype is lg.bool_ and ref.dtype == torch.bool
    close(out, ref.numpy())
    close(Tensor(a) ^ True, (torch.tensor(a) ^ True).numpy())
    close(Tensor([1, 0, 2, 0]).logical_xor(Tensor([3, 3, 0, 0])),
          torch.logical_xor(torch.tensor([1, 0, 2, 0]), torch.tensor([3, 3, 0, 0])).numpy())


def test_float_bitwise_ops_raise_naming_the_op():
    with pytest.raises(TypeError, match="xor: bitwise ops need bool or integer tensors, got float32"):
        Tensor([1.0]) ^ Tensor([2.0])
    with pytest.raises(TypeError, match="invert"):
        ~Tensor([1.0])


# --- 3. prod: gradient at zeros, exact integer products ---------------------------------------
@pytest.mark.parametrize("data", [
    [2.0, 0.0, 3.0],                                   # one zero: it gets the product of the others
    [[1.5, -2.0, 4.0], [0.0, 0.0, 1.0]],               # a row with two zeros: gradient 0
    [[0.0, 5.0, -2.0, 0.5], [1.0, -1.0, 2.0, 3.0]],
    [np.inf, 0.0],
    [np.nan, 0.0, 2.0],
    [np.nan, 1.0, 2.0],
])
def test_prod_value_and_grad_with_zeros_match_torch(data):
    x = Tensor(data, requires_grad=True)
    y = x.prod(-1)
    w = np.arange(1, y.numel() + 1, dtype=np.float32).reshape(y.shape)  # a different weight per row
    (y * Tensor(w)).sum().backward()
    t = _t64(data, True)
    ty = t.prod(-1)
    (ty * torch.tensor(w, dtype=torch.float64)).sum().backward()
    close(y, ty.detach().numpy())
    close(x.grad, t.grad.numpy())


def test_prod_grad_whole_tensor_and_second_order_match_torch():
    data = np.array([[1.5, 0.0], [-2.0, 3.0]], np.float32)
    x = Tensor(data, requires_grad=True)
    (gx,) = lg.grad(x.prod(), [x])
    (ggx,) = lg.grad(gx.sum(), [x])
    t = _t64(data, True)
    (tg,) = torch.autograd.grad(t.prod(), [t], create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), [t])
    close(gx, tg.detach().numpy())
    close(ggx, tgg.numpy())


@pytest.mark.parametrize("data", [[7, 11, 13, 3], [3] * 15, [-5, 4, 3, 2, -1, 7, 9, 11]])
def test_integer_prod_is_exact_like_torch(data):
    assert Tensor(data, dtype=lg.int64).prod().item() == torch.tensor(data).prod().item()
    assert Tensor(data).prod().item() == torch.tensor(data).prod().item()


def test_long_prod_and_bool_prod_match_torch():
    data = np.full(40_001, 1.0001, np.float32)  # a split (two-pass) product
    assert abs(Tensor(data).prod().item() - torch.tensor(data, dtype=torch.float64).prod().item()) < 1e-3 * 54.6
    assert Tensor([True, True, False]).prod().item() == torch.tensor([True, True, False]).prod().item()
    close(Tensor(np.ones((0, 3), np.float32)).prod(0), torch.ones(0, 3).prod(0).numpy())


# --- 4. integer-tensor indexing selects, it does not multiply by a one-hot ----------------------
def test_tensor_index_keeps_inf_and_nan_like_torch():
    data = np.array([1.0, np.inf, -np.inf, np.nan], np.float32)
    for idx in ([1, 2], [1, 2, 3, 0], [0, 0, 3]):
        close(Tensor(data)[Tensor(idx)], torch.tensor(data)[torch.tensor(idx)].numpy())
        close(Tensor(data)[idx], torch.tensor(data)[idx].numpy())


def test_tensor_index_on_a_middle_dim_with_infs_and_grad_matches_torch():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    data[0, 1, 2], data[1, 0, 3] = np.inf, -np.inf
    idx = [[2, 0], [-1, 2]]
    x = Tensor(data, requires_grad=True)
    y = x[:, Tensor(idx)]
    t = _t64(data, True)
    ty = t[:, torch.tensor(idx)]
    close(y, ty.detach().numpy())
    w = np.arange(y.numel(), dtype=np.float32).reshape(y.shape)
    (y.isinf().where(0.0, y) * Tensor(w)).sum().backward()
    (torch.where(ty.isinf(), 0.0, ty) * torch.tensor(w, dtype=torch.float64)).sum().backward()
    close(x.grad, t.grad.numpy())


def test_tensor_index_of_bool_and_int_tensors_keeps_dtype_like_torch():
    b = [True, False, True]
    out = Tensor(b)[Tensor([1, 0, 2])]
    assert out.dtype is lg.bool_
    close(out, torch.tensor(b)[torch.tensor([1, 0, 2])].numpy())
    ints = [I32_MIN, 5, I32_MAX]
    close(Tensor(ints, dtype=lg.int32)[[2, 0]], torch.tensor(ints, dtype=torch.int32)[[2, 0]].numpy())


# --- 8. cross_entropy / nll_loss: out-of-range class indices raise like torch --------------------
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [3, 7, -1, -5])
def test_out_of_range_concrete_target_raises_like_torch(fn, bad):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
        getattr(F, fn)(torch.tensor(x), torch.tensor([0, bad]))
    for target in ([0, bad], np.array([0, bad]), Tensor([0, bad])):
        with pytest.raises(IndexError, match=rf"{fn}: target {bad} is out of bounds for 3 classes"):
            getattr(LF, fn)(Tensor(x), target)


def test_spatial_out_of_range_target_raises_and_ignore_index_does_not():
    x = np.zeros((2, 3, 2, 2), np.float32)
    y = np.zeros((2, 2, 2), np.int64)
    y[1, 1, 0] = 3
    with pytest.raises(IndexError, match="Target 3"):
        F.cross_entropy(torch.tensor(x), torch.tensor(y))
    with pytest.raises(IndexError, match="cross_entropy: target 3 is out of bounds for 3 classes"):
        Tensor(x).cross_entropy(Tensor(y))
    y[1, 1, 0] = -100  # the default ignore_index is not out of bounds
    close(Tensor(x).cross_entropy(Tensor(y)), F.cross_entropy(torch.tensor(x), torch.tensor(y)).numpy())
    y[1, 1, 0] = 9
    close(Tensor(x).cross_entropy(Tensor(y), ignore_index=9),
          F.cross_entropy(torch.tensor(x), torch.tensor(y), ignore_index=9).numpy())


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"weight": [1.0, 2.0, 0.5]},
                                {"reduction": "none"}, {"reduction": "sum", "label_smoothing": 0.2}])
def test_cross_entropy_with_neg_inf_logits_off_target_matches_torch(kw):
    # a -inf logit of a class that is not the target, and of an ignored row: torch's loss is finite
    z = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf], [-np.inf, 0.0, 0.0]], np.float32)
    y = [0, -100, 2]
    lkw = {k: Tensor(np.array(v, np.float32)) if k == "weight" else v for k, v in kw.items()}
    tkw = {k: torch.tensor(v, dtype=torch.float64) if k == "weight" else v for k, v in kw.items()}
    x = Tensor(z, requires_grad=True)
    t = _t64(z, True)
    loss, tloss = x.cross_entropy(Tensor(y), **lkw), F.cross_entropy(t, torch.tensor(y), **tkw)
    close(loss, tloss.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss.sum().backward()
    tloss.sum().backward()
    close(x.grad, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    logp = torch.log_softmax(torch.tensor(z), 1).numpy()
    close(LF.nll_loss(Tensor(logp), Tensor(y)), F.nll_loss(torch.tensor(logp), torch.tensor(y)).numpy())


# --- 6. arange: values past int32 become int64 (torch: int64), overflow and huge sizes raise -------
@pytest.mark.parametrize("args", [(2**31, 2**31 + 3), (2**31 - 2, 2**31 + 1), (-2**31 - 1, -2**31 + 2),
                                  (0, 2**40, 2**38), (2**40, 0, -2**38)])
def test_arange_past_int32_is_int64_like_torch(args):
    x, t = Tensor.arange(*args), torch.arange(*args)
    assert x.dtype is lg.int64 and t.dtype == torch.int64
    close(x, t.numpy())


@pytest.mark.parametrize("args,kw", [((5,), {}), ((-3, 3), {}), ((10, 0, -3), {}),
                                     ((0, 5.5), {"dtype": lg.int32}), ((0, 1, 0.25), {})])
def test_arange_in_range_values_match_torch(args, kw):
    tkw = {"dtype": torch.int32} if kw else {}
    close(Tensor.arange(*args, **kw), torch.arange(*args, **tkw).numpy().astype(Tensor.arange(*args, **kw).dtype.np))


def test_float64_arange_is_exact_past_float32_precision():
    if not lg.runtime.device.get_device().supports(lg.float64):
        pytest.skip("no float64 on this device")
    x = Tensor.arange(3, 2**25 + 3, dtype=lg.float64)
    t = torch.arange(3, 2**25 + 3, dtype=torch.float64)
    np.testing.assert_array_equal(x.numpy()[-5:], t.numpy()[-5:])


@pytest.mark.parametrize("args", [(2**33,), (2**31, 2**31 + 3), (-2**31 - 1, 0)])
def test_arange_values_outside_the_requested_dtype_raise(args):
    with pytest.raises(ValueError, match=r"arange: values .* do not fit int32 \(range -2147483648\.\.2147483647\)"):
        Tensor.arange(*args, dtype=lg.int32)


def test_arange_too_big_for_one_buffer_raises_before_allocating():
    if lg.runtime.device.get_device().caps.max_alloc >= 2**36:
        pytest.skip("the device can allocate 64 GiB in one buffer")
    with pytest.raises(MemoryError, match=r"arange: 8589934592 elements of int64 \(68719476736 bytes\)"):
        Tensor.arange(2**33).realize()  # the positions are filled at realize, still before a host array


# --- 7. var/std with correction >= N, pow gradients at 0 and ±inf: torch's values and gradients ---
VAR_CASES = [([1.0, 2.0, 4.0], None), ([1.0, 2.0, 4.0], 0), ([[1.0, 2.0, 4.0], [0.0, 1.0, -3.0]], None),
             ([[1.0, 2.0, 4.0], [0.0, 1.0, -3.0]], 0), ([[1.0, 2.0, 4.0], [0.0, 1.0, -3.0]], 1),
             ([2.0, 2.0, 2.0], None), ([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]], 1), ([5.0], None)]


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("data,axis", VAR_CASES)
@pytest.mark.parametrize("correction", [0, 1, 2, 3, 4, 6])
def test_var_std_value_and_grad_for_any_correction_match_torch(name, data, axis, correction):
    kw = {} if axis is None else {"dim": axis}
    up = -2.0  # a negative upstream gradient: torch's infinite gradients take its sign
    t = _t64(data, True)
    ty = getattr(torch, name)(t, correction=correction, **kw)
    (ty * up).sum().backward()
    x = Tensor(data, requires_grad=True)
    y = getattr(x, name)(correction=correction, **kw)
    (y * up).sum().backward()
    close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    close(x.grad, t.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
def test_var_keepdim_and_unbiased_past_n_match_torch():
    data = np.array([[1.0, 3.0], [2.0, 2.0]], np.float32)
    close(Tensor(data).var(1, keepdim=True, correction=5), torch.var(torch.tensor(data), 1, keepdim=True, correction=5).numpy())
    close(Tensor(data[:, :1]).var(1, unbiased=True), torch.var(torch.tensor(data[:, :1]), 1, unbiased=True).numpy())


POW_X = [0.0, -0.0, np.inf, -np.inf, 2.0, -2.0]
POW_Y = [0.0, 1.0, 2.0, 0.5, -1.0, 3.0]


def test_pow_value_and_grads_wrt_base_and_exponent_match_torch():
    xs = np.repeat(POW_X, len(POW_Y))
    ys = np.tile(POW_Y, len(POW_X))
    x, y = Tensor(xs.astype(np.float32), requires_grad=True), Tensor(ys.astype(np.float32), requires_grad=True)
    out = x ** y
    w = np.linspace(-1.5, 2.0, xs.size).astype(np.float32)  # per-element upstream gradients, some negative
    (out * Tensor(w)).sum().backward()
    tx, ty = _t64(xs, True), _t64(ys, True)
    tout = tx ** ty
    (tout * torch.tensor(w, dtype=torch.float64)).sum().backward()
    close(out, tout.detach().numpy())
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())


@pytest.mark.parametrize("exponent", POW_Y + [-2.0, 4.0])
def test_pow_by_python_scalar_grad_matches_torch(exponent):
    x = Tensor(np.array(POW_X, np.float32), requires_grad=True)
    (x ** exponent).sum().backward()
    t = _t64(POW_X, True)
    (t ** exponent).sum().backward()
    close(x ** exponent, (t ** exponent).detach().numpy())
    close(x.grad, t.grad.numpy())


@pytest.mark.parametrize("base", POW_X)
def test_python_scalar_to_tensor_power_grad_matches_torch(base):
    y = Tensor(np.array(POW_Y, np.float32), requires_grad=True)
    (base ** y).sum().backward()
    t = _t64(POW_Y, True)
    (base ** t).sum().backward()
    close(base ** y, (base ** t).detach().numpy())
    close(y.grad, t.grad.numpy())


def test_pow_grad_with_nan_exponent_at_zero_base_matches_torch():
    x, y = Tensor([0.0, 0.0, 2.0], requires_grad=True), Tensor([np.nan, 2.0, np.nan], requires_grad=True)
    (x ** y).sum().backward()
    tx, ty = _t64([0.0, 0.0, 2.0], True), _t64([np.nan, 2.0, np.nan], True)
    (tx ** ty).sum().backward()
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())
