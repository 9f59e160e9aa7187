"""Plumbing shared by the examples: the command line (--quick, --out, --epochs, --seed), the
output folder, the headless matplotlib backend, and a decision-boundary plot.

Every example runs from a checkout as `python examples/NAME.py` (the repository root is put on
sys.path, so it also runs without installing lazygrad), writes its figures as PNG into
out/examples/NAME/ (or --out), and has a short mode (--quick, or LAZYGRAD_QUICK=1) used by the
test suite. Each example's `main(argv)` returns its final metrics as a dict, and its matplotlib
Figures by file name under "figures" (the tests check their titles and axis labels).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def parse_args(name: str, argv: list[str] | None, epochs: int, quick_epochs: int, doc: str | None = None,
               flags: dict[str, str] | None = None, **defaults: float) -> argparse.Namespace:
    """Standard options; `defaults` add float options (e.g. lr=0.01 gives --lr), `flags` on/off
    options by name and help text (e.g. {"distributed": "..."} gives --distributed)."""
    p = argparse.ArgumentParser(prog=f"examples/{name}.py", description=doc)
    p.add_argument("--quick", action="store_true",
                   default=os.environ.get("LAZYGRAD_QUICK", "0") not in ("0", ""),
                   help="short run (few epochs) for tests; also LAZYGRAD_QUICK=1")
    p.add_argument("--out", type=Path, default=None, help=f"folder for figures (default out/examples/{name})")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    for k, v in defaults.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    for k, text in (flags or {}).items():
        p.add_argument(f"--{k.replace('_', '-')}", action="store_true", help=text)
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = quick_epochs if args.quick else epochs
    if args.out is None:
        args.out = Path(os.environ.get("LAZYGRAD_EXAMPLES_OUT", ROOT / "out" / "examples")) / name
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def save(fig: plt.Figure, path: Path) -> plt.Figure:
    """Write `fig` as a PNG and return it: each example's main() hands its figures to the caller
    (the tests read their titles and axis labels)."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
    return fig


# class 0 / class 1 in every 2-D plot: saturated colours with a white edge stay visible on the
# pale probability background (the same colours as its two ends)
CLASS_COLOURS = ("#2166ac", "#b2182b")
CLASS_MARKERS = ("o", "^")


def scatter_classes(ax: plt.Axes, x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("class 0", "class 1"),
                    s: float = 22) -> None:
    """The points of each class in its own colour and marker, with a legend entry."""
    for k in (0, 1):
        pts = x[np.asarray(y).reshape(-1) == k]
        ax.scatter(pts[:, 0], pts[:, 1], c=CLASS_COLOURS[k], marker=CLASS_MARKERS[k], edgecolors="white",
                   linewidths=0.5, s=s, label=names[k], zorder=3)


def plot_decision_boundary(ax: plt.Axes, predict, x: np.ndarray, y: np.ndarray, steps: int = 150,
                           title: str = "", xlabel: str = "feature 1", ylabel: str = "feature 2") -> None:
    """Colour the plane by `predict(points) -> probability of class 1` and scatter the data."""
    lo, hi = x.min(0) - 0.3, x.max(0) + 0.3
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    prob = np.asarray(predict(grid)).reshape(gx.shape)
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.35, vmin=0, vmax=1)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1)
    scatter_classes(ax, x, y)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
