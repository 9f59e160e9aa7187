"""Memory safety of every kernel template under Oclgrind (issue 8).

Runs tests/oclgrind/memsafe_cases.py under the Oclgrind OpenCL simulator with its checkers
on (out-of-bounds access is always checked; --data-races, --uninitialized, --check-api),
once per code-generation configuration, and asserts for every case: correct values and no
report from Oclgrind. Control kernels with a deliberate bug must be reported, which shows
the checker is really looking. Coverage tests check that every template file and every
template mode was exercised (a new template without a case fails here).

Not part of the default run (it simulates every kernel; .ci/run runs it as its own step):
    python -m pytest -m oclgrind tests/oclgrind
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from memsafe_cases import CASES, CONTROLS  # noqa: E402

pytestmark = [
    pytest.mark.oclgrind,
    # skipped unless selected with `-m oclgrind` (a string condition: pytest evaluates it with `config`)
    pytest.mark.skipif("'oclgrind' not in (config.getoption('markexpr') or '')",
                       reason="Oclgrind target: run with `python -m pytest -m oclgrind tests/oclgrind`"),
]
OCLGRIND = shutil.which("oclgrind")

# -cl-opt-disable: the optimiser emits LLVM `freeze`, which Oclgrind 21.10's uninitialized-value
# plugin cannot interpret (fatal error); unoptimised code is also closer to the source.
OCLGRIND_CMD = ["--build-options", "-cl-opt-disable", "--check-api", "--data-races", "--uninitialized"]

# code-generation configurations: the targets of the portability matrix (the simulator itself
# claims 1 float lane, so each runs a forced target: 256-bit is what AVX2 CPUs and Zen 4 get,
# 512-bit the AVX-512 code, gpu the work-group paths), and no fusion
CONFIGS = {
    "default": {"LAZYGRAD_TARGET": "256"},
    "vec4": {"LAZYGRAD_TARGET": "128"},
    "vec16": {"LAZYGRAD_TARGET": "512"},  # the row loops on AVX-512 devices
    "gpu": {"LAZYGRAD_TARGET": "gpu"},
    "unfused": {"LAZYGRAD_TARGET": "256", "LAZYGRAD_FUSE": "0"},
}

# pyopencl asks every device for CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV (an NVIDIA query) when
# it creates a kernel; Oclgrind's API checker flags the unknown query. Not a lazygrad call.
BENIGN = [re.compile(r"Function: clGetDeviceInfo\s+Error:\s+CL_INVALID_VALUE\s+For argument 'param_name'")]

REQUIRED_TAGS = {"elementwise/vector", "elementwise/vector_tail", "elementwise/scalar",
                 "reduce/per_item", "reduce/group", "reduce/vector",
                 "rowwise/per_item", "rowwise/group", "rowtotal", "multi_output",
                 "reduce/unrolled", "rowwise/stash",
                 "conv/plain", "conv/edge", "conv/masked", "conv/shifted", "sort/values", "sort/indices", "sort/merge", "gather", "scatter",
                 "attention/fwd", "attention/dq", "attention/dkv", "lstm/vector", "lstm/tail"}

CONTROL_REPORTS = {
    "control_out_of_bounds": "Invalid read",
    "control_uninitialized": "Uninitialized value",
    "control_data_race": "data race",
}


@dataclass
class Run:
    reports: dict[str, list[str]] = field(default_factory=dict)   # case -> Oclgrind reports
    done: dict[str, str] = field(default_factory=dict)            # case -> "ok" | "FAIL ..."
    coverage: dict[str, dict] = field(default_factory=dict)
    outside: list[str] = field(default_factory=list)              # reports outside any case
    log: str = ""


def _reports(text: str) -> list[str]:
    """Oclgrind's messages in `text`: blocks separated by blank lines, minus benign ones."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    return [b for b in blocks if not any(p.search(b) for p in BENIGN)]


def parse(log: str) -> Run:
    run = Run(log=log)
    current: str | None = None
    chunk: list[str] = []
    for line in log.splitlines():
        if line.startswith("@@case "):
            run.outside += _reports("\n".join(chunk))
            current, chunk = line.split()[1], []
        elif line.startswith("@@done "):
            _, name, msg = line.split(" ", 2)
            run.reports[name] = _reports("\n".join(chunk))
            run.done[name] = msg
            current, chunk = None, []
        elif line.startswith("@@coverage "):
            run.coverage = json.loads(line[len("@@coverage "):])
        else:
            chunk.append(line)
    run.outside += _reports("\n".join(chunk))
    if current is not None:  # the simulator died inside a case
        run.done.setdefault(current, "FAIL: process ended inside this case")
        run.reports.setdefault(current, _reports("\n".join(chunk)))
    return run


_runs: dict[str, Run] = {}


def oclgrind_run(config: str) -> Run:
    if OCLGRIND is None:
        pytest.skip("oclgrind is not installed (apt-get install oclgrind)")
    if config not in _runs:
        env = dict(os.environ, LAZYGRAD_CACHE="0", **CONFIGS[config])
        env.pop("LAZYGRAD_DEVICE", None)
        proc = subprocess.run([OCLGRIND, *OCLGRIND_CMD, sys.executable, str(HERE / "memsafe_cases.py")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        run = parse(proc.stderr + "\n" + proc.stdout)
        if proc.returncode not in (0, 1):  # 1 = some case failed; reported per case below
            run.outside.append(f"process exited with code {proc.returncode}")
        _runs[config] = run
    return _runs[config]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_process_clean(config: str) -> None:
    run = oclgrind_run(config)
    assert not run.outside, "\n\n".join(run.outside[:5]) + "\n--- log tail ---\n" + run.log[-3000:]
    assert set(run.done) == set(CASES) | set(CONTROLS), "cases missing from the log:\n" + run.log[-3000:]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("name", list(CASES))
def test_kernel_is_memory_safe(config: str, name: str) -> None:
    run = oclgrind_run(config)
    assert name in run.done, f"case {name} did not run:\n" + run.log[-3000:]
    assert run.done[name].startswith("ok"), run.done[name]
    reports = run.reports.get(name, [])
    assert not reports, f"Oclgrind reported {len(reports)} problem(s) in {name} [{config}]:\n\n" + \
        "\n\n".join(reports[:5])


@pytest.mark.parametrize("name", list(CONTROLS))
def test_checker_catches_deliberate_bug(name: str) -> None:
    run = oclgrind_run("default")
    kind = CONTROL_REPORTS[name]
    assert any(kind in r for r in run.reports.get(name, [])), \
        f"Oclgrind did not report '{kind}' for {name}: {run.reports.get(name)}"


def _included_only_templates(tdir: Path) -> set[str]:
    included = set()
    for f in tdir.glob("*.j2"):
        included |= set(re.findall(r"{%-?\s*(?:include|from)\s+\"([^\"]+)\"", f.read_text()))
    return included


def test_every_template_and_mode_is_exercised() -> None:
    run = oclgrind_run("default")
    tags = {t for c in run.coverage.values() for t in c["tags"]}
    missing_tags = REQUIRED_TAGS - tags
    assert not missing_tags, f"no case exercises template modes {sorted(missing_tags)}"
    tdir = ROOT / "templates"
    templates = {f.name for f in tdir.glob("*.cl.j2")} - _included_only_templates(tdir)
    rendered = {t for c in run.coverage.values() for t in c["templates"]}
    missing = templates - rendered
    assert not missing, f"templates never rendered by a case (add cases to memsafe_cases.py): {sorted(missing)}"
