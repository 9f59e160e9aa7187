"""lazygrad-dump: run a Python script and write down every kernel it built and launched.

    lazygrad-dump [--out DIR] [--explain] [--op-graph] script.py [args...]
    python -m lazygrad.dump [--out DIR] [--explain] [--op-graph] script.py [args...]

The script runs unchanged (runpy, with sys.argv set) while a `debug.Observer` records each
kernel the engine builds and every launch. Kernels are named by the user-level ops they fuse
(`R_relu_max_pool2d_...`); the primitives those are made of are one level deeper (schedule.txt,
the .cl comments). Then DIR (default ./lazygrad-dump) gets:
  NN_<kernel>.cl  the exact OpenCL source of kernel NN; its comments name the user-level op
                  and source line (relu @ file.py:LINE) of every fused primitive;
  schedule.txt    kernels in launch order: fused ops by source line, output and inputs (shape,
                  dtype, buffer argument), launch sizes, why the output is stored and why each
                  input was not fused; then the launch sequence of every realize;
  graph.dot       one box per kernel, edges labelled with the values they carry and why they
                  were not fused (graph.svg too when graphviz's `dot` is installed); with
                  --op-graph also graph_ops.dot/.svg: the DAG, one cluster per kernel;
  summary.txt     kernels, programs compiled / cached, realizes, device time per kernel, totals;
  explain.txt     one line per kernel edge (a value stored by one kernel and read by another)
                  and why the two were not fused (also printed with --explain).

Public names: main, Recorder, KernelRecord, CrossEdge, cross_edges, KernelEdge, kernel_edges,
build_graph, build_kernel_graph, write_dump.
"""
from __future__ import annotations

import argparse
import os
import re
import runpy
import shutil
import subprocess
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from lazygrad.debug import events as debug
from lazygrad.debug.events import RealizeInfo, format_table, event_seconds, node_str, shape_str, size_str
from lazygrad.ir.graph import Node, user_line
from lazygrad.ir.ops import MOVEMENT, Op
from lazygrad.engine.scheduled import ScheduledKernel
from lazygrad.scheduling.cuts import Cut, CutReason

SVG_NODE_LIMIT = 4000   # graphviz layout time grows fast; skip the SVG for bigger graphs
DATA_REASON = "host data, no producing op to fuse with"
EXPLAIN_WIDTH = 100   # explain.txt's line width (and --explain's when not on a terminal)


@dataclass
class KernelRecord:
    """One kernel as built for a plan, with every launch of it (plan-cache hits relaunch the
    same kernel)."""

    index: int
    kernel: ScheduledKernel
    rendered: Any                 # codegen.RenderedKernel
    program: str                  # compiled | disk cache | memory cache
    realize: int                  # the realize (1-based, counted by the recorder) that built it
    launches: int = 0
    device_seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.kernel.name

    @property
    def tag(self) -> str:
        return f"[{self.index:02d}]"


@dataclass
class RealizeRecord:
    info: RealizeInfo
    launched: list[int] = field(default_factory=list)   # record indices in launch order


class Recorder(debug.Observer):
    """Collects kernels, launches and realizes while a script runs."""

    timing = True

    def __init__(self) -> None:
        self.records: list[KernelRecord] = []
        self.realizes: list[RealizeRecord] = []
        self._by_kernel: dict[int, KernelRecord] = {}     # id(Kernel) -> record (records keep it alive)
        self._pending: list[tuple[KernelRecord, Any]] = []
        self._launched: list[int] = []

    def kernel_built(self, kernel: ScheduledKernel, rendered: Any, program: str) -> None:
        rec = KernelRecord(len(self.records), kernel, rendered, program, len(self.realizes) + 1)
        self.records.append(rec)
        self._by_kernel[id(rendered)] = rec

    def kernel_launched(self, kernel: ScheduledKernel | None, rendered: Any, event: Any) -> None:
        # cached plans keep no graph nodes, so launches are matched by their rendered kernel
        rec = self._by_kernel.get(id(rendered))
        if rec is None:  # a plan built before recording started: nothing to attribute it to
            return
        rec.launches += 1
        self._pending.append((rec, event))
        self._launched.append(rec.index)

    def realize_done(self, info: RealizeInfo) -> None:
        self.resolve_times()
        self.realizes.append(RealizeRecord(info, self._launched))
        self._launched = []

    def resolve_times(self) -> None:
        """Add the device time of finished launches (events are dropped, not kept)."""
        for rec, ev in self._pending:
            try:
                ev.wait()
                rec.device_seconds += event_seconds(ev)
            except Exception:  # not profiled or not finished: no time for this launch
                pass
        self._pending.clear()


