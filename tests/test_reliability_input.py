"""Reliability (issue 8): hostile input gives a clear error or a correct result.

Never a crash and never a silent wrong answer: nested lists of mixed types, ragged lists,
strings, None, NaN/Inf values, huge or negative shapes, integer overflow in shape products,
float -> int conversion of NaN, integer division by zero, non-contiguous and read-only numpy
arrays, bad indices, and checkpoint files that are truncated or not safetensors.
"""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

NAN, INF = float("nan"), float("inf")
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def same(a, b) -> None:
    """Equal values, NaNs in the same places (and equal dtypes kind)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_array_equal(a, b)


# --- data of mixed or wrong types ----------------------------------------------------------------
@pytest.mark.parametrize("data, dtype, want", [
    ([1, 2.5, True], lg.float32, [1.0, 2.5, 1.0]),
    ([[1, 2], [3.0, 4]], lg.float32, [[1, 2], [3, 4]]),
    ([True, 2, np.int8(-3)], lg.int32, [1, 2, -3]),
    ([True, False], lg.bool, [True, False]),
    ([np.float32(1.5), 2], lg.float32, [1.5, 2.0]),
    (range(4), lg.int32, [0, 1, 2, 3]),
    ((1.0, (2.0)), lg.float32, [1.0, 2.0]),
    ([], lg.float32, np.zeros(0)),
    ([[], []], lg.float32, np.zeros((2, 0))),
    (np.float32(3.5), lg.float32, 3.5),
    ([Tensor([1.0]), Tensor([2.0])], lg.float32, [[1.0], [2.0]]),
])
def test_mixed_types_give_the_promoted_result(data, dtype, want) -> None:
    t = Tensor(data)
    assert t.dtype == dtype
    same(t.numpy(), np.asarray(want, dtype=dtype.np))


@pytest.mark.parametrize("data", [[[1, 2], [3]], [[[1, 2]], [[3, 4], [5, 6]]], [1, [2, 3]]])
def test_ragged_lists_are_a_value_error(data) -> None:
    with pytest.raises(ValueError, match="Tensor: data is not a rectangular nested list"):
        Tensor(data)


@pytest.mark.parametrize("data", [
    "abc", ["1", "2"], [1, "2"], None, [1.0, None], {"a": 1}, object(), [1 + 2j], b"abc",
    (x for x in range(3)), np.zeros(2, dtype=[("a", "f4")]), np.array([1, None], dtype=object),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
], ids=lambda d: type(d).__name__)
def test_non_numeric_data_is_a_type_error(data) -> None:
    with pytest.raises(TypeError, match="Tensor: data must be numeric"):
        Tensor(data)


def test_integers_too_large() -> None:
    with pytest.raises(OverflowError, match="int64 range"):
        Tensor([2**70])
    with pytest.raises(OverflowError, match=r"out of range for int32 \(pass dtype=lg.int64\)"):
        Tensor(np.array([2**40], dtype=np.int64))
    assert Tensor(np.array([2**40]), dtype=lg.int64).numpy()[0] == 2**40
    with pytest.raises(OverflowError, match="out of range for int64"):
        Tensor(np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(OverflowError, match="out of range for int32"):
        Tensor([2**31], dtype=lg.int32)


def test_float_data_into_int_dtype() -> None:
    with pytest.raises(ValueError, match="cannot convert NaN or Inf"):
        Tensor([1.0, NAN], dtype=lg.int32)
    with pytest.raises(ValueError, match="cannot convert NaN or Inf"):
        Tensor([INF], dtype=lg.int64)
    with pytest.raises(OverflowError, match="out of range for int32"):
        Tensor([1e10], dtype=lg.int32)                     # numpy would silently give INT_MIN
    with pytest.raises(OverflowError):
        Tensor(np.array([-3e9]), dtype=lg.int32)
    same(Tensor([2.7, -2.7, 2147483647.0], dtype=lg.int64).numpy(), [2, -2, 2147483647])  # truncation, like torch
    with pytest.raises(ValueError, match="cannot represent nan as int32"):
        Tensor.full((2,), NAN, dtype=lg.int32)


# --- NaN and Inf values --------------------------------------------------------------------------
SPECIAL = np.array([NAN, INF, -INF, 0.0, -0.0, 1.0, -2.5, 3e38, 1e-45], dtype=np.float32)


def test_special_floats_round_trip_bit_exact() -> None:
    got = Tensor(SPECIAL).numpy()
    assert got.tobytes() == SPECIAL.tobytes()


def test_elementwise_on_special_values_matches_torch() -> None:
    x = Tensor(np.tile(SPECIAL, 5))                          # 45: vector body and scalar tail
    tx = torch.tensor(np.tile(SPECIAL, 5))
    cases = {
        "add_inf": (x + INF, tx + INF), "mul0": (x * 0, tx * 0), "div0": (x / 0.0, tx / 0.0),
        "exp": (x.exp(), tx.exp()), "log": (x.log(), tx.log()), "sqrt": (x.sqrt(), tx.sqrt()),
        "relu": (x.relu(), tx.relu()), "maximum": (x.maximum(1.0), torch.maximum(tx, torch.tensor(1.0))),
        "minimum": (x.minimum(1.0), torch.minimum(tx, torch.tensor(1.0))),
        "sigmoid": (x.sigmoid(), tx.sigmoid()), "tanh": (x.tanh(), tx.tanh()), "abs": (x.abs(), tx.abs()),
        "isnan": (x.isnan(), tx.isnan()), "isinf": (x.isinf(), tx.isinf()),
        "eq": (x == x, tx == tx), "lt": (x < 1.0, tx < 1.0),
        "where": ((x > 0).where(x, -1.0), torch.where(tx > 0, tx, torch.tensor(-1.0))),
    }
    for name, (a, b) in cases.items():
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=0, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("shape", [(9,), (3, 40), (2, 300)])
def test_reductions_propagate_nan_like_torch(shape) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=shape).astype(np.float32)
    a.reshape(-1)[a.size // 3] = NAN
    if a.ndim == 2:
        a[-1, :] = rng.normal(size=shape[1])                  # one row without NaN
    t, ta = Tensor(a), torch.tensor(a)
    ax = a.ndim - 1
    for name, got, want in [
        ("max", t.amax(ax), ta.amax(ax)), ("min", t.amin(ax), ta.amin(ax)), ("sum", t.sum(ax), ta.sum(ax)),
        ("mean", t.mean(ax), ta.mean(ax)), ("softmax", t.softmax(ax), ta.softmax(ax)),
        ("logsumexp", t.logsumexp(ax), ta.logsumexp(ax)), ("argmax", t.argmax(ax), ta.argmax(ax).int()),
        ("argmin", t.argmin(ax), ta.argmin(ax).int()),
    ]:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name)


def test_inf_in_reductions() -> None:
    same(Tensor([1.0, INF, -INF]).max().numpy(), np.float32(INF))
    same(Tensor([-INF] * 20).max().numpy(), np.float32(-INF))
    assert math.isnan(Tensor([INF, -INF]).sum().item())
    same(Tensor([[INF, 1.0], [2.0, 3.0]]).softmax(1).numpy()[1], torch.tensor([2.0, 3.0]).softmax(0).numpy())


def test_float_to_int_cast_of_nan_and_out_of_range_is_defined() -> None:
    """A C conversion is undefined here (x86 gives INT_MIN for all of these); lazygrad defines it
    as OpenCL's saturating conversion: NaN -> 0, clamp to the type's range, round toward zero."""
    v = [NAN, 1e10, -1e10, INF, -INF, 2.7, -2.7, -0.5]
    want32 = [0, I32_MAX, I32_MIN, I32_MAX, I32_MIN, 2, -2, 0]
    for n in (1, 5):                                          # 8 and 40 values: scalar and vector code
        same(Tensor(v * n).int().numpy(), want32 * n)
        same(Tensor(v * n).long().numpy()[:3], [0, 10_000_000_000, -10_000_000_000])
    same(Tensor(np.array(v), dtype=lg.float64).int().numpy(), want32)


def test_floor_ceil_round_of_large_and_special_values() -> None:
    v = np.array([1e10, -1e10, NAN, INF, -INF, 2.5, -2.5, 3e9, -0.5, 8388609.0, 0.49999997], dtype=np.float32)
    for name in ("floor", "ceil", "round"):
        got = getattr(Tensor(v), name)().numpy()
        np.testing.assert_array_equal(got, getattr(np, name)(v), err_msg=name)


def test_integer_division_and_modulo_by_zero() -> None:
    a, b = np.array([7, -7, 0, I32_MIN, 5], np.int32), np.array([0, 0, 0, -1, -2], np.int32)
    # numpy's results: x // 0 == x % 0 == 0; INT_MIN // -1 wraps to INT_MIN (no trap, no UB)
    with np.errstate(all="ignore"):
        same((Tensor(a) // Tensor(b)).numpy(), a // b)
        same((Tensor(a) % Tensor(b)).numpy(), a % b)
    same((Tensor(np.tile(a, 9)) // Tensor(np.tile(b, 9))).numpy()[:5], [0, 0, 0, I32_MIN, -3])
    with pytest.raises(ZeroDivisionError, match=r"floordiv: integer division by zero \(int32 tensor of shape \(3,\)\)"):
        Tensor([1, 2, 3]) // 0
    with pytest.raises(ZeroDivisionError, match="mod: integer modulo by zero"):
        Tensor([1, 2, 3]) % 0
    # floats follow torch: x // 0 is ±inf or nan, x % 0 is nan
    np.testing.assert_array_equal((Tensor([5.0, -5.0, 0.0]) // 0).numpy(), [INF, -INF, NAN])
    assert math.isnan((Tensor([5.0]) % 0).item())


def test_integer_max_of_the_type_minimum() -> None:
    same(Tensor(np.array([I32_MIN] * 3, np.int32)).max().numpy(), np.int32(I32_MIN))
    same(Tensor(np.array([[I32_MIN] * 40] * 2, np.int32)).amax(1).numpy(), [I32_MIN, I32_MIN])
    same(Tensor(np.array([-(2**63)]), dtype=lg.int64).max().numpy(), np.int64(-(2**63)))


# --- shapes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, err, msg", [
    (lambda: Tensor.zeros(-1, 3), ValueError, r"negative size in shape \(-1, 3\)"),
    (lambda: Tensor.rand(3, -2), ValueError, r"rand: negative size in shape \(3, -2\)"),
    (lambda: Tensor.full((2**41,), 1.0), ValueError, "full: shape .* has more elements"),
    (lambda: Tensor.zeros(2**32, 2**32, 2**32), ValueError, "more elements .* than lazygrad supports"),
    (lambda: Tensor.ones(2**62, 4), ValueError, "more elements"),               # product overflows int64
    (lambda: Tensor.zeros(2.5), TypeError, "sizes must be ints"),
    (lambda: Tensor.zeros(True), TypeError, "sizes must be ints"),
    (lambda: Tensor.zeros("3"), TypeError, "sizes must be ints"),
    (lambda: Tensor.zeros(6).reshape(-2, -3), ValueError, "reshape: negative size"),
    (lambda: Tensor.zeros(6).reshape(2**62, 2**62, 0), ValueError, r"reshape: cannot reshape tensor of shape \(6,\)"),
    (lambda: Tensor.zeros(1, 1).expand(2**40, 2**40), ValueError, r"expand: result shape \(1099511627776, 1099511627776\)"),
    (lambda: Tensor.zeros(2**21, 1) + Tensor.zeros(1, 2**21), ValueError, r"expand: result shape \(2097152, 2097152\)"),
    (lambda: Tensor.zeros(4).pad(((2**41, 0),)), ValueError, "pad: result shape"),
    (lambda: Tensor.zeros(2, 3) + Tensor.zeros(4, 3), ValueError, r"add: shapes \(2, 3\) and \(4, 3\) cannot be broadcast"),
    (lambda: Tensor.zeros(2, 3) @ Tensor.zeros(4, 3), ValueError, r"matmul: shapes \(2, 3\) and \(4, 3\) do not match"),
    (lambda: Tensor.arange(NAN), ValueError, "arange: start, stop and step must be finite"),
    (lambda: Tensor.arange(0, INF), ValueError, "arange: start, stop and step must be finite"),
    (lambda: Tensor.arange(10**13), ValueError, "arange: shape .* more elements"),
    (lambda: Tensor.arange(0, 5, 0), ValueError, "arange: step must not be zero"),
])
def test_bad_shapes_are_clear_errors(make, err, msg) -> None:
    with pytest.raises(err, match=msg):
        make()


def test_large_but_legal_lazy_shapes_stay_lazy() -> None:
    t = Tensor.zeros(1, 1).expand(2**20, 2**20)                 # 2**40 elements: allowed, nothing runs
    assert t.shape == (2**20, 2**20) and t.node.realized is None
    same(t[5, 7:9].numpy(), [0.0, 0.0])                          # a small view of it computes fine


# --- numpy arrays of every layout ------------------------------------------------------------------
_A = np.arange(24, dtype=np.float32).reshape(4, 6) - 7.5


@pytest.mark.parametrize("make", [
    lambda: _A.T, lambda: _A[:, ::-2], lambda: _A[::-1, 1:5:3], lambda: np.asfortranarray(_A),
    lambda: np.broadcast_to(_A[1], (3, 6)),                    # zero strides
    lambda: np.lib.stride_tricks.as_strided(_A.reshape(-1), (5, 4), (8, 4)),  # overlapping rows
    lambda: _A.astype(">f4"), lambda: _A.astype(">i4"), lambda: _A[:, 1],
], ids=["T", "neg_step", "flip_slice", "fortran", "broadcast", "overlap", "big_endian", "big_endian_int", "column"])
def test_non_contiguous_numpy_arrays(make) -> None:
    src = make()
    before = np.array(src, copy=True)
    t = Tensor(src)
    same(t.numpy(), np.asarray(src).astype(t.dtype.np))
    same((t * 2).numpy(), (np.asarray(src) * 2).astype(t.dtype.np))
    same(np.asarray(src), before)                               # the input is not modified


def test_read_only_array_and_copy_semantics() -> None:
    ro = np.arange(5, dtype=np.float32)
    ro.setflags(write=False)
    t = Tensor(ro)
    same((t * 2 + 1).numpy(), ro * 2 + 1)
    out = t.numpy()
    out[0] = 99.0                                              # the result is the caller's to change
    assert t.numpy()[0] == 0.0
    w = np.ones(3, np.float32)
    tw = Tensor(w)
    w[:] = 7.0                                                  # changing the source afterwards
    same(tw.numpy(), [1.0, 1.0, 1.0])                           # does not change the tensor


# --- indices ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("idx, err, msg", [
    (5, IndexError, "index 5 is out of bounds for dim 0 with size 3"),
    (-4, IndexError, "index -4 is out of bounds"),
    (2**70, IndexError, "out of bounds"),
    (1.5, IndexError, "unsupported index 1.5"),
    ("a", IndexError, "unsupported index 'a'"),
    (True, IndexError, "bool indices are not supported"),
    ((0, 0), IndexError, r"too many indices \(2\) for tensor of shape \(3,\)"),
    ([0, 5], IndexError, "index 5 is out of bounds for dim 0 with size 3"),
    (np.array([-4, 1]), IndexError, "index -4 is out of bounds"),
    ([0.5], IndexError, "tensor indices must be integers"),
    (slice(None, None, 0), ValueError, "slice step cannot be zero"),
])
def test_bad_indices(idx, err, msg) -> None:
    with pytest.raises(err, match=msg):
        Tensor([1.0, 2.0, 3.0])[idx]


def test_index_tensor_out_of_bounds_is_checked_when_its_data_is_known() -> None:
    with pytest.raises(IndexError, match="index 7 is out of bounds"):
        Tensor([1.0, 2.0, 3.0])[Tensor([0, 7])]
    same(Tensor([1.0, 2.0, 3.0])[Tensor([0, -3, 2])].numpy(), [1.0, 1.0, 3.0])
    same(Tensor([1.0, 2.0])[::2**70].numpy(), [1.0])


# --- checkpoints -----------------------------------------------------------------------------------
try:  # checkpoint loading is written on another branch; these tests run once it is merged
    from lazygrad.nn import state
except ImportError:
    state = None


def _state_api():
    if state is None:
        pytest.skip("lazygrad.nn.state (checkpoint loading) is not in this tree yet")
    return state


def _good_checkpoint(path) -> None:
    _state_api().save_state_dict({"w": Tensor(np.arange(12, dtype=np.float32).reshape(3, 4)),
                                  "b": Tensor(np.ones(4, np.float32))}, path)


def _header_len_huge(p) -> None:
    p.write_bytes(struct.pack("<Q", 2**62) + b"{}")


def _header_not_json(p) -> None:
    p.write_bytes(struct.pack("<Q", 5) + b"\xff\xfe{[x")


def _offsets_past_end(p) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)


def _shape_mismatch(p) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 8]}}).encode()
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


def _bad_dtype(p) -> None:
    header = json.dumps({"w": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}).encode()
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


BAD_FILES = {
    "empty": lambda p: p.write_bytes(b""),
    "short": lambda p: p.write_bytes(b"\x01\x02\x03"),
    "random": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "json_text": lambda p: p.write_text(json.dumps({"w": [1, 2, 3]})),
    "npy": lambda p: np.save(open(p, "wb"), np.arange(10)),
    "header_len_huge": _header_len_huge,
    "header_not_json": _header_not_json,
    "offsets_past_end": _offsets_past_end,
    "shape_mismatch": _shape_mismatch,
    "bad_dtype": _bad_dtype,
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_not_a_safetensors_file(tmp_path, kind) -> None:
    st = _state_api()
    p = tmp_path / f"{kind}.safetensors"
    BAD_FILES[kind](p)
    with pytest.raises(ValueError) as ei:                       # CheckpointError is a ValueError
        st.load_state_dict(p)
    assert str(p) in str(ei.value) or p.name in str(ei.value)


@pytest.mark.parametrize("keep", [0.0, 0.05, 0.5, 0.9, 0.999])
def test_truncated_checkpoint(tmp_path, keep) -> None:
    st = _state_api()
    good = tmp_path / "good.safetensors"
    _good_checkpoint(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated|not a safetensors"):
        st.load_state_dict(bad)
    loaded = st.load_state_dict(good)                          # the intact file still loads
    same(loaded["w"].numpy(), np.arange(12, dtype=np.float32).reshape(3, 4))


def test_missing_checkpoint(tmp_path) -> None:
    st = _state_api()
    with pytest.raises(FileNotFoundError):
        st.load_state_dict(tmp_path / "nope.safetensors")
    os.mkdir(tmp_path / "dir.safetensors")
    with pytest.raises((FileNotFoundError, IsADirectoryError, ValueError)):
        st.load_state_dict(tmp_path / "dir.safetensors")
