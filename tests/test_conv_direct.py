"""The direct conv2d kernel (Op.CONV2D, templates/conv.cl.j2): values and gradients against torch
over the geometries its code paths branch on (row widths below, at and past the vector width,
the shifted last block, padded edges, strides, dilations, groups, channel blocks that are not a
power of two), its fused epilogues, operands that must be stored first, and the choice between
the direct kernel and the im2col matmul."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lazygrad as lg
from lazygrad import Tensor
from lazygrad import dtypes as dt
from lazygrad.ir import graph as gr
from lazygrad.passes.choose_conv import use_direct
from lazygrad.ir.ops import Op
from lazygrad.scheduling.kinds import KernelKind

from conftest import close


@pytest.fixture(autouse=True)
def _direct(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")
    monkeypatch.setenv("LAZYGRAD_CONV", "direct")


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


GEOMETRIES = {
    # name: x shape, w shape, stride, padding, dilation, groups
    "out-width-1": ((2, 3, 5, 1), (4, 3, 3, 1), 1, (1, 0), 1, 1),
    "out-width-5": ((1, 2, 6, 5), (3, 2, 3, 3), 1, 1, 1, 1),
    "out-width-17-shifted": ((2, 3, 7, 19), (5, 3, 3, 3), 1, 0, 1, 1),
    "out-width-30-padded-edges": ((2, 3, 6, 30), (4, 3, 3, 3), 1, 1, 1, 1),
    "stride2-pad1-odd": ((2, 4, 11, 13), (6, 4, 3, 3), 2, 1, 1, 1),
    "stride-1x3-dilation2": ((1, 3, 14, 20), (4, 3, 2, 3), (1, 3), 0, 2, 1),
    "dilation2-pad2": ((2, 2, 9, 12), (4, 2, 3, 3), 1, 2, 2, 1),
    "groups2-pad1": ((2, 4, 8, 9), (6, 2, 3, 3), 1, 1, 1, 2),
    "depthwise-5x5": ((1, 6, 10, 10), (6, 1, 5, 5), 1, 2, 1, 6),
    "1x1": ((2, 8, 4, 4), (12, 8, 1, 1), 1, 0, 1, 1),
    "pad-wider-than-input": ((1, 1, 3, 3), (2, 1, 3, 3), 1, 2, 1, 1),
    "channels-7-and-9": ((1, 4, 6, 11), (18, 2, 2, 2), 1, 1, 1, 2),
    "stride2-pad1-dil2-groups2": ((2, 4, 12, 25), (4, 2, 3, 3), 2, 1, 2, 2),
}


def _torch_and_ours(rng, xs, ws, s, p, d, g, bias=True):
    x, w, b = _rand(rng, *xs), _rand(rng, *ws), _rand(rng, ws[0])
    tx, tw, tb = (Tensor(v, requires_grad=True) for v in (x, w, b))
    px, pw, pb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    y = tx.conv2d(tw, tb if bias else None, stride=s, padding=p, dilation=d, groups=g)
    py = F.conv2d(px, pw, pb if bias else None, stride=s, padding=p, dilation=d, groups=g)
    return (tx, tw, tb, y), (px, pw, pb, py)


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_direct_conv_matches_torch(rng, name):
    (tx, tw, tb, y), (px, pw, pb, py) = _torch_and_ours(rng, *GEOMETRIES[name])
    ks = lg.schedule(y.relu())
    assert len(ks) == 1 and ks[0].kind is KernelKind.CONV, ks
    close(y.relu(), F.relu(py).detach().numpy(), rtol=1e-4, atol=1e-4)
    # a loss that is not linear in y, so the incoming gradient varies per element
    (y.relu() * y).sum().backward()
    (F.relu(py) * py).sum().backward()
    for ours, theirs in ((tx, px), (tw, pw), (tb, pb)):
        close(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_direct_conv_float64(rng):
    x, w = _rand(rng, 2, 3, 7, 21, dtype=np.float64), _rand(rng, 4, 3, 3, 3, dtype=np.float64)
    y = Tensor(x, dtype=lg.float64).conv2d(Tensor(w, dtype=lg.float64), padding=1)
    assert y.dtype is lg.float64 and lg.schedule(y)[0].kind is KernelKind.CONV
    close(y, F.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy(), rtol=1e-10, atol=1e-10)


def test_epilogue_reads_other_buffers_and_reshapes(rng):
    # a residual add, a per-channel scale and a flatten all fuse after the conv
    x, w, r, sc = _rand(rng, 2, 4, 9, 13), _rand(rng, 4, 4, 3, 3), _rand(rng, 2, 4, 9, 13), _rand(rng, 4)
    y = (Tensor(x).conv2d(Tensor(w), padding=1) * Tensor(sc).reshape(1, 4, 1, 1) + Tensor(r)).reshape(2, -1)
    ks = lg.schedule(y)
    assert len(ks) == 1 and ks[0].kind is KernelKind.CONV, ks
    want = (F.conv2d(torch.tensor(x), torch.tensor(w), padding=1) * torch.tensor(sc).reshape(1, 4, 1, 1)
            + torch.tensor(r)).reshape(2, -1)
    close(y, want.numpy(), rtol=1e-4, atol=1e-4)


def test_bool_epilogue_on_a_shifted_block(rng):
    # a comparison after the conv: bool lanes stored one by one in the shifted last block
    x, w = _rand(rng, 1, 2, 5, 13), _rand(rng, 3, 2, 3, 3)
    y = Tensor(x).conv2d(Tensor(w)) > 0
    assert y.dtype is lg.bool_ and lg.schedule(y)[0].kind is KernelKind.CONV
    close(y, (F.conv2d(torch.tensor(x), torch.tensor(w)) > 0).numpy())


def test_operands_that_are_not_buffers_are_stored_first(rng):
    x, w = _rand(rng, 2, 9, 7, 3), _rand(rng, 4, 3, 3, 3)
    tx = Tensor(x).permute(0, 3, 1, 2)          # a view that is not a reshape: (2, 3, 9, 7)
    tw = Tensor(w) * 0.5                        # a computed weight
    y = tx.conv2d(tw, padding=1)
    ks = lg.schedule(y)
    assert ks[-1].kind is KernelKind.CONV and len(ks) == 3, ks
    reasons = " | ".join(k.reason for k in ks)
    assert "conv2d input read through a permute view" in reasons and "conv2d weight is computed" in reasons
    want = F.conv2d(torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(w) * 0.5, padding=1)
    close(y, want.numpy(), rtol=1e-4, atol=1e-4)


def test_conv_chain_is_one_kernel_per_layer(rng):
    x, w1, w2 = _rand(rng, 2, 3, 12, 12), _rand(rng, 8, 3, 3, 3), _rand(rng, 4, 8, 3, 3)
    y = Tensor(x).conv2d(Tensor(w1), padding=1).relu().conv2d(Tensor(w2), stride=2).relu()
    ks = lg.schedule(y)
    assert [k.kind for k in ks] == [KernelKind.CONV, KernelKind.CONV], ks
    want = F.relu(F.conv2d(F.relu(F.conv2d(torch.tensor(x), torch.tensor(w1), padding=1)), torch.tensor(w2), stride=2))
    close(y, want.numpy(), rtol=1e-4, atol=1e-4)


def test_second_order_gradient_matches_torch(rng):
    x, w = _rand(rng, 1, 2, 6, 7), _rand(rng, 3, 2, 3, 3)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    (gw,) = lg.grad(tx.conv2d(tw, padding=1).square().sum(), [tw])
    (ggx,) = lg.grad(gw.square().sum(), [tx])
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (pgw,) = torch.autograd.grad(F.conv2d(px, pw, padding=1).square().sum(), [pw], create_graph=True)
    (pggx,) = torch.autograd.grad(pgw.square().sum(), [px])
    close(gw, pgw.detach().numpy(), rtol=1e-4, atol=1e-3)
    close(ggx, pggx.numpy(), rtol=1e-4, atol=1e-2)


def test_unfused_matches_fused(rng, monkeypatch):
    x, w, b = _rand(rng, 2, 4, 9, 11), _rand(rng, 6, 2, 3, 3), _rand(rng, 6)
    fused = Tensor(x).conv2d(Tensor(w), Tensor(b), stride=2, padding=1, groups=2).relu().numpy()
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    y = Tensor(x).conv2d(Tensor(w), Tensor(b), stride=2, padding=1, groups=2).relu()
    assert lg.schedule(y)[0].kind is KernelKind.CONV
    close(y, fused, rtol=1e-6, atol=1e-6)


def test_conv_is_one_graph_node(rng):
    # the Python cost of a conv layer is its graph: conv + bias + relu stays a handful of nodes
    y = Tensor(_rand(rng, 1, 3, 8, 8)).conv2d(Tensor(_rand(rng, 4, 3, 3, 3)), Tensor(_rand(rng, 4))).relu()
    nodes = gr.toposort([y.node])
    assert sum(n.op is Op.CONV2D for n in nodes) == 1 and len(nodes) <= 16, nodes


def test_direct_or_im2col(monkeypatch, rng):
    monkeypatch.setenv("LAZYGRAD_CONV", "auto")
    assert use_direct(dt.float32) and use_direct(dt.float64)
    assert not use_direct(dt.float16)  # the matmul accumulates fp16 in fp32
    x, w = _rand(rng, 1, 2, 6, 6), _rand(rng, 3, 2, 3, 3)
    y = Tensor(x).conv2d(Tensor(w))
    assert KernelKind.CONV in [k.kind for k in lg.schedule(y)]
    monkeypatch.setenv("LAZYGRAD_CONV", "im2col")
    assert not use_direct(dt.float32)
    # the same graph: the choose_conv pass decides when the plan is built, not when y was made
    assert KernelKind.CONV not in [k.kind for k in lg.schedule(y)]
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)


def test_conv_pool_conv_stack(rng):
    # a pooled conv result (a reduction seen through a reshape) feeds the next conv in place
    x, w1, b1, w2 = _rand(rng, 3, 1, 8, 8), _rand(rng, 4, 1, 3, 3), _rand(rng, 4), _rand(rng, 6, 4, 3, 3)
    tw1, tw2 = Tensor(w1, requires_grad=True), Tensor(w2, requires_grad=True)
    y = Tensor(x).conv2d(tw1, Tensor(b1), padding=1).relu().max_pool2d(2).conv2d(tw2, padding=1).relu().max_pool2d(2)
    # (max_pool2d: the row-wise first-maximum kernel, torch's tie gradient)
    assert [k.kind for k in lg.schedule(y)] == [KernelKind.CONV, KernelKind.ROWWISE] * 2
    pw1, pw2 = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
    py = F.max_pool2d(F.relu(F.conv2d(F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), pw1, torch.tensor(b1), padding=1)), 2),
                                      pw2, padding=1)), 2)
    close(y, py.detach().numpy(), rtol=1e-4, atol=1e-4)
    y.square().sum().backward()
    py.square().sum().backward()
    close(tw1.grad, pw1.grad.numpy(), rtol=1e-3, atol=1e-3)
    close(tw2.grad, pw2.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_conv_of_a_tensor_with_itself(rng):
    # both operands one node: the gradient is the sum of both contributions, counted once
    x = _rand(rng, 1, 1, 3, 3)
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    tx.conv2d(tx, padding=1).square().sum().backward()
    F.conv2d(px, px, padding=1).square().sum().backward()
    close(tx.grad, px.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["stride2-pad1-odd", "stride-1x3-dilation2", "groups2-pad1",
                                  "stride2-pad1-dil2-groups2", "pad-wider-than-input"])
def test_input_gradient_is_a_transposed_direct_conv(rng, name):
    """dL/dx of a direct conv is one direct conv kernel over the stride-dilated gradient (the
    windows' col2im was two reduce kernels with huge index expressions: 38 ms a launch for the
    digits CNN's conv2), equal to torch's; a padding wider than the kernel falls back."""
    xs, ws, s, p, d, g = GEOMETRIES[name]
    x, w = _rand(rng, *xs), _rand(rng, *ws)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = tx.conv2d(tw, stride=s, padding=p, dilation=d, groups=g)
    gy = _rand(rng, *y.shape)
    (gx,) = lg.grad(y, [tx], grad_output=Tensor(gy))
    kernels = lg.schedule(gx)
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w)
    F.conv2d(px, pw, stride=s, padding=p, dilation=d, groups=g).backward(torch.tensor(gy))
    close(gx, px.grad.numpy(), rtol=1e-4, atol=1e-4)
    # one conv kernel; its operands' views (the stride-dilated gradient, the flipped weights)
    # are copied to plain buffers first, as the direct kernel reads them
    assert [k.kind for k in kernels].count(KernelKind.CONV) == 1 and kernels[-1].kind is KernelKind.CONV, kernels
    assert all(k.kind is KernelKind.ELEMENTWISE and "copied to a plain buffer" in k.reason
               for k in kernels[:-1]), kernels
    assert kernels[-1].user_ops()[0][0] == "conv2d_grad"


def test_input_gradient_falls_back_where_padding_exceeds_the_kernel(rng):
    x, w = _rand(rng, 1, 2, 4, 4), _rand(rng, 3, 2, 2, 2)   # padding 2 > d (k - 1) = 1
    tx = Tensor(x, requires_grad=True)
    y = tx.conv2d(Tensor(w), padding=2)
    gy = _rand(rng, *y.shape)
    (gx,) = lg.grad(y, [tx], grad_output=Tensor(gy))
    px = torch.tensor(x, requires_grad=True)
    F.conv2d(px, torch.tensor(w), padding=2).backward(torch.tensor(gy))
    close(gx, px.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert KernelKind.CONV not in [k.kind for k in lg.schedule(gx)]


def test_gradients_of_the_transposed_input_gradient_match_torch(rng):
    """Second order through the new path: d(|dx|^2)/dw and /dy's source."""
    x, w = _rand(rng, 1, 2, 7, 6), _rand(rng, 4, 2, 3, 3)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    (gx,) = lg.grad(tx.conv2d(tw, stride=2, padding=1).square().sum(), [tx])
    (ggw,) = lg.grad(gx.square().sum(), [tw])
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (pgx,) = torch.autograd.grad(F.conv2d(px, pw, stride=2, padding=1).square().sum(), [px], create_graph=True)
    (pggw,) = torch.autograd.grad(pgx.square().sum(), [pw])
    close(gx, pgx.detach().numpy(), rtol=1e-4, atol=1e-3)
    close(ggw, pggw.numpy(), rtol=1e-4, atol=1e-2)
