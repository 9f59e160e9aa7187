"""Runtime: program cache (memory and disk), plan cache, buffer reuse, device capabilities."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.ir.graph import buffer_node

SCRIPT = r"""
import json, numpy as np, lazygrad as lg
from lazygrad import Tensor
x = Tensor(np.arange(24, dtype=np.float32).reshape(4, 6))
y = ((x * 0.37 + 1.5).exp().sum(1) * 2 - 1)
v = y.numpy()
print(json.dumps({"compiled": lg.counters.programs_compiled, "disk": lg.counters.disk_cache_hits,
                  "value": v.tolist()}))
"""


def _run(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing(tmp_path):
    env = {"LAZYGRAD_CACHE_DIR": str(tmp_path)}
    first = _run(env)
    second = _run(env)
    assert first["compiled"] >= 1 and first["disk"] == 0
    assert second["compiled"] == 0 and second["disk"] == first["compiled"]
    assert first["value"] == second["value"]
    want = ((np.arange(24, dtype=np.float32).reshape(4, 6) * 0.37 + 1.5).astype(np.float64))
    np.testing.assert_allclose(second["value"], np.exp(want).sum(1) * 2 - 1, rtol=1e-5)


def test_cache_disabled_compiles_every_process(tmp_path):
    env = {"LAZYGRAD_CACHE_DIR": str(tmp_path), "LAZYGRAD_CACHE": "0"}
    assert _run(env)["compiled"] >= 1
    assert _run(env)["compiled"] >= 1
    assert not any(tmp_path.iterdir())


def _fresh(t: Tensor) -> Tensor:
    return Tensor(buffer_node(t.node.realized, t.shape, t.dtype))


def test_same_structure_reuses_plan_and_buffers():
    x = Tensor(np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32))
    step = lambda t: ((t * 2).relu().sum(1, keepdim=True) + t).exp()  # noqa: E731
    step(_fresh(x)).realize()
    lg.counters.reset()
    for _ in range(5):
        step(_fresh(x)).realize()
    assert lg.counters.schedule_cache_hits == 5
    assert lg.counters.schedules_built == 0
    assert lg.counters.programs_compiled == 0
    # intermediates and dropped outputs go back to the pool and are reused
    assert lg.counters.buffers_reused >= 5


def test_rand_seeds_are_arguments_not_source():
    lg.manual_seed(3)
    a = (Tensor.rand(64) * 2).realize()
    lg.counters.reset()
    b = (Tensor.rand(64) * 2).realize()
    assert lg.counters.programs_compiled == 0 and lg.counters.schedule_cache_hits == 1
    assert not np.array_equal(a.numpy(), b.numpy())


def test_device_capabilities_are_queried():
    caps = lg.device().caps
    assert caps.max_work_group_size >= 1 and caps.local_mem_size > 0 and caps.compute_units >= 1
    assert isinstance(caps.fp64, bool) and isinstance(caps.fp16, bool)


def test_counters_track_work():
    lg.counters.reset()
    x = Tensor(np.ones((8, 8), np.float32))
    (x * 3).exp().sum().realize()
    assert lg.counters.kernels_launched >= 1 and lg.counters.bytes_moved > 0 and lg.counters.flops > 0
    lg.counters.reset()
    assert lg.counters.kernels_launched == 0


def test_training_loop_memory_is_constant():
    """param = param - lr * grad, realized each step: no graph chains from step to step."""
    import gc

    from lazygrad.ir.graph import toposort

    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 4)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    sizes = []
    for _ in range(6):
        loss = ((x @ w).relu() ** 2).mean()
        loss.backward()
        new_w = (w - 0.1 * w.grad).detach()
        lg.realize(new_w, loss)
        w = Tensor(new_w, requires_grad=True)
        w.grad = None
        sizes.append(len(toposort([w.node], stop_at_realized=False)))
        gc.collect()
    assert sizes[-1] == sizes[1] == 1


def test_non_editable_install_ships_templates(tmp_path):
    """A wheel built from the repo (templates/ mapped to lazygrad.templates) runs kernels."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "pip", "wheel", root, "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "whl")], check=True, timeout=600, capture_output=True)
    wheel = next((tmp_path / "whl").glob("lazygrad-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=600, capture_output=True)
    code = ("import lazygrad, numpy as np; assert lazygrad.__file__.startswith(%r), lazygrad.__file__; "
            "x = lazygrad.Tensor([1.0, 2.0]); print(((x * 2).exp().sum()).item())" % str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert abs(float(out.stdout.strip()) - (np.exp(2) + np.exp(4))) < 1e-3
