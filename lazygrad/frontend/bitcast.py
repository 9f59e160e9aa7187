"""Bitcasts: the same bytes read as another dtype, like torch's `Tensor.view(dtype)`.

Between dtypes of one size it is the BITCAST primitive (OpenCL's as_type). Between sizes the
last dim scales by the ratio of the sizes (torch's rule; little-endian, as every device
lazygrad runs on and numpy's `view` on it): it is built from same-size bitcasts to unsigned
integers, shifts, masks and casts, so no new primitive or kernel kind is needed and the
result fuses like any elementwise chain.

Public names: bitcast.
"""
from __future__ import annotations

from typing import Any

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.ir.ops import Op
from lazygrad.frontend.tensor import Tensor, stack

# the integer dtype whose bits a value of each size is split or assembled in: unsigned where
# lazygrad has it (no uint16, uint64: int16 and int64, whose sign bits the masks remove)
_BITS_DTYPE = {1: dt.uint8, 2: dt.int16, 4: dt.uint32, 8: dt.int64}


def bitcast(x: Tensor, dtype: Any) -> Tensor:
    """The bits of `x` read as `dtype` (a bool as the byte 0 or 1); no gradient. A smaller dtype multiplies the
    last dim by the ratio of the sizes, a larger one divides it (which it must divide)."""
    d = dt.as_dtype(dtype)
    if d == x.dtype:
        return x
    # a bool is one byte, 0 or 1, as in torch: its bits are a uint8's, and a byte read as a bool
    # is true where it is not 0 (torch keeps the raw byte, which every op then reads as true)
    if x.dtype is dt.bool_:
        return bitcast(x.cast(dt.uint8), d)
    if d is dt.bool_:
        return bitcast(x, dt.uint8) != 0
    if d.itemsize == x.dtype.itemsize:
        return _same_size(x, d)
    if x.ndim == 0:
        raise ValueError(f"view: a 0-d {x.dtype.name} tensor cannot be viewed as {d.name} (sizes "
                         f"{x.dtype.itemsize} and {d.itemsize} differ; like torch)")
    src_bits, dst_bits = _BITS_DTYPE[x.dtype.itemsize], _BITS_DTYPE[d.itemsize]
    u = _same_size(x, src_bits)
    if d.itemsize < x.dtype.itemsize:
        r = x.dtype.itemsize // d.itemsize
        mask = 2 ** d.bits - 1
        parts = [((u >> (d.bits * k)) & mask).cast(dst_bits) if k else (u & mask).cast(dst_bits) for k in range(r)]
        out = stack(parts, -1).reshape(*x.shape[:-1], x.shape[-1] * r)
    else:
        r = d.itemsize // x.dtype.itemsize
        if x.shape[-1] % r:
            raise ValueError(f"view: the last dim of shape {x.shape} ({x.dtype.name}) must be divisible by {r} "
                             f"to be viewed as {d.name} (like torch)")
        rows = u.reshape(*x.shape[:-1], x.shape[-1] // r, r)
        mask = 2 ** x.dtype.bits - 1
        parts = [(rows[..., k].cast(dst_bits) & mask) << (x.dtype.bits * k) for k in range(r)]
        out = parts[0]
        for p in parts[1:]:
            out = out | p  # disjoint bits
    return _same_size(out, d)


def _same_size(x: Tensor, d: dt.DType) -> Tensor:
    if d == x.dtype:
        return x
    return Tensor(g.elementwise(Op.BITCAST, x.detach().node, dtype=d))
