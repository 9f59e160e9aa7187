"""Realize: schedule a set of lazy nodes, render and compile their kernels, run them.

A plan (kernels, launch sizes, which buffer goes where, when each intermediate dies) is cached
by the *structure* of the graph, so a training step that rebuilds the same graph with new
buffers skips scheduling, rendering and compiling: it only walks the graph once to find the
key and binds the new buffers.

Public names: realize, schedule_kernels, Plan, debug_level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lazygrad.config import settings
from lazygrad.debug import events as debug
from lazygrad.codegen.dispatch import render as _render_with
from lazygrad.codegen.render import RenderedKernel
from lazygrad.engine.tuning import matmul_config
from lazygrad.runtime.progress import building_plan
from lazygrad.counters import counters
from lazygrad.dtypes import DType
from lazygrad.debug.events import debug_level  # noqa: F401  (re-exported: engine.debug_level)
from lazygrad.ir.graph import IndexCheck, Iota, Node, _arg_key, index_checks, toposort
from lazygrad.runtime.lru import LRUCache
from lazygrad.codegen.lower import LoweredKernel, RowFusionError, lower
from lazygrad.codegen.lowered_check import verify_lowered
from lazygrad.ir.ops import Op
from lazygrad.ir.verify import verify_graph
from lazygrad.runtime.device import (Buffer, BuildError, current_target, get_device, get_kernel, launch, narrower, synchronize)
from lazygrad.engine.scheduled import NarrowerBuild, ScheduledKernel
from lazygrad.scheduling.scheduler import Kernel, schedule
from lazygrad.target import vector_bits_of_source
from lazygrad.ir.view import prod
from lazygrad import passes


@dataclass
class Step:
    # no Node references here: a cached plan must not keep the graph it was built from alive
    name: str
    reason: str
    origins: list[str]
    rendered: RenderedKernel
    clkernel: object
    out_pos: list[int]          # positions (in the graph's topological order) of the outputs
    in_pos: list[int]
    seed_pos: list[int]         # RAND nodes whose seeds are scalar kernel arguments
    op_names: list[str]         # fused ops (for LAZYGRAD_CHECK_NAN messages)


@dataclass(frozen=True)
class Slot:
    """A stored node the graph passes made (a packed panel, a partial reduction): no node of
    the realized graph stands for it, so the plan keeps what its buffer and messages need
    (no Node reference: a cached plan must not keep a graph alive)."""

    shape: tuple[int, ...]
    dtype: DType
    op: Op
    origin: str

    @property
    def numel(self) -> int:
        return prod(self.shape)


def _described(nodes: list[Node], slots: dict[int, Slot], p: int) -> Node | Slot:
    return slots[p] if p in slots else nodes[p]


@dataclass
class Plan:
    steps: list[Step]
    stored_pos: list[int]       # every node that gets a buffer, in step order
    free_after: dict[int, list[int]]  # step index -> positions whose buffers die after it
    output_pos: list[int]       # where each output's value is computed (a slot if a pass replaced it)
    empty_pos: list[int]        # zero-size stored nodes: allocated, never computed
    slots: dict[int, Slot]      # positions past the realized graph's nodes: nodes the passes made
    output_of: list[int]        # position of each output in the realized graph (== output_pos unless replaced)


_plans: LRUCache[tuple, Plan] = LRUCache("plan", lambda: settings().plan_cache)


def _structure_key(nodes: list[Node], outputs: list[Node]) -> tuple[tuple, dict[int, int]]:
    pos = {n.uid: i for i, n in enumerate(nodes)}
    parts: list[tuple] = []
    for n in nodes:
        if n.realized is not None:
            parts.append(("R", n.shape, n.dtype.name))
        elif n.op is Op.RAND:
            parts.append(("RAND", n.shape, n.dtype.name))
        else:
            parts.append((n.op, _arg_key(n.arg), n.shape, n.dtype.name, tuple(pos[s.uid] for s in n.srcs)))
    # every setting that changes generated code, and the target the code is for
    key = (tuple(parts), tuple(pos[o.uid] for o in outputs), settings().codegen_key(), current_target().key())
    return key, pos


def render(lk: LoweredKernel) -> RenderedKernel:
    """Codegen's render, with the matmul tile tuned here (tuning launches kernels)."""
    return _render_with(lk, matmul_config(lk))


