"""docs/semantics.md, statement by statement: where numpy and torch disagree (or a lazy kernel
cannot do what torch does), what lazygrad does. Each test is named after its statement; the
statements that came with a bug fix are tested in tests/test_regressions_14.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

from conftest import close

nan, inf = float("nan"), float("inf")
I32_MIN, I32_MAX = -2**31, 2**31 - 1
SPECIAL = [nan, inf, -inf, 0.0, -0.0, 1.5, -2.0, 1e-40]


def _t(a, dtype=torch.float32):
    return torch.tensor(np.asarray(a), dtype=dtype)


# --- NaN propagation --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "neg",
                                  "reciprocal", "square", "floor", "ceil", "round", "softplus", "log1p"])
def test_nan_in_is_nan_out_for_elementwise_ops_like_torch(name):
    f = (lambda x: -x) if name == "neg" else (lambda x: getattr(x, name)())
    tf = {"neg": torch.neg, "softplus": torch.nn.functional.softplus}.get(name, getattr(torch, name, None))
    got = f(Tensor(SPECIAL)).numpy()
    want = tf(_t(SPECIAL)).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0])


def test_sign_of_nan_is_zero_like_torch_not_numpy():
    close(Tensor(SPECIAL).sign(), torch.sign(_t(SPECIAL)).numpy())
    assert Tensor([nan]).sign().item() == 0.0 and np.isnan(np.sign(np.float32(nan)))


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_and_minimum_propagate_nan_like_torch(name):
    a, b = [nan, 1.0, nan, -inf], [2.0, nan, nan, nan]
    close(getattr(Tensor(a), name)(Tensor(b)), getattr(torch, name)(_t(a), _t(b)).numpy())


def test_comparisons_with_nan_are_false_except_not_equal():
    x = Tensor([nan])
    assert [bool((getattr(x, op)(1.0)).item()) for op in ("lt", "le", "gt", "ge", "eq", "ne")] == \
        [False, False, False, False, False, True]


def test_where_does_not_leak_nan_from_the_branch_it_does_not_take():
    c = Tensor([True, False])
    close(c.where(Tensor([1.0, nan]), Tensor([nan, 2.0])), np.array([1.0, 2.0], np.float32))


def test_cast_of_nan_to_int_is_zero_and_to_bool_is_true():
    close(Tensor([nan, 2.7, -2.7]).cast(lg.int32), np.array([0, 2, -2], np.int32))
    close(Tensor([nan, 0.0, -0.0]).cast(lg.bool_), np.array([True, False, False]))


def test_float_to_int_casts_round_toward_zero_and_saturate():
    close(Tensor([1e10, -1e10, inf, -inf, 2.5e9]).cast(lg.int32), np.array([I32_MAX, I32_MIN, I32_MAX, I32_MIN, I32_MAX]))
    close(Tensor([1e30, -1e30], dtype=lg.float64).cast(lg.int64), np.array([2**63 - 1, -2**63]))


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "logsumexp"])
def test_reductions_propagate_nan_like_torch(name):
    data = [[1.0, nan, 3.0], [1.0, 2.0, -inf], [nan, inf, -inf]]
    close(getattr(Tensor(data), name)(1), getattr(torch, name)(_t(data), 1).numpy())


def test_argmax_and_argmin_return_the_first_nan_like_torch():
    data = [[1.0, nan, 3.0, nan], [5.0, 5.0, -1.0, -1.0]]
    for name in ("argmax", "argmin"):
        close(getattr(Tensor(data), name)(1), getattr(torch, name)(_t(data), 1).numpy().astype(np.int32))


def test_any_and_all_count_nan_as_true_like_torch():
    data = [[nan, 0.0], [0.0, 0.0]]
    close(Tensor(data).any(1), torch.any(_t(data), 1).numpy())
    close(Tensor(data).all(0), torch.all(_t(data), 0).numpy())


def test_softmax_of_a_row_with_nan_is_nan_like_torch():
    data = [[1.0, nan, 2.0], [1.0, 2.0, 3.0]]
    close(Tensor(data).softmax(1), torch.softmax(_t(data), 1).numpy())


def test_matmul_propagates_nan_and_inf_like_torch():
    a, b = [[nan, 1.0], [0.0, 1.0]], [[0.0, 1.0], [inf, 2.0]]
    close(Tensor(a) @ Tensor(b), (_t(a) @ _t(b)).numpy())


def test_max_over_size_one_dims_is_the_identity_gradient_included():
    v = np.array([[np.nan], [-2.0]], np.float32)
    for name in ("amax", "amin"):
        x = Tensor(v, requires_grad=True)
        getattr(x, name)(-1).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [[1.0], [1.0]])  # torch: [[nan], [1.0]]
        # over a longer row the mask is torch's: NaN at every element of a row holding NaN
        w = np.array([[np.nan, 1.0], [3.0, -2.0]], np.float32)
        x, t = Tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
        getattr(x, name)(-1).sum().backward()
        getattr(torch, name)(t, -1).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


# --- integers: overflow, promotion, defaults -----------------------------------------------------------
def test_int32_arithmetic_wraps_like_torch():
    a = [I32_MAX, I32_MIN, 3]
    x, t = Tensor(a, dtype=lg.int32), _t(a, torch.int32)
    for f in (lambda v: v + 1, lambda v: v * 2, lambda v: -v, lambda v: v.abs(), lambda v: v - I32_MAX):
        close(f(x), f(t).numpy())


def test_relu_of_negative_zero_is_positive_zero():
    x = lg.Tensor(np.array([-0.0, 0.0, -1.0, 2.0, np.nan], np.float32), requires_grad=True)
    y = x.relu()
    out = y.numpy()
    assert not np.signbit(out[:3]).any()  # torch: signbit(relu(-0.0)) is True
    np.testing.assert_array_equal(out[3:4], [2.0])
    assert np.isnan(out[4])
    y.sum().backward()
    t = torch.tensor([-0.0, 0.0, -1.0, 2.0, float("nan")], requires_grad=True)
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_prod_through_a_subnormal_factor_keeps_few_digits():
    normal = np.array([1.704345, -1.4399598, -2.2199156, 1.4382557, 1.7265016, -4.692407], np.float32)
    x = lg.Tensor(normal, requires_grad=True)
    x.prod().backward()
    exact = np.prod(normal.astype(np.float64)) / normal.astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), exact, rtol=1e-5)
    tiny = np.append(normal, np.float32(-4.203895e-45))
    x = lg.Tensor(tiny, requires_grad=True)
    x.prod().backward()
    others = float(np.prod(normal.astype(np.float64)))
    got = float(x.grad.numpy()[-1])
    # a subnormal has 3 significant bits here: within 10%, not within float32 rounding
    assert abs(got - others) < 0.1 * abs(others)


def test_float_remainder_zero_keeps_the_dividends_sign_like_torch():
    a = np.array([0.0, -0.0, 40.0, -40.0, 0.0, -0.0], np.float32)
    b = np.array([-20.0, -20.0, -20.0, 20.0, 20.0, 20.0], np.float32)
    got = (lg.Tensor(a) % lg.Tensor(b)).numpy()
    want = torch.remainder(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(np.signbit((lg.Tensor(a) % -20.0).numpy()),
                                  np.signbit(torch.remainder(torch.tensor(a), -20.0).numpy()))


def test_infinite_gradient_through_silu_is_non_finite():
    x = lg.Tensor(np.array([5.0, 0.0], np.float32), requires_grad=True)
    (g,) = lg.grad((x.silu().reciprocal() * lg.Tensor(np.array([0.9, -0.2], np.float32))).sum(), [x])
    t = torch.tensor([5.0, 0.0], requires_grad=True)
    (torch.nn.functional.silu(t).reciprocal() * torch.tensor([0.9, -0.2])).sum().backward()
    got, want = g.numpy(), t.grad.numpy()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    assert np.isinf(want[1]) and not np.isfinite(got[1])


def test_tensor_promotion_follows_torch():
    pairs = [(lg.bool_, lg.int32), (lg.int32, lg.int64), (lg.int64, lg.float32), (lg.float32, lg.float64),
             (lg.int32, lg.float32), (lg.bool_, lg.float64)]
    for a, b in pairs:
        got = (Tensor([1], dtype=a) + Tensor([1], dtype=b)).dtype
        want = (torch.tensor([1], dtype=getattr(torch, a.name)) + torch.tensor([1], dtype=getattr(torch, b.name))).dtype
        assert got.name == str(want).split(".")[1]


def test_a_python_scalar_only_changes_the_kind_like_torch():
    assert (Tensor([1], dtype=lg.int32) + 2.5).dtype is lg.float32
    assert (Tensor([1.0], dtype=lg.float64) + 2).dtype is lg.float64
    assert (Tensor([1], dtype=lg.int64) + 2).dtype is lg.int64
    assert (Tensor([True]) + 2).dtype is lg.int64  # torch's int scalar is int64
    assert (Tensor([250], dtype=lg.uint8) + 300).dtype is lg.uint8


def test_a_zero_dim_tensor_weighs_less_than_one_with_dims_like_torch():
    # torch.result_type: within a kind, a tensor with dims beats a 0-d tensor beats a scalar;
    # a 0-d tensor of a higher kind decides, with its own dtype
    f64, i64 = Tensor(np.float64(2.0), dtype=lg.float64), Tensor(5, dtype=lg.int64)
    assert (Tensor([1.0]) + f64).dtype is lg.float32
    assert (Tensor([1], dtype=lg.int32) + i64).dtype is lg.int32
    assert (Tensor([1], dtype=lg.uint8) + i64).dtype is lg.uint8
    assert (Tensor([1], dtype=lg.int32) + f64).dtype is lg.float64
    assert (Tensor([True]) + i64).dtype is lg.int64
    assert (Tensor(1.0) + f64).dtype is lg.float64  # two 0-d tensors: the lattice
    close(Tensor([250], dtype=lg.uint8) + Tensor(10, dtype=lg.int64),
          (torch.tensor([250], dtype=torch.uint8) + torch.tensor(10)).numpy())


def test_bool_arithmetic_is_logic_and_subtraction_raises():
    assert (Tensor([True]) + Tensor([True])).dtype is lg.bool_
    with pytest.raises(TypeError):
        Tensor([True]) - Tensor([True])


def test_integer_results_of_lazygrad_use_its_default_int():
    assert Tensor([1, 2]).dtype is lg.int32 and torch.tensor([1, 2]).dtype == torch.int64
    assert Tensor([[1.0, 2.0]]).argmax(1).dtype is lg.int64  # indices are torch's int64
    assert Tensor(np.arange(3, dtype=np.int64)).dtype is lg.int32
    assert Tensor(np.arange(3, dtype=np.int64), dtype=lg.int64).dtype is lg.int64
    with pytest.raises(OverflowError):
        Tensor(np.array([2**40]))


def test_sums_of_bools_and_int32_are_int64_and_mean_of_ints_is_float32():
    assert Tensor([True]).sum().dtype is lg.int64 and Tensor([1], dtype=lg.int32).cumsum(0).dtype is lg.int64
    assert Tensor([1, 2]).mean().dtype is lg.float32
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).mean()  # torch refuses; lazygrad averages in float32


def test_true_division_of_ints_is_float32_like_torch():
    assert (Tensor([3]) / Tensor([2])).dtype is lg.float32
    close(Tensor([3, -3]) / 2, (torch.tensor([3, -3]) / 2).numpy())


# --- division and modulo by zero ------------------------------------------------------------------------
def test_float_division_by_zero_is_ieee():
    close(Tensor([1.0, -1.0, 0.0, nan]) / Tensor([0.0, 0.0, 0.0, 0.0]), np.array([inf, -inf, nan, nan], np.float32))
    close(Tensor([1.0, 1.0]) / Tensor([-0.0, 0.0]), np.array([-inf, inf], np.float32))


@pytest.mark.parametrize("dtype", [lg.int32, lg.int64])
def test_integer_division_and_modulo_by_a_zero_element_give_zero(dtype):
    a, b = Tensor([7, -7, 0], dtype=dtype), Tensor([0, 0, 0], dtype=dtype)
    close(a // b, np.zeros(3, dtype.np))
    close(a % b, np.zeros(3, dtype.np))
    with pytest.raises(RuntimeError):
        torch.tensor([7]) // torch.tensor([0])  # torch raises; a lazy kernel cannot


def test_integer_division_by_a_python_zero_raises_when_built_like_torch():
    with pytest.raises(ZeroDivisionError, match="floordiv: integer division by zero"):
        Tensor([7]) // 0
    with pytest.raises(ZeroDivisionError, match="mod: integer modulo by zero"):
        Tensor([7]) % 0


def test_int_min_floor_divided_by_minus_one_wraps_to_int_min():
    close(Tensor([I32_MIN], dtype=lg.int32) // Tensor([-1], dtype=lg.int32), np.array([I32_MIN], np.int32))
    close(Tensor([I32_MIN], dtype=lg.int32) % Tensor([-1], dtype=lg.int32), np.array([0], np.int32))


def test_integer_floor_division_floors_and_modulo_takes_the_divisor_sign_like_torch():
    a, b = [7, -7, 7, -7, 5], [2, 2, -2, -2, 7]
    close(Tensor(a) // Tensor(b), torch.floor_divide(torch.tensor(a), torch.tensor(b)).numpy().astype(np.int32))
    close(Tensor(a) % Tensor(b), torch.remainder(torch.tensor(a), torch.tensor(b)).numpy().astype(np.int32))


def test_float_modulo_by_zero_and_by_infinity_like_torch():
    a, b = [5.0, -5.0, 5.0, inf], [0.0, inf, -inf, 2.0]
    close(Tensor(a) % Tensor(b), torch.remainder(_t(a), _t(b)).numpy())


# --- out-of-range indices -----------------------------------------------------------------------------------
def test_out_of_range_int_and_slice_indices():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(IndexError, match="index 2 is out of bounds for dim 0 with size 2"):
        x[2]
    close(x[1:10, -10:2], np.arange(6, dtype=np.float32).reshape(2, 3)[1:10, -10:2])  # slices clip, like Python


def test_negative_tensor_indices_count_from_the_end_like_torch():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    close(Tensor(x)[:, Tensor([-1, -3])], torch.tensor(x)[:, torch.tensor([-1, -3])].numpy())
    close(Tensor(x)[:, Tensor([1, 0]) - 3], torch.tensor(x)[:, torch.tensor([1, 0]) - 3].numpy())


# --- the document itself ----------------------------------------------------------------------------------
def test_every_statement_of_docs_semantics_names_tests_that_exist():
    import ast
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "semantics.md").read_text()
    defined = set()
    for name in ("test_semantics.py", "test_regressions_14.py", "test_dtypes16.py", "test_index_dtypes16.py"):
        tree = ast.parse((root / "tests" / name).read_text())
        defined |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    statements = [s for s in re.split(r"\n(?=- )", doc) if s.startswith("- ")]
    assert len(statements) >= 30
    for s in statements:
        names = re.findall(r"\btest_\w+", s)
        assert names, f"statement without a test: {s[:80]}"
        missing = [n for n in names if n not in defined]
        assert not missing, f"docs/semantics.md names tests that do not exist: {missing}"


def test_integer_pow_stays_integer_and_wraps_like_torch():
    base = [2, 3, -2, 0, 1, -1, 5]
    exps = [3, 31, 33, 0, 5, 7, 20]
    for d, td in ((lg.int32, torch.int32), (lg.int64, torch.int64)):
        got = Tensor(base, dtype=d) ** Tensor(exps, dtype=d)
        want = _t(base, td) ** _t(exps, td)
        assert got.dtype is d
        close(got, want.numpy())
        close(Tensor(base, dtype=d) ** Tensor([-1, -2, -1, -1, -3, -3, -1], dtype=d),
              (_t(base, td) ** _t([-1, -2, -1, -1, -3, -3, -1], td)).numpy())
        close(Tensor(base, dtype=d) ** 3, (_t(base, td) ** 3).numpy())
    assert (Tensor([2, 3]) ** 0.5).dtype is lg.float32


def test_prod_of_bools_and_int32_is_int64_like_torch():
    x = [[2, 3, 40000], [-5, 7, 65536]]
    for d, td in ((lg.int32, torch.int32), (lg.bool_, torch.bool)):
        got, want = Tensor(x, dtype=d).prod(1), _t(x, td).prod(1)
        assert got.dtype is lg.int64 and want.dtype is torch.int64
        close(got, want.numpy())
    assert Tensor(x).prod(dtype=lg.int32).dtype is lg.int32


def test_shifts_beyond_the_width_shift_everything_out_like_torch():
    a = [1, -8, 5, I32_MIN]
    for c in (0, 1, 31, 32, 33, -1, 100):
        close(Tensor(a) << c, (_t(a, torch.int32) << c).numpy())
        close(Tensor(a) >> c, (_t(a, torch.int32) >> c).numpy())


def test_numpy_float64_arrays_keep_float64_like_torch_tensor():
    a = np.array([0.1, 1e-300, 1 + 2 ** -40])
    t = Tensor(a)
    if lg.device().caps.fp64:
        assert t.dtype is lg.float64 and t.dtype.name == str(torch.tensor(a).dtype).split(".")[1]
        np.testing.assert_array_equal(t.numpy(), a)  # no rounding through float32
    else:
        assert t.dtype is lg.float32
    assert Tensor(a.tolist()).dtype is lg.float32 and Tensor(a, dtype=lg.float32).dtype is lg.float32
    assert Tensor(a.astype(np.float32)).dtype is lg.float32
