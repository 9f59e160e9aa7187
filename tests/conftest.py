"""Shared test helpers: random inputs and comparison against numpy."""
from __future__ import annotations

import numpy as np
import pytest

import lazygrad as lg


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
