"""lazygrad.nn against torch.nn: modules, losses and normalisation forward and backward, state
dicts and their errors, initialisation, checkpoints (round trip in a fresh process), batching."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor, nn
from lazygrad.data import DataLoader, progress
from lazygrad.nn import functional as F
from lazygrad.nn import init
from lazygrad.nn.state import (CheckpointError, load_arrays, load_checkpoint, load_state_dict, save_checkpoint, save_state_dict)

ROOT = Path(__file__).resolve().parents[1]
has_conv = hasattr(Tensor, "conv2d")
needs_conv = pytest.mark.skipif(not has_conv, reason="Tensor.conv2d not available yet (issue 4)")


def close(a, e, rtol=1e-5, atol=1e-5):
    a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
    e = e.detach().numpy() if isinstance(e, torch.Tensor) else np.asarray(e)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def pair(arr: np.ndarray, grad: bool = True) -> tuple[Tensor, torch.Tensor]:
    return Tensor(arr, requires_grad=grad), torch.tensor(arr, requires_grad=grad)


def copy_weights(lmodel: nn.Module, tmodel: torch.nn.Module) -> None:
    lmodel.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- modules vs torch ------------------------------------------------------------------------------
def test_mlp_forward_backward_matches_torch(rng):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    lm = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5))
    copy_weights(lm, tm)
    x = rng.standard_normal((8, 12)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    lx, tx = pair(x)
    lloss = lm(lx).cross_entropy(Tensor(y))
    tloss = TF.cross_entropy(tm(tx), torch.tensor(y))
    lloss.backward()
    tloss.backward()
    close(lloss, tloss)
    close(lx.grad, tx.grad)
    for (name, lp), (tname, tp) in zip(lm.named_parameters(), tm.named_parameters()):
        assert name == tname
        close(lp.grad, tp.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("lmod,tmod", [
    (nn.ReLU(), torch.nn.ReLU()), (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Tanh(), torch.nn.Tanh()),
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)), (nn.SiLU(), torch.nn.SiLU()), (nn.ELU(0.5), torch.nn.ELU(0.5)),
    (nn.Softplus(2.0), torch.nn.Softplus(2.0)), (nn.Softmax(1), torch.nn.Softmax(1)),
    (nn.LogSoftmax(1), torch.nn.LogSoftmax(1)), (nn.Flatten(), torch.nn.Flatten()),
], ids=lambda m: type(m).__name__)
def test_activation_modules_match_torch(lmod, tmod, rng):
    x = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
    lx, tx = pair(x)
    ly, ty = lmod(lx), tmod(tx)
    close(ly, ty, rtol=1e-5, atol=2e-6)
    ly.sum().backward()
    ty.sum().backward()
    close(lx.grad, tx.grad, rtol=1e-4, atol=1e-5)


def test_layernorm_matches_torch(rng):
    x = rng.standard_normal((3, 4, 6)).astype(np.float32) * 5 + 2
    lx, tx = pair(x)
    lln, tln = nn.LayerNorm((4, 6)), torch.nn.LayerNorm((4, 6))
    with torch.no_grad():
        tln.weight.copy_(torch.tensor(rng.standard_normal((4, 6)).astype(np.float32)))
        tln.bias.copy_(torch.tensor(rng.standard_normal((4, 6)).astype(np.float32)))
    copy_weights(lln, tln)
    ly, ty = lln(lx), tln(tx)
    close(ly, ty, atol=2e-5)
    w = rng.standard_normal(ly.shape).astype(np.float32)
    (ly * Tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    close(lx.grad, tx.grad, rtol=1e-4, atol=1e-5)
    close(lln.weight.grad, tln.weight.grad, rtol=1e-4, atol=1e-5)
    close(lln.bias.grad, tln.bias.grad, rtol=1e-4, atol=1e-5)
    # the Tensor method with the default (last dim) normalized shape
    close(lx.layernorm(), TF.layer_norm(tx, (6,)), atol=2e-5)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_training_and_eval_match_torch(momentum, rng):
    lbn, tbn = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        tbn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    copy_weights(lbn, tbn)
    for step in range(3):
        x = (rng.standard_normal((4, 3, 5, 5)) * (step + 1) + step).astype(np.float32)
        lx, tx = pair(x)
        ly, ty = lbn(lx), tbn(tx)
        close(ly, ty, atol=3e-5)
        w = rng.standard_normal(x.shape).astype(np.float32)
        (ly * Tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        close(lx.grad, tx.grad, rtol=1e-4, atol=1e-4)
        lg.realize(*F.pending_buffer_updates())
        close(lbn.running_mean, tbn.running_mean, atol=1e-5)
        close(lbn.running_var, tbn.running_var, atol=1e-5)
    close(lbn.weight.grad, tbn.weight.grad, rtol=1e-4, atol=1e-4)
    assert lbn.state_dict()["num_batches_tracked"].item() == 3
    lbn.eval()
    tbn.eval()
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    close(lbn(Tensor(x)), tbn(torch.tensor(x)), atol=3e-5)


def test_batchnorm1d_and_functional_batchnorm(rng):
    lbn, tbn = nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    close(lbn(Tensor(x)), tbn(torch.tensor(x)), atol=3e-5)
    lg.realize(*F.pending_buffer_updates())
    close(lbn.running_var, tbn.running_var, atol=1e-6)
    rm, rv = np.array([0.5, -1, 0, 2], np.float32), np.array([1, 2, 0.5, 4], np.float32)
    out = Tensor(x).batchnorm(Tensor(rm), Tensor(rv), training=False)
    close(out, TF.batch_norm(torch.tensor(x), torch.tensor(rm), torch.tensor(rv), training=False), atol=1e-5)
    with pytest.raises(ValueError, match="BatchNorm1d: input has 5 channels"):
        lbn(Tensor(np.zeros((2, 5), np.float32)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        lbn(Tensor(np.zeros((1, 4), np.float32)))


def test_dropout_statistics_eval_and_fusion():
    lg.manual_seed(1)
    x = Tensor(np.ones((64, 64), np.float32))
    y = x.dropout(0.25).numpy()
    kept = y != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    d = nn.Dropout(0.25)
    assert d.eval()(x) is x
    # the mask is device-side random numbers: dropout fuses with the ops around it
    assert len(lg.schedule((x * 2).dropout(0.5) + 1)) == 1
    # same seed, same mask
    lg.manual_seed(1)
    np.testing.assert_array_equal(x.dropout(0.25).numpy(), y)
    with pytest.raises(ValueError, match="dropout: probability"):
        x.dropout(1.5)


@needs_conv
def test_conv2d_module_matches_torch(rng):
    tconv = torch.nn.Conv2d(3, 4, 3, stride=1, padding=1)
    lconv = nn.Conv2d(3, 4, 3, stride=1, padding=1)
    copy_weights(lconv, tconv)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    lx, tx = pair(x)
    ly, ty = lconv(lx), tconv(tx)
    close(ly, ty, rtol=1e-4, atol=1e-4)
    ly.sum().backward()
    ty.sum().backward()
    close(lconv.weight.grad, tconv.weight.grad, rtol=1e-4, atol=1e-3)
    close(lx.grad, tx.grad, rtol=1e-4, atol=1e-4)


@needs_conv
def test_small_cnn_matches_torch(rng):
    def build(m):
        return m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(), m.MaxPool2d(2),
                            m.Flatten(), m.Linear(4 * 4 * 4, 3))
    tm, lm = build(torch.nn), build(nn)
    copy_weights(lm, tm)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
    tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
    close(lloss, tloss, atol=1e-5)
    lloss.backward()
    tloss.backward()
    for (n, lp), (_, tp) in zip(lm.named_parameters(), tm.named_parameters()):
        close(lp.grad, tp.grad, rtol=1e-3, atol=1e-4)


def test_conv2d_module_validates_arguments():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(3, 4, (3, 3, 3))
    c = nn.Conv2d(4, 8, (3, 5), groups=2, bias=False)
    assert c.weight.shape == (8, 2, 3, 5) and c.bias is None
    assert [n for n, _ in c.named_parameters()] == ["weight"]


# --- losses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.1},
    {"weight": [1.0, 2.0, 0.5, 1.5]}, {"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.2},
    {"ignore_index": 2}, {"ignore_index": 2, "label_smoothing": 0.3, "weight": [1.0, 2.0, 0.5, 1.5]},
], ids=lambda kw: ",".join(kw) or "default")
def test_cross_entropy_class_indices_match_torch(kw, rng):
    x = (rng.standard_normal((7, 4)) * 3).astype(np.float32)
    y = rng.integers(0, 4, 7)
    lkw = {k: Tensor(np.array(v, np.float32)) if k == "weight" else v for k, v in kw.items()}
    tkw = {k: torch.tensor(v) if k == "weight" else v for k, v in kw.items()}
    lx, tx = pair(x)
    ll, tl = lx.cross_entropy(Tensor(y), **lkw), TF.cross_entropy(tx, torch.tensor(y), **tkw)
    close(ll, tl, atol=1e-5)
    ll.sum().backward()
    tl.sum().backward()
    close(lx.grad, tx.grad, atol=1e-5)


def test_cross_entropy_spatial_probabilities_and_stability(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = rng.integers(0, 3, (2, 4, 5))
    lx, tx = pair(x)
    for red in ("mean", "none"):
        close(lx.cross_entropy(Tensor(y), reduction=red), TF.cross_entropy(tx, torch.tensor(y), reduction=red), atol=1e-5)
    p = rng.random((6, 3)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    z = rng.standard_normal((6, 3)).astype(np.float32)
    close(F.cross_entropy(Tensor(z), Tensor(p), label_smoothing=0.1),
          TF.cross_entropy(torch.tensor(z), torch.tensor(p), label_smoothing=0.1), atol=1e-6)
    # huge logits: finite loss and gradients (max subtracted before exp)
    big = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 1.0]], np.float32)
    lb, tb = pair(big)
    ll, tl = lb.cross_entropy(Tensor([2, 1])), TF.cross_entropy(tb, torch.tensor([2, 1]))
    ll.backward()
    tl.backward()
    close(ll, tl, rtol=1e-6)
    close(lb.grad, tb.grad, atol=1e-6)
    # unbatched (C,) logits with a 0-d target
    close(Tensor(z[0]).cross_entropy(Tensor(np.array(1))), TF.cross_entropy(torch.tensor(z[0]), torch.tensor(1)))


def test_cross_entropy_errors_name_the_shapes():
    x = Tensor(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"cross_entropy: class-index target shape \(3,\) must be \(4,\)"):
        x.cross_entropy(Tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="probability target shape"):
        x.cross_entropy(Tensor(np.zeros((4, 2), np.float32)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        x.cross_entropy(Tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match=r"weight shape \(2,\)"):
        x.cross_entropy(Tensor([0, 1, 2, 0]), weight=Tensor([1.0, 2.0]))


def test_binary_losses_match_torch_and_are_stable(rng):
    z = np.array([-200.0, -30.0, -1.0, 0.0, 0.5, 3.0, 40.0, 300.0], np.float32)
    t = np.array([0, 1, 1, 0, 1, 0, 1, 0], np.float32)
    pw = np.float32(2.5)
    lz, tz = pair(z)
    ll = lz.binary_cross_entropy_with_logits(Tensor(t), pos_weight=Tensor(pw), reduction="none")
    tl = TF.binary_cross_entropy_with_logits(tz, torch.tensor(t), pos_weight=torch.tensor(pw), reduction="none")
    close(ll, tl, rtol=1e-5, atol=1e-6)
    ll.sum().backward()
    tl.sum().backward()
    close(lz.grad, tz.grad, atol=1e-6)
    # probabilities, including exact 0 and 1 (logs clamped at -100 like torch)
    p = np.array([0.0, 1e-8, 0.3, 0.5, 0.9, 1.0], np.float32)
    tt = np.array([1, 0, 1, 0, 1, 0], np.float32)
    close(F.binary_cross_entropy(Tensor(p), Tensor(tt), reduction="none"),
          TF.binary_cross_entropy(torch.tensor(p), torch.tensor(tt), reduction="none"), rtol=1e-5)
    q = rng.uniform(0.05, 0.95, 10).astype(np.float32)
    tq = (rng.random(10) > 0.5).astype(np.float32)
    lq, tqq = pair(q)
    ll, tl = lq.binary_cross_entropy(Tensor(tq)), TF.binary_cross_entropy(tqq, torch.tensor(tq))
    ll.backward()
    tl.backward()
    close(ll, tl)
    close(lq.grad, tqq.grad, rtol=1e-4)
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input shape \(10,\) and target shape \(10, 1\)"):
        lq.binary_cross_entropy(Tensor(tq.reshape(10, 1)))


def test_mse_l1_nll_match_torch(rng):
    a, b = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    la, ta = pair(a)
    for red in ("mean", "sum", "none"):
        close(la.mse_loss(Tensor(b), reduction=red), TF.mse_loss(ta, torch.tensor(b), reduction=red))
        close(F.l1_loss(la, Tensor(b), reduction=red), TF.l1_loss(ta, torch.tensor(b), reduction=red))
    ll, tl = la.mse_loss(Tensor(b)), TF.mse_loss(ta, torch.tensor(b))
    ll.backward()
    tl.backward()
    close(la.grad, ta.grad)
    y = np.array([0, 2, 1, 1, 0])
    w = np.array([0.5, 1.0, 2.0], np.float32)
    close(F.nll_loss(Tensor(a).log_softmax(1), Tensor(y), weight=Tensor(w)),
          TF.nll_loss(torch.tensor(a).log_softmax(1), torch.tensor(y), weight=torch.tensor(w)))
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(5, 3\) and target shape \(5, 1\)"):
        la.mse_loss(Tensor(b[:, :1]))


def test_loss_modules_delegate(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 2, 1, 1])
    close(nn.CrossEntropyLoss(label_smoothing=0.1)(Tensor(x), Tensor(y)),
          torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(x), torch.tensor(y)))
    close(nn.BCEWithLogitsLoss()(Tensor(x), Tensor((x > 0).astype(np.float32))),
          torch.nn.BCEWithLogitsLoss()(torch.tensor(x), torch.tensor((x > 0).astype(np.float32))))


# --- Module structure and state dicts --------------------------------------------------------------
class Block(nn.Module):
    def __init__(self) -> None:
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.heads = [nn.Linear(4, 2), nn.Linear(4, 1, bias=False)]
        self.scale = Tensor(np.ones(1, np.float32))      # a buffer (no grad)

    def forward(self, x):
        h = self.norm(self.fc(x)).relu()
        return self.heads[0](h).sum(1) + self.heads[1](h).sum(1) * self.scale


def test_module_names_modes_and_freezing():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    assert names == ["fc.weight", "fc.bias", "norm.weight", "norm.bias", "heads.0.weight", "heads.0.bias",
                     "heads.1.weight"]
    # own entries first (the buffer "scale"), then each child's, as in torch
    assert list(b.state_dict()) == ["scale"] + names[:4] + ["norm.running_mean", "norm.running_var",
                                                            "norm.num_batches_tracked"] + names[4:]
    assert [n for n, _ in b.named_buffers()] == ["scale", "norm.running_mean", "norm.running_var"]
    assert b.num_parameters() == 12 + 4 + 4 + 4 + 10 + 4
    b.eval()
    assert not b.training and not b.norm.training and not b.heads[1].training
    b.train()
    assert b.heads[0].training
    b.fc.weight.requires_grad_(False)   # frozen: still a parameter (saved, listed)
    assert "fc.weight" in [n for n, _ in b.named_parameters()]
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(seq.parameters()) == 2 and len(seq) == 3 and seq[0] is shared
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(b)


def test_state_dict_keys_match_torch_and_load_from_torch(rng):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    lm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    assert list(lm.state_dict()) == list(tm.state_dict())
    tm.train()
    tm(torch.randn(8, 3))            # move the running statistics away from their defaults
    tm.eval()
    lm.load_state_dict(tm.state_dict())   # torch tensors load directly
    lm.eval()
    x = rng.standard_normal((5, 3)).astype(np.float32)
    close(lm(Tensor(x)), tm(torch.tensor(x)), atol=1e-5)
    assert lm.state_dict()["1.num_batches_tracked"].item() == 1


def test_load_state_dict_errors_name_the_keys():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    bad = dict(sd)
    del bad["2.bias"]
    bad["3.weight"] = np.zeros((2, 2), np.float32)
    bad["0.weight"] = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys ['2.bias']" in msg and "unexpected keys ['3.weight']" in msg
    assert "0.weight: checkpoint (4, 5) vs model (4, 3)" in msg
    bad["0.weight"] = sd["0.weight"]
    res = m.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == ["3.weight"]
    # values are copied in, cast to the parameter's dtype, and stay trainable
    sd64 = {k: v.astype(np.float64) + 1 for k, v in sd.items()}
    m.load_state_dict(sd64)
    assert m[0].weight.dtype == lg.float32 and m[0].weight.requires_grad
    close(m[0].weight, sd["0.weight"] + 1)


def test_init_functions_follow_torch_formulas():
    lg.manual_seed(3)
    w = Tensor(np.zeros((256, 400), np.float32))
    bound = 1 / np.sqrt(400)
    lin = nn.Linear(400, 256)
    wv = lin.weight.numpy()
    assert np.abs(wv).max() <= bound and abs(wv.std() - bound / np.sqrt(3)) < 0.02 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    init.xavier_uniform_(w, gain=init.calculate_gain("tanh"))
    b = 5 / 3 * np.sqrt(6 / 656)
    assert np.abs(w.numpy()).max() <= b and np.abs(w.numpy()).max() > 0.95 * b
    init.kaiming_uniform_(w, mode="fan_out")
    assert np.abs(w.numpy()).max() <= np.sqrt(2) * np.sqrt(3 / 256)
    conv_w = Tensor(np.zeros((8, 3, 3, 3), np.float32))
    assert init.fan_in_and_fan_out(conv_w.shape) == (27, 72)
    # reproducible after manual_seed
    lg.manual_seed(7)
    a = nn.Linear(5, 5).weight.numpy()
    lg.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.numpy(), a)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swishy")
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(Tensor(np.zeros(3, np.float32)))


# --- checkpoints -----------------------------------------------------------------------------------
def test_state_dict_file_preserves_dtypes(tmp_path):
    sd = {"f32": Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "i32": Tensor(np.array([1, -2], np.int32)),
          "i64": Tensor(np.array([2**40], np.int64), dtype=lg.int64), "b": Tensor(np.array([True, False])),
          "np16": np.array([0.5, 1.5], np.float16), "np64": np.array([np.pi], np.float64)}
    save_state_dict(sd, tmp_path / "s.safetensors")
    arrays = load_arrays(tmp_path / "s.safetensors")
    for k, v in sd.items():
        want = v.numpy() if isinstance(v, Tensor) else v
        assert arrays[k].dtype == want.dtype, k
        np.testing.assert_array_equal(arrays[k], want)
    supported = {k for k, a in arrays.items() if lg.device().supports(lg.dtypes.as_dtype(a.dtype))}
    if supported == set(sd):
        back = load_state_dict(tmp_path / "s.safetensors")
    else:   # e.g. no float16 on this device: the error names it
        with pytest.raises(TypeError, match="does not support float"):
            load_state_dict(tmp_path / "s.safetensors")
        save_state_dict({k: sd[k] for k in supported}, tmp_path / "s.safetensors")
        back = load_state_dict(tmp_path / "s.safetensors")
    for k in back:
        assert back[k].dtype == lg.dtypes.as_dtype(arrays[k].dtype), k
        np.testing.assert_array_equal(back[k].numpy(), arrays[k])


def test_bad_checkpoint_files_raise_clear_errors(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    good = tmp_path / "m.safetensors"
    save_checkpoint(good, m, metadata={"epoch": 3})
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) - 10])
    with pytest.raises(CheckpointError, match="truncated: tensor"):
        load_checkpoint(tmp_path / "trunc.safetensors", m)
    (tmp_path / "junk.safetensors").write_bytes(b"this is a text file, not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(tmp_path / "junk.safetensors", m)
    (tmp_path / "tiny").write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="shorter than the 8-byte header"):
        load_state_dict(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError):
        load_state_dict(tmp_path / "nope.safetensors")
    other = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"0.weight: checkpoint \(4, 3\) vs model \(5, 3\)"):
        load_checkpoint(good, other)
    from lazygrad.optim import SGD
    with pytest.raises(CheckpointError, match="without optimizer state"):
        load_checkpoint(good, m, SGD(m.parameters(), lr=0.1))
    assert load_checkpoint(good, m) == {"epoch": 3}


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import lazygrad as lg
    from lazygrad import Tensor, nn
    from lazygrad.optim import Adam
    from lazygrad.nn.state import load_checkpoint
    path, data = sys.argv[1], np.load(sys.argv[2])
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = Adam(model.parameters(), lr=0.01)
    meta = load_checkpoint(path, model, opt)
    loss = model(Tensor(data["x"])).cross_entropy(Tensor(data["y"]))
    opt.zero_grad(); loss.backward(); opt.step(loss)
    print(json.dumps({"meta": meta, "loss": loss.item(), "w": model[3].weight.numpy().tolist(),
                      "rm": model[1].running_mean.numpy().tolist(), "nbt": model[1].num_batches_tracked}))
""")


