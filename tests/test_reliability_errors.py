"""Reliability (issue 8): clear errors for build failures, device out-of-memory and NaN/Inf.

- an OpenCL build failure raises BuildError naming the kernel, with the build log and the
  path of the written source;
- a request larger than the device can allocate raises MemoryError with the requested size,
  and the process goes on with smaller work (no leaked buffers);
- LAZYGRAD_CHECK_NAN=1 names the first kernel producing a non-finite value.
"""
from __future__ import annotations

import os
import re
import uuid

import numpy as np
import pyopencl as cl
import pytest

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.runtime import device as rt
from lazygrad.dtypes import float32
from lazygrad.runtime.device import BuildError, Buffer, get_kernel, launch, memory_stats


def _live() -> int:
    import gc
    gc.collect()
    return memory_stats()["live_buffers"]


def _small_work_is_correct() -> None:
    a = np.arange(37, dtype=np.float32)
    np.testing.assert_allclose((Tensor(a) * 2 + 1).sum().item(), (a * 2 + 1).sum(), rtol=1e-6)


# --- build failures ------------------------------------------------------------------------------
def test_build_error_names_kernel_log_and_written_source() -> None:
    name = f"lg_bad_{uuid.uuid4().hex[:8]}"
    src = f"__kernel void {name}(__global float* a) {{ a[0] = undefined_thing_xyz * 2.0f; }}"
    with pytest.raises(BuildError) as ei:
        get_kernel(name, src)
    msg = str(ei.value)
    assert repr(name) in msg
    assert "build log" in msg and "undefined_thing_xyz" in msg  # the compiler's own diagnostic
    path = re.search(r"source written to (\S+\.cl)", msg).group(1)
    assert open(path).read() == src
    os.remove(path)
    # the runtime is still usable
    good = f"lg_good_{uuid.uuid4().hex[:8]}"
    k = get_kernel(good, f"__kernel void {good}(__global float* a) {{ a[get_global_id(0)] = 7.0f; }}")
    out = Buffer(4, float32)
    launch(k, (4,), None, [out])
    np.testing.assert_array_equal(out.numpy(), np.full(4, 7.0, np.float32))


def test_build_error_survives_unwritable_dump_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setattr("tempfile.tempdir", str(blocker))  # mkdir under a file fails even as root
    name = f"lg_bad_{uuid.uuid4().hex[:8]}"
    with pytest.raises(BuildError) as ei:
        get_kernel(name, f"__kernel void {name}(__global float* a) {{ a[0] = nope_ident; }}")
    msg = str(ei.value)
    assert repr(name) in msg and "nope_ident" in msg and "could not be written" in msg


def test_missing_kernel_name_is_a_build_error() -> None:
    name = f"lg_k_{uuid.uuid4().hex[:8]}"
    with pytest.raises(BuildError, match="has no kernel 'not_there'"):
        get_kernel("not_there", f"__kernel void {name}(__global float* a) {{ a[0] = 1.0f; }}")


# --- device memory -------------------------------------------------------------------------------
def test_allocation_above_device_max_raises_memory_error_then_work_continues() -> None:
    before = _live()
    max_alloc = lg.device().caps.max_alloc
    n = max_alloc // 4 + 1                      # one float more than the largest allocation
    t = Tensor.full((n,), 1.0) + 1              # lazy: nothing allocated yet
    with pytest.raises(MemoryError) as ei:
        t.realize()
    msg = str(ei.value)
    assert str(n * 4) in msg and "max allocation" in msg and str(max_alloc) in msg
    assert f"float32 output ({n},) of kernel" in msg and "test_reliability_errors.py" in msg
    del t
    assert _live() == before                    # the failed realize left nothing behind
    _small_work_is_correct()


def test_huge_tensor_creation_raises_memory_error() -> None:
    before = _live()
    with pytest.raises(MemoryError, match=str(2**40 * 4)):
        Tensor.rand(2**40).realize()
    with pytest.raises(MemoryError):
        (Tensor.ones(2**20, 2**20) * 2).realize()
    assert _live() == before
    _small_work_is_correct()


def test_direct_buffer_above_max_alloc() -> None:
    n = lg.device().caps.max_alloc // 4 + 1
    with pytest.raises(MemoryError, match=f"cannot allocate {n * 4} bytes"):
        Buffer(n, float32)


class _FlakyBuffer:
    """cl.Buffer that fails with the driver's out-of-memory error `fails` times."""

    def __init__(self, real, fails: int) -> None:
        self.real, self.fails, self.calls = real, fails, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.fails:
            raise cl.MemoryError("clCreateBuffer failed: MEM_OBJECT_ALLOCATION_FAILURE")
        return self.real(*args, **kwargs)


def test_driver_out_of_memory_frees_pool_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = lg.device().pool
    Tensor(np.ones(1000, np.float32)).realize()   # something may now sit in the pool
    flaky = _FlakyBuffer(cl.Buffer, fails=1)
    monkeypatch.setattr(cl, "Buffer", flaky)
    b = Buffer(777_777, float32)                   # a size no pooled buffer matches
    assert flaky.calls == 2 and pool.pooled_bytes == 0  # first failure gave the pool back, retry worked
    b.copyin(np.arange(777_777, dtype=np.float32))
    assert b.numpy()[-1] == 777_776


