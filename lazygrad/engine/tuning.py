"""Matmul tile tuning: time the candidate tiles of a large product once per device and shape
class, and render with the fastest.

Tuning launches kernels, so it is the engine's job, not codegen's: codegen renders whatever
config it is given (the heuristic tile when none), runtime.tune keeps the choices on disk.

Public names: matmul_config, time_rendered, TUNE_MIN_PRODUCT.
"""
from __future__ import annotations

import numpy as np

from lazygrad.codegen.dispatch import unique_name
from lazygrad.codegen.lower import LoweredKernel
from lazygrad.codegen.render import MatmulGeometry, RenderedKernel, _render_matmul, matmul_candidates
from lazygrad.ir.view import prod
from lazygrad.runtime import tune
from lazygrad.runtime.device import Buffer, get_device, get_kernel
from lazygrad.runtime.tune import MatmulConfig
from lazygrad.scheduling.kinds import KernelKind

# Below this many multiply-adds the heuristic tile is within noise of the tuned one (measured:
# the 784-512-512-10 MLP step at batch 256 runs 8.2 ms heuristic vs 8.3 ms tuned), while tuning
# costs a build and a first launch per candidate: ~10 s of a first training step.
TUNE_MIN_PRODUCT = 512 ** 3


def matmul_config(lk: LoweredKernel) -> MatmulConfig | None:
    """The tile to render a matmul kernel with (None for other kernels)."""
    if lk.kernel.kind is not KernelKind.MATMUL:
        return None
    geo = MatmulGeometry.of(lk)
    heur, cands = matmul_candidates(geo)
    if geo.m * geo.n * geo.k * geo.batch_size < TUNE_MIN_PRODUCT:
        return heur  # too small for the choice to matter
    shape_class = geo.shape_class(lk.kernel.output.dtype)
    if tune.tuning_enabled() and tune.cached("matmul", shape_class, cands) is None:
        # build every candidate as one program first (one build instead of one per candidate)
        rendered = {c.key(): unique_name(_render_matmul(lk, geo, c)) for c in cands}
        get_device().programs.prefetch([(rk.name, rk.source) for rk in rendered.values()])
        return tune.choose("matmul", shape_class, cands, heur, lambda c: time_rendered(lk, rendered[c.key()]))
    return tune.choose("matmul", shape_class, cands, heur,
                       lambda c: time_rendered(lk, _render_matmul(lk, geo, c)))


def time_rendered(lk: LoweredKernel, rk: RenderedKernel, reps: int = 3) -> float:
    """Seconds of one launch of a rendered kernel on scratch buffers (min of `reps`)."""
    dev = get_device()
    clk = get_kernel(rk.name, rk.source)
    bufs = [Buffer(max(1, prod(n.shape)), n.dtype).copyin(np.zeros(max(1, prod(n.shape)), n.dtype.np))
            for n in lk.buffers]
    clk.set_args(*[b.cl_buf for b in bufs])
    was_timing = dev.timing
    dev.set_timing(True)  # the profiling queue
    best = float("inf")
    try:
        for _ in range(reps + 1):  # the first launch also builds the work-group function: not timed
            # enqueued directly: tuning launches are not the user's kernels (lg.counters)
            ev = dev.cl.enqueue_nd_range_kernel(dev.queue, clk, rk.global_size, rk.local_size)
            ev.wait()
            if _:
                best = min(best, (ev.profile.end - ev.profile.start) * 1e-9)
    finally:
        dev.set_timing(was_timing)
    return best