def test_checkpoint_round_trip_in_fresh_process(tmp_path, rng):
    """Train 2 steps, save model + Adam state, continue 1 step here and 1 step in a new
    process from the checkpoint: both must end with the same weights."""
    from lazygrad.optim import Adam
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = Adam(model.parameters(), lr=0.01)
    x = rng.standard_normal((10, 6)).astype(np.float32)
    y = rng.integers(0, 3, 10).astype(np.int32)
    for _ in range(2):
        loss = model(Tensor(x)).cross_entropy(Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
    ckpt = tmp_path / "ckpt.safetensors"
    save_checkpoint(ckpt, model, opt, metadata={"epoch": 2, "note": "two steps"})
    np.savez(tmp_path / "data.npz", x=x, y=y)
    loss = model(Tensor(x)).cross_entropy(Tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step(loss)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(ckpt), str(tmp_path / "data.npz")], env=env,
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["meta"] == {"epoch": 2, "note": "two steps"}
    np.testing.assert_allclose(child["loss"], loss.item(), rtol=1e-6)
    np.testing.assert_allclose(np.array(child["w"]), model[3].weight.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.array(child["rm"]), model[1].running_mean.numpy(), rtol=1e-6, atol=1e-7)
    assert child["nbt"] == 3 == model[1].num_batches_tracked


# --- data ------------------------------------------------------------------------------------------
def test_dataloader_batches_shuffle_and_drop_last():
    x = np.arange(10, dtype=np.float64).reshape(10, 1)
    y = np.arange(10)
    dl = DataLoader(x, y, batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and [b[0].shape for b in batches] == [(4, 1), (4, 1), (2, 1)]
    assert batches[0][0].dtype == lg.float32 and batches[0][1].dtype == lg.int32
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    dl = DataLoader(x, y, batch_size=4, shuffle=True, seed=5, drop_last=True)
    e1 = [b[1].numpy() for b in dl]
    e2 = [b[1].numpy() for b in dl]
    assert len(dl) == 2 and len(e1) == 2 and all(b.shape == (4,) for b in e1)
    assert not np.array_equal(np.concatenate(e1), np.concatenate(e2))       # a new order each epoch
    again = [b[1].numpy() for b in DataLoader(x, y, batch_size=4, shuffle=True, seed=5, drop_last=True)]
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(e1))  # same seed, same order
    for xb, yb in DataLoader(x, y, batch_size=3, shuffle=True, seed=1):
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy())          # rows stay paired
    with pytest.raises(ValueError, match="same number of rows"):
        DataLoader(x, y[:5], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, batch_size=0)


def test_progress_bar_shows_running_loss_and_accuracy():
    import io
    out = io.StringIO()
    bar = progress(range(4), desc="epoch 1", file=out, mininterval=0)
    for i in bar:
        bar.log(loss=Tensor(np.float32(4 - i)), acc=0.5)
    bar.close()
    text = out.getvalue()
    assert "epoch 1" in text and "loss=2.5" in text and "acc=0.5" in text
    assert bar.averages() == {"loss": 2.5, "acc": 0.5}
