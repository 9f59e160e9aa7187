"""Convolution and pooling modules beyond Conv2d / MaxPool2d / AvgPool2d, in torch's shape:
Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, MaxPool1d, MaxPool3d, AvgPool1d, AvgPool3d,
MaxUnpool2d, the adaptive pools (the functions live in lazygrad.frontend.convnd and lazygrad.frontend.pooling).

Public names: Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, MaxPool1d, MaxPool3d, AvgPool1d,
AvgPool3d, MaxUnpool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d.
"""
from __future__ import annotations

from typing import Any

from lazygrad.frontend import convnd, pooling
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn import init
from lazygrad.nn.layers import _param, _positive, module_padding
from lazygrad.nn.module import Module


class _ConvNd(Module):
    """Weight (C_out, C_in / groups, *k) (transposed: (C_in, C_out / groups, *k)) and bias,
    initialised like torch."""

    nd = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, output_padding: Any = 0) -> None:
        name = type(self).__name__
        _positive(in_channels, "in_channels", name)
        _positive(out_channels, "out_channels", name)
        _positive(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels {in_channels} and out_channels {out_channels} "
                             f"must both be divisible by groups {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = convnd.tuple_arg(kernel_size, self.nd, "kernel_size", name, 1)
        self.stride = convnd.tuple_arg(stride, self.nd, "stride", name, 1)
        self.dilation = convnd.tuple_arg(dilation, self.nd, "dilation", name, 1)
        self.padding = module_padding(padding, self.stride, self.nd, name, self.transposed)
        self.output_padding = convnd.tuple_arg(output_padding, self.nd, "output_padding", name, 0)
        shape = ((in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups))
        self.weight = _param(*shape, *self.kernel_size)
        self.bias = _param(out_channels) if bias else None
        init.default_linear_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        """The constructor arguments, as torch prints them."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L); weight (C_out, C_in / groups, k)."""

    nd = 1

    def forward(self, x: Tensor) -> Tensor:
        """conv1d of `x` plus the bias per output channel."""
        return convnd.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv3d(_ConvNd):
    """3-D convolution over (N, C_in, D, H, W); weight (C_out, C_in / groups, kd, kh, kw)."""

    nd = 3

    def forward(self, x: Tensor) -> Tensor:
        """conv3d of `x` plus the bias per output channel."""
        return convnd.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution over (N, C_in, H, W); weight (C_in, C_out / groups, kh, kw)."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, output_padding)

    def forward(self, x: Tensor) -> Tensor:
        """conv_transpose2d of `x` plus the bias per output channel."""
        return convnd.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                       self.groups, self.dilation)


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-D convolution over (N, C_in, L); weight (C_in, C_out / groups, k)."""

    nd = 1

    def forward(self, x: Tensor) -> Tensor:
        """conv_transpose1d of `x` plus the bias per output channel."""
        return convnd.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                       self.groups, self.dilation)


class _Pool(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, **options: Any) -> None:
        self.kernel_size, self.stride, self.padding, self.options = kernel_size, stride, padding, options

    def extra_repr(self) -> str:
        """The constructor arguments."""
        more = "".join(f", {k}={v}" for k, v in self.options.items())
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}{more}"


class MaxPool1d(_Pool):
    """torch.nn.MaxPool1d over (N, C, L) (dilation, ceil_mode, return_indices as keywords)."""

    def forward(self, x: Tensor) -> Any:
        """max_pool1d of `x`."""
        return pooling.max_pool1d(x, self.kernel_size, self.stride, self.padding, **self.options)


class MaxPool3d(_Pool):
    """torch.nn.MaxPool3d over (N, C, D, H, W) (dilation, ceil_mode as keywords)."""

    def forward(self, x: Tensor) -> Tensor:
        """max_pool3d of `x`."""
        return pooling.max_pool3d(x, self.kernel_size, self.stride, self.padding, **self.options)


class AvgPool1d(_Pool):
    """torch.nn.AvgPool1d over (N, C, L) (ceil_mode, count_include_pad as keywords)."""

    def forward(self, x: Tensor) -> Tensor:
        """avg_pool1d of `x`."""
        return pooling.avg_pool1d(x, self.kernel_size, self.stride, self.padding, **self.options)


class AvgPool3d(_Pool):
    """torch.nn.AvgPool3d over (N, C, D, H, W) (ceil_mode, count_include_pad, divisor_override)."""

    def forward(self, x: Tensor) -> Tensor:
        """avg_pool3d of `x`."""
        return pooling.avg_pool3d(x, self.kernel_size, self.stride, self.padding, **self.options)


class MaxUnpool2d(_Pool):
    """torch.nn.MaxUnpool2d: the inverse of MaxPool2d(return_indices=True)."""

    def forward(self, x: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        """max_unpool2d of `x` at `indices`."""
        return pooling.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class _AdaptivePool(Module):
    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self) -> str:
        """The constructor arguments."""
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """torch.nn.AdaptiveAvgPool1d over (N, C, L)."""

    def forward(self, x: Tensor) -> Tensor:
        """adaptive_avg_pool1d of `x`."""
        return pooling.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """torch.nn.AdaptiveAvgPool2d over (N, C, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        """adaptive_avg_pool2d of `x`."""
        return pooling.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveAvgPool3d(_AdaptivePool):
    """torch.nn.AdaptiveAvgPool3d over (N, C, D, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        """adaptive_avg_pool3d of `x`."""
        return pooling.adaptive_avg_pool3d(x, self.output_size)


class AdaptiveMaxPool2d(_AdaptivePool):
    """torch.nn.AdaptiveMaxPool2d over (N, C, H, W) (return_indices as torch's)."""

    def forward(self, x: Tensor) -> Any:
        """adaptive_max_pool2d of `x`."""
        return pooling.adaptive_max_pool2d(x, self.output_size, self.return_indices)
