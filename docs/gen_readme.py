"""Regenerate the generated parts of README.md: the settings table and the example's output.

    python docs/gen_readme.py           # rewrite README.md in place
    python docs/gen_readme.py --check   # exit 1 with a diff when README.md is stale

A generated part sits between `<!-- BEGIN name -->` and `<!-- END name -->` lines, so the
prose around it stays hand-written. Parts, by name:

- `settings`: every LAZYGRAD_* variable, from `lazygrad.config.ENV` and its `HELP` table
  (docs/tables.py, which also makes the site's generated tables).
- `output:train`: what the training example (the python block after `<!-- training example -->`)
  prints, run in a fresh process in a temporary directory.
- `output:dump-explain`, `output:dump-kernel`, `output:dump-schedule`: `lazygrad-dump --explain`
  of examples/quickstart.py (its --explain lines, the head of kernel 01's source, kernel 01's
  schedule entry without its timing and cache rows), at a fixed target
  (`LAZYGRAD_TARGET=256`, probe and tuner off) so they are the same on every machine.

tests/test_readme.py runs the example verbatim and checks both parts against this script.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import settings_table  # noqa: E402  (docs/tables.py, beside this script)

README = ROOT / "README.md"
EXAMPLE_MARK = "<!-- training example -->"
PART = re.compile(r"(<!-- BEGIN (?P<name>\S+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.S)


def training_example(readme: str) -> str:
    """The python source of the README's training example (the fenced block after the mark)."""
    start = readme.index(EXAMPLE_MARK)
    m = re.compile(r"```python\n(.*?)```", re.S).search(readme, start)
    if m is None:
        raise ValueError(f"README.md: no ```python block after {EXAMPLE_MARK}")
    return m.group(1)


def run_example(code: str) -> str:
    """What `code` prints to stdout, run as a script in a fresh process and an empty directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the README's training example failed:\n{out.stderr}")
    return out.stdout


DUMP_ENV = {"LAZYGRAD_TARGET": "256", "LAZYGRAD_PROBE": "0", "LAZYGRAD_TUNE": "0", "COLUMNS": "100"}
_dump_cache: dict[str, str] = {}


def dump_quickstart() -> dict[str, str]:
    """The three dump parts, from one run of lazygrad-dump on examples/quickstart.py."""
    if _dump_cache:
        return _dump_cache
    env = {**os.environ, **DUMP_ENV,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("LAZYGRAD_DEBUG", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "lazygrad.dump", "--out", "dump", "--explain",
                              str(ROOT / "examples" / "quickstart.py")], cwd=tmp, env=env,
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"lazygrad-dump of examples/quickstart.py failed:\n{out.stderr}")
        d = Path(tmp) / "dump"
        kernel = sorted(d.glob("01_*.cl"))[0].read_text().splitlines()
        schedule = (d / "schedule.txt").read_text().split("=== launch sequence ===")[0]
        explain = (d / "explain.txt").read_text()
    entry = re.search(r"^\[01\] .*?(?=^\[02\] |^=== |\Z)", schedule, re.S | re.M).group(0)
    keep = [line for line in entry.rstrip().splitlines() if not re.match(r"\s+(launch|program)\s", line)]
    cut = next(i for i, line in enumerate(kernel) if line.lstrip().startswith("__kernel")) + 6
    _dump_cache.update({
        "output:dump-explain": fenced(explain + "lazygrad-dump: " + out.stderr.strip().split("lazygrad-dump: ")[-1]),
        "output:dump-kernel": fenced("\n".join(kernel[:cut]) + "\n  ...", "c"),
        "output:dump-schedule": fenced("\n".join(keep)),
    })
    return _dump_cache


def fenced(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


def render(readme: str, run: bool = True) -> str:
    """README text with every generated part rebuilt (`run=False` keeps example outputs as they
    are, to check the rest without running the example)."""
    makers: dict[str, Callable[[], str]] = {
        "settings": settings_table,
        "output:train": lambda: fenced(run_example(training_example(readme))),
        **{name: (lambda name=name: dump_quickstart()[name])
           for name in ("output:dump-explain", "output:dump-kernel", "output:dump-schedule")},
    }
    def part(m: re.Match) -> str:
        name = m.group("name")
        if name not in makers:
            raise KeyError(f"README.md: unknown generated part {name!r} (known: {sorted(makers)})")
        body = m.group("body") if name.startswith("output:") and not run else makers[name]()
        return m.group(1) + body + m.group(4)
    return PART.sub(part, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = ap.parse_args(argv)
    old = README.read_text()
    new = render(old)
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md", "generated"))
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
