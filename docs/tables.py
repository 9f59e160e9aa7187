"""Markdown tables generated from lazygrad's own tables, for the README and the documentation site.

- `settings_table()`: every LAZYGRAD_* variable, from `lazygrad.config.ENV` and `HELP`.
- `primitives_table()`: every primitive op, from `lazygrad.ops.PRIMITIVES` and the gradient
  rules `lazygrad.autodiff.vjp_rules` / `NO_GRAD_OPS`.
- `tensor_methods_table()`: every public Tensor method and property with the first sentence of
  its docstring.

docs/gen_readme.py writes the settings table into README.md; docs/hooks.py puts all three into
the site's pages at build time, where a page says `<!-- generated: NAME -->`.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cell(text: str) -> str:
    """Text for one table cell: a pipe outside a code span would end the cell, so it is escaped
    there (inside backticks Markdown's tables already leave it alone)."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def settings_table() -> str:
    """A markdown table of every variable lazygrad reads, in ENV's order (the legacy alias last)."""
    from lazygrad.config import ENV, HELP

    rows = ["| variable | values | effect | `override` field |", "|---|---|---|---|"]
    for name in [*ENV, *(n for n in HELP if n not in ENV)]:
        values, effect = HELP[name]
        field = f"`{ENV[name][0]}`" if name in ENV else "—"
        rows.append(f"| `{name}` | {values} | {effect} | {field} |")
    return "\n".join(rows) + "\n"


def primitives_table() -> str:
    """One row per primitive op: category, arity, OpenCL C, numpy reference, gradient rule."""
    from lazygrad.autodiff import NO_GRAD_OPS, vjp_rules
    from lazygrad.ops import PRIMITIVES

    rows = ["| op | category | arity | OpenCL C | OpenCL C for integers | numpy reference | gradient |",
            "|---|---|---|---|---|---|---|"]
    for op, p in PRIMITIVES.items():
        cl = _cell(f"`{p.cl}`") if p.cl else "template"
        cl_int = _cell(f"`{p.cl_int}`") if p.cl_int else ""
        ref = f"`np.{p.np.__name__}`" if p.np is not None and p.np.__module__ == "numpy" else (
            "yes" if p.np is not None else "")
        grad = "VJP rule" if op in vjp_rules else "none" if op in NO_GRAD_OPS else "?"
        rows.append(f"| `{op.value}` | {p.category} | {p.arity} | {cl} | {cl_int} | {ref} | {grad} |")
    return "\n".join(rows) + "\n"


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split("\n\n")[0].split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


def tensor_methods_table() -> str:
    """Every public Tensor method and property, alphabetically, with its summary; aliases
    (`view` of `reshape`) say so."""
    from lazygrad import Tensor

    rows = ["| method | what it does |", "|---|---|"]
    for name in sorted(n for n in dir(Tensor) if not n.startswith("_")):
        attr = inspect.getattr_static(Tensor, name)
        if not (callable(attr) or isinstance(attr, (property, staticmethod))):
            continue
        func = getattr(attr, "__func__", getattr(attr, "fget", attr))
        real = getattr(func, "__name__", name)
        kind = " (property)" if isinstance(attr, property) else " (static)" if isinstance(attr, staticmethod) else ""
        alias = f" Alias of `{real}`." if real != name and not real.startswith("__") else ""
        summary = _first_sentence(inspect.getdoc(getattr(Tensor, name)) or "")
        rows.append(f"| `{name}`{kind} | {_cell(summary)}{alias} |")
    return "\n".join(rows) + "\n"


TABLES = {"settings": settings_table, "primitives": primitives_table, "tensor-methods": tensor_methods_table}
