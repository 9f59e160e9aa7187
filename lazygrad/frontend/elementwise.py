"""Unary math as Tensor methods: exp, log, sqrt, trig, activations built from primitives
(relu, sigmoid, tanh, softplus, gelu ...), rounding, clipping.

The Tensor class lists none of these: lazygrad/frontend/__init__.py installs TENSOR_METHODS.

Public names: TENSOR_METHODS.
"""
from __future__ import annotations

import math
from typing import Any

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.ir.ops import Op
from lazygrad.frontend.tensor import Tensor, _or_nan, _signed_zero


def _method_exp(self) -> Tensor:
    """Elementwise e ** x (integers are computed in float32)."""
    return self._unary(Op.EXP)


def _method_log(self) -> Tensor:
    """Elementwise natural logarithm (-inf at 0, NaN below)."""
    return self._unary(Op.LOG)


def _method_sqrt(self) -> Tensor:
    """Elementwise square root (NaN below 0)."""
    return self._unary(Op.SQRT)


def _method_sin(self) -> Tensor:
    """Elementwise sine (radians)."""
    return self._unary(Op.SIN)


def _method_cos(self) -> Tensor:
    """Elementwise cosine (radians)."""
    return self._unary(Op.COS)


def _method_tanh(self) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return self._unary(Op.TANH)


def _method_reciprocal(self) -> Tensor:
    """Elementwise 1 / x."""
    return self._unary(Op.RECIP)


def _method_rsqrt(self) -> Tensor:
    """Elementwise 1 / sqrt(x)."""
    return self.sqrt().reciprocal()


def _method_tan(self) -> Tensor:
    """Elementwise tangent, sin(x) / cos(x)."""
    return self.sin() / self.cos()


def _method_exp2(self) -> Tensor:
    """Elementwise 2 ** x."""
    return (self * math.log(2)).exp()


def _method_log2(self) -> Tensor:
    """Elementwise base-2 logarithm."""
    return self.log() * (1 / math.log(2))


def _method_square(self) -> Tensor:
    """Elementwise x * x."""
    return self * self


def _method_abs(self) -> Tensor:
    """Elementwise absolute value |x| (bools and unsigned integers are returned unchanged;
    abs of a signed type's minimum is itself, like torch)."""
    if self.dtype is dt.bool_ or self.dtype.is_unsigned:
        return self  # max(x, -x) of unsigned x would be the wrapped -x
    m = self.maximum(-self)
    # max(0.0, -0.0) may be either zero: + 0.0 makes it +0.0 (like torch; 1 / abs(0) was
    # -inf) and leaves every other value as it is
    return m + 0.0 if self.dtype.is_float else m


def _method_sign(self) -> Tensor:
    """Elementwise -1, 0 or 1 by the sign of x, in x's dtype (0 for NaN, like torch);
    differentiable with a zero gradient like torch's."""
    if self.dtype is dt.bool_:
        return self
    s = (self > 0).cast(self.dtype) - (self < 0).cast(self.dtype)
    return self._zero_gradient(s) if self.dtype.is_float else s


def _method_zero_gradient(self, value: Tensor) -> Tensor:
    """`value` (computed from self without a gradient path: comparisons, casts to int) as a
    result that is differentiable with the gradient 0, like torch's sign, floor, round: a
    where that never takes self (without it backward finds no path and raises)."""
    never = g.const(False, dt.bool_, self.shape)
    return Tensor._from(g.elementwise(Op.WHERE, never, self.node, value.node, dtype=self.dtype), self)


