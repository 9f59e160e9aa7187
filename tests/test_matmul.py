"""Matmul: values and gradients against torch, the MATMUL kernel with fused epilogues and
prologues, operand packing, tile configurations, and the autotuner's cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.runtime import tune
from lazygrad.codegen.render import matmul_candidates, render_matmul, MatmulGeometry
from lazygrad.engine.realize import schedule_kernels
from lazygrad.codegen.lower import lower
from lazygrad.scheduling.kinds import KernelKind

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _torch_mm(a, b):
    return torch.matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()


SHAPES = [
    ((5,), (5,)),                    # dot
    ((5,), (5, 3)),                  # vector @ matrix
    ((4, 5), (5,)),                  # matrix @ vector
    ((1, 1), (1, 1)),
    ((7, 13), (13, 5)),
    ((257, 129), (129, 65)),
    ((3, 6, 10), (3, 10, 4)),        # batched
    ((2, 1, 6, 10), (3, 10, 9)),     # broadcast batch dims
    ((2, 3, 5, 4), (4, 17)),         # batch folded into M (B shared)
    ((9, 4), (2, 4, 33)),            # A shared by the batch
]


@pytest.mark.parametrize("pack", ["0", "1"])
@pytest.mark.parametrize("sa,sb", SHAPES, ids=[f"{a}@{b}" for a, b in SHAPES])
def test_matmul_matches_torch(rng, monkeypatch, pack, sa, sb):
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", pack)
    a, b = _rand(rng, *sa), _rand(rng, *sb)
    close(Tensor(a) @ Tensor(b), _torch_mm(a, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pack", ["0", "1", "auto"])
def test_transposed_and_strided_views(rng, monkeypatch, pack):
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", pack)
    a, b = _rand(rng, 40, 70), _rand(rng, 90, 40)
    ta, tb = Tensor(a), Tensor(b)
    y = ta.T @ tb.T
    # a transposed view is read in place: no copy kernel unless packing is asked for
    assert len(lg.schedule(y)) == {"0": 1, "auto": 1, "1": 3}[pack]
    close(y, a.T @ b.T, rtol=1e-4, atol=1e-4)
    close(ta[::2, 1:30] @ tb[5:34, ::3], a[::2, 1:30] @ b[5:34, ::3], rtol=1e-4, atol=1e-4)


def test_large_transposed_operands_are_packed(rng):
    a, b = _rand(rng, 96, 128), _rand(rng, 300, 96)
    y = Tensor(a).T @ Tensor(b).T
    ks = lg.schedule(y)
    reasons = [k.reason for k in ks]
    assert len(ks) == 3 and sum("packed" in r for r in reasons) == 2, reasons
    close(y, a.T @ b.T, rtol=1e-4, atol=1e-4)


def test_integer_matmul_is_exact(rng):
    a = rng.integers(-50, 50, (11, 7)).astype(np.int32)
    b = rng.integers(-50, 50, (7, 19)).astype(np.int32)
    y = Tensor(a) @ Tensor(b)
    assert y.dtype == lg.int32
    close(y, a @ b)
    yb = Tensor(a > 0) @ Tensor(b > 0)  # bool promotes to int like torch would refuse; numpy sums
    close(yb, (a > 0).astype(np.int32) @ (b > 0).astype(np.int32))


def test_empty_and_zero_inner_dim():
    assert (Tensor.zeros(0, 3) @ Tensor.zeros(3, 4)).shape == (0, 4)
    close(Tensor.ones(2, 0) @ Tensor.ones(0, 3), np.zeros((2, 3), np.float32))


def test_shape_errors_name_the_op():
    with pytest.raises(ValueError, match="matmul.*inner dims 3 and 4"):
        Tensor.ones(2, 3) @ Tensor.ones(4, 5)
    with pytest.raises(ValueError, match="matmul"):
        Tensor.ones(3) @ Tensor(2.0)
    with pytest.raises(ValueError, match="matmul"):
        Tensor.ones(2, 2, 3) @ Tensor.ones(3, 3, 4)


# --- fusion ----------------------------------------------------------------------------------
def test_bias_relu_epilogue_is_one_kernel(rng):
    x, w, b = _rand(rng, 33, 20), _rand(rng, 20, 47), _rand(rng, 47)
    y = (Tensor(x) @ Tensor(w) + Tensor(b)).relu()
    ks = lg.schedule(y)
    assert len(ks) == 1 and ks[0].core is not None and ks[0].kind is KernelKind.MATMUL, ks
    close(y, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)


def test_long_epilogue_and_reshape_fuse(rng):
    x, w = _rand(rng, 2, 12, 9), _rand(rng, 9, 10)
    y = ((Tensor(x) @ Tensor(w)) * 0.5 - 1).tanh().reshape(24, 10) + 2
    ks = lg.schedule(y)
    assert len(ks) == 1, ks
    close(y, (np.tanh((x @ w) * 0.5 - 1)).reshape(24, 10) + 2, rtol=1e-4, atol=1e-5)


def test_fused_equals_unfused(rng, monkeypatch):
    x, w, b = _rand(rng, 19, 11), _rand(rng, 11, 23), _rand(rng, 23)
    fused = ((Tensor(x) @ Tensor(w) + Tensor(b)).relu() * 2).numpy()
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    y = (Tensor(x) @ Tensor(w) + Tensor(b)).relu() * 2
    ks = lg.schedule(y)  # one kernel per primitive: the matmul, the add, relu's ops, the mul
    assert len(ks) >= 4 and all(len(k.op_names) == 1 for k in ks) and ks[0].kind is KernelKind.MATMUL
    np.testing.assert_array_equal(y.numpy(), fused)


def test_epilogue_with_cast_and_compare(rng):
    x, w = _rand(rng, 13, 8), _rand(rng, 8, 21)
    y = (Tensor(x) @ Tensor(w)) > 0
    assert len(lg.schedule(y)) == 1
    close(y, (x @ w) > 0)


def test_cheap_prologue_fuses_costly_one_is_stored(rng):
    a, b = _rand(rng, 20, 30), _rand(rng, 30, 10)
    cheap = (Tensor(a) * 2) @ Tensor(b).cast(lg.float32)
    assert len(lg.schedule(cheap)) == 1
    close(cheap, (a * 2) @ b, rtol=1e-4, atol=1e-4)
    costly = Tensor(a).exp() @ Tensor(b)
    ks = lg.schedule(costly)
    assert len(ks) == 2 and "prologue" in ks[0].reason, [k.reason for k in ks]
    close(costly, np.exp(a) @ b, rtol=1e-4, atol=1e-4)


def test_int_operand_cast_prologue(rng):
    a = rng.integers(-5, 5, (6, 9)).astype(np.int32)
    b = _rand(rng, 9, 4)
    y = Tensor(a) @ Tensor(b)
    assert y.dtype == lg.float32 and len(lg.schedule(y)) == 1
    close(y, a.astype(np.float32) @ b, rtol=1e-5, atol=1e-5)


# --- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [((7, 13), (13, 5)), ((2, 1, 6, 10), (3, 10, 9)), ((5,), (5, 3)),
                                   ((3, 4, 8), (8, 6))])
def test_gradients_match_torch(rng, sa, sb):
    a, b = _rand(rng, *sa), _rand(rng, *sb)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ((ta @ tb).relu() * 1.5).sum().backward()
    pa, pb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ((pa @ pb).relu() * 1.5).sum().backward()
    close(ta.grad, pa.grad.numpy(), rtol=1e-4, atol=1e-4)
    close(tb.grad, pb.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_gradient_through_packed_operands(rng, monkeypatch):
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", "1")
    a, b = _rand(rng, 37, 19), _rand(rng, 19, 45)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (ta @ tb).square().mean().backward()
    pa, pb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (pa @ pb).square().mean().backward()
    close(ta.grad, pa.grad.numpy(), rtol=1e-4, atol=1e-5)
    close(tb.grad, pb.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_linear_matches_torch(rng):
    x, w, b = _rand(rng, 4, 3, 10), _rand(rng, 6, 10), _rand(rng, 6)
    tx, tw, tb = (Tensor(v, requires_grad=True) for v in (x, w, b))
    y = tx.linear(tw, tb)
    px, pw, pb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    py = torch.nn.functional.linear(px, pw, pb)
    close(y, py.detach().numpy(), rtol=1e-4, atol=1e-4)
    (y * y).sum().backward()
    (py * py).sum().backward()
    for t, p in ((tx, px), (tw, pw), (tb, pb)):
        close(t.grad, p.grad.numpy(), rtol=1e-4, atol=1e-3)
    close(Tensor(x).linear(Tensor(w)), x @ w.T, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="linear"):
        Tensor(x).linear(Tensor(w.T))


# --- tile configurations and the tuner ----------------------------------------------------------
@pytest.mark.parametrize("pack", ["0", "1"])
def test_every_candidate_config_is_correct(rng, monkeypatch, pack):
    """Whatever the tuner picks computes the same values (edges in M, N and K included)."""
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", pack)
    a, b, bias = _rand(rng, 2, 45, 27), _rand(rng, 2, 27, 70), _rand(rng, 70)
    y = (Tensor(a) @ Tensor(b) + Tensor(bias)).relu()
    want = np.maximum(a @ b + bias, 0)
    k = [k for k in schedule_kernels([y.node]) if k.kind is KernelKind.MATMUL][0]
    lk = lower(k.kernel)
    _, cands = matmul_candidates(MatmulGeometry.of(lk))
    assert len(cands) >= 4
    # one candidate per kind of difference (tile rows, tile columns, work-group, unroll)
    cands = cands[:3] + cands[-1:] if pack == "0" else cands[:2]
    from lazygrad.runtime.device import Buffer, get_kernel, launch
    inputs = [lg.Tensor(n).numpy() if n.realized is None else None for n in lk.buffers[1:]]
    from lazygrad.config import settings
    from lazygrad.target import vector_bits_of_source
    for cfg in cands:
        rk = render_matmul(lk, cfg)
        if settings().fault and vector_bits_of_source(rk.source) >= 512:
            continue  # the raw runtime on a fault-injected device: it refuses these by design
        out = Buffer(want.size, lg.float32)
        args = [out] + [n.realized if n.realized is not None else lg.Tensor(arr).realize().node.realized
                        for n, arr in zip(lk.buffers[1:], inputs)]
        launch(get_kernel(rk.name, rk.source), rk.global_size, rk.local_size, args)
        np.testing.assert_allclose(out.numpy().reshape(want.shape), want, rtol=1e-4, atol=1e-4,
                                   err_msg=cfg.key())


def test_tuner_times_once_and_caches_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "1")
    monkeypatch.setenv("LAZYGRAD_CACHE_DIR", str(tmp_path))
    tune.clear_memory()
    cands = [tune.MatmulConfig(8, 32, 16, 2, 4, 4), tune.MatmulConfig(4, 16, 16, 2, 1, 1),
             tune.MatmulConfig(6, 32, 16, 2, 2, 2)]
    timed: list[str] = []

    def measure(c):
        timed.append(c.key())
        if c.mr == 6:
            raise RuntimeError("does not build")
        return {8: 2.0, 4: 1.0}[c.mr]

    best = tune.choose("matmul", "test-class", cands, cands[0], measure)
    assert best == cands[1] and len(timed) == 3
    data = json.loads((tmp_path / "tune.json").read_text())
    entry = next(v for k, v in data.items() if k.endswith("test-class"))
    assert entry["best"] == cands[1].key() and entry["times"][cands[2].key()] == float("inf")
    tune.clear_memory()  # a new process: read from disk, time nothing
    assert tune.choose("matmul", "test-class", cands, cands[0], measure) == cands[1]
    assert len(timed) == 3
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")
    assert tune.choose("matmul", "other", cands, cands[2], measure) == cands[2] and len(timed) == 3
    tune.clear_memory()


def test_tuner_survives_a_corrupt_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "1")
    monkeypatch.setenv("LAZYGRAD_CACHE_DIR", str(tmp_path))
    (tmp_path / "tune.json").write_text("{not json")
    tune.clear_memory()
    cands = [tune.MatmulConfig(8, 32, 16, 2, 4, 4), tune.MatmulConfig(4, 16, 16, 2, 1, 1)]
    assert tune.choose("matmul", "c", cands, cands[0], lambda c: float(c.mr)) == cands[1]
    assert json.loads((tmp_path / "tune.json").read_text())
    tune.clear_memory()


def test_tuning_end_to_end_writes_cache_and_stays_correct(rng, tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "1")
    monkeypatch.setenv("LAZYGRAD_CACHE_DIR", str(tmp_path))
    from lazygrad.engine import tuning
    monkeypatch.setattr(tuning, "TUNE_MIN_PRODUCT", 64 ** 3)  # tune this small product too
    tune.clear_memory()
    before = lg.counters.kernels_launched
    a, b = _rand(rng, 64, 64), _rand(rng, 64, 70)
    y = (Tensor(a) @ Tensor(b)).relu()
    close(y, np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)
    assert lg.counters.kernels_launched - before == 1  # timing runs are not counted as the user's
    entries = json.loads((tmp_path / "tune.json").read_text())
    (entry,) = [v for k, v in entries.items() if k.startswith("matmul|") and "|m64|n128|k64|" in k]
    assert len(entry["times"]) >= 4 and entry["best"] in entry["times"]
    tune.clear_memory()
