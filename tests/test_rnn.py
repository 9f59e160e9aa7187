"""nn.RNN, nn.LSTM and nn.GRU against torch's modules with copied weights: values and
gradients (input, initial states, every parameter) for bidirectional 2-layer recurrences with
initial states, batch_first both ways; unbatched input, no bias, relu, default zero states;
torch's parameter names so a state_dict loads; dropout between layers in training only; the
kernels per time step (LSTM: one fused cell kernel; RNN: the hidden matmul with the cell
update in its epilogue); the LSTM cell declined (mixed dtypes) or unfused (LAZYGRAD_FUSE=0)
against torch too, float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor, nn

TOL = dict(rtol=1e-5, atol=2e-6)
CLASSES = ["RNN", "LSTM", "GRU"]


def pair(cls, *args, seed=0, **kw):
    torch.manual_seed(seed)
    tm = getattr(torch.nn, cls)(*args, **kw)
    lm = getattr(nn, cls)(*args, **kw)
    assert [n for n, _ in lm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert lm.load_state_dict(tm.state_dict()) == ([], [])
    return lm, tm


def both(a):
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def run(cls, lm, tm, x, h0=None, c0=None):
    """Forward both, compare outputs and final states, backpropagate a loss using all of
    them, compare the gradients of the input, the initial states and every parameter."""
    (lx, tx) = both(x)
    lstate = tstate = None
    leaves = [(lx, tx)]
    if h0 is not None:
        lh, th = both(h0)
        leaves.append((lh, th))
        lstate, tstate = lh, th
        if cls == "LSTM":
            lc, tc = both(c0)
            leaves.append((lc, tc))
            lstate, tstate = (lh, lc), (th, tc)
    lo, ls = lm(lx, lstate)
    to, ts = tm(tx, tstate)
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    lstates = ls if isinstance(ls, tuple) else (ls,)
    tstates = ts if isinstance(ts, tuple) else (ts,)
    for a, b in zip(lstates, tstates):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **TOL)
    g = np.random.default_rng(5).standard_normal(lo.shape).astype(np.float32)
    lloss = (lo * Tensor(g)).sum() + sum((s * s).sum() for s in lstates)
    tloss = (to * torch.tensor(g)).sum() + sum((s * s).sum() for s in tstates)
    lloss.backward()
    tloss.backward()
    for i, (a, b) in enumerate(leaves):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"grad of leaf {i}", rtol=1e-4, atol=1e-5)
    tp = dict(tm.named_parameters())
    for n, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[n].grad.numpy(), err_msg=f"grad of {n}", rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cls", CLASSES)
def test_bidirectional_two_layers_with_initial_states(cls, batch_first):
    lm, tm = pair(cls, 3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    r = np.random.default_rng(1)
    x = r.standard_normal((2, 3, 3) if batch_first else (3, 2, 3)).astype(np.float32)
    h0, c0 = (r.standard_normal((4, 2, 4)).astype(np.float32) for _ in range(2))
    run(cls, lm, tm, x, h0, c0)


@pytest.mark.parametrize("cls", CLASSES)
def test_unbatched_no_bias_and_zero_initial_state(cls):
    lm, tm = pair(cls, 3, 5, bias=False, seed=1)
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    run(cls, lm, tm, x)


def test_relu_rnn_with_unbatched_initial_state():
    lm, tm = pair("RNN", 3, 4, nonlinearity="relu", num_layers=2, seed=2)
    r = np.random.default_rng(3)
    run("RNN", lm, tm, r.standard_normal((4, 3)).astype(np.float32), r.standard_normal((2, 4)).astype(np.float32))


def test_dropout_between_layers_only_while_training():
    lm, tm = pair("LSTM", 3, 4, num_layers=2, dropout=0.5, seed=3)
    x = np.random.default_rng(4).standard_normal((5, 2, 3)).astype(np.float32)
    lm.eval()
    tm.eval()
    run("LSTM", lm, tm, x)
    lm.train()
    out_train = lm(Tensor(x))[0].numpy()
    lm.eval()
    assert not np.allclose(out_train, lm(Tensor(x))[0].numpy(), atol=1e-4)


@pytest.mark.parametrize("cls,per_step", [("RNN", 1), ("LSTM", 1), ("GRU", 2)])
def test_kernels_per_time_step(cls, per_step):
    # RNN: the matmul h W_hh^T with the step's input part and tanh in its epilogue is the
    # step's only kernel. LSTM: the fused cell kernel (gates' matmul + cell update). GRU: the
    # matmul (+ input part) is stored because its gate blocks have several readers, then one
    # kernel computes the new h
    m = getattr(nn, cls)(8, 16)
    h0 = Tensor(np.zeros((1, 4, 16), np.float32))
    state = (h0, h0) if cls == "LSTM" else h0
    counts = [len(lg.schedule(m(Tensor(np.ones((steps, 4, 8), np.float32)), state)[0])) for steps in (4, 5, 6, 9)]
    assert np.diff(counts).tolist() == [per_step, per_step, 3 * per_step], counts


def test_fresh_init_is_uniform_in_one_over_sqrt_hidden():
    m = nn.GRU(6, 16)
    w = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24 and abs(w.mean()) < 0.02


def test_bad_input_raises():
    m = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input_size 3"):
        m(Tensor(np.zeros((5, 2, 4), np.float32)))
    with pytest.raises(TypeError, match=r"pair \(h_0, c_0\)"):
        m(Tensor(np.zeros((5, 2, 3), np.float32)), Tensor(np.zeros((2, 2, 4), np.float32)))
    with pytest.raises(ValueError, match="h_0 has shape"):
        z = Tensor(np.zeros((1, 2, 4), np.float32))
        m(Tensor(np.zeros((5, 2, 3), np.float32)), (z, z))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)


@pytest.mark.parametrize("hidden", [32, 20])
def test_lstm_forward_is_the_input_matmul_and_one_kernel_per_step(hidden):
    # (seq 8, batch 4): one matmul x W_ih^T + b over all steps, then one fused cell kernel per
    # step (the gates' matmul h W_hh^T with the cell update) writing h, c and the gate
    # activations; an output (a view of the steps' planes) is then gathered by a copy. 20 hidden units: not a
    # multiple of the 8 float lanes (the dot products end in a scalar tail).
    m = nn.LSTM(8, hidden)
    r = np.random.default_rng(0)
    h0, c0 = (Tensor(r.standard_normal((1, 4, hidden)).astype(np.float32)) for _ in range(2))
    out, (hn, cn) = m(Tensor(r.standard_normal((8, 4, 8)).astype(np.float32)), (h0, c0))
    ks = lg.schedule(hn)
    kinds = [k.kind for k in ks]
    assert kinds == ["matmul"] + ["lstm"] * 8 + ["elementwise"], kinds   # h_n: a copy of the last step's h plane
    # the time offset is a kernel argument: the first step (h0 and c0 in two buffers) and the
    # seven others (h and c planes of the previous step's buffer) are two programs, not eight
    assert len({k.source for k in ks if k.kind == "lstm"}) == 2
    kinds = [k.kind for k in lg.schedule(out, hn, cn)]   # then copies of the outputs (h_n and c_n in one)
    assert kinds == ["matmul"] + ["lstm"] * 8 + ["elementwise"] * 2, kinds
    # the zero initial state: the first step has no matmul, one elementwise kernel
    kinds = [k.kind for k in lg.schedule(m(Tensor(r.standard_normal((8, 4, 8)).astype(np.float32)))[1][0])]
    assert kinds == ["matmul", "elementwise"] + ["lstm"] * 7 + ["elementwise"], kinds


def test_lstm_backward_kernels_per_step_do_not_grow():
    # the gradient from the saved gate activations: per step one elementwise kernel (the
    # gates' pre-activation gradients), dh = dgates W_hh and the step's W_hh contribution
    m = nn.LSTM(8, 16)
    h0 = Tensor(np.zeros((1, 4, 16), np.float32))

    def count(steps: int) -> int:
        out, _ = m(Tensor(np.ones((steps, 4, 8), np.float32)), (h0, h0))
        loss = (out * out).mean()
        return len(lg.schedule(loss, *lg.grad(loss, m.parameters())))
    counts = [count(s) for s in (4, 5, 6)]
    assert np.diff(counts).tolist() == [4, 4], counts   # 1 forward + 3 backward per step


def test_lstm_hidden_not_a_multiple_of_the_lanes_matches_torch():
    lm, tm = pair("LSTM", 5, 20, seed=4)
    r = np.random.default_rng(6)
    x = r.standard_normal((6, 3, 5)).astype(np.float32)
    h0, c0 = (r.standard_normal((1, 3, 20)).astype(np.float32) for _ in range(2))
    run("LSTM", lm, tm, x, h0, c0)


def test_lstm_declined_cell_falls_back_to_the_plain_graph_and_matches_torch():
    # float64 input into a float32 LSTM: lazygrad promotes (torch would refuse), the fused kernel
    # declines mixed dtypes and the step is the plain graph, its matmul's cut saying why
    lm, tm = pair("LSTM", 3, 4, seed=5)
    tm = tm.double()
    r = np.random.default_rng(7)
    x = r.standard_normal((4, 2, 3))
    h0, c0 = (r.standard_normal((1, 2, 4)).astype(np.float32) for _ in range(2))
    lo, (lh, lc) = lm(Tensor(x), (Tensor(h0), Tensor(c0)))
    ks = lg.schedule(lo)
    assert not [k for k in ks if k.kind == "lstm"]
    notes = [k.reason for k in ks if "lstm cell not fused: operands of different dtypes" in k.reason]
    assert len(notes) == 4, [k.reason for k in ks]   # every step: xw is float64, w_hh float32
    to, (th, tc) = tm(torch.tensor(x), (torch.tensor(h0, dtype=torch.float64), torch.tensor(c0, dtype=torch.float64)))
    for a, b in ((lo, to), (lh, th), (lc, tc)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)
    lx = Tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    lm(lx, (Tensor(h0), Tensor(c0)))[0].sum().backward()
    tm(tx, (torch.tensor(h0, dtype=torch.float64), torch.tensor(c0, dtype=torch.float64)))[0].sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_lstm_unfused_matches_torch():
    # LAZYGRAD_FUSE=0: every step is the primitive graph (no lstm kernel), values and gradients as torch's
    lm, tm = pair("LSTM", 3, 4, seed=6)
    r = np.random.default_rng(8)
    x = r.standard_normal((3, 2, 3)).astype(np.float32)
    h0, c0 = (r.standard_normal((1, 2, 4)).astype(np.float32) for _ in range(2))
    with lg.config.override(fuse=False):
        out, _ = lm(Tensor(x), (Tensor(h0), Tensor(c0)))
        assert not [k for k in lg.schedule(out) if k.kind == "lstm"]
        run("LSTM", lm, tm, x, h0, c0)


def test_lstm_float64():
    lm, tm = pair("LSTM", 3, 12, seed=7)
    tm = tm.double()
    for n, p in tm.named_parameters():   # float64 parameters in place of the float32 ones
        setattr(lm, n, Tensor(p.detach().numpy(), requires_grad=True))
    assert {p.dtype for p in lm.parameters()} == {lg.float64}
    r = np.random.default_rng(9)
    x = r.standard_normal((5, 2, 3))
    h0, c0 = (r.standard_normal((1, 2, 12)) for _ in range(2))
    lo, (lh, lc) = lm(Tensor(x), (Tensor(h0), Tensor(c0)))
    assert [k.kind for k in lg.schedule(lo)].count("lstm") == 5
    to, (th, tc) = tm(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    assert lo.dtype is lg.float64
    for a, b in ((lo, to), (lh, th), (lc, tc)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-13)
