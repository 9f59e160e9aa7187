"""DistributedDataParallel: a module whose gradients are averaged across ranks after backward.

Like torch's DDP, the parameters are cut into buckets in reverse order (the last layers'
gradients are the first the backward pass finishes) of at most `bucket_cap_mb` each. At the
end of `loss.backward()` (a post-backward hook on the parameters) each bucket in turn is
realized as one flat device buffer, read to the host and handed to a non-blocking
`MPI_Iallreduce`; while it travels the next bucket is computed. After the last bucket the
averaged values come back to the device and become the parameters' `.grad` (views into one
buffer per bucket), so `opt.step()` needs no change and every rank takes the same step.

Realizing bucket after bucket of a lazy graph would recompute what they share (the forward
pass, the backward through the later layers): so each bucket's realize also realizes the
*frontier*, the nodes of its graph that later buckets read directly, and later buckets start
from those buffers. The frontier is found by one graph walk per bucket that stops at nodes the
current bucket computes.

`no_sync()` skips the averaging (gradient accumulation: the next backward outside the block
averages the accumulated gradients). `state_dict()` / `load_state_dict()` are the wrapped
module's (no "module." prefix, unlike torch), so a checkpoint loads into any world size and
into an unwrapped model. At construction the ranks compare their parameter names, shapes and
dtypes (a clear ValueError on a mismatch) and take rank 0's parameters and buffers.

Public names: DistributedDataParallel, Bucket, SyncStats, plan_buckets, frontier, realize_buckets,
split_bucket.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazygrad.ir.graph import Node, toposort
from lazygrad.nn.module import Module
from lazygrad.ir.ops import MOVEMENT, Op
from lazygrad.frontend.tensor import Tensor, cat, companions_of, no_grad, realize
from lazygrad.distributed.collectives import all_gather_object, broadcast_module
from lazygrad.distributed.group import wait_all, world


@dataclass(frozen=True)
class Bucket:
    """Parameters (indices into the DDP's parameter list) averaged in one message."""

    params: tuple[int, ...]
    nbytes: int


@dataclass
class SyncStats:
    """Times of the last gradient averaging: realizing the buckets (device compute and
    readback), waiting for all-reduces still in flight after the last bucket was realized
    (communication the backward did not hide), and uploading the averages."""

    buckets: int = 0
    nbytes: int = 0
    realize_s: float = 0.0
    wait_s: float = 0.0
    upload_s: float = 0.0


def plan_buckets(params: list[Tensor], cap_bytes: int) -> list[Bucket]:
    """Buckets over `params` in reverse order, each at most `cap_bytes` (a larger parameter gets
    a bucket of its own), like torch's DDP."""
    buckets: list[Bucket] = []
    current: list[int] = []
    size = 0
    for i in reversed(range(len(params))):
        nbytes = params[i].numel() * params[i].dtype.itemsize
        if current and size + nbytes > cap_bytes:
            buckets.append(Bucket(tuple(current), size))
            current, size = [], 0
        current.append(i)
        size += nbytes
    if current:
        buckets.append(Bucket(tuple(current), size))
    return buckets


def _base(n: Node) -> Node:
    """The node a chain of views reads from (a view is re-expressed for free; its source is
    what is worth keeping)."""
    while n.op in MOVEMENT and n.srcs:
        n = n.srcs[0]
    return n


def frontier(now: list[Node], later: list[Node]) -> list[Node]:
    """The nodes computed for `now` that the graph of `later` reads directly: realized with
    `now`, they let `later` start from buffers instead of computing them again."""
    computed = {n.uid for n in toposort(now) if n.realized is None}
    out: dict[int, Node] = {}
    seen: set[int] = set()
    stack = list(later)
    while stack:
        n = stack.pop()
        if n.uid in seen or n.realized is not None:
            continue
        seen.add(n.uid)
        if n.uid in computed:
            b = _base(n)
            if b.realized is None and b.op not in (Op.CONST, Op.BUFFER):
                out[b.uid] = b
            continue
        stack.extend(n.srcs)
    return list(out.values())


def _describe(params: list[tuple[str, Tensor]]) -> list[tuple[str, tuple[int, ...], str]]:
    return [(name, tuple(p.shape), p.dtype.name) for name, p in params]


def _check_same_parameters(named: list[tuple[str, Tensor]]) -> None:
    """Every rank must hold the same parameters (names, shapes, dtypes, order): the buckets and
    the messages are laid out from them."""
    mine = _describe(named)
    every = all_gather_object(mine)
    ref = every[0]
    for r, theirs in enumerate(every[1:], start=1):
        if theirs == ref:
            continue
        diffs = [f"{a[0]}: rank 0 {a[1]} {a[2]}, rank {r} {b[1]} {b[2]}"
                 for a, b in zip(ref, theirs) if a != b]
        if len(ref) != len(theirs):
            diffs.append(f"rank 0 has {len(ref)} parameters, rank {r} has {len(theirs)}")
        raise ValueError("DistributedDataParallel: the ranks' models differ, so their gradients cannot be "
                         "averaged: " + "; ".join(diffs[:8]))


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training: call it like the module, then
    `loss.backward()` averages the gradients over all ranks (in buckets of at most
    `bucket_cap_mb` MB, overlapped with the backward pass when `overlap`; `overlap=False`
    averages all of them in one blocking all-reduce after the backward, for measurements).
    `broadcast_buffers`: buffers (BatchNorm statistics) follow rank 0's at every call."""

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True,
                 overlap: bool = True) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        self.module = module
        self.world = world()
        self.broadcast_buffers = broadcast_buffers
        self.overlap = overlap
        self.require_sync = True
        self.stats = SyncStats()
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._params = [p for _, p in named]
        _check_same_parameters(named)
        broadcast_module(module)
        cap = int(bucket_cap_mb * 2**20) if overlap else 1 << 62
        self.buckets = plan_buckets(self._params, cap)
        for p in self._params:
            # one DDP per parameter: wrapping the module again replaces the old wrapper's hook
            p._post_backward = tuple(h for h in getattr(p, "_post_backward", ())
                                     if not isinstance(getattr(h, "__self__", None), DistributedDataParallel))
            p.register_post_backward_hook(self._after_backward)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped module's forward (after taking rank 0's buffers, if broadcast_buffers)."""
        if self.broadcast_buffers and self.world.size > 1 and self.module.buffers():
            broadcast_module(self.module, params=False)
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside the block, backward() accumulates local gradients without averaging them; the
        first backward after it averages everything accumulated (torch's DDP.no_sync)."""
        before = self.require_sync
        self.require_sync = False
        try:
            yield
        finally:
            self.require_sync = before

    def state_dict(self) -> dict[str, Tensor]:
        """The wrapped module's state dict (the same keys as without DDP)."""
        return self.module.state_dict()

    def load_state_dict(self, state: Any, strict: bool = True) -> Any:
        """Load into the wrapped module (a checkpoint saved with or without DDP, any world size)."""
        return self.module.load_state_dict(state, strict=strict)

    def extra_repr(self) -> str:
        """World size and bucket layout."""
        return f"world_size={self.world.size}, buckets={len(self.buckets)}"

    # --- gradient averaging ------------------------------------------------------------------------
    def _after_backward(self) -> None:
        if self.require_sync and self.world.size > 1:
            self.sync_gradients()

    def sync_gradients(self) -> None:
        """Average every parameter's `.grad` over the ranks now (backward() calls this; a
        parameter without a gradient counts as zeros, so every rank sends the same layout)."""
        from mpi4py import MPI

        comm, size = self.world.comm, self.world.size
        stats = SyncStats(buckets=len(self.buckets))
        requests: list = []

        def send(k: int, host: np.ndarray) -> None:
            requests.append(comm.Iallreduce(MPI.IN_PLACE, host, op=MPI.SUM))
            MPI.Request.Testall(requests)  # MPI moves the messages along inside its calls
            stats.nbytes += host.nbytes

        t0 = time.perf_counter()
        with no_grad():
            grads = [p.grad if p.grad is not None else Tensor.zeros(*p.shape, dtype=p.dtype) for p in self._params]
            flats = realize_buckets(grads, self._params, self.buckets, send)
            t1 = time.perf_counter()
            wait_all(requests, f"the gradient all-reduce of {len(self.buckets)} buckets")
            t2 = time.perf_counter()
            for b, host in zip(self.buckets, flats):
                host *= host.dtype.type(1.0 / size)
                for i, g in zip(b.params, split_bucket(host, [self._params[i] for i in b.params])):
                    self._params[i].grad = g
        stats.realize_s, stats.wait_s, stats.upload_s = t1 - t0, t2 - t1, time.perf_counter() - t2
        self.stats = stats


