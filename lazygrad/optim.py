"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW, RMSprop and Adagrad.

`step()` builds the update of every parameter and moment buffer as lazy graph and realizes all
of them in ONE `lg.realize` call, so the update runs as one schedule whose kernels share their
inputs (each gradient is computed once and read by the moment and parameter updates), and
extra tensors passed to step (typically the loss) come out of the same call.

Values that change from step to step are device scalars, never constants in the graph: a
constant is part of the kernel source, so a changing one would build a new schedule and
compile new programs every step. Each group's learning rate is a realized 1-element buffer,
rewritten in place (a non-blocking write queued after the kernels that read the old value)
when the value changes, so a learning-rate schedule (lazygrad.optim.lr_scheduler) changes no
graph. Other hyperparameters are constants in the kernels unless a scheduler declares that it
changes them (OneCycleLR cycles momentum / beta1): those become device scalars the same way.
Adam's step counter and bias corrections are computed on the device inside the step's realize
(an upload per step would be a blocking copy that waits for all queued kernels). So every step
after the first has the same graph structure and reuses the cached plan and programs.

The update formulas follow torch.optim's single-tensor implementations, so both produce the
same parameters from the same gradients (tests/test_optim.py).

Public names: Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, lr_scheduler.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from lazygrad.nn.functional import drop_history, pending_buffer_updates
from lazygrad.frontend.tensor import Tensor, companions_of, no_grad, realize

ParamGroup = dict[str, Any]


