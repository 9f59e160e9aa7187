"""Seeing what realize() did: LAZYGRAD_DEBUG output, observers of built and launched kernels,
and the readable form of a schedule.

The engine reports three events here and nowhere else:
- `kernel_built`    a plan was built and one of its kernels got a program (compiled, or found
                    in the memory or disk cache);
- `kernel_launched` a kernel was enqueued (with its OpenCL event);
- `realize_done`    a realize() finished.
Each event is printed to stderr according to LAZYGRAD_DEBUG and forwarded to every registered
`Observer` (the dump tool is one). Levels:
  1  one line per realize: kernels launched, plan cache hit or built, programs compiled /
     cached, host time;
  2  one line per kernel launch: name, global/local size, device time, GB/s, GFLOP/s — for
     the first run of each plan (sequence of kernels); a repeated step (a training loop) gets
     one summary line instead, with its device time and the realize that listed its launches;
  3  fusion decisions when a plan is built: why each kernel's output is stored, and for each
     input why it was not fused;
  4  the OpenCL source of each kernel new to this process (compiled or loaded from disk).

Public names: debug_level, Observer, add_observer, remove_observer, wants_timing, program_mark,
RealizeMark, RealizeInfo, LaunchLog, kernel_built, kernel_launched, realize_done, event_seconds,
node_str, shape_str, format_table, ScheduleTable.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lazygrad.config import settings
from lazygrad.counters import counters
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op

if TYPE_CHECKING:  # annotations only: the engine, above, makes ScheduledKernels and calls these hooks
    from lazygrad.engine.scheduled import ScheduledKernel


PREFIX = "[lazygrad]"


def debug_level() -> int:
    """LAZYGRAD_DEBUG as an int (0 when unset or not a number)."""
    try:
        return settings().debug
    except ValueError:
        return 0


# --- formatting helpers ---------------------------------------------------------------------
def shape_str(shape: tuple[int, ...]) -> str:
    """(16,32) — compact, so tables stay narrow; (32,) keeps its comma."""
    return "(" + ",".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def node_str(n: Node) -> str:
    """'add (16,32) float32'."""
    return f"{n.op.value} {shape_str(n.shape)} {n.dtype.name}"


def size_str(sz: tuple[int, ...] | None) -> str:
    return "auto" if sz is None else "x".join(str(s) for s in sz)


def event_seconds(ev: Any) -> float:
    """Device time of a finished, profiled OpenCL event."""
    return (ev.profile.end - ev.profile.start) * 1e-9


def format_table(rows: list[list[str]], right: frozenset[int] | set[int] = frozenset()) -> list[str]:
    """Rows as aligned columns (columns in `right` right-aligned); the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(len(r) - 1)]
        out.append("  ".join(cells + [r[-1]]).rstrip())
    return out


# --- events ---------------------------------------------------------------------------------
@dataclass
class RealizeMark:
    """Counters at the start of a realize, to report what this realize alone did."""

    t0: float
    compiled: int
    cache_hits: int

    @staticmethod
    def take() -> RealizeMark:
        # a realize starts: launches left over from one that raised are printed as they are
        _flush_launches()
        return RealizeMark(time.perf_counter(), counters.programs_compiled, counters.cache_hits)


@dataclass
class RealizeInfo:
    index: int                  # counters.realizes of this realize (1-based)
    kernels: int                # kernels launched
    plan_cached: bool           # the plan came from the structure-keyed plan cache
    compiled: int               # programs compiled during this realize
    cache_hits: int             # programs found in the memory or disk cache during it
    host_seconds: float


def program_mark() -> tuple[int, int]:
    """Taken before asking the runtime for a program; `kernel_built` turns it into a status."""
    return counters.programs_compiled, counters.disk_cache_hits


def _program_status(mark: tuple[int, int] | str) -> str:
    if isinstance(mark, str):  # known already (programs built ahead, several at a time)
        return mark
    if counters.programs_compiled > mark[0]:
        return "compiled"
    if counters.disk_cache_hits > mark[1]:
        return "disk cache"
    return "memory cache"


