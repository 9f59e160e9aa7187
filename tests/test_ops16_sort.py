"""Issue 16, part B.2: cumulative ops and sorting, values and gradients against torch, kernel
counts (each scan / sort is one or two kernels, with its reason) and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _data(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


def _grad_check(lfn, tfn, a, rtol=1e-5, atol=1e-5):
    """Values of lfn(x) vs tfn(torch x), and the gradients of sum(out * w)."""
    x = Tensor(a, dtype=a.dtype.name, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    lo, to = lfn(x), tfn(tx)
    close(lo, to.detach().numpy(), rtol, atol)
    if to.numel():
        w = np.random.default_rng(5).standard_normal(tuple(to.shape)).astype(a.dtype)
        (lo * Tensor(w, dtype=a.dtype.name)).sum().backward()
        (to * torch.tensor(w)).sum().backward()
        close(x.grad, tx.grad.numpy(), rtol, atol)


SCAN_SHAPES = [((3, 6), 1), ((3, 6), 0), ((2, 3, 4), -1), ((2, 3, 4), -2), ((5,), 0), ((1, 1), 1), ((2, 0), 1),
               ((), 0)]


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("shape,dim", SCAN_SHAPES, ids=str)
def test_scans_match_torch(op, shape, dim):
    a = _data(shape)
    if op == "cumprod" and a.ndim == 2 and a.size > 2:
        a[0, 1] = 0.0          # one zero in a row
        a[-1, :2] = 0.0        # two zeros in a row (and in a column)
    _grad_check(lambda x: getattr(x, op)(dim), lambda x: getattr(x, op)(dim), a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("shape,dim", SCAN_SHAPES, ids=str)
def test_cummax_cummin_match_torch(op, shape, dim):
    a = np.round(_data(shape) * 2) / 2      # ties on purpose
    _grad_check(lambda x: getattr(x, op)(dim).values, lambda x: getattr(x, op)(dim).values, a)
    close(getattr(Tensor(a), op)(dim).indices, getattr(torch.tensor(a), op)(dim).indices.numpy())


def test_scans_special_values_and_dtypes():
    a = np.array([[1, 3, 3, 2, np.nan, 5, np.nan], [0, -np.inf, 2, np.inf, 7, 7, 1]], np.float32)
    for op in ("cummax", "cummin"):
        o, t = getattr(Tensor(a), op)(1), getattr(torch.tensor(a), op)(1)
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
        v, i = o                                        # a (values, indices) pair
        close(i, t.indices.numpy())
    b = np.array([-1000.0, 0.0, -np.inf, 3.0, np.inf], np.float32)
    close(Tensor(b).logcumsumexp(0), torch.tensor(b).logcumsumexp(0).numpy())
    close(Tensor(np.full(3, -np.inf, np.float32)).logcumsumexp(0), torch.full((3,), -np.inf).logcumsumexp(0).numpy())
    ints = np.array([[2, -3, 4], [1, 0, 5]], np.int32)
    for op in ("cumsum", "cumprod"):
        o, t = getattr(Tensor(ints), op)(1), getattr(torch.tensor(ints), op)(1)
        assert o.dtype.name == "int64" and t.dtype == torch.int64
        close(o, t.numpy())
    o, t = Tensor(ints).cummax(1), torch.tensor(ints).cummax(1)
    close(o.values, t.values.numpy())
    close(o.indices, t.indices.numpy())
    close(Tensor(ints).cummin(0).values, torch.tensor(ints).cummin(0).values.numpy())
    d = _data((3, 4), dtype=np.float64)
    _grad_check(lambda x: x.cumprod(1), lambda x: x.cumprod(1), d)
    _grad_check(lambda x: x.T.logcumsumexp(1), lambda x: x.T.logcumsumexp(1), _data((3, 4)), rtol=1e-4)
    close(Tensor(np.array(3, np.int32)).cumsum(0), torch.tensor(3, dtype=torch.int32).cumsum(0).numpy())


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"])
def test_each_scan_is_one_kernel(op):
    x = Tensor(_data((4, 16)))
    out = getattr(x, op)(1)
    outs = [out.values, out.indices] if op in ("cummax", "cummin") else [out]
    for o in outs:
        ks = lg.schedule(o)
        assert len(ks) == 1, ks
        assert ks[0].reason == "user realize"


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocked scans at toy sizes: rows past 8 elements go in blocks of 4, so a row of 50 runs
    three levels (50 -> 13 -> 4 -> direct) and every padding and carry path is exercised."""
    from lazygrad.frontend import scan
    monkeypatch.setattr(scan, "DIRECT_MAX", 8)
    monkeypatch.setattr(scan, "BLOCK", 4)


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("shape,dim", [((3, 50), 1), ((50, 2), 0), ((2, 3, 17), -1), ((9,), 0)], ids=str)
def test_blocked_scans_match_torch(small_blocks, op, shape, dim):
    a = _data(shape, seed=3)
    if op == "cumprod":
        a = (0.2 * a + 1.0).astype(np.float32)   # a product of 50 factors stays in range
        a.reshape(-1)[[i for i in (5, 11, 12) if i < a.size]] = 0.0   # zeros in the first and later blocks
    _grad_check(lambda x: getattr(x, op)(dim), lambda x: getattr(x, op)(dim), a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("shape,dim", [((3, 50), 1), ((50, 2), 0), ((2, 3, 17), -1)], ids=str)
def test_blocked_cummax_cummin_match_torch(small_blocks, op, shape, dim):
    a = np.round(_data(shape, seed=4) * 2) / 2   # ties across block edges on purpose
    _grad_check(lambda x: getattr(x, op)(dim).values, lambda x: getattr(x, op)(dim).values, a)
    close(getattr(Tensor(a), op)(dim).indices, getattr(torch.tensor(a), op)(dim).indices.numpy())


def test_blocked_scans_special_values_and_ints(small_blocks):
    a = _data((2, 30), seed=6)
    a[0, [3, 17]] = np.nan                        # NaN in the first and a later block
    a[1, 9:14] = np.inf
    a[1, 20] = -np.inf
    for op in ("cummax", "cummin"):
        o, t = getattr(Tensor(a), op)(1), getattr(torch.tensor(a), op)(1)
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
    for op in ("cumsum", "logcumsumexp"):
        close(getattr(Tensor(a), op)(1), getattr(torch.tensor(a), op)(1).numpy())
    b = np.full(20, -np.inf, np.float32)
    b[13] = 0.5
    close(Tensor(b).logcumsumexp(0), torch.tensor(b).logcumsumexp(0).numpy())
    ints = np.random.default_rng(7).integers(-3, 4, (2, 27)).astype(np.int32)
    for op in ("cumsum", "cumprod"):
        o, t = getattr(Tensor(ints), op)(1), getattr(torch.tensor(ints), op)(1)
        assert o.dtype.name == "int64"
        close(o, t.numpy())
    for op in ("cummax", "cummin"):
        o, t = getattr(Tensor(ints), op)(1), getattr(torch.tensor(ints), op)(1)
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
    u = np.random.default_rng(8).integers(0, 5, 23).astype(np.uint8)
    o, t = Tensor(u).cummin(0), torch.tensor(u).cummin(0)
    close(o.values, t.values.numpy())
    close(o.indices, t.indices.numpy())


def test_long_rows_are_blocked_not_quadratic():
    """At real sizes: a row of 3,000 is scanned in blocks (a few kernels, each named by its
    reason), with torch's values, indices and gradient; the masked square of a direct scan
    would be 9M selects per row, the blocks are 3,000 x 32."""
    from lazygrad.frontend import scan
    n = 3000
    assert n > scan.DIRECT_MAX
    a = np.round(_data((2, n), seed=9) * 4) / 4
    _grad_check(lambda x: x.cumsum(1), lambda x: x.cumsum(1), a, rtol=1e-4, atol=2e-4)
    o, t = Tensor(a).cummax(1), torch.tensor(a).cummax(1)
    close(o.values, t.values.numpy())
    close(o.indices, t.indices.numpy())
    ks = lg.schedule(Tensor(a).cumsum(1))
    assert 2 <= len(ks) <= 4, ks
    # no kernel reduces over the square: every reduction's rows are one block (or the totals)
    # (the direct scan's one kernel: about 4 flops per element of the 2 x 3000 x 3000 square)
    assert all(k.rendered.flops < 2 * n * n / 4 for k in ks), [(k.name, k.rendered.flops) for k in ks]
    assert all(k.reason for k in ks)


def test_scan_errors():
    x = Tensor(_data((3, 4)))
    for op in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"):
        with pytest.raises(IndexError):
            getattr(x, op)(2)


# --- sort / argsort / topk --------------------------------------------------------------------------
SORT_SHAPES = [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 1), ((9,), 0), ((1, 1), 1), ((3, 0), 1), ((0, 3), 1)]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape,dim", SORT_SHAPES, ids=str)
def test_sort_matches_torch(shape, dim, descending):
    a = np.round(_data(shape) * 2) / 2            # ties: torch's stable order
    _grad_check(lambda x: x.sort(dim, descending).values,
                lambda x: x.sort(dim=dim, descending=descending, stable=True).values, a)
    want = torch.tensor(a).sort(dim=dim, descending=descending, stable=True).indices.numpy()
    close(Tensor(a).sort(dim, descending).indices, want)
    close(Tensor(a).argsort(dim, descending), want)


