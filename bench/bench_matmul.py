"""Matmul and conv2d throughput: lazygrad next to numpy (OpenBLAS), torch and tinygrad.

    python bench/bench_matmul.py                    # 512^3, 1024^3, 2048^3 and the conv layer
                                                    # (forward, + bias + relu, forward+backward)
    python bench/bench_matmul.py --sizes 1024 --reps 9 --no-tinygrad
    python bench/bench_matmul.py --json out.json

Every contender computes the same product from inputs already in its own memory; a rep is
one product, synchronized (lazygrad: build the lazy graph from fresh buffer nodes, realize,
wait for the device — so its packing copy kernel and Python overhead are included). The
figure is the median of --reps after --warmup reps, as GFLOP/s (2*M*N*K / s) and ms.
tinygrad runs in a subprocess on its OpenCL backend (same PoCL device) when it is installed.

Contenders run one after the other (all reps of one, then the next, with a pause between:
interleaving them rep by rep lets each library's spinning worker threads slow the next one
down). On a shared machine, load from other processes shifts every number: compare figures
from one run, and look at "best" next to the median.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONV = dict(n=32, cin=3, h=32, w=32, cout=16, k=3)  # (32,3,32,32) -> (32,16,30,30)


def conv_flops(n: int, cin: int, h: int, w: int, cout: int, k: int) -> int:
    oh, ow = h - k + 1, w - k + 1
    return 2 * n * cout * oh * ow * cin * k * k


# --- contenders: each returns a zero-argument function computing one product ----------------
def numpy_matmul(a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    return lambda: a @ b


def torch_matmul(a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    import torch
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.matmul(ta, tb)


def _fresh(t):
    """A new lazy leaf on the same device buffer: the graph is rebuilt (as in a training
    step) instead of hitting the memo of an already realized node."""
    from lazygrad import Tensor
    from lazygrad.ir import graph as gr
    return Tensor(gr.buffer_node(t.node.realized, t.shape, t.dtype))


def lazygrad_matmul(a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    import lazygrad as lg
    ta, tb = lg.Tensor(a).realize(), lg.Tensor(b).realize()

    def run() -> object:
        c = _fresh(ta) @ _fresh(tb)
        c.realize()
        lg.synchronize()
        return c
    return run


def torch_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray, relu: bool) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias)
    if relu:
        return lambda: F.relu(F.conv2d(tx, tw, tb))
    return lambda: F.conv2d(tx, tw)


def lazygrad_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray, relu: bool) -> Callable[[], object]:
    import lazygrad as lg
    tx, tw, tb = lg.Tensor(x).realize(), lg.Tensor(w).realize(), lg.Tensor(bias).realize()

    def run() -> object:
        if relu:
            y = _fresh(tx).conv2d(_fresh(tw), bias=_fresh(tb)).relu()
        else:
            y = _fresh(tx).conv2d(_fresh(tw))
        y.realize()
        lg.synchronize()
        return y
    return run


def torch_conv_step(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> Callable[[], object]:
    """Forward + backward of relu(conv2d(x, w) + b) with a mean-square loss: grads of w and b."""
    import torch
    import torch.nn.functional as F
    tx = torch.from_numpy(x)

    def run() -> object:
        tw = torch.from_numpy(w).requires_grad_()
        tb = torch.from_numpy(bias).requires_grad_()
        loss = F.relu(F.conv2d(tx, tw, tb)).square().mean()
        loss.backward()
        return tw.grad
    return run


def lazygrad_conv_step(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> Callable[[], object]:
    import lazygrad as lg
    tx, tw, tb = lg.Tensor(x).realize(), lg.Tensor(w).realize(), lg.Tensor(bias).realize()

    def run() -> object:
        fw, fb = _fresh(tw), _fresh(tb)
        fw.requires_grad, fb.requires_grad = True, True
        loss = _fresh(tx).conv2d(fw, bias=fb).relu().square().mean()
        loss.backward()
        lg.realize(loss, fw.grad, fb.grad)
        lg.synchronize()
        return fw.grad
    return run


_TINYGRAD_SNIPPET = r"""
import json, sys, time, numpy as np
from tinygrad import Tensor, Device
spec = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
out = {}
def timed(fn, reps, warmup):
    ts = []
    for i in range(warmup + reps):
        t0 = time.perf_counter(); fn(); Device[Device.DEFAULT].synchronize()
        if i >= warmup: ts.append(time.perf_counter() - t0)
    return ts
for n in spec["sizes"]:
    a = Tensor(rng.standard_normal((n, n), dtype=np.float32)).realize()
    b = Tensor(rng.standard_normal((n, n), dtype=np.float32)).realize()
    out[f"matmul{n}"] = timed(lambda: (a @ b).realize(), spec["reps"], spec["warmup"])
if spec.get("conv"):
    c = spec["conv"]
    x = Tensor(rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)).realize()
    w = Tensor(rng.standard_normal((c["cout"], c["cin"], c["k"], c["k"]), dtype=np.float32)).realize()
    out["conv"] = timed(lambda: x.conv2d(w).realize(), spec["reps"], spec["warmup"])
