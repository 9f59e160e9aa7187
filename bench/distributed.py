"""Data-parallel training steps per second at 1 and 2 ranks, the all-reduce time per step, and
what overlapping the bucketed all-reduces with the backward pass buys.

    python -m bench.distributed [--steps 20] [--rounds 3] [--batch 256] [--sizes 784,512,512,10] [--json FILE]

The MLP is bench's mlp_step (784-512-512-10, Adam, global batch 256: 669,706 parameters,
2.7 MB of gradients per step). One rank runs it alone with every core (PoCL's default thread
count); two ranks (`mpiexec -n 2`, one PoCL thread each on a 2-core host) each take half of
the global batch, in three modes:

- `overlap`: DistributedDataParallel with 1 MB buckets (3 here), each all-reduced with
  MPI_Iallreduce while the next is computed;
- `blocking`: `overlap=False`, every gradient realized, then one all-reduce of all of them;
- `allreduce`: the all-reduce alone, 2.7 MB float32 between the ranks, no compute.

The two DDP modes run in one job with their steps interleaved, and the jobs alternate over
--rounds repeats, so load from other processes on a shared machine hits every mode alike.
Per mode it prints steps/s (the median over rounds of the median step) and, for DDP,
the exposed communication per step (time spent waiting for all-reduces after the last
bucket was realized: what the backward pass did not hide).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _model(sizes: list[int]):
    from lazygrad import nn
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _step(model, opt, xb, yb) -> float:
    t0 = time.perf_counter()
    loss = model(xb).cross_entropy(yb)
    opt.zero_grad()
    loss.backward()
    opt.step(loss)
    loss.item()
    return time.perf_counter() - t0


def _summary(times: list[float]) -> dict:
    t = statistics.median(times)
    return {"steps_per_s": 1 / t, "step_ms": 1e3 * t, "best_step_ms": 1e3 * min(times)}


def worker(mode: str, sizes: list[int], batch: int, steps: int, warmup: int) -> None:
    import numpy as np

    import lazygrad as lg
    import lazygrad.distributed as dist
    from lazygrad import Tensor, optim

    w = dist.init()
    lg.manual_seed(0)
    local = batch // w.size
    rng = np.random.default_rng(w.rank)
    x = rng.standard_normal((local, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], local).astype(np.int32)
    out: dict = {"mode": mode, "ranks": w.size, "batch_per_rank": local, "threads": w.threads,
                 "compute_units": lg.device().caps.compute_units}
    if mode == "allreduce":
        from mpi4py import MPI
        n = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        buf = np.ones(n, np.float32)
        times = []
        for _ in range(warmup + steps):
            t0 = time.perf_counter()
            w.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        out.update(bytes=buf.nbytes, allreduce_ms=1e3 * statistics.median(times[warmup:]))
    elif mode == "single":
        model = _model(sizes)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        times = [_step(model, opt, Tensor(x), Tensor(y)) for _ in range(warmup + steps)]
        out.update(_summary(times[warmup:]))
    else:
        # both DDP variants in one job, their steps interleaved, so both see the same load
        # from whatever else runs on the machine
        variants = {}
        for name, overlap in (("overlap", True), ("blocking", False)):
            lg.manual_seed(0)
            ddp = dist.DistributedDataParallel(_model(sizes), bucket_cap_mb=1.0, overlap=overlap)
            variants[name] = (ddp, optim.Adam(ddp.parameters(), lr=1e-3), [], [], [])
        for _ in range(warmup + steps):
            for name, (ddp, opt, times, waits, realizes) in variants.items():
                dist.barrier()           # every rank starts the step together
                times.append(_step(ddp, opt, Tensor(x), Tensor(y)))
                waits.append(ddp.stats.wait_s)
                realizes.append(ddp.stats.realize_s)
        for name, (ddp, _, times, waits, realizes) in variants.items():
            out[name] = {**_summary(times[warmup:]), "buckets": len(ddp.buckets),
                         "exposed_comm_ms": 1e3 * statistics.median(waits[warmup:]),
                         "bucket_realize_ms": 1e3 * statistics.median(realizes[warmup:])}
    if w.is_main:
        print("RESULT " + json.dumps(out), flush=True)


def _run(mode: str, ranks: int, args: argparse.Namespace) -> dict:
    import lazygrad.distributed as dist
    cmd = [sys.executable, "-m", "bench.distributed", "--worker", mode, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch", str(args.batch), "--sizes", args.sizes]
    if ranks > 1:
        mpiexec = dist.mpiexec_path()
        if mpiexec is None:
            raise SystemExit("no mpiexec: pip install 'lazygrad[distributed]'")
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} at {ranks} ranks failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=256, help="global batch (split over the ranks)")
    p.add_argument("--sizes", default="784,512,512,10")
    p.add_argument("--rounds", type=int, default=3, help="alternating repeats of the jobs")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        worker(args.worker, sizes, args.batch, args.steps, args.warmup)
        return {}
    rounds = []
    for _ in range(args.rounds):   # alternate the jobs: a burst of load hits both kinds alike
        rounds.append({"single": _run("single", 1, args), "ddp": _run("ddp", 2, args),
                       "allreduce": _run("allreduce", 2, args)})
    from lazygrad.runtime.device import current_target
    import lazygrad as lg
    info = {"cpu": _cpu(), "target": current_target().describe(), "device": lg.device().caps.name}
    med = statistics.median
    rows = [
        {"mode": "single", "ranks": 1, "threads": rounds[0]["single"]["compute_units"],
         "batch_per_rank": args.batch, **_merge([r["single"] for r in rounds])},
        *({"mode": m, "ranks": 2, "threads": rounds[0]["ddp"]["compute_units"],
           "batch_per_rank": rounds[0]["ddp"]["batch_per_rank"], "buckets": rounds[0]["ddp"][m]["buckets"],
           **_merge([r["ddp"][m] for r in rounds]),
           "exposed_comm_ms": med(r["ddp"][m]["exposed_comm_ms"] for r in rounds)} for m in ("overlap", "blocking")),
    ]
    allreduce_ms = med(r["allreduce"]["allreduce_ms"] for r in rounds)
    print(f"MLP {args.sizes}, Adam, global batch {args.batch}; {info['cpu']}; {info['target']}")
    print(f"medians over {args.rounds} rounds of {args.steps} steps; all-reduce of "
          f"{rounds[0]['allreduce']['bytes'] / 1e6:.1f} MB alone: {allreduce_ms:.2f} ms")
    print(f"{'mode':<10} {'ranks':>5} {'batch/rank':>10} {'threads':>7} {'steps/s':>8} {'ms/step':>8} "
          f"{'best ms':>8} {'buckets':>7} {'exposed comm ms':>15}")
    for r in rows:
        print(f"{r['mode']:<10} {r['ranks']:>5} {r['batch_per_rank']:>10} {r['threads']:>7} "
              f"{r['steps_per_s']:>8.2f} {r['step_ms']:>8.1f} {r['best_step_ms']:>8.1f} "
              f"{r.get('buckets', ''):>7} {r.get('exposed_comm_ms', float('nan')):>15.2f}")
    res = {"machine": info, "args": vars(args) | {"json": str(args.json)}, "rows": rows,
           "allreduce_ms": allreduce_ms, "rounds": rounds}
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return res


def _merge(runs: list[dict]) -> dict:
    step = statistics.median(r["step_ms"] for r in runs)
    return {"steps_per_s": 1e3 / step, "step_ms": step, "best_step_ms": min(r["best_step_ms"] for r in runs)}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
