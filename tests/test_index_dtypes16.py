"""Issue 16's last two gaps against torch 2.13, from tables.

1. Every op that returns indices returns int64 like torch (argmax/argmin, max/min(dim),
   sort/argsort/topk, cummax/cummin, nonzero, the max pools' return_indices, one_hot, an
   integer arange): one `Case` per op, checked for dtype and values on a contiguous input, a
   non-contiguous view (a transpose and a strided slice) and negative dims; then the indices
   feed back into gather, index_select, scatter, advanced indexing, max_unpool2d, and the
   consumers of indices accept int32 and int64 alike.
2. torch.result_type's weights: a tensor with dims, a 0-d tensor and a Python scalar, over every
   pair of dtypes and kinds, for `lg.dtypes.result_type` and for the binary ops and `where` that
   use it, plus the values of a few mixed ops.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.dtypes import DTYPES, Weight, result_type

F = lg.nn.functional
ALL = tuple(DTYPES)
DEVICE_ALL = tuple(d for d in ALL if lg.device().supports(DTYPES[d]))
TORCH_DT = {n: (torch.bool if n == "bool" else getattr(torch, n)) for n in ALL}


def _tdtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


# --- 1. index results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """An op returning indices: the lazygrad call and torch's, each on its own library's input."""

    name: str
    lg_fn: Callable
    torch_fn: Callable
    shape: tuple[int, ...] = (3, 4, 5)
    ties: bool = False  # small integer values, so that ties decide (first / last index rules)


def _idx(r):  # the indices of a (values, indices) named tuple
    return r.indices if hasattr(r, "indices") else r[1]


CASES = [
    Case("argmax_last", lambda x: x.argmax(-1), lambda x: x.argmax(-1), ties=True),
    Case("argmax_flat", lambda x: x.argmax(), lambda x: x.argmax(), ties=True),
    Case("argmax_keepdim", lambda x: x.argmax(0, keepdim=True), lambda x: x.argmax(0, keepdim=True), ties=True),
    Case("argmin_neg2", lambda x: x.argmin(dim=-2), lambda x: x.argmin(dim=-2), ties=True),
    Case("lg_argmax", lambda x: lg.argmax(x, 1), lambda x: torch.argmax(x, 1)),
    Case("max_dim", lambda x: x.max(-1).indices, lambda x: x.max(-1).indices, ties=True),
    Case("min_dim_keepdim", lambda x: x.min(1, keepdim=True).indices, lambda x: x.min(1, keepdim=True).indices, ties=True),
    Case("max_dim_unpacked", lambda x: x.max(dim=-3)[1], lambda x: x.max(dim=-3)[1]),
    Case("sort", lambda x: x.sort(-1).indices, lambda x: x.sort(dim=-1, stable=True).indices, ties=True),
    Case("sort_desc_dim0", lambda x: x.sort(0, descending=True)[1], lambda x: x.sort(dim=0, descending=True, stable=True)[1], ties=True),
    Case("argsort", lambda x: x.argsort(-2), lambda x: x.argsort(dim=-2, stable=True), ties=True),
    Case("topk", lambda x: x.topk(2, -1).indices, lambda x: x.topk(2, -1).indices),
    Case("topk_smallest", lambda x: x.topk(3, 0, largest=False)[1], lambda x: x.topk(3, 0, largest=False)[1]),
    Case("cummax", lambda x: x.cummax(-1).indices, lambda x: x.cummax(-1).indices, ties=True),
    Case("cummin", lambda x: x.cummin(0)[1], lambda x: x.cummin(0)[1], ties=True),
    Case("nonzero", lambda x: (x > 0).nonzero(), lambda x: (x > 0).nonzero()),
    Case("nonzero_tuple", lambda x: (x > 0).nonzero(as_tuple=True)[-1], lambda x: (x > 0).nonzero(as_tuple=True)[-1]),
    Case("max_pool1d", lambda x: F.max_pool1d(x, 2, return_indices=True)[1],
         lambda x: TF.max_pool1d(x, 2, return_indices=True)[1]),
    Case("max_pool2d", lambda x: F.max_pool2d(x, 2, 1, return_indices=True)[1],
         lambda x: TF.max_pool2d(x, 2, 1, return_indices=True)[1], shape=(2, 3, 4, 5)),
    Case("max_pool2d_ceil", lambda x: F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)[1],
         lambda x: TF.max_pool2d(x, 2, ceil_mode=True, return_indices=True)[1], shape=(1, 2, 5, 5)),
    Case("max_pool3d", lambda x: F.max_pool3d(x, 2, return_indices=True)[1],
         lambda x: TF.max_pool3d(x, 2, return_indices=True)[1], shape=(1, 2, 4, 4, 4)),
    Case("adaptive_max_pool1d", lambda x: F.adaptive_max_pool1d(x, 3, return_indices=True)[1],
         lambda x: TF.adaptive_max_pool1d(x, 3, return_indices=True)[1]),
    Case("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (2, 3), return_indices=True)[1],
         lambda x: TF.adaptive_max_pool2d(x, (2, 3), return_indices=True)[1], shape=(2, 3, 4, 5)),
    Case("one_hot", lambda x: F.one_hot((x.abs() * 2).int(), 8), lambda x: TF.one_hot((x.abs() * 2).long(), 8), ties=True),
]


def _inputs(case: Case, rng: np.random.Generator, layout: str) -> tuple[Tensor, torch.Tensor]:
    """The case's input in a layout: contiguous, a transpose of the first and last dims, or a
    strided slice (every other element of a dim twice as long)."""
    shape = case.shape
    if layout == "transposed":
        shape = shape[-1:] + shape[1:-1] + shape[:1]
    elif layout == "strided":
        shape = shape[:-1] + (2 * shape[-1],)
    a = (rng.integers(-2, 3, size=shape) if case.ties else rng.permutation(int(np.prod(shape))).reshape(shape) - 7)
    a = a.astype(np.float32)
    x, t = Tensor(a), torch.tensor(a)
    if layout == "transposed":
        x, t = x.transpose(0, -1), t.transpose(0, -1)
    elif layout == "strided":
        x, t = x[..., ::2], t[..., ::2]
    assert tuple(x.shape) == tuple(t.shape) == case.shape
    return x, t


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_index_results_are_int64_like_torch(case: Case, layout: str) -> None:
    x, t = _inputs(case, np.random.default_rng(16), layout)
    got, want = case.lg_fn(x), case.torch_fn(t)
    assert got.dtype.name == _tdtype(want) == "int64"
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert got.numpy().dtype == np.int64


def test_integer_arange_is_int64_and_float_arange_float32_like_torch() -> None:
    for args in ((5,), (2, 9, 3), (5, 0, -1), (-3, 3), (0,)):
        got, want = lg.arange(*args), torch.arange(*args)
        assert got.dtype.name == _tdtype(want) == "int64"
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert lg.arange(0.5, 2).dtype is lg.float32 and lg.arange(3, dtype=lg.int32).dtype is lg.int32
    big = lg.arange(2**31 + 5, 2**31 + 8)  # beyond int32: still exact
    np.testing.assert_array_equal(big.numpy(), torch.arange(2**31 + 5, 2**31 + 8).numpy())


def test_index_results_of_empty_and_0d_inputs_are_int64_like_torch() -> None:
    z = Tensor(np.zeros((0, 3), np.float32))
    for got, want in ((Tensor(2.0).argmax(), torch.tensor(2.0).argmax()),
                      (Tensor(2.0).sort().indices, torch.tensor(2.0).sort().indices),
                      (z.cummax(0).indices, torch.zeros(0, 3).cummax(0).indices),
                      (z.nonzero(), torch.zeros(0, 3).nonzero()),
                      (z.argsort(0), torch.zeros(0, 3).argsort(0))):
        assert got.dtype.name == _tdtype(want) == "int64"
        assert got.shape == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_index_results_feed_back_into_gather_index_select_and_indexing() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x, t = Tensor(a), torch.tensor(a)
    checks = [
        (x.gather(1, x.argmax(1, keepdim=True)), t.gather(1, t.argmax(1, keepdim=True))),
        (x.gather(-1, x.argsort(-1)), t.gather(-1, t.argsort(-1))),
        (x.gather(0, x.topk(2, 0).indices), t.gather(0, t.topk(2, 0).indices)),
        (x.index_select(1, x[0].argsort()), t.index_select(1, t[0].argsort())),
        (x[lg.arange(4), x.argmin(1)], t[torch.arange(4), t.argmin(1)]),
        (x[(x > 0).nonzero(as_tuple=True)], t[(t > 0).nonzero(as_tuple=True)]),
        (x[:, x.max(1).indices], t[:, t.max(1).indices]),
        (Tensor.zeros(4, 6).scatter(1, x.argmax(1, keepdim=True), Tensor.ones(4, 1)),
         torch.zeros(4, 6).scatter(1, t.argmax(1, keepdim=True), torch.ones(4, 1))),
        (x.cummax(1).indices + 1, t.cummax(1).indices + 1),  # int64 + a scalar stays int64
    ]
    for got, want in checks:
        assert got.dtype.name == _tdtype(want)
        np.testing.assert_allclose(got.numpy(), want.numpy())
    p = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    v, i = F.max_pool2d(Tensor(p), 2, return_indices=True)
    tv, ti = TF.max_pool2d(torch.tensor(p), 2, return_indices=True)
    np.testing.assert_allclose(F.max_unpool2d(v, i, 2).numpy(), TF.max_unpool2d(tv, ti, 2).numpy())


@pytest.mark.parametrize("idx_dtype", ["int32", "int64"])
def test_index_consumers_accept_int32_and_int64(idx_dtype: str) -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x, t = Tensor(a), torch.tensor(a)
    ih = np.array([[5, 0, 2], [1, 1, 3], [0, 4, 5], [2, 2, 2]])
    li, ti = Tensor(ih, dtype=getattr(lg, idx_dtype)), torch.tensor(ih, dtype=getattr(torch, idx_dtype))
    tl = torch.tensor(ih)  # torch's scatter and embedding want int64
    assert li.dtype.name == idx_dtype
    checks = [
        (x.gather(1, li), t.gather(1, tl)),
        (x.index_select(1, li[0]), t.index_select(1, ti[0])),
        (x.T[li[:, 0]], t.T[ti[:, 0]]),
        (x[li[:, 1] % 4, li[:, 2]], t[ti[:, 1] % 4, ti[:, 2]]),
        (Tensor.zeros(4, 6).scatter(1, li, Tensor.ones(4, 3)), torch.zeros(4, 6).scatter(1, tl, torch.ones(4, 3))),
        (Tensor.zeros(4, 6).scatter_add(1, li, Tensor.ones(4, 3)),
         torch.zeros(4, 6).scatter_add(1, tl, torch.ones(4, 3))),
        (F.embedding(li, x.T), TF.embedding(tl, t.T)),
        (F.one_hot(li, 6), TF.one_hot(tl, 6)),
        (F.cross_entropy(x, li[:, 0]), TF.cross_entropy(t, tl[:, 0])),
        (F.nll_loss(x.log_softmax(1), li[:, 1]), TF.nll_loss(t.log_softmax(1), tl[:, 1])),
    ]
    for got, want in checks:
        assert got.dtype.name == _tdtype(want)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    p = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    v, i = F.max_pool2d(Tensor(p), 2, return_indices=True)
    tv, tix = TF.max_pool2d(torch.tensor(p), 2, return_indices=True)
    np.testing.assert_allclose(F.max_unpool2d(v, i.cast(getattr(lg, idx_dtype)), 2).numpy(),
                               TF.max_unpool2d(tv, tix, 2).numpy())


def test_index_kernels_count_in_int_and_store_long() -> None:
    """Only the stored dtype is int64: argmax's kernel counts positions in int, and a max pool
    that only returns values reads no long at all."""
    x = Tensor(np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32))
    (k,) = lg.schedule(x.argmax(1))
    body = k.source.split("{", 1)[1]
    assert "__global long* restrict buf0" in k.source
    assert body.count("long") == 2, body  # one cast of the counted position, at the store
    pool = lg.schedule(F.max_pool2d(x.reshape(1, 1, 8, 16), 2))
    assert all("long" not in k.source for k in pool)


# --- 2. promotion with 0-d tensors and Python scalars ----------------------------------------------
SCALARS = {"bool": True, "int": 3, "float": 2.5}
KINDS = ("tensor", "0d")


def _torch_operand(dtype: str, kind: str) -> torch.Tensor:
    return torch.ones(2, dtype=TORCH_DT[dtype]) if kind == "tensor" else torch.tensor(1, dtype=TORCH_DT[dtype])


def _lg_operand(dtype: str, kind: str) -> Tensor:
    return Tensor.ones(2, dtype=DTYPES[dtype]) if kind == "tensor" else Tensor.ones((), dtype=DTYPES[dtype])


WEIGHT = {"tensor": Weight.TENSOR, "0d": Weight.ZERO_DIM}
PAIRS = [(a, ka, b, kb) for a, ka in itertools.product(ALL, KINDS) for b, kb in itertools.product(ALL, KINDS)]


def _torch_result(x, y) -> str | None:
    try:
        return _tdtype(torch.empty(0, dtype=torch.result_type(x, y)))
    except (RuntimeError, TypeError):
        return None  # torch does not promote this pair (uint32 with a signed int)


@pytest.mark.parametrize("a, ka, b, kb", PAIRS)
def test_result_type_of_two_tensors_is_torchs(a: str, ka: str, b: str, kb: str) -> None:
    want = _torch_result(_torch_operand(a, ka), _torch_operand(b, kb))
    got = result_type((DTYPES[a], WEIGHT[ka]), (DTYPES[b], WEIGHT[kb]))
    if want is None:
        # uint32 with bool or a signed int, which torch refuses to join: of one weight the
        # lattice's join (numpy's); else the heavier operand's dtype unless the lighter is of a
        # higher kind (the rule torch applies to every pair it promotes)
        heavy, light = (DTYPES[a], DTYPES[b]) if WEIGHT[ka].value <= WEIGHT[kb].value else (DTYPES[b], DTYPES[a])
        assert got is (lg.dtypes.promote(heavy, light) if ka == kb else
                       light if light.kind.value > heavy.kind.value else heavy)
        return
    assert got.name == want
    if a in DEVICE_ALL and b in DEVICE_ALL:  # and the ops promote through it
        x, y = _lg_operand(a, ka), _lg_operand(b, kb)
        assert (x * y).dtype.name == want and (y * x).dtype.name == want
        assert Tensor.where(Tensor([True, False]), x, y).dtype.name == want


@pytest.mark.parametrize("a, ka, s", [(a, k, s) for a in ALL for k in KINDS for s in SCALARS])
def test_result_type_with_a_python_scalar_is_torchs(a: str, ka: str, s: str) -> None:
    v = SCALARS[s]
    want = _torch_result(_torch_operand(a, ka), v)
    got = result_type((DTYPES[a], WEIGHT[ka]), (lg.dtypes.scalar_dtype(v), Weight.SCALAR))
    assert want is not None and got.name == want
    if a in DEVICE_ALL:
        x = _lg_operand(a, ka)
        assert (x * v).dtype.name == want and (v * x).dtype.name == want
        if s != "bool":
            assert (x + v).dtype.name == want
        assert Tensor.where(Tensor([True, False]), x, v).dtype.name == _tdtype(
            torch.where(torch.tensor([True, False]), _torch_operand(a, ka), v))


def test_result_type_of_three_weights_is_torchs() -> None:
    # every weight at once (torch.result_type takes two; a tensor, a 0-d one and a scalar meet
    # in where(c, x, 0-d) + scalar and in torch's own three-way state)
    for a, b, s in itertools.product(("bool", "uint8", "int32", "int64", "float32"), ("bool", "int16", "float64"),
                                     SCALARS):
        # torch's (x + 0-d) + scalar takes two binary steps, the first giving a tensor with
        # dims; the kinds are ordered, so one step over the three weights agrees with it
        want = _tdtype((torch.ones(2, dtype=TORCH_DT[a]) + torch.tensor(1, dtype=TORCH_DT[b])) + SCALARS[s])
        got = result_type((DTYPES[a], Weight.TENSOR), (DTYPES[b], Weight.ZERO_DIM),
                          (lg.dtypes.scalar_dtype(SCALARS[s]), Weight.SCALAR))
        assert got.name == want, (a, b, s)


def test_values_of_mixed_ops_match_torch() -> None:
    a = np.array([250, 3, 7, 0], np.uint8)
    f = np.array([1.5, -2.25, 3.0, 0.5], np.float32)
    i = np.array([7, -3, 2**30, -5], np.int32)
    cases = [
        (lambda m, x: x + m.tensor(10, dtype=m.int64), a),       # uint8 with a 0-d int64: wraps in uint8
        (lambda m, x: x * m.tensor(3.0, dtype=m.float64), f),    # float32 with a 0-d float64: float32
        (lambda m, x: x + m.tensor(2**31 - 1, dtype=m.int64), i),  # int32 with a 0-d int64: wraps in int32
        (lambda m, x: x / m.tensor(4, dtype=m.int64), i),
        (lambda m, x: (x > 0) + m.tensor(5, dtype=m.int64), f),  # bool with a 0-d int64: int64
        (lambda m, x: (x > 0) * 3, f),                           # bool with an int scalar: int64
        (lambda m, x: x * m.tensor(True), a),
        (lambda m, x: m.where(x > 1, x, m.tensor(-1.0, dtype=m.float64)), f),
        (lambda m, x: m.maximum(x, m.tensor(2, dtype=m.int16)), i),
    ]
    for k, (fn, v) in enumerate(cases):
        got, want = fn(lg, Tensor(v, dtype=lg.dtypes.as_dtype(v.dtype))), fn(torch, torch.tensor(v))
        assert got.dtype.name == _tdtype(want), k
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=str(k))


def test_a_device_without_64_bit_integers_refuses_index_results_with_a_clear_error(monkeypatch) -> None:
    """An OpenCL embedded-profile device may lack cles_khr_int64: the int64 indices are then
    refused when the plan is built, naming the op, as float64 is without fp64."""
    import dataclasses
    dev = lg.device()
    monkeypatch.setattr(dev, "caps", dataclasses.replace(dev.caps, int64=False))
    assert not dev.supports(lg.int64) and dev.supports(lg.int32)
    x = Tensor(np.arange(7 * 13, dtype=np.float32).reshape(7, 13))  # a shape of its own: no cached plan
    with pytest.raises(TypeError, match="does not support int64"):
        x.argmax(1).numpy()
    np.testing.assert_array_equal(x.amax(1).numpy(), x.numpy().max(1))  # the rest still runs
