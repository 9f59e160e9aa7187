"""Issue 16, part B.3: resampling, 1-D / 3-D / transposed convolution, pooling (1-D, 3-D,
ceil_mode, return_indices, max_unpool2d) and F.pad modes: values and gradients against torch,
the modules against torch's with the same weights, kernel counts and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor, nn
from lazygrad.nn import functional as F

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _data(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(lfn, tfn, *arrays, rtol=1e-4, atol=1e-5, noncontig=False):
    """Values and the gradients of sum(out * w) of lfn vs tfn; `noncontig` feeds the first input
    through a transpose of its last two dims (and back), so it is read through a view."""
    lx = [Tensor(a, dtype=a.dtype.name, requires_grad=True) for a in arrays]
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    li, ti = list(lx), list(tx)
    if noncontig:
        li[0] = (lx[0].transpose(-1, -2) * 1.0).transpose(-1, -2)
    lo, to = lfn(*li), tfn(*ti)
    close(lo, to.detach().numpy(), rtol, atol)
    w = np.random.default_rng(3).standard_normal(tuple(to.shape)).astype(arrays[0].dtype)
    (lo * Tensor(w, dtype=w.dtype.name)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for a, b in zip(lx, tx):
        close(a.grad, b.grad.numpy(), rtol, atol)


# --- convolutions -----------------------------------------------------------------------------------
CONV1D = [dict(stride=2, padding=1), dict(dilation=2, padding=2, groups=2)]


@pytest.mark.parametrize("kw", CONV1D, ids=str)
def test_conv1d_matches_torch(kw):
    check(lambda x, w, b: F.conv1d(x, w, b, **kw), lambda x, w, b: TF.conv1d(x, w, b, **kw),
          _data((2, 4, 11)), _data((6, 4 // kw.get("groups", 1), 3), 1), _data((6,), 2), noncontig=True)


CONV3D = [dict(stride=(2, 1, 2), padding=(1, 0, 1)), dict(dilation=(2, 1, 1), groups=2, padding=1)]


@pytest.mark.parametrize("kw", CONV3D, ids=str)
def test_conv3d_matches_torch(kw):
    check(lambda x, w, b: F.conv3d(x, w, b, **kw), lambda x, w, b: TF.conv3d(x, w, b, **kw),
          _data((2, 4, 5, 6, 5)), _data((4, 4 // kw.get("groups", 1), 2, 3, 2), 1), _data((4,), 2))


CONVT = [dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0)), dict(stride=2, padding=1, groups=2, dilation=(2, 1)),
         dict(padding=2)]


@pytest.mark.parametrize("kw", CONVT, ids=str)
def test_conv_transpose2d_matches_torch(kw):
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw),
          _data((2, 4, 5, 6)), _data((4, 3, 3, 2), 1), _data((3 * kw.get("groups", 1),), 2), noncontig=True)


def test_conv_transpose1d_and_float64_match_torch():
    check(lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
          lambda x, w: TF.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
          _data((2, 3, 7)), _data((3, 2, 3), 1))
    check(lambda x, w: F.conv_transpose2d(x, w, stride=2), lambda x, w: TF.conv_transpose2d(x, w, stride=2),
          _data((1, 2, 3, 4), dtype=np.float64), _data((2, 2, 2, 2), 1, np.float64), rtol=1e-10, atol=1e-10)
    check(lambda x, w: F.conv1d(x, w), lambda x, w: TF.conv1d(x, w),
          _data((1, 2, 5), dtype=np.float64), _data((3, 2, 1), 1, np.float64), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 9)),
    ("Conv3d", (2, 3, (2, 3, 2)), dict(padding=(1, 0, 1)), (2, 2, 4, 5, 4)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5, 5)),
    ("ConvTranspose1d", (3, 2, 4), dict(stride=3), (2, 3, 6)),
])
def test_conv_modules_match_torch(name, args, kwargs, shape):
    lm = getattr(nn, name)(*args, **kwargs)
    tm = getattr(torch.nn, name)(*args, **kwargs)
    assert lm.weight.shape == tuple(tm.weight.shape)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(lm.weight.numpy()))
        tm.bias.copy_(torch.tensor(lm.bias.numpy()))
    x = _data(shape)
    close(lm(Tensor(x)), tm(torch.tensor(x)).detach().numpy(), 1e-4, 1e-5)
    bound = 1 / np.sqrt(np.prod(lm.weight.shape[1:]))
    assert np.abs(lm.weight.numpy()).max() <= bound + 1e-6   # torch's kaiming-uniform range


def test_conv1d_is_one_conv_kernel():
    x, w = Tensor(_data((2, 4, 16))), Tensor(_data((8, 4, 3), 1))
    ks = lg.schedule(F.conv1d(x, w, Tensor(_data((8,), 2)), padding=1).relu())
    assert [k.kind for k in ks] == ["conv"]


def test_conv_errors():
    with pytest.raises(ValueError, match="3-D input"):
        F.conv1d(Tensor(_data((2, 4))), Tensor(_data((6, 4, 3))))
    with pytest.raises(ValueError, match="too small"):
        F.conv3d(Tensor(_data((1, 1, 1, 3, 3))), Tensor(_data((1, 1, 2, 1, 1))))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(Tensor(_data((1, 2, 3, 3))), Tensor(_data((2, 2, 3, 3))), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="groups"):
        F.conv_transpose2d(Tensor(_data((1, 3, 3, 3))), Tensor(_data((3, 2, 3, 3))), groups=2)
    with pytest.raises(TypeError, match="stride"):
        F.conv1d(Tensor(_data((1, 2, 5))), Tensor(_data((1, 2, 3))), stride=(1, 1))


# --- pooling ---------------------------------------------------------------------------------------
POOL1D = [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, stride=2, ceil_mode=True)]


@pytest.mark.parametrize("kw", POOL1D, ids=str)
def test_pool1d_matches_torch(kw):
    x = _data((2, 3, 9))
    check(lambda a: F.max_pool1d(a, **kw), lambda a: TF.max_pool1d(a, **kw), x)
    check(lambda a: F.avg_pool1d(a, **kw), lambda a: TF.avg_pool1d(a, **kw), x)
    check(lambda a: F.avg_pool1d(a, count_include_pad=False, **kw),
          lambda a: TF.avg_pool1d(a, count_include_pad=False, **kw), x)


POOL3D = [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), ceil_mode=True)]


@pytest.mark.parametrize("kw", POOL3D, ids=str)
def test_pool3d_matches_torch(kw):
    x = _data((2, 3, 5, 7, 6))
    check(lambda a: F.max_pool3d(a, **kw), lambda a: TF.max_pool3d(a, **kw), x)
    check(lambda a: F.avg_pool3d(a, **kw), lambda a: TF.avg_pool3d(a, **kw), x)
    check(lambda a: F.avg_pool3d(a, count_include_pad=False, **kw),
          lambda a: TF.avg_pool3d(a, count_include_pad=False, **kw), x)
    check(lambda a: F.avg_pool3d(a, divisor_override=7, **kw), lambda a: TF.avg_pool3d(a, divisor_override=7, **kw), x)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, ceil_mode=True, padding=1),
                                dict(kernel_size=2, dilation=2, padding=1)], ids=str)
def test_max_pool2d_ceil_mode_and_indices_match_torch(kw):
    x = _data((2, 3, 7, 8))
    x[0, 0, :2, :2] = 1.0                       # a tie inside a window: the first one's index
    check(lambda a: a.max_pool2d(**kw, return_indices=True)[0], lambda a: TF.max_pool2d(a, **kw), x)
    v, i = Tensor(x).max_pool2d(**kw, return_indices=True)
    tv, ti = TF.max_pool2d(torch.tensor(x), **kw, return_indices=True)
    close(i, ti.numpy())
    kw2 = {k: v for k, v in kw.items() if k != "dilation"} | {"ceil_mode": True}
    check(lambda a: a.avg_pool2d(**kw2), lambda a: TF.avg_pool2d(a, **kw2), x)
    check(lambda a: a.avg_pool2d(**kw2, divisor_override=3), lambda a: TF.avg_pool2d(a, **kw2, divisor_override=3), x)
    mods = nn.MaxPool1d(3, 2, ceil_mode=True), torch.nn.MaxPool1d(3, 2, ceil_mode=True)
    close(mods[0](Tensor(x[0])), mods[1](torch.tensor(x[0])).numpy())


def test_max_unpool2d_matches_torch():
    x = _data((2, 3, 6, 8))
    tv, ti = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    v, i = Tensor(x).max_pool2d(2, return_indices=True)
    check(lambda a: F.max_unpool2d(a, i, 2), lambda a: TF.max_unpool2d(a, ti, 2), tv.numpy())
    check(lambda a: nn.MaxUnpool2d(2)(a, i, output_size=(7, 9)),
          lambda a: torch.nn.MaxUnpool2d(2)(a, ti, output_size=(7, 9)), tv.numpy())


def test_pool_errors():
    with pytest.raises(ValueError, match="3-D input"):
        F.max_pool1d(Tensor(_data((2, 9))), 2)
    with pytest.raises(ValueError, match="at most half"):
        F.avg_pool3d(Tensor(_data((1, 1, 4, 4, 4))), 2, padding=2)
    with pytest.raises(TypeError, match="floating point"):
        F.avg_pool1d(Tensor(np.arange(8, dtype=np.int32).reshape(1, 1, 8)), 2)


# --- pad modes and interpolate ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("widths", [(2, 0, 1, 3), (-1, 2, 3, -2)], ids=str)
def test_pad_modes_match_torch(mode, widths):
    x = _data((2, 3, 5, 6))
    check(lambda a: F.pad(a, widths, mode), lambda a: TF.pad(a, widths, mode), x)


def test_pad_modes_3d_fuse_and_errors():
    x = _data((1, 2, 3, 4, 5))
    check(lambda a: F.pad(a, (1, 1, 2, 0, 1, 2), "replicate"), lambda a: TF.pad(a, (1, 1, 2, 0, 1, 2), "replicate"), x)
    check(lambda a: F.pad(a, (2, 2), "constant", 1.5), lambda a: TF.pad(a, (2, 2), "constant", 1.5), x)
    assert len(lg.schedule((F.pad(Tensor(x) * 2, (1, 2, 1, 1), "reflect") + 1).exp())) == 1
    with pytest.raises(ValueError, match="reflect padding"):
        F.pad(Tensor(_data((1, 1, 3))), (3, 0), "reflect")
    with pytest.raises(ValueError, match="mode must be"):
        F.pad(Tensor(x), (1, 1), "wrap")
    with pytest.raises(ValueError, match="even number"):
        F.pad(Tensor(x), (1,))


INTERP = [dict(size=(7, 9)), dict(scale_factor=(1.5, 0.7)), dict(size=(1, 5))]


@pytest.mark.parametrize("kw", INTERP, ids=str)
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_matches_torch(kw, mode, ac):
    x = _data((2, 3, 5, 6))
    check(lambda a: F.interpolate(a, mode=mode, align_corners=ac, **kw),
          lambda a: TF.interpolate(a, mode=mode, align_corners=ac, **kw), x, atol=1e-5)


def test_interpolate_linear_trilinear_and_errors():
    check(lambda a: F.interpolate(a, size=8, mode="linear"), lambda a: TF.interpolate(a, size=8, mode="linear"),
          _data((2, 3, 5)))
    check(lambda a: F.interpolate(a, scale_factor=(2, 1.5, 1), mode="trilinear", align_corners=True),
          lambda a: TF.interpolate(a, scale_factor=(2, 1.5, 1), mode="trilinear", align_corners=True),
          _data((1, 2, 3, 4, 2)))
    x = Tensor(_data((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="4-D input"):
        F.interpolate(Tensor(_data((1, 1, 4))), size=3, mode="bilinear")
    with pytest.raises(NotImplementedError, match="nearest-exact"):   # bicubic and area: test_ops16_resample_padding
        F.interpolate(x, size=3, mode="nearest-exact")


def test_max_pool2d_tie_gradient_goes_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 0] = 1.0
    a = Tensor(x, requires_grad=True)
    a.max_pool2d(2).sum().backward()
    t = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(t, 2).sum().backward()
    close(a.grad, t.grad.numpy())


def _ties(shape, seed=0):
    """Inputs with many tied maxima: small integers (every window has ties) and one all-equal
    plane (every window of it is all ties)."""
    x = np.random.default_rng(seed).integers(0, 3, shape).astype(np.float32)
    x[(0,) * (len(shape) - 2)] = 1.0
    return x


# (lazygrad fn, torch fn, input shape): all-equal windows, overlapping windows (stride < kernel),
# padding, dilation and ceil_mode, in 1-D, 2-D (both the floor-mode and the ceil / indices paths)
# and 3-D
TIE_POOLS = [
    ("2d", lambda f: lambda a: f.max_pool2d(a, 2), (2, 2, 4, 6)),
    ("2d_overlap", lambda f: lambda a: f.max_pool2d(a, 3, 1), (2, 2, 5, 6)),
    ("2d_pad_dil", lambda f: lambda a: f.max_pool2d(a, 3, 2, 1, 2), (1, 2, 7, 7)),
    ("2d_ceil", lambda f: lambda a: f.max_pool2d(a, 3, 2, ceil_mode=True), (2, 2, 6, 7)),
    ("2d_indices", lambda f: lambda a: f.max_pool2d(a, 2, 1, return_indices=True)[0], (2, 2, 4, 5)),
    ("1d", lambda f: lambda a: f.max_pool1d(a, 3, 1), (2, 3, 9)),
    ("1d_ceil", lambda f: lambda a: f.max_pool1d(a, 2, 2, ceil_mode=True), (2, 3, 7)),
    ("3d", lambda f: lambda a: f.max_pool3d(a, 2), (1, 2, 4, 4, 4)),
    ("3d_overlap", lambda f: lambda a: f.max_pool3d(a, (2, 3, 2), 1, (1, 1, 0)), (1, 2, 3, 5, 4)),
    ("3d_ceil", lambda f: lambda a: f.max_pool3d(a, 2, 2, ceil_mode=True), (1, 1, 5, 5, 3)),
]


@pytest.mark.parametrize("name,make,shape", TIE_POOLS, ids=[p[0] for p in TIE_POOLS])
def test_max_pool_tied_maxima_give_the_gradient_to_the_first_like_torch(name, make, shape):
    check(make(F), make(TF), _ties(shape), atol=1e-6, rtol=1e-6)


def test_max_pool2d_ties_module_and_method_and_noncontiguous():
    """nn.MaxPool2d and Tensor.max_pool2d take the floor-mode path; a transposed view as input."""
    x = _ties((2, 3, 6, 6), 1)
    check(lambda a: nn.MaxPool2d(2, 1)(a), lambda a: torch.nn.MaxPool2d(2, 1)(a), x, atol=1e-6, rtol=1e-6,
          noncontig=True)
    check(lambda a: a.max_pool2d((2, 3), (1, 2)), lambda a: TF.max_pool2d(a, (2, 3), (1, 2)), x, atol=1e-6, rtol=1e-6)


def test_max_pool2d_floor_mode_stays_one_kernel():
    x = Tensor(_data((2, 3, 8, 8)))
    assert len(lg.schedule(x.max_pool2d(2))) == 1
    assert len(lg.schedule((x.max_pool2d(2) * 2 + 1).relu())) == 1
