"""The small integer dtypes of issue 16 (uint8, int8, int16, uint32) against torch, from one
table of cases.

Each `Case` is a lazygrad call and the torch call it must equal (values and dtype) on inputs
that hold every edge value of the dtype (0, ±1, min, max, values that wrap) and random ones,
in each new dtype, and on a non-contiguous view, a size-0 and a size-1 dim. torch 2.13 has
uint32 with few ops (no add, no comparisons): uint32 follows numpy there, and its reference
is torch computing in int64 on the same values, wrapped mod 2**32 into uint32 (exactly
numpy's uint32 arithmetic). Then: the promotion table against torch.result_type over every
pair of dtypes, tensor with tensor and tensor with a Python scalar; casts between every pair;
bitcasts between sizes; creation and round trips.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

FP64 = lg.device().caps.fp64
NEW = ("uint8", "int8", "int16", "uint32")
ALL = ("bool", "uint8", "int8", "int16", "uint32", "int32", "int64", "float16", "float32", "float64")
DEVICE_ALL = tuple(d for d in ALL if lg.device().supports(lg.dtypes.DTYPES[d]))
TORCH_DT = {n: getattr(torch, n) for n in ALL}
TORCH_DT["bool"] = torch.bool
# torch has these for uint32 (the reference computes in int64 for the rest)
TORCH_UINT32_OPS = frozenset({"mul", "and", "or", "xor", "eq", "sum", "prod", "cumsum", "cat", "sort", "getitem"})


def edge_values(name: str) -> np.ndarray:
    info = np.iinfo(np.dtype(name))
    v = [0, 1, 2, 3, 7, info.max, info.max - 1, info.min, info.min + 1, 100 % (info.max + 1)]
    if info.min < 0:
        v += [-1, -2, -7, -100 if info.min < -100 else -3]
    return np.array(v, dtype=np.int64)


def sample(name: str, n: int, rng: np.random.Generator, nonzero: bool = False, small: bool = False) -> np.ndarray:
    """n values of dtype `name` as int64: the edge values first, then random ones."""
    info = np.iinfo(np.dtype(name))
    lo, hi = (max(info.min, -9), min(info.max, 9)) if small else (info.min, info.max)
    e = edge_values(name)
    e = e[(e >= lo) & (e <= hi)]
    r = rng.integers(lo, hi, size=n, endpoint=True, dtype=np.int64)
    v = np.concatenate([e, r])[:n] if n > len(e) else r
    if nonzero:
        v = np.where(v == 0, 1, v)
    return v


def wrap(v: np.ndarray, name: str) -> np.ndarray:
    return v.astype(np.dtype(name))  # numpy's astype of an int64 wraps modulo the width


@dataclass(frozen=True)
class Case:
    """`lg_fn` on lazygrad tensors equals `torch_fn` (default the same) on torch tensors; the
    inputs are `arity` samples, the last one nonzero with `nonzero` (divisors), `small` keeps
    every input in -9..9 (shift counts, exponents)."""

    name: str
    lg_fn: Callable
    torch_fn: Callable | None = None
    arity: int = 1
    nonzero: bool = False
    small: tuple[bool, ...] = ()
    dtypes: tuple[str, ...] = NEW


def C(name: str, fn: Callable, tfn: Callable | None = None, **kw) -> Case:
    return Case(name, fn, tfn, **kw)


CASES = [
    C("add", lambda a, b: a + b, arity=2),
    C("sub", lambda a, b: a - b, arity=2),
    C("mul", lambda a, b: a * b, arity=2),
    C("add_scalar", lambda a: a + 200),
    C("rsub_scalar", lambda a: 3 - a),
    C("mul_scalar_wraps", lambda a: a * 300),
    C("floordiv", lambda a, b: a // b, arity=2, nonzero=True),
    C("floordiv_scalar", lambda a: a // 7),
    C("mod", lambda a, b: a % b, arity=2, nonzero=True),
    C("mod_scalar", lambda a: a % 7),
    C("div_trunc", lambda a, b: a.div(b, rounding_mode="trunc"), lambda a, b: torch.div(a, b, rounding_mode="trunc"),
      arity=2, nonzero=True),
    C("true_div", lambda a, b: a / b, arity=2, nonzero=True),
    C("lt", lambda a, b: a < b, arity=2),
    C("le", lambda a, b: a <= b, arity=2),
    C("gt", lambda a, b: a > b, arity=2),
    C("ge", lambda a, b: a >= b, arity=2),
    C("eq", lambda a, b: a == b, arity=2),
    C("ne", lambda a, b: a != b, arity=2),
    C("where", lambda a, b: (a < b).where(a, b), lambda a, b: torch.where(a < b, a, b), arity=2),
    C("maximum", lambda a, b: a.maximum(b), lambda a, b: torch.maximum(a, b), arity=2),
    C("minimum", lambda a, b: a.minimum(b), lambda a, b: torch.minimum(a, b), arity=2),
    C("clamp", lambda a: a.clamp(2, 100), lambda a: torch.clamp(a, 2, 100)),
    C("and", lambda a, b: a & b, arity=2),
    C("or", lambda a, b: a | b, arity=2),
    C("xor", lambda a, b: a ^ b, arity=2),
    C("invert", lambda a: ~a),
    C("lshift", lambda a, b: a << b, arity=2, small=(False, True)),
    C("rshift", lambda a, b: a >> b, arity=2, small=(False, True)),
    C("neg", lambda a: -a),
    C("abs", lambda a: a.abs(), lambda a: torch.abs(a)),
    C("sign", lambda a: a.sign(), lambda a: torch.sign(a)),
    C("square", lambda a: a * a),
    C("pow_int", lambda a, b: a ** b.abs(), lambda a, b: a ** b.abs(), arity=2, small=(True, True)),
    C("pow_scalar", lambda a: a ** 3),
    C("pow_any_exponent", lambda a, b: a ** b, arity=2, dtypes=("uint8", "uint32")),  # the exponent's top bit too
    C("pow_float", lambda a: a ** 0.5),
    C("sum", lambda a: a.sum()),
    C("sum_dim", lambda a: a.sum(-1)),
    C("prod", lambda a: a.prod(-1), small=(True,)),
    C("any", lambda a: a.any(-1)),  # uint8: uint8, like torch
    C("all", lambda a: a.all()),
    C("max", lambda a: a.max()),
    C("min", lambda a: a.min()),
    C("amax_dim", lambda a: a.amax(-1)),
    C("max_dim_values", lambda a: a.max(-1).values, lambda a: a.max(-1).values),
    C("argmax", lambda a: a.argmax(-1).long(), lambda a: a.argmax(-1)),
    C("argmin", lambda a: a.argmin(-1).long(), lambda a: a.argmin(-1)),
    C("cumsum", lambda a: a.cumsum(-1)),
    C("cummax", lambda a: a.cummax(-1).values, lambda a: a.cummax(-1).values),
    C("sort", lambda a: a.sort(-1).values, lambda a: a.sort(-1).values),
    C("sort_desc", lambda a: a.sort(-1, descending=True).values, lambda a: a.sort(-1, descending=True).values),
    C("argsort", lambda a: a.argsort(-1, stable=True).long(), lambda a: a.argsort(dim=-1, stable=True)),
    C("topk", lambda a: a.topk(1, -1).values, lambda a: a.topk(1, -1).values),
    C("flip_getitem", lambda a: a[..., ::-1], lambda a: a.flip(-1)),
    C("getitem", lambda a: a[..., Tensor([0, 0, 1])[: a.shape[-1]]] if a.shape[-1] else a,
      lambda a: a[..., torch.tensor([0, 0, 1])[: a.shape[-1]]] if a.shape[-1] else a),
    C("gather", lambda a: a.gather(-1, Tensor(np.zeros(a.shape, np.int32))),
      lambda a: torch.gather(a.to(torch.int64), -1, torch.zeros(a.shape, dtype=torch.int64)).to(a.dtype)),
    C("cat", lambda a, b: lg.cat([a, b], -1), lambda a, b: torch.cat([a, b], -1), arity=2),
    C("stack", lambda a, b: lg.stack([a, b], 0), lambda a, b: torch.stack([a, b], 0), arity=2),
    C("cat_promotes", lambda a: lg.cat([a, a.cast(lg.int8)], -1), lambda a: torch.cat([a, a.to(torch.int8)], -1)),
    C("to_float", lambda a: a.float()),
    C("to_int64", lambda a: a.long()),
    C("byte", lambda a: a.byte()),
    C("char", lambda a: a.char()),
    C("short", lambda a: a.short()),
    C("contiguous_copy", lambda a: a.contiguous() + 0),
]


def _torch_ref(case: Case, name: str, arrays: list[np.ndarray]):
    """torch's result on `arrays` (int64 values of dtype `name`): in the dtype itself, or for
    uint32 ops torch lacks, in int64 and wrapped into uint32 where torch keeps the dtype."""
    fn = case.torch_fn or case.lg_fn
    if name != "uint32" or case.name in TORCH_UINT32_OPS:
        return fn(*[torch.from_numpy(wrap(a, name)) for a in arrays])
    res = fn(*[torch.from_numpy(a) for a in arrays])
    lg_res = case.lg_fn(*[Tensor(wrap(a, name)) for a in arrays])
    if lg_res.dtype is lg.uint32:  # an op that keeps the dtype: numpy's uint32 wraps the int64 result
        return torch.from_numpy(res.numpy().astype(np.uint32))
    return res


def _compare(got: Tensor, want: torch.Tensor, what: str) -> None:
    w = want.numpy() if want.dtype is not torch.uint32 else want.numpy()
    assert str(got.dtype).removeprefix("lg.") == str(want.dtype).removeprefix("torch."), \
        f"{what}: dtype {got.dtype} != torch {want.dtype}"
    g = got.numpy()
    assert g.shape == tuple(w.shape), f"{what}: shape {g.shape} != {w.shape}"
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(g, w, err_msg=what)


# "wide": long rows and enough elements for the vector paths and their scalar tails
SHAPES = {"plain": (6, 7), "wide": (3, 131), "size0": (0, 3), "size1": (1, 1), "rows1": (3, 1)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("name", NEW)
def test_op_matches_torch(case: Case, name: str) -> None:
    if name not in case.dtypes:
        pytest.skip("dtype not in the case")
    rng = np.random.default_rng(abs(hash((case.name, name))) % 2**32)
    for label, shape in SHAPES.items():
        n = int(np.prod(shape))
        arrays = [sample(name, n, rng, nonzero=case.nonzero and i == case.arity - 1,
                         small=(case.small[i] if i < len(case.small) else False)).reshape(shape)
                  for i in range(case.arity)]
        try:
            want = _torch_ref(case, name, arrays)
        except (RuntimeError, IndexError) as e:  # max of a size-0 tensor: lazygrad raises too
            with pytest.raises((IndexError, ValueError, RuntimeError)):
                case.lg_fn(*[Tensor(wrap(a, name)) for a in arrays]).realize()
            assert "numel() == 0" in str(e) or "empty" in str(e) or "zero" in str(e), e
            continue
        got = case.lg_fn(*[Tensor(wrap(a, name)) for a in arrays])
        _compare(got, want, f"{case.name} {name} {label}")
    # non-contiguous: a transposed view of a stored (7, 6) input
    arrays = [sample(name, 42, rng, nonzero=case.nonzero and i == case.arity - 1,
                     small=(case.small[i] if i < len(case.small) else False)).reshape(7, 6)
              for i in range(case.arity)]
    got = case.lg_fn(*[Tensor(wrap(a, name)).realize().transpose(0, 1) for a in arrays])
    _compare(got, _torch_ref(case, name, [a.T.copy() for a in arrays]), f"{case.name} {name} transposed")


# --- edge values named ----------------------------------------------------------------------------
def test_small_ints_wrap_in_their_own_width_like_torch() -> None:
    assert (Tensor([250], dtype=lg.uint8) + 10).tolist() == [4]
    assert (Tensor([127], dtype=lg.int8) + 1).tolist() == [-128]
    assert (-Tensor([-128], dtype=lg.int8)).tolist() == [-128]
    assert (-Tensor([1, 0, 255], dtype=lg.uint8)).tolist() == [255, 0, 1]
    assert (Tensor([32767], dtype=lg.int16) * 2).tolist() == [-2]
    assert (Tensor([2**32 - 1], dtype=lg.uint32) + 1).tolist() == [0]
    assert (Tensor([-128], dtype=lg.int8) // -1).tolist() == [-128]
    assert (Tensor([5], dtype=lg.uint8) + 300).tolist() == [(5 + 300) % 256]  # the scalar wraps like torch's


def test_small_int_division_by_a_zero_element_gives_zero() -> None:
    for name in NEW:
        x = Tensor(np.array([7, 0, 3], dtype=name))
        z = Tensor(np.zeros(3, dtype=name))
        assert (x // z).tolist() == [0, 0, 0] and (x % z).tolist() == [0, 0, 0], name
        with pytest.raises(ZeroDivisionError):
            x // 0


# --- promotion ------------------------------------------------------------------------------------
def _torch_result_type(a: str, b: str) -> str:
    """torch.result_type of two 1-d tensors; for uint32, which torch does not promote, numpy's
    among integers and the float's dtype with a float (the kind rule of every other integer)."""
    if "uint32" in (a, b) and a != b:
        other = b if a == "uint32" else a
        if other.startswith("float"):
            return other
        return str(np.result_type(np.dtype(a), np.dtype(b)))
    return str(torch.result_type(torch.zeros(2, dtype=TORCH_DT[a]), torch.zeros(2, dtype=TORCH_DT[b]))).removeprefix("torch.")