# --- edges across kernel boundaries -----------------------------------------------------------
@dataclass
class CrossEdge:
    """src (stored or realized) is read by dst inside kernel `consumer`: the two were not fused."""

    src: Node
    producer: KernelRecord | None     # the recorded kernel that stored src, if any
    dst: Node                         # the op reading src directly
    via: list[Node]                   # views from dst on, up to `reader`
    reader: Node                      # the first non-view op reading src through `via`
    consumer: KernelRecord
    reason: str


def _producers(records: list[KernelRecord]) -> list[dict[int, KernelRecord]]:
    """For each record, node uid -> the latest earlier record that stored that node."""
    out: list[dict[int, KernelRecord]] = []
    seen: dict[int, KernelRecord] = {}
    for r in records:
        out.append(dict(seen))
        seen[r.kernel.output.uid] = r
    return out


def input_reason(r: KernelRecord, n: Node, producer: KernelRecord | None) -> str:
    """Why input `n` of kernel `r` is read from a buffer rather than fused."""
    cut = r.kernel.kernel.edge_reasons.get(n.uid)
    if producer is None:
        if n.op is Op.BUFFER:
            return DATA_REASON
        return str(cut or Cut(CutReason.REALIZED_EARLIER))
    if (cut is not None and cut.reason is CutReason.REALIZED_EARLIER) or producer.realize != r.realize:
        return f"realized by realize #{producer.realize} ({producer.tag} stored it: {producer.kernel.reason})"
    return str(cut or "?")


def cross_edges(records: list[KernelRecord]) -> list[CrossEdge]:
    """Every DAG edge whose source is a kernel input, in kernel order: the boundaries."""
    edges: list[CrossEdge] = []
    for r, prod in zip(records, _producers(records)):
        k = r.kernel
        ins = {n.uid for n in k.inputs}
        inside = {n.uid for n in k.ops}
        users: dict[int, list[Node]] = {}
        for op in k.ops:
            for s in op.srcs:
                if s.uid in inside:
                    users.setdefault(s.uid, []).append(op)
        for op in k.ops:
            for s in dict.fromkeys(op.srcs):
                if s.uid not in ins:
                    continue
                via: list[Node] = []
                cur = op
                while cur.op in MOVEMENT and len(users.get(cur.uid, [])) == 1:
                    via.append(cur)
                    cur = users[cur.uid][0]
                p = prod.get(s.uid)
                edges.append(CrossEdge(s, p, op, via, cur, r, input_reason(r, s, p)))
    return edges


@dataclass
class KernelEdge:
    """Every CrossEdge from one stored value into one kernel, for one reason: one line of
    --explain and one edge of the kernel-level graph."""

    src: Node
    producer: KernelRecord | None
    consumer: KernelRecord
    reason: str
    readers: list[str]          # the primitives in `consumer` reading src (through views)


def kernel_edges(edges: list[CrossEdge]) -> list[KernelEdge]:
    """The kernel boundaries: CrossEdges grouped by (value stored, consuming kernel, reason);
    host data (no producing op to fuse with) left out."""
    grouped: dict[tuple[int, int, str], KernelEdge] = {}
    for e in edges:
        if e.producer is None and e.src.op is Op.BUFFER:
            continue
        key = (e.src.uid, e.consumer.index, e.reason)
        ke = grouped.get(key)
        if ke is None:
            ke = grouped[key] = KernelEdge(e.src, e.producer, e.consumer, e.reason, [])
        reader = "".join(f"{v.op.value}>" for v in e.via) + e.reader.op.value
        if reader not in ke.readers:
            ke.readers.append(reader)
    return list(grouped.values())


def _value_str(n: Node) -> str:
    """`conv2d (64,16,8,8) @ model.py:12`: a stored value by its user-level op."""
    return f"{n.label or n.op.value} {shape_str(n.shape)} @ {user_line(n.origin)}"


