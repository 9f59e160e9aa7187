"""MLP training-step benchmark: 784-512-512-10 ReLU, batch 256, cross-entropy, Adam (lr 1e-3).

    python bench/bench_mlp.py                  # lazygrad, torch eager, tinygrad (if importable), cold start
    python bench/bench_mlp.py --steps 30 --no-tinygrad --json /tmp/mlp.json

Each contender runs in its own subprocess (tinygrad needs its OpenCL environment before it
starts; the cold start needs empty caches) and reports the median ms/step after warm-up.
lazygrad also reports:
- kernels per step, and whether steps after the first rebuilt a schedule or compiled a program;
- the Python overhead per step: wall time minus device kernel time (lg.counters.timing), and
  where the host time goes (building forward / backward / update graphs, realize);
- the first step of a fresh process with empty program caches (LAZYGRAD_CACHE_DIR and
  POCL_CACHE_DIR in a temporary folder): schedule + compile + run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = (784, 512, 512, 10)
BATCH = 256
LR = 1e-3


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], BATCH).astype(np.int32)


def init_weights(seed: int = 0) -> list[np.ndarray]:
    """PyTorch-default-like uniform init, (out, in) weights, shared by every contender."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        b = 1 / np.sqrt(fan_in)
        out += [rng.uniform(-b, b, (fan_out, fan_in)).astype(np.float32), rng.uniform(-b, b, fan_out).astype(np.float32)]
    return out


# --- workers (run in subprocesses, print one JSON line) ----------------------------------------------
def worker_lazygrad(steps: int, warmup: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import lazygrad as lg
    from lazygrad import Tensor, nn
    from lazygrad.optim import Adam

    t_start = time.perf_counter()
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    model.load_state_dict(dict(zip([n for n, _ in model.named_parameters()], init_weights())))
    opt = Adam(model.parameters(), lr=LR)
    xn, yn = data()
    x, y = Tensor(xn), Tensor(yn)
    phases = {"forward": 0.0, "backward": 0.0, "step": 0.0, "sync": 0.0}

    def step() -> float:
        t0 = time.perf_counter()
        loss = model(x).cross_entropy(y)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step(loss)                  # update + loss in one realize
        t3 = time.perf_counter()
        value = loss.item()             # waits for the device
        t4 = time.perf_counter()
        for k, a, b in (("forward", t0, t1), ("backward", t1, t2), ("step", t2, t3), ("sync", t3, t4)):
            phases[k] += b - a
        return value

    t0 = time.perf_counter()
    first_loss = step()
    first_step = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    built, compiled = lg.counters.schedules_built, lg.counters.programs_compiled
    lg.counters.reset()
    for k in phases:
        phases[k] = 0.0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    kernels = lg.counters.kernels_launched / steps
    rebuilt = lg.counters.schedules_built
    recompiled = lg.counters.programs_compiled
    host = {k: v / steps * 1e3 for k, v in phases.items()}
    # device time per step: profiling events (timing on), the rest of the wall time is Python + launch
    lg.counters.reset()
    lg.counters.timing = True
    timed = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        lg.synchronize()
        timed.append(time.perf_counter() - t0)
    kernel_ms = lg.counters.kernel_time / steps * 1e3
    lg.counters.timing = False
    wall_timed = statistics.mean(timed) * 1e3   # a mean, to subtract the mean kernel time
    return {"contender": "lazygrad", "ms_per_step": statistics.median(times) * 1e3, "first_step_s": first_step,
            "setup_s": t0 - t_start, "first_loss": first_loss, "kernels_per_step": kernels,
            "schedules_built_warm": rebuilt, "programs_compiled_warm": recompiled,
            "schedules_built_first": built, "programs_compiled_first": compiled,
            "kernel_ms_per_step": kernel_ms, "wall_ms_timed": wall_timed,
            "python_overhead_ms": wall_timed - kernel_ms, "host_ms": host}


def worker_cold(steps: int, warmup: int) -> dict:
    """Fresh process, empty caches (set by the parent): time to the first finished step."""
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import lazygrad as lg
    from lazygrad import Tensor, nn
    from lazygrad.optim import Adam

    lg.device()
    t_import = time.perf_counter() - t0
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = Adam(model.parameters(), lr=LR)
    xn, yn = data()
    x, y = Tensor(xn), Tensor(yn)
    times = []
    for _ in range(3):
        t1 = time.perf_counter()
        loss = model(x).cross_entropy(y)
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
        loss.item()
        times.append(time.perf_counter() - t1)
    return {"contender": "lazygrad-cold", "import_and_device_s": t_import, "first_step_s": times[0],
            "second_step_s": times[1], "third_step_s": times[2], "programs_compiled": lg.counters.programs_compiled,
            "compile_s": lg.counters.compile_time, "schedules_built": lg.counters.schedules_built}


def worker_torch(steps: int, warmup: int) -> dict:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
    with torch.no_grad():
        for p, w in zip(model.parameters(), init_weights()):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xn, yn = data()
    x, y = torch.from_numpy(xn), torch.from_numpy(yn.astype(np.int64))

    def step() -> float:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return {"contender": f"torch {torch.__version__} eager ({torch.get_num_threads()} threads)",
            **_time_steps(step, steps, warmup)}


def _time_steps(step, steps: int, warmup: int) -> dict:
    """First-step time, then the median of `steps` timed steps after `warmup` untimed ones."""
    t0 = time.perf_counter()
    first_loss = step()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"ms_per_step": statistics.median(times) * 1e3, "first_step_s": first, "first_loss": first_loss}