@pytest.mark.parametrize("a, b", list(itertools.product(ALL, ALL)))
def test_promotion_table_is_torch_result_type(a: str, b: str) -> None:
    da, db = lg.dtypes.DTYPES[a], lg.dtypes.DTYPES[b]
    assert lg.dtypes.promote(da, db).name == _torch_result_type(a, b)
    if a in DEVICE_ALL and b in DEVICE_ALL:  # and the ops promote through it
        x, y = Tensor([1, 0], dtype=getattr(lg, a if a != "bool" else "bool_")), \
            Tensor([1, 1], dtype=getattr(lg, b if b != "bool" else "bool_"))
        want = _torch_result_type(a, b)
        assert (x * y).dtype.name == want and lg.cat([x, y]).dtype.name == want
        assert Tensor.where(x != 0, x, y).dtype.name == want


@pytest.mark.parametrize("a", ALL)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_promotion_with_a_python_scalar_is_torch_result_type(a: str, scalar) -> None:
    if a not in DEVICE_ALL:
        pytest.skip("dtype not on the device")
    x = Tensor([1, 2], dtype=lg.dtypes.DTYPES[a])
    want = ("float32" if isinstance(scalar, float) and not a.startswith("float") else a) if a == "uint32" else \
        str(torch.result_type(torch.zeros(2, dtype=TORCH_DT[a]), scalar)).removeprefix("torch.")
    assert (x * scalar).dtype.name == want


