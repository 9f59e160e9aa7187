"""Every example runs in its short mode and learns: the loss falls, accuracy clears a bar,
figures are written, checkpoints reload. They run in this process (sharing compiled
programs); one also runs as `python examples/xor.py` to check the command line."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path


import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lazygrad import Tensor

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# the test split digits.py makes (the figure must show these raw images)
_digits = load_digits()
DIGITS_TEST = train_test_split(_digits.images, _digits.target, test_size=0.2, random_state=0,
                               stratify=_digits.target)[1]


def run_example(name: str, out: Path, *extra: str) -> dict:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(["--quick", "--no-progress", "--out", str(out), *extra])


def pngs(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in out.glob("*.png")}


def labels(fig) -> list[tuple[str, str, str]]:
    """(title, x label, y label) of every axes of a figure that shows something."""
    return [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_label() != "<colorbar>"]


def check_figures(r: dict, out: Path, names: set[str]) -> dict:
    """Every expected figure was written as a PNG and returned as a Figure."""
    assert set(r["figures"]) == names
    files = pngs(out)
    for name in names:
        assert files.get(name, 0) > 10_000, name
    return r["figures"]


def scatter_colours(ax) -> set[tuple]:
    """The distinct face colours of the scatter plots on `ax` (one per class when visible)."""
    from matplotlib.collections import PathCollection
    return {tuple(c) for coll in ax.collections if isinstance(coll, PathCollection) for c in coll.get_facecolors()}


def test_xor_learns(tmp_path):
    r = run_example("xor", tmp_path)
    assert r["final_loss"] < r["first_loss"] / 10
    assert r["test_acc"] >= 0.98
    fig = check_figures(r, tmp_path, {"xor.png"})["xor.png"]
    loss_ax, boundary_ax = fig.axes
    assert labels(fig)[0] == ("training loss", "step", "binary cross-entropy")
    assert boundary_ax.get_title().startswith("decision boundary")
    assert (boundary_ax.get_xlabel(), boundary_ax.get_ylabel()) == ("input 1", "input 2")
    assert len(scatter_colours(boundary_ax)) == 2     # the two classes in two colours
    assert [t.get_text() for t in boundary_ax.get_legend().get_texts()] == ["class 0", "class 1"]


def test_perceptron_converges(tmp_path):
    r = run_example("perceptron", tmp_path)
    assert r["first_mistakes"] > 0 and r["last_mistakes"] == 0   # separable: the rule stops erring
    assert r["accuracy"] == 1.0
    fig = check_figures(r, tmp_path, {"perceptron.png"})["perceptron.png"]
    data_ax, mistakes_ax = fig.axes
    assert (data_ax.get_xlabel(), data_ax.get_ylabel()) == ("feature 1", "feature 2")
    assert data_ax.get_title().startswith("decision boundary per epoch")
    assert len(scatter_colours(data_ax)) == 2
    assert labels(fig)[1] == ("perceptron learning rule", "epoch", "mistakes (= updates)")
    ticks = [t for t in mistakes_ax.get_xticks() if mistakes_ax.get_xlim()[0] <= t <= mistakes_ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)   # epochs are whole numbers


def test_circles_learns_and_plots_gradients(tmp_path):
    r = run_example("circles", tmp_path)
    assert r["final_loss"] < r["first_loss"] / 5
    assert r["test_acc"] >= 0.95
    # what the docstring says the gradient figure shows: the output layer's gradients shrink,
    # the first layer's grow
    first, last = r["layer_grads"]["first"], r["layer_grads"]["last"]
    assert last[-1] < first[-1] / 2 and last[0] > first[0]
    figs = check_figures(r, tmp_path, {"circles.png", "circles_gradients.png"})
    boundary_ax = figs["circles.png"].axes[1]
    assert (boundary_ax.get_xlabel(), boundary_ax.get_ylabel()) == ("x", "y")
    assert len(scatter_colours(boundary_ax)) == 2
    g = figs["circles_gradients.png"]
    heat = [ax for ax in g.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in g.axes if ax.get_label() == "<colorbar>"]
    assert len(heat) == 6 and len(bars) == 1                      # one shared colour bar
    assert {ax.images[0].get_clim() for ax in heat} == {heat[0].images[0].get_clim()}   # one scale
    assert {(t.split(",")[1].strip()) for t, _, _ in labels(g)} == {"first epoch", "last epoch"}
    assert all((x, y) == ("input unit", "output unit") for _, x, y in labels(g))


def test_binary_classifier_learns(tmp_path):
    r = run_example("binary", tmp_path)
    assert r["final_cost"] < r["first_cost"] / 3
    assert r["test_acc"] >= 0.93
    fig = check_figures(r, tmp_path, {"binary_cost.png"})["binary_cost.png"]
    (title, x, y), = labels(fig)
    assert title.startswith("cost") and (x, y) == ("gradient descent step", "binary cross-entropy")


def test_digits_mlp_and_cnn_learn_and_reload(tmp_path):
    r = run_example("digits", tmp_path)
    assert r["mlp_final_loss"] < r["mlp_first_loss"] / 2
    assert r["mlp_test_acc"] >= 0.93
    assert r["mlp_reloaded_acc"] == r["mlp_test_acc"]              # the checkpoint reproduces the model
    assert (tmp_path / "digits_mlp.safetensors").stat().st_size > 17226 * 4
    if hasattr(Tensor, "conv2d"):
        assert r["cnn_final_loss"] < r["cnn_first_loss"] / 2
        assert r["cnn_test_acc"] >= 0.85
        assert r["cnn_reloaded_acc"] == r["cnn_test_acc"]
    figs = check_figures(r, tmp_path, {"digits_training.png", "digits_predictions.png"})
    assert [t for t, _, _ in labels(figs["digits_training.png"])] == ["8x8 digits: test accuracy", "training loss"]
    for ax in figs["digits_training.png"].axes:
        assert ax.get_xlabel() == "epoch" and all(float(t).is_integer() for t in ax.get_xticks())
    grid = figs["digits_predictions.png"]
    assert len(grid.axes) == len(r["shown_digits"]) == 32
    for ax, (i, pred, true) in zip(grid.axes, r["shown_digits"]):
        assert ax.get_title() == f"pred {pred} / true {true}"
        img = ax.images[0].get_array()
        # the real image: the raw 0..16 grey levels, not the standardised network input
        np.testing.assert_array_equal(img, DIGITS_TEST[i])
        assert ax.title.get_color() == ("r" if pred != true else "k")   # wrong predictions in red


@pytest.mark.parametrize("name", ["char_lstm", "char_transformer"])
def test_character_language_models_learn_and_sample(tmp_path, name):
    r = run_example(name, tmp_path)
    # 61 characters: a uniform guess costs ln 61 = 4.11 nats; the short run must get well below
    assert r["first_val_loss"] > 3.9 and r["val_loss"] < 3.6
    assert r["val_loss"] < r["first_val_loss"] - 0.5
    assert len(r["sample"]) > 60 and (tmp_path / "sample.txt").read_text(encoding="utf-8") == r["sample"]
    fig = check_figures(r, tmp_path, {f"{name}.png"})[f"{name}.png"]
    (title, x, y), = labels(fig)
    assert title.endswith("loss") and (x, y) == ("step", "cross-entropy (nats / char)")


def test_example_runs_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LAZYGRAD_QUICK"] = "1"      # short mode from the environment, no flag
    out = subprocess.run([sys.executable, "examples/xor.py", "--no-progress", "--out", str(tmp_path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "in 150 steps" in out.stdout and "test accuracy" in out.stdout
    assert (tmp_path / "xor.png").exists()


def test_example_help_lists_quick_mode():
    out = subprocess.run([sys.executable, "examples/circles.py", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--quick" in out.stdout and "concentric circles" in out.stdout
