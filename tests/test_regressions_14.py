"""Regressions found by the differential fuzzer (tests/fuzz, batch 14) and the issue behind it:
each test compares a lazygrad result with torch (float64 torch where precision matters)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazygrad as lg
from lazygrad import Tensor

from conftest import close

nan, inf = float("nan"), float("inf")


def _t(a, dtype=torch.float32, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


# --- codegen: a negative literal is an atom ---------------------------------------------------------
@pytest.mark.parametrize("dtype, tdtype", [(lg.int64, torch.int64), (lg.int32, torch.int32), (lg.float32, torch.float32)])
def test_negation_of_a_negative_constant_builds_and_matches_torch(dtype, tdtype):
    # `-` of the literal -7 was rendered `(--7L)`: a decrement of a literal, a build error
    x = Tensor.full((1, 5), -7, dtype=dtype)
    close(-x, -torch.full((1, 5), -7, dtype=tdtype).numpy())
    close((-x).maximum(Tensor.full((1, 5), -3, dtype=dtype)), torch.full((1, 5), 7, dtype=tdtype).numpy())


# --- clip with a NaN bound ----------------------------------------------------------------------------
@pytest.mark.parametrize("lo, hi", [(nan, 2.0), (0.0, nan), (nan, None), (None, nan)])
def test_clip_with_a_nan_bound_is_nan_like_torch(lo, hi):
    data = [1.0, nan, 3.0, -inf]
    close(Tensor(data).clip(lo, hi), torch.clamp(_t(data), lo, hi).numpy())


def test_clip_with_a_tensor_bound_holding_nan_matches_torch():
    data, lo = [1.0, 2.0, 3.0], [0.0, nan, 5.0]
    close(Tensor(data).clip(Tensor(lo)), torch.clamp(_t(data), min=_t(lo)).numpy())
