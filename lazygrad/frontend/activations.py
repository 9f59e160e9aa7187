"""Activation functions with torch's names, values and gradients, derived from primitives.

Each is elementwise (softmin and normalize: row-wise) and fuses with its neighbours; the Tensor
methods of the same names call these (installed from METHODS by lazygrad/frontend/__init__).

Public names: hardtanh, relu6, hardsigmoid, hardswish, selu, celu, mish, softsign, quick_gelu,
gelu, logsigmoid, softmin, normalize, SELU_ALPHA, SELU_SCALE.
"""
from __future__ import annotations

import math
from typing import Any

from lazygrad import dtypes as dt
from lazygrad.frontend.tensor import Tensor

# torch's SELU constants (Klambauer et al. 2017), to the digits torch uses
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; like torch's, the gradient is 1 strictly inside and 0 on
    and beyond the bounds (clamp's passes it on the bounds)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is greater than max_val {max_val}")
    inside = (x > min_val) & (x < max_val)
    return inside.where(x, x.clip(min_val, max_val).detach())


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6."""
    return relu6(x + 3.0) / 6.0  # a division like torch (times 1/6 differs in the last bit)


def hardswish(x: Tensor) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return x * hardsigmoid(x)


def selu(x: Tensor) -> Tensor:
    """SELU_SCALE * elu(x, SELU_ALPHA)."""
    return x.elu(SELU_ALPHA) * SELU_SCALE


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (torch refuses it too)")
    pos = x > 0
    # the negative side exponentiates min(x, 0) / alpha only (an unused inf makes NaN gradients)
    return pos.where(x, (pos.where(0.0, x) * (1 / alpha)).expm1() * alpha)


def mish(x: Tensor) -> Tensor:
    """x * tanh(softplus(x))."""
    return x * x.softplus().tanh()


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x / (x.abs() + 1)


def quick_gelu(x: Tensor) -> Tensor:
    """x * sigmoid(1.702 x), the GELU approximation of CLIP and others."""
    return x * (x * 1.702).sigmoid()


_GELU = {
    # erfc(-x / sqrt 2) is 1 + erf(x / sqrt 2) without its cancellation for negative x (the erf
    # form lost 1e-4 relative accuracy around x = -3.5 in float32)
    "none": lambda x: 0.5 * x * (x * (-1 / math.sqrt(2))).erfc(),
    # 0.5 * (1 + tanh(z)) is sigmoid(2z) without the cancellation of 1 + tanh(z) for negative
    # z: in float32 tanh(z) rounds to -1 below z = -9 and the product became -0.0 where the
    # value is about -1e-12 (fuzz seed 191093882: its reciprocal was -inf, not -1e12)
    "tanh": lambda x: x * (math.sqrt(8 / math.pi) * (x + 0.044715 * x * x * x)).sigmoid(),
}


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU like torch: the exact form x * Phi(x) through erf by default, `approximate='tanh'`
    for the tanh form."""
    if approximate not in _GELU:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _GELU[approximate](x.cast(dt.least_upper_float(x.dtype)))


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) without overflow: min(x, 0) - log1p(exp(-|x|))."""
    x = x.cast(dt.least_upper_float(x.dtype))
    return x.minimum(0.0) - (-x.abs()).exp().log1p()


def softmin(x: Tensor, dim: Any = None) -> Tensor:
    """softmax(-x) along `dim` (torch's implicit dim when None: 0 for 0-, 1- and 3-d input, else 1)."""
    return (-x.cast(dt.least_upper_float(x.dtype))).softmax(implicit_dim(x, dim))


def implicit_dim(x: Tensor, dim: Any) -> int:
    """torch's softmax dim when none is given (a deprecated torch default, kept for scripts)."""
    return dim if dim is not None else (0 if x.ndim in (0, 1, 3) else 1)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along `dim` (torch.nn.functional.normalize)."""
    x = x.cast(dt.least_upper_float(x.dtype))
    if p == 2:
        norm = (x * x).sum(dim, keepdim=True).sqrt()
    elif p == 1:
        norm = x.abs().sum(dim, keepdim=True)
    elif p == math.inf:
        norm = x.abs().amax(dim, keepdim=True)
    else:
        norm = (x.abs() ** p).sum(dim, keepdim=True) ** (1 / p)
    return x / norm.maximum(eps)


# the Tensor methods these functions are (lazygrad/frontend/__init__ installs them)
METHODS = {
    "hardtanh": hardtanh, "relu6": relu6, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "selu": selu,
    "celu": celu, "mish": mish, "softsign": softsign, "quick_gelu": quick_gelu, "gelu": gelu,
    "logsigmoid": logsigmoid, "softmin": softmin,
}




def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).
    The mask comes from lazy device-side random numbers, so dropout fuses into its neighbours."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = Tensor.rand(*x.shape) >= p
    return keep.where(x * (1.0 / (1.0 - p)), 0.0)