class Optimizer:
    """Base class: parameter groups (dicts with "params" and hyperparameters), per-parameter
    state, and the one-realize step. Subclasses define `_update` for one parameter."""

    _state_tensors: tuple[str, ...] = ()     # names of per-parameter state held as tensors

    def __init__(self, params: Iterable[Tensor] | Iterable[ParamGroup], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        self.state: dict[int, dict[str, Any]] = {}   # id(param) -> {"step": int, tensors...}
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        # (id(group), name) -> [value, device scalar]: hyperparameters held on the device
        self._hypers: dict[tuple[int, str], list] = {}
        # hyperparameters that change during training: device scalars rather than kernel constants
        self._device_hyperparameters: set[str] = {"lr"}
        self._step_counts: dict[int, Tensor] = {}     # step t -> device scalar holding t
        self._step_scalars: dict[tuple, Tensor] = {}  # this step's derived device scalars
        self._outputs: list[Tensor] = []              # device scalars to realize with the step

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a parameter group: a dict with "params" and any hyperparameters to override the
        optimizer's defaults for it (like torch)."""
        name = type(self).__name__
        if "params" not in group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = [group["params"]] if isinstance(group["params"], Tensor) else list(group["params"])
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameters {sorted(unknown)}; known: {sorted(self.defaults)}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.dtype.is_float:
                raise TypeError(f"{name}: parameter {i} of shape {p.shape} has dtype {p.dtype.name}; only float tensors can be optimized")
            if not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} of shape {p.shape} is computed from other tensors; "
                                 "optimize leaf tensors (created with requires_grad=True)")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} of shape {p.shape} appears in more than one group")
            seen.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    @property
    def params(self) -> list[Tensor]:
        """Every parameter of every group, in order."""
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (lazy gradients are simply dropped)."""
        for p in self.params:
            p.grad = None

    def _hyper(self, group: ParamGroup, name: str, value: float) -> Tensor:
        """The group's hyperparameter (or a value derived from them) `name` as a 0-d float32
        device tensor: one buffer per group and name, uploaded once and rewritten in place when
        the value changes, so the step's graph (and its plan and programs) stays the same."""
        key = (id(group), name)
        held = self._hypers.get(key)
        if held is None:
            held = self._hypers[key] = [value, Tensor(np.array(value, dtype=np.float32))]
        elif held[0] != value:
            held[1].node.realized.write(np.array(value, dtype=np.float32))
            held[0] = value
        return held[1]

    def _value(self, group: ParamGroup, name: str, value: float, varies_with: str) -> float | Tensor:
        """`value` as a kernel constant, or as a device scalar (see `_hyper`) when the
        hyperparameter `varies_with` is one a scheduler changes during training."""
        return self._hyper(group, name, value) if varies_with in self._device_hyperparameters else value

    def _schedule_hyperparameter(self, name: str) -> None:
        """Declare that a scheduler changes hyperparameter `name` ("momentum", "betas") every
        step: the update reads it from a device scalar instead of baking it into the kernels."""
        self._device_hyperparameters.add(name)

    def _device_step(self, t: int) -> Tensor:
        """Step number t as a float32 device scalar, computed on the device as (t - 1) + 1 from
        the previous step's: uploading it would be a blocking copy that waits for every queued
        kernel, and deriving it keeps step 1's graph the same as every later step's."""
        s = self._step_counts.get(t)
        if s is None:
            prev = self._step_counts.get(t - 1)
            if prev is None:
                prev = Tensor(np.array(t - 1, dtype=np.float32))
            s = self._step_counts[t] = prev + 1.0
            self._outputs.append(s)
        return s

    def _step_scalar(self, key: tuple, build: Callable[[], Tensor]) -> Tensor:
        """A scalar of this step (e.g. a bias correction) computed once on the device, as an
        output of the step's realize, and read by every parameter's update kernel."""
        s = self._step_scalars.get(key)
        if s is None:
            s = self._step_scalars[key] = build()
            self._outputs.append(s)
        return s

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def step(self, *realize_with: Tensor) -> None:
        """Update every parameter that has a gradient, realizing new parameters, new optimizer
        state, pending BatchNorm statistics and `realize_with` (e.g. the loss, so the forward
        pass is not computed twice) in one call."""
        new_params: list[tuple[Tensor, Tensor]] = []
        new_state: list[tuple[dict[str, Any], str, Tensor]] = []
        self._outputs, self._step_scalars = [], {}
        steps_used: set[int] = set()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}.step: gradient shape {p.grad.shape} does not "
                                         f"match parameter shape {p.shape}")
                    st = self.state.setdefault(id(p), {"step": 0})
                    st["step"] += 1
                    steps_used.add(st["step"])
                    grad = p.grad.cast(p.dtype)
                    value, tensors = self._update(Tensor(p.node), grad, st, group)
                    new_params.append((p, value.cast(p.dtype)))
                    new_state.extend((st, k, v) for k, v in tensors.items())
        buffers = pending_buffer_updates()
        realize_with = (*realize_with, *companions_of([p.grad for g in self.param_groups for p in g["params"]
                                                        if p.grad is not None]))
        realize(*[v for _, v in new_params], *[v for _, _, v in new_state], *self._outputs, *buffers, *realize_with)
        # keep only the new buffers: the graph that computed them (last step's forward and
        # backward) would otherwise stay alive through the parameters' nodes
        for p, v in new_params:
            p.assign(drop_history(v))
        for st, k, v in new_state:
            st[k] = drop_history(v)
        for b in (*buffers, *self._outputs):
            drop_history(b)
        self._step_counts = {t: v for t, v in self._step_counts.items() if t in steps_used}
        self._step_scalars, self._outputs = {}, []

    # --- state_dict ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {param index: {"step": int, name: Tensor}}, "param_groups": [hyperparameters
        with "params" as indices]} like torch.optim."""
        index = {id(p): i for i, p in enumerate(self.params)}
        state = {index[k]: dict(v) for k, v in self.state.items() if k in index}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: Mapping[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state (Tensors or numpy arrays) saved by
        state_dict(); raises ValueError naming what does not fit this optimizer's parameters."""
        name = f"{type(self).__name__}.load_state_dict"
        if "state" not in sd or "param_groups" not in sd:
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups', got keys {sorted(sd)}")
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}: the checkpoint has {len(groups)} parameter groups, this optimizer {len(self.param_groups)}")
        for i, (g, mine) in enumerate(zip(groups, self.param_groups)):
            if len(g["params"]) != len(mine["params"]):
                raise ValueError(f"{name}: group {i} has {len(g['params'])} parameters in the checkpoint, "
                                 f"{len(mine['params'])} in this optimizer")
        params = self.params
        saved_order = [i for g in groups for i in g["params"]]
        by_saved = dict(zip(saved_order, params))
        new_state: dict[int, dict[str, Any]] = {}
        problems = []
        for key, entry in sd["state"].items():
            p = by_saved.get(int(key))
            if p is None:
                problems.append(f"state for parameter {key}, which no group lists")
                continue
            unknown = set(entry) - set(self._state_tensors) - {"step"}
            if unknown:
                problems.append(f"parameter {key}: unknown state {sorted(unknown)}")
            st: dict[str, Any] = {"step": int(np.asarray(_host(entry.get("step", 0))))}
            for k in self._state_tensors:
                if k not in entry:
                    continue
                arr = _host(entry[k])
                if tuple(arr.shape) != p.shape:
                    problems.append(f"parameter {key}: '{k}' has shape {tuple(arr.shape)}, the parameter {p.shape}")
                    continue
                st[k] = Tensor(np.asarray(arr, dtype=p.dtype.np), dtype=p.dtype)
            new_state[id(p)] = st
        if problems:
            raise ValueError(f"{name}: " + "; ".join(problems))
        for g, mine in zip(groups, self.param_groups):
            mine.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "params"})
        self.state = new_state


