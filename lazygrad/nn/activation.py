"""Activation layers: stateless modules wrapping the Tensor methods of the same name.

Public names: ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, ELU, Softplus, Softmax, LogSoftmax.
"""
from __future__ import annotations

from ..tensor import Tensor
from .module import Module


class ReLU(Module):
    """torch.nn.ReLU: max(x, 0) elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """`x.relu()`."""
        return x.relu()


class LeakyReLU(Module):
    """torch.nn.LeakyReLU: x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = negative_slope

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

    def forward(self, x: Tensor) -> Tensor:
        """`x.silu()`."""
        return x.silu()


class ELU(Module):
    """torch.nn.ELU: x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

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
