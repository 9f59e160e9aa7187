"""Weight initialisation, following torch.nn.init (names, gains, fan computations).

Values are drawn on the host with a numpy generator seeded from lazygrad's seed counter
(reproducible after `lg.manual_seed`) and uploaded once: building a model compiles no kernels,
so the first training step of a fresh process is not slowed by one program per weight shape.
Each function replaces the tensor's value in place (like PyTorch's trailing-underscore
functions) and returns it.

Public names: calculate_gain, fan_in_and_fan_out, uniform_, normal_, constant_, zeros_, ones_,
kaiming_uniform_, kaiming_normal_, xavier_uniform_, xavier_normal_, default_linear_init_.
"""
from __future__ import annotations

import math

import numpy as np

from lazygrad.ir.random import next_seed
from lazygrad.frontend.tensor import Tensor

_GAINS = {
    "linear": lambda p: 1.0, "identity": lambda p: 1.0, "conv1d": lambda p: 1.0,
    "conv2d": lambda p: 1.0, "conv3d": lambda p: 1.0, "sigmoid": lambda p: 1.0,
    "tanh": lambda p: 5.0 / 3,
    "relu": lambda p: math.sqrt(2.0),
    "leaky_relu": lambda p: math.sqrt(2.0 / (1 + (0.01 if p is None else p) ** 2)),
    "selu": lambda p: 3.0 / 4,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; known: {sorted(_GAINS)}")
    return _GAINS[nonlinearity](param)


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: dims 1 and 0 times the receptive field (dims 2+)."""
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need a weight with at least 2 dims, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _rng() -> np.random.Generator:
    return np.random.default_rng(next_seed())


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.assign(Tensor(np.asarray(values, dtype=t.dtype.np).reshape(t.shape), dtype=t.dtype))
    return t


def _fan(t: Tensor, mode: str) -> int:
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill `t` in place with uniform values in [a, b) (host numpy generator seeded from
    `lg.manual_seed`); returns t."""
    return _fill(t, _rng().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill `t` in place with normal values of `mean` and `std`; returns t."""
    return _fill(t, _rng().normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    """Fill `t` in place with `value`; returns t."""
    return _fill(t, np.full(t.shape, value))


def zeros_(t: Tensor) -> Tensor:
    """Fill `t` in place with zeros; returns t."""
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fill `t` in place with ones; returns t."""
    return constant_(t, 1.0)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al. 2015)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / max(_fan(t, mode), 1))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / sqrt(fan)."""
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(max(_fan(t, mode), 1)))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Fill `t` in place with Glorot normal values, std = gain * sqrt(2 / (fan_in + fan_out)), like
    torch.nn.init.xavier_normal_; returns t."""
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)))


def default_linear_init_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=√5) on the weight, which is
    U(±1/√fan_in), and U(±1/√fan_in) on the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = fan_in_and_fan_out(weight.shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
