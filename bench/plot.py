"""Plot: median time vs elementwise chain length, one line per contender, one panel per size.

Public names: plot_chains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


Point = tuple[int, float, bool]  # (chain length, median ms, output checked ok)


def _chain_series(results: dict[str, Any]) -> dict[int, dict[str, list[Point]]]:
    """{n: {contender: [(length, median_ms, ok), ...]}} from the chain cases."""
    series: dict[int, dict[str, list[Point]]] = {}
    for case in results["cases"]:
        if case["kind"] != "chain":
            continue
        n, length = case["params"]["n"], case["params"]["length"]
        for name, r in case["results"].items():
            if r.get("status") == "ok" and "median_ms" in r:
                ok = r.get("check", "ok") == "ok"
                series.setdefault(n, {}).setdefault(name, []).append((length, r["median_ms"], ok))
    return series


def plot_chains(results: dict[str, Any], path: Path) -> Path | None:
    """Write the PNG; returns its path, or None when there are no chain results."""
    series = _chain_series(results)
    if not series:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(series)
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    order = results["meta"]["contenders"]
    for ax, n in zip(axes[0], sizes):
        for name in order:
            points = sorted(series[n].get(name, []))
            if points:
                xs, ys, oks = zip(*points)
                # a failed check (wrong output, or a memoized step that launched nothing)
                # is drawn dashed with hollow markers: not a real timing
                bad = not all(oks)
                ax.plot(xs, ys, marker="o", linestyle="--" if bad else "-",
                        markerfacecolor="none" if bad else None,
                        label=f"{name} (check failed)" if bad else name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
        ax.set_xlabel("elementwise ops in the chain")
        ax.set_ylabel("median time (ms)")
        label = f"{n // (1 << 20)}M" if n % (1 << 20) == 0 else str(n)
        ax.set_title(f"elementwise chain on {label} float32")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
