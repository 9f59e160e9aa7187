"""lazygrad.optim against torch.optim: same weights, same data, same parameters after every
step; one realize per step; a training step's plan is built once and reused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor, nn
from lazygrad import optim

CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.9)),
    "sgd_dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "sgd_weight_decay": ("SGD", dict(lr=0.1, weight_decay=0.05)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd_betas": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "adam_amsgrad": ("Adam", dict(lr=0.01, amsgrad=True)),
    "adamw": ("AdamW", dict(lr=0.01, weight_decay=0.1)),
}


def models(seed: int = 0) -> tuple[nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
    lm = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 4))
    lm.load_state_dict(tm.state_dict())
    return lm, tm


def data(step: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(step)
    return r.standard_normal((16, 6)).astype(np.float32), r.integers(0, 4, 16)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_updates_match_torch_over_several_steps(name):
    cls, kw = CONFIGS[name]
    lm, tm = models()
    lopt, topt = getattr(optim, cls)(lm.parameters(), **kw), getattr(torch.optim, cls)(tm.parameters(), **kw)
    for step in range(6):
        x, y = data(step % 3)
        lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
        tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        lopt.zero_grad()
        topt.zero_grad()
        lloss.backward()
        tloss.backward()
        lopt.step(lloss)
        topt.step()
        np.testing.assert_allclose(lloss.item(), tloss.item(), rtol=1e-5)
        for (pname, lp), tp in zip(lm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(lp.numpy(), tp.detach().numpy(), rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name}: {pname} after step {step}")


def test_step_is_one_realize_and_reuses_its_plan(monkeypatch):
    lm, _ = models()
    opt = optim.Adam(lm.parameters(), lr=0.01)
    x, y = data(0)
    xt, yt = Tensor(x), Tensor(y)

    def step():
        loss = lm(xt).cross_entropy(yt)
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
        return loss

    step()   # builds (and compiles) the plan of a training step
    built, compiled = lg.counters.schedules_built, lg.counters.programs_compiled
    before = lg.counters.realizes
    uploads = []
    copyin = lg.runtime.device.Buffer.copyin
    monkeypatch.setattr(lg.runtime.device.Buffer, "copyin", lambda self, a: uploads.append(a.shape) or copyin(self, a))
    losses = [step().item() for _ in range(4)]
    # no host-to-device copies (blocking) per step: the bias corrections are computed on the device
    assert uploads == []
    # forward, backward and update of all parameters: one realize per step, loss included
    assert lg.counters.realizes - before == 4
    assert lg.counters.schedules_built == built and lg.counters.programs_compiled == compiled
    assert losses == sorted(losses, reverse=True)
    # parameters and moments hold only their new buffers, not the graph that computed them
    for p in lm.parameters():
        assert p.node.op is lg.ir.ops.Op.BUFFER and p.node.realized is not None and p.is_leaf
        for v in opt.state[id(p)].values():
            if isinstance(v, Tensor):
                assert v.node.op is lg.ir.ops.Op.BUFFER


def test_changing_lr_reuses_the_plan_and_matches_torch():
    lm, tm = models(1)
    lopt, topt = optim.SGD(lm.parameters(), lr=0.1, momentum=0.5), torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.5)
    x, y = data(1)
    built = None
    for step, lr in enumerate([0.1, 0.05, 0.02, 0.2]):
        for g in lopt.param_groups + topt.param_groups:
            g["lr"] = lr
        lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
        tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        lopt.zero_grad(); topt.zero_grad()
        lloss.backward(); tloss.backward()
        lopt.step(lloss); topt.step()
        if step == 0:
            built = lg.counters.schedules_built
        for lp, tp in zip(lm.parameters(), tm.parameters()):
            np.testing.assert_allclose(lp.numpy(), tp.detach().numpy(), rtol=2e-5, atol=2e-6)
    # the learning rate is a device scalar, not a constant in the kernels: no new plan per lr
    assert lg.counters.schedules_built == built


def test_batchnorm_statistics_update_with_the_step():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = data(2)
    h = x @ model[0].weight.numpy().T + model[0].bias.numpy()    # BatchNorm's input, before the update
    before = lg.counters.realizes
    loss = model(Tensor(x)).cross_entropy(Tensor(y))
    loss.backward()
    opt.step(loss)
    assert lg.counters.realizes - before == 1
    rm, rv = model[1].running_mean, model[1].running_var
    assert rm.node.op is lg.ir.ops.Op.BUFFER and rv.node.op is lg.ir.ops.Op.BUFFER   # realized in the step
    np.testing.assert_allclose(rm.numpy(), 0.1 * h.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * h.var(0, ddof=1), rtol=1e-4)


def test_params_without_grad_are_skipped_and_state_dict_round_trips():
    lm, _ = models()
    opt = optim.AdamW(lm.parameters(), lr=0.01)
    x, y = data(0)
    frozen = lm[2].bias
    before = frozen.numpy().copy()
    loss = lm(Tensor(x)).cross_entropy(Tensor(y))
    loss.backward()
    frozen.grad = None
    opt.step(loss)
    np.testing.assert_array_equal(frozen.numpy(), before)
    assert id(frozen) not in opt.state
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2, 3] and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"]) == {0, 1, 2} and sd["state"][0]["step"] == 1
    # a second optimizer restored from the state dict continues exactly like the first
    lm2, _ = models()
    lm2.load_state_dict(lm.state_dict())
    opt2 = optim.AdamW(lm2.parameters(), lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01
    for m, o in ((lm, opt), (lm2, opt2)):
        loss = m(Tensor(x)).cross_entropy(Tensor(y))
        o.zero_grad()
        loss.backward()
        o.step()
    for a, b in zip(lm.parameters(), lm2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_optimizer_errors_are_clear():
    lm, _ = models()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(lm.parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(lm.parameters(), lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(lm.parameters(), betas=(0.9, 1.0))
    w = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="computed from other tensors"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        optim.SGD([{"params": [w], "betas": (0.9, 0.9)}], lr=0.1)
    opt = optim.Adam(lm.parameters())
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="1 parameter groups, this optimizer 2"):
        optim.Adam([{"params": lm.parameters()[:2]}, {"params": lm.parameters()[2:]}]).load_state_dict(sd)
    bad = {"state": {0: {"step": 1, "exp_avg": np.zeros((3, 3), np.float32)}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"parameter 0: 'exp_avg' has shape \(3, 3\), the parameter \(12, 6\)"):
        opt.load_state_dict(bad)


def test_param_groups_with_their_own_lr_match_torch():
    lm, tm = models(2)
    lp, tp = lm.parameters(), list(tm.parameters())
    lopt = optim.SGD([{"params": lp[:2]}, {"params": lp[2:], "lr": 0.01}], lr=0.2, momentum=0.9)
    topt = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.01}], lr=0.2, momentum=0.9)
    for step in range(3):
        x, y = data(step)
        lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
        tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        lopt.zero_grad(); topt.zero_grad()
        lloss.backward(); tloss.backward()
        lopt.step(); topt.step()
    for a, b in zip(lp, tp):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name,extra", [("sgd", 0), ("adam", 5), ("adamw", 5)])
def test_update_adds_at_most_one_kernel_per_parameter(name, extra, monkeypatch):
    """The update of a parameter and its moments fuses into one (multi-output) kernel, or into
    the gradient's kernel; Adam adds one tiny kernel for the step's bias corrections."""
    lm, _ = models()
    opt = {"sgd": lambda ps: optim.SGD(ps, lr=0.1), "adam": lambda ps: optim.Adam(ps),
           "adamw": lambda ps: optim.AdamW(ps)}[name](lm.parameters())
    x, y = data(0)
    loss = lm(Tensor(x)).cross_entropy(Tensor(y))
    loss.backward()
    grads_only = len(lg.schedule(loss, *[p.grad for p in lm.parameters()]))
    captured = []
    monkeypatch.setattr(optim, "realize", lambda *ts: captured.extend(ts))
    opt.step(loss)
    assert len(lg.schedule(*captured)) <= grads_only + extra


def test_loss_item_after_step_launches_no_kernel():
    """`loss.backward(); opt.step(); loss.item()`: the loss is realized with the step (the
    gradients carry it), so reading it afterwards launches nothing and gives the pre-step
    value, as in torch."""
    import numpy as np
    import lazygrad as lg
    from lazygrad import Tensor, nn, optim
    r = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    X = Tensor(r.standard_normal((64, 20)).astype(np.float32))
    y = Tensor(r.integers(0, 5, 64))
    for _ in range(3):
        with lg.no_grad():
            before = model(X).cross_entropy(y).item()
        loss = model(X).cross_entropy(y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n = lg.counters.kernels_launched
        assert abs(loss.item() - before) < 1e-6
        assert lg.counters.kernels_launched == n
    # gradient accumulation: both losses ride along with the one step
    opt.zero_grad()
    l1, l2 = model(X[:32]).cross_entropy(y[:32]), model(X[32:]).cross_entropy(y[32:])
    l1.backward()
    l2.backward()
    opt.step()
    n = lg.counters.kernels_launched
    l1.item(), l2.item()
    assert lg.counters.kernels_launched == n
