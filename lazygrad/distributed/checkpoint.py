"""Checkpoints of data-parallel training: written once, by rank 0, readable at any world size.

Every rank holds the same parameters and optimizer state (the gradients are averaged, so the
steps are the same), so rank 0's copy is the job's: `save_checkpoint` writes it with
lazygrad.nn.state.save_checkpoint (atomically) while the other ranks wait at a barrier, and
`load_checkpoint` reads the file on every rank. A DistributedDataParallel is saved as its
wrapped module, so the file also loads into a plain model in a single process.

Public names: save_checkpoint, load_checkpoint.
"""
from __future__ import annotations

from typing import Any

from lazygrad.nn import state
from lazygrad.nn.module import Module
from lazygrad.distributed.ddp import DistributedDataParallel
from lazygrad.distributed.group import barrier, world


def _unwrap(model: Module) -> Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_checkpoint(path: Any, model: Module, optimizer: Any = None, metadata: dict | None = None) -> None:
    """Rank 0 writes `model` (unwrapped from DistributedDataParallel), `optimizer` and
    `metadata`; every rank returns once the file is complete."""
    if world().is_main:
        state.save_checkpoint(path, _unwrap(model), optimizer, metadata=metadata)
    barrier()


def load_checkpoint(path: Any, model: Module, optimizer: Any = None, strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint (saved at any world size, or without lazygrad.distributed) into
    `model` and `optimizer` on this rank; returns its metadata."""
    return state.load_checkpoint(path, _unwrap(model), optimizer, strict=strict)