def _lowered(outputs: list[Node]) -> list[tuple[Kernel, LoweredKernel]]:
    """Schedule and lower `outputs` (already through the graph passes); a row-wise fusion
    that lowering cannot express is undone and the graph rescheduled without it."""
    if settings().verify:  # the graph as scheduled, after the passes (realize checked the user's)
        verify_graph(toposort(outputs))
    deny: set[int] = set()
    while True:
        kernels = schedule(outputs, frozenset(deny))
        try:
            lowered = [(k, lower(k)) for k in kernels]
        except RowFusionError as e:
            # the scheduler's row_broadcast_read is meant to make this unreachable: a retry is a
            # scheduler bug, kept as a safety net so the user still gets right numbers, counted
            # so the fuzzer and tests/test_laws.py fail on it
            if e.node.uid in deny:
                raise
            counters.row_fusion_retries += 1
            deny.add(e.node.uid)
            continue
        if settings().verify:
            for _, lk in lowered:
                verify_lowered(lk)
        return lowered


def _check_dtypes(nodes: list[Node]) -> None:
    """A TypeError, naming the op and the user's line, for a value of a dtype the device cannot
    compute in (float16 without cl_khr_fp16, float64 without fp64, int64 on an embedded-profile
    device without cles_khr_int64: the index results of argmax, sort, ... are int64): checked
    here, once per plan, because building the graph never asks the device."""
    dev = get_device()
    for n in nodes:
        if n.dtype.name in ("float16", "float64", "int64") and n.realized is None and not dev.supports(n.dtype):
            raise TypeError(f"{n.label or n.op.value}: the OpenCL device {dev.caps.name!r} does not support "
                            f"{n.dtype.name} (from {n.origin})")


def _build_plan(nodes: list[Node], outputs: list[Node], pos: dict[int, int]) -> Plan:
    counters.schedules_built += 1
    _check_dtypes(nodes)
    steps: list[Step] = []
    computed = passes.run(outputs, current_target())
    pos = dict(pos)
    slots: dict[int, Slot] = {}

    def at(n: Node) -> int:
        """The plan position of n: its own in the realized graph, or a slot for a node a pass made."""
        p = pos.get(n.uid)
        if p is None:
            p = pos[n.uid] = len(nodes) + len(slots)
            slots[p] = Slot(n.shape, n.dtype, n.op, n.origin)
        return p

    rendered = [(k, lk, render(lk)) for k, lk in _lowered(computed)]
    loaded = get_device().programs.prefetch([(rk.name, rk.source) for _, _, rk in rendered])
    debug.target_used(current_target())
    for k, lk, rk in rendered:
        seeds = [pos[n.uid] for n in k.ops if n.op is Op.RAND]
        mark = debug.program_mark()
        rk, clk, notes = _built_kernel(lk, rk, count_hit=rk.source not in loaded)
        sk = ScheduledKernel(k, rk, notes)
        debug.kernel_built(sk, rk, loaded.get(rk.source, mark))
        n_out = len(k.outputs)
        steps.append(Step(rk.name, sk.reason, list(k.origins), rk, clk, [at(o) for o in k.outputs],
                          [at(i) for i in lk.buffers[n_out:]], seeds, list(k.op_names)))
    # zero-size outputs and intermediates get empty buffers without kernels (the scheduler
    # makes no kernel for them): the outputs, and every stored one a kernel reads
    made = {p for s in steps for p in s.out_pos}
    read = {p for s in steps for p in s.in_pos if p in slots or nodes[p].realized is None}
    out_pos = [at(c) for c in computed]
    empty = sorted((set(out_pos) | read) - made)
    assert all((slots[p].numel if p in slots else nodes[p].numel) == 0 for p in empty), \
        "a kernel reads a stored node no kernel computes"
    # liveness: an intermediate's buffer returns to the pool after its last reader
    out_set = set(out_pos)
    last_use: dict[int, int] = {}
    for si, s in enumerate(steps):
        for p in s.in_pos:
            last_use[p] = si
    free_after: dict[int, list[int]] = {}
    for s in steps:
        for p in s.out_pos:
            if p not in out_set:
                free_after.setdefault(last_use.get(p, 0), []).append(p)
    return Plan(steps, [p for s in steps for p in s.out_pos], free_after, out_pos, empty, slots,
                [pos[o.uid] for o in outputs])


