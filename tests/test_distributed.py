"""lazygrad.distributed under a real `mpirun -n 2` (MPICH from the `mpich` wheel): DDP on 2 ranks
with batch b per rank takes the same Adam steps as one process with batch 2b (MLP and CNN),
the broadcast unifies differently seeded ranks, DistributedSampler covers the data once per
epoch, no_sync accumulates, a failing or stuck rank ends the job with a clear error in bounded
time, mismatched models are refused, checkpoints are written once and load anywhere, and a
plain `python` run is a world of one that never imports mpi4py.

The jobs run the scenarios of tests/distributed_worker.py with the PoCL thread count init() gives
each rank (half the cores: one thread on a 2-core host) and
LAZYGRAD_TUNE=0 (no matmul timing runs: both ranks would time candidates on the same 2 cores).
They share the user's program cache, so only a first run on a machine compiles (minutes)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import lazygrad as lg
import lazygrad.distributed as dist
from lazygrad import nn
from lazygrad.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"
MPIEXEC = dist.mpiexec_path()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec: pip install 'lazygrad[distributed]' (mpich wheel)")
# a launch may compile every kernel of the scenario on a machine whose cache is cold
LAUNCH_TIMEOUT = 600


def _env(**extra: str) -> dict[str, str]:
    # no POCL thread count here: init() must give each of the 2 local ranks its share itself
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "POCL_MAX_PTHREAD", "POCL_CPU_MAX"))}
    env.update(PYTHONPATH=str(ROOT), LAZYGRAD_TUNE="0", **extra)
    return env


def launch(scenario: str, out: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.time()
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(WORKER), scenario, str(out)], cwd=ROOT,
                          env=_env(**env), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    return proc, time.time()


def result(scenario: str, out: Path) -> dict:
    proc, _ = launch(scenario, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / f"{scenario}.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("ddp")
    return result("train", out), out


@needs_mpi
def test_two_ranks_take_the_steps_of_one_process_with_twice_the_batch(trained):
    res, _ = trained
    assert res["size"] == 2
    for kind in ("mlp", "cnn"):
        assert res[f"{kind}_buckets"] >= 2, "several buckets, so the frontier between them is exercised"
        # 4 Adam steps at lr 1e-2 move the parameters by ~4e-2; float32 round-off stays ~1e-7
        assert res[f"{kind}_vs_single"] < 2e-6, kind
        assert res[f"{kind}_final_rank_diff"] == 0.0, f"{kind}: the ranks' parameters drifted apart"


@needs_mpi
def test_broadcast_makes_differently_seeded_ranks_identical(trained):
    res, _ = trained
    for kind in ("mlp", "cnn"):
        assert res[f"{kind}_init_rank_diff"] > 0.1     # the seeds really gave different models
        assert res[f"{kind}_final_rank_diff"] == 0.0


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores_as_pocl_threads(trained):
    res, _ = trained
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert res["threads"] == share and res["compute_units"] == share


@needs_mpi
def test_rank_zero_checkpoint_loads_at_any_world_size(trained):
    res, out = trained
    assert res["ckpt_meta"] == {"world": 2} and res["ckpt_reload_diff"] == 0.0
    # and in this process, a world of one, into a model that was never wrapped
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 10))
    meta = dist.load_checkpoint(out / "ckpt.safetensors", model, lg.optim.Adam(model.parameters()))
    assert meta == {"world": 2}
    saved = np.load(out / "ckpt_params.npz")
    for i, p in enumerate(model.parameters()):
        np.testing.assert_array_equal(p.numpy(), saved[f"arr_{i}"])


@pytest.fixture(scope="module")
def small_job(tmp_path_factory) -> dict:
    return result("sampler", tmp_path_factory.mktemp("sampler"))


@needs_mpi
def test_collectives_combine_both_ranks_in_place(small_job):
    for res in small_job["collectives"]:       # every rank ends with the same values
        assert res["sum"] == [3.0, 30.0, -1.0]
        assert res["mean"] == [1.5, 15.0, -0.5]
        assert res["max"] == [2.0, 20.0, 0.0]
        assert res["min"] == [1.0, 10.0, -1.0]
        assert res["int_sum"] == [3, 14]
        assert res["broadcast_from_1"] == [[1.0, 2.0]]
    r0, r1 = small_job["collectives"]
    assert r0["bn_own"] != r1["bn_own"], "each rank's BatchNorm saw its own batch"
    assert r0["bn_after_call"] == r1["bn_after_call"] == r0["bn_own"], "the next call took rank 0's statistics"


@needs_mpi
def test_distributed_sampler_covers_the_dataset_once_per_epoch(small_job):
    res = small_job
    assert res["len"] == -(-52 // 5)
    orders = []
    for r0, r1 in res["epochs"]:
        assert len(r0) == len(r1) == 52
        assert sorted(r0 + r1) == list(range(104))
        orders.append(r0)
    assert orders[0] != orders[1] != orders[2], "set_epoch draws a new permutation"


@needs_mpi
def test_no_sync_accumulates_and_the_next_backward_averages(tmp_path):
    res = result("no_sync", tmp_path)
    assert res["local_rank_diff"] > 1e-3, "inside no_sync the ranks keep their own gradients"
    assert res["synced_rank_diff"] == 0.0
    assert res["grad_scale"] > 1e-2 and res["vs_single"] < 1e-6


@needs_mpi
def test_a_raising_rank_ends_the_job_with_a_clear_error(tmp_path):
    proc, end = launch("raise", tmp_path)
    assert proc.returncode != 0
    assert "lazygrad.distributed: rank 1 of 2 raised RuntimeError; aborting all ranks" in proc.stderr
    assert "worker failure injected on rank 1" in proc.stderr
    injected = float(re.search(r"injecting the failure at ([0-9.]+)", proc.stderr).group(1))
    assert end - injected < 15, f"rank 0 took {end - injected:.1f} s to stop"


@needs_mpi
def test_a_stuck_rank_times_out_instead_of_hanging(tmp_path):
    proc, end = launch("hang", tmp_path, LAZYGRAD_DIST_TIMEOUT="3")
    assert proc.returncode != 0
    assert "DistributedTimeout" in proc.stderr and "did not complete within 3 s (LAZYGRAD_DIST_TIMEOUT)" in proc.stderr
    stopped = float(re.search(r"rank 1 stops at ([0-9.]+)", proc.stderr).group(1))
    assert end - stopped < 20, f"the job took {end - stopped:.1f} s to end after rank 1 stopped"


@needs_mpi
def test_different_parameter_shapes_are_a_clear_error(tmp_path):
    proc, _ = launch("mismatch", tmp_path)
    assert proc.returncode != 0
    assert ("ValueError: DistributedDataParallel: the ranks' models differ, so their gradients cannot be averaged: "
            "0.weight: rank 0 (32, 16) float32, rank 1 (33, 16) float32") in proc.stderr


def test_a_plain_process_is_a_world_of_one_without_mpi(tmp_path):
    proc = subprocess.run([sys.executable, str(WORKER), "single", str(tmp_path)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "single.json").read_text())
    assert res["size"] == 1 and res["rank"] == 0 and not res["mpi4py_imported"]
    assert res["all_reduce"] == [1.0, 2.0] and res["ckpt"] and res["sampler_len"] == 10
    assert np.isfinite(res["loss"])


# --- in this process: no launcher needed ------------------------------------------------------------
def test_sampler_pads_like_torch_and_drop_last_cuts():
    a, b = (dist.DistributedSampler(103, num_replicas=2, rank=r, seed=1) for r in (0, 1))
    ia, ib = a.indices(), b.indices()
    assert len(a) == len(ia) == len(ib) == 52
    both = np.concatenate([ia, ib])
    assert sorted(set(both.tolist())) == list(range(103))
    perm = np.random.default_rng(1).permutation(103)
    # torch's padding: the permutation's first index again, at position 103 (rank 1's last)
    assert np.bincount(both, minlength=103)[perm[0]] == 2 and ib[-1] == perm[0]
    c = dist.DistributedSampler(103, num_replicas=2, rank=1, seed=1, drop_last=True)
    assert len(c) == len(c.indices()) == 51
    plain = dist.DistributedSampler(5, num_replicas=3, rank=2, shuffle=False)
    assert plain.indices().tolist() == [2, 0]       # 0 1 2 3 4 | 0 padded; rank 2 takes 2 and 0
    tiny = dist.DistributedSampler(2, num_replicas=4, rank=3, shuffle=False)
    assert tiny.indices().tolist() == [1]           # padding repeats the short order


@pytest.mark.parametrize("n,replicas,drop_last", [(103, 2, False), (10, 4, False), (2, 5, False), (10, 4, True)])
def test_sampler_shares_match_torch_without_shuffle(n, replicas, drop_last):
    from torch.utils.data import DistributedSampler as TorchSampler
    for r in range(replicas):
        ours = dist.DistributedSampler(n, num_replicas=replicas, rank=r, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), num_replicas=replicas, rank=r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_and_loader_reject_bad_arguments():
    with pytest.raises(ValueError, match="rank 2 is not in"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be >= 1"):
        dist.DistributedSampler(10, num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(np.zeros((4, 2)), sampler=[0, 1], shuffle=True)
    with pytest.raises(IndexError, match="the sampler gave row 7"):
        list(DataLoader(np.zeros((4, 2)), sampler=[0, 7]))
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(lg.Tensor([1.0]), "avg")


def test_loader_batches_the_sampler_rows_in_its_order():
    x = np.arange(10, dtype=np.float32)
    loader = DataLoader(x, batch_size=3, sampler=[9, 2, 5, 5, 0])
    assert len(loader) == 2 and [b.numpy().tolist() for b in loader] == [[9, 2, 5], [5, 0]]


def test_buckets_go_backwards_within_the_byte_budget():
    ps = [lg.Tensor.zeros(n, requires_grad=True) for n in (10, 300, 20, 20, 5)]
    buckets = dist.plan_buckets(ps, cap_bytes=4 * 50)
    assert [b.params for b in buckets] == [(4, 3, 2), (1,), (0,)]
    assert [b.nbytes for b in buckets] == [180, 1200, 40]


def test_frontier_keeps_what_later_buckets_read():
    x = lg.Tensor(np.ones((4, 4), np.float32))
    h = (x * 2).exp()          # shared by both "buckets"
    a = (h * 3).sum()
    b = (h + 1).sum()
    keep = dist.frontier([a.node], [b.node])
    assert [n.uid for n in keep] == [h.node.uid]
    assert dist.frontier([a.node], [(x + 1).sum().node]) == []   # only a realized buffer is shared


def test_program_cache_writes_from_concurrent_processes_never_tear(tmp_path):
    # the ranks of one host share LAZYGRAD_CACHE_DIR: two writers hammer the same entries while
    # a reader checks that every read is a whole entry (or none), never a torn one
    script = textwrap.dedent(f"""
        import sys, hashlib
        from pathlib import Path
        from lazygrad.runtime.device import ProgramCache
        role, d = sys.argv[1], Path(sys.argv[2])
        pc = ProgramCache(device=None)
        keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4)]
        bad = 0
        for it in range(120):
            for i, k in enumerate(keys):
                path = d / (k + ".bin")
                if role == "write":
                    pc._write(path, bytes([i]) * (50_000 + 1000 * (it % 7)))
                else:
                    got = pc._read(path)
                    bad += got is not None and set(got) != {{i}}
        print(bad)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, role, str(tmp_path)], cwd=ROOT, env=_env(),
                              stdout=subprocess.PIPE, text=True) for role in ("write", "write", "read")]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[2] == "0"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{__import__('hashlib').sha256(str(i).encode()).hexdigest()}.bin" for i in range(4)), "no stray temp files"


