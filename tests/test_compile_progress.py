"""The progress line of a long plan build (lazygrad/runtime/progress.py): shown when a build
outlasts NOTICE_S and progress is on, silent for short builds, cached plans and LAZYGRAD_PROGRESS=0,
and its thread never outlives the build (not even one that raises)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import lazygrad.runtime.progress as cp
from lazygrad import Tensor

_fresh = iter(range(10**6))


def _new_graph() -> Tensor:
    """A graph whose kernel no earlier test compiled: a constant of its own in the source."""
    c = 1.0 + next(_fresh) * 1e-3 + float(np.random.default_rng().random()) * 1e-6
    return ((Tensor(np.ones((8, 8), np.float32)) * c).exp() + c).sum(1)


def _progress_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lazygrad-build-progress"]


def test_a_long_build_shows_a_line_and_a_cached_plan_none(monkeypatch, capsys):
    monkeypatch.setenv("LAZYGRAD_PROGRESS", "1")
    monkeypatch.setenv("LAZYGRAD_CACHE", "0")
    monkeypatch.setattr(cp, "NOTICE_S", 0.0)   # every build counts as long
    monkeypatch.setattr(cp, "REFRESH_S", 0.01)
    _new_graph().numpy()
    err = capsys.readouterr().err
    assert "lazygrad: building a new plan [00:00], programs compiled: " in err
    assert err.rstrip().endswith(("programs compiled: 1", "programs compiled: 2"))
    assert not _progress_threads()
    # the same structure again: the plan is cached, nothing is built, nothing is printed
    def step(a: np.ndarray) -> np.ndarray:
        return (Tensor(a) * 2 + 1).numpy()
    step(np.ones((8, 8), np.float32))
    capsys.readouterr()
    step(np.zeros((8, 8), np.float32))   # new data, same graph
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mode", ["0", "auto"])   # auto: stderr is not a terminal under pytest
def test_off_or_not_a_terminal_prints_nothing(monkeypatch, capsys, mode):
    monkeypatch.setenv("LAZYGRAD_PROGRESS", mode)
    monkeypatch.setattr(cp, "NOTICE_S", 0.0)
    _new_graph().numpy()
    assert "building a new plan" not in capsys.readouterr().err


def test_a_short_build_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("LAZYGRAD_PROGRESS", "1")
    monkeypatch.setattr(cp, "NOTICE_S", 60.0)
    _new_graph().numpy()
    assert "building a new plan" not in capsys.readouterr().err and not _progress_threads()


def test_the_line_ends_with_a_build_that_raises(monkeypatch, capsys):
    monkeypatch.setenv("LAZYGRAD_PROGRESS", "1")
    monkeypatch.setattr(cp, "NOTICE_S", 0.0)
    with pytest.raises(RuntimeError, match="boom"):
        with cp.building_plan():
            raise RuntimeError("boom")
    assert not _progress_threads()