def test_sort_special_values_dtypes_and_views():
    a = np.array([[3, 1, np.nan, 2, 1, -0.0, 0.0, -np.inf, np.inf, np.nan]], np.float32)
    for desc in (False, True):
        o, t = Tensor(a).sort(-1, descending=desc), torch.tensor(a).sort(dim=-1, descending=desc, stable=True)
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
        assert np.array_equal(np.signbit(o.values.numpy()), np.signbit(t.values.numpy()))
    for dtype in (np.int32, np.int64, np.float64):
        b = _data((3, 8), 2, dtype)
        o, t = Tensor(b, dtype=np.dtype(dtype).name).sort(1), torch.tensor(b).sort(dim=1, stable=True)
        assert o.values.dtype.name == np.dtype(dtype).name
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
    m = np.array([True, False, True, False])
    close(Tensor(m).sort(0).values, torch.tensor(m).sort(stable=True).values.numpy())
    close(Tensor(np.array(2.5, np.float32)).sort().values, np.float32(2.5))
    c = _data((5, 6))
    _grad_check(lambda x: x.T.sort(1).values * 2, lambda x: x.T.sort(dim=1, stable=True).values * 2, c)
    _grad_check(lambda x: (x * 3).sort(0, True).values.exp(), lambda x: (x * 3).sort(dim=0, descending=True).values.exp(), c,
                rtol=1e-4)


