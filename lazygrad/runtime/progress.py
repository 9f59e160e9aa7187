"""A progress line while a realize builds a plan for long: the first step of a training run
renders, tunes and compiles every kernel (0.2-0.6 s per program on PoCL), and a silent pause of
several seconds looks like a hang.

`with building_plan():` wraps one plan build. If it is still running after `NOTICE_S` seconds,
a tqdm line on stderr shows the elapsed time and the programs compiled so far, refreshed by a
background thread (the builds are blocking driver calls that release the GIL), and it stays
as a record of how long the build took. Shorter builds and cached plans print nothing.

Whether it shows is the `progress` setting (LAZYGRAD_PROGRESS): `auto` (default) only when
stderr is a terminal, `1` always, `0` never.

Public names: NOTICE_S, REFRESH_S, wants_progress, building_plan.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lazygrad.config import settings
from lazygrad.counters import counters

NOTICE_S = 1.0    # builds shorter than this show no line
REFRESH_S = 0.25  # how often the line's elapsed time is redrawn


def wants_progress() -> bool:
    mode = settings().progress
    if mode == "auto":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return mode == "1"


class _BuildLine:
    """The background thread that waits NOTICE_S, then draws and refreshes the tqdm line."""

    def __init__(self) -> None:
        self.compiled0 = counters.programs_compiled
        self.done = threading.Event()
        self.bar = None
        self.thread = threading.Thread(target=self._run, name="lazygrad-build-progress", daemon=True)
        self.thread.start()

    def _compiled(self) -> int:
        return counters.programs_compiled - self.compiled0

    def _run(self) -> None:
        if self.done.wait(NOTICE_S):
            return
        from tqdm import tqdm
        self.bar = tqdm(desc="lazygrad: building a new plan", file=sys.stderr, dynamic_ncols=True,
                        bar_format="{desc} [{elapsed}], programs compiled: {n}")
        while not self.done.wait(REFRESH_S):
            self._draw()

    def _draw(self) -> None:
        self.bar.n = self._compiled()
        self.bar.refresh()

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        if self.bar is not None:
            self._draw()
            self.bar.close()


@contextmanager
def building_plan() -> Iterator[None]:
    """Around one plan build: a progress line if it takes longer than NOTICE_S."""
    if not wants_progress():
        yield
        return
    line = _BuildLine()
    try:
        yield
    finally:
        line.close()