class Observer:
    """Receives every kernel built and launched and every realize. Subclass and override;
    register with `add_observer`. `timing` asks the engine for profiled events."""

    timing: bool = True

    def kernel_built(self, kernel: ScheduledKernel, rendered: Any, program: str) -> None:
        """`rendered` is the codegen.RenderedKernel; program is compiled|disk cache|memory cache."""

    def kernel_launched(self, kernel: ScheduledKernel | None, rendered: Any, event: Any) -> None:
        """`event` is the OpenCL event; it is finished by the time `realize_done` is called
        when timing was requested."""

    def realize_done(self, info: RealizeInfo) -> None:
        """A realize finished (not called when it raised)."""


_observers: list[Observer] = []


def add_observer(obs: Observer) -> None:
    _observers.append(obs)


def remove_observer(obs: Observer) -> None:
    if obs in _observers:
        _observers.remove(obs)


def wants_timing() -> bool:
    """Whether launches must be profiled for debug output or an observer."""
    return debug_level() >= 2 or any(o.timing for o in _observers)


# --- what the engine calls ------------------------------------------------------------------
def kernel_built(kernel: ScheduledKernel, rendered: Any, mark: tuple[int, int] | str) -> None:
    status = _program_status(mark)
    level = debug_level()
    if level >= 3:
        print("\n".join(fusion_lines(kernel, status)), file=sys.stderr)
    if level >= 4 and status != "memory cache":  # a memory-cache hit was printed when first built
        print(f"{PREFIX} source of {kernel.name}:\n{rendered.source.rstrip()}", file=sys.stderr)
    for o in list(_observers):
        o.kernel_built(kernel, rendered, status)


_targets_shown: set[tuple] = set()


def target_used(target: Any) -> None:
    """LAZYGRAD_DEBUG>=1: one line per target the first time a plan is built for it."""
    if debug_level() >= 1 and target.key() not in _targets_shown:
        _targets_shown.add(target.key())
        print(f"{PREFIX} {target.describe()}", file=sys.stderr)


def width_fallback(failed: str, rebuilt: str, note: str) -> None:
    """A kernel did not build at its width and was rendered narrower."""
    if debug_level() >= 1:
        print(f"{PREFIX} kernel {failed}: {note}; now {rebuilt}", file=sys.stderr)
    for o in list(_observers):
        getattr(o, "width_fallback", lambda *a: None)(failed, rebuilt, note)


@dataclass
class LaunchLog:
    """LAZYGRAD_DEBUG>=2: the launches of the realize in progress, printed when it ends — in
    full the first time its sequence of kernels (its plan) runs, and as one summary line after
    that, so a training loop shows each step's kernels once instead of every step's."""

    pending: list[tuple[str, str, float]]   # (kernel name, launch line, device seconds)
    listed_by: dict[tuple[str, ...], int]   # kernel sequence -> the realize that printed it


_launches = LaunchLog([], {})


def _flush_launches() -> None:
    for _, line, _ in _launches.pending:
        print(line, file=sys.stderr)
    _launches.pending.clear()


def kernel_launched(kernel: ScheduledKernel | None, rendered: Any, event: Any) -> None:
    if debug_level() >= 2:
        event.wait()
        seconds = event_seconds(event)
        _launches.pending.append((rendered.name, launch_line(rendered, seconds), seconds))
    for o in list(_observers):
        o.kernel_launched(kernel, rendered, event)


def _launch_summary(info: RealizeInfo) -> str:
    """The launches of this realize: printed (first run of its kernel sequence) or summarised;
    returns the text that ends its realize line."""
    seq = tuple(name for name, _, _ in _launches.pending)
    device = sum(sec for _, _, sec in _launches.pending)
    first = _launches.listed_by.get(seq)
    if first is None or not seq:
        _launches.listed_by.setdefault(seq, info.index)
        _flush_launches()
        return f"  device {device * 1e3:9.3f} ms"
    _launches.pending.clear()
    return f"  device {device * 1e3:9.3f} ms  launches as realize #{first}"


