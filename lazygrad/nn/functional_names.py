"""torch.nn.functional's names and signatures over lazygrad's functions (lazygrad.nn.functional
re-exports all of them: `import lazygrad.nn.functional as F; F.relu(x)`).

`inplace=True` is accepted where torch takes it and computes out of place: a lazy graph has no
in-place update, and the returned value is the same.

Public names: relu, relu6, elu, selu, celu, leaky_relu, gelu, silu, mish, hardtanh, hardsigmoid,
hardswish, sigmoid, tanh, softplus, softsign, logsigmoid, quick_gelu, softmax, log_softmax,
softmin, normalize, conv2d, max_pool2d, avg_pool2d, layer_norm, batch_norm, pad.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lazygrad.frontend import activations as A
from lazygrad.frontend.tensor import Tensor


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return input.relu()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return A.relu6(input)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return input.elu(alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with torch's SELU constants."""
    return A.selu(input)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    return A.celu(input, alpha)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return input.leaky_relu(negative_slope)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU, the exact erf form by default, approximate='tanh' for the tanh form."""
    return A.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return input.silu()


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return A.mish(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val] (no gradient on the bounds, like torch)."""
    return A.hardtanh(input, min_val, max_val)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return A.hardsigmoid(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return A.hardswish(input)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return input.tanh()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above `threshold`."""
    return input.softplus(beta, threshold)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return A.softsign(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably."""
    return A.logsigmoid(input)


def quick_gelu(input: Tensor) -> Tensor:
    """x * sigmoid(1.702 x)."""
    return A.quick_gelu(input)


def _float_dtype(input: Tensor, dtype: Any) -> Tensor:
    return input.cast(dtype) if dtype is not None else input


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax along `dim` (torch's implicit dim when None), after casting to `dtype`."""
    return _float_dtype(input, dtype).softmax(A.implicit_dim(input, dim))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """log_softmax along `dim` (torch's implicit dim when None), after casting to `dtype`."""
    return _float_dtype(input, dtype).log_softmax(A.implicit_dim(input, dim))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax(-x) along `dim`."""
    return A.softmin(_float_dtype(input, dtype), dim)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: None = None) -> Tensor:
    """x / max(||x||_p, eps) along `dim`."""
    if out is not None:
        raise TypeError("normalize: out= is not supported (lazygrad has no in-place results)")
    return A.normalize(input, p, dim, eps)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution of (N, C, H, W) input by (O, C/groups, kH, kW) weight."""
    return input.conv2d(weight, bias, stride, padding, dilation, groups)


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max pooling over (N, C, H, W) input; with return_indices, (values, flat h * W + w indices)."""
    return input.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Average pooling over (N, C, H, W) input, torch's arguments."""
    return input.avg_pool2d(kernel_size, stride, padding, count_include_pad, ceil_mode, divisor_override)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the trailing `normalized_shape` dims."""
    return input.layernorm(normalized_shape, weight, bias, eps)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every dim but dim 1."""
    return input.batchnorm(running_mean, running_var, weight, bias, training, momentum, eps)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """torch's pad: `pad` lists (before, after) widths from the last dim backwards; negative
    widths crop. Only mode 'constant' so far."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) > 2 * input.ndim:
        raise ValueError(f"pad: {len(pad)} widths for a tensor with {input.ndim} dims (an even number, at most "
                         f"{2 * input.ndim})")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return input.pad(widths, value=0.0 if value is None else value, mode=mode)