def explain_lines(edges: list[CrossEdge], width: int | None = None) -> list[str]:
    """One line per kernel edge: `[01] conv2d (64,16,8,8) @ m.py:12 -> [02] relu, max_pool2d:
    4 consumers of a reduction result (read by cmplt, cmpeq, where)`, wrapped to `width`
    (the terminal's by default) with the continuation indented."""
    kes = kernel_edges(edges)
    if not kes:
        return ["no edge crosses a kernel boundary"]
    if width is None:
        width = max(60, shutil.get_terminal_size((EXPLAIN_WIDTH, 24)).columns)
    lines = [f"{len(kes)} kernel edges (value stored by one kernel and read by another, and why "
             f"the two were not fused)"]
    for ke in kes:
        src = f"{ke.producer.tag if ke.producer else '[--]'} {_value_str(ke.src)}"
        ops = ", ".join(dict.fromkeys(op for op, _ in ke.consumer.kernel.user_ops())) or "copy"
        text = f"{src} -> {ke.consumer.tag} {ops}: {ke.reason} (read by {', '.join(ke.readers)})"
        lines += textwrap.wrap(text, width=width, subsequent_indent="      ", break_on_hyphens=False) or [text]
    return lines


# --- the graph ---------------------------------------------------------------------------------
def _node_label(n: Node) -> str:
    op = f"const {n.arg!r}" if n.op is Op.CONST else n.op.value
    return f"{op}\\n{shape_str(n.shape)} {n.dtype.name}\\n{n.origin}"


def build_graph(records: list[KernelRecord], edges: list[CrossEdge]) -> nx.DiGraph:
    """The DAG of all recorded kernels. A node computed in several kernels (recomputed views
    and elementwise ops) appears once per kernel, as `k<NN>_<uid>`; host-data inputs are
    `in_<uid>`. Node attribute `kernel` is the record index (None outside kernels)."""
    G = nx.DiGraph()
    for r in records:
        k = r.kernel
        ins = {n.uid for n in k.inputs}
        for n in k.ops:
            kind = "output" if n is k.output else ("view" if n.op in MOVEMENT else
                                                   "const" if n.op is Op.CONST else "op")
            G.add_node(f"k{r.index:02d}_{n.uid}", label=_node_label(n), kernel=r.index, kind=kind)
        for n in k.ops:
            for s in n.srcs:
                if s.uid not in ins:
                    G.add_edge(f"k{r.index:02d}_{s.uid}", f"k{r.index:02d}_{n.uid}")
    for e in edges:
        if e.producer is not None:
            src = f"k{e.producer.index:02d}_{e.src.uid}"
        else:
            src = f"in_{e.src.uid}"
            G.add_node(src, label=_node_label(e.src), kernel=None, kind="input")
        if e.producer is None and e.src.op is Op.BUFFER:
            G.add_edge(src, f"k{e.consumer.index:02d}_{e.dst.uid}", data=True)
            continue
        short = e.reason if len(e.reason) <= 48 else e.reason[:45] + "..."
        G.add_edge(src, f"k{e.consumer.index:02d}_{e.dst.uid}", label=short, cross=True)
    return G


def build_kernel_graph(records: list[KernelRecord], kes: list[KernelEdge]) -> nx.DiGraph:
    """One node per kernel (`k<NN>`: name, user-level ops by source line, why its output is
    stored) and per value realized before the recording started (`v<uid>`); one edge per
    producer/consumer pair, labelled with each value it carries and why it was not fused."""
    G = nx.DiGraph()
    for r in records:
        summary = r.kernel.user_summary()
        if len(summary) > 90:
            summary = summary[:87] + "..."
        G.add_node(f"k{r.index:02d}", kind="kernel", kernel=r.index,
                   label=f"{r.tag} {r.name}\\n{summary}\\nstored: {_short(r.kernel.reason, 60)}")
    for ke in kes:
        if ke.producer is not None:
            src = f"k{ke.producer.index:02d}"
        else:
            src = f"v{ke.src.uid}"
            G.add_node(src, kind="value", kernel=None, label=_value_str(ke.src))
        dst = f"k{ke.consumer.index:02d}"
        line = f"{shape_str(ke.src.shape)} {ke.src.dtype.name}: {_short(ke.reason, 48)}"
        if G.has_edge(src, dst):
            labels = G[src][dst]["lines"]
            if line not in labels:
                labels.append(line)
        else:
            G.add_edge(src, dst, lines=[line])
    for _, _, a in G.edges(data=True):
        lines = a["lines"]
        a["label"] = "\\n".join(lines[:3] + ([f"+{len(lines) - 3} more"] if len(lines) > 3 else []))
    return G


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def to_pydot_kernels(G: nx.DiGraph) -> Any:
    """pydot graph of `build_kernel_graph`: kernels as boxes, earlier values as cylinders."""
    import pydot

    dot = pydot.Dot("lazygrad_kernels", graph_type="digraph", rankdir="TB", fontname="Helvetica")
    dot.set_node_defaults(fontname="Helvetica", fontsize="10")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="9", color=_q("#c0392b"), fontcolor=_q("#c0392b"))
    for n, a in G.nodes(data=True):
        style = _NODE_STYLE["output"] if a["kind"] == "kernel" else _NODE_STYLE["input"]
        attrs = {k: (_q(v) if k in ("label", "fillcolor", "fontcolor") else v)
                 for k, v in {"label": a["label"], **style}.items()}
        dot.add_node(pydot.Node(n, **attrs))
    for u, v, a in G.edges(data=True):
        dot.add_edge(pydot.Edge(u, v, label=_q(a["label"])))
    return dot


