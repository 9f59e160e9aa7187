"""Bad input raises when the op is built, naming the op, shapes and dtypes."""
from __future__ import annotations

import numpy as np
import pytest

import lazygrad as lg
from lazygrad import Tensor

X = Tensor(np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("fn, exc, match", [
    (lambda: X + Tensor(np.zeros((4,), np.float32)), ValueError, r"add: shapes \(2, 3\) and \(4,\)"),
    (lambda: X.where(X, Tensor(np.zeros((5, 1)))), ValueError, "where"),
    (lambda: X.sum(axis=2), IndexError, "sum: axis 2 is out of range"),
    (lambda: X.max(axis=-3), IndexError, "max: axis -3"),
    (lambda: X.softmax(axis=5), IndexError, "axis 5"),
    (lambda: X.reshape(4, 2), ValueError, r"reshape: cannot reshape tensor of shape \(2, 3\)"),
    (lambda: X.reshape(-1, -1), ValueError, "only one dimension can be -1"),
    (lambda: X.permute(0, 0), ValueError, "permute"),
    (lambda: X.expand(4, 3), ValueError, "expand: cannot expand shape"),
    (lambda: X[2], IndexError, "index 2 is out of bounds for dim 0 with size 2"),
    (lambda: X[0, -4], IndexError, "index -4 is out of bounds"),
    (lambda: X[0, 0, 0], IndexError, "too many indices"),
    (lambda: X[..., ...], IndexError, "single ellipsis"),
    (lambda: X[::0], ValueError, "step cannot be zero"),
    (lambda: X @ Tensor(np.zeros((2, 3))), ValueError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: Tensor(["a", "b"]), TypeError, "numeric"),
    (lambda: Tensor([[1, 2], [3]]), ValueError, "rectangular"),
    (lambda: Tensor({"a": 1}), TypeError, "numeric"),
    (lambda: Tensor.zeros(-1, 2), ValueError, "negative size"),
    (lambda: Tensor.zeros(2**30, 2**30), ValueError, "more elements"),
    (lambda: lg.cat([X, Tensor(np.zeros((2, 4)))], dim=0), ValueError, "cat: shapes"),
    (lambda: lg.stack([X, Tensor(np.zeros((3, 2)))]), ValueError, "stack"),
    (lambda: Tensor([1, 2]).requires_grad_(), TypeError, "floating point"),
    (lambda: X.pad(((1, 1),) * 3), ValueError, "pad"),
    (lambda: ~X, TypeError, "invert"),
    (lambda: Tensor([np.nan]).cast(lg.int32).numpy() if False else Tensor([np.nan], dtype=lg.int32), ValueError, "NaN"),
    (lambda: Tensor([2**40], dtype=lg.int32), OverflowError, "out of range"),
])
def test_bad_input_raises_at_build_time(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_error_happens_before_any_kernel():
    lg.counters.reset()
    with pytest.raises(ValueError):
        (X.exp() + Tensor(np.zeros((7,), np.float32))).sum()
    assert lg.counters.kernels_launched == 0