print("RESULT" + json.dumps(out))
"""


def tinygrad_times(sizes: list[int], reps: int, warmup: int, conv: bool, timeout: float) -> dict[str, list[float]]:
    """Seconds per rep from a tinygrad subprocess on OpenCL (empty if unavailable)."""
    try:
        import importlib.util
        if importlib.util.find_spec("tinygrad") is None:
            return {}
        from bench.envsetup import tinygrad_env
        env = dict(os.environ, **tinygrad_env())
    except Exception:
        env = dict(os.environ, DEV="CL")
    spec = json.dumps({"sizes": sizes, "reps": reps, "warmup": warmup, "conv": CONV if conv else None})
    try:
        proc = subprocess.run([sys.executable, "-c", _TINYGRAD_SNIPPET, spec], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"tinygrad: timed out after {timeout:.0f} s", file=sys.stderr)
        return {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    print(f"tinygrad: failed ({proc.returncode}): {proc.stderr.strip()[-400:]}", file=sys.stderr)
    return {}


def blocked(fns: dict[str, Callable[[], object]], reps: int, warmup: int, pause: float = 0.3) -> dict[str, list[float]]:
    """Seconds per rep of each function, all reps of one contender in a row (warm-up reps
    dropped), with a pause between contenders: thread pools (OpenBLAS, OpenMP, PoCL) keep
    spinning for a while after their last job and would steal the cores from the next one."""
    times: dict[str, list[float]] = {}
    for name, fn in fns.items():
        time.sleep(pause)
        ts = []
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if i >= warmup:
                ts.append(dt)
        times[name] = ts
    return times


def check(actual: object, expected: np.ndarray, what: str) -> None:
    got = np.asarray(actual.numpy() if hasattr(actual, "numpy") else actual)
    err = float(np.max(np.abs(got - expected)) / (np.max(np.abs(expected)) + 1e-12))
    if err > 1e-4:
        raise AssertionError(f"{what}: lazygrad result differs from numpy (max rel err {err:.2e})")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[512, 1024, 2048])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-tinygrad", action="store_true")
    ap.add_argument("--no-conv", action="store_true")
    ap.add_argument("--tinygrad-timeout", type=float, default=600)
    ap.add_argument("--json", type=str, default="")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    results: dict = {"rows": rows}

    def report(case: str, flops: int, times: dict[str, list[float]]) -> None:
        ref = statistics.median(times["numpy"]) if "numpy" in times else None
        for name, ts in times.items():
            med = statistics.median(ts)
            row = {"case": case, "contender": name, "median_ms": med * 1e3, "best_ms": min(ts) * 1e3,
                   "gflops": flops / med / 1e9, "vs_numpy": (ref / med) if ref else None}
            rows.append(row)
            rel = f"{row['vs_numpy']:.2f}x numpy" if row["vs_numpy"] else ""
            best = flops / min(ts) / 1e9
            print(f"{case:<12} {name:<10} {row['median_ms']:9.3f} ms  {row['gflops']:8.1f} GFLOP/s "
                  f"(best {best:7.1f})  {rel}", flush=True)

    for n in args.sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        fns = {"numpy": numpy_matmul(a, b), "torch": torch_matmul(a, b), "lazygrad": lazygrad_matmul(a, b)}
        check(fns["lazygrad"](), a @ b, f"matmul {n}")
        report(f"matmul{n}", 2 * n ** 3, blocked(fns, args.reps, args.warmup))
    if not args.no_conv:
        c = CONV
        x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
        w = rng.standard_normal((c["cout"], c["cin"], c["k"], c["k"]), dtype=np.float32)
        bias = rng.standard_normal((c["cout"],), dtype=np.float32)
        import torch.nn.functional as F
        want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
        check(lazygrad_conv(x, w, bias, False)(), want, "conv2d")
        fl = conv_flops(**c)
        report("conv2d", fl, blocked({"torch": torch_conv(x, w, bias, False),
                                          "lazygrad": lazygrad_conv(x, w, bias, False)}, args.reps, args.warmup))
        report("conv+b+relu", fl, blocked({"torch": torch_conv(x, w, bias, True),
                                               "lazygrad": lazygrad_conv(x, w, bias, True)}, args.reps, args.warmup))
        # forward + backward (grads of w and b): about 3x the forward's flops
        report("conv fwd+bwd", 3 * fl, blocked({"torch": torch_conv_step(x, w, bias),
                                               "lazygrad": lazygrad_conv_step(x, w, bias)}, args.reps, args.warmup))
    if not args.no_tinygrad:
        tg = tinygrad_times(args.sizes, args.reps, args.warmup, not args.no_conv, args.tinygrad_timeout)
        for key, ts in tg.items():
            if key == "conv":
                report("conv2d", conv_flops(**CONV), {"tinygrad": ts})
            else:
                n = int(key[len("matmul"):])
                report(key, 2 * n ** 3, {"tinygrad": ts})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