# --- casts between every pair ---------------------------------------------------------------------
CAST_VALUES = {"int": [0, 1, 2, 100, 127, -1, -128, 255, 256, 32767, -32768, 65535, 2**31 - 1, -2**31],
               "float": [0.0, 1.0, 2.9, -2.9, 100.5, 127.0, -128.0, 200.0, 255.0, 1e4, -1e4]}


@pytest.mark.parametrize("src, dst", [(s, d) for s in DEVICE_ALL for d in DEVICE_ALL
                                      if (s in NEW or d in NEW) and "float16" not in (s, d)])
def test_cast_between_every_pair_matches_torch(src: str, dst: str) -> None:
    if src.startswith("float"):
        v = np.array(CAST_VALUES["float"], dtype=src)
        if dst != "bool":  # in range only: out-of-range float to int casts are saturated (semantics.md)
            info = np.iinfo(np.dtype(dst))
            v = v[(v > info.min - 1) & (v < info.max + 1)]
    elif src == "bool":
        v = np.array([True, False, True])
    else:
        v = np.array(CAST_VALUES["int"], dtype=np.int64).astype(src)  # wrapped into src
    v = np.concatenate([v, v[::-1]] * 3)  # long enough for vector code
    got = Tensor(v, dtype=lg.dtypes.DTYPES[src]).cast(lg.dtypes.DTYPES[dst])
    if src == "uint32" or dst == "uint32":  # numpy's conversions (torch has uint32 casts too: same values)
        want = v.astype(dst)
    else:
        want = torch.from_numpy(v).to(TORCH_DT[dst]).numpy()
    assert got.dtype.name == dst
    np.testing.assert_array_equal(got.numpy(), want)


