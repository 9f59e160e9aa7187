"""Issue 16's remaining surface: conv padding='same' / 'valid' (1-D, 2-D, 3-D and the modules),
interpolate 'bicubic' and 'area', the adaptive pools and max_pool3d's indices: values and
gradients against torch, dtypes, size-1 dims, non-contiguous inputs, torch's errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor, nn
from lazygrad.nn import functional as F

from conftest import close
from test_ops16_conv import _data, _ties, check


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


# --- conv padding strings ---------------------------------------------------------------------------
# even and odd kernels, dilation: an odd total padding puts its extra element on the right (torch)
SAME = [(3, 1), (4, 1), (2, 3), (4, 2)]


@pytest.mark.parametrize("k,d", SAME, ids=lambda v: str(v))
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv1d_padding_strings_match_torch(k, d, mode):
    check(lambda x, w, b: F.conv1d(x, w, b, padding=mode, dilation=d),
          lambda x, w, b: TF.conv1d(x, w, b, padding=mode, dilation=d),
          _data((2, 3, 13)), _data((4, 3, k), 1), _data((4,), 2), noncontig=True)


@pytest.mark.parametrize("k,d", [((3, 4), (1, 1)), ((2, 5), (2, 1)), ((4, 4), (1, 2))], ids=str)
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv2d_padding_strings_match_torch(k, d, mode):
    check(lambda x, w, b: F.conv2d(x, w, b, padding=mode, dilation=d),
          lambda x, w, b: TF.conv2d(x, w, b, padding=mode, dilation=d),
          _data((2, 3, 9, 10)), _data((4, 3) + k, 1), _data((4,), 2), noncontig=True)


@pytest.mark.parametrize("mode", ["same", "valid"])
def test_conv3d_padding_strings_match_torch(mode):
    check(lambda x, w: F.conv3d(x, w, padding=mode, dilation=(1, 2, 1)),
          lambda x, w: TF.conv3d(x, w, padding=mode, dilation=(1, 2, 1)),
          _data((1, 2, 5, 7, 6)), _data((3, 2, 2, 3, 4), 1))


def test_conv_padding_same_in_modules_and_method():
    for lg_cls, t_cls, shape in ((nn.Conv1d, torch.nn.Conv1d, (2, 3, 11)), (nn.Conv2d, torch.nn.Conv2d, (2, 3, 7, 8)),
                                 (nn.Conv3d, torch.nn.Conv3d, (1, 3, 4, 5, 6))):
        m = lg_cls(3, 5, 4, padding="same", dilation=2)
        tm = t_cls(3, 5, 4, padding="same", dilation=2)
        with torch.no_grad():
            tm.weight.copy_(torch.tensor(m.weight.numpy()))
            tm.bias.copy_(torch.tensor(m.bias.numpy()))
        x = _data(shape)
        out = m(Tensor(x))
        assert out.shape == tuple(tm(torch.tensor(x)).shape) and out.shape[2:] == x.shape[2:]
        close(out, tm(torch.tensor(x)).detach().numpy(), 1e-4, 1e-5)
        assert "padding=same" in repr(m)
    x = _data((1, 2, 6, 6))
    w = _data((3, 2, 2, 2), 1)
    close(Tensor(x).conv2d(Tensor(w), padding="same"), TF.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy(),
          1e-4, 1e-5)


def test_conv_padding_same_errors_like_torch():
    x, w = Tensor(_data((1, 2, 8, 8))), Tensor(_data((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(RuntimeError, match="strided"):   # torch's functional raises too
        TF.conv2d(torch.zeros(1, 2, 8, 8), torch.zeros(3, 2, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        F.conv1d(Tensor(_data((1, 2, 8))), Tensor(_data((3, 2, 3))), stride=(2,), padding="same")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        torch.nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv3d(2, 3, 3, stride=(1, 2, 1), padding="same")
    with pytest.raises(ValueError, match="invalid padding"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="invalid padding"):
        nn.Conv1d(2, 3, 3, padding="full")
    # 'valid' with a stride is fine, as in torch
    close(F.conv2d(x, w, stride=2, padding="valid"), TF.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), stride=2).numpy(),
          1e-4, 1e-5)


# --- interpolate: bicubic and area ------------------------------------------------------------------
RESIZE = [dict(size=(7, 9)), dict(scale_factor=(1.5, 0.7)), dict(size=(1, 5)), dict(scale_factor=2),
          dict(size=(3, 2))]


@pytest.mark.parametrize("kw", RESIZE, ids=str)
@pytest.mark.parametrize("ac", [False, True])
def test_interpolate_bicubic_matches_torch(kw, ac):
    check(lambda a: F.interpolate(a, mode="bicubic", align_corners=ac, **kw),
          lambda a: TF.interpolate(a, mode="bicubic", align_corners=ac, **kw), _data((2, 3, 5, 6)), atol=1e-5,
          noncontig=True)


@pytest.mark.parametrize("shape,kw", [((2, 3, 7), dict(size=3)), ((2, 3, 5, 6), dict(size=(3, 4))),
                                      ((2, 3, 5, 6), dict(scale_factor=0.5)), ((1, 2, 4, 5, 6), dict(size=(2, 3, 4))),
                                      ((2, 3, 4, 4), dict(size=(7, 9)))], ids=str)
def test_interpolate_area_matches_torch(shape, kw):
    check(lambda a: F.interpolate(a, mode="area", **kw), lambda a: TF.interpolate(a, mode="area", **kw), _data(shape))


def test_interpolate_bicubic_float64_and_errors():
    x = _data((1, 2, 4, 5), dtype=np.float64)
    check(lambda a: F.interpolate(a, size=(6, 3), mode="bicubic"),
          lambda a: TF.interpolate(a, size=(6, 3), mode="bicubic"), x, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(Tensor(_data((1, 1, 4))), size=3, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(Tensor(_data((1, 1, 4, 4))), size=3, mode="area", align_corners=True)
    with pytest.raises(NotImplementedError, match="lanczos"):
        F.interpolate(Tensor(_data((1, 1, 4, 4))), size=3, mode="lanczos")


# --- adaptive pools ---------------------------------------------------------------------------------
ADAPTIVE = [
    ("avg1d", "adaptive_avg_pool1d", (2, 3, 10), 4),
    ("avg1d_up", "adaptive_avg_pool1d", (2, 3, 3), 7),
    ("avg2d", "adaptive_avg_pool2d", (2, 3, 7, 9), (3, 4)),
    ("avg2d_global", "adaptive_avg_pool2d", (2, 3, 5, 6), 1),
    ("avg2d_none", "adaptive_avg_pool2d", (2, 3, 5, 6), (None, 4)),
    ("avg2d_unbatched", "adaptive_avg_pool2d", (3, 5, 6), (2, 2)),
    ("avg3d", "adaptive_avg_pool3d", (1, 2, 5, 6, 7), (2, 3, 4)),
    ("max1d", "adaptive_max_pool1d", (2, 3, 10), 4),
    ("max2d", "adaptive_max_pool2d", (2, 3, 7, 9), (3, 4)),
    ("max2d_global", "adaptive_max_pool2d", (2, 3, 5, 6), 1),
    ("max2d_up", "adaptive_max_pool2d", (1, 2, 3, 4), (5, 7)),
]


@pytest.mark.parametrize("name,fn,shape,out", ADAPTIVE, ids=[a[0] for a in ADAPTIVE])
def test_adaptive_pools_match_torch(name, fn, shape, out):
    check(lambda a: getattr(F, fn)(a, out), lambda a: getattr(TF, fn)(a, out), _data(shape), noncontig=True)
    if "max" in fn:  # tied maxima: the gradient goes to torch's element
        check(lambda a: getattr(F, fn)(a, out), lambda a: getattr(TF, fn)(a, out), _ties(shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn,shape,out", [("adaptive_max_pool2d", (2, 3, 7, 9), (3, 4)),
                                          ("adaptive_max_pool2d", (2, 2, 5, 5), 2),
                                          ("adaptive_max_pool1d", (2, 3, 10), 3)], ids=str)
def test_adaptive_max_pool_indices_match_torch(fn, shape, out):
    for x in (_data(shape), _ties(shape)):
        v, i = getattr(F, fn)(Tensor(x), out, return_indices=True)
        tv, ti = getattr(TF, fn)(torch.tensor(x), out, return_indices=True)
        close(v, tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_adaptive_modules_and_float64():
    x = _data((2, 3, 6, 5), dtype=np.float64)
    for lg_m, t_m in ((nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3))),
                      (nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2)),
                      (nn.AdaptiveAvgPool1d(2), torch.nn.AdaptiveAvgPool1d(2)),
                      (nn.AdaptiveAvgPool3d(1), torch.nn.AdaptiveAvgPool3d(1))):
        inp = x if not isinstance(lg_m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool3d)) else (
            x[:, :, 0] if isinstance(lg_m, nn.AdaptiveAvgPool1d) else x[:, :, None])
        out = lg_m(Tensor(inp))
        assert out.dtype is lg.float64
        close(out, t_m(torch.tensor(inp)).numpy(), 1e-12, 1e-12)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(Tensor(_data((1, 1, 4, 4))), (2, 2, 2))
    with pytest.raises(TypeError, match="floating"):
        F.adaptive_avg_pool2d(Tensor(np.ones((1, 1, 4, 4), np.int32)), 2)


# --- max_pool3d indices -----------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=1),
                                dict(kernel_size=2, ceil_mode=True), dict(kernel_size=2, stride=1, dilation=(1, 2, 1))],
                         ids=str)
def test_max_pool3d_return_indices_match_torch(kw):
    for x in (_data((2, 3, 5, 6, 7)), _ties((1, 2, 5, 6, 5))):
        v, i = F.max_pool3d(Tensor(x), return_indices=True, **kw)
        tv, ti = TF.max_pool3d(torch.tensor(x), return_indices=True, **kw)
        close(v, tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    m = nn.MaxPool3d(2, return_indices=True)
    v, i = m(Tensor(_ties((1, 1, 4, 4, 4))))
    np.testing.assert_array_equal(i.numpy(), torch.nn.MaxPool3d(2, return_indices=True)(
        torch.tensor(_ties((1, 1, 4, 4, 4))))[1].numpy())
    # the values' gradient still goes to the indexed element
    check(lambda a: F.max_pool3d(a, 2, return_indices=True)[0], lambda a: TF.max_pool3d(a, 2, return_indices=True)[0],
          _ties((1, 2, 4, 4, 4)), rtol=1e-6, atol=1e-6)


# --- size-1 dims and kernel counts ------------------------------------------------------------------
def test_size_one_dims():
    check(lambda a: F.interpolate(a, size=(1, 1), mode="bicubic"), lambda a: TF.interpolate(a, size=(1, 1), mode="bicubic"),
          _data((1, 1, 1, 1)))
    check(lambda a: F.adaptive_avg_pool2d(a, 1), lambda a: TF.adaptive_avg_pool2d(a, 1), _data((1, 1, 1, 5)))
    check(lambda a: F.adaptive_max_pool2d(a, (1, 3)), lambda a: TF.adaptive_max_pool2d(a, (1, 3)), _data((1, 1, 1, 5)))
    check(lambda x, w: F.conv2d(x, w, padding="same"), lambda x, w: TF.conv2d(x, w, padding="same"),
          _data((1, 1, 1, 4)), _data((2, 1, 1, 2), 1))


def test_bicubic_kernels_are_its_gathers_and_one_mix_per_dim():
    """Like bilinear (2 taps): one gather kernel per tap and one elementwise mix per resized dim."""
    x = Tensor(_data((2, 3, 8, 8)))
    kinds = [str(k.kind) for k in lg.schedule(F.interpolate(x, size=(5, 7), mode="bicubic"))]
    assert kinds == (["gather"] * 4 + ["elementwise"]) * 2
    kinds = [str(k.kind) for k in lg.schedule(F.interpolate(x, size=(5, 7), mode="area"))]
    assert kinds.count("matmul") <= 2 and len(kinds) <= 4