def realize_done(mark: RealizeMark, kernels: int, plan_cached: bool) -> None:
    if not _observers and debug_level() < 1:
        return  # the common case: keep a plan-cached realize cheap
    info = RealizeInfo(counters.realizes, kernels, plan_cached, counters.programs_compiled - mark.compiled,
                       counters.cache_hits - mark.cache_hits, time.perf_counter() - mark.t0)
    level = debug_level()
    if level >= 1:
        print(realize_line(info) + (_launch_summary(info) if level >= 2 else ""), file=sys.stderr)
    for o in list(_observers):
        o.realize_done(info)


# --- the lines each level prints ------------------------------------------------------------
def realize_line(info: RealizeInfo) -> str:
    plan = "plan cached" if info.plan_cached else "plan built "
    return (f"{PREFIX} realize #{info.index:<4} {info.kernels:3d} kernels  {plan}  "
            f"programs: {info.compiled:3d} compiled {info.cache_hits:3d} cached  "
            f"host {info.host_seconds * 1e3:9.3f} ms")


def launch_line(rendered: Any, seconds: float) -> str:
    dt = max(seconds, 1e-9)
    return (f"{PREFIX}   {rendered.name:<36} global {size_str(rendered.global_size):>9} "
            f"local {size_str(rendered.local_size):>5}  {seconds * 1e3:9.3f} ms "
            f"{rendered.bytes / dt / 1e9:8.2f} GB/s {rendered.flops / dt / 1e9:8.2f} GFLOP/s")


def labelled_node_str(n: Node) -> str:
    """`relu where (64,16) float32`: the user-level op, then the primitive node."""
    return f"{n.label} {node_str(n)}" if n.label and n.op is not Op.BUFFER and n.label != n.op.value else node_str(n)


def fusion_lines(kernel: ScheduledKernel, program: str = "") -> list[str]:
    """Why `kernel` ends where it does: its stored output and each unfused input."""
    status = f", {program}" if program else ""
    head = f"{PREFIX} kernel {kernel.name} ({kernel.kind.value}{status}): {kernel.user_summary()}"
    rows = [[f"{PREFIX}", "  stores", labelled_node_str(kernel.output), f"because {kernel.reason}"]]
    for i, n in enumerate(kernel.inputs, 1):
        rows.append([f"{PREFIX}", f"  input {i}", labelled_node_str(n),
                     f"not fused: {kernel.edge_reasons.get(n.uid, '?')}"])
    prims = " ".join(kernel.op_names) or "copy"
    return [head] + format_table(rows) + [f"{PREFIX}     primitives: {prims}"]


# --- lg.schedule() in a REPL ----------------------------------------------------------------
class ScheduleTable(list):
    """The kernels of a schedule (a plain list of `ScheduledKernel`s) that prints as a table."""

    def __getitem__(self, i: Any) -> Any:
        got = super().__getitem__(i)
        return ScheduleTable(got) if isinstance(i, slice) else got

    def rows(self) -> list[list[str]]:
        rows = [["#", "kernel", "kind", "output", "inputs", "ops", "stored because"]]
        for i, k in enumerate(self):
            ins = " ".join(shape_str(n.shape) for n in k.inputs) or "-"
            rows.append([str(i), k.name or "?", k.kind.value, f"{shape_str(k.output.shape)} {k.output.dtype.name}",
                         ins, str(len(k.op_names)), k.reason])
        return rows

    def __str__(self) -> str:
        n = len(self)
        head = f"schedule: {n} kernel{'s' if n != 1 else ''}"
        return "\n".join([head] + ["  " + line for line in format_table(self.rows(), right={0, 5})]) if n else head

    __repr__ = __str__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython
        p.text(str(self))
