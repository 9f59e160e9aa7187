"""Long rows: a scan, a sort and an embedding's scatter-add gradient at sizes where a quadratic
algorithm is out of reach, lazygrad next to torch eager and numpy.

    python bench/long_rows.py                 # cumsum / cummax / sort of 1M floats, an
                                              # Embedding(10000, 128) gradient over 2,048 tokens
    python bench/long_rows.py --quick         # 100k floats, Embedding(2000, 64) over 512 tokens
    python bench/long_rows.py --json out.json --reps 5

lazygrad scans rows past 1,024 elements in blocks of 128 (frontend/scan.py), merge sorts rows
past 2,048 (ir/graph.merge_sort_keys, templates/sort_merge.cl.j2) and sums a large gather's
gradient by a sorted index (SEGMENT_SUM, templates/segment_sum.cl.j2); before these, the three
were O(n^2) (a 1M cumsum or sort ~10^12 operations) and the embedding's one-hot gradient asked
for a 10 GB buffer. A rep builds the lazy graph from a fresh buffer node, realizes it and reads
the result back (torch and numpy also return host arrays). Medians of --reps after one warm-up
rep (which compiles); kernel counts from `lg.schedule`. Compare figures from one run only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.attention import timed  # noqa: E402
from bench.machine import machine_info  # noqa: E402

FULL = dict(n=1_000_000, emb=(10000, 128, 2048))
QUICK = dict(n=100_000, emb=(2000, 64, 512))


def row_cases(n: int) -> dict[str, dict[str, Callable[[], object]]]:
    import torch
    import lazygrad as lg
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    ta = torch.tensor(a)
    la = lg.Tensor(a)
    la.realize()
    from lazygrad.ir import graph as gr

    def fresh():
        return lg.Tensor(gr.buffer_node(la.node.realized, la.shape, la.dtype))
    return {
        f"cumsum_{n}": {"lazygrad": lambda: fresh().cumsum(0).numpy(), "torch": lambda: ta.cumsum(0).numpy(),
                        "numpy": lambda: np.cumsum(a)},
        f"cummax_{n}": {"lazygrad": lambda: fresh().cummax(0).values.numpy(),
                        "torch": lambda: ta.cummax(0).values.numpy(), "numpy": lambda: np.maximum.accumulate(a)},
        f"sort_{n}": {"lazygrad": lambda: fresh().sort(0).values.numpy(),
                      "torch": lambda: ta.sort(stable=True).values.numpy(), "numpy": lambda: np.sort(a, kind="stable")},
    }


def embedding_case(v: int, d: int, t: int) -> dict[str, Callable[[], object]]:
    import torch
    import lazygrad as lg
    from lazygrad import nn
    idx = np.random.default_rng(1).integers(0, v, t)
    te = torch.nn.Embedding(v, d)
    le = nn.Embedding(v, d)
    le.load_state_dict(te.state_dict())
    ti, li = torch.tensor(idx), lg.Tensor(idx)

    def lazy():
        le.weight.grad = None
        (le(li) ** 2).sum().backward()
        return le.weight.grad.numpy()

    def eager():
        te.weight.grad = None
        (te(ti) ** 2).sum().backward()
        return te.weight.grad.numpy()
    return {"lazygrad": lazy, "torch": eager}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    cases = row_cases(sizes["n"])
    v, d, t = sizes["emb"]
    cases[f"embedding_grad_{v}x{d}_{t}"] = embedding_case(v, d, t)
    info = machine_info()
    print(f"cpu: {info['cpu']} ({info['cores']} cores); lazygrad target: {info['lazygrad_target']}")
    out: dict = {"machine": info, "rows": {}}
    for name, contenders in cases.items():
        row = {}
        for who, fn in contenders.items():
            row[who] = statistics.median(timed(fn, args.reps))
        ref = row["torch"]
        cells = ", ".join(f"{who} {s * 1e3:.1f} ms" + ("" if who == "torch" else f" ({s / ref:.2f}x torch's time)") for who, s in row.items())
        print(f"{name}: {cells}", flush=True)
        out["rows"][name] = row
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