def realize_buckets(grads: list[Tensor], params: list[Tensor], buckets: list[Bucket],
                    ready: Callable[[int, np.ndarray], None]) -> list[np.ndarray]:
    """Realize the gradients bucket by bucket, each as one flat host array handed to
    `ready(k, array)` (DDP starts its all-reduce there) before the next bucket is computed.
    Each realize also keeps the frontier the later buckets read, so nothing is computed twice."""
    flats = []
    for b in buckets:
        parts = [grads[i].reshape(-1).cast(params[i].dtype) for i in b.params]
        flats.append(cat(parts) if len(parts) > 1 else parts[0])
    out = []
    for k, (b, flat) in enumerate(zip(buckets, flats)):
        later = [f.node for f in flats[k + 1:]]
        keep = [Tensor(n) for n in frontier([flat.node], later)] if later else []
        # the loss travels with the gradients (see autodiff.backward): realized once, here
        realize(flat, *keep, *companions_of([grads[i] for i in b.params]))
        host = np.ascontiguousarray(flat.numpy())
        ready(k, host)
        out.append(host)
    return out


def split_bucket(host: np.ndarray, params: list[Tensor]) -> list[Tensor]:
    """One upload of a bucket's values, and each parameter's gradient as a view into it."""
    avg = Tensor(host)
    out, off = [], 0
    for p in params:
        n = p.numel()
        out.append(avg[off:off + n].reshape(p.shape))
        off += n
    return out
