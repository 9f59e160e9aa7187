"""Collectives on Tensors: broadcast from rank 0 and all-reduce, through MPI.

A tensor goes to the host (numpy), through MPI, and back into the tensor in place (`assign`,
like torch.distributed's in-place collectives), so a collective is a device sync. In a world of
one every collective returns at once and copies nothing.

Public names: ReduceOp, broadcast, all_reduce, broadcast_module, all_gather_object.
"""
from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from lazygrad.frontend.tensor import Tensor, no_grad
from lazygrad.distributed.group import wait_all, world

if TYPE_CHECKING:
    from lazygrad.nn.module import Module


class ReduceOp(Enum):
    """How all_reduce combines the ranks' values."""

    SUM = "sum"
    MEAN = "mean"
    MAX = "max"
    MIN = "min"


# ReduceOp -> (mpi4py operator name, divide by the world size afterwards)
_MPI_OPS: dict[ReduceOp, tuple[str, bool]] = {
    ReduceOp.SUM: ("SUM", False),
    ReduceOp.MEAN: ("SUM", True),
    ReduceOp.MAX: ("MAX", False),
    ReduceOp.MIN: ("MIN", False),
}


def _reduce_op(op: ReduceOp | str) -> ReduceOp:
    try:
        return op if isinstance(op, ReduceOp) else ReduceOp(op)
    except ValueError:
        raise ValueError(f"all_reduce: op must be one of {[o.value for o in ReduceOp]}, got {op!r}") from None


def _replace(t: Tensor, values: np.ndarray) -> None:
    with no_grad():
        t.assign(Tensor(values.reshape(t.shape), dtype=t.dtype))


def broadcast(t: Tensor, src: int = 0) -> Tensor:
    """Give every rank rank `src`'s values of `t` (in place; returns `t`)."""
    w = world()
    if not isinstance(t, Tensor):
        raise TypeError(f"broadcast: expected a Tensor, got {type(t).__name__}")
    if w.size == 1:
        return t
    if not 0 <= src < w.size:
        raise ValueError(f"broadcast: src {src} is not a rank of a world of {w.size}")
    buf = np.ascontiguousarray(t.numpy())
    wait_all([w.comm.Ibcast(buf, root=src)], f"broadcast of a tensor {t.shape}")
    if w.rank != src:
        _replace(t, buf)
    return t


def all_reduce(t: Tensor, op: ReduceOp | str = ReduceOp.SUM) -> Tensor:
    """Combine `t` over all ranks (sum, mean, max or min), in place on every rank; returns `t`."""
    op = _reduce_op(op)
    if not isinstance(t, Tensor):
        raise TypeError(f"all_reduce: expected a Tensor, got {type(t).__name__}")
    w = world()
    if w.size == 1:
        return t
    from mpi4py import MPI
    name, mean = _MPI_OPS[op]
    buf = np.ascontiguousarray(t.numpy())
    wait_all([w.comm.Iallreduce(MPI.IN_PLACE, buf, op=getattr(MPI, name))], f"all_reduce of a tensor {t.shape}")
    if mean:
        buf = (buf / w.size).astype(buf.dtype) if t.dtype.is_float else buf // w.size
    _replace(t, buf)
    return t


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj` (anything picklable), in rank order."""
    w = world()
    if w.size == 1:
        return [obj]
    return w.comm.allgather(obj)


def broadcast_module(module: Module, src: int = 0, params: bool = True, buffers: bool = True) -> None:
    """Give every rank rank `src`'s parameters and/or buffers of `module` (one message per
    tensor, all in flight at once)."""
    w = world()
    if w.size == 1:
        return
    tensors = [*(module.parameters() if params else ()), *(module.buffers() if buffers else ())]
    bufs = [np.ascontiguousarray(t.numpy()) for t in tensors]
    wait_all([w.comm.Ibcast(b, root=src) for b in bufs], "broadcast of the parameters and buffers")
    if w.rank != src:
        for t, b in zip(tensors, bufs):
            _replace(t, b)
