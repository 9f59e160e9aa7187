"""conv2d, max_pool2d, avg_pool2d: values and gradients against torch across stride, padding,
dilation and groups; the im2col windows; kernel counts; argument errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.frontend.conv import windows

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


CONVS = {
    # name: x shape, w shape, stride, padding, dilation, groups, bias
    "3x3": ((2, 3, 9, 9), (4, 3, 3, 3), 1, 0, 1, 1, True),
    "stride2-pad1-groups2": ((2, 4, 10, 11), (6, 2, 3, 2), 2, 1, 1, 2, True),
    "asym-stride-pad-dilation": ((1, 2, 12, 12), (3, 2, 3, 3), (2, 3), (1, 2), 2, 1, False),
    "1x1-stride3": ((2, 3, 8, 8), (5, 3, 1, 1), 3, 0, 1, 1, True),
    "depthwise": ((1, 4, 7, 7), (4, 1, 3, 3), 1, 1, 1, 4, False),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_conv2d_forward_backward_matches_torch(rng, name):
    xs, ws, s, p, d, g, has_bias = CONVS[name]
    x, w, b = _rand(rng, *xs), _rand(rng, *ws), _rand(rng, ws[0])
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    tb = Tensor(b, requires_grad=True) if has_bias else None
    y = tx.conv2d(tw, tb, stride=s, padding=p, dilation=d, groups=g)
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    pb = torch.tensor(b, requires_grad=True) if has_bias else None
    py = F.conv2d(px, pw, pb, stride=s, padding=p, dilation=d, groups=g)
    close(y, py.detach().numpy(), rtol=1e-4, atol=1e-4)
    # a loss that is not linear in y, so the incoming gradient varies per element
    (y.relu() * y).sum().backward()
    (py.relu() * py).sum().backward()
    close(tx.grad, px.grad.numpy(), rtol=1e-4, atol=1e-4)
    close(tw.grad, pw.grad.numpy(), rtol=1e-4, atol=1e-4)
    if has_bias:
        close(tb.grad, pb.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_bias_relu_is_one_kernel(rng):
    x, w, b = _rand(rng, 32, 3, 32, 32), _rand(rng, 16, 3, 3, 3), _rand(rng, 16)
    y = Tensor(x).conv2d(Tensor(w), Tensor(b)).relu()
    ks = lg.schedule(y)
    assert len(ks) == 1, ks   # issue 4 asks for at most 2
    assert ks[0].kind == "conv" and {"conv2d", "add", "where"} <= set(ks[0].op_names)
    want = F.relu(F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b))).numpy()
    close(y, want, rtol=1e-4, atol=1e-4)


def test_padded_strided_conv_is_one_kernel(rng):
    x, w, b = _rand(rng, 2, 8, 15, 15), _rand(rng, 16, 8, 3, 3), _rand(rng, 16)
    y = Tensor(x).conv2d(Tensor(w), Tensor(b), stride=2, padding=1).relu()
    assert len(lg.schedule(y)) == 1
    want = F.relu(F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1)).numpy()
    close(y, want, rtol=1e-4, atol=1e-4)


def test_im2col_conv_bias_relu_is_two_kernels(rng, monkeypatch):
    # the fallback path: the im2col pack, then a matmul with bias and relu in its epilogue
    monkeypatch.setenv("LAZYGRAD_CONV", "im2col")
    x, w, b = _rand(rng, 4, 3, 16, 16), _rand(rng, 8, 3, 3, 3), _rand(rng, 8)
    y = Tensor(x).conv2d(Tensor(w), Tensor(b)).relu()
    ks = lg.schedule(y)
    assert len(ks) <= 2, ks
    assert ks[-1].kind == "matmul" and {"add", "where"} <= set(ks[-1].op_names)
    want = F.relu(F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b))).numpy()
    close(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,s,p,d", [((3, 3), (1, 1), (0, 0), (1, 1)), ((2, 3), (2, 1), (1, 1), (1, 2)),
                                     ((3, 2), (3, 2), (0, 1), (2, 1)), ((2, 2), (2, 2), (0, 0), (1, 1))])
def test_windows_match_unfold(rng, k, s, p, d):
    x = _rand(rng, 2, 3, 9, 8)
    y = windows(Tensor(x), k, s, p, d)
    want = F.unfold(torch.tensor(x), k, dilation=d, padding=p, stride=s).numpy()
    close(y.reshape(2, 3 * k[0] * k[1], -1), want)


POOLS = [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    ("avg", dict(kernel_size=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), count_include_pad=False)),
]


@pytest.mark.parametrize("kind,kw", POOLS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(POOLS)])
def test_pools_forward_backward_match_torch(rng, kind, kw):
    x = _rand(rng, 2, 3, 9, 10)
    gy = None
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = getattr(tx, f"{kind}_pool2d")(**kw)
    py = getattr(F, f"{kind}_pool2d")(px, **kw)
    close(y, py.detach().numpy(), rtol=1e-5, atol=1e-6)
    gy = _rand(rng, *py.shape)
    (y * Tensor(gy)).sum().backward()
    (py * torch.tensor(gy)).sum().backward()
    close(tx.grad, px.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_pool_is_one_kernel(rng):
    # max_pool2d picks each window's first maximum (argmax, then a one-hot pick: torch's tie
    # gradient), fused row-wise into one kernel; avg_pool2d is one reduce
    y = Tensor(_rand(rng, 2, 3, 8, 8)).max_pool2d(3, 2, 1)
    ks = lg.schedule(y)
    assert len(ks) == 1 and ks[0].kind == "rowwise"
    ks = lg.schedule(Tensor(_rand(rng, 2, 3, 8, 8)).avg_pool2d(3, 2, 1))
    assert len(ks) == 1 and ks[0].kind == "reduce"


def test_conv_argument_errors():
    x, w = Tensor.ones(1, 4, 5, 5), Tensor.ones(2, 4, 3, 3)
    with pytest.raises(ValueError, match="conv2d.*groups=2"):
        x.conv2d(w, groups=2)
    with pytest.raises(ValueError, match="conv2d.*expected input"):
        Tensor.ones(4, 5, 5).conv2d(w)
    with pytest.raises(ValueError, match="conv2d.*bias"):
        x.conv2d(w, bias=Tensor.ones(3))
    with pytest.raises(ValueError, match="conv2d.*too small"):
        x.conv2d(Tensor.ones(2, 4, 7, 7))
    with pytest.raises(ValueError, match="stride"):
        x.conv2d(w, stride=0)
    with pytest.raises(ValueError, match="invalid padding"):   # 'same' and 'valid' are torch's
        x.conv2d(w, padding="full")
    with pytest.raises(TypeError, match="padding"):
        x.conv2d(w, padding=1.5)
    with pytest.raises(ValueError, match="max_pool2d.*half"):
        x.max_pool2d(2, padding=2)
    with pytest.raises(TypeError, match="conv2d.*floating"):
        Tensor.ones(1, 4, 5, 5, dtype=lg.int32).conv2d(Tensor.ones(2, 4, 3, 3, dtype=lg.int32))
