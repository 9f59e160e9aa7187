"""RMSprop, Adagrad, learning-rate schedules and gradient clipping against torch: the same
parameters after every step, the same rates per epoch, the same clipped gradients; a schedule
changes the rate without a new plan or program, and clipping stays on the device."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lazygrad as lg
from lazygrad import Tensor, nn, optim
from lazygrad.optim import lr_scheduler

OPTIMIZERS = {
    "rmsprop": ("RMSprop", dict(lr=0.01)),
    "rmsprop_all": ("RMSprop", dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.8, centered=True)),
    "rmsprop_momentum": ("RMSprop", dict(lr=0.01, momentum=0.9)),
    "rmsprop_centered": ("RMSprop", dict(lr=0.01, centered=True)),
    "adagrad": ("Adagrad", dict(lr=0.05)),
    "adagrad_all": ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.02, initial_accumulator_value=0.3,
                                    eps=1e-6)),
}


from test_optim import data, models  # noqa: E402  (the same small model and batches as the optimizer tests)


def train_step(lm, tm, lopt, topt, step: int, before_step=None):
    x, y = data(step % 3)
    lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
    tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
    lopt.zero_grad()
    topt.zero_grad()
    lloss.backward()
    tloss.backward()
    if before_step is not None:
        before_step()
    lopt.step(lloss)
    topt.step()
    return lloss, tloss


def assert_same_params(lm, tm, what: str, rtol: float = 2e-5, atol: float = 2e-6) -> None:
    for (name, lp), tp in zip(lm.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(lp.numpy(), tp.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_model_trajectory_matches_torch(name):
    cls, kw = OPTIMIZERS[name]
    lm, tm = models()
    lopt, topt = getattr(optim, cls)(lm.parameters(), **kw), getattr(torch.optim, cls)(tm.parameters(), **kw)
    for step in range(6):
        lloss, tloss = train_step(lm, tm, lopt, topt, step)
        np.testing.assert_allclose(lloss.item(), tloss.item(), rtol=1e-5)
        assert_same_params(lm, tm, f"{name} after step {step}")
    # the same state names per parameter as torch, with the same values
    lsd, tsd = lopt.state_dict(), topt.state_dict()
    assert set(lsd["state"]) == set(tsd["state"])
    for i, tst in tsd["state"].items():
        assert set(lsd["state"][i]) == set(tst), (i, set(lsd["state"][i]), set(tst))
        assert lsd["state"][i]["step"] == int(tst["step"])
        for k, v in tst.items():
            if k != "step":
                np.testing.assert_allclose(lsd["state"][i][k].numpy(), v.numpy(), rtol=2e-5, atol=1e-7)
    assert {k for k in lsd["param_groups"][0]} >= {k for k in kw} | {"lr", "params"}


@pytest.mark.parametrize("name", ["rmsprop_all", "adagrad_all"])
def test_hand_made_parameters_match_torch(name):
    """Parameters made by hand (not a module), a loss that is no network, several steps."""
    cls, kw = OPTIMIZERS[name]
    r = np.random.default_rng(3)
    arrays = [r.standard_normal(s).astype(np.float32) for s in ((5,), (3, 4), (2, 2, 3))]
    lps = [Tensor(a, requires_grad=True) for a in arrays]
    tps = [torch.tensor(a, requires_grad=True) for a in arrays]
    lopt, topt = getattr(optim, cls)(lps, **kw), getattr(torch.optim, cls)(tps, **kw)
    for step in range(8):
        lloss = (lps[0] ** 2).sum() + (lps[1].tanh() * 3).sum() + (lps[2] * lps[2].sin()).mean()
        tloss = (tps[0] ** 2).sum() + (tps[1].tanh() * 3).sum() + (tps[2] * tps[2].sin()).mean()
        lopt.zero_grad(); topt.zero_grad()
        lloss.backward(); tloss.backward()
        lopt.step(); topt.step()
        for i, (a, b) in enumerate(zip(lps, tps)):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=2e-5, atol=2e-6, err_msg=f"{name} p{i} step {step}")


def test_adagrad_state_exists_before_the_first_step_like_torch():
    lm, tm = models()
    lsd = optim.Adagrad(lm.parameters(), initial_accumulator_value=0.5).state_dict()
    tsd = torch.optim.Adagrad(tm.parameters(), initial_accumulator_value=0.5).state_dict()
    assert set(lsd["state"]) == set(tsd["state"]) == {0, 1, 2, 3}
    for i in tsd["state"]:
        assert lsd["state"][i]["step"] == 0
        np.testing.assert_array_equal(lsd["state"][i]["sum"].numpy(), tsd["state"][i]["sum"].numpy())


def test_rmsprop_state_dict_round_trips_and_loads_torchs():
    lm, tm = models()
    kw = OPTIMIZERS["rmsprop_all"][1]
    lopt, topt = optim.RMSprop(lm.parameters(), **kw), torch.optim.RMSprop(tm.parameters(), **kw)
    for step in range(2):
        train_step(lm, tm, lopt, topt, step)
    # a fresh lazygrad optimizer given torch's state continues exactly like torch
    lm2, _ = models()
    lm2.load_state_dict(tm.state_dict())
    lopt2 = optim.RMSprop(lm2.parameters(), lr=0.5)
    lopt2.load_state_dict(topt.state_dict())
    assert lopt2.param_groups[0]["lr"] == kw["lr"]
    for step in range(2, 4):
        train_step(lm2, tm, lopt2, topt, step)
        assert_same_params(lm2, tm, f"after torch's state, step {step}")


def test_optimizer_arguments_are_checked():
    lm, _ = models()
    for cls, kw, match in (("RMSprop", dict(alpha=-0.1), "alpha"), ("RMSprop", dict(eps=-1.0), "eps"),
                           ("Adagrad", dict(lr_decay=-1.0), "lr_decay"), ("RMSprop", dict(lr=-1.0), "learning rate"),
                           ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value")):
        with pytest.raises(ValueError, match=match):
            getattr(optim, cls)(lm.parameters(), **kw)


# --- learning-rate schedules ----------------------------------------------------------------------
SCHEDULES = {
    "step": ("StepLR", dict(step_size=3, gamma=0.5)),
    "multistep": ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    "exponential": ("ExponentialLR", dict(gamma=0.9)),
    "cosine": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),   # past T_max: the restart branch
    "lambda": ("LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1 + e) + 0.1 * (e % 3))),
    "linear_warmup": ("LinearLR", dict(start_factor=0.1, end_factor=1.0, total_iters=6)),
    "linear_defaults": ("LinearLR", dict()),
    "onecycle": ("OneCycleLR", dict(max_lr=0.2, total_steps=20)),
    "onecycle_linear_3phase": ("OneCycleLR", dict(max_lr=[0.2, 0.05], total_steps=20, anneal_strategy="linear",
                                                  three_phase=True, div_factor=10.0, final_div_factor=100.0)),
}


def two_group_optimizers(cls: str = "SGD", **kw):
    lm, tm = models()
    lp, tp = lm.parameters(), list(tm.parameters())
    lopt = getattr(optim, cls)([{"params": lp[:2]}, {"params": lp[2:], "lr": 0.03}], lr=0.1, **kw)
    topt = getattr(torch.optim, cls)([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.03}], lr=0.1, **kw)
    return lm, tm, lopt, topt


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_rates_match_torch(name):
    cls, kw = SCHEDULES[name]
    _, _, lopt, topt = two_group_optimizers(momentum=0.9)
    lsched, tsched = getattr(lr_scheduler, cls)(lopt, **kw), getattr(torch.optim.lr_scheduler, cls)(topt, **kw)
    assert lsched.get_last_lr() == tsched.get_last_lr()
    for epoch in range(19):
        topt.step()   # (torch warns when a scheduler steps before its optimizer)
        lsched.step()
        tsched.step()
        assert lsched.get_last_lr() == tsched.get_last_lr(), f"{name} epoch {epoch + 1}"
        assert [g["lr"] for g in lopt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert [g["momentum"] for g in lopt.param_groups] == [g["momentum"] for g in topt.param_groups]
    assert lsched.last_epoch == tsched.last_epoch == 19


def test_schedule_step_with_epoch_uses_the_closed_form_like_torch():
    for cls, kw in (SCHEDULES["step"], SCHEDULES["cosine"], SCHEDULES["multistep"], SCHEDULES["linear_warmup"]):
        _, _, lopt, topt = two_group_optimizers()
        lsched, tsched = getattr(lr_scheduler, cls)(lopt, **kw), getattr(torch.optim.lr_scheduler, cls)(topt, **kw)
        for epoch in (4, 11, 2):
            lsched.step(epoch)
            with pytest.warns(UserWarning):
                tsched.step(epoch)
            assert lsched.get_last_lr() == tsched.get_last_lr(), (cls, epoch)


def test_onecycle_cycles_adams_beta1_like_torch():
    lm, tm = models()
    lopt, topt = optim.Adam(lm.parameters(), lr=0.01), torch.optim.Adam(tm.parameters(), lr=0.01)
    lsched = lr_scheduler.OneCycleLR(lopt, max_lr=0.05, total_steps=10)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=10)
    for _ in range(9):
        topt.step()
        lsched.step()
        tsched.step()
        assert lopt.param_groups[0]["betas"] == topt.param_groups[0]["betas"]
        assert lsched.get_last_lr() == tsched.get_last_lr()


def test_schedule_errors_are_clear():
    _, _, lopt, _ = two_group_optimizers()
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        lr_scheduler.LambdaLR(lopt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(lopt, max_lr=0.1)
    with pytest.raises(ValueError, match="start_factor"):
        lr_scheduler.LinearLR(lopt, start_factor=0.0)
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    sched = lr_scheduler.OneCycleLR(lopt, max_lr=0.1, total_steps=2)
    sched.step(); sched.step()
    with pytest.raises(ValueError, match="total_steps is 2"):
        sched.step()


TRAINING = {
    "sgd_cosine": ("SGD", dict(lr=0.1, momentum=0.9), "CosineAnnealingLR", dict(T_max=8)),
    "adam_onecycle": ("Adam", dict(lr=0.01), "OneCycleLR", dict(max_lr=0.05, total_steps=22)),
    "sgd_onecycle": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), "OneCycleLR", dict(max_lr=0.2, total_steps=22)),
    "adamw_linear": ("AdamW", dict(lr=0.02), "LinearLR", dict(start_factor=0.05, total_iters=10)),
    "rmsprop_exponential": ("RMSprop", dict(lr=0.01, momentum=0.5), "ExponentialLR", dict(gamma=0.85)),
    "rmsprop_onecycle": ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), "OneCycleLR", dict(max_lr=0.02, total_steps=22)),
    "adagrad_step": ("Adagrad", dict(lr=0.1, lr_decay=0.01), "StepLR", dict(step_size=4, gamma=0.5)),
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_scheduled_training_matches_torch_without_new_plans_or_programs(name):
    ocls, okw, scls, skw = TRAINING[name]
    lm, tm = models(4)
    lopt, topt = getattr(optim, ocls)(lm.parameters(), **okw), getattr(torch.optim, ocls)(tm.parameters(), **okw)
    lsched = getattr(lr_scheduler, scls)(lopt, **skw)
    tsched = getattr(torch.optim.lr_scheduler, scls)(topt, **skw)
    train_step(lm, tm, lopt, topt, 0)
    lsched.step(), tsched.step()
    built, compiled = lg.counters.schedules_built, lg.counters.programs_compiled
    rates = set()
    for step in range(1, 21):
        train_step(lm, tm, lopt, topt, step)
        lsched.step(), tsched.step()
        rates.add(lsched.get_last_lr()[0])
        assert_same_params(lm, tm, f"{name} after step {step}", rtol=5e-5, atol=5e-6)
    assert len(rates) > 3   # the rate really changed
    # the rate (and OneCycleLR's momentum) are device scalars rewritten in place
    assert lg.counters.schedules_built == built, "a changed rate built a new plan"
    assert lg.counters.programs_compiled == compiled, "a changed rate compiled a new program"


def test_a_rate_change_is_a_non_blocking_write_not_an_upload(monkeypatch):
    lm, tm = models()
    lopt, topt = optim.SGD(lm.parameters(), lr=0.1), torch.optim.SGD(tm.parameters(), lr=0.1)
    lsched = lr_scheduler.ExponentialLR(lopt, gamma=0.5)
    train_step(lm, tm, lopt, topt, 0)
    uploads, writes = [], []
    copyin, write = lg.runtime.device.Buffer.copyin, lg.runtime.device.Buffer.write
    monkeypatch.setattr(lg.runtime.device.Buffer, "copyin", lambda self, a: uploads.append(a.shape) or copyin(self, a))
    monkeypatch.setattr(lg.runtime.device.Buffer, "write", lambda self, a: writes.append(a.shape) or write(self, a))
    for step in range(1, 4):
        lsched.step()
        x, y = data(step)
        loss = lm(Tensor(x)).cross_entropy(Tensor(y))
        lopt.zero_grad()
        loss.backward()
        lopt.step(loss)
    assert len(writes) == 3 and all(s == () for s in writes)
    assert all(s != () for s in uploads)   # only the batches are uploaded, never the rate


# --- gradient clipping ----------------------------------------------------------------------------
def grads_of_both(seed: int = 5, scale: float = 1.0):
    lm, tm = models(seed)
    x, y = data(seed)
    lloss = lm(Tensor(x)).cross_entropy(Tensor(y)) * scale
    tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y)) * scale
    lloss.backward()
    tloss.backward()
    return lm, tm, lloss


@pytest.mark.parametrize("max_norm,norm_type", [(0.1, 2.0), (100.0, 2.0), (0.05, 1.0), (0.01, math.inf),
                                                (0.2, 3.0), (0.3, "inf")])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    lm, tm, _ = grads_of_both(scale=10.0)
    lnorm = nn.utils.clip_grad_norm_(lm.parameters(), max_norm, norm_type=float(norm_type))
    tnorm = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type=float(norm_type))
    assert isinstance(lnorm, Tensor) and lnorm.shape == ()
    np.testing.assert_allclose(lnorm.item(), tnorm.item(), rtol=1e-5)
    for (name, lp), tp in zip(lm.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(lp.grad.numpy(), tp.grad.numpy(), rtol=2e-5, atol=1e-7, err_msg=name)


def test_clip_grad_value_matches_torch():
    lm, tm, _ = grads_of_both(scale=5.0)
    nn.utils.clip_grad_value_(lm.parameters(), 0.02)
    torch.nn.utils.clip_grad_value_(tm.parameters(), 0.02)
    for lp, tp in zip(lm.parameters(), tm.parameters()):
        # clipped entries are exactly the bound; the others differ by the gradients' round-off
        np.testing.assert_allclose(lp.grad.numpy(), tp.grad.numpy(), rtol=2e-5, atol=1e-7)
        assert np.abs(lp.grad.numpy()).max() <= 0.02


def test_clipping_is_lazy_and_fuses_into_the_step(monkeypatch):
    """No read back to the host: the scale is computed on the device, the step realizes the
    clipped gradients, the norm and the loss in its one realize, and training with clipping
    follows torch."""
    lm, tm = models(6)
    lopt, topt = optim.SGD(lm.parameters(), lr=0.5, momentum=0.9), torch.optim.SGD(tm.parameters(), lr=0.5, momentum=0.9)
    reads = []
    numpy = lg.runtime.device.Buffer.numpy
    monkeypatch.setattr(lg.runtime.device.Buffer, "numpy", lambda self: reads.append(self.size) or numpy(self))
    for step in range(4):
        x, y = data(step)
        lloss = lm(Tensor(x)).cross_entropy(Tensor(y))
        tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        lopt.zero_grad(); topt.zero_grad()
        lloss.backward(); tloss.backward()
        before = (lg.counters.realizes, len(reads))
        lnorm = nn.utils.clip_grad_norm_(lm.parameters(), 0.5)
        nn.utils.clip_grad_value_(lm.parameters(), 0.1)
        lopt.step()
        assert lg.counters.realizes - before[0] == 1 and len(reads) == before[1]
        launched = lg.counters.kernels_launched
        lnorm_value, lloss_value = lnorm.item(), lloss.item()
        assert lg.counters.kernels_launched == launched   # both were realized with the step
        tnorm = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.5)
        torch.nn.utils.clip_grad_value_(tm.parameters(), 0.1)
        topt.step()
        np.testing.assert_allclose(lnorm_value, tnorm.item(), rtol=1e-5)
        np.testing.assert_allclose(lloss_value, tloss.item(), rtol=1e-5)
        assert_same_params(lm, tm, f"clipped step {step}")


def test_clip_grad_norm_edge_cases():
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    assert nn.utils.clip_grad_norm_([w], 1.0).item() == 0.0   # no gradients: torch returns 0
    (w * float("nan")).sum().backward()
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(w, 1.0, error_if_nonfinite=True)
    assert math.isnan(nn.utils.clip_grad_norm_(w, 1.0).item())


def test_scheduler_and_optimizer_state_survive_a_checkpoint(tmp_path):
    """A checkpoint mid-schedule (model, RMSprop state with the scheduler's group entries, and
    the scheduler's state) resumes exactly where the original run goes."""
    lm, tm = models(7)
    lopt, topt = optim.RMSprop(lm.parameters(), lr=0.01, momentum=0.5), torch.optim.RMSprop(tm.parameters(), lr=0.01, momentum=0.5)
    lsched = lr_scheduler.OneCycleLR(lopt, max_lr=0.03, total_steps=10)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.03, total_steps=10)
    for step in range(3):
        train_step(lm, tm, lopt, topt, step)
        lsched.step(), tsched.step()
    nn.save_checkpoint(tmp_path / "ckpt.safetensors", lm, lopt)
    sched_state = lsched.state_dict()
    lm2, _ = models(8)
    lopt2 = optim.RMSprop(lm2.parameters(), lr=0.5)
    lsched2 = lr_scheduler.OneCycleLR(lopt2, max_lr=0.03, total_steps=10)
    nn.load_checkpoint(tmp_path / "ckpt.safetensors", lm2, lopt2)
    lsched2.load_state_dict(sched_state)
    assert lopt2.param_groups[0]["lr"] == topt.param_groups[0]["lr"]
    for step in range(3, 7):
        train_step(lm2, tm, lopt2, topt, step)
        lsched2.step(), tsched.step()
        assert lsched2.get_last_lr() == tsched.get_last_lr()
        assert_same_params(lm2, tm, f"resumed step {step}", rtol=5e-5, atol=5e-6)


