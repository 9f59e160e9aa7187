"""The sorted scatter-add (a gather's gradient past autodiff.rules.SCATTER_FROM one-hot selects):
an index sorted with its positions, then a SEGMENT_SUM kernel per output element. Values and
gradients against torch at real sizes (an Embedding whose one-hot gradient needed a 10 GB
buffer), the same results through the one-hot and the sorted paths for every kind of gather, its
second order, and its kernels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor, nn
from lazygrad.autodiff import rules

from conftest import close


@pytest.fixture
def always_sorted(monkeypatch):
    """Every gather's gradient through the sorted scatter-add where it applies."""
    monkeypatch.setattr(rules, "SCATTER_FROM", 0)


def test_embedding_gradient_at_a_real_vocabulary_matches_torch():
    """Embedding(10000, 64) over 2,048 tokens with repeats, a padding row and Adam-free SGD: the
    one-hot gradient would be a (2048, 10000, 64) square (5 GB)."""
    torch.manual_seed(0)
    te = torch.nn.Embedding(10000, 64, padding_idx=3)
    le = nn.Embedding(10000, 64, padding_idx=3)
    le.load_state_dict(te.state_dict())
    idx = np.random.default_rng(1).integers(0, 10000, (32, 64))
    idx[0, :10] = 7            # one row gets many contributions
    idx[1, :5] = 3             # the padding row gets none
    w = np.random.default_rng(2).standard_normal((32, 64, 64)).astype(np.float32)
    (le(Tensor(idx)) * Tensor(w)).sum().backward()
    (te(torch.tensor(idx)) * torch.tensor(w)).sum().backward()
    close(le.weight.grad, te.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    out = le(Tensor(idx))
    out.sum().backward()       # a second graph: the plan's kernels, one of them the scatter-add
    ks = lg.schedule(le.weight.grad)
    kinds = [k.kind for k in ks]
    assert "scatter" in kinds, kinds
    assert next(k for k in ks if k.kind == "scatter").reason.startswith("scatter-add: a kernel of its own")
    # nothing the size of the one-hot square is stored: no kernel writes more than the weight
    assert max(int(np.prod(k.output.shape)) for k in ks) <= 10000 * 64


@pytest.mark.parametrize("n,m", [(3000, 5000), (5000, 3000)])
def test_gather_along_its_axis_uses_the_sorted_scatter_and_matches_torch(n, m):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(m).astype(np.float32)
    idx = rng.integers(-m, m, n)
    idx[:50] = idx[0]          # repeats; negative indices count from the end
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    wgt = rng.standard_normal(n).astype(np.float32)
    (gx,) = lg.grad((x.gather(0, Tensor(idx)) * Tensor(wgt)).sum(), [x])
    assert "scatter" in [k.kind for k in lg.schedule(gx)]
    (tx.gather(0, torch.tensor(idx % m)) * torch.tensor(wgt)).sum().backward()   # torch takes no negative index
    close(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)


CASES = {
    "embedding": (lambda w, i: nn.functional.embedding(i, w), lambda w, i: torch.nn.functional.embedding(i, w),
                  (13, 5), lambda r: r.integers(0, 13, (4, 6))),
    "index_select_0": (lambda w, i: w.index_select(0, i), lambda w, i: w.index_select(0, i),
                       (9, 4), lambda r: r.integers(0, 9, 11)),
    "embedding_wide": (lambda w, i: nn.functional.embedding(i, w), lambda w, i: torch.nn.functional.embedding(i, w),
                       (7, 70), lambda r: r.integers(0, 7, (3, 5))),   # 70 columns: blocks of 32, a ragged last
    "index_select_1": (lambda w, i: w.index_select(1, i), lambda w, i: w.index_select(1, i),
                       (4, 9), lambda r: r.integers(0, 9, 11)),
    "getitem_list": (lambda w, i: w[i], lambda w, i: w[i], (8, 3), lambda r: r.integers(-8, 8, (2, 5))),
    "gather_2d": (lambda w, i: w.gather(1, i), lambda w, i: w.gather(1, i),  # a batch dim: segments per row
                  (4, 7), lambda r: r.integers(0, 7, (4, 9))),
    "getitem_second_dim": (lambda w, i: w[:, i], lambda w, i: w[:, i],             # a batch dim and broadcast ones
                           (3, 6), lambda r: r.integers(-6, 6, (2, 5))),
    "gather_short_rows": (lambda w, i: w.gather(0, i), lambda w, i: w.gather(0, i),   # x longer than the index
                          (8, 3), lambda r: r.integers(0, 8, (5, 2))),
    "gather_1d": (lambda w, i: w.gather(0, i), lambda w, i: w.gather(0, i % 10), (10,), lambda r: r.integers(-10, 10, 25)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_gather_gives_torchs_gradient_through_the_sorted_path(always_sorted, case):
    lf, tf, shape, make_idx = CASES[case]
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shape).astype(np.float32)
    idx = make_idx(rng)
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    lo, to = lf(x, Tensor(idx)), tf(tx, torch.tensor(idx))
    close(lo, to.detach().numpy())
    wgt = rng.standard_normal(tuple(to.shape)).astype(np.float32)
    (gx,) = lg.grad((lo * Tensor(wgt)).sum(), [x])
    assert [k.kind for k in lg.schedule(gx)].count("scatter") == 1
    (to * torch.tensor(wgt)).sum().backward()
    close(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_a_long_sorts_gradient_is_a_scatter_add_per_row():
    """Sorted values of long rows are a gather at the merge sort's indices: their gradient is the
    scatter-add with a segment per (row, position), not a (rows, n, n) one-hot."""
    a = np.round(np.random.default_rng(6).standard_normal((3, 3000)) * 4).astype(np.float32) / 4
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    wgt = np.random.default_rng(7).standard_normal((3, 3000)).astype(np.float32)
    (gx,) = lg.grad((x.sort(1, descending=True).values * Tensor(wgt)).sum(), [x])
    ks = lg.schedule(gx)
    assert [k.kind for k in ks].count("scatter") == 1
    assert max(int(np.prod(k.output.shape)) for k in ks) <= 2 * 3 * 3000   # keys padded to whole blocks
    (tx.sort(dim=1, descending=True, stable=True).values * torch.tensor(wgt)).sum().backward()
    close(gx, tx.grad.numpy())


def test_the_sorted_scatter_add_has_torchs_second_order(always_sorted):
    """grad of (sum(gather(x)^2 * w) wrt x) . v, differentiated again: the scatter-add's own rule
    (the gather of the incoming gradient at each position's index)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 3)).astype(np.float32)
    idx = rng.integers(0, 6, 10)
    wgt = rng.standard_normal((10, 3)).astype(np.float32)
    v = rng.standard_normal((6, 3)).astype(np.float32)
    x = Tensor(a, requires_grad=True)
    (gx,) = lg.grad(((x.index_select(0, Tensor(idx)) ** 2) * Tensor(wgt)).sum(), [x])
    (gx * Tensor(v)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(((tx.index_select(0, torch.tensor(idx)) ** 2) * torch.tensor(wgt)).sum(), [tx],
                                create_graph=True)
    (tg * torch.tensor(v)).sum().backward()
    close(gx, tg.detach().numpy(), rtol=1e-5, atol=1e-6)
    close(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_out_of_range_lazy_indices_get_no_gradient_like_their_zero_reads(always_sorted, monkeypatch):
    """A lazily computed index past the end reads 0 (documented) and sends no gradient."""
    monkeypatch.setenv("LAZYGRAD_CHECK_INDEX", "0")
    a = np.arange(5, dtype=np.float32)
    x = Tensor(a, requires_grad=True)
    idx = Tensor(np.array([0, 3, 4, 2, 3], np.int32)) * 2 - 1          # [-1, 5, 7, 3, 5]: -1 wraps to 4
    y = x.gather(0, idx)
    close(y, np.array([4, 0, 0, 3, 0], np.float32))
    y.sum().backward()
    close(x.grad, np.array([0, 0, 0, 1, 1], np.float32))
