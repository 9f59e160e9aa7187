"""Every example runs in its short mode and learns: the loss falls, accuracy clears a bar,
figures are written, checkpoints reload. They run in this process (sharing compiled
programs); one also runs as `python examples/xor.py` to check the command line."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path


from lazygrad import Tensor

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, out: Path, *extra: str) -> dict:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(["--quick", "--no-progress", "--out", str(out), *extra])


def pngs(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in out.glob("*.png")}


def test_xor_learns(tmp_path):
    r = run_example("xor", tmp_path)
    assert r["final_loss"] < r["first_loss"] / 10
    assert r["test_acc"] >= 0.98
    assert pngs(tmp_path).get("xor.png", 0) > 10_000


def test_perceptron_converges(tmp_path):
    r = run_example("perceptron", tmp_path)
    assert r["first_mistakes"] > 0 and r["last_mistakes"] == 0   # separable: the rule stops erring
    assert r["accuracy"] == 1.0
    assert pngs(tmp_path).get("perceptron.png", 0) > 10_000


def test_circles_learns_and_plots_gradients(tmp_path):
    r = run_example("circles", tmp_path)
    assert r["final_loss"] < r["first_loss"] / 5
    assert r["test_acc"] >= 0.95
    assert r["last_grad"] < r["first_grad"]    # gradients shrink as training converges
    files = pngs(tmp_path)
    assert files.get("circles.png", 0) > 10_000 and files.get("circles_gradients.png", 0) > 10_000


def test_binary_classifier_learns(tmp_path):
    r = run_example("binary", tmp_path)
    assert r["final_cost"] < r["first_cost"] / 3
    assert r["test_acc"] >= 0.93
    assert pngs(tmp_path).get("binary_cost.png", 0) > 10_000


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
    files = pngs(tmp_path)
    assert files.get("digits_training.png", 0) > 10_000 and files.get("digits_predictions.png", 0) > 10_000


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
