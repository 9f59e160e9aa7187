"""The programs tests/test_distributed.py runs under `mpirun -n 2` (and without a launcher).

    python tests/distributed_worker.py SCENARIO OUT_DIR

Each scenario prints nothing on success but writes what it measured as JSON to
OUT_DIR/SCENARIO.json (rank 0), so the test asserts on values rather than on printed text.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import lazygrad as lg  # noqa: E402
import lazygrad.distributed as dist  # noqa: E402
from lazygrad import Tensor, nn, optim  # noqa: E402
from lazygrad.data import DataLoader  # noqa: E402

B = 8          # per-rank batch
STEPS = 4      # Adam steps


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 10))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 10))


def data(kind: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(123)
    shape = (rows, 16) if kind == "mlp" else (rows, 1, 8, 8)
    return g.standard_normal(shape).astype(np.float32), g.integers(0, 10, rows).astype(np.int32)


def params_of(model: nn.Module) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def train_ddp(kind: str, w: dist.World) -> tuple[list[np.ndarray], list[np.ndarray], float, int]:
    lg.manual_seed(1 + w.rank)             # differently seeded ranks: the broadcast must unify them
    model = {"mlp": mlp, "cnn": cnn}[kind]()
    before = dist.all_gather_object(params_of(model))
    # a few KB per bucket: several buckets, so the frontier and the overlap are exercised
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.004)
    opt = optim.Adam(ddp.parameters(), lr=1e-2)
    x, y = data(kind, 2 * B * STEPS)
    for s in range(STEPS):
        lo = s * 2 * B + w.rank * B
        loss = ddp(Tensor(x[lo:lo + B])).cross_entropy(Tensor(y[lo:lo + B]))
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
    return before, params_of(model), max_diff(before[0], before[1]), len(ddp.buckets)


def train_single(kind: str) -> list[np.ndarray]:
    """One process, batch 2B, starting from rank 0's parameters."""
    lg.manual_seed(1)
    model = {"mlp": mlp, "cnn": cnn}[kind]()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = data(kind, 2 * B * STEPS)
    for s in range(STEPS):
        sl = slice(s * 2 * B, (s + 1) * 2 * B)
        loss = model(Tensor(x[sl])).cross_entropy(Tensor(y[sl]))
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
    return params_of(model)


def scenario_train(out: Path, w: dist.World) -> dict:
    """DDP on 2 ranks vs one process with twice the batch, for the MLP and the CNN; the
    broadcast; a checkpoint written by rank 0."""
    res: dict = {"size": w.size, "threads": w.threads, "compute_units": lg.device().caps.compute_units}
    for kind in ("mlp", "cnn"):
        _, after, init_diff, buckets = train_ddp(kind, w)
        every = dist.all_gather_object(after)
        res[f"{kind}_init_rank_diff"] = init_diff
        res[f"{kind}_final_rank_diff"] = max_diff(every[0], every[1])
        res[f"{kind}_buckets"] = buckets
        if w.rank == 0:
            res[f"{kind}_vs_single"] = max_diff(after, train_single(kind))
    # checkpoint: rank 0 writes, every rank loads it back
    lg.manual_seed(5)
    model = dist.DistributedDataParallel(mlp())
    opt = optim.Adam(model.parameters(), lr=1e-3)
    path = out / "ckpt.safetensors"
    dist.save_checkpoint(path, model, opt, metadata={"world": w.size})
    fresh = dist.DistributedDataParallel(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(),
                                                       nn.Linear(24, 10)))
    meta = dist.load_checkpoint(path, fresh, optim.Adam(fresh.parameters(), lr=1e-3))
    res["ckpt_meta"] = meta
    res["ckpt_reload_diff"] = max_diff(params_of(model.module), params_of(fresh.module))
    if w.rank == 0:
        np.savez(out / "ckpt_params.npz", *params_of(model.module))
    return res


def scenario_sampler(out: Path, w: dist.World) -> dict:
    """Which rows each rank's DataLoader(sampler=DistributedSampler) gives, per epoch."""
    n = 104
    x = np.arange(n, dtype=np.int32)
    sampler = dist.DistributedSampler(n, seed=7)
    loader = DataLoader(x, batch_size=5, sampler=sampler)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        rows = [int(v) for xb in loader for v in xb.numpy()]
        epochs.append(dist.all_gather_object(rows))
    # collectives on tensors, in place
    r = w.rank
    res = {}
    for op in ("sum", "mean", "max", "min"):
        t = Tensor([r + 1.0, 10.0 * (r + 1), -float(r)])
        res[op] = dist.all_reduce(t, op).numpy().tolist()
    res["int_sum"] = dist.all_reduce(Tensor(np.array([r + 1, 7], np.int32)), "sum").numpy().tolist()
    res["broadcast_from_1"] = dist.broadcast(Tensor([[float(r), 2.0 * r]]), src=1).numpy().tolist()
    # broadcast_buffers: BatchNorm statistics follow rank 0's at every call
    bn = dist.DistributedDataParallel(nn.BatchNorm1d(3))
    bn(Tensor(np.full((4, 3), r + 1.0, np.float32) + np.arange(4, dtype=np.float32)[:, None]))
    own = bn.module.running_mean.numpy().tolist()
    bn.eval()
    bn(Tensor(np.zeros((2, 3), np.float32)))
    res["bn_own"], res["bn_after_call"] = own, bn.module.running_mean.numpy().tolist()
    every = dist.all_gather_object(res)
    return {"epochs": epochs, "len": len(loader), "collectives": every}


