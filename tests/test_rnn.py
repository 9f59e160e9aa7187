"""nn.RNN, nn.LSTM and nn.GRU against torch's modules with copied weights: values and
gradients (input, initial states, every parameter) for bidirectional 2-layer recurrences with
initial states, batch_first both ways; unbatched input, no bias, relu, default zero states;
torch's parameter names so a state_dict loads; dropout between layers in training only; the
kernels per time step (the hidden matmul with the cell update in its epilogue)."""
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


@pytest.mark.parametrize("cls,per_step", [("RNN", 1), ("LSTM", 2), ("GRU", 2)])
def test_kernels_per_time_step(cls, per_step):
    # RNN: the matmul h W_hh^T with the step's input part and tanh in its epilogue is the
    # step's only kernel. LSTM and GRU: the matmul (+ input part) is stored because its gate
    # blocks have several readers, then one kernel computes the new h and c together
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
