"""Everyday Python on tensors, against torch: repr/str show values, format specs, deepcopy and
pickling of tensors, state dicts and whole modules."""
from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
X = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)


# --- repr / str --------------------------------------------------------------------------------
def test_repr_shows_values_shape_dtype_like_torch():
    t = Tensor(X, requires_grad=True)
    r = repr(t)
    assert r == ("Tensor([[1., 2.],\n        [3., 4.]], shape=(2, 2), dtype=lg.float32, requires_grad=True)")
    # torch prints the same numbers on the same rows
    tr = repr(torch.tensor(X, requires_grad=True))
    assert r.split("], shape")[0].replace("Tensor(", "") == tr.split("], requires")[0].replace("tensor(", "")
    assert str(t) == r


def test_repr_of_a_lazy_tensor_realizes_it_and_shows_the_computed_values():
    y = Tensor(X) * 2 + 1
    assert y.node.realized is None
    assert "[[3., 5.]," in repr(y) and "[7., 9.]]" in repr(y)
    assert y.node.realized is not None


@pytest.mark.parametrize("make, expect", [
    (lambda: Tensor(3), "Tensor(3, shape=(), dtype=lg.int32)"),
    (lambda: Tensor([True, False]), "Tensor([ True, False], shape=(2,), dtype=lg.bool)"),
    (lambda: Tensor.zeros(0, 3), "Tensor([], shape=(0, 3), dtype=lg.float32)"),
])
def test_repr_scalars_bools_empty(make, expect):
    assert repr(make()) == expect


def test_repr_summarises_big_tensors_like_torch():
    r = repr(Tensor.arange(2000))
    tr = repr(torch.arange(2000))
    assert "..." in r and "..." in tr
    # the same values kept at each end (torch's edgeitems=3)
    for v in ("0", "1", "2", "1997", "1998", "1999"):
        assert v in r
    assert "1996" not in r and "1996" not in tr


def test_lazy_repr_runs_nothing():
    x = Tensor(X)
    y = (x * 3).exp()
    before = lg.counters.kernels_launched
    assert y.lazy_repr() == "<Tensor shape=(2, 2) dtype=lg.float32 lazy exp>"
    with lg.config.override(lazy_repr=True):
        assert repr(y) == str(y) == y.lazy_repr()
    assert lg.counters.kernels_launched == before and y.node.realized is None
    # a small realized tensor shows its values (reading a buffer runs no kernel)
    assert x.lazy_repr() == repr(x)


def test_lazy_repr_setting_from_the_environment():
    code = ("import lazygrad as lg; y = lg.Tensor([1.0, 2.0]) + 1; print(repr(y)); "
            "print(lg.counters.kernels_launched)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**__import__("os").environ, "LAZYGRAD_LAZY_REPR": "1",
                              "PYTHONPATH": str(ROOT)}).stdout.splitlines()
    assert out == ["<Tensor shape=(2,) dtype=lg.float32 lazy add>", "0"]


# --- format ------------------------------------------------------------------------------------
def test_format_one_element_like_torch_scalar():
    loss = (Tensor(X) * Tensor(X)).mean()
    assert f"{loss:.4f}" == f"{torch.tensor(X).square().mean():.4f}" == "7.5000"
    assert f"{Tensor(7):>5d}" == f"{torch.tensor(7):>5d}"
    # lazygrad also formats one-element tensors of any rank (torch only 0-d)
    assert f"{Tensor([[2.5]]):.2f}" == "2.50"


def test_format_of_other_tensors_follows_torch():
    t = Tensor([1.0, 2.0])
    assert f"{t}" == str(t) and format(t, "") == str(t)
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{torch.tensor([1.0, 2.0]):.2f}"
    with pytest.raises(TypeError, match=r"unsupported format string.*shape \(2,\)"):
        f"{t:.2f}"


# --- deepcopy and pickle -----------------------------------------------------------------------
def test_deepcopy_of_a_leaf_copies_values_requires_grad_and_grad():
    x, tx = Tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    y, ty = copy.deepcopy(x), copy.deepcopy(tx)
    assert y is not x and y.node is not x.node
    assert y.requires_grad == ty.requires_grad and y.is_leaf == ty.is_leaf
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(y.grad.numpy(), ty.grad.numpy())
    x.assign(Tensor.zeros(2, 2))  # the copy does not follow the original
    np.testing.assert_array_equal(y.numpy(), X)


def test_deepcopy_of_a_computed_tensor_raises_like_torch():
    tx = torch.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(tx * 2)
    x = Tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)
    np.testing.assert_array_equal(copy.deepcopy((x * 2).detach()).numpy(), X * 2)


@pytest.mark.parametrize("dtype", [lg.float32, lg.int32, lg.int64, lg.bool])
def test_pickle_round_trip_keeps_values_and_dtype(dtype):
    t = (Tensor(X) * 3).cast(dtype)  # lazy: pickling realizes it
    u = pickle.loads(pickle.dumps(t))
    assert u.dtype == dtype and u.shape == t.shape
    np.testing.assert_array_equal(u.numpy(), t.numpy())


def test_pickle_like_torch_keeps_requires_grad_drops_grad_and_graph():
    x, tx = Tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    for a, ta in ((x, tx), (x * 2, tx * 2)):
        u, tu = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(ta))
        assert (u.requires_grad, u.is_leaf, u.grad is None) == (tu.requires_grad, tu.is_leaf, tu.grad is None)
        np.testing.assert_array_equal(u.numpy(), tu.detach().numpy())


def _model() -> nn.Module:
    lg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_pickle_and_deepcopy_of_a_state_dict():
    m = _model()
    sd = m.state_dict()
    for copied in (pickle.loads(pickle.dumps(sd)), copy.deepcopy(sd)):
        assert list(copied) == list(sd)
        for k in sd:
            assert copied[k].dtype == sd[k].dtype
            np.testing.assert_array_equal(copied[k].numpy(), sd[k].numpy())
        fresh = _model()
        for p in fresh.parameters():
            p.assign(Tensor.zeros(*p.shape))
        fresh.load_state_dict(copied)
        x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
        m.eval(), fresh.eval()
        np.testing.assert_array_equal(fresh(x).numpy(), m(x).numpy())


def test_deepcopy_and_pickle_of_a_module_are_independent_models():
    m = _model()
    x = Tensor(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32))
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert [n for n, _ in c.named_parameters()] == [n for n, _ in m.named_parameters()]
        assert all(p.requires_grad for p in c.parameters())
        np.testing.assert_array_equal(c(x).numpy(), m(x).numpy())
        # training the copy leaves the original alone
        before = m.state_dict()["0.weight"].numpy().copy()
        opt = lg.optim.SGD(c.parameters(), lr=0.1)
        c(x).sum().backward()
        opt.step()
        np.testing.assert_array_equal(m.state_dict()["0.weight"].numpy(), before)
        assert not np.array_equal(c.state_dict()["0.weight"].numpy(), before)
