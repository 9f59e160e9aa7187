"""torch's module-level functions (`torch.exp(x)`, `torch.sum(x, 1)`, `torch.where(c, a, b)`)
as `lg.exp(x)`, ...: each is the Tensor method of the same name, made from one table.

Public names: every name in METHOD_FUNCTIONS, and where, cat, concat, concatenate, stack,
matmul, meshgrid.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lazygrad.frontend.shapes import meshgrid  # noqa: F401  (lg.meshgrid)
from lazygrad.frontend.tensor import Tensor, _where, cat, stack  # noqa: F401

# torch functions whose first argument is the tensor the method of the same name runs on
METHOD_FUNCTIONS = (
    "abs", "acos", "acosh", "add", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "asin", "asinh",
    "atan", "atan2", "atanh", "ceil", "chunk", "clamp", "clip", "copysign", "cos", "cosh", "cumsum", "diag",
    "diagonal", "div", "erf", "erfc", "exp", "exp2", "expm1", "flatten", "flip", "floor", "floor_divide", "fmod",
    "frac", "hypot", "isclose", "isfinite", "isinf", "isnan", "isneginf", "isposinf", "lerp", "log", "log10",
    "log1p", "log2", "logaddexp", "logaddexp2", "logical_and", "logical_not", "logical_or", "logical_xor",
    "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg", "permute", "pow", "prod",
    "reciprocal", "relu", "remainder", "repeat_interleave", "reshape", "roll", "round", "rsqrt", "sigmoid", "sign",
    "sin", "sinh", "softmax", "log_softmax", "split", "sqrt", "square", "squeeze", "std", "sub", "sum", "tan",
    "tanh", "transpose", "tril", "triu", "trunc", "unsqueeze", "var", "clone", "true_divide", "unflatten",
)


def _function(name: str) -> Callable[..., Any]:
    def f(input: Any, *args: Any, **kwargs: Any) -> Any:
        t = input if isinstance(input, Tensor) else Tensor(input)
        return getattr(t, name)(*args, **kwargs)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"torch.{name}(input, ...): `input.{name}(...)`."
    return f


FUNCTIONS: dict[str, Callable[..., Any]] = {name: _function(name) for name in METHOD_FUNCTIONS}
globals().update(FUNCTIONS)


def where(condition: Any, input: Any = None, other: Any = None) -> Tensor:
    """torch.where(condition, input, other): elementwise input where condition else other
    (either may be a Python number)."""
    if input is None or other is None:
        raise TypeError("where: give condition, input and other (the one-argument form is nonzero(), not "
                        "supported)")
    return _where(condition, input, other)


def concat(tensors: Any, dim: int = 0) -> Tensor:
    """torch.concat: `cat`."""
    return cat(tensors, dim)


concatenate = concat

__all__ = [*METHOD_FUNCTIONS, "where", "cat", "concat", "concatenate", "stack", "meshgrid"]
