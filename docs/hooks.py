"""mkdocs hook: put the tables generated from lazygrad's own tables into the pages.

A page line `<!-- generated: NAME -->` becomes `tables.TABLES[NAME]()` at build time, so the
settings, Tensor methods and primitive ops pages never go stale.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import TABLES  # noqa: E402  (docs/tables.py, beside this file)

MARK = re.compile(r"^<!-- generated: (\S+) -->$", re.M)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (mkdocs' signature)
    def table(m: re.Match) -> str:
        name = m.group(1)
        if name not in TABLES:
            raise KeyError(f"{page.file.src_path}: unknown generated table {name!r} (known: {sorted(TABLES)})")
        return TABLES[name]()
    return MARK.sub(table, markdown)
