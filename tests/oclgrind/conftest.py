"""The Oclgrind target runs only when asked for: `python -m pytest -m oclgrind tests/oclgrind`
(it simulates every kernel; .ci/run runs it as a separate step)."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "oclgrind" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="Oclgrind target: run with `python -m pytest -m oclgrind tests/oclgrind`")
    for item in items:
        if item.get_closest_marker("oclgrind") is not None:
            item.add_marker(skip)
