"""Layers with parameters or state: Linear, Embedding, Conv2d, BatchNorm1d/2d, LayerNorm,
Dropout, Flatten, pooling. Shapes, argument names and default initialisations follow PyTorch, so a
model's state_dict can be exchanged with torch's.

Public names: Linear, Embedding, Conv2d, BatchNorm1d, BatchNorm2d, LayerNorm, Dropout, Flatten,
MaxPool2d, AvgPool2d, module_padding.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

import numpy as np

from lazygrad.dtypes import int64 as lg_int64
from lazygrad.frontend.conv import PADDING_MODES
from lazygrad.frontend.convnd import tuple_arg
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn import functional as F
from lazygrad.nn import init
from lazygrad.nn.module import Module

IntPair = Union[int, tuple[int, int]]


def _pair(v: IntPair, name: str, layer: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, int) for i in t):
        raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def _param(*shape: int) -> Tensor:
    """A trainable float32 tensor (zeros until an init function fills it)."""
    return Tensor(np.zeros(shape, dtype=np.float32), requires_grad=True)


def _positive(value: int, name: str, layer: str) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return value


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        self.weight = _param(out_features, in_features)
        self.bias = _param(out_features) if bias else None
        init.default_linear_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """`x @ weight.T + bias` over the last dim of `x`."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        """`in_features=..., out_features=..., bias=...` as torch prints it."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim: `emb(indices)` has shape
    indices.shape + (embedding_dim,). Initialised N(0, 1) like torch, the padding_idx row (if
    any) zero; that row never gets a gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 _weight: Tensor | None = None, _freeze: bool = False) -> None:
        self.num_embeddings = _positive(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings {num_embeddings}")
            padding_idx %= num_embeddings   # torch stores it non-negative
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = _param(num_embeddings, embedding_dim)
            init.normal_(self.weight)
            if padding_idx is not None:
                w = self.weight.numpy()
                w[padding_idx] = 0.0
                self.weight.assign(Tensor(w))
        else:
            if _weight.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {_weight.shape}, expected ({num_embeddings}, {embedding_dim})")
            self.weight = Tensor(_weight.numpy(), requires_grad=True)
        self.weight.requires_grad_(not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None) -> Embedding:
        """An Embedding holding a copy of the 2-D `embeddings` (frozen by default, like torch)."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {embeddings.shape}")
        return cls(*embeddings.shape, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze)

    def forward(self, indices: Tensor) -> Tensor:
        """The rows of `weight` picked by the integer `indices` (any shape)."""
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        """`num_embeddings, embedding_dim[, padding_idx=...]` as torch prints it."""
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def module_padding(padding: Any, stride: tuple[int, ...], nd: int, name: str, transposed: bool = False) -> Any:
    """A conv module's padding: nd ints, or torch's 'valid' / 'same' kept as the string (checked
    when the module is built, as torch does: 'same' needs stride 1)."""
    if not isinstance(padding, str):
        return tuple_arg(padding, nd, "padding", name, 0)
    if transposed or padding not in PADDING_MODES:
        raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                         f"{() if transposed else PADDING_MODES}")
    if padding == "same" and any(s != 1 for s in stride):
        raise ValueError(f"{name}: padding='same' is not supported for strided convolutions (stride {stride})")
    return padding


class Conv2d(Module):
    """2-D convolution over (N, C_in, H, W); weight (C_out, C_in / groups, kH, kW)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True) -> None:
        _positive(in_channels, "in_channels", "Conv2d")
        _positive(out_channels, "out_channels", "Conv2d")
        _positive(groups, "groups", "Conv2d")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels {out_channels} "
                             f"must both be divisible by groups {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.dilation = _pair(dilation, "dilation", "Conv2d")
        self.padding = module_padding(padding, self.stride, 2, "Conv2d")
        self.weight = _param(out_channels, in_channels // groups, *self.kernel_size)
        self.bias = _param(out_channels) if bias else None
        init.default_linear_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of `x` (N, C_in, H, W), plus the bias per output channel."""
        return x.conv2d(self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """The constructor arguments, as torch prints them."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}")


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: affine weight and bias, running statistics as buffers, and a
    host-side count of batches seen (saved as `num_batches_tracked` like PyTorch)."""

    input_ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        self.num_features = _positive(num_features, "num_features", type(self).__name__)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Tensor(np.ones(num_features, np.float32), requires_grad=True) if affine else None
        self.bias = _param(num_features) if affine else None
        if track_running_stats:
            self.running_mean = Tensor(np.zeros(num_features, np.float32))
            self.running_var = Tensor(np.ones(num_features, np.float32))
        else:
            self.running_mean = self.running_var = None
        self.num_batches_tracked = 0

    def _state_entries(self) -> Iterator[tuple[str, Tensor]]:
        yield from super()._state_entries()
        if self.track_running_stats:
            yield "num_batches_tracked", Tensor(np.array(self.num_batches_tracked), dtype=lg_int64)

    def _load_state_entry(self, name: str, value: np.ndarray) -> None:
        if name == "num_batches_tracked":
            self.num_batches_tracked = int(value)
        else:
            super()._load_state_entry(name, value)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise `x` per channel: with the batch's statistics (updating the running ones) while
        training, with the running statistics in eval mode."""
        name = type(self).__name__
        if x.ndim not in self.input_ndims:
            raise ValueError(f"{name}: expected a {' or '.join(f'{n}-D' for n in self.input_ndims)} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {x.shape[1]} channels (shape {x.shape}), expected {self.num_features}")
        momentum: float | Tensor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                # cumulative average: the factor changes every step, so it is a device scalar
                momentum = Tensor(np.array(1.0 / self.num_batches_tracked, np.float32))
        return F.batchnorm(x, self.running_mean, self.running_var, self.weight, self.bias,
                           training=self.training or self.running_mean is None, momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        """The constructor arguments, as torch prints them."""
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L)."""

    input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W), statistics per channel."""

    input_ndims = (4,)


class LayerNorm(Module):
    """Normalise over the trailing `normalized_shape` dims, then scale and shift."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Tensor(np.ones(self.normalized_shape, np.float32), requires_grad=True) if elementwise_affine else None
        self.bias = _param(*self.normalized_shape) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        """Normalise `x` over its trailing `normalized_shape` dims, then scale and shift."""
        return F.layernorm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        """The constructor arguments, as torch prints them."""
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """Zero elements with probability p while training (scaled by 1/(1-p)); identity in eval."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """`x.dropout(p, training=self.training)`."""
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """`p=...`."""
        return f"p={self.p}"


class Flatten(Module):
    """Flatten dims start_dim..end_dim (keeps the batch dim by default)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        """`x.flatten(start_dim, end_dim)`."""
        return x.flatten(self.start_dim, self.end_dim)


class MaxPool2d(Module):
    """torch.nn.MaxPool2d: the max over kernel_size windows of (N, C, H, W) input (stride defaults
    to kernel_size)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        """`x.max_pool2d(kernel_size, stride, padding)`."""
        return x.max_pool2d(self.kernel_size, self.stride, self.padding)


class AvgPool2d(Module):
    """torch.nn.AvgPool2d: the mean over kernel_size windows of (N, C, H, W) input (stride defaults
    to kernel_size)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        """`x.avg_pool2d(kernel_size, stride, padding)`."""
        return x.avg_pool2d(self.kernel_size, self.stride, self.padding)