def _method_relu(self) -> Tensor:
    """Elementwise max(x, 0); like torch, no gradient at exactly 0 and NaN stays NaN."""
    # not maximum(x, 0): at x == 0 torch's relu passes no gradient, maximum splits it;
    # NaN stays NaN like torch (`x > 0` alone would turn it into 0)
    if not self.dtype.is_float:
        return ((self > 0) | (self != self)).where(self, 0)
    # the same nodes as the line above builds, made directly: the generic broadcasting
    # path costs several times more Python than the nodes themselves (small layers feel it)
    x, b = self.node, dt.bool_
    zero = g.const(0.0, self.dtype, self.shape)
    pos = g.elementwise(Op.CMPLT, zero, x, dtype=b)
    nan = g.elementwise(Op.NOT, g.elementwise(Op.CMPEQ, x, x, dtype=b), dtype=b)
    keep = g.elementwise(Op.OR, pos, nan, dtype=b)
    return Tensor._from(g.elementwise(Op.WHERE, keep, x, zero, dtype=self.dtype), self)


def _method_sigmoid(self) -> Tensor:
    """Elementwise logistic function 1 / (1 + exp(-x)), computed without overflow for large |x|
    (and so without NaN gradients)."""
    # each branch only exponentiates a non-positive number: 1/(1+exp(-x)) alone overflows
    # exp for x < -88 and its gradient becomes 0 * inf = NaN
    pos = self >= 0
    e = pos.where(-self, self).exp()
    return pos.where(1, e) / (1 + e)


def _method_silu(self) -> Tensor:
    """Elementwise x * sigmoid(x) (SiLU, also `swish`)."""
    return self * self.sigmoid()


def _method_erf(self) -> Tensor:
    """Elementwise error function (OpenCL's erf, a primitive)."""
    return self._unary(Op.ERF)


def _method_leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
    """Elementwise x where x > 0, else negative_slope * x (torch's default slope 0.01)."""
    return (self > 0).where(self, self * negative_slope)


def _method_elu(self, alpha: float = 1.0) -> Tensor:
    """Elementwise x where x > 0, else alpha * (exp(x) - 1)."""
    # the negative side exponentiates min(x, 0) only: exp(x) of a large x is inf, and the
    # gradient the where gives that unused branch (0) times it was NaN
    pos = self > 0
    return pos.where(self, alpha * pos.where(0.0, self).expm1())


def _method_expm1(self) -> Tensor:
    """exp(x) - 1, accurate near 0 (where exp(x) rounds near 1): (u - 1) of u = exp(x),
    corrected for |x| < 1/2 by (u - 1) (x / log(u) - 1), the error of u's rounding (Kahan;
    0 in exact arithmetic, so it is detached: the gradient is u = exp(x)); x itself where u
    rounds to 1. Farther from 0, u - 1 is as accurate as u."""
    x = self.cast(dt.least_upper_float(self.dtype))
    u = x.exp()
    d = u - 1
    lu = u.log()
    near = (x.abs() < 0.5) & (lu != 0)  # false for NaN
    fix = near.where(d * (x / lu - 1), 0.0).detach()
    return (u == 1).where(x, d + fix)


