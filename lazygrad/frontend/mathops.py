"""Elementwise math derived from the primitive table, with torch's names, values and gradients.

Each function is a short composition of primitives (so it fuses into its neighbours' kernel
like any elementwise op); the Tensor methods of the same names call these. Where a textbook
formula loses precision or overflows before the result does, the comment says which form is
used instead.

Public names: isfinite, isposinf, isneginf, isclose, allclose, log10, trunc, frac,
round_decimals, copysign, fmod, div_rounding, logaddexp, logaddexp2, sinh, cosh, asinh, acosh,
atanh, erfc, hypot, lerp, shift_left, shift_right, std_mean, var_mean.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.ir.ops import Op
from lazygrad.frontend.tensor import Tensor
from lazygrad.frontend.tensor import _signed_zero

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_INF = float("inf")


def _float(x: Tensor) -> Tensor:
    return x.cast(dt.least_upper_float(x.dtype))


def _pair(a: Tensor, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """Broadcast and promote like a binary op, then to float (the float-valued ops)."""
    x, y = a._broadcast_pair(b, op)
    return _float(x), _float(y)


def isfinite(x: Tensor) -> Tensor:
    """True where x is neither inf nor NaN (always for integers and bools)."""
    if not x.dtype.is_float:
        return Tensor.full(x.shape, True)
    return x.abs() < _INF  # false for NaN


def isposinf(x: Tensor) -> Tensor:
    """True where x is +inf."""
    return x == _INF if x.dtype.is_float else Tensor.full(x.shape, False)


def isneginf(x: Tensor) -> Tensor:
    """True where x is -inf."""
    return x == -_INF if x.dtype.is_float else Tensor.full(x.shape, False)


def isclose(a: Tensor, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """torch.isclose: |a - b| <= atol + rtol |b| elementwise; equal infinities are close, NaN
    is close to NaN only with `equal_nan`."""
    x, y = a._broadcast_pair(b, "isclose")
    if not x.dtype.is_float:
        x, y = x.cast(dt.default_float), y.cast(dt.default_float)
    close = (x == y) | ((x - y).abs() <= atol + rtol * y.abs())  # inf - inf is NaN: false
    if equal_nan:
        close = close | ((x != x) & (y != y))
    return close


def allclose(a: Tensor, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """torch.allclose: `isclose(...).all()` as a Python bool (realizes)."""
    return bool(isclose(a, b, rtol, atol, equal_nan).all().item())


def log10(x: Tensor) -> Tensor:
    """Base-10 logarithm: log(x) / ln 10 (a division, not a multiply by 1/ln 10: log10(1000) is
    3 exactly then)."""
    return _float(x).log() / _LN10


def trunc(x: Tensor) -> Tensor:
    """Round toward zero (integers unchanged); zero gradient like torch."""
    if not x.dtype.is_float:
        return x
    return (x < 0).where(x.ceil(), x.floor())


def frac(x: Tensor) -> Tensor:
    """x - trunc(x), the sign of x; gradient 1 like torch."""
    return x - trunc(x).detach()


def round_decimals(x: Tensor, decimals: int) -> Tensor:
    """torch.round(x, decimals=d): round half to even at 10**-d (d < 0: tens, hundreds, ...)."""
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if decimals == 0 or not x.dtype.is_float:
        return x.round()
    s = 10.0 ** abs(decimals)
    # torch multiplies by 10**d for d > 0 and divides by 10**-d otherwise (the exact power)
    return (x * s).round() / s if decimals > 0 else (x / s).round() * s


def copysign(a: Tensor, b: Any) -> Tensor:
    """|a| with the sign of b (-0.0 counts as negative), in float; like torch, no gradient into
    b and none into a where a is 0."""
    x, y = _pair(a, b, "copysign")
    y = y.detach()
    neg = (y < 0) | ((y == 0) & (1.0 / y < 0))
    m = x.abs()
    return neg.where(-m, m)


def fmod(a: Tensor, b: Any) -> Tensor:
    """C's fmod: the remainder with the sign of the dividend (torch.fmod); an integer fmod by 0
    gives 0 (a lazy kernel cannot raise)."""
    x, y = a._broadcast_pair(b, "fmod")
    if x.dtype.is_float:
        return Tensor._from(g.elementwise(Op.MOD, x.node, y.node), x, y)
    if x.dtype is dt.bool_:
        x, y = x.cast(dt.default_int), y.cast(dt.default_int)
    bad = (y == 0) | ((x == int(np.iinfo(x.dtype.np).min)) & (y == -1))  # undefined in C (x86 traps)
    safe = bad.where(Tensor(g.const(1, y.dtype)), y)
    r = Tensor(g.elementwise(Op.MOD, x.node, safe.node))
    return bad.where(Tensor(g.const(0, r.dtype)), r)


def div_rounding(a: Tensor, b: Any, rounding_mode: str | None, reverse: bool = False) -> Tensor:
    """torch.div(a, b, rounding_mode=): None true division, 'floor' floor division, 'trunc'
    the quotient rounded toward zero (integer operands stay integers for both)."""
    if rounding_mode is None:
        return a.div(b, reverse=reverse)
    if rounding_mode == "floor":
        return a.floordiv(b, reverse=reverse)
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    x, y = a._broadcast_pair(b, "div", reverse)
    if x.dtype.is_float:
        return trunc(x / y)
    if x.dtype is dt.bool_:
        x, y = x.cast(dt.default_int), y.cast(dt.default_int)
    zero = y == 0
    safe = (zero | ((x == int(np.iinfo(x.dtype.np).min)) & (y == -1))).where(Tensor(g.const(1, y.dtype)), y)
    q = Tensor(g.elementwise(Op.IDIV, x.node, safe.node))
    return zero.where(Tensor(g.const(0, q.dtype)), q)


def logaddexp(a: Tensor, b: Any) -> Tensor:
    """log(exp(a) + exp(b)) without overflow: max(a, b) + log1p(exp(-|a - b|)); equal
    infinities give themselves (inf - inf would be NaN)."""
    x, y = _pair(a, b, "logaddexp")
    m = x.maximum(y)
    d = (x - y).abs()
    same_inf = (x == y) & (x.abs() == _INF)
    d = same_inf.where(0.0, d)
    r = m + (-d).exp().log1p()
    return same_inf.where(x, r)


def logaddexp2(a: Tensor, b: Any) -> Tensor:
    """log2(2**a + 2**b), computed as logaddexp in base e."""
    x, y = _pair(a, b, "logaddexp2")
    return logaddexp(x * _LN2, y * _LN2) / _LN2


def _odd(x: Tensor, f) -> Tensor:
    """f(|x|) with the sign of x for an odd function f, differentiable at 0: |x| as x times the
    detached sign (abs's own gradient is 0 at 0, the odd function's is f'(0))."""
    s = (x < 0).where(Tensor.full((), -1.0, dtype=x.dtype), 1.0).detach()
    return s * f(x * s)


# exp overflows float32 above 88.72, cosh and sinh only above 89.41: above this, e^a / 2 is
# taken as exp(a - ln 2); below, as exp(a) / 2 (exact to the last bit there)
_EXP_SAFE = 88.0


def _half_exp(a: Tensor) -> Tensor:
    """e**a / 2 for a >= 0 without overflowing before the result does; each branch is fed only
    inputs it handles (an unused branch's inf would make the gradient NaN)."""
    big = a > _EXP_SAFE  # false for NaN: exp(NaN) below
    return big.where((big.where(a, _EXP_SAFE) - _LN2).exp(), big.where(_EXP_SAFE, a).exp() * 0.5)


def sinh(x: Tensor) -> Tensor:
    """Hyperbolic sine: (expm1(a) - expm1(-a)) / 2 below |x| = 1 (no cancellation near 0),
    e**a / 2 - e**-a / 2 above."""
    x = _float(x)

    def f(a: Tensor) -> Tensor:
        small = a < 1  # false for NaN: NaN takes the large branch and stays NaN
        s = small.where(a, 0.0)
        b = small.where(1.0, a)
        return small.where((s.expm1() - (-s).expm1()) * 0.5, _half_exp(b) - (-b).exp() * 0.5)
    return _odd(x, f)


def cosh(x: Tensor) -> Tensor:
    """Hyperbolic cosine e**|x| / 2 + e**-|x| / 2."""
    a = _float(x).abs()
    return _half_exp(a) + (-a).exp() * 0.5


# above this, x * x overflows float32 long before asinh(x) or acosh(x) is large: log(x) + ln 2
_HUGE = 2.0 ** 28


def asinh(x: Tensor) -> Tensor:
    """Inverse hyperbolic sine: log1p(a + a**2 / (1 + sqrt(1 + a**2))) (accurate near 0),
    log(a) + ln 2 for huge a."""
    def f(a: Tensor) -> Tensor:
        huge = a > _HUGE
        s = huge.where(1.0, a)
        small = (s + s * s / (1 + (1 + s * s).sqrt())).log1p()
        return huge.where(huge.where(a, 2.0).log() + _LN2, small)
    return _odd(_float(x), f)


def acosh(x: Tensor) -> Tensor:
    """Inverse hyperbolic cosine (NaN below 1): log1p(t + sqrt(t (t + 2))) of t = x - 1
    (accurate near 1), log(x) + ln 2 for huge x."""
    x = _float(x)
    huge = x > _HUGE
    t = huge.where(1.0, x) - 1
    near = (t + (t * (t + 2)).sqrt()).log1p()  # t * (t + 2) > 0 again below x = -1: NaN there
    return huge.where(huge.where(x, 2.0).log() + _LN2, (x < 1).where(float("nan"), near))


def atanh(x: Tensor) -> Tensor:
    """Inverse hyperbolic tangent (log1p(x) - log1p(-x)) / 2; ±inf at ±1, NaN beyond."""
    x = _float(x)
    return (x.log1p() - (-x).log1p()) * 0.5


def erfc(x: Tensor) -> Tensor:
    """1 - erf(x), from OpenCL's erfc (1 - erf(x) would round to 0 from x = 4 on)."""
    return _float(x)._unary(Op.ERFC)


# hypot's rescaling: an exact power of two that brings squares that overflow (or underflow)
# back into range, per float size (float16 is computed in its own range, with float32's)
_HYPOT_SCALE = {2: 2.0 ** 8, 4: 2.0 ** 64, 8: 2.0 ** 520}
_HYPOT_TINY = {2: 2.0 ** -14, 4: 2.0 ** -100, 8: 2.0 ** -1000}


def hypot(a: Tensor, b: Any) -> Tensor:
    """sqrt(a**2 + b**2) without overflow or underflow: where the sum of squares leaves the
    float range the operands are scaled by an exact power of two first; inf if either is inf
    (even with a NaN), like torch."""
    x, y = _pair(a, b, "hypot")
    k = _HYPOT_SCALE[x.dtype.itemsize]
    r2 = x * x + y * y
    def c(v: float) -> Tensor:  # in x's dtype (a where of two Python floats would be float32)
        return Tensor.full((), v, dtype=x.dtype)
    s = (r2 == _INF).where(c(1 / k), (r2 < _HYPOT_TINY[x.dtype.itemsize]).where(c(k), c(1.0))).detach()
    xs, ys = x * s, y * s
    r = (xs * xs + ys * ys).sqrt() / s
    return ((x == _INF) | (x == -_INF) | (y == _INF) | (y == -_INF)).where(_INF, r)


def lerp(start: Tensor, end: Any, weight: Any) -> Tensor:
    """torch.lerp: start + w (end - start) for w < 0.5, end - (end - start)(1 - w) otherwise
    (so w = 1 gives `end` exactly)."""
    s, e = start._broadcast_pair(end, "lerp")
    w = weight if isinstance(weight, Tensor) else s._coerce(weight, "lerp")
    d = e - s
    return (w.abs() < 0.5).where(s + w * d, e - d * (1 - w))


def _shift(a: Tensor, b: Any, op: Op, name: str, reverse: bool) -> Tensor:
    x, c = a._broadcast_pair(b, name, reverse)
    if not x.dtype.is_int:
        raise TypeError(f"{name}: shifts need integer tensors, got {x.dtype.name} (shapes {x.shape} and {c.shape})")
    bits = 8 * x.dtype.itemsize
    inside = (c >= 0) & (c < bits)
    safe = inside.where(c, Tensor(g.const(0, c.dtype)))
    r = Tensor(g.elementwise(op, x.node, safe.node, dtype=x.dtype))
    # torch: a count outside [0, bits) shifts everything out (0; -1 for a negative >>)
    zero = Tensor(g.const(0, x.dtype))
    out_of_range = (x < 0).where(Tensor(g.const(-1, x.dtype)), zero) if op is Op.SHR else zero
    return inside.where(r, out_of_range)


def shift_left(a: Tensor, b: Any, reverse: bool = False) -> Tensor:
    """Integer a << b (torch.bitwise_left_shift); counts outside [0, bits) give 0."""
    return _shift(a, b, Op.SHL, "lshift", reverse)


def shift_right(a: Tensor, b: Any, reverse: bool = False) -> Tensor:
    """Integer a >> b, arithmetic (torch.bitwise_right_shift); counts outside [0, bits) give 0,
    or -1 for negative a."""
    return _shift(a, b, Op.SHR, "rshift", reverse)


def var_mean(x: Tensor, dim: Any = None, keepdim: bool = False, correction: float = 1,
             unbiased: bool | None = None) -> tuple[Tensor, Tensor]:
    """torch.var_mean: (variance, mean) over `dim`, the variance unbiased by default."""
    return x.var(dim, keepdim, correction=correction, unbiased=unbiased), x.mean(dim, keepdim)


def std_mean(x: Tensor, dim: Any = None, keepdim: bool = False, correction: float = 1,
             unbiased: bool | None = None) -> tuple[Tensor, Tensor]:
    """torch.std_mean: (standard deviation, mean) over `dim`, unbiased by default."""
    return x.std(dim, keepdim, correction=correction, unbiased=unbiased), x.mean(dim, keepdim)


def asin(x: Tensor) -> Tensor:
    """Elementwise arcsine (NaN outside [-1, 1])."""
    return x._unary(Op.ASIN)


def acos(x: Tensor) -> Tensor:
    """Elementwise arccosine (NaN outside [-1, 1])."""
    return x._unary(Op.ACOS)


def atan(x: Tensor) -> Tensor:
    """Elementwise arctangent."""
    return x._unary(Op.ATAN)


def atan2(y: Tensor, x: Any) -> Tensor:
    """Elementwise angle of the point (x, y), atan2(self, other) like torch (radians in
    [-pi, pi])."""
    a, b = _pair(y, x, "atan2")
    return Tensor._from(g.elementwise(Op.ATAN2, a.node, b.node), a, b)


def _rshift_of(a: Tensor, b: Any) -> Tensor:
    """other >> self."""
    return shift_right(a, b, reverse=True)


def _lshift_of(a: Tensor, b: Any) -> Tensor:
    """other << self."""
    return shift_left(a, b, reverse=True)


# the Tensor methods these functions are (lazygrad/frontend/__init__ installs them): a
# table, so the op family stays in this module while issue 15 splits tensor.py
METHODS = {
    "isfinite": isfinite, "isposinf": isposinf, "isneginf": isneginf, "isclose": isclose, "allclose": allclose,
    "log10": log10, "trunc": trunc, "fix": trunc, "frac": frac, "copysign": copysign, "fmod": fmod,
    "logaddexp": logaddexp, "logaddexp2": logaddexp2, "sinh": sinh, "cosh": cosh, "asinh": asinh,
    "acosh": acosh, "atanh": atanh, "arcsinh": asinh, "arccosh": acosh, "arctanh": atanh, "asin": asin,
    "acos": acos, "atan": atan, "arcsin": asin, "arccos": acos, "arctan": atan, "atan2": atan2,
    "arctan2": atan2, "erfc": erfc, "hypot": hypot, "lerp": lerp,
    "bitwise_left_shift": shift_left, "bitwise_right_shift": shift_right, "__lshift__": shift_left,
    "__rshift__": shift_right, "__rlshift__": _lshift_of, "__rrshift__": _rshift_of,
}




def int_pow(a: Tensor, b: Any, reverse: bool = False) -> Tensor:
    """Integer ** integer stays integer like torch: exact, wrapping on overflow, by squaring
    over the exponent's bits (a Python int exponent: only its set bits). A negative exponent
    gives 0, except for bases 1 and -1 (torch's values)."""
    if not reverse and isinstance(b, (int, np.integer)) and not isinstance(b, bool):
        e = int(b)
        one = Tensor.full((), 1, dtype=a.dtype)
        if e < 0:
            return (a == 1).where(one, (a == -1).where(-one if e % 2 else one, Tensor.full((), 0, dtype=a.dtype)))
        out, sq = None, a
        while e:
            if e & 1:
                out = sq if out is None else out * sq
            e >>= 1
            if e:
                sq = sq * sq
        return out if out is not None else one._expand_to(a.shape)
    x, e = a._broadcast_pair(b, "pow", reverse)
    one = Tensor(g.const(1, x.dtype))
    zero = Tensor(g.const(0, x.dtype))
    out, sq = one._expand_to(x.shape), x
    # every bit of an unsigned exponent; a signed one's sign bit is handled below
    for bit in range(x.dtype.bits if x.dtype.is_unsigned else x.dtype.bits - 1):
        out = ((e & (1 << bit)) != 0).where(out * sq, out)
        sq = sq * sq
    odd = (e & 1) != 0
    negative = (x == 1).where(one, (x == -1).where(odd.where(-one, one), zero))
    return (e < 0).where(negative, out)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_div(self, o: Any, reverse: bool = False, *, rounding_mode: str | None = None) -> Tensor:
    """Elementwise true division self / other; integer operands give float32, like torch
    (`reverse=True`: other / self). `rounding_mode='trunc'` or `'floor'` rounds the quotient
    (integers stay integers), like torch.div."""
    if rounding_mode is not None:
        return div_rounding(self, o, rounding_mode, reverse)
    a, b = self._broadcast_pair(o, "div", reverse)
    if not a.dtype.is_float:
        a, b = a.cast(dt.default_float), b.cast(dt.default_float)
    return Tensor._from(g.elementwise(Op.DIV, a.node, b.node), a, b)


def _method_pow(self, o: Any, reverse: bool = False) -> Tensor:
    """Elementwise self ** other; integer ** integer stays an integer (exact, wrapping on
    overflow) and integer ** float is float32, like torch; gradients at 0 and ±inf follow
    torch."""
    if self.dtype.is_int and isinstance(o, (int, np.integer)) and not isinstance(o, bool):
        return int_pow(self, o, reverse)
    if not reverse and isinstance(o, (int, float)) and not isinstance(o, bool):
        if o == 2:
            return self * self
        if o == 1:
            return self
        if o == 0.5:
            return self.sqrt()
        if o == -1:
            return self.reciprocal()
    a, b = self._broadcast_pair(o, "pow", reverse)
    if a.dtype.is_int:
        # integer ** integer stays integer, like torch (exact, wrapping)
        return int_pow(self, o, reverse)
    if not a.dtype.is_float:
        a, b = a.cast(dt.default_float), b.cast(dt.default_float)
    return Tensor._from(g.elementwise(Op.POW, a.node, b.node), a, b)


def _method_round(self, decimals: int = 0) -> Tensor:
    """Elementwise round to the nearest integer, halves to even (like torch and numpy);
    `decimals=d` rounds to 10**-d like torch."""
    if decimals:
        return round_decimals(self, decimals)
    # round half to even, like torch and numpy
    f = self.floor()
    d = self - f
    even = (f * 0.5).floor() * 2 == f
    r = (d > 0.5).where(f + 1, (d < 0.5).where(f, even.where(f, f + 1)))
    return _signed_zero(r, self.detach()) if self.dtype.is_float else r


TENSOR_METHODS = {"div": _method_div, "true_divide": _method_div, "pow": _method_pow, "round": _method_round}