_NODE_STYLE = {"output": dict(shape="box", style="filled", fillcolor="#ffd59e"),
               "op": dict(shape="box", style="filled", fillcolor="#ffffff"),
               "view": dict(shape="box", style="dashed", fontcolor="#555555"),
               "const": dict(shape="plaintext", fontcolor="#555555"),
               "input": dict(shape="cylinder", style="filled", fillcolor="#d6e6ff")}


def _q(s: str) -> str:
    """A DOT double-quoted string (\\n escapes, which DOT reads as line breaks, are kept)."""
    return '"' + s.replace('"', '\\"') + '"'


def to_pydot(G: nx.DiGraph, records: list[KernelRecord]) -> Any:
    """pydot graph with one `cluster_NN` subgraph per kernel."""
    import pydot

    dot = pydot.Dot("lazygrad", graph_type="digraph", rankdir="TB", fontname="Helvetica")
    dot.set_node_defaults(fontname="Helvetica", fontsize="10")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="9")
    clusters = {}
    for r in records:
        c = pydot.Cluster(f"k{r.index:02d}", label=_q(f"{r.tag} {r.name}\\nstored: {r.kernel.reason}"),
                          style="rounded", color="#3b6ea5")
        clusters[r.index] = c
        dot.add_subgraph(c)
    for n, a in G.nodes(data=True):
        attrs = {k: (_q(v) if k in ("label", "fillcolor", "fontcolor") else v)
                 for k, v in {"label": a["label"], **_NODE_STYLE[a["kind"]]}.items()}
        (clusters[a["kernel"]] if a["kernel"] is not None else dot).add_node(pydot.Node(n, **attrs))
    for u, v, a in G.edges(data=True):
        attrs: dict[str, str] = {}
        if a.get("cross"):
            attrs = dict(label=_q(a["label"]), color=_q("#c0392b"), fontcolor=_q("#c0392b"), style="bold")
        elif a.get("data"):
            attrs = dict(color=_q("#7f9cc0"))
        dot.add_edge(pydot.Edge(u, v, **attrs))
    return dot


