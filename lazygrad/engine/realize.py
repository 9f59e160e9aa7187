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
from lazygrad.codegen.render import RenderedKernel, render
from lazygrad.runtime.progress import building_plan
from lazygrad.counters import counters
from lazygrad.debug.events import debug_level  # noqa: F401  (re-exported: engine.debug_level)
from lazygrad.ir.graph import IndexCheck, Node, _arg_key, index_checks, toposort
from lazygrad.runtime.lru import LRUCache
from lazygrad.codegen.lower import LoweredKernel, RowFusionError, lower
from lazygrad.codegen.lowered_check import verify_lowered
from lazygrad.ir.ops import Op
from lazygrad.ir.verify import verify_graph
from lazygrad.runtime.device import (Buffer, BuildError, current_target, get_device, get_kernel, launch, narrower, synchronize)
from lazygrad.scheduling.scheduler import Kernel, schedule
from lazygrad.target import vector_bits_of_source
from lazygrad.ir.view import prod


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


@dataclass
class Plan:
    steps: list[Step]
    stored_pos: list[int]       # every node that gets a buffer, in step order
    free_after: dict[int, list[int]]  # step index -> positions whose buffers die after it
    output_pos: list[int]
    empty_pos: list[int]        # zero-size stored nodes: allocated, never computed


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


def _lowered(outputs: list[Node]) -> list[tuple[Kernel, LoweredKernel]]:
    """Schedule and lower; a row-wise fusion that lowering cannot express is undone and the
    graph rescheduled without it."""
    if settings().verify:  # the graph as scheduled (realize checked it too; a plan build is rare)
        verify_graph(toposort(outputs))
    deny: set[int] = set()
    while True:
        kernels = schedule(outputs, frozenset(deny))
        try:
            lowered = [(k, lower(k)) for k in kernels]
        except RowFusionError as e:
            if e.node.uid in deny:
                raise
            deny.add(e.node.uid)
            continue
        if settings().verify:
            for _, lk in lowered:
                verify_lowered(lk)
        return lowered


def _build_plan(nodes: list[Node], outputs: list[Node], pos: dict[int, int]) -> Plan:
    counters.schedules_built += 1
    steps: list[Step] = []
    rendered = [(k, lk, render(lk)) for k, lk in _lowered(outputs)]
    loaded = get_device().programs.prefetch([(rk.name, rk.source) for _, _, rk in rendered])
    debug.target_used(current_target())
    for k, lk, rk in rendered:
        seeds = [pos[n.uid] for n in k.ops if n.op is Op.RAND]
        mark = debug.program_mark()
        rk, clk = _built_kernel(k, lk, rk, count_hit=rk.source not in loaded)
        k.name, k.source, k.global_size, k.local_size = rk.name, rk.source, rk.global_size, rk.local_size
        debug.kernel_built(k, rk, loaded.get(rk.source, mark))
        n_out = len(k.outputs)
        steps.append(Step(rk.name, k.reason, list(k.origins), rk, clk, [pos[o.uid] for o in k.outputs],
                          [pos[i.uid] for i in lk.buffers[n_out:]], seeds, list(k.op_names)))
    # zero-size outputs and intermediates get empty buffers without kernels (the scheduler
    # makes no kernel for them): the outputs, and every stored one a kernel reads
    computed = {p for s in steps for p in s.out_pos}
    read = {p for s in steps for p in s.in_pos if nodes[p].realized is None}
    empty = sorted(({pos[o.uid] for o in outputs if o.realized is None} | read) - computed)
    assert all(nodes[p].numel == 0 for p in empty), "a kernel reads a stored node no kernel computes"
    # liveness: an intermediate's buffer returns to the pool after its last reader
    out_set = {pos[o.uid] for o in outputs}
    last_use: dict[int, int] = {}
    for si, s in enumerate(steps):
        for p in s.in_pos:
            last_use[p] = si
    free_after: dict[int, list[int]] = {}
    for s in steps:
        for p in s.out_pos:
            if p not in out_set:
                free_after.setdefault(last_use.get(p, 0), []).append(p)
    return Plan(steps, [p for s in steps for p in s.out_pos], free_after, [pos[o.uid] for o in outputs], empty)


def _built_kernel(k: Kernel, lk: LoweredKernel, rk: RenderedKernel, count_hit: bool) -> tuple[RenderedKernel, object]:
    """The rendered kernel and its built OpenCL kernel. A kernel whose build fails or that is
    missing from its program is rendered again one vector width narrower, down to scalar
    code; the kernel's reason records the fallback (LAZYGRAD_DEBUG=1 and the dump show it)."""
    first_error = None
    while True:
        try:
            return rk, get_kernel(rk.name, rk.source, count_hit=count_hit)
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
            note = (f"built with vectors of at most {used // 2} bits: the {used}-bit build failed "
                    f"({str(e).splitlines()[-1][:160]})")
            k.reason = f"{k.reason}; {note}" if k.reason else note
            counters.width_fallbacks += 1
            debug.width_fallback(rk.name, narrow.name, note)
            rk = narrow


def realize(outputs: list[Node]) -> None:
    """Compute every node in `outputs` that has no buffer yet; set its `realized`."""
    outputs = [o for o in dict.fromkeys(outputs) if o.realized is None]
    if not outputs:
        return
    nodes = toposort(outputs)
    if settings().verify:  # every realize: a cached plan's graph may still bind a bad buffer
        verify_graph(nodes)
    if settings().check_index:
        checks = index_checks(nodes)
        if checks:
            _verify_indices(checks)
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
    for p in plan.empty_pos:
        n = nodes[p]
        n.realized = Buffer(0, n.dtype)
    for si, step in enumerate(plan.steps):
        args = []
        for p in step.out_pos:
            out = nodes[p]
            try:
                bufs[p] = Buffer(prod(out.shape), out.dtype)
            except MemoryError as e:
                raise MemoryError(f"{e}; needed for the {out.dtype.name} output {tuple(out.shape)} of kernel "
                                  f"{step.name} (from {', '.join(step.origins)})") from None
            args.append(bufs[p])
        for p in step.in_pos:
            n = nodes[p]
            args.append(n.realized if n.realized is not None else bufs[p])
        # RAND seeds are scalar arguments after the buffers: new seeds reuse the program
        seeds = tuple(np.uint32(nodes[p].arg & 0xFFFFFFFF) for p in step.seed_pos)
        ev = launch(step.clkernel, step.rendered.global_size, step.rendered.local_size, args, timed, seeds)
        counters.bytes_moved += step.rendered.bytes
        counters.flops += step.rendered.flops
        debug.kernel_launched(None, step.rendered, ev)
        if check_nan:
            for p in step.out_pos:
                _check_finite(step, nodes[p], bufs[p], args[len(step.out_pos):], [nodes[q] for q in step.in_pos])
        for p in plan.free_after.get(si, []):
            bufs.pop(p, None)
    for p in plan.output_pos:
        n = nodes[p]
        if n.realized is None:
            n.realized = bufs[p]
    if timed:
        synchronize()


def _check_finite(step: Step, out: Node, ob: Buffer, inputs: list[Buffer], in_nodes: list[Node]) -> None:
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
    """The kernels realizing `outputs` would launch, rendered but not run (a list that
    prints as a table)."""
    outputs = [o for o in dict.fromkeys(outputs) if o.realized is None]
    lowered = _lowered(outputs)
    kernels = [k for k, _ in lowered]
    for k, lk in lowered:
        rk = render(lk)
        k.name, k.source, k.global_size, k.local_size = rk.name, rk.source, rk.global_size, rk.local_size
    return debug.ScheduleTable(kernels)
