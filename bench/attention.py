"""Attention and LSTM rows: scaled_dot_product_attention forward and forward+backward, and one
LSTM training step, lazygrad next to torch eager.

    python bench/attention.py                 # SDPA at (B=8, H=8, T=512, D=64); LSTM batch 32,
                                              # seq 64, hidden 256 (one Adam step)
    python bench/attention.py --quick         # SDPA at (2, 4, 128, 32); LSTM batch 8, seq 16, hidden 64
    python bench/attention.py --json out.json --reps 5

Contenders: torch eager (`F.scaled_dot_product_attention`, `torch.nn.LSTM`), lazygrad as it
fuses today (`lazygrad`: the attention kernels), for SDPA the plain matmul → softmax → matmul
graph (`lazygrad-plain`, LAZYGRAD_ATTENTION=0), and lazygrad with fusion off
(`lazygrad-unfused`, LAZYGRAD_FUSE=0, one kernel per primitive), both through `config.override`. A rep rebuilds the lazy graph from fresh
buffer nodes and realizes it (Python overhead included), then waits for the device. Figures
are medians of --reps after one warm-up rep (which also compiles); the kernel counts come from
`lg.schedule`. On a shared machine compare figures from one run only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL = dict(sdpa=(8, 8, 512, 64), lstm=(32, 64, 256))
QUICK = dict(sdpa=(2, 4, 128, 32), lstm=(8, 16, 64))


def _fresh(t):
    """A new lazy leaf on the same device buffer, so every rep builds and schedules its graph
    (through the plan cache) as a training step would."""
    from lazygrad import Tensor
    from lazygrad.ir import graph as gr
    return Tensor(gr.buffer_node(t.node.realized, t.shape, t.dtype), requires_grad=t.requires_grad)


def timed(fn: Callable[[], object], reps: int, warmup: int = 1) -> list[float]:
    ts = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            ts.append(time.perf_counter() - t0)
    return ts


# --- SDPA --------------------------------------------------------------------------------------
def torch_sdpa(q, k, v, backward: bool) -> Callable[[], object]:
    import torch
    import torch.nn.functional as F
    tq, tk, tv = (torch.tensor(a, requires_grad=backward) for a in (q, k, v))

    def run() -> object:
        o = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        if backward:
            tq.grad = tk.grad = tv.grad = None
            o.sum().backward()
        return o
    return run


def lazygrad_sdpa(q, k, v, backward: bool) -> Callable[[], object]:
    import lazygrad as lg
    from lazygrad.nn import functional as F
    leaves = [lg.Tensor(a, requires_grad=backward).realize() for a in (q, k, v)]

    def run() -> object:
        fq, fk, fv = (_fresh(t) for t in leaves)
        o = F.scaled_dot_product_attention(fq, fk, fv, is_causal=True)
        outs = [o] + (lg.grad(o.sum(), [fq, fk, fv]) if backward else [])
        lg.realize(*outs)
        lg.synchronize()
        return outs
    return run


def sdpa_kernels(shape: tuple[int, int, int, int]) -> dict[str, int]:
    """Kernels of the causal SDPA forward, and of forward + the three input gradients."""
    import lazygrad as lg
    from lazygrad.nn import functional as F
    q, k, v = (lg.Tensor(np.zeros(shape, np.float32), requires_grad=True) for _ in range(3))
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return {"forward": len(lg.schedule(o)), "forward+backward": len(lg.schedule(o, *lg.grad(o.sum(), [q, k, v])))}


# --- LSTM training step -----------------------------------------------------------------------
def torch_lstm(x, y, hidden: int) -> Callable[[], object]:
    import torch
    torch.manual_seed(0)
    m = torch.nn.LSTM(x.shape[2], hidden, batch_first=True)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    tx, ty = torch.tensor(x), torch.tensor(y)

    def run() -> object:
        out, _ = m(tx)
        loss = ((out - ty) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return run


def lazygrad_lstm(x, y, hidden: int) -> Callable[[], object]:
    import lazygrad as lg
    from lazygrad import nn, optim
    lg.manual_seed(0)
    m = nn.LSTM(x.shape[2], hidden, batch_first=True)
    opt = optim.Adam(m.parameters(), lr=1e-3)
    tx, ty = lg.Tensor(x).realize(), lg.Tensor(y).realize()

    def run() -> object:
        out, _ = m(_fresh(tx))
        loss = ((out - _fresh(ty)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step(loss)
        return loss.item()
    return run


def lstm_kernels(x, hidden: int) -> dict[str, int]:
    import lazygrad as lg
    from lazygrad import nn
    m = nn.LSTM(x.shape[2], hidden, batch_first=True)
    out, _ = m(lg.Tensor(x))
    loss = (out * out).mean()
    return {"forward": len(lg.schedule(out)), "forward+backward": len(lg.schedule(loss, *lg.grad(loss, m.parameters())))}


def contenders(make_torch, make_lazy, unfused_too: bool = True, plain_too: bool = False
               ) -> dict[str, Callable[[], object]]:
    from lazygrad import config

    def overridden(**changes) -> Callable[[], object]:
        run = make_lazy()

        def wrapped() -> object:
            with config.override(**changes):
                return run()
        return wrapped
    fns = {"torch": make_torch(), "lazygrad": make_lazy()}
    if plain_too:  # the matmul / softmax / matmul graph without the attention kernels
        fns["lazygrad-plain"] = overridden(attention=False)
    if unfused_too:
        fns["lazygrad-unfused"] = overridden(fuse=False)
    return fns


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="bench/attention.py", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--only", default="", help="comma list of rows: sdpa_fwd, sdpa_fwdbwd, lstm_step")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--no-unfused", action="store_true",
                   help="skip lazygrad-unfused (its LSTM step compiles one program per primitive and step)")
    args = p.parse_args(argv)
    from bench.machine import machine_info
    sizes = QUICK if args.quick else FULL
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    B, H, T, D = sizes["sdpa"]
    q, k, v = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
    n, L, hid = sizes["lstm"]
    x = rng.standard_normal((n, L, hid)).astype(np.float32)
    y = rng.standard_normal((n, L, hid)).astype(np.float32)
    rows = {
        "sdpa_fwd": (f"causal SDPA forward {sizes['sdpa']}", lambda: contenders(
            lambda: torch_sdpa(q, k, v, False), lambda: lazygrad_sdpa(q, k, v, False), not args.no_unfused, True),
            lambda: sdpa_kernels((B, H, T, D))),
        "sdpa_fwdbwd": (f"causal SDPA forward+backward {sizes['sdpa']}", lambda: contenders(
            lambda: torch_sdpa(q, k, v, True), lambda: lazygrad_sdpa(q, k, v, True), not args.no_unfused, True),
            None),
        "lstm_step": (f"LSTM Adam step (batch, seq, hidden) = {sizes['lstm']}", lambda: contenders(
            lambda: torch_lstm(x, y, hid), lambda: lazygrad_lstm(x, y, hid), not args.no_unfused), lambda: lstm_kernels(x, hid)),
    }
    info = machine_info()
    print(f"cpu: {info['cpu']} ({info['cores']} cores); lazygrad target: {info['lazygrad_target']}")
    result: dict = {"machine": info, "rows": {}}
    for name, (title, make, kernels) in rows.items():
        if only and name not in only:
            continue
        fns = make()
        row: dict = {"title": title, "ms": {}}
        for who, fn in fns.items():
            ts = timed(fn, args.reps)
            row["ms"][who] = statistics.median(ts) * 1e3
            time.sleep(0.3)
        base = row["ms"]["torch"]
        row["ratio_vs_torch"] = {w: ms / base for w, ms in row["ms"].items()}
        if kernels is not None:
            row["kernels"] = kernels()
        result["rows"][name] = row
        cells = ", ".join(f"{w} {ms:.1f} ms ({row['ratio_vs_torch'][w]:.2f}x)" for w, ms in row["ms"].items())
        print(f"{title}: {cells}" + (f"; lazygrad kernels {row['kernels']}" if "kernels" in row else ""))
    if {"sdpa_fwd"} & (only or {"sdpa_fwd"}):
        result["sdpa_kernels_issue_shapes"] = {f"T={t}": sdpa_kernels((2, 4, t, 32)) for t in (128, 1024)}
        print(f"SDPA kernels at (2, 4, T, 32): {result['sdpa_kernels_issue_shapes']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
