"""Row-wise kernels (reductions broadcast back over their rows) and multi-output kernels."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.scheduling.kinds import KernelKind

from conftest import close

F = np.float32
RNG = np.random.default_rng(11)
XN = (RNG.standard_normal((6, 40)) * 3).astype(F)
GN = RNG.standard_normal((6, 40)).astype(F)
TGT = np.array([1, 3, 0, 39, 2, 2])


def layernorm(t: Tensor, eps: float = 1e-5) -> Tensor:
    m = t.mean(-1, keepdim=True)
    d = t - m
    return d * ((d * d).mean(-1, keepdim=True) + eps).rsqrt()


def cross_entropy(t: Tensor, target: np.ndarray) -> Tensor:
    onehot = Tensor((np.arange(t.shape[1])[None] == target[:, None]).astype(F))
    return -(t.log_softmax() * onehot).sum(1)


FORWARD = {
    "softmax": (lambda t: t.softmax(-1), lambda t: torch.softmax(t, -1)),
    "log_softmax": (lambda t: t.log_softmax(-1), lambda t: torch.log_softmax(t, -1)),
    "softmax_axis0": (lambda t: t.softmax(0), lambda t: torch.softmax(t, 0)),
    "logsumexp": (lambda t: t.logsumexp(1), lambda t: torch.logsumexp(t, 1)),
    "layernorm": (layernorm, lambda t: torch.nn.functional.layer_norm(t, (t.shape[-1],))),
    "cross_entropy_rows": (lambda t: cross_entropy(t, TGT),
                           lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(TGT), reduction="none")),
}


@pytest.mark.parametrize("name", list(FORWARD))
def test_rowwise_forward_is_one_kernel(name):
    f, ref = FORWARD[name]
    x = Tensor(XN)
    ks = lg.schedule(f(x))
    assert len(ks) == 1, ks
    assert ks[0].kind is KernelKind.ROWWISE or len(ks[0].reduces) >= 2
    close(f(x), ref(torch.tensor(XN)).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(FORWARD))
def test_rowwise_backward_at_most_two_kernels(name):
    f, ref = FORWARD[name]
    x = Tensor(XN, requires_grad=True)
    out = f(x)
    g = Tensor(GN[:, : out.shape[-1]] if out.ndim == 2 else GN[:, 0])
    (dx,) = lg.grad((out * g).sum(), [x])
    assert len(lg.schedule(dx)) <= 2
    xt = torch.tensor(XN, requires_grad=True)
    (ref(xt) * torch.tensor(g.numpy())).sum().backward()
    close(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 6, 37])
def test_cross_entropy_mean_is_one_kernel(rows):
    xn = np.random.default_rng(rows).standard_normal((rows, 12)).astype(F) * 4
    tgt = np.random.default_rng(rows + 1).integers(0, 12, rows)
    x = Tensor(xn, requires_grad=True)
    loss = cross_entropy(x, tgt).mean()
    ks = lg.schedule(loss)
    # one row: the mean over it is the identity, the per-row kernel is the whole loss
    assert len(ks) == 1 and ks[0].kind is (KernelKind.ROWTOTAL if rows > 1 else KernelKind.ROWWISE)
    want = torch.nn.functional.cross_entropy(torch.tensor(xn), torch.tensor(tgt))
    close(loss, want.numpy(), rtol=1e-5, atol=1e-6)
    (dx,) = lg.grad(loss, [x])
    assert len(lg.schedule(dx)) <= 2
    xt = torch.tensor(xn, requires_grad=True)
    torch.nn.functional.cross_entropy(xt, torch.tensor(tgt)).backward()
    close(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_rowwise_equals_unfused():
    x = Tensor(XN)
    fused = layernorm(x).softmax().numpy()
    os.environ["LAZYGRAD_FUSE"] = "0"
    try:
        x2 = Tensor(XN)
        ks = lg.schedule(layernorm(x2).softmax())
        assert len(ks) > 5
        unfused = layernorm(x2).softmax().numpy()
    finally:
        del os.environ["LAZYGRAD_FUSE"]
    close(fused, unfused, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 1), (2, 7), (1, 300), (5, 16), (130, 9)], ids=str)
def test_rowwise_odd_shapes(shape):
    xn = np.random.default_rng(1).standard_normal(shape).astype(F)
    close(Tensor(xn).softmax(), torch.softmax(torch.tensor(xn), -1).numpy(), rtol=1e-5, atol=1e-6)
    close(layernorm(Tensor(xn)), torch.nn.functional.layer_norm(torch.tensor(xn), (shape[-1],)).numpy(),
          rtol=1e-4, atol=1e-4)


def test_rowwise_not_fused_through_a_transposed_broadcast_records_reason():
    x = Tensor(XN[:, :6].copy())  # (6, 6): the transposed broadcast has the same shape
    m = x.amax(1, keepdim=True)
    y = x - m.expand(6, 6).T
    ks = lg.schedule(y)
    assert len(ks) == 2
    assert "broadcast" in ks[0].reason
    close(y, XN[:, :6] - XN[:, :6].max(1, keepdims=True).T)


def test_multi_output_kernel():
    a, b = Tensor(XN), Tensor(GN)
    c = (a + b).exp()
    ks = lg.schedule(c * 2, c + 1)
    assert len(ks) == 1 and len(ks[0].outputs) == 2
    lg.counters.reset()
    d, e = c * 2, c + 1
    lg.realize(d, e)
    assert lg.counters.kernels_launched == 1
    close(d, np.exp(XN + GN) * 2, rtol=1e-5)
    close(e, np.exp(XN + GN) + 1, rtol=1e-5)


def test_multi_output_optimizer_like_update():
    p, g, m = Tensor(XN), Tensor(GN), Tensor(np.zeros_like(XN))
    m2 = m * 0.9 + g * 0.1
    v2 = (g * g) * 0.001
    p2 = p - 0.01 * m2 / (v2.sqrt() + 1e-8)
    ks = lg.schedule(p2, m2, v2)
    assert len(ks) == 1 and len(ks[0].outputs) == 3
    lg.realize(p2, m2, v2)
    mw = GN * 0.1
    close(p2, XN - 0.01 * mw / (np.sqrt(GN * GN * 0.001) + 1e-8), rtol=1e-4, atol=1e-5)


def test_dependent_outputs_are_not_merged():
    a = Tensor(XN)
    b = (a * 2).contiguous()
    c = b.sum(1, keepdim=True) + a  # depends on b through a reduction
    ks = lg.schedule(b, c)
    close(c, (XN * 2).sum(1, keepdims=True) + XN, rtol=1e-5)
    assert len(ks) >= 2


# --- what the row kernels compute once ------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 40), (4, 1024), (3, 13), (2, 3), (2, 1)], ids=str)
def test_softmax_computes_each_exp_once(shape):
    """The sum stage stores exp(x - max) in the output and the row loop rescales it in place:
    one exp per element, and the row output multiplies by a per-row reciprocal."""
    xn = (np.random.default_rng(3).standard_normal(shape) * 5).astype(F)
    (k,) = lg.schedule(Tensor(xn).softmax(-1))
    if shape[-1] == 1:  # reductions over a length-1 axis are identities: one elementwise kernel
        assert k.kind is KernelKind.ELEMENTWISE
        close(Tensor(xn).softmax(-1), np.ones(shape, F), rtol=0, atol=0)
        return
    stages, row = k.source.split("/* row output */")
    assert "exp(" not in row and "exp(" not in stages.split("/* stage 1 */")[0], k.source
    assert "stashed for the row output" in stages
    close(Tensor(xn).softmax(-1), torch.softmax(torch.tensor(xn), -1).numpy(), rtol=1e-5, atol=1e-7)


def test_stash_skipped_when_recomputing_is_cheap():
    """layernorm's shared value is x - mean: recomputing beats a store and a reload."""
    (k,) = lg.schedule(layernorm(Tensor(XN)))
    assert "stashed" not in k.source