def scenario_no_sync(out: Path, w: dist.World) -> dict:
    """Two micro-batches per rank: the first under no_sync (local), the second averages both."""
    lg.manual_seed(3)
    model = dist.DistributedDataParallel(mlp(), bucket_cap_mb=0.004)
    x, y = data("mlp", 4 * B)
    mb = [slice(k * 2 * B + w.rank * B, k * 2 * B + (w.rank + 1) * B) for k in range(2)]
    with model.no_sync():
        model(Tensor(x[mb[0]])).cross_entropy(Tensor(y[mb[0]])).backward()
    local = [p.grad.numpy().copy() for p in model.parameters()]
    model(Tensor(x[mb[1]])).cross_entropy(Tensor(y[mb[1]])).backward()
    synced = [p.grad.numpy().copy() for p in model.parameters()]
    every_local = dist.all_gather_object(local)
    every_synced = dist.all_gather_object(synced)
    res = {"local_rank_diff": max_diff(every_local[0], every_local[1]),
           "synced_rank_diff": max_diff(every_synced[0], every_synced[1])}
    if w.rank == 0:
        lg.manual_seed(3)
        ref = mlp()
        for k in range(2):
            sl = slice(k * 2 * B, (k + 1) * 2 * B)
            ref(Tensor(x[sl])).cross_entropy(Tensor(y[sl])).backward()
        res["vs_single"] = max_diff(synced, [p.grad.numpy() for p in ref.parameters()])
        res["grad_scale"] = max(float(np.abs(g).max()) for g in synced)
    return res


def scenario_raise(out: Path, w: dist.World) -> dict:
    """Rank 1 raises after one step; rank 0 goes on into the next all-reduce."""
    lg.manual_seed(0)
    model = dist.DistributedDataParallel(mlp())
    x, y = data("mlp", B)
    for step in range(3):
        if w.rank == 1 and step == 1:
            print(f"injecting the failure at {time.time()}", file=sys.stderr, flush=True)
            raise RuntimeError("worker failure injected on rank 1")
        model(Tensor(x)).cross_entropy(Tensor(y)).backward()
    return {}


def scenario_hang(out: Path, w: dist.World) -> dict:
    """Rank 1 stops taking part without raising; rank 0's wait must time out."""
    lg.manual_seed(0)
    model = dist.DistributedDataParallel(mlp())
    x, y = data("mlp", B)
    if w.rank == 1:
        print(f"rank 1 stops at {time.time()}", file=sys.stderr, flush=True)
        time.sleep(120)
    model(Tensor(x)).cross_entropy(Tensor(y)).backward()
    return {}


def scenario_mismatch(out: Path, w: dist.World) -> dict:
    """Rank 1's model has a different layer width."""
    width = 32 if w.rank == 0 else 33
    dist.DistributedDataParallel(nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 10)))
    return {}


def scenario_single(out: Path, w: dist.World) -> dict:
    """A world of one without a launcher: every call works, mpi4py is never imported."""
    lg.manual_seed(2)
    model = dist.DistributedDataParallel(mlp())
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = data("mlp", B)
    loss = model(Tensor(x)).cross_entropy(Tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step(loss)
    t = Tensor([1.0, 2.0])
    dist.all_reduce(t, "mean")
    dist.broadcast(t)
    dist.barrier()
    path = out / "single.safetensors"
    dist.save_checkpoint(path, model, opt)
    return {"size": w.size, "rank": w.rank, "mpi4py_imported": "mpi4py" in sys.modules,
            "all_reduce": t.numpy().tolist(), "loss": float(loss.item()), "ckpt": path.exists(),
            "sampler_len": len(dist.DistributedSampler(10))}


SCENARIOS = {name[len("scenario_"):]: f for name, f in globals().items() if name.startswith("scenario_")}


def main() -> None:
    name, out = sys.argv[1], Path(sys.argv[2])
    w = dist.init()
    res = SCENARIOS[name](out, w)
    if w.rank == 0:
        (out / f"{name}.json").write_text(json.dumps(res))


if __name__ == "__main__":
    main()
