"""Data-parallel training across processes and hosts, on MPI (mpi4py).

    import lazygrad.distributed as dist
    w = dist.init()                        # rank, size, local rank (a world of one without mpirun)
    model = dist.DistributedDataParallel(build_model())    # rank 0's parameters everywhere
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sampler = dist.DistributedSampler(len(x), seed=0)
    loader = DataLoader(x, y, batch_size=32, sampler=sampler, drop_last=True)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            loss = model(xb).cross_entropy(yb)
            opt.zero_grad()
            loss.backward()                # gradients averaged over the ranks, in buckets
            opt.step(loss)
    dist.save_checkpoint("model.safetensors", model, opt)   # rank 0 writes

Run with `mpirun -n 2 python train.py` (`pip install "lazygrad[distributed]"` installs mpi4py
and MPICH's mpirun). Without a launcher the same script runs as a world of one and mpi4py is
never imported. See docs/guide/distributed.md.

Public names: init, world, World, is_initialized, barrier, DistributedTimeout, mpiexec_path,
ReduceOp, broadcast, all_reduce, broadcast_module, all_gather_object, DistributedSampler,
DistributedDataParallel, Bucket, SyncStats, plan_buckets, frontier, realize_buckets, split_bucket,
save_checkpoint, load_checkpoint.
"""
from lazygrad.distributed.checkpoint import load_checkpoint, save_checkpoint
from lazygrad.distributed.collectives import (ReduceOp, all_gather_object, all_reduce, broadcast, broadcast_module)
from lazygrad.distributed.ddp import (Bucket, DistributedDataParallel, SyncStats, frontier, plan_buckets, realize_buckets, split_bucket)
from lazygrad.distributed.sampler import DistributedSampler
from lazygrad.distributed.group import (DistributedTimeout, World, barrier, init, is_initialized, mpiexec_path, world)

__all__ = ["init", "world", "World", "is_initialized", "barrier", "DistributedTimeout", "mpiexec_path",
           "ReduceOp", "broadcast", "all_reduce", "broadcast_module", "all_gather_object", "DistributedSampler",
           "DistributedDataParallel", "Bucket", "SyncStats", "plan_buckets", "frontier", "realize_buckets",
           "split_bucket", "save_checkpoint",
           "load_checkpoint"]
