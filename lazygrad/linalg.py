"""Matrix products: shape rules of matmul (1-D, 2-D, batched, broadcast batch dims).

Public names: matmul.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import dtypes as dt
from .tensor import broadcast_shapes

if TYPE_CHECKING:
    from .tensor import Tensor


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """torch.matmul semantics: 1-D operands are promoted and the added dim removed after."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} and {b.shape}")
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                         f"(inner dims {a.shape[-1]} and {b.shape[-2]})")
    d = dt.promote(a.dtype, b.dtype)
    if d is dt.bool_:
        d = dt.default_int
    a, b = a.cast(d), b.cast(d)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="matmul")
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    a = a._expand_to(batch + (m, k))
    b = b._expand_to(batch + (k, n))
    out = _matmul_kernel(a, b)
    if squeeze_a:
        out = out.reshape(out.shape[:-2] + (n,))
    if squeeze_b:
        out = out.reshape(out.shape[:-1])
    return out


def _matmul_kernel(a: Tensor, b: Tensor) -> Tensor:
    """(..., M, K) @ (..., K, N) with equal batch dims: broadcast multiply, reduce over K."""
    lead = a.shape[:-2]
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    prod3 = a.reshape(lead + (m, 1, k)) * b.transpose(-1, -2).reshape(lead + (1, n, k))
    return prod3.sum(-1)