@needs_mpi
@pytest.mark.slow
def test_digits_example_trains_on_two_ranks(tmp_path):
    # the README's command, shortened: rank 0 alone prints, writes the checkpoint and the figures
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "examples/digits.py", "--distributed", "--model", "mlp",
                           "--epochs", "2", "--no-progress", "--out", str(tmp_path)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("mlp: 17226 parameters, 44 steps per epoch on each of 2 ranks (batch 16 per rank)") == 1
    accs = [float(a) for a in re.findall(r"test acc (\d\.\d+)", out)]
    assert len(accs) == 2 and accs[-1] > 0.85
    m = re.search(r"reloaded into a new model: test accuracy (\d\.\d+) \(saved (\d\.\d+)\)", out)
    assert m and m.group(1) == m.group(2)
    assert (tmp_path / "digits_mlp.safetensors").exists() and (tmp_path / "digits_training.png").exists()


def _mlp_grads(seed: int = 0) -> tuple[list[lg.Tensor], list[lg.Tensor], lg.Tensor]:
    lg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 10))
    g = np.random.default_rng(1)
    x, y = g.standard_normal((8, 16)).astype(np.float32), g.integers(0, 10, 8).astype(np.int32)
    loss = model(lg.Tensor(x)).cross_entropy(lg.Tensor(y))
    loss.backward()
    params = model.parameters()
    return params, [p.grad for p in params], loss


