"""Run the corpus programs and record every kernel built (see tests/oracle/__init__.py)."""
from __future__ import annotations

import contextlib
import importlib
import io
import runpy
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus.json"
EXAMPLES = ["quickstart", "xor", "perceptron", "binary", "circles", "digits"]
# settings under which the corpus is generated: independent of this machine's CPU
SETTINGS = dict(target="256", probe=False, tune=False, fault=frozenset())


class _Recorder:
    timing = False

    def __init__(self) -> None:
        self.kernels: list[dict] = []

    def kernel_built(self, kernel, rendered, program) -> None:
        from lazygrad.codehash import _COMMENTS  # the program cache's comment rule
        code = "\n".join(ln.rstrip() for ln in _COMMENTS.sub("", rendered.source).splitlines() if ln.strip())
        self.kernels.append({"name": rendered.name, "kind": str(kernel.kind), "reasons": [str(r) for r in kernel.reasons],
                             "source": code})

    def kernel_launched(self, kernel, rendered, event) -> None:
        pass

    def realize_done(self, info) -> None:
        pass


def _programs():
    """(name, callable) for every corpus program."""
    for p in (str(ROOT), str(ROOT / "examples")):  # examples import their _common as a sibling
        if p not in sys.path:
            sys.path.insert(0, p)
    for ex in EXAMPLES:
        def run_example(ex=ex):
            path = ROOT / "examples" / f"{ex}.py"
            if "def main(" not in path.read_text():  # a script (quickstart): run it as one
                runpy.run_path(str(path), run_name="__oracle__")
                return
            mod = importlib.import_module(ex)
            with tempfile.TemporaryDirectory() as d:
                mod.main(["--quick", "--out", d])
        yield f"examples/{ex}", run_example
    from bench.cases import timed_cases
    from bench.contenders.lazygrad_impl import BUILDERS
    from bench.workloads import make_inputs
    for case in timed_cases(quick=True):
        if case.kind not in BUILDERS:
            continue
        def run_case(case=case):
            r = BUILDERS[case.kind](case.params, make_inputs(case.kind, case.params))
            r.step()
        yield f"bench/{case.name}", run_case


def capture() -> dict[str, list[dict]]:
    import lazygrad as lg
    from lazygrad import config
    from lazygrad.debug import events as debug
    from lazygrad.engine import realize as engine
    from lazygrad.ir import random
    out: dict[str, list[dict]] = {}
    with config.override(**SETTINGS):
        for name, fn in _programs():
            engine._plans.clear()   # every program builds its own plans, whatever ran before
            lg.manual_seed(0)
            np.random.seed(0)
            rec = _Recorder()
            debug.add_observer(rec)
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    fn()
            finally:
                debug.remove_observer(rec)
            out[name] = rec.kernels
    return out
