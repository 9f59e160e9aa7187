"""Activation layers: stateless modules wrapping the Tensor methods of the same name.

Public names: ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, ELU, Softplus, Softmax, LogSoftmax,
ReLU6, Hardtanh, Hardsigmoid, Hardswish, SELU, CELU, Mish, Softsign, LogSigmoid, Softmin.
`inplace=` is accepted where torch takes it (the result is computed out of place).
"""
from __future__ import annotations

from lazygrad.frontend import activations as A
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn.module import Module


class ReLU(Module):
    """torch.nn.ReLU: max(x, 0) elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """`x.relu()`."""
        return x.relu()


class LeakyReLU(Module):
    """torch.nn.LeakyReLU: x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        """`x.leaky_relu(negative_slope)`."""
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """torch.nn.Sigmoid: 1 / (1 + exp(-x)) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """`x.sigmoid()`."""
        return x.sigmoid()


class Tanh(Module):
    """torch.nn.Tanh: tanh(x) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """`x.tanh()`."""
        return x.tanh()


class GELU(Module):
    """GELU with PyTorch's default exact (erf) form; approximate='tanh' for the tanh form."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        """`x.gelu(approximate)`."""
        return x.gelu(approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """torch.nn.SiLU: x * sigmoid(x) elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """`x.silu()`."""
        return x.silu()


class ELU(Module):
    """torch.nn.ELU: x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        """`x.elu(alpha)`."""
        return x.elu(self.alpha)


class Softplus(Module):
    """torch.nn.Softplus: log(1 + exp(beta x)) / beta, linear above `threshold`."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        """`x.softplus(beta, threshold)`."""
        return x.softplus(self.beta, self.threshold)


class Softmax(Module):
    """torch.nn.Softmax: softmax along `dim` (default the last)."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """`x.softmax(dim)`."""
        return x.softmax(self.dim)


class LogSoftmax(Module):
    """torch.nn.LogSoftmax: log_softmax along `dim` (default the last)."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """`x.log_softmax(dim)`."""
        return x.log_softmax(self.dim)


class _Elementwise(Module):
    """An activation without parameters: `fn(x)` (subclasses set `fn`)."""

    fn = staticmethod(lambda x: x)

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """The activation of `x`."""
        return type(self).fn(x)


class ReLU6(_Elementwise):
    """torch.nn.ReLU6: min(max(x, 0), 6)."""

    fn = staticmethod(A.relu6)


class Hardsigmoid(_Elementwise):
    """torch.nn.Hardsigmoid: relu6(x + 3) / 6."""

    fn = staticmethod(A.hardsigmoid)


class Hardswish(_Elementwise):
    """torch.nn.Hardswish: x * relu6(x + 3) / 6."""

    fn = staticmethod(A.hardswish)


class SELU(_Elementwise):
    """torch.nn.SELU: scale * elu(x, alpha) with torch's constants."""

    fn = staticmethod(A.selu)


class Mish(_Elementwise):
    """torch.nn.Mish: x * tanh(softplus(x))."""

    fn = staticmethod(A.mish)


class Softsign(_Elementwise):
    """torch.nn.Softsign: x / (1 + |x|)."""

    fn = staticmethod(A.softsign)


class LogSigmoid(_Elementwise):
    """torch.nn.LogSigmoid: log(sigmoid(x)), computed stably."""

    fn = staticmethod(A.logsigmoid)


class Hardtanh(Module):
    """torch.nn.Hardtanh: x clipped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x: Tensor) -> Tensor:
        """`hardtanh(x, min_val, max_val)`."""
        return A.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class CELU(Module):
    """torch.nn.CELU: x where x > 0, else alpha * (exp(x / alpha) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        """`celu(x, alpha)`."""
        return A.celu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softmin(Module):
    """torch.nn.Softmin: softmax(-x) along `dim`."""

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """`softmin(x, dim)`."""
        return A.softmin(x, self.dim)
