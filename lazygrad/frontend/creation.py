"""Creating tensors with torch's functions: ranges, random numbers, and `*_like`.

Public names: tensor, linspace, logspace, randint, normal, empty, zeros_like, ones_like,
full_like, rand_like, randn_like.
"""
from __future__ import annotations

from typing import Any

from lazygrad import dtypes as dt
from lazygrad.runtime.device import get_device
from lazygrad.frontend.tensor import Tensor, _shape_arg


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """torch.tensor: a new tensor of `data` (a nested list, number, numpy array or tensor);
    `device` may only name lazygrad's one device."""
    if isinstance(data, Tensor):
        data = data.numpy()
    t = Tensor(data, dtype=dtype, requires_grad=requires_grad)
    return t.to(device) if device is not None else t


def linspace(start: float, end: float, steps: int, dtype: Any = None) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive, float32 by default; like torch,
    the first half counts up from start and the second down from end (both ends exact)."""
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    d = dt.as_dtype(dtype) if dtype is not None else dt.default_float
    if steps <= 1:
        return Tensor.full((steps,), float(start), dtype=d)
    step = (end - start) / (steps - 1)
    i = Tensor.arange(steps, dtype=d if d.is_float else dt.float32)
    out = (i < steps // 2).where(i * step + start, end - (steps - 1 - i) * step)
    return out.cast(d)


def logspace(start: float, end: float, steps: int, base: float = 10.0, dtype: Any = None) -> Tensor:
    """base ** linspace(start, end, steps)."""
    d = dt.as_dtype(dtype) if dtype is not None else dt.default_float
    e = linspace(start, end, steps, dtype=d if d.is_float else None)
    return Tensor.full((), float(base), dtype=e.dtype).pow(e).cast(d)


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = None) -> Tensor:
    """Uniform random integers in [low, high) (`randint(high, size)` from 0), int32 unless
    `dtype` is given (lazygrad's default int; torch's is int64)."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: size is required, e.g. randint(0, 10, (3,))")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    d = dt.as_dtype(dtype) if dtype is not None else dt.default_int
    shape = _shape_arg((size,) if isinstance(size, int) else tuple(size))
    u = Tensor.rand(*shape, dtype=dt.float64 if high - low > 2 ** 24 and _fp64() else None)
    # floor(u * n) < n for u < 1; the minimum guards a float rounding up to n
    k = (u * (high - low)).floor().cast(dt.int64 if high - low > 2 ** 31 - 1 else dt.int32).minimum(high - low - 1)
    return (k + low).cast(d)


def _fp64() -> bool:
    return get_device().supports(dt.float64)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, dtype: Any = None) -> Tensor:
    """Normal random numbers of `mean` and `std` (numbers, or tensors broadcast together),
    of shape `size` when both are numbers."""
    shape = None
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        other = std if ref is mean else mean
        shape = ref.shape if not isinstance(other, Tensor) else \
            (ref * 0 + other * 0).shape
    elif size is None:
        raise TypeError("normal: give size= when mean and std are numbers")
    else:
        shape = _shape_arg((size,) if isinstance(size, int) else tuple(size))
    return Tensor.randn(*shape, dtype=dtype) * std + mean


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape (lazygrad fills it with zeros; torch leaves it unset)."""
    return Tensor.zeros(*size, dtype=dtype, requires_grad=requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of input's shape and dtype (or `dtype`)."""
    return Tensor.full(input.shape, 0, dtype or input.dtype, requires_grad)


def ones_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of input's shape and dtype (or `dtype`)."""
    return Tensor.full(input.shape, 1, dtype or input.dtype, requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """`fill_value` in input's shape and dtype (or `dtype`)."""
    return Tensor.full(input.shape, fill_value, dtype or input.dtype, requires_grad)


def rand_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) numbers of input's shape and (float) dtype."""
    return Tensor.rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal numbers of input's shape and (float) dtype."""
    return Tensor.randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)
