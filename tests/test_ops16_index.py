"""Issue 16, part B.1: gather / scatter / select ops, advanced indexing and `t[idx] = v`,
values and gradients against torch (float32, float64 and ints where they apply), edge shapes
(size 0 and 1, 0-d, negative dims, non-contiguous inputs), kernel counts and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.frontend import indexing

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _data(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


def _view(t, how):
    """The same values seen through a non-contiguous view (both frameworks alike)."""
    if how == "T":
        return t.transpose(0, 1)
    return t


def check(lfn, tfn, *arrays, grad=True, rtol=1e-5, atol=1e-5, view=None):
    """lfn(*lazygrad tensors) against tfn(*torch tensors): values, and with `grad` the gradient of
    sum(out * w) (w random) for every float input."""
    want_grad = [grad and a.dtype.kind == "f" for a in arrays]
    lx = [Tensor(a, requires_grad=g) for a, g in zip(arrays, want_grad)]
    tx = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, want_grad)]
    lo = lfn(*[_view(t, view) for t in lx])
    to = tfn(*[_view(t, view) for t in tx])
    close(lo, to.detach().numpy(), rtol, atol)
    if any(want_grad) and to.requires_grad and to.numel():
        w = np.random.default_rng(7).standard_normal(tuple(to.shape)).astype(arrays[0].dtype)
        (lo * Tensor(w)).sum().backward()
        (to * torch.tensor(w)).sum().backward()
        for a, la, t, g in zip(arrays, lx, tx, want_grad):
            if g:
                expect = t.grad.numpy() if t.grad is not None else np.zeros(a.shape, a.dtype)
                close(la.grad if la.grad is not None else np.zeros(a.shape, a.dtype), expect, rtol, atol)
    return lo


# --- gather ------------------------------------------------------------------------------------------
GATHER = [  # (x shape, dim, index shape, dtype)
    ((4, 5), 0, (3, 5), np.float32),
    ((4, 5), 1, (4, 7), np.float32),
    ((4, 5), -1, (2, 3), np.float32),
    ((3, 4, 5), 1, (3, 2, 5), np.float64),
    ((3, 4, 5), -3, (6, 4, 1), np.float32),
    ((3, 1, 5), 1, (3, 4, 5), np.float32),
    ((6,), 0, (6,), np.int32),
    ((4, 5), 1, (4, 0), np.float32),
    ((0, 5), 1, (0, 3), np.float32),
    ((3, 4), 1, (3, 4), np.int64),
]


@pytest.mark.parametrize("xs,dim,ishape,dtype", GATHER, ids=str)
def test_gather_matches_torch(xs, dim, ishape, dtype):
    x = _data(xs, dtype=dtype)
    n = xs[dim]
    idx = np.random.default_rng(1).integers(0, max(n, 1), ishape)
    check(lambda a: a.gather(dim, Tensor(idx)), lambda a: a.gather(dim, torch.tensor(idx)), x)


def test_gather_negative_indices_non_contiguous_and_0d():
    x = _data((5, 4))
    idx = np.array([[-1, 0, 2], [1, -4, 3], [0, 0, -2]])
    check(lambda a: a.T.gather(1, Tensor(idx)), lambda a: a.T.gather(1, torch.tensor(idx) % 5), x)
    check(lambda a: a.gather(0, Tensor(np.array(0))), lambda a: a.gather(0, torch.tensor(0)), _data(()))
    with pytest.raises(IndexError, match="out of bounds"):
        Tensor(_data(())).gather(0, Tensor(np.array(1)))
    assert len(lg.schedule(Tensor(x).gather(1, Tensor(idx[:, :2] % 4)))) == 1


def test_gather_errors():
    x = Tensor(_data((3, 4)))
    with pytest.raises(IndexError, match="out of bounds"):
        x.gather(1, [[0, 4]])
    with pytest.raises(IndexError, match="integers"):
        x.gather(1, Tensor([[0.0]]))
    with pytest.raises(ValueError, match="as many dims"):
        x.gather(1, [0, 1])
    with pytest.raises(ValueError, match="larger than input"):
        x.gather(1, np.zeros((4, 1), np.int32))
    with pytest.raises(IndexError):
        x.gather(2, [[0]])


def test_gather_lazy_index_out_of_range_raises_at_realize():
    x = Tensor(_data((3, 4)))
    idx = Tensor(np.array([[1], [2], [3]], np.int32)) * 2   # lazy: 6 is out of range
    with pytest.raises(IndexError, match="out of bounds"):
        x.gather(1, idx).numpy()


# --- index_select -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_index_select_matches_torch(dim):
    x = _data((4, 3, 5))
    n = x.shape[dim]
    idx = np.array([n - 1, 0, -1 + n, 1])
    check(lambda a: a.index_select(dim, Tensor(idx)), lambda a: a.index_select(dim, torch.tensor(idx)), x)
    check(lambda a: a.index_select(dim, Tensor(np.array(1))), lambda a: a.index_select(dim, torch.tensor(1)), x)
    check(lambda a: a.index_select(dim, [0] * 0), lambda a: a.index_select(dim, torch.zeros(0, dtype=torch.long)), x)


def test_index_select_errors_and_ints():
    x = Tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    close(x.index_select(1, [2, 0]), np.arange(6).reshape(2, 3)[:, [2, 0]])
    with pytest.raises(ValueError, match="1-D"):
        x.index_select(1, [[0]])
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_select(0, [2])


# --- scatter family ---------------------------------------------------------------------------------
def _scatter_inputs(dtype=np.float32, seed=0, ties=False, src_rows=2):
    rng = np.random.default_rng(seed)
    x = _data((3, 5, 4), seed, dtype)
    src = _data((3, src_rows, 4), seed + 1, dtype)
    idx = rng.integers(0, 5, (3, 2, 4))   # smaller than src in dim 1, repeats on purpose
    if ties and dtype is np.float32:
        src = np.round(src).astype(dtype)
        x = np.round(x).astype(dtype)
    return x, src, idx


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("ties", [False, True])
def test_scatter_reduce_matches_torch(reduce, include_self, ties):
    x, src, idx = _scatter_inputs(ties=ties)
    if ties:
        src[0, 0, 0] = src[0, 1, 0] = 0.0   # zeros in a product, equal values in max/min
        idx[0, 0, 0] = idx[0, 1, 0] = 2
        x[0, 2, 0] = 0.0
    check(lambda a, s: a.scatter_reduce(1, Tensor(idx), s, reduce, include_self=include_self),
          lambda a, s: a.scatter_reduce(1, torch.tensor(idx), s, reduce, include_self=include_self), x, src)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_scatter_reduce_dtypes(reduce, dtype):
    x, src, idx = _scatter_inputs(dtype, src_rows=3)   # src larger than index: its first rows
    for inc in (True, False):
        lx, ls = Tensor(x, dtype=x.dtype.name), Tensor(src, dtype=x.dtype.name)
        out = lx.scatter_reduce(-2, Tensor(idx), ls, reduce, include_self=inc)
        want = torch.tensor(x).scatter_reduce(-2, torch.tensor(idx), torch.tensor(src), reduce, include_self=inc)
        assert out.dtype.name == str(want.dtype).replace("torch.", "")
        close(out, want.numpy())


def test_scatter_add_and_scatter_match_torch():
    x, src, idx = _scatter_inputs()
    check(lambda a, s: a.scatter_add(1, Tensor(idx), s), lambda a, s: a.scatter_add(1, torch.tensor(idx), s), x, src)
    # unique indices per column: torch's scatter is then defined
    uidx = np.stack([np.random.default_rng(k).permutation(5)[:2] for k in range(12)], -1).reshape(2, 3, 4)
    uidx = uidx.transpose(1, 0, 2).copy()
    check(lambda a, s: a.scatter(1, Tensor(uidx), s), lambda a, s: a.scatter(1, torch.tensor(uidx), s), x, src)
    check(lambda a: a.scatter(1, Tensor(idx), value=2.5), lambda a: a.scatter(1, torch.tensor(idx), value=2.5), x)
    check(lambda a: a.scatter(1, Tensor(idx), -1.0), lambda a: a.scatter(1, torch.tensor(idx), -1.0), x)
    check(lambda a, s: a.scatter(1, Tensor(idx), s, reduce="add"),
          lambda a, s: a.scatter(1, torch.tensor(idx), s, reduce="add"), x, src, grad=False)
    check(lambda a, s: a.scatter(1, Tensor(idx), s, reduce="multiply"),
          lambda a, s: a.scatter(1, torch.tensor(idx), s, reduce="multiply"), x, src, grad=False)


def test_scatter_repeated_index_last_writer_wins():
    x = np.zeros(4, np.float32)
    src = np.array([1, 2, 3, 4, 5], np.float32)
    idx = np.array([1, 3, 1, 0, 1])
    want = x.copy()
    for j, i in enumerate(idx):
        want[i] = src[j]
    close(Tensor(x).scatter(0, Tensor(idx), Tensor(src)), want)


def test_scatter_sizes_0_1_and_negative_dim():
    x = _data((1, 3))
    check(lambda a, s: a.scatter_add(-1, Tensor(np.array([[2]])), s),
          lambda a, s: a.scatter_add(-1, torch.tensor([[2]]), s), x, _data((1, 1), 3))
    check(lambda a, s: a.scatter_add(1, Tensor(np.zeros((1, 0), np.int64)), s),
          lambda a, s: a.scatter_add(1, torch.zeros((1, 0), dtype=torch.long), s), x, _data((1, 0), 3))


def test_scatter_errors():
    x = Tensor(_data((3, 4)))
    with pytest.raises(ValueError, match="reduce must be"):
        x.scatter_reduce(1, [[0]], Tensor(_data((1, 1))), "max")
    with pytest.raises(TypeError, match="dtype"):
        x.scatter_add(1, [[0]], Tensor(np.ones((1, 1)), dtype=lg.float64))
    with pytest.raises(IndexError, match="out of bounds"):
        x.scatter_add(1, [[4]], Tensor(_data((1, 1))))
    with pytest.raises(ValueError, match="larger than src"):
        x.scatter_add(1, [[0, 1]], Tensor(_data((1, 1))))
    with pytest.raises(TypeError, match="src or value"):
        x.scatter(1, [[0]])


# --- masks --------------------------------------------------------------------------------------------
def test_masked_fill_matches_torch_and_fuses():
    x = _data((3, 4))
    m = x > 0.3
    check(lambda a: a.masked_fill(Tensor(m), -2.0), lambda a: a.masked_fill(torch.tensor(m), -2.0), x)
    check(lambda a: a.masked_fill(Tensor(m[0]), 1.0), lambda a: a.masked_fill(torch.tensor(m[0]), 1.0), x)
    check(lambda a: a.T.masked_fill(Tensor(m.T.copy()), 0.0), lambda a: a.T.masked_fill(torch.tensor(m.T.copy()), 0.0), x)
    v = np.array(1.5, np.float32)
    check(lambda a, b: a.masked_fill(Tensor(m), b), lambda a, b: a.masked_fill(torch.tensor(m), b), x, v)
    xi = np.arange(6, dtype=np.int32)
    close(Tensor(xi).masked_fill(Tensor(xi > 2), 9), torch.tensor(xi).masked_fill(torch.tensor(xi > 2), 9).numpy())
    y = ((Tensor(x) * 2).masked_fill(Tensor(x) > 0, 0.0) + 1).exp()
    assert len(lg.schedule(y)) == 1
    with pytest.raises(TypeError, match="bool"):
        Tensor(x).masked_fill(Tensor(x), 0.0)
    with pytest.raises(ValueError, match="0-d"):
        Tensor(x).masked_fill(Tensor(m), Tensor(x))


def test_masked_select_matches_torch():
    x = _data((3, 4))
    m = x > 0
    check(lambda a: a.masked_select(Tensor(m)), lambda a: a.masked_select(torch.tensor(m)), x)
    check(lambda a: a.masked_select(Tensor(m[1])), lambda a: a.masked_select(torch.tensor(m[1])), x)
    check(lambda a: a.masked_select(Tensor(np.zeros((3, 4), bool))),
          lambda a: a.masked_select(torch.zeros(3, 4, dtype=torch.bool)), x)
    lazy_mask = Tensor(x) > 0       # lazy: realized and read for the size
    close(Tensor(x).masked_select(lazy_mask), x[m])


def test_nonzero_matches_torch():
    x = np.array([[0, 1.5, 0], [2, 0, -1]], np.float32)
    close(Tensor(x).nonzero(), torch.tensor(x).nonzero().numpy())
    for a, b in zip(Tensor(x).nonzero(as_tuple=True), torch.tensor(x).nonzero(as_tuple=True)):
        close(a, b.numpy())
    close(Tensor(np.zeros((2, 0), np.float32)).nonzero(), torch.zeros(2, 0).nonzero().numpy())
    close(Tensor(np.array(3.0, np.float32)).nonzero(), torch.tensor(3.0).nonzero().numpy())
    close((Tensor(x) > 0).nonzero(), (torch.tensor(x) > 0).nonzero().numpy())


def test_one_hot_matches_torch_and_fuses():
    t = np.array([[0, 3], [2, 1]])
    close(indexing.one_hot(Tensor(t)), TF.one_hot(torch.tensor(t)).numpy())
    close(indexing.one_hot(Tensor(t), 6), TF.one_hot(torch.tensor(t), 6).numpy())
    close(indexing.one_hot(Tensor(np.zeros(0, np.int32)), 3), TF.one_hot(torch.zeros(0, dtype=torch.long), 3).numpy())
    y = indexing.one_hot(Tensor(t) + 1, 5) * 2 + 1
    assert len(lg.schedule(y)) == 1
    with pytest.raises(ValueError, match="non-negative"):
        indexing.one_hot(Tensor(np.array([-1, 0])), 3)
    with pytest.raises(ValueError, match="smaller than num_classes"):
        indexing.one_hot(Tensor(np.array([3])), 3)


@pytest.mark.parametrize("a,b", [(1.5, "t"), ("t", -2.0), (3, "t"), ("t", "t2")])
def test_where_with_scalars_on_either_side(a, b):
    x = _data((3, 4))
    y = _data((3, 4), 1)
    c = x > 0

    def pick(v, t, t2):
        return t if v == "t" else t2 if v == "t2" else v
    check(lambda p, q: Tensor.where(Tensor(c), pick(a, p, q), pick(b, p, q)),
          lambda p, q: torch.where(torch.tensor(c), pick(a, p, q), pick(b, p, q)), x, y)


# --- advanced indexing -------------------------------------------------------------------------------
ADVANCED = [
    lambda L: (L([0, 2]), slice(None), L([1, 3])),          # separated: broadcast dims first
    lambda L: (slice(None), L([0, 2]), L([1, -1])),         # adjacent: in place
    lambda L: (L([[0], [2]]), L([1, 3])),                    # broadcast together
    lambda L: (L([2, 0, 1]),),
    lambda L: (Ellipsis, L([0, 4])),
    lambda L: (None, L([1]), 1, L([0, 0])),                  # int between arrays stays basic
    lambda L: (L([1, 2]), slice(1, 3), None),
    lambda L: (slice(None, None, -1), L([[3]]), slice(None, None, 2)),
    lambda L: (L([0, 1]), L([1, 2]), L([4, 0])),
    lambda L: (L(np.zeros(0, np.int64)), slice(None)),
]


@pytest.mark.parametrize("k", range(len(ADVANCED)))
@pytest.mark.parametrize("kind", ["tensor", "list"])
def test_advanced_indexing_matches_torch(k, kind):
    x = _data((3, 4, 5))
    mk = ADVANCED[k]
    lidx = mk(lambda v: Tensor(np.asarray(v, np.int64)) if kind == "tensor" else v)
    tidx = mk(lambda v: torch.tensor(np.asarray(v, np.int64)))
    if any(isinstance(i, slice) and i.step == -1 for i in tidx):
        # torch has no negative steps: compare with numpy and torch on a flipped copy
        tfn = (lambda a: a.flip(0)[tuple(slice(None) if isinstance(i, slice) and i.step == -1 else i for i in tidx)])
    else:
        tfn = (lambda a: a[tidx])
    check(lambda a: a[lidx], tfn, x)


def test_boolean_mask_indexing_matches_torch():
    x = _data((3, 4, 5))
    m2 = x[:, :, 0] > 0
    m1 = np.array([True, False, True])
    check(lambda a: a[Tensor(x > 0)], lambda a: a[torch.tensor(x > 0)], x)
    check(lambda a: a[Tensor(m2)], lambda a: a[torch.tensor(m2)], x)
    check(lambda a: a[:, Tensor(m2[0])], lambda a: a[:, torch.tensor(m2[0])], x)
    check(lambda a: a[m1.tolist(), 1:], lambda a: a[torch.tensor(m1), 1:], x)
    check(lambda a: a[Tensor(m1), :, [0, 2]], lambda a: a[torch.tensor(m1), :, [0, 2]], x)
    with pytest.raises(IndexError, match="mask of shape"):
        Tensor(x)[Tensor(np.ones(4, bool))]


def test_advanced_indexing_errors():
    x = Tensor(_data((3, 4)))
    with pytest.raises(IndexError, match="out of bounds"):
        x[[0, 3]]
    with pytest.raises(IndexError, match="integers"):
        x[[0.5]]
    with pytest.raises(ValueError, match="broadcast"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match="too many"):
        x[[0], [0], [0]]


# --- assignment ---------------------------------------------------------------------------------------
SETS = [  # (index, value shape) -- values broadcast to x[index]
    ((0,), (5,)),
    ((slice(1, 3),), ()),
    ((slice(None), slice(None, None, 2)), (2, 1)),
    ((Ellipsis, 1), (3, 4)),
    ((1, slice(0, 4, 3), slice(1, None, 2)), (2, 2)),
    ((None, 2, slice(None), 0), (1, 4)),
    ((-1, -1, -1), ()),
    ((slice(3, 1),), ()),
]


@pytest.mark.parametrize("idx,vshape", SETS, ids=str)
def test_setitem_basic_matches_torch(idx, vshape):
    def lfn(a, v):
        y = a * 1.0
        y[idx] = v
        return y

    def tfn(a, v):
        y = a.clone()
        y[idx] = v
        return y
    check(lfn, tfn, _data((3, 4, 5)), _data(vshape, 1))


def test_setitem_negative_step_matches_numpy():
    x = _data((6, 3))
    y = Tensor(x)
    y[::-2, 1] = Tensor(np.array([1, 2, 3], np.float32))
    want = x.copy()
    want[::-2, 1] = [1, 2, 3]
    close(y, want)


ADV_SETS = [
    lambda L: ((L([0, 2]),), (2, 4, 5)),
    lambda L: ((slice(None), L([3, 1])), (5,)),
    lambda L: ((L([0, 1]), slice(None), L([4, 0])), (2, 4)),
    lambda L: ((L([[2], [0]]), L([1, 3])), ()),
]


@pytest.mark.parametrize("k", range(len(ADV_SETS)))
def test_setitem_tensor_indices_matches_torch(k):
    lidx, vshape = ADV_SETS[k](lambda v: Tensor(np.asarray(v, np.int32)))
    tidx, _ = ADV_SETS[k](lambda v: torch.tensor(np.asarray(v, np.int64)))

    def lfn(a, v):
        y = a + 0.0
        y[lidx] = v
        return y

    def tfn(a, v):
        y = a.clone()
        y[tidx] = v
        return y
    check(lfn, tfn, _data((3, 4, 5)), _data(vshape, 1))


def test_setitem_masks_match_torch():
    x = _data((3, 4))
    m = x > 0

    def both(v_np):
        def lfn(a, v):
            y = a * 1.0
            y[Tensor(m)] = v
            return y

        def tfn(a, v):
            y = a.clone()
            y[torch.tensor(m)] = v
            return y
        check(lfn, tfn, x, v_np)
    both(np.array(2.5, np.float32))
    both(_data((int(m.sum()),), 1))
    y = Tensor(x)
    y[Tensor(x) > 0] = 0.0         # a lazy mask with a scalar: elementwise, no host read
    close(y, np.where(m, 0, x))


def test_setitem_is_lazy_and_fuses():
    x = Tensor(_data((4, 5)))
    y = x * 2
    y[1:3, ::2] = -1.0
    y[y > 1] = 1.0
    z = (y + 1).exp()
    assert len(lg.schedule(z)) == 1


def test_setitem_errors():
    leaf = Tensor(_data((3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf[0] = 1.0
    y = Tensor(_data((3, 4)))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        y[0] = Tensor(np.ones(3, np.float32))
    with pytest.raises(IndexError, match="out of bounds"):
        y[5] = 1.0
    with lg.no_grad():
        leaf[0] = 1.0
    close(leaf[0], np.ones(4, np.float32))


# --- the gather kernel ----------------------------------------------------------------------------
def test_lookups_are_one_gather_kernel_each():
    x = Tensor(_data((50, 8)))
    idx = Tensor(np.array([[1, -2], [3, 49]], np.int32))
    ks = lg.schedule(x[idx])
    assert [k.kind for k in ks] == ["gather"]
    ks = lg.schedule((x * 2)[idx].relu())
    assert [k.kind for k in ks] == ["elementwise", "gather", "elementwise"]
    assert ks[0].reason.startswith("gather input is computed") and ks[1].reason.startswith("gather: a kernel")
    assert [k.kind for k in lg.schedule(x.index_select(1, [7, 0, 7]))] == ["gather"]
    assert [k.kind for k in lg.schedule(lg.nn.Embedding(50, 8)(Tensor(np.array([3, 0, 3], np.int32))))] == ["gather"]
    close(x[idx], x.numpy()[idx.numpy()])


def test_gather_kernel_unfused_and_through_views(monkeypatch):
    a = _data((6, 5))
    idx = np.array([[0, 4], [-1, 2], [3, -5]])
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    check(lambda t: (t * 2).T[Tensor(idx)], lambda t: (t * 2).T[torch.tensor(idx)], a)
    check(lambda t: t.T.gather(0, Tensor(idx % 5)), lambda t: t.T.gather(0, torch.tensor(idx % 5)), a)