def test_float_to_small_int_out_of_range_saturates_and_nan_is_zero() -> None:
    x = Tensor([300.0, -300.0, 1e10, -1e10, float("inf"), float("-inf"), float("nan")] * 3)
    assert x.cast(lg.uint8).tolist()[:7] == [255, 0, 255, 0, 255, 0, 0]
    assert x.cast(lg.int8).tolist()[:7] == [127, -128, 127, -128, 127, -128, 0]
    assert x.cast(lg.int16).tolist()[:7] == [300, -300, 32767, -32768, 32767, -32768, 0]
    assert x.cast(lg.uint32).tolist()[:7] == [300, 0, 2**32 - 1, 0, 2**32 - 1, 0, 0]


# --- bitcasts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, dst", [(s, d) for s in DEVICE_ALL for d in DEVICE_ALL
                                      if "bool" not in (s, d) and "float16" not in (s, d) and (s in NEW or d in NEW)])
def test_bitcast_matches_torch_view(src: str, dst: str) -> None:
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=3 * 16, dtype=np.uint8)
    v = raw.view(src).reshape(3, -1)
    if src.startswith("float"):
        v = np.where(np.isfinite(v), v, 1.5).astype(src)
    got = Tensor(v, dtype=lg.dtypes.DTYPES[src]).view(lg.dtypes.DTYPES[dst])
    want = v.view(dst)  # numpy's view is torch's (torch.Tensor.view(dtype), little-endian)
    assert got.dtype.name == dst and got.shape == want.shape
    np.testing.assert_array_equal(got.numpy().view(np.uint8), want.view(np.uint8))
    if "uint32" not in (src, dst):
        t = torch.from_numpy(v.copy()).view(TORCH_DT[dst]).numpy()
        np.testing.assert_array_equal(got.numpy().view(np.uint8), t.view(np.uint8))


