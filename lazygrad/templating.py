"""Loading the Jinja OpenCL templates (top-level templates/, shipped as lazygrad.templates).

Public names: template.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

_TEMPLATE_DIRS = [Path(__file__).resolve().parent.parent / "templates", Path(__file__).resolve().parent / "templates"]


def _template_dirs() -> list[str]:
    """The source tree's templates/ (editable installs) or the installed lazygrad.templates."""
    dirs = [str(d) for d in _TEMPLATE_DIRS if (d / "elementwise.cl.j2").is_file()]
    if not dirs:
        from importlib.resources import files
        dirs.append(str(files("lazygrad.templates")))
    return dirs


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_template_dirs()), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def template(name: str) -> jinja2.Template:
    return _env().get_template(name)
