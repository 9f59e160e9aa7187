"""Regressions found by a differential run against torch (batch 13): each test compares a
lazygrad result with torch (float64 torch where precision matters)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lazygrad as lg
from lazygrad import Tensor

from conftest import close


@pytest.fixture(autouse=True)
def _no_tuning(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_TUNE", "0")


def _t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# --- 1. matmul operands seen through a reshaped padded view ---------------------------------------
@pytest.mark.parametrize("pack", ["auto", "0", "1"])
def test_matmul_of_reshaped_padded_column_matches_torch(monkeypatch, pack):
    monkeypatch.setenv("LAZYGRAD_MATMUL_PACK", pack)
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    b = Tensor(x).pad(((1, 1), (1, 1))).reshape(25, 1)
    out = Tensor.ones(1, 25) @ b
    tb = F.pad(torch.tensor(x), (1, 1, 1, 1)).reshape(25, 1)
    close(out, (torch.ones(1, 25) @ tb).numpy())
    assert out.item() == 36.0


def test_matmul_of_reshaped_padded_row_and_column_operands_match_torch():
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    tx = F.pad(torch.tensor(x), (1, 1, 1, 1))
    a = Tensor(x).pad(((1, 1), (1, 1))).reshape(1, 25) @ Tensor.ones(25, 4)
    close(a, (tx.reshape(1, 25) @ torch.ones(25, 4)).numpy())
    c = Tensor(x).pad(((1, 1), (1, 1))).reshape(25, 1) @ Tensor(np.arange(3, dtype=np.float32).reshape(1, 3))
    close(c, (tx.reshape(25, 1) @ torch.arange(3.0).reshape(1, 3)).numpy())


@pytest.mark.parametrize("cin,cout,padding", [(1, 3, 1), (1, 1, 1), (1, 2, 2)])
def test_conv2d_1x1_padded_single_channel_weight_grad_matches_torch(rng, cin, cout, padding):
    xn = rng.standard_normal((2, cin, 5, 5)).astype(np.float32)
    wn = rng.standard_normal((cout, cin, 1, 1)).astype(np.float32)
    x, w = Tensor(xn, requires_grad=True), Tensor(wn, requires_grad=True)
    y = x.conv2d(w, padding=padding)
    (y * y).sum().backward()
    tx, tw = _t64(xn, True), _t64(wn, True)
    ty = F.conv2d(tx, tw, padding=padding)
    (ty * ty).sum().backward()
    close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    close(w.grad, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    close(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