def _built_kernel(lk: LoweredKernel, rk: RenderedKernel, count_hit: bool
                  ) -> tuple[RenderedKernel, object, tuple[NarrowerBuild, ...]]:
    """The rendered kernel, its built OpenCL kernel and the fallbacks it took. A kernel whose
    build fails or that is missing from its program is rendered again one vector width
    narrower, down to scalar code; each fallback is a note the kernel's reason ends with
    (LAZYGRAD_DEBUG=1 and the dump show it)."""
    first_error = None
    notes: tuple[NarrowerBuild, ...] = ()
    while True:
        try:
            return rk, get_kernel(rk.name, rk.source, count_hit=count_hit), notes
        except BuildError as e:
            used = vector_bits_of_source(rk.source)
            if used <= 32:
                if first_error is None:
                    raise
                raise BuildError(f"{e}\n(after narrower retries; the first failure: {first_error})") from None
            first_error = first_error or str(e).splitlines()[-1][:300]
            with narrower(used // 2):
                narrow = render(lk)
            if vector_bits_of_source(narrow.source) >= used:
                raise
            note = NarrowerBuild(used // 2, used, str(e).splitlines()[-1][:160])
            notes += (note,)
            counters.width_fallbacks += 1
            debug.width_fallback(rk.name, narrow.name, str(note))
            rk = narrow


def _fill_host_buffers(nodes: list[Node]) -> None:
    """Upload the BUFFER nodes the graph made without the device (ir.graph.Iota)."""
    for n in nodes:
        if n.op is Op.BUFFER and n.realized is None:
            assert isinstance(n.arg, Iota), n
            max_alloc = get_device().caps.max_alloc
            if n.numel * n.dtype.itemsize > max_alloc:  # before the host array: np.arange(2**33) is 64 GiB
                raise MemoryError(f"{n.label or 'arange'}: {n.numel} elements of {n.dtype.name} "
                                  f"({n.numel * n.dtype.itemsize} bytes) are more than the device "
                                  f"{get_device().caps.name!r} can allocate in one buffer ({max_alloc} bytes)")
            n.realized = Buffer.from_numpy(np.arange(n.arg.n, dtype=n.dtype.np), n.dtype)


def realize(outputs: list[Node]) -> None:
    """Compute every node in `outputs` that has no buffer yet; set its `realized`."""
    outputs = [o for o in dict.fromkeys(outputs) if o.realized is None]
    if not outputs:
        return
    nodes = toposort(outputs)
    _fill_host_buffers(nodes)
    outputs = [o for o in outputs if o.realized is None]
    if not outputs:
        return
    if settings().verify:  # every realize: a cached plan's graph may still bind a bad buffer
        verify_graph(nodes)
    if settings().check_index:
        checks = index_checks(nodes)
        if checks:
            _verify_indices(checks)
            # the check's own realize may have computed some of these nodes (an index that is
            # itself an output, or read through another gather): walk the graph again from what
            # is still lazy, or a plan would read nodes it no longer computes
            outputs = [o for o in outputs if o.realized is None]
            if not outputs:
                return
            nodes = toposort(outputs)
    mark = debug.RealizeMark.take()
    counters.realizes += 1
    key, pos = _structure_key(nodes, outputs)
    plan = _plans.get(key)
    plan_cached = plan is not None
    if plan is None:
        with building_plan():  # a progress line when rendering and compiling take long
            plan = _build_plan(nodes, outputs, pos)
        _plans.put(key, plan)
    else:
        counters.schedule_cache_hits += 1
    run_plan(plan, nodes)
    debug.realize_done(mark, len(plan.steps), plan_cached)


def _verify_indices(checks: list[IndexCheck]) -> None:
    """LAZYGRAD_CHECK_INDEX=1: compute the lazy tensor indices this realize reads through
    (one realize of their own, before anything is computed from them) and raise IndexError at
    the first value out of range, naming the op, the index and the size."""
    realize([c.index for c in checks])
    for c in checks:
        vals = c.index.realized.numpy()
        bad = (vals < -c.size) | (vals >= c.size)
        if bad.any():
            v = int(vals[np.argmax(bad)])
            raise IndexError(f"{c.op}: index {v} is out of bounds for {c.where} with size {c.size} "
                             f"({int(bad.sum())} of {vals.size} indices out of range; LAZYGRAD_CHECK_INDEX=1)")


def run_plan(plan: Plan, nodes: list[Node]) -> None:
    check_nan = settings().check_nan
    timed = counters.timing or debug.wants_timing()
    get_device().set_timing(timed)
    bufs: dict[int, Buffer] = {}
    slots = plan.slots
    for p in plan.empty_pos:
        bufs[p] = Buffer(0, slots[p].dtype if p in slots else nodes[p].dtype)
    for si, step in enumerate(plan.steps):
        args = []
        for p in step.out_pos:
            out = _described(nodes, slots, p)
            try:
                bufs[p] = Buffer(out.numel, out.dtype)
            except MemoryError as e:
                raise MemoryError(f"{e}; needed for the {out.dtype.name} output {tuple(out.shape)} of kernel "
                                  f"{step.name} (from {', '.join(step.origins)})") from None
            args.append(bufs[p])
        for p in step.in_pos:
            realized = None if p in slots else nodes[p].realized
            args.append(realized if realized is not None else bufs[p])
        # RAND seeds are scalar arguments after the buffers: new seeds reuse the program
        seeds = tuple(np.uint32(nodes[p].arg & 0xFFFFFFFF) for p in step.seed_pos)
        ev = launch(step.clkernel, step.rendered.global_size, step.rendered.local_size, args, timed,
                    seeds + step.rendered.scalars)
        counters.bytes_moved += step.rendered.bytes
        counters.flops += step.rendered.flops
        debug.kernel_launched(None, step.rendered, ev)
        if check_nan:
            for p in step.out_pos:
                _check_finite(step, _described(nodes, slots, p), bufs[p], args[len(step.out_pos):],
                              [_described(nodes, slots, q) for q in step.in_pos])
        for p in plan.free_after.get(si, []):
            bufs.pop(p, None)
    for p, q in zip(plan.output_of, plan.output_pos):
        n = nodes[p]
        if n.realized is None:
            n.realized = bufs[q]
    if timed:
        synchronize()


def _check_finite(step: Step, out: Node | Slot, ob: Buffer, inputs: list[Buffer], in_nodes: list[Node | Slot]) -> None:
    """LAZYGRAD_CHECK_NAN=1: stop at the first kernel whose output holds NaN or Inf, naming
    the kernel, the user lines its ops came from, and whether its inputs were already bad."""
    if not out.dtype.is_float:
        return
    vals = ob.numpy()
    finite = np.isfinite(vals)
    if finite.all():
        return
    bad = int(np.argmin(finite))
    where = np.unravel_index(bad, out.shape) if out.shape else ()
    bad_inputs = [f"input {i} {tuple(n.shape)} ({n.op.value} from {n.origin})"
                  for i, (b, n) in enumerate(zip(inputs, in_nodes))
                  if n.dtype.is_float and b.nbytes and not np.isfinite(b.numpy()).all()]
    ops = step.op_names
    cause = (f"its inputs were already non-finite: {'; '.join(bad_inputs)}" if bad_inputs else
             "all its inputs were finite, so this kernel created it" +
             (" (LAZYGRAD_FUSE=0 runs one op per kernel to find which op)" if len(ops) > 1 else ""))
    raise FloatingPointError(
        f"lazygrad (LAZYGRAD_CHECK_NAN): kernel {step.rendered.name} produced {vals[bad]} at index "
        f"{tuple(int(i) for i in where)} of its output {tuple(out.shape)} {out.dtype.name} "
        f"({int((~finite).sum())} of {vals.size} values non-finite); {cause}. "
        f"Fused ops: {' '.join(ops) or 'copy'}; from {', '.join(step.origins)}")


def schedule_kernels(outputs: list[Node]) -> debug.ScheduleTable:
    """The kernels realizing `outputs` would launch, rendered but not run (a list of
    ScheduledKernel that prints as a table)."""
    outputs = [o for o in dict.fromkeys(outputs) if o.realized is None]
    _fill_host_buffers(toposort(outputs))
    outputs = [o for o in outputs if o.realized is None]
    return debug.ScheduleTable(ScheduledKernel(k, render(lk)) for k, lk in _lowered(passes.run(outputs, current_target())))
