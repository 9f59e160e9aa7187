"""Shared test helpers: random inputs and comparison against numpy. The test session runs with
LAZYGRAD_CHECK_INDEX=1 (a lazy tensor index out of range raises at realize) and
LAZYGRAD_VERIFY=1 (the graph and lowered IR are checked on every realize) unless the
environment says otherwise."""
from __future__ import annotations

import os

os.environ.setdefault("LAZYGRAD_CHECK_INDEX", "1")
os.environ.setdefault("LAZYGRAD_VERIFY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lazygrad as lg  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def close(actual, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    a = actual.numpy() if isinstance(actual, lg.Tensor) else np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    if e.dtype == np.bool_ or np.issubdtype(e.dtype, np.integer):
        np.testing.assert_array_equal(a, e)
    else:
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