def test_driver_out_of_memory_raises_memory_error_with_size(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _live()
    monkeypatch.setattr(cl, "Buffer", _FlakyBuffer(cl.Buffer, fails=10))
    x = Tensor.full((555_555,), 2.0) * 3
    with pytest.raises(MemoryError, match=r"out of memory allocating 2222220 bytes"):
        x.realize()
    monkeypatch.undo()
    assert _live() == before
    np.testing.assert_allclose(x.numpy()[:3], [6, 6, 6])  # the same tensor realizes once memory is back


def _launch_failure(code: int):
    def fail(*args, **kwargs):
        raise cl.RuntimeError(cl._cl._ErrorRecord(msg=f"clEnqueueNDRangeKernel failed: {code}", code=code,
                                                  routine="clEnqueueNDRangeKernel"))
    return fail


@pytest.mark.parametrize("code", ["OUT_OF_RESOURCES", "MEM_OBJECT_ALLOCATION_FAILURE"])
def test_out_of_memory_at_launch_is_a_memory_error(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Drivers may allocate lazily, so memory can run out when a kernel is enqueued."""
    before = _live()
    x = Tensor(np.arange(40, dtype=np.float32))
    y = (x * 2).exp()
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", _launch_failure(getattr(cl.status_code, code)))
    with pytest.raises(MemoryError, match=r"out of memory or resources launching kernel E_mul_exp_40_\w+ .*buffers of 160, 160 bytes"):
        y.realize()
    r = Tensor.rand(5) * 2                                 # the seeded (RAND) launch path too
    with pytest.raises(MemoryError, match="launching kernel"):
        r.realize()
    monkeypatch.undo()
    np.testing.assert_allclose(y.numpy(), np.exp(np.arange(40) * 2.0), rtol=1e-5)
    del x, y, r
    assert _live() == before


def test_other_launch_errors_are_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", _launch_failure(cl.status_code.INVALID_WORK_GROUP_SIZE))
    with pytest.raises(cl.RuntimeError):
        (Tensor([1.0, 2.0]) * 3).realize()


# --- NaN / Inf checking ----------------------------------------------------------------------------
def test_check_nan_names_first_kernel_with_finite_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "1")
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    s = a.sum(1)                                  # kernel 1: finite row sums
    t = (a - s.reshape(2, 1) + 2.5).log()         # kernel 2: log of negatives -> NaN
    u = t.sum()
    kernels = lg.schedule(u)
    assert len(kernels) == 2
    with pytest.raises(FloatingPointError) as ei:
        u.numpy()
    msg = str(ei.value)
    assert kernels[1].name in msg and kernels[0].name not in msg
    assert "inputs were finite" in msg and "log" in msg
    assert "test_reliability_errors.py" in msg   # points back to the user's line


def test_check_nan_unfused_names_the_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "1")
    monkeypatch.setenv("LAZYGRAD_FUSE", "0")
    x = Tensor([4.0, 1.0, 0.5])
    y = ((x - 1).sqrt() * 2).exp()
    with pytest.raises(FloatingPointError, match=r"kernel E_sqrt_3_\w+ produced nan at index \(2,\)"):
        y.numpy()


def test_check_nan_reports_inf_and_bad_input_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "1")
    with pytest.raises(FloatingPointError, match="produced inf"):
        (Tensor([1.0, 100.0]) * 2).exp().numpy()
    bad = Tensor([1.0, float("nan"), 3.0])
    with pytest.raises(FloatingPointError, match=r"inputs were already non-finite: input 0 \(3,\) \(buffer from "
                                                 r"test_reliability_errors.py:\d+\)"):
        (bad * 2).numpy()


def test_check_nan_off_returns_values_and_ignores_ints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAZYGRAD_CHECK_NAN", raising=False)
    out = Tensor([-1.0, 4.0]).sqrt().numpy()
    assert np.isnan(out[0]) and out[1] == 2.0
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "1")
    np.testing.assert_array_equal((Tensor([7, -3]) // 2).numpy(), [3, -2])  # int kernels are not checked
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "0")
    assert np.isinf(Tensor([1.0]).div(0.0).numpy()[0])


def test_check_nan_in_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZYGRAD_CHECK_NAN", "1")
    x = Tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt().sum()
    np.testing.assert_allclose(y.item(), 2.0)     # forward is finite
    (g,) = lg.grad(y, [x])
    with pytest.raises(FloatingPointError, match="produced inf at index \\(0,\\)"):
        g.numpy()                                  # d sqrt(x)/dx at 0 = inf


def test_runtime_module_exports_stats() -> None:
    st = rt.memory_stats()
    assert set(st) == {"live_buffers", "live_bytes", "pooled_buffers", "pooled_bytes"}
    before = _live()
    keep = Tensor(np.ones(1000, np.float32)).realize()
    assert _live() == before + 1 and memory_stats()["live_bytes"] >= 4000
    del keep
    assert _live() == before