def worker_tinygrad(steps: int, warmup: int, jit: bool = True) -> dict:
    from tinygrad import Device, Tensor, TinyJit
    from tinygrad.helpers import Context
    from tinygrad.nn.optim import Adam

    ws = [Tensor(w).realize() for w in init_weights()]
    xn, yn = data()
    x, y = Tensor(xn).is_param_(False).realize(), Tensor(yn).is_param_(False).realize()
    opt = Adam(ws, lr=LR)

    def raw_step() -> Tensor:
        with Context(TRAINING=1):
            opt.zero_grad()
            h = x
            for i in range(3):
                h = h.linear(ws[2 * i].T, ws[2 * i + 1])
                if i < 2:
                    h = h.relu()
            loss = h.sparse_categorical_crossentropy(y)
            loss.backward()
            Tensor.realize(loss, *opt.schedule_step())
            return loss

    fn = TinyJit(raw_step) if jit else raw_step

    def step() -> float:
        out = fn().item()
        Device[Device.DEFAULT].synchronize()
        return out

    # TinyJit captures on the second call
    return {"contender": f"tinygrad {'TinyJit' if jit else 'no JIT'} on {Device.DEFAULT}",
            **_time_steps(step, steps, max(warmup, 2))}


WORKERS = {"lazygrad": worker_lazygrad, "cold": worker_cold, "torch": worker_torch,
           "tinygrad": worker_tinygrad, "tinygrad-nojit": lambda s, w: worker_tinygrad(s, w, jit=False)}


# --- parent ------------------------------------------------------------------------------------------
def run_worker(name: str, steps: int, warmup: int, env: dict[str, str] | None = None, timeout: int = 900) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--steps", str(steps), "--warmup", str(warmup)]
    try:
        out = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                             cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"contender": name, "error": f"timed out after {timeout} s"}
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"contender": name, "error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def tinygrad_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("tinygrad") is not None


def report(results: list[dict]) -> str:
    lines = ["| contender | ms/step (median) | first step (s) |", "|---|---:|---:|"]
    for r in results:
        if "ms_per_step" in r:
            lines.append(f"| {r['contender']} | {r['ms_per_step']:.1f} | {r['first_step_s']:.2f} |")
        elif "error" in r:
            lines.append(f"| {r['contender']} | error: {r['error'][:80]} | |")
    lz = next((r for r in results if r.get("contender") == "lazygrad"), None)
    if lz:
        h = lz["host_ms"]
        lines += ["", f"lazygrad: {lz['kernels_per_step']:.0f} kernels per step; after the first step "
                  f"{lz['schedules_built_warm']} schedules built and {lz['programs_compiled_warm']} programs compiled "
                  f"(plan reused). With device timing on: {lz['wall_ms_timed']:.1f} ms per step, of which "
                  f"{lz['kernel_ms_per_step']:.1f} ms in kernels, so Python + launch overhead "
                  f"{lz['python_overhead_ms']:.1f} ms per step.",
                  f"lazygrad host time per step (timing off): build forward {h['forward']:.2f} ms, backward "
                  f"{h['backward']:.2f} ms, update + realize + launch {h['step']:.2f} ms (host total "
                  f"{h['forward'] + h['backward'] + h['step']:.2f} ms), then waiting for the device {h['sync']:.2f} ms."]
    cold = next((r for r in results if r.get("contender") == "lazygrad-cold"), None)
    if cold and "error" not in cold:
        lines.append(f"lazygrad cold start (empty caches): import + device {cold['import_and_device_s']:.2f} s, first "
                     f"step {cold['first_step_s']:.2f} s ({cold['programs_compiled']} programs compiled, "
                     f"{cold['compile_s']:.2f} s compiling), second step {cold['second_step_s'] * 1e3:.1f} ms, "
                     f"third {cold['third_step_s'] * 1e3:.1f} ms.")
    elif cold:
        lines.append(f"lazygrad cold start: error {cold['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed steps per contender")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-tinygrad", action="store_true")
    p.add_argument("--tinygrad-nojit", action="store_true", help="also tinygrad without TinyJit (slow)")
    p.add_argument("--no-cold", action="store_true", help="skip the empty-cache first step")
    p.add_argument("--json", type=Path, help="write all results here")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.steps, args.warmup)))
        return []

    sys.path.insert(0, str(ROOT))
    from bench.envsetup import isolated_cache_env, tinygrad_env

    results = [run_worker("lazygrad", args.steps, args.warmup), run_worker("torch", args.steps, args.warmup)]
    if not args.no_tinygrad and tinygrad_available():
        results.append(run_worker("tinygrad", args.steps, args.warmup, tinygrad_env()))
        if args.tinygrad_nojit:
            results.append(run_worker("tinygrad-nojit", max(3, args.steps // 4), 1, tinygrad_env()))
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_worker("cold", 3, 0, isolated_cache_env(Path(tmp))))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