@pytest.mark.parametrize("k,dim,largest", [(3, 1, True), (1, 0, False), (7, -1, True), (0, 1, True), (2, -2, False)])
def test_topk_matches_torch(k, dim, largest):
    a = _data((4, 7))                             # no ties: torch's order of tied values is its own
    _grad_check(lambda x: x.topk(k, dim, largest).values, lambda x: x.topk(k, dim, largest).values, a)
    close(Tensor(a).topk(k, dim, largest).indices, torch.tensor(a).topk(k, dim, largest).indices.numpy())
    v, i = Tensor(a).topk(k, dim, largest, sorted=False)
    close(v, torch.tensor(a).topk(k, dim, largest).values.numpy())


@pytest.fixture
def small_merge(monkeypatch):
    """Merge sort at toy sizes: rows past 8 are rank-counted in blocks of 4 and merged, so a row
    of 37 runs 4 merge levels with a short last run and a run without a partner."""
    from lazygrad.ir import graph as sorting
    monkeypatch.setattr(sorting, "MERGE_FROM", 8)
    monkeypatch.setattr(sorting, "MERGE_BLOCK", 4)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape,dim", [((3, 37), 1), ((37, 2), 0), ((2, 3, 16), -1), ((9,), 0)], ids=str)
def test_merge_sort_matches_torch(small_merge, shape, dim, descending):
    a = np.round(_data(shape, seed=11) * 2) / 2            # ties: torch's stable order
    _grad_check(lambda x: x.sort(dim, descending).values,
                lambda x: x.sort(dim=dim, descending=descending, stable=True).values, a)
    want = torch.tensor(a).sort(dim=dim, descending=descending, stable=True).indices.numpy()
    close(Tensor(a).sort(dim, descending).indices, want)
    close(Tensor(a).argsort(dim, descending), want)
    t = Tensor(a).topk(3, dim, largest=not descending)
    tt = torch.tensor(a).topk(3, dim, largest=not descending)
    close(t.values, tt.values.numpy())