def test_rate_writes_are_ordered_on_the_timed_queue_too():
    """With kernel timing on (the profiling queue), the in-place rate writes still land between
    the steps that read the old and the new rate."""
    lg.counters.timing = True
    try:
        lm, tm = models(9)
        lopt, topt = optim.SGD(lm.parameters(), lr=0.2), torch.optim.SGD(tm.parameters(), lr=0.2)
        lsched = lr_scheduler.StepLR(lopt, step_size=1, gamma=0.5)
        tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.5)
        for step in range(4):
            train_step(lm, tm, lopt, topt, step)
            lsched.step(), tsched.step()
        assert_same_params(lm, tm, "timed")
    finally:
        lg.counters.timing = False


def test_adagrad_group_added_later_starts_from_the_initial_accumulator_like_torch():
    """torch starts every accumulator from the constructor's initial_accumulator_value (a
    group's own value is ignored), the later group's lazily at its first step."""
    lm, tm = models(10)
    lp, tp = lm.parameters(), list(tm.parameters())
    lopt = optim.Adagrad(lp[:2], lr=0.05, initial_accumulator_value=0.2)
    topt = torch.optim.Adagrad(tp[:2], lr=0.05, initial_accumulator_value=0.2)
    lopt.add_param_group({"params": lp[2:], "initial_accumulator_value": 0.7})
    topt.add_param_group({"params": tp[2:], "initial_accumulator_value": 0.7})
    for step in range(3):
        train_step(lm, tm, lopt, topt, step)
        assert_same_params(lm, tm, f"step {step}")