def _state_or_zeros(state: dict[str, Any], name: str, p: Tensor) -> Tensor:
    """state[name], or a realized zero buffer shaped like `p` (uploaded: no kernel)."""
    t = state.get(name)
    return Tensor(np.zeros(p.shape, dtype=p.dtype.np), dtype=p.dtype) if t is None else t


def _host(v: Any) -> np.ndarray:
    if isinstance(v, Tensor):
        return v.numpy()
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor
        return v.detach().cpu().numpy()
    return np.asarray(v)


class SGD(Optimizer):
    """p -= lr * d, where d is the gradient (plus weight_decay * p), or with momentum the
    buffer b = momentum * b + (1 - dampening) * d (b = d on the first step), and with Nesterov
    d + momentum * b."""

    _state_tensors = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        lr = self._hyper(group, "lr", float(group["lr"]))
        d = grad + p * group["weight_decay"] if group["weight_decay"] else grad
        out: dict[str, Tensor] = {}
        mu = group["momentum"]
        if mu:
            mu = self._value(group, "momentum", float(mu), "momentum")
            buf = state.get("momentum_buffer")
            if buf is None and group["dampening"]:
                buf = d   # torch starts the buffer at the first gradient, undamped
            else:
                # without dampening a zero buffer gives the same first step, and the same graph
                # structure as every later step (one plan, no second compile)
                buf = _state_or_zeros(state, "momentum_buffer", p)
                buf = buf * mu + (d * (1.0 - group["dampening"]) if group["dampening"] else d)
            out["momentum_buffer"] = buf
            d = d + buf * mu if group["nesterov"] else buf
        return p - d * lr, out


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's formulation: m and v are exponential averages of the
    gradient and its square, p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    weight_decay adds weight_decay * p to the gradient (L2); AdamW decays the weights instead."""

    _state_tensors = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        for b in betas:
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        b1, b2 = group["betas"]
        lr, wd, t = float(group["lr"]), float(group["weight_decay"]), state["step"]
        # bias corrections from the device step counter: no upload per step, no new graph
        t_dev, lr_dev = self._device_step(t), self._hyper(group, "lr", lr)
        # OneCycleLR cycles beta1: then it and 1 - beta1 are device scalars too
        b1_v, one_minus_b1 = (self._value(group, n, v, "betas") for n, v in (("beta1", b1), ("1-beta1", 1 - b1)))
        # keyed by group and step: every parameter of a group with the same step shares them
        step_size = self._step_scalar(("step_size", id(group), t), lambda: lr_dev / (1 - b1_v ** t_dev))
        bc2_sqrt = self._step_scalar(("bc2_sqrt", id(group), t), lambda: (1 - b2 ** t_dev).sqrt())
        if wd and self._decoupled:
            p = p * self._hyper(group, "1-lr*weight_decay", 1 - lr * wd)
        elif wd:
            grad = grad + p * wd
        # moments start as zero buffers (not constants) so step 1 has the graph of every later step
        m, v = _state_or_zeros(state, "exp_avg", p), _state_or_zeros(state, "exp_avg_sq", p)
        m = m + (grad - m) * one_minus_b1   # torch: m.lerp_(grad, 1 - b1)
        v = v * b2 + grad * grad * (1 - b2)
        out = {"exp_avg": m, "exp_avg_sq": v}
        if group["amsgrad"]:
            v = _state_or_zeros(state, "max_exp_avg_sq", p).maximum(v)
            out["max_exp_avg_sq"] = v
        denom = v.sqrt() / bc2_sqrt + group["eps"]
        return p - step_size * m / denom, out


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay
    before the Adam step. Default weight_decay 0.01 as in PyTorch."""

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop with torch's formulation: v = alpha * v + (1 - alpha) * g^2 (centered: minus the
    square of the averaged gradient), then p -= lr * g / (sqrt(v) + eps), or with momentum
    b = momentum * b + g / (sqrt(v) + eps) and p -= lr * b. weight_decay adds weight_decay * p
    to the gradient. State: square_avg, momentum_buffer (momentum > 0), grad_avg (centered)."""

    _state_tensors = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        for name, v in (("alpha", alpha), ("eps", eps), ("momentum", momentum)):
            if v < 0:
                raise ValueError(f"RMSprop: {name} must be >= 0, got {v}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        lr = self._hyper(group, "lr", float(group["lr"]))
        alpha, wd = group["alpha"], group["weight_decay"]
        if wd:
            grad = grad + p * wd
        # zero buffers (not constants) at step 1, so step 1 has the graph of every later step
        sq = _state_or_zeros(state, "square_avg", p) * alpha + grad * grad * (1 - alpha)
        out = {"square_avg": sq}
        if group["centered"]:
            ga = _state_or_zeros(state, "grad_avg", p)
            ga = ga + (grad - ga) * (1 - alpha)   # torch: grad_avg.lerp_(grad, 1 - alpha)
            out["grad_avg"] = ga
            avg = (sq - ga * ga).sqrt() + group["eps"]
        else:
            avg = sq.sqrt() + group["eps"]
        if group["momentum"] > 0:
            mu = self._value(group, "momentum", float(group["momentum"]), "momentum")
            buf = _state_or_zeros(state, "momentum_buffer", p) * mu + grad / avg
            out["momentum_buffer"] = buf
            return p - buf * lr, out
        return p - grad / avg * lr, out


class Adagrad(Optimizer):
    """Adagrad with torch's formulation: s += g^2, p -= clr * g / (sqrt(s) + eps) with the
    decayed rate clr = lr / (1 + (step - 1) * lr_decay) (computed on the device from the step
    counter). weight_decay adds weight_decay * p to the gradient. State, created with the
    optimizer as in torch: step and sum (filled with initial_accumulator_value)."""

    _state_tensors = ("sum",)

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        for name, v in (("lr_decay", lr_decay), ("initial_accumulator_value", initial_accumulator_value), ("eps", eps)):
            if v < 0:
                raise ValueError(f"Adagrad: {name} must be >= 0, got {v}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))
        # like torch, the accumulators of the constructor's groups exist at once, and every
        # accumulator starts from the constructor's value (torch ignores a group's own)
        for p in self.params:
            self.state[id(p)] = {"step": 0, "sum": self._initial_sum(p)}

    def _initial_sum(self, p: Tensor) -> Tensor:
        init = np.full(p.shape, self.defaults["initial_accumulator_value"], dtype=p.dtype.np)
        return Tensor(init, dtype=p.dtype)

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        lr = self._hyper(group, "lr", float(group["lr"]))
        wd, decay, t = group["weight_decay"], group["lr_decay"], state["step"]
        if wd:
            grad = grad + p * wd
        clr: Tensor = lr
        if decay:
            t_dev = self._device_step(t)
            clr = self._step_scalar(("clr", id(group), t), lambda: lr / ((t_dev - 1.0) * decay + 1.0))
        s = (state["sum"] if "sum" in state else self._initial_sum(p)) + grad * grad
        return p - grad / (s.sqrt() + group["eps"]) * clr, {"sum": s}


from lazygrad import lr_scheduler  # noqa: E402  (lg.optim.lr_scheduler, like torch.optim.lr_scheduler)
