"""The refactoring oracle (tests/oracle): the examples and the quick benchmark cases generate
exactly the recorded kernels — same sources (comments aside), kinds, reasons and counts.
A change meant to alter generated code regenerates the corpus: `python -m tests.oracle --update`."""
from __future__ import annotations

import json

from tests.oracle.capture import CORPUS, capture
from tests.oracle.compare import differences


def test_generated_kernels_match_the_recorded_corpus():
    recorded = json.loads(CORPUS.read_text())
    now = capture()
    assert sum(map(len, now.values())) > 100 and len(now) == len(recorded)
    diffs = differences(recorded, now)
    assert not diffs, "generated kernels changed (python -m tests.oracle shows all; --update records):\n" + \
        "\n".join(diffs[:20])


def test_the_oracle_sees_a_change():
    """The comparison is not vacuous: one changed line of one kernel is reported."""
    recorded = json.loads(CORPUS.read_text())
    prog = next(iter(recorded))
    changed = json.loads(json.dumps(recorded))
    changed[prog][0]["source"] += "\n// different"
    changed[prog][0]["reasons"] = ["other"]
    diffs = differences(recorded, changed)
    assert any("source differs" in d for d in diffs) and any("reasons differs" in d for d in diffs)
    fewer = {**recorded, prog: recorded[prog][1:]}
    assert any("kernels recorded" in d for d in differences(recorded, fewer))
