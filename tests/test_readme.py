"""The README is real: its training example runs verbatim and prints what the README says, its
generated parts (settings table) match docs/gen_readme.py, and its links point at files."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import numpy as np

from lazygrad.config import ENV

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _gen():
    spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "docs" / "gen_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _gen()


def test_training_example_runs_verbatim_and_prints_the_readme_output(tmp_path, monkeypatch):
    code = gen.training_example(README)
    assert "DataLoader" in code and "state_dict" in code and ".backward()" in code and "opt.step()" in code
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    scope: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "model.safetensors").stat().st_size > 0
    assert scope["acc"] > 0.9                                    # it learned
    # the restored model is the trained one
    x = scope["lg"].Tensor(scope["X"][:16])
    np.testing.assert_array_equal(scope["restored"](x).numpy(), scope["model"](x).numpy())
    block = gen.PART.search(README[README.index("<!-- BEGIN output:train -->"):])
    assert block.group("body") == gen.fenced(out.getvalue()), "README output is stale: python docs/gen_readme.py"


def test_readme_generated_parts_are_up_to_date():
    assert gen.render(README, run=False) == README, "README is stale: run python docs/gen_readme.py"


def test_settings_table_lists_every_variable():
    table = README[README.index("<!-- BEGIN settings -->"):README.index("<!-- END settings -->")]
    rows = re.findall(r"^\| `(LAZYGRAD_\w+)` \|", table, re.M)
    assert set(ENV) <= set(rows) and len(rows) == len(set(rows))


def test_readme_links_point_at_files():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert "docs/design.md" in links and "../shared/DESIGN.md" not in README
    for link in links:
        assert (ROOT / link).exists(), link