def _method_softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above `threshold` like torch. Each side of 0 is a
    smooth formula that only exponentiates a non-positive number, and x = 0 takes the side
    whose formula is smooth through it: the gradient is sigmoid(beta x) everywhere (0.5 at
    0; |x| and relu there would each give their kink's 0)."""
    bx = self * beta
    pos = bx > 0
    soft = (pos.where(-bx, bx).exp().log1p() + pos.where(bx, 0.0)) * (1 / beta)
    return (bx > threshold).where(self, soft)


def _method_neg_exp_log1p(self) -> Tensor:
    """Elementwise log(1 + exp(-x)), accurate for x >= 0 (a building block of softplus)."""
    # log(1 + exp(-x)) for x >= 0, stable
    return (-self).exp().log1p()


def _method_log1p(self) -> Tensor:
    """log(1 + x), accurate where 1 + x rounds (tiny x): log(u) of u = 1 + x, corrected by
    log(u) (x / (u - 1) - 1), the error of u's rounding (Goldberg; 0 in exact arithmetic, so
    it is detached: the gradient is 1 / u); x itself where u rounds to 1."""
    x = self.cast(dt.least_upper_float(self.dtype))
    u = 1 + x
    d = u - 1
    lu = u.log()
    rounded = (d != 0) & (d.abs() < float("inf")) & (lu.abs() < float("inf"))  # false for NaN
    fix = rounded.where(lu * (x / d - 1), 0.0).detach()
    return (d == 0).where(x, lu + fix)


def _method_clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (torch's names)
    """Elementwise clamp to [min, max] (either may be None, each a number or a tensor). Like
    torch, values on a bound keep their gradient and max wins when min > max. Also `clamp`."""
    min_, max_ = min, max
    if min_ is None and max_ is None:
        raise ValueError("clip: at least one of min and max must be given")
    # where, not maximum/minimum: like torch, x keeps its gradient on the bounds, and
    # max_ wins when min_ > max_ (min(max(x, lo), hi)); a NaN bound gives NaN (torch), the
    # comparison alone would be false and keep x
    x = self
    if min_ is not None:
        x = _or_nan(x < min_, min_).where(min_, x)
    if max_ is not None:
        x = _or_nan(x > max_, max_).where(max_, x)
    if self.dtype.is_float and self.requires_grad:
        # torch passes the gradient where lo <= x <= hi: a NaN x gets none (it stays NaN);
        # only a tensor that takes gradients pays the extra select
        x = self.isnan().where(self.detach(), x)
    return x


def _method_clamp_min(self, min: Any) -> Tensor:  # noqa: A002
    """clamp(min=min), torch's spelling."""
    return _method_clip(self, min=min)


def _method_clamp_max(self, max: Any) -> Tensor:  # noqa: A002
    """clamp(max=max), torch's spelling."""
    return _method_clip(self, max=max)

def _method_floor(self) -> Tensor:
    """Elementwise largest integer <= x, in x's dtype (integers unchanged; NaN and ±inf kept)."""
    if not self.dtype.is_float:
        return self
    x = self.detach()
    t = x.cast(dt.int64 if x.dtype.itemsize == 8 else dt.int32).cast(x.dtype)
    # from 2**mantissa_bits up every float is an integer (and may not fit the int): keep it,
    # as also NaN and ±inf (the comparison is false for them)
    small = x.abs() < float(2 ** {2: 10, 4: 23, 8: 52}[x.dtype.itemsize])
    return self._zero_gradient(_signed_zero(small.where((t > x).where(t - 1, t), x), x))


def _method_ceil(self) -> Tensor:
    """Elementwise smallest integer >= x, in x's dtype."""
    return -((-self).floor())


def _method_isnan(self) -> Tensor:
    """Elementwise True where x is NaN."""
    return self != self


def _method_isinf(self) -> Tensor:
    """Elementwise True where x is +inf or -inf."""
    return self.abs() == float("inf")


TENSOR_METHODS = {
    "exp": _method_exp,
    "log": _method_log,
    "sqrt": _method_sqrt,
    "sin": _method_sin,
    "cos": _method_cos,
    "tanh": _method_tanh,
    "reciprocal": _method_reciprocal,
    "rsqrt": _method_rsqrt,
    "tan": _method_tan,
    "exp2": _method_exp2,
    "log2": _method_log2,
    "square": _method_square,
    "abs": _method_abs,
    "sign": _method_sign,
    "_zero_gradient": _method_zero_gradient,
    "relu": _method_relu,
    "sigmoid": _method_sigmoid,
    "silu": _method_silu,
    "erf": _method_erf,
    "leaky_relu": _method_leaky_relu,
    "elu": _method_elu,
    "expm1": _method_expm1,
    "softplus": _method_softplus,
    "neg_exp_log1p": _method_neg_exp_log1p,
    "log1p": _method_log1p,
    "clip": _method_clip,
    "floor": _method_floor,
    "ceil": _method_ceil,
    "isnan": _method_isnan,
    "isinf": _method_isinf,
    "swish": _method_silu,
    "clamp": _method_clip,
    "clamp_min": _method_clamp_min,
    "clamp_max": _method_clamp_max,
}