@pytest.mark.parametrize("other", ["uint8", "int8", "int16", "int32", "float32"])
def test_bool_bitcasts_match_torch_view(other: str) -> None:
    """A bool is the byte 0 or 1 (torch.Tensor.view between bool and any dtype); a byte read as
    bool is true where it is not 0."""
    b = np.random.default_rng(2).integers(0, 2, (3, 8)).astype(bool)
    got = Tensor(b).view(lg.dtypes.DTYPES[other])
    want = torch.from_numpy(b.copy()).view(TORCH_DT[other])
    assert got.dtype.name == other and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy().view(np.uint8), want.numpy().view(np.uint8))
    back = got.view(lg.bool_)
    assert back.dtype is lg.bool_
    np.testing.assert_array_equal(back.numpy(), want.view(torch.bool).numpy())
    raw = Tensor(np.array([0, 1, 2, 255], np.uint8)).view(lg.bool_)
    np.testing.assert_array_equal(raw.numpy(), [False, True, True, True])


def test_bitcast_to_a_wider_dtype_needs_a_divisible_last_dim() -> None:
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        Tensor(np.zeros(3, np.uint8)).view(lg.int32)


def test_bitcast_of_a_computed_value_and_a_view() -> None:
    x = Tensor(np.arange(8, dtype=np.int32).reshape(2, 4))
    got = (x * 300).transpose(0, 1).contiguous().view(lg.uint8)
    want = (np.arange(8, dtype=np.int32).reshape(2, 4) * 300).T.copy().view(np.uint8)
    np.testing.assert_array_equal(got.numpy(), want)


# --- creation and round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_creation_and_round_trips(name: str) -> None:
    d = getattr(lg, name)
    info = np.iinfo(np.dtype(name))
    a = np.array([info.min, 0, 1, info.max], dtype=name)
    assert Tensor(a).dtype is d and Tensor(a).numpy().dtype == a.dtype
    np.testing.assert_array_equal(Tensor(a).numpy(), a)
    assert Tensor([1, 2], dtype=d).dtype is d and lg.tensor([1, 2], dtype=d).tolist() == [1, 2]
    assert lg.zeros(3, dtype=d).numpy().dtype == a.dtype and lg.ones(2, dtype=d).tolist() == [1, 1]
    assert lg.full((2,), 5, dtype=d).tolist() == [5, 5]
    np.testing.assert_array_equal(lg.arange(0, 10, 3, dtype=d).numpy(), np.arange(0, 10, 3, dtype=name))
    assert Tensor([1.7, 2.2]).to(d).tolist() == [1, 2] and Tensor([3]).cast(d).dtype is d
    assert Tensor([3]).to(name).dtype is d if hasattr(Tensor, "to") else True
    with pytest.raises(OverflowError):
        Tensor([int(info.max) + 1], dtype=d)


def test_numpy_uint16_and_float64_inputs() -> None:
    assert Tensor(np.array([65535], np.uint16)).tolist() == [65535]  # no uint16: int32 holds it
    if FP64:
        assert Tensor(np.array([1.5])).dtype is lg.float64


def test_small_integer_index_tensors_are_indices_like_numpy() -> None:
    # torch reads a uint8 index as a (deprecated) mask and refuses int8/int16; numpy's integer
    # indices, which these are here, are what torch's deprecation message asks for (bool masks)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    for name in NEW:
        idx = np.array([3, 0, 3], dtype=name)
        np.testing.assert_array_equal(Tensor(x)[Tensor(idx)].numpy(), x[idx])
        np.testing.assert_array_equal(Tensor(x).gather(1, Tensor(np.zeros((4, 2), name))).numpy(), x[:, [0, 0]])