def test_row_division_becomes_one_reciprocal_per_row():
    xn = np.abs(RNG.standard_normal((5, 64))).astype(F) + 0.1
    x = Tensor(xn)
    (k,) = lg.schedule(x / x.sum(-1, keepdim=True))
    row_loop = k.source.split("/* row output */")[1]
    body = row_loop.split("for (", 1)[1]
    assert "/" not in body.replace("//", ""), k.source
    close(x / x.sum(-1, keepdim=True), xn / xn.sum(-1, keepdims=True), rtol=1e-6, atol=0)


def test_softmax_nan_and_inf_rows():
    xn = np.array([[1.0, np.nan, 2.0, 0.5] * 4, [np.inf, 1.0, 2.0, 3.0] * 4,
                   [-np.inf] * 16, [1.0, 2.0, 3.0, 4.0] * 4], dtype=F)
    close(Tensor(xn).softmax(-1), torch.softmax(torch.tensor(xn), -1).numpy(), rtol=1e-6, atol=0)


def test_max_reduction_source_stays_small():
    """The lanes of a NaN-propagating max fold one statement at a time (nesting the combine
    doubled the source per lane: 60 KB for 8 lanes)."""
    (k,) = lg.schedule(Tensor(RNG.standard_normal((64, 256)).astype(F)).amax(1))
    assert len(k.source) < 4000, len(k.source)


def test_long_rows_stay_one_kernel_and_few_long_sums_split():
    """A long axis is split in two passes only when the rows alone cannot occupy the device;
    rows that can stay whole and fuse row-wise (softmax over 40000 columns = 1 kernel)."""
    from lazygrad.runtime.device import current_target
    tgt = current_target()
    rows = next(r for r in range(1, 1 << 16) if not tgt.split_reduce(r))  # the fewest rows that fill it
    assert tgt.split_reduce(rows - 1)
    xn = RNG.standard_normal((rows, 40000)).astype(F)
    x = Tensor(xn)
    assert len(lg.schedule(x.softmax(-1))) == 1
    close(x.softmax(-1), torch.softmax(torch.tensor(xn), -1).numpy(), rtol=1e-5, atol=1e-8)
    few = Tensor(xn[:2])
    assert len(lg.schedule(few.sum(1))) == 2
    close(few.sum(1), xn[:2].astype(np.float64).sum(1), rtol=1e-5, atol=1e-3)