# --- text files ----------------------------------------------------------------------------------
def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def cl_filename(r: KernelRecord, width: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", r.name)
    return f"{r.index:0{width}d}_{safe}.cl"


def schedule_text(rec: Recorder, files: dict[int, str], script: str) -> str:
    prod = _producers(rec.records)
    out = [f"lazygrad schedule of {script}: {len(rec.records)} kernels built, in launch order",
           "(buf0 is each kernel's output; bufN its N-th input, as in the .cl file)", ""]
    current = 0
    for r in rec.records:
        if r.realize != current:
            current = r.realize
            n = sum(1 for x in rec.records if x.realize == current)
            out.append(f"=== realize #{current}: plan built, {n} kernel{'s' if n != 1 else ''} ===")
        k, rk = r.kernel, r.rendered
        out.append(f"{r.tag} {r.name}  ({k.kind.value} kernel, {files[r.index]})")
        rows = [["  launch", f"global {size_str(rk.global_size)}  local {size_str(rk.local_size)}  "
                 f"{r.launches} launch{'es' if r.launches != 1 else ''}, {r.device_seconds * 1e3:.3f} ms device"],
                ["  work", f"{_kib(rk.bytes)} moved, {rk.flops} flops per launch"],
                ["  program", r.program],
                ["  buf0 out", f"{node_str(k.output)} @ {k.output.origin}  -- stored: {k.reason}"]]
        for i, n in enumerate(k.inputs, 1):
            p = prod[r.index].get(n.uid)
            src = f"from {p.tag} {p.name}" if p else ("host data" if n.op is Op.BUFFER else "realized")
            rows.append([f"  buf{i} in", f"{node_str(n)} ({src}) -- not fused: {input_reason(r, n, p)}"])
        for j, (origin, ops) in enumerate(k.ops_by_origin()):
            rows.append(["  fused ops" if j == 0 else "", f"{origin}: {' '.join(ops)}"])
        out += format_table(rows)
        out.append("")
    out.append("=== launch sequence ===")
    for i, rr in enumerate(rec.realizes, 1):
        plan = "plan cached" if rr.info.plan_cached else "plan built"
        seq = " ".join(f"{i:02d}" for i in rr.launched) or "-"
        out.append(f"realize #{i} ({plan}): {seq}")
    return "\n".join(out) + "\n"


def summary_text(rec: Recorder, script: str, status: int, graph_note: str) -> str:
    recs = rec.records
    launches = sum(r.launches for r in recs)
    dev = sum(r.device_seconds for r in recs)
    host = sum(rr.info.host_seconds for rr in rec.realizes)
    cached_plans = sum(1 for rr in rec.realizes if rr.info.plan_cached)
    prog: dict[str, int] = {}
    for r in recs:
        prog[r.program] = prog.get(r.program, 0) + 1
    out = [f"lazygrad dump of {script} (exit status {status})", "",
           f"kernels built     {len(recs)}",
           f"kernel launches   {launches}",
           f"programs          {prog.get('compiled', 0)} compiled, {prog.get('disk cache', 0)} from the disk cache, "
           f"{prog.get('memory cache', 0)} from the memory cache",
           f"realizes          {len(rec.realizes)} ({len(rec.realizes) - cached_plans} plans built, "
           f"{cached_plans} plan-cache hits)",
           f"device time       {dev * 1e3:.3f} ms (sum of profiled kernel events)",
           f"host time         {host * 1e3:.3f} ms in realize() (scheduling, codegen, compiling, launching)",
           f"graph             {graph_note}", ""]
    rows = [["#", "kernel", "launches", "device ms", "ms/launch", "GB/s", "GFLOP/s", "program"]]
    for r in recs:
        t = r.device_seconds
        per = t / r.launches if r.launches else 0.0
        gbs = r.rendered.bytes * r.launches / t / 1e9 if t > 0 else 0.0
        gfl = r.rendered.flops * r.launches / t / 1e9 if t > 0 else 0.0
        rows.append([f"{r.index:02d}", r.name, str(r.launches), f"{t * 1e3:.3f}", f"{per * 1e3:.4f}",
                     f"{gbs:.2f}", f"{gfl:.2f}", r.program])
    rows.append(["", "total", str(launches), f"{dev * 1e3:.3f}", "", "", "", ""])
    out += format_table(rows, right={2, 3, 4, 5, 6})
    return "\n".join(out) + "\n"


def write_dump(rec: Recorder, out_dir: Path, script: str, status: int,
               op_graph: bool = False) -> tuple[list[Path], list[str]]:
    """Write every file of the dump; returns the .cl paths and the explain lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.cl"):  # a previous dump's kernels would mix with this one's
        if re.match(r"^\d+_", old.name):
            old.unlink()
    width = max(2, len(str(len(rec.records) - 1)))
    files = {r.index: cl_filename(r, width) for r in rec.records}
    paths = []
    for r in rec.records:
        p = out_dir / files[r.index]
        p.write_text(r.kernel.source)
        paths.append(p)
    edges = cross_edges(rec.records)
    (out_dir / "explain.txt").write_text("\n".join(explain_lines(edges, EXPLAIN_WIDTH)) + "\n")
    explain = explain_lines(edges)  # printed by --explain: wrapped to the terminal
    (out_dir / "schedule.txt").write_text(schedule_text(rec, files, script))
    graph_note = _write_graph(rec, edges, out_dir, op_graph)
    (out_dir / "summary.txt").write_text(summary_text(rec, script, status, graph_note))
    return paths, explain


def _write_graph(rec: Recorder, edges: list[CrossEdge], out_dir: Path, op_graph: bool = False) -> str:
    """graph.dot (+ .svg): one box per kernel; with `op_graph`, graph_ops.dot (+ .svg) too: every
    op, clustered by kernel. The note for summary.txt says what was written."""
    for stale in ("graph.dot", "graph.svg", "graph_ops.dot", "graph_ops.svg"):
        (out_dir / stale).unlink(missing_ok=True)
    try:
        import pydot  # noqa: F401
    except ImportError:
        return "not written: graph.dot needs pydot (pip install pydot)"
    KG = build_kernel_graph(rec.records, kernel_edges(edges))
    to_pydot_kernels(KG).write(str(out_dir / "graph.dot"), format="raw")
    notes = [f"graph.dot: {KG.number_of_nodes()} boxes (kernels and values from earlier realizes), "
             f"{KG.number_of_edges()} edges" + _svg(out_dir / "graph.dot", KG.number_of_nodes())]
    if op_graph:
        G = build_graph(rec.records, edges)
        to_pydot(G, rec.records).write(str(out_dir / "graph_ops.dot"), format="raw")
        notes.append(f"graph_ops.dot: {G.number_of_nodes()} ops, {G.number_of_edges()} edges, "
                     f"{len(rec.records)} kernel clusters" + _svg(out_dir / "graph_ops.dot", G.number_of_nodes()))
    return "; ".join(notes)


def _svg(dot_file: Path, n_nodes: int) -> str:
    """Lay `dot_file` out as the .svg beside it; what happened, for the summary note. A failed
    or partial layout leaves no .svg behind (so the note and the folder agree)."""
    svg = dot_file.with_suffix(".svg")
    exe = shutil.which("dot")
    if exe is None:
        return " (no .svg: graphviz `dot` is not installed)"
    if n_nodes > SVG_NODE_LIMIT:
        return f" (no .svg: more than {SVG_NODE_LIMIT} nodes)"
    try:
        proc = subprocess.run([exe, "-Tsvg", "-o", str(svg), str(dot_file)], capture_output=True, timeout=120)
        ok = svg.is_file() and svg.read_text(errors="replace").lstrip().startswith(("<?xml", "<svg"))
        why = proc.stderr.decode(errors="replace").strip().splitlines()[:1] if proc.returncode else []
    except (subprocess.SubprocessError, OSError) as e:
        ok, why = False, [str(e)]
    if ok and proc.returncode == 0:
        return f", {svg.name} {svg.stat().st_size / 1024:.0f} KiB"
    svg.unlink(missing_ok=True)
    return f" (no .svg: dot failed{': ' + why[0] if why else ''})"


# --- running the script --------------------------------------------------------------------------
def run_script(script: str, args: list[str]) -> int:
    """Run `script` as __main__ with sys.argv = [script, *args]; its exit status (a traceback
    is printed and 1 returned when it raises)."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lazygrad-dump", description="Run a script and dump every lazygrad kernel it builds: OpenCL "
        "sources, schedule, fusion reasons, the graph clustered by kernel, timings.")
    parser.add_argument("--out", default="lazygrad-dump", help="output folder (default ./lazygrad-dump)")
    parser.add_argument("--explain", action="store_true",
                        help="print, for every edge crossing a kernel boundary, why its ops were not fused")
    parser.add_argument("--op-graph", action="store_true",
                        help="also write graph_ops.dot/.svg: every op, clustered by kernel (large for a training step)")
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    ns = parser.parse_args(argv)
    if not os.path.isfile(ns.script):
        parser.error(f"no such script: {ns.script}")
    rec = Recorder()
    debug.add_observer(rec)
    try:
        status = run_script(ns.script, ns.args)
    finally:
        debug.remove_observer(rec)
    rec.resolve_times()
    out = Path(ns.out)
    _, explain = write_dump(rec, out, os.path.basename(ns.script), status, ns.op_graph)
    if ns.explain:
        print("\n".join(explain))
    print(f"lazygrad-dump: {len(rec.records)} kernels, {sum(r.launches for r in rec.records)} launches "
          f"written to {out}/", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