def test_bucketed_realize_computes_each_gradient_once(monkeypatch):
    params, grads, loss = _mlp_grads()
    before = lg.counters.flops
    lg.realize(*grads)
    one_call = lg.counters.flops - before
    expected = [g.numpy().reshape(-1) for g in grads]
    want_loss = loss.item()

    params, grads, loss = _mlp_grads()
    buckets = dist.plan_buckets(params, cap_bytes=2000)
    assert len(buckets) >= 3
    seen = []
    before = lg.counters.flops
    flats = dist.realize_buckets(grads, params, buckets, lambda k, a: seen.append((k, a.copy())))
    bucketed = lg.counters.flops - before
    assert [k for k, _ in seen] == list(range(len(buckets)))
    for b, flat in zip(buckets, flats):
        np.testing.assert_allclose(flat, np.concatenate([expected[i] for i in b.params]), rtol=1e-6, atol=1e-7)
    assert loss.node.realized is not None and loss.item() == pytest.approx(want_loss, rel=1e-6)
    # the frontier makes later buckets start from buffers: no recomputed forward or backward
    assert bucketed <= 1.1 * one_call, (bucketed, one_call)

    # and without the frontier they would recompute (so the bound above can fail)
    params, grads, _ = _mlp_grads()
    monkeypatch.setattr("lazygrad.distributed.ddp.frontier", lambda now, later: [])
    before = lg.counters.flops
    dist.realize_buckets(grads, params, buckets, lambda k, a: None)
    assert lg.counters.flops - before > 1.3 * one_call


