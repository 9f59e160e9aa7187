"""The target description, the device probe, the run-time width fallback and the cache keys
(portability: code generation from what the device really compiles).

Everything here holds on any CPU: the Zen 4 case (PoCL's LLVM 14 compiles for znver3 while the
device reports 16 float lanes) is a DeviceInfo, and the driver failures are the fault-injecting
wrappers of lazygrad.runtime.faults (LAZYGRAD_FAULT)."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor
from lazygrad import config
from lazygrad.runtime import device as runtime
from lazygrad.runtime.faults import kernel_bodies, missing_kernels, refusal
from lazygrad.runtime.probe import ProbeItem, expected_outputs, probe_items, run_probe
from lazygrad.target import DeviceInfo, Profile, describe, planned_bits, vector_bits_of_source

ROOT = Path(__file__).resolve().parent.parent


def info(version: str = "OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-znver3", lanes: int = 16,
         is_cpu: bool = True, platform: str = "OpenCL 3.0 PoCL 3.0-rc2", fp64: bool = True) -> DeviceInfo:
    return DeviceInfo(name="test device", version=version, driver="3.0", platform=platform, is_cpu=is_cpu,
                      compute_units=2, max_work_group_size=4096, local_mem_size=1 << 20, max_alloc=1 << 30,
                      global_mem=1 << 32, max_param_size=1024, reported_float_lanes=lanes, fp16=False, fp64=fp64)


# --- the target description ---------------------------------------------------------------------
def test_zen4_on_llvm14_gets_256_bit_vectors_whatever_the_device_claims():
    t = describe(info(), "auto", None)
    assert t.info.llvm_cpu == "znver3"
    assert t.vector_bits == 256 and "znver3" in t.bits_reason and "claims 512" in t.bits_reason
    assert (t.lanes(4), t.lanes(8)) == (8, 4)          # float8 / double4: never a 512-bit vector
    assert t.wide_vector_attr(512) == ""               # no min_vector_width(512) on a 256-bit target


@pytest.mark.parametrize("cpu,bits", [("skylake-avx512", 512), ("icelake-server", 512), ("znver2", 256),
                                      ("haswell", 256), ("x86-64", 128), ("nehalem", 128)])
def test_llvm_cpu_table(cpu, bits):
    t = describe(info(f"OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-{cpu}", lanes=16), "auto", None)
    assert t.info.llvm_cpu == cpu and t.vector_bits == bits
    assert t.lanes(4) == bits // 32 and t.lanes(8) == bits // 64


def test_unknown_cpu_uses_the_claim_and_gpu_profile_is_narrow():
    t = describe(info("OpenCL 3.0 PoCL HSTR: pthread-aarch64-unknown-linux-gnu-cortex-z99", lanes=4), "auto", None)
    assert t.vector_bits == 128 and "unknown LLVM CPU" in t.bits_reason
    gpu = describe(info("OpenCL 3.0 CUDA", lanes=1, is_cpu=False, platform="NVIDIA CUDA"), "auto", None)
    assert gpu.profile is Profile.GPU and not gpu.is_cpu
    assert gpu.loop_lanes(4) == 1  # the device's own preferred width (1 float)


@pytest.mark.parametrize("forced,bits,profile", [("128", 128, Profile.CPU), ("256", 256, Profile.CPU),
                                                 ("512", 512, Profile.CPU), ("gpu", 128, Profile.GPU)])
def test_forced_targets(forced, bits, profile):
    t = describe(info(), forced, None)
    assert (t.vector_bits, t.profile) == (bits, profile)
    assert t.loop_lanes(4) == (min(bits // 32, 4) if profile is Profile.GPU else bits // 32)


def test_probe_verdict_limits_every_width():
    # the probe passed 512-bit floats but not 512-bit ints: no 4-byte type gets 16 lanes
    verified = frozenset({(4, 2), (4, 4), (4, 8), (8, 2), (8, 4)})
    t = describe(info(version="HSTR: pthread-x86_64-unknown-linux-gnu-skylake-avx512"), "auto", verified)
    assert t.vector_bits == 256 and "probe passed only 256-bit" in t.bits_reason
    assert (t.lanes(4), t.lanes(8)) == (8, 4)
    # a width missing in the middle is skipped, never guessed
    t2 = describe(info(version="HSTR: pthread-x86_64-unknown-linux-gnu-skylake-avx512"), "auto",
                  frozenset({(4, 2), (4, 8), (8, 2)}))
    assert (t2.lanes(4), t2.lanes(8)) == (8, 2)
    # the run-time fallback's cap
    assert t.capped(128).lanes(4) == 4 and t.capped(32).lanes(4) == 1
    assert t.key() != t.capped(128).key()


def test_vector_bits_of_source():
    assert vector_bits_of_source("float8 a; int4 b;") == 256
    assert vector_bits_of_source("double8 x") == 512
    assert vector_bits_of_source("float16u* p") == 512          # the unaligned typedefs count
    assert vector_bits_of_source("float x; int y; float2z") == 0
    assert vector_bits_of_source("uchar16 m") == 128


def test_settings_validate_and_override(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TARGET", "384")
    with pytest.raises(ValueError, match="LAZYGRAD_TARGET='384'"):
        config.settings()
    monkeypatch.setenv("LAZYGRAD_TARGET", "128")
    assert config.settings().target == "128"
    with config.override(target="gpu", fuse=False) as s:
        assert s.target == "gpu" and config.settings().fuse is False
    assert config.settings().target == "128" and config.settings().fuse is True
    with pytest.raises(TypeError, match="unknown settings"):
        with config.override(nonsense=1):
            pass
    monkeypatch.delenv("LAZYGRAD_TARGET")
    monkeypatch.setenv("LAZYGRAD_VEC", "4")  # the old lane count maps onto bits
    assert config.settings().target == "128"


# --- fault injection -----------------------------------------------------------------------------
WIDE = """__kernel __attribute__((reqd_work_group_size(16, 1, 1))) void wide(__global float* a) { float16 v; }
__kernel void narrow(__global float* a) { float8 v; }
"""


def test_fault_wrappers_are_selective():
    f = frozenset({"reject512"})
    assert refusal(f, WIDE) and refusal(f, "__kernel void k() { float8 v; }") is None
    assert set(kernel_bodies(WIDE)) == {"wide", "narrow"}
    assert missing_kernels(frozenset({"missing512"}), WIDE) == {"wide"}
    assert missing_kernels(frozenset(), WIDE) == frozenset()


# --- the probe (real child processes on this machine's device) ------------------------------------
def _probe(tmp_path, bits, faults=frozenset(), cache=True):
    dev = lg.device()
    return run_probe(dev.caps, dev.platform_index, dev.device_index, probe_items(bits, dev.caps.fp64),
                     frozenset(faults), str(tmp_path) if cache else None)


def test_probe_expected_values_are_what_the_template_computes():
    s, pout, bout, tot = expected_outputs(ProbeItem("float", 4), True)
    assert s.dtype == np.float32 and pout.dtype == np.int32 and bout.dtype == np.uint8 and tot.shape == (8,)
    s, pout, bout, tot = expected_outputs(ProbeItem("long", 2), True)
    assert s.dtype == np.int64 and pout.dtype == np.float64


def test_probe_passes_this_device_and_caches(tmp_path):
    items = probe_items(256, lg.device().caps.fp64)
    rep = _probe(tmp_path, 256)
    assert not rep.cached and all(rep.verdicts[str(it)] == "ok" for it in items), rep.verdicts
    again = _probe(tmp_path, 256)
    assert again.cached and again.verdicts == rep.verdicts and again.seconds < rep.seconds
    # a torn cache file is not trusted: the probe runs again
    (f,) = (tmp_path / "probe").glob("*.json")
    f.write_text("{not json")
    assert not _probe(tmp_path, 256).cached


@pytest.mark.parametrize("fault,verdict", [("reject512", "build failed"), ("missing512", "kernel missing"),
                                           ("wrongprobe512", "wrong values"), ("abort512", "crashed the process")])
def test_probe_drops_what_the_faulty_device_gets_wrong(tmp_path, fault, verdict):
    items = probe_items(512, lg.device().caps.fp64)
    rep = _probe(tmp_path, 512, {fault}, cache=False)
    for it in items:
        v = rep.verdicts[str(it)]
        if it.bits >= 512:
            assert v.startswith(verdict), (it, v)
        else:
            assert v.startswith("ok"), (it, v)
    verified = rep.verified(items, allow_abi=True)
    assert (4, 16) not in verified and (8, 8) not in verified and (4, 8) in verified
    if fault == "abort512":  # one child per crash, each verdict printed before the next build
        assert rep.children >= 2


def _run(code: str, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAZYGRAD_")}  # only the case's own
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


CORE = """
    import numpy as np, lazygrad as lg
    from lazygrad import Tensor
    x = Tensor(np.arange(4096, dtype=np.float32).reshape(64, 64))
    assert x.sum().item() == 8386560.0
    assert np.array_equal(x.amax(axis=1).numpy(), np.arange(64) * 64 + 63.0)
    assert Tensor.ones(1024).sum().item() == 1024
    assert Tensor.full((7, 8), 8.0, dtype=lg.float64).sum().item() == 448.0
    d = Tensor(np.arange(-20, 20, dtype=np.float64)).reshape(5, 8)
    assert np.array_equal(d.amax(axis=1).numpy(), np.arange(5) * 8 - 13.0)
    l = Tensor(np.arange(16), dtype=lg.int64)
    assert np.array_equal((l + 1).numpy(), np.arange(16) + 1)
    assert np.array_equal(Tensor([1.5] * 8).cast(lg.int64).numpy(), [1] * 8)
    a = np.random.default_rng(0).standard_normal((70, 50)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((50, 90)).astype(np.float32)
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).relu().numpy(), np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)
    s = Tensor(a).softmax(axis=1).numpy()
    np.testing.assert_allclose(s, np.exp(a) / np.exp(a).sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    print("CORE OK", lg.counters.width_fallbacks)
"""


@pytest.mark.parametrize("env,fallbacks", [
    ({"LAZYGRAD_FAULT": "abort512"}, False),                         # probe protects the process
    ({"LAZYGRAD_FAULT": "reject512"}, False),
    ({"LAZYGRAD_FAULT": "wrongprobe512"}, False),
    ({"LAZYGRAD_FAULT": "missing512", "LAZYGRAD_PROBE": "0"}, True),  # run-time fallback
    ({"LAZYGRAD_FAULT": "reject512", "LAZYGRAD_PROBE": "0"}, True),
])
def test_zen4_stand_in_is_right_with_fallbacks(tmp_path, env, fallbacks):
    """A 512-bit target on a device whose compiler cannot do 512 bits: every value right, the
    process alive, and the fallback actually taken."""
    p = _run(CORE, LAZYGRAD_TARGET="512", LAZYGRAD_CACHE_DIR=str(tmp_path), LAZYGRAD_DEBUG="1", **env)
    assert p.returncode == 0, p.stderr[-3000:]
    n = int(re.search(r"CORE OK (\d+)", p.stdout).group(1))
    assert (n > 0) == fallbacks, p.stderr[-2000:]
    if fallbacks:
        assert "built with vectors of at most 256 bits" in p.stderr
    else:
        assert re.search(r"target .*: cpu, 256-bit vectors \(forced LAZYGRAD_TARGET=512; probe passed only 256-bit\)",
                         p.stderr), p.stderr[-2000:]


def test_default_on_a_zen4_description_never_emits_512_bit_vectors(monkeypatch):
    """The default configuration with the Zen 4 device description: 256-bit code only, and right."""
    dev = lg.device()
    fake = dataclasses.replace(dev.caps, version="OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-znver3",
                               reported_float_lanes=16)
    monkeypatch.setattr(dev, "caps", fake)
    monkeypatch.setattr(dev, "_targets", {})
    for v in ("LAZYGRAD_TARGET", "LAZYGRAD_FAULT", "LAZYGRAD_PROBE", "LAZYGRAD_VEC"):  # the default config
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("LAZYGRAD_CACHE", "0")  # the probe runs for the fake description
    x = Tensor(np.arange(4096, dtype=np.float32).reshape(64, 64))
    d = Tensor(np.arange(448, dtype=np.float64))
    outs = [x.sum(), x.amax(axis=1), d.sum(), (d * 2).exp().max(), Tensor(np.arange(16), dtype=lg.int64) + 1,
            (x @ x).relu()]
    for k in lg.schedule(*outs):
        assert vector_bits_of_source(k.source) <= 256, k.name
    assert outs[0].item() == 8386560.0
    assert np.array_equal(outs[1].numpy(), np.arange(64) * 64 + 63.0)
    assert outs[2].item() == 448 * 447 / 2
    a = np.arange(4096, dtype=np.float32).reshape(64, 64)
    np.testing.assert_allclose(outs[5].numpy(), a @ a, rtol=1e-6)


def test_build_error_leaves_a_clean_exit(tmp_path):
    """A kernel that cannot build raises BuildError, and the interpreter still exits 0 (PoCL
    aborts at exit while a failed program is referenced)."""
    p = _run("""
        from lazygrad.runtime import device as runtime
        try:
            runtime.get_kernel("k", "__kernel void k(__global float* a) { a[0] = no_such_function(1.0f); }")
        except runtime.BuildError as e:
            assert "no_such_function" in str(e)
            print("raised")
    """, LAZYGRAD_CACHE_DIR=str(tmp_path))
    assert p.returncode == 0 and "raised" in p.stdout, p.stderr[-2000:]


# --- every code-changing setting is in the plan and program keys ------------------------------------
def test_changing_the_target_mid_process_builds_new_plans(monkeypatch):
    a = np.arange(256, dtype=np.float32).reshape(16, 16)

    def src():
        y = (Tensor(a) * 2 + 1).sum(axis=1)
        built = lg.counters.schedules_built
        np.testing.assert_allclose(y.numpy(), (a * 2 + 1).sum(1))
        return lg.counters.schedules_built - built

    src()
    assert src() == 0                      # same structure, same settings: plan reused
    other = "256" if config.settings().target == "128" else "128"  # (the matrix forces targets)
    monkeypatch.setenv("LAZYGRAD_TARGET", other)
    assert src() == 1                      # another target: a new plan, not the stale one
    (k,) = lg.schedule((Tensor(a) * 2 + 1).sum(axis=1))
    assert vector_bits_of_source(k.source) <= int(other)
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    assert src() == 1


def test_codegen_key_covers_every_code_setting():
    s = config.Settings()
    code_fields = {"fuse", "multi_output", "target", "conv", "conv_cfg", "matmul_pack", "tune", "probe", "fault"}
    for f in code_fields:
        v = getattr(s, f)
        new = (not v) if isinstance(v, bool) else (frozenset({"reject512"}) if f == "fault" else "x")
        assert dataclasses.replace(s, **{f: new}).codegen_key() != s.codegen_key(), f


def test_forced_target_runs_wide_code_on_any_cpu(monkeypatch, tmp_path):
    """LAZYGRAD_TARGET=512 generates 16-float vectors even on a 256-bit CPU (the probe still
    checks their values): the wide code paths are tested on every machine."""
    monkeypatch.setenv("LAZYGRAD_TARGET", "512")
    monkeypatch.delenv("LAZYGRAD_FAULT", raising=False)   # (the matrix's Zen 4 stand-ins)
    monkeypatch.delenv("LAZYGRAD_PROBE", raising=False)
    x = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    y = Tensor(x).exp().sum(axis=1)
    (k,) = lg.schedule(y)
    assert "float16" in k.source
    np.testing.assert_allclose(y.numpy(), torch.from_numpy(x).exp().sum(1).numpy(), rtol=1e-5)


def test_dump_records_the_width_fallback(tmp_path):
    """lazygrad-dump's schedule names the kernel that was rebuilt narrower, and why."""
    script = tmp_path / "s.py"
    script.write_text("import numpy as np, lazygrad as lg\n"
                      "x = lg.Tensor(np.arange(4096, dtype=np.float32).reshape(64, 64))\n"
                      "print(x.exp().sum(axis=1).numpy()[:2])\n")
    p = subprocess.run([sys.executable, "-m", "lazygrad.dump", "--out", str(tmp_path / "out"), str(script)],
                       env={**{k: v for k, v in os.environ.items() if not k.startswith("LAZYGRAD_")},
                            "LAZYGRAD_TARGET": "512", "LAZYGRAD_FAULT": "missing512", "LAZYGRAD_PROBE": "0",
                            "LAZYGRAD_CACHE_DIR": str(tmp_path / "cache")},
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    schedule = (tmp_path / "out" / "schedule.txt").read_text()
    assert "built with vectors of at most 256 bits: the 512-bit build failed" in schedule, schedule
    (src,) = [f for f in (tmp_path / "out").glob("*.cl")]
    assert vector_bits_of_source(src.read_text()) == 256  # the dump holds the source that ran
