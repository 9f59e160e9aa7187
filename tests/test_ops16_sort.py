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


def test_scan_errors():
    x = Tensor(_data((3, 4)))
    for op in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"):
        with pytest.raises(IndexError):
            getattr(x, op)(2)