def test_split_bucket_gives_views_of_one_upload():
    ps = [lg.Tensor.zeros(2, 3, requires_grad=True), lg.Tensor.zeros(4, requires_grad=True)]
    views = dist.split_bucket(np.arange(10, dtype=np.float32), ps)
    assert [v.shape for v in views] == [(2, 3), (4,)]
    assert views[0].numpy().tolist() == [[0, 1, 2], [3, 4, 5]] and views[1].numpy().tolist() == [6, 7, 8, 9]


def test_post_backward_hook_runs_once_per_backward_after_every_grad():
    a = lg.Tensor([1.0, 2.0], requires_grad=True)
    b = lg.Tensor([3.0], requires_grad=True)
    c = lg.Tensor([5.0], requires_grad=True)
    calls = []

    def hook() -> None:
        calls.append((a.grad is not None, b.grad is not None))

    a.register_post_backward_hook(hook)
    b.register_post_backward_hook(hook)
    ((a * 2).sum() + (b * 3).sum()).backward()
    assert calls == [(True, True)]
    (c * 2).sum().backward()                   # a backward that reaches neither: no call
    assert calls == [(True, True)]
    (a.sum() * 1).backward()
    assert len(calls) == 2


def test_each_local_rank_gets_its_device_and_thread_share(monkeypatch):
    from lazygrad.distributed import group as wmod
    for var in ("POCL_MAX_PTHREAD_COUNT", "POCL_CPU_MAX_CU_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LAZYGRAD_DEVICE", "0, 1")
    monkeypatch.setattr(wmod, "_opencl_started", lambda: False)
    monkeypatch.setattr(wmod, "_cores", lambda: 8)
    assert wmod._place_on_host(local_rank=3, local_size=4) == 2
    assert os.environ["POCL_MAX_PTHREAD_COUNT"] == os.environ["POCL_CPU_MAX_CU_COUNT"] == "2"
    assert os.environ["LAZYGRAD_DEVICE"] == "1"           # local rank 3 of the list "0, 1"
    monkeypatch.setenv("POCL_MAX_PTHREAD_COUNT", "3")     # the user's own choice wins
    assert wmod._place_on_host(local_rank=0, local_size=4) == 3
    # once PoCL runs, its thread count is fixed: say so instead of pretending
    monkeypatch.setattr(wmod, "_opencl_started", lambda: True)
    with pytest.warns(RuntimeWarning, match="after the OpenCL device was created"):
        assert wmod._place_on_host(local_rank=0, local_size=2) is None


def test_ddp_in_a_world_of_one_wraps_without_changing_anything():
    lg.manual_seed(0)
    inner = nn.Sequential(nn.Linear(4, 3))
    before = [p.numpy().copy() for p in inner.parameters()]
    model = dist.DistributedDataParallel(inner, bucket_cap_mb=0.001)
    assert model.module is inner and list(model.state_dict()) == list(inner.state_dict()) == ["0.weight", "0.bias"]
    loss = model(lg.Tensor(np.ones((2, 4), np.float32))).sum()
    loss.backward()
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, inner.parameters()))
    assert inner[0].weight.grad.numpy().tolist() == [[2.0] * 4] * 3     # not averaged with anything
    with pytest.raises(TypeError, match="expected an nn.Module"):
        dist.DistributedDataParallel(lg.Tensor([1.0]))
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0"):
        dist.DistributedDataParallel(inner, bucket_cap_mb=0)