@pytest.mark.parametrize("descending", [False, True])
def test_merge_sort_special_values_and_dtypes(small_merge, descending):
    a = np.round(_data((2, 30), seed=12) * 2) / 2
    a[0, [3, 17, 25]] = np.nan
    a[1, [4, 20]] = -0.0
    a[1, [9, 10]] = np.inf
    a[0, 11] = -np.inf
    o = Tensor(a).sort(1, descending)
    t = torch.tensor(a).sort(dim=1, descending=descending, stable=True)
    close(o.values, t.values.numpy())
    close(o.indices, t.indices.numpy())
    rng = np.random.default_rng(13)
    for dtype, lo, hi in ((np.int32, -2**31, 2**31 - 1), (np.int16, -5, 5), (np.uint8, 0, 255), (np.int8, -3, 3)):
        ints = rng.integers(lo, hi, (3, 21), dtype=np.int64).astype(dtype)
        ints[0, :2] = [lo, hi]                              # the dtype's extremes
        o = Tensor(ints).sort(1, descending)
        t = torch.tensor(ints).sort(dim=1, descending=descending, stable=True)
        close(o.values, t.values.numpy())
        close(o.indices, t.indices.numpy())
    u = np.array([0, 2**32 - 1, 2**31, 2**31 - 1, 7, 7, 1, 0, 2**32 - 2, 5, 3], np.uint32)
    got = Tensor(u).argsort(0, descending)
    close(got, np.argsort(-u.astype(np.int64) if descending else u, kind="stable"))
    bools = rng.integers(0, 2, 19).astype(bool)
    close(Tensor(bools).sort(0, descending).indices,
          torch.tensor(bools).sort(dim=0, descending=descending, stable=True).indices.numpy())


def test_long_rows_are_merge_sorted():
    """At real sizes: a row of 5,000 is rank-counted in blocks and merged (log2(5000/256) levels,
    each a sort kernel with its reason), equal to torch; float64 keys keep the rank count."""
    from lazygrad.ir import graph as sorting
    n = 5000
    assert n > sorting.MERGE_FROM
    a = np.round(_data((2, n), seed=14) * 8) / 8
    o, t = Tensor(a).sort(1), torch.tensor(a).sort(dim=1, stable=True)
    close(o.values, t.values.numpy())
    close(o.indices, t.indices.numpy())
    ks = lg.schedule(Tensor(a).argsort(1))
    sorts = [k for k in ks if k.kind == "sort"]
    levels = (-(-n // sorting.MERGE_BLOCK) - 1).bit_length()     # 20 blocks: 5 merge levels
    assert len(sorts) == 1 + levels, [k.name for k in ks]
    assert all(k.reason.startswith("sort: ") for k in sorts[:-1]), [k.reason for k in ks]
    assert max(k.rendered.flops for k in ks) < 2 * n * n / 8      # no kernel is O(n^2) over the row
    assert len([k for k in lg.schedule(Tensor(a.astype(np.float64)).argsort(1)) if k.kind == "sort"]) == 1


def test_sort_is_its_own_kernel_with_a_reason():
    x = Tensor(_data((8, 33)))
    ks = lg.schedule(x.sort(1).values)
    assert [k.kind for k in ks] == ["sort"]
    ks = lg.schedule((x * 2 + 1).sort(1).values.exp())
    assert [k.kind for k in ks] == ["elementwise", "sort", "elementwise"]
    assert ks[0].reason.startswith("sort input is computed")
    assert ks[1].reason.startswith("sort: a rank-counting kernel")
    ks = lg.schedule(x.T.sort(1).indices)
    assert [k.kind for k in ks] == ["elementwise", "sort"] and "permute view" in ks[0].reason
    t = x.topk(3, 1)
    assert len(lg.schedule(t.values)) == 2        # the sort, then the first k copied out


def test_sort_unfused_and_lazy_inputs_match(monkeypatch):
    a = _data((6, 5))
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    s = (Tensor(a) * 2).T.sort(1, descending=True)
    close(s.values, -np.sort(-(a * 2).T, 1))
    close(s.indices, np.argsort(-(a * 2).T, 1, kind="stable"))


def test_sort_topk_errors():
    x = Tensor(_data((3, 4)))
    with pytest.raises(IndexError):
        x.sort(2)
    with pytest.raises(ValueError, match="k must be"):
        x.topk(5)
    with pytest.raises(ValueError, match="k must be"):
        x.topk(-1)
