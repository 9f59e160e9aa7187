"""The kernel-dump tool and LAZYGRAD_DEBUG levels, run as a user would (subprocesses)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.ir.ops import Op

OP_NAMES = {op.value for op in Op}
ROOT = Path(__file__).resolve().parent.parent

MLP_SCRIPT = textwrap.dedent('''\
    import sys
    import numpy as np
    import lazygrad as lg
    from lazygrad import Tensor

    steps = int(sys.argv[sys.argv.index("--steps") + 1])
    print("argv", sys.argv[1:])
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 8)).astype(np.float32))
    y = Tensor(rng.standard_normal((16, 4)).astype(np.float32))
    w1 = Tensor(rng.standard_normal((8, 32)).astype(np.float32) * 0.3, requires_grad=True)
    b1 = Tensor(np.zeros(32, np.float32), requires_grad=True)
    w2 = Tensor(rng.standard_normal((32, 4)).astype(np.float32) * 0.3, requires_grad=True)
    for step in range(steps):
        h = (x @ w1 + b1).relu()                      # LINE:hidden
        out = h @ w2                                  # LINE:out
        loss = ((out - y) ** 2).mean()                # LINE:loss
        loss.backward()
        for p in (w1, b1, w2):
            p.assign(p.detach() - 0.1 * p.grad)       # LINE:sgd
            p.grad = None
        lg.realize(w1, b1, w2)
        print("loss", loss.item())
''')

LINES = {tag: i + 1 for i, line in enumerate(MLP_SCRIPT.splitlines()) for tag in re.findall(r"# LINE:(\w+)", line)}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("LAZYGRAD_DEBUG", None)
    env["COLUMNS"] = "100"  # --explain wraps to the terminal: the same width as explain.txt
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("dump")
    script = tmp / "mlp_step.py"
    script.write_text(MLP_SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "lazygrad.dump", "--out", str(tmp / "out"), "--explain",
                           "--op-graph", str(script), "--steps", "2"], cwd=tmp, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tmp / "out", proc


def _records(out: Path) -> list[str]:
    """schedule.txt split into one text block per kernel."""
    text = (out / "schedule.txt").read_text().split("=== launch sequence ===")[0]
    return [b for b in re.split(r"\n(?=\[\d\d\] )", text) if re.match(r"\[\d\d\] ", b)]


def test_dump_runs_the_script_with_its_arguments(dump):
    out, proc = dump
    assert "argv ['--steps', '2']" in proc.stdout
    losses = [float(m) for m in re.findall(r"^loss (\S+)$", proc.stdout, re.M)]
    assert len(losses) == 2 and losses[1] < losses[0]  # the SGD step really ran
    for name in ("schedule.txt", "summary.txt", "graph.dot", "explain.txt"):
        assert (out / name).is_file(), name
    if shutil.which("dot"):
        assert (out / "graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_every_kernel_has_a_cl_file_that_compiles(dump):
    import pyopencl as cl

    out, _ = dump
    files = sorted(out.glob("*.cl"))
    blocks = _records(out)
    summary = (out / "summary.txt").read_text()
    n = int(re.search(r"kernels built\s+(\d+)", summary).group(1))
    assert len(files) == len(blocks) == n >= 5
    dev = lg.device()
    for i, (f, block) in enumerate(zip(files, blocks)):
        src = f.read_text()
        name = re.search(r"__kernel (?:__attribute__\(\(.*?\)\) )?void (\w+)\(", src).group(1)
        assert f.name == f"{i:02d}_{name}.cl"
        assert block.startswith(f"[{i:02d}] {name} ")
        cl.Program(dev.ctx, src).build(options=["-cl-std=CL1.2"])  # raises on a build error


def test_every_boundary_has_a_reason(dump):
    out, proc = dump
    reasons: set[str] = set()
    for block in _records(out):
        name = block.split()[1]
        src = next(out.glob(f"*_{name}.cl")).read_text()
        params = re.search(r"__kernel [^{]*?void \w+\((.*?)\) \{", src, re.S).group(1)
        stored = re.search(r"buf0 out .* -- stored: (.+)", block)
        assert stored and stored.group(1).strip(), block
        ins = re.findall(r"buf(\d+) in .* -- not fused: (.+)", block)
        assert [int(i) for i, _ in ins] == list(range(1, len(ins) + 1))
        assert len(ins) + 1 == params.count("__global ")    # one line per buffer argument
        for _, why in ins:
            assert why.strip() and why.strip() != "?", block
            reasons.add(why.strip())
    # --explain: one entry per kernel edge (wrapped, continuation lines indented), each with a
    # reason from the schedule and the primitives that read the value
    printed = [line for line in proc.stdout.split("\n") if re.match(r"\[\d\d\] |      \S", line)]
    written = (out / "explain.txt").read_text().splitlines()
    assert re.match(r"^\d+ kernel edges ", written[0])
    assert printed and printed == written[1:]
    assert all(len(line) <= 100 or " " not in line.strip() for line in written)
    entries = re.split(r"\n(?=\[\d\d\] )", "\n".join(written[1:]))
    assert len(entries) == int(written[0].split()[0])
    for entry in entries:
        text = re.sub(r"\n      ", " ", entry)
        m = re.match(r"^\[\d\d\] (\w+) \([\d,]*\) @ mlp_step\.py:\d+ -> \[\d\d\] ([\w, ]+): (.+) \(read by ([\w>, ]+)\)$", text)
        assert m, text
        assert m.group(3) in reasons, text
        assert all(r.split(">")[-1] in OP_NAMES for r in m.group(4).split(", ")), text
    # a forward/backward MLP has several real boundaries, not just host data reads
    assert any("consumers of a reduction result" in e for e in entries)
    # one line per kernel edge: no two entries for the same value, consumer and reason
    keys = [re.sub(r" \(read by .*$", "", re.sub(r"\n      ", " ", e)) for e in entries]
    assert len(keys) == len(set(keys))


def test_source_comments_name_the_scripts_lines(dump):
    out, _ = dump
    named: set[int] = set()
    script_lines = MLP_SCRIPT.splitlines()
    for f in sorted(out.glob("*.cl")):
        src = f.read_text()
        header = src[src.index("fused ops by source line:"):src.index("*/", src.index("fused ops by source line:"))]
        n_ops = int(re.search(r"(\d+) fused ops", src).group(1))
        listed = 0
        for line in header.splitlines()[1:]:
            body = line.strip().lstrip("*").strip()
            m = re.match(r"(.*?mlp_step\.py:\d+): (.*)", body)
            ops = (m.group(2) if m else body).split()
            listed += sum(1 for o in ops if o in OP_NAMES)
        assert listed == n_ops, f.name   # every fused op is attributed to a source line
        for stmt in re.findall(r"^\s*(?:\w+ v\d+ = |acc = |\w+ e\d+ = |\w+ s\d+ = ).*$", src, re.M):
            assert re.search(r"// .*mlp_step\.py:\d+$", stmt), (f.name, stmt)
        for ln in map(int, re.findall(r"mlp_step\.py:(\d+)", src)):
            # a line that makes tensors: data, a tagged op line, or backward (the seed gradient)
            assert re.search(r"Tensor\(|# LINE:|\.backward\(", script_lines[ln - 1]), (f.name, ln)
            named.add(ln)
    assert set(LINES.values()) <= named  # forward, loss, backward (grad of ...) and SGD lines


def test_graph_dot_is_one_box_per_kernel_with_labelled_edges(dump):
    import networkx as nx
    import pydot

    out, _ = dump
    n_kernels = len(list(out.glob("*.cl")))
    (g,) = pydot.graph_from_dot_file(str(out / "graph.dot"))
    names = {f.name.split("_", 1)[1][:-3] for f in out.glob("*.cl")}
    boxes = [n for n in g.get_nodes() if n.get_name().startswith("k")]
    assert len(boxes) == n_kernels
    for b in boxes:  # "[NN] name\nuser ops @ line\nstored: reason"
        label = b.get("label").strip('"')
        assert label.split("\\n")[0].split(" ", 1)[1] in names and "\\nstored: " in label
    edges = g.get_edges()
    assert edges and all(e.get("label") for e in edges)  # each says what it carries and why
    assert all(re.match(r'^"\([\d,]*\) \w+: ', e.get("label")) for e in edges)
    G = nx.DiGraph(nx.nx_pydot.from_pydot(g))
    assert nx.is_directed_acyclic_graph(G)
    summary = (out / "summary.txt").read_text()
    assert f"graph.dot: {G.number_of_nodes()} boxes" in summary
    if shutil.which("dot"):
        assert (out / "graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        assert re.search(r"graph\.dot: .*, graph\.svg \d+ KiB", summary)
    else:
        assert not (out / "graph.svg").exists() and "not installed" in summary


def test_op_graph_has_a_cluster_per_kernel(dump):
    import networkx as nx
    import pydot

    out, _ = dump
    n_kernels = len(list(out.glob("*.cl")))
    (g,) = pydot.graph_from_dot_file(str(out / "graph_ops.dot"))
    clusters = [s for s in g.get_subgraphs() if s.get_name().startswith("cluster_k")]
    assert len(clusters) == n_kernels
    assert all(len(c.get_nodes()) >= 1 for c in clusters)
    red = [e for e in g.get_edges() if e.get("color") == '"#c0392b"']
    assert red and all(e.get("label") for e in red)  # kernel-crossing edges carry their reason
    G = nx.nx_pydot.from_pydot(g)
    assert G.number_of_edges() == len(g.get_edges())
    assert nx.is_directed_acyclic_graph(nx.DiGraph(G))
    assert "graph_ops.dot: " in (out / "summary.txt").read_text()


def test_summary_says_what_the_svg_step_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The summary's graph note and the folder agree: a layout that fails or stops half-way
    leaves no graph.svg, and the note says why (it once said "failed" beside a written file)."""
    from lazygrad import dump as D

    dot_file = tmp_path / "graph.dot"
    dot_file.write_text("digraph g { a -> b }\n")
    monkeypatch.setattr(D.shutil, "which", lambda name: None)
    assert "not installed" in D._svg(dot_file, 2) and not (tmp_path / "graph.svg").exists()
    fake = tmp_path / "dot"  # writes half an svg, then fails
    fake.write_text("#!/bin/sh\necho '<svg><g>' > \"$3\"\necho 'Error: layout failed' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(D.shutil, "which", lambda name: str(fake))
    note = D._svg(dot_file, 2)
    assert "dot failed: Error: layout failed" in note and not (tmp_path / "graph.svg").exists()
    assert "more than" in D._svg(dot_file, D.SVG_NODE_LIMIT + 1)
    if shutil.which("dot"):
        monkeypatch.undo()
        assert re.match(r"^, graph\.svg \d+ KiB$", D._svg(dot_file, 2))
        assert (tmp_path / "graph.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_summary_counts_kernels_launches_and_time(dump):
    out, _ = dump
    s = (out / "summary.txt").read_text()
    n = int(re.search(r"kernels built\s+(\d+)", s).group(1))
    launches = int(re.search(r"kernel launches\s+(\d+)", s).group(1))
    assert launches == 2 * n  # step 2 relaunches every kernel of step 1 through the plan cache
    assert re.search(r"realizes\s+4 \(2 plans built, 2 plan-cache hits\)", s)
    compiled, disk, mem = map(int, re.search(r"programs\s+(\d+) compiled, (\d+) from the disk cache, "
                                             r"(\d+) from the memory cache", s).groups())
    assert compiled + disk + mem == n
    rows = re.findall(r"^(\d\d)\s+(\w+)\s+(\d+)\s+([\d.]+)", s, re.M)
    assert len(rows) == n and all(int(r[2]) == 2 for r in rows)
    total = float(re.search(r"^\s+total\s+\d+\s+([\d.]+)", s, re.M).group(1))
    assert total > 0 and abs(total - sum(float(r[3]) for r in rows)) < 0.01
    seq = (out / "schedule.txt").read_text().split("=== launch sequence ===")[1].strip().splitlines()
    assert len(seq) == 4 and "plan cached" in seq[2] and seq[2].split(": ")[1] == seq[0].split(": ")[1]


DEBUG_SCRIPT = textwrap.dedent('''\
    import numpy as np
    from lazygrad import Tensor
    for i in range(2):
        x = Tensor(np.arange(64, dtype=np.float32).reshape(8, 8) / (10 + i))  # same graph, new data
        y = (x * 2 + 1).exp().sum(axis=1) * 0.5
        z = y / y.sum()
        print(float(z.numpy().sum()))
''')


def _run_debug(tmp_path: Path, level: int) -> list[str]:
    script = tmp_path / "dbg.py"
    script.write_text(DEBUG_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], env=_env(LAZYGRAD_DEBUG=str(level)), capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stderr.splitlines()]


REALIZE = re.compile(r"^\[lazygrad\] realize #\d+ +(\d+) kernels  plan (built|cached) +programs: +(\d+) compiled "
                     r"+(\d+) cached  host +[\d.]+ ms$")
REALIZE2 = re.compile(r"^\[lazygrad\] realize #(\d+) +(\d+) kernels  plan (built|cached) +programs: +\d+ compiled "
                      r"+\d+ cached  host +[\d.]+ ms  device +([\d.]+) ms(?:  launches as realize #(\d+))?$")
TARGET = re.compile(r"^\[lazygrad\] target .+: (cpu|gpu), \d+-bit vectors \(.+\); lanes 32-bit x\d+, 64-bit x\d+; ")
LAUNCH = re.compile(r"^\[lazygrad\]   (\w+) +global +[\dx]+ local +[\dx]+ +[\d.]+ ms +[\d.]+ GB/s +[\d.]+ GFLOP/s$")


def test_debug_levels(tmp_path: Path):
    assert not [line for line in _run_debug(tmp_path, 0) if "[lazygrad]" in line]
    l1 = _run_debug(tmp_path, 1)
    # the first line names the target code is generated for (once per target)
    assert TARGET.match(l1[0]), l1
    realizes = [REALIZE.match(line) for line in l1[1:]]
    assert all(realizes) and len(realizes) == 2, l1
    assert [m.group(2) for m in realizes] == ["built", "cached"]
    assert realizes[1].group(3) == "0"                     # nothing compiled on a plan-cache hit
    n = int(realizes[0].group(1))
    assert n >= 2
    l2 = _run_debug(tmp_path, 2)
    # the first run of a plan lists its launches, then its realize line with the device time;
    # the repeated step is one line that points back at the realize that listed them
    done = [REALIZE2.match(line) for line in l2 if "] realize #" in line]
    assert all(done) and len(done) == 2, l2
    assert done[0].group(5) is None and done[1].group(5) == done[0].group(1)
    assert [m.group(3) for m in done] == ["built", "cached"]
    launches = [LAUNCH.match(line) for line in l2 if "] realize #" not in line and not TARGET.match(line)]
    assert all(launches) and len(launches) == n, l2
    assert l2.index(done[0].group(0)) == len(l2) - 2 and l2[-1] == done[1].group(0)
    l3 = _run_debug(tmp_path, 3)
    heads = [line for line in l3 if line.startswith("[lazygrad] kernel ")]
    assert len(heads) == n
    # the head names the user-level ops by source line; the primitives come one level deeper
    assert all(re.search(r"\): [\w, ]+ @ dbg\.py:\d+(; [\w, ]+ @ dbg\.py:\d+)*$", h) for h in heads), heads
    assert any(": mul, add, exp, sum @ dbg.py:5" in h for h in heads), heads
    stores = [line for line in l3 if re.match(r"^\[lazygrad\] +stores +[\w ]+ \(.*\) float32 +because \S", line)]
    assert len(stores) == n
    assert any(re.match(r"^\[lazygrad\] +input 1 +[\w ]+ \(.*\) float32 +not fused: \S", line) for line in l3)
    prims = [line for line in l3 if re.match(r"^\[lazygrad\] +primitives: ", line)]
    assert len(prims) == n and all(set(p.split(": ")[1].split()) <= OP_NAMES for p in prims)
    assert not any("__kernel" in line for line in l3)
    l4 = _run_debug(tmp_path, 4)
    kernel_heads = [line for line in l4 if re.match(r"^__kernel (__attribute__\(\(.*\)\) )?void ", line)]
    assert len(kernel_heads) == n  # each new kernel's source once
    assert any("stored because:" in line for line in l4)


def test_schedule_prints_as_a_table():
    x = Tensor(np.ones((4, 8), np.float32))
    y = Tensor(np.ones((8, 3), np.float32))
    s = lg.schedule((x @ y).relu().sum(axis=1), x.exp())
    assert isinstance(s, list) and len(s) == len(list(s)) >= 2
    lines = repr(s).splitlines()
    assert lines[0] == f"schedule: {len(s)} kernels"
    assert lines[1].split() == ["#", "kernel", "kind", "output", "inputs", "ops", "stored", "because"]
    for i, k in enumerate(s):
        assert re.match(rf"^\s+{i}\s+{k.name}\s+{k.kind}\s+", lines[2 + i])
        assert lines[2 + i].endswith(k.reason)
        assert "\n" not in repr(k) and k.name in repr(k) and k.reason in repr(k)
    assert str(s) == repr(s)
    assert s[1] is list.__getitem__(s, 1) and len(s[1:]) == len(s) - 1


def test_failing_script_still_dumps(tmp_path: Path, capsys: pytest.CaptureFixture):
    from lazygrad.debug import events as debug
    from lazygrad.dump import main

    script = tmp_path / "boom.py"
    script.write_text("from lazygrad import Tensor\nimport numpy as np\n"
                      "t = (Tensor(np.ones(5, np.float32)) * 3).realize()\nraise RuntimeError('boom')\n")
    assert main(["--out", str(tmp_path / "d"), str(script)]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().err
    assert not debug._observers                              # the recorder is unhooked
    assert "(exit status 1)" in (tmp_path / "d" / "summary.txt").read_text()
    (cl_file,) = (tmp_path / "d").glob("*.cl")
    assert "boom.py:3" in cl_file.read_text()
