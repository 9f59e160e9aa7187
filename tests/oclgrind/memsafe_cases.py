"""Kernel cases for the memory-safety check: run as a script under Oclgrind.

    oclgrind --check-api --data-races --uninitialized python tests/oclgrind/memsafe_cases.py

Each case builds a small lazy computation hitting one kernel template family on an edge-case
shape (size 1, sizes that are not multiples of the vector width, views with offsets and
negative strides, padding, broadcasting, bool/int dtypes, rand), realizes it and compares it
with numpy. Before a case runs the script writes `@@case NAME` to stderr and after it
`@@done NAME ok|FAIL ...`, so whatever Oclgrind reports in between belongs to that case. The
last stderr line is `@@coverage {json}`: for every case, which templates and template modes
its kernels used (see `kernel_tags`).

Not collected by pytest itself (no test_ prefix): tests/oclgrind/test_memsafe.py runs it.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
import re
import math
import os
import sys
import traceback
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import lazygrad as lg  # noqa: E402
import lazygrad.nn.functional as F  # noqa: E402
from lazygrad import Tensor  # noqa: E402
from lazygrad.ir.random import rand_reference  # noqa: E402

Case = Callable[[], "tuple[Tensor | list[Tensor], np.ndarray | list[np.ndarray]]"]
CASES: dict[str, Case] = {}
_rendered: list[str] = []   # template names rendered while the current case was built


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def arr(*shape: int, lo: float = -2.0, hi: float = 2.0, seed: int = 0) -> np.ndarray:
    """Deterministic float32 data without exact ties (keeps max/argmax unambiguous)."""
    n = math.prod(shape)
    rng = np.random.default_rng(seed + 17 * n)
    return rng.uniform(lo, hi, n).astype(np.float32).reshape(shape)


# --- elementwise: vector, vector_tail, scalar ----------------------------------------------------
@case
def ew_vector_2d() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 16)
    return (Tensor(a) * 2 + 1).exp(), np.exp(a * 2 + 1)


@case
def ew_vector_tail_37() -> tuple[Tensor, np.ndarray]:
    a = arr(37)
    return Tensor(a).tanh() * 3 - 1, np.tanh(a) * 3 - 1


@case
def ew_size_1() -> tuple[Tensor, np.ndarray]:
    a = arr(1)
    return Tensor(a).sigmoid(), 1 / (1 + np.exp(-a))


@case
def ew_scalar_0d() -> tuple[Tensor, np.ndarray]:
    return Tensor(3.0) * 2 + 1, np.float32(7.0)


@case
def ew_scalar_odd_2d() -> tuple[Tensor, np.ndarray]:
    a, b = arr(3, 5), arr(3, 5, seed=1)
    return Tensor(a).maximum(Tensor(b)) / 3, np.maximum(a, b) / 3


@case
def ew_broadcast() -> tuple[Tensor, np.ndarray]:
    a, b = arr(3, 1), arr(1, 13, seed=1)
    return Tensor(a) + Tensor(b), a + b


@case
def ew_broadcast_vector_row() -> tuple[Tensor, np.ndarray]:
    a, b = arr(4, 24), arr(24, seed=1)
    return Tensor(a) * Tensor(b), a * b


@case
def ew_offset_slice() -> tuple[Tensor, np.ndarray]:
    a = arr(45)
    return Tensor(a)[3:40] + 1, a[3:40] + 1


@case
def ew_negative_step_slice() -> tuple[Tensor, np.ndarray]:
    a = arr(41)
    return Tensor(a)[::-3] * 2, a[::-3] * 2


@case
def ew_negative_step_2d() -> tuple[Tensor, np.ndarray]:
    a = arr(7, 19)
    return Tensor(a)[5:0:-2, 17:1:-3] - 1, a[5:0:-2, 17:1:-3] - 1


@case
def ew_flip_vector_width() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 32)
    return Tensor(a).flip(1) + Tensor(a), a[:, ::-1] + a


@case
def ew_flip_tail() -> tuple[Tensor, np.ndarray]:
    a = arr(35)
    return Tensor(a).flip(0).exp(), np.exp(a[::-1])


@case
def ew_permute() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 5, 8)
    return Tensor(a).permute(2, 0, 1) * 1.5, a.transpose(2, 0, 1) * 1.5


@case
def ew_pad() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 5)
    return Tensor(a).pad(((1, 2), (3, 0)), value=-1.0) + 1, np.pad(a, ((1, 2), (3, 0)), constant_values=-1.0) + 1


@case
def ew_pad_vector() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 13)
    return Tensor(a).pad(((0, 0), (2, 1))) * 2, np.pad(a, ((0, 0), (2, 1))) * 2


@case
def ew_negative_pad_crop() -> tuple[Tensor, np.ndarray]:
    a = arr(6, 9)
    return Tensor(a).pad(((-1, 2), (1, -3))), np.pad(a[1:, :-3], ((0, 2), (1, 0)))


@case
def ew_cat() -> tuple[Tensor, np.ndarray]:
    a, b, c = arr(2, 3), arr(2, 5, seed=1), arr(2, 1, seed=2)
    return lg.cat([Tensor(a), Tensor(b), Tensor(c)], dim=1), np.concatenate([a, b, c], 1)


@case
def ew_cat_flipped_views() -> tuple[Tensor, np.ndarray]:
    a = arr(17)
    t = Tensor(a)
    return lg.cat([t[::-2], t[1:4], t.flip(0)[:5]]), np.concatenate([a[::-2], a[1:4], a[::-1][:5]])


@case
def ew_stack() -> tuple[Tensor, np.ndarray]:
    a, b = arr(3, 4), arr(3, 4, seed=1)
    return lg.stack([Tensor(a), Tensor(b)], dim=1), np.stack([a, b], 1)


@case
def ew_repeat_expand() -> tuple[Tensor, np.ndarray]:
    a = arr(1, 3)
    return Tensor(a).repeat(2, 3), np.tile(a, (2, 3))


@case
def ew_bool_ops() -> tuple[Tensor, np.ndarray]:
    a, b = arr(37), arr(37, seed=1)
    ta, tb = Tensor(a), Tensor(b)
    return ((ta > tb) & (ta > 0)) | ~(tb < 0.5), ((a > b) & (a > 0)) | ~(b < 0.5)


@case
def ew_bool_vector() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 16)
    return (Tensor(a) > 0).logical_not(), ~(a > 0)


@case
def ew_where_mixed() -> tuple[Tensor, np.ndarray]:
    a, b = arr(3, 11), arr(3, 11, seed=1)
    return Tensor.where(Tensor(a) > Tensor(b), Tensor(a), 0.5), np.where(a > b, a, np.float32(0.5))


@case
def ew_int_arith() -> tuple[Tensor, np.ndarray]:
    a = np.arange(-20, 17, dtype=np.int32)
    b = np.array([3, -4, 5, 7, -2] * 7 + [1, 9], dtype=np.int32)
    return Tensor(a) // Tensor(b) + Tensor(a) % Tensor(b) * 2, a // b + a % b * 2


@case
def ew_int_vector() -> tuple[Tensor, np.ndarray]:
    a = np.arange(32, dtype=np.int32).reshape(2, 16)
    return Tensor(a) * 3 - 7, a * 3 - 7


@case
def ew_casts() -> tuple[Tensor, np.ndarray]:
    a = arr(37, lo=-5, hi=5)
    t = Tensor(a)
    return (t.int().float() + (t > 0).float()) * 1.0, a.astype(np.int32).astype(np.float32) + (a > 0)


@case
def ew_bool_to_int_sum_free() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 3)
    return (Tensor(a) > 0).int() + 1, (a > 0).astype(np.int32) + 1


@case
def ew_float64() -> tuple[Tensor, np.ndarray]:
    a = arr(21).astype(np.float64)
    return Tensor(a, dtype=lg.float64).abs().sqrt() * 2, np.sqrt(np.abs(a)) * 2


@case
def ew_rand() -> tuple[Tensor, np.ndarray]:
    t = Tensor.rand(37)
    return t * 2, rand_reference(t.node.arg, 37) * 2


@case
def ew_rand_vector() -> tuple[Tensor, np.ndarray]:
    t = Tensor.rand(2, 16)
    return t + 0, rand_reference(t.node.arg, 32).reshape(2, 16)


@case
def ew_dropout_like() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 7)
    r = Tensor.rand(3, 7)
    keep = rand_reference(r.node.arg, 21).reshape(3, 7) >= 0.5
    return (r >= 0.5).where(Tensor(a) * 2, 0.0), np.where(keep, a * 2, 0).astype(np.float32)


@case
def ew_getitem_int_index() -> tuple[Tensor, np.ndarray]:
    a = arr(4, 9)
    return Tensor(a)[2] + Tensor(a)[-1, ::2].sum(), a[2] + a[-1, ::2].sum()


@case
def ew_advanced_index() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 3)
    idx = [4, 0, -1, 2]
    return Tensor(a)[idx], a[idx]


# --- reductions: one output per work-item (lsz == 1) and work-group trees (lsz > 1) ----------------
@case
def red_full_sum_group() -> tuple[Tensor, np.ndarray]:
    a = arr(1000)
    return Tensor(a).sum(), a.sum(dtype=np.float64)


@case
def red_full_sum_odd_group() -> tuple[Tensor, np.ndarray]:
    a = arr(997)
    return (Tensor(a) * 2).sum(), (a * 2).sum(dtype=np.float64)


@case
def red_size_1() -> tuple[Tensor, np.ndarray]:
    a = arr(1)
    return Tensor(a).sum() + Tensor(a).max(), a.sum() + a.max()


@case
def red_rows_per_item() -> tuple[Tensor, np.ndarray]:
    a = arr(13, 24)
    return Tensor(a).sum(1), a.sum(1)


@case
def red_rows_odd() -> tuple[Tensor, np.ndarray]:
    a = arr(11, 7)
    return Tensor(a).amax(1), a.max(1)


@case
def red_cols_axis0() -> tuple[Tensor, np.ndarray]:
    a = arr(9, 10)
    return Tensor(a).sum(0), a.sum(0)


@case
def red_few_rows_group() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 200)
    return (Tensor(a).exp() * 2).sum(1) + 1, (np.exp(a) * 2).sum(1) + 1


@case
def red_flipped_input() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 19)
    return Tensor(a).flip(1)[:, ::2].sum(1), a[:, ::-1][:, ::2].sum(1)


@case
def red_permuted_input() -> tuple[Tensor, np.ndarray]:
    a = arr(6, 4, 10)
    return Tensor(a).permute(2, 0, 1).amax(2), a.transpose(2, 0, 1).max(2)


@case
def red_padded_input() -> tuple[Tensor, np.ndarray]:
    a = arr(4, 6)
    return Tensor(a).pad(((1, 1), (2, 3)), value=0.5).sum(1), np.pad(a, ((1, 1), (2, 3)), constant_values=0.5).sum(1)


@case
def red_int_sum_and_max() -> tuple[Tensor, np.ndarray]:
    a = np.arange(-30, 33, dtype=np.int32).reshape(7, 9)
    return Tensor(a).sum(1) + Tensor(a).amax(1), a.sum(1) + a.max(1)


@case
def red_bool_any_all() -> tuple[Tensor, np.ndarray]:
    a = arr(6, 5)
    t = Tensor(a)
    return (t > 1.5).any(1) | (t > -1.9).all(1), (a > 1.5).any(1) | (a > -1.9).all(1)


@case
def red_keepdim_softmax() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 13)
    e = np.exp(a - a.max(1, keepdims=True))
    return Tensor(a).softmax(1), e / e.sum(1, keepdims=True)


@case
def red_log_softmax_vector() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 32)
    d = a - a.max(1, keepdims=True)
    return Tensor(a).log_softmax(1), d - np.log(np.exp(d).sum(1, keepdims=True))


@case
def red_argmax() -> tuple[Tensor, np.ndarray]:
    a = arr(4, 11)
    return Tensor(a).argmax(1), a.argmax(1).astype(np.int32)


@case
def red_var_std() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 9)
    return Tensor(a).std(1) + Tensor(a).var(), a.std(1, ddof=1) + a.var(ddof=1)


@case
def red_broadcast_input() -> tuple[Tensor, np.ndarray]:
    a, b = arr(5, 1), arr(1, 7, seed=1)
    return (Tensor(a) * Tensor(b)).sum(0), (a * b).sum(0)


@case
def red_cumsum() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 9)
    return Tensor(a).cumsum(1), np.cumsum(a, 1)


@case
def red_zero_size_sum() -> tuple[Tensor, np.ndarray]:
    return Tensor(np.zeros((3, 0), np.float32)).sum(1) + 1, np.ones(3, np.float32)


@case
def red_split_two_pass() -> tuple[Tensor, np.ndarray]:
    a = arr(40_001)                                   # long axis, one output: split in two passes
    return Tensor(a).sum() * 0.5, a.sum(dtype=np.float64) * 0.5


@case
def red_split_rows_max() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 33_000)
    return Tensor(a).amax(1), a.max(1)


# --- row-wise kernels (reductions broadcast back over their rows) and multi-output kernels ---------
@case
def row_softmax_group() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 200)
    e = np.exp(a - a.max(1, keepdims=True))
    return Tensor(a).softmax(1), e / e.sum(1, keepdims=True)


@case
def row_softmax_unrolled_per_item() -> tuple[Tensor, np.ndarray]:
    a = arr(20, 72)                                   # 9 chunks of 8: 2 unrolled steps + remainder
    e = np.exp(a - a.max(1, keepdims=True))
    return Tensor(a).softmax(1), e / e.sum(1, keepdims=True)


@case
def row_softmax_unrolled_group() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 1032)                                  # 129 chunks over a work-group, unrolled
    e = np.exp(a - a.max(1, keepdims=True))
    return Tensor(a).softmax(1), e / e.sum(1, keepdims=True)


@case
def row_layernorm_per_item() -> tuple[Tensor, np.ndarray]:
    a = arr(13, 24)
    t = Tensor(a)
    mu = t.mean(1, keepdim=True)
    var = ((t - mu) ** 2).mean(1, keepdim=True)
    want = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5)
    return (t - mu) * (var + 1e-5).rsqrt(), want


@case
def row_log_softmax_odd() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 13)
    d = a - a.max(1, keepdims=True)
    return Tensor(a).log_softmax(1), d - np.log(np.exp(d).sum(1, keepdims=True))


@case
def row_softmax_flipped_view() -> tuple[Tensor, np.ndarray]:
    a = arr(4, 37)
    v = a[::-1, 1::2]
    e = np.exp(v - v.max(1, keepdims=True))
    return Tensor(a)[::-1, 1::2].softmax(1), e / e.sum(1, keepdims=True)


def _xent_mean(a: np.ndarray, target: np.ndarray, view=lambda t: t) -> tuple[Tensor, np.ndarray]:
    onehot = (np.arange(a.shape[1])[None] == target[:, None]).astype(np.float32)
    loss = -(view(Tensor(a)).log_softmax(1) * Tensor(onehot)).sum(1).mean()
    d = a - a.max(1, keepdims=True)
    lsm = d - np.log(np.exp(d).sum(1, keepdims=True))
    return loss, -(lsm * onehot).sum(1).mean()


@case
def rowtotal_xent_one_row() -> tuple[Tensor, np.ndarray]:
    return _xent_mean(arr(1, 12), np.array([5]))


@case
def rowtotal_xent_odd() -> tuple[Tensor, np.ndarray]:
    return _xent_mean(arr(37, 13), np.arange(37) % 13)


@case
def rowtotal_xent_wide() -> tuple[Tensor, np.ndarray]:
    return _xent_mean(arr(6, 40), np.array([1, 3, 0, 39, 2, 2]))


@case
def rowtotal_flipped_view() -> tuple[Tensor, np.ndarray]:
    a = arr(9, 11)
    loss, _ = _xent_mean(a, np.arange(9) % 11, view=lambda t: t.flip(1))
    _, want = _xent_mean(np.ascontiguousarray(a[:, ::-1]), np.arange(9) % 11)
    return loss, want


@case
def rowtotal_logsumexp_sum() -> tuple[Tensor, np.ndarray]:
    a = arr(5, 17)
    m = a.max(1, keepdims=True)
    return Tensor(a).logsumexp(1).sum(), (np.log(np.exp(a - m).sum(1)) + m[:, 0]).sum()


@case
def multi_output_elementwise() -> tuple[list[Tensor], list[np.ndarray]]:
    a = arr(37)
    t = Tensor(a).exp()
    return [t * 2, t + 1, (t > 1.5)], [np.exp(a) * 2, np.exp(a) + 1, np.exp(a) > 1.5]


@case
def multi_output_reduce() -> tuple[list[Tensor], list[np.ndarray]]:
    a = arr(6, 11)
    t = Tensor(a)
    return [t.sum(1), t.amax(1), t.exp().sum(1)], [a.sum(1), a.max(1), np.exp(a).sum(1)]


# --- matmul (and whatever template the matmul work adds) -------------------------------------------
@case
def mm_tiny() -> tuple[Tensor, np.ndarray]:
    a, b = arr(1, 1), arr(1, 1, seed=1)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_odd() -> tuple[Tensor, np.ndarray]:
    a, b = arr(5, 7), arr(7, 3, seed=1)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_tile_edges() -> tuple[Tensor, np.ndarray]:
    a, b = arr(9, 17), arr(17, 33, seed=1)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_transposed_views() -> tuple[Tensor, np.ndarray]:
    a, b = arr(6, 5), arr(7, 6, seed=1)
    return Tensor(a).T @ Tensor(b).T, a.T @ b.T


@case
def mm_flipped_sliced() -> tuple[Tensor, np.ndarray]:
    a, b = arr(8, 10), arr(10, 6, seed=1)
    return Tensor(a)[::-2, 1:] @ Tensor(b)[1:, ::-1], a[::-2, 1:] @ b[1:, ::-1]


@case
def mm_batched_broadcast() -> tuple[Tensor, np.ndarray]:
    a, b = arr(2, 3, 4), arr(4, 5, seed=1)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_vec() -> tuple[Tensor, np.ndarray]:
    a, b = arr(9), arr(9, 4, seed=1)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_epilogue() -> tuple[Tensor, np.ndarray]:
    x, w, bias = arr(5, 12), arr(12, 9, seed=1), arr(9, seed=2)
    return (Tensor(x) @ Tensor(w) + Tensor(bias)).relu(), np.maximum(x @ w + bias, 0)


@case
def mm_int() -> tuple[Tensor, np.ndarray]:
    a = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    b = np.arange(8, dtype=np.int32).reshape(4, 2)
    return Tensor(a) @ Tensor(b), a @ b


@case
def mm_packed_panels() -> tuple[Tensor, np.ndarray]:
    # both operands packed into panels (matmul_pack template), partial last tiles, epilogue
    os.environ["LAZYGRAD_MATMUL_PACK"] = "1"
    try:
        a, b, bias = arr(19, 11), arr(37, 19, seed=1), arr(37, seed=2)
        y = (Tensor(a).T @ Tensor(b).T + Tensor(bias)).relu()
        lg.schedule(y)  # graph built while packing is on
        return y, np.maximum(a.T @ b.T + bias, 0)
    finally:
        os.environ.pop("LAZYGRAD_MATMUL_PACK", None)


def np_conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0, dil: int = 1,
              groups: int = 1) -> np.ndarray:
    """torch's conv2d (no bias) by loops over kernel taps: the reference of the conv cases."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1, (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, o, oh, ow), np.float64)
    for co in range(o):
        g = co // (o // groups)
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dil:i * dil + stride * oh:stride, j * dil:j * dil + stride * ow:stride]
                out[:, co] += np.einsum("nchw,c->nhw", patch[:, :, :oh, :ow], w[co, :, i, j])
    return out.astype(x.dtype)


@case
def conv_im2col_pad_stride() -> tuple[Tensor, np.ndarray]:
    # im2col windows (padded, strided, grouped) packed by one copy kernel, bias in the epilogue
    os.environ["LAZYGRAD_CONV"] = "im2col"
    try:
        x, w, bias = arr(2, 4, 7, 6), arr(6, 2, 3, 2, seed=1), arr(6, seed=2)
        y = Tensor(x).conv2d(Tensor(w), Tensor(bias), stride=2, padding=1, groups=2)
        return y, np_conv2d(x, w, 2, 1, 1, 2) + bias[None, :, None, None]
    finally:
        os.environ.pop("LAZYGRAD_CONV", None)


@case
def conv_direct_pad_stride_groups() -> tuple[Tensor, np.ndarray]:
    # the direct kernel: padded edges, stride 2 (lanes gathered), 2 groups, bias in the epilogue
    x, w, bias = arr(2, 4, 7, 6), arr(6, 2, 3, 2, seed=1), arr(6, seed=2)
    y = Tensor(x).conv2d(Tensor(w), Tensor(bias), stride=2, padding=1, groups=2)
    return y, np_conv2d(x, w, 2, 1, 1, 2) + bias[None, :, None, None]


@case
def conv_direct_shifted_tail_relu() -> tuple[Tensor, np.ndarray]:
    # output width 11: the last block shifted back into the row stores only its new lanes
    x, w, bias = arr(1, 2, 5, 13), arr(3, 2, 3, 3, seed=1), arr(3, seed=2)
    y = Tensor(x).conv2d(Tensor(w), Tensor(bias)).relu()
    return y, np.maximum(np_conv2d(x, w) + bias[None, :, None, None], 0)


@case
def conv_direct_dilation2_pad2() -> tuple[Tensor, np.ndarray]:
    # edge blocks with constant columns: an in-row vector load and a swizzle with zero lanes
    x, w = arr(1, 2, 9, 12), arr(4, 2, 3, 3, seed=1)
    return Tensor(x).conv2d(Tensor(w), padding=2, dilation=2), np_conv2d(x, w, 1, 2, 2)


@case
def conv_direct_stride2_width37() -> tuple[Tensor, np.ndarray]:
    # stride 2 over a row of 37 (output 19): gathered lanes, a padded edge at both ends
    x, w = arr(1, 3, 6, 37), arr(2, 3, 3, 3, seed=1)
    return Tensor(x).conv2d(Tensor(w), stride=2, padding=1), np_conv2d(x, w, 2, 1)


@case
def conv_direct_row_narrower_than_vector() -> tuple[Tensor, np.ndarray]:
    # input row of 3 under padding 2: every block an edge block, lanes gathered one by one
    x, w = arr(1, 1, 3, 3), arr(2, 1, 3, 3, seed=1)
    return Tensor(x).conv2d(Tensor(w), padding=2), np_conv2d(x, w, 1, 2)


@case
def conv_direct_masked_lanes() -> tuple[Tensor, np.ndarray]:
    # a row of 2 padded by 32 columns each side: more edge blocks than get a loop each, so one
    # loop masks every lane at run time
    x, w = arr(1, 2, 3, 2), arr(2, 2, 2, 1, seed=1)
    want = np_conv2d(np.pad(x, ((0, 0), (0, 0), (0, 0), (32, 32))), w)
    return Tensor(x).conv2d(Tensor(w), padding=(0, 32)) * 2, want * 2


@case
def conv_direct_backward() -> tuple[list[Tensor], list[np.ndarray]]:
    # the gradient of the direct conv: the windows + matmul formulation's dx and dw
    x, w = arr(1, 2, 5, 9), arr(3, 2, 3, 3, seed=1)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    gx, gw = lg.grad(tx.conv2d(tw, padding=1).sum(), [tx, tw])
    ones = np.ones((1, 3, 5, 9), np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want_gw = np.stack([np.stack([xp[0, :, i:i + 5, j:j + 9].sum((1, 2)) for j in range(3)], -1)
                        for i in range(3)], -2)[None].repeat(3, 0)
    # dx: each input element gets the sum of the weights whose taps land on it (inside the output)
    want_gx = np_conv2d(ones, np.flip(w, (2, 3)).transpose(1, 0, 2, 3).copy(), 1, 1)
    return [gx, gw], [want_gx, want_gw]


@case
def red_group_vector_wide() -> tuple[Tensor, np.ndarray]:
    a = arr(2, 520)
    return (Tensor(a) * Tensor(a)).sum(1).sqrt(), np.sqrt((a * a).sum(1))


@case
def red_float64() -> tuple[Tensor, np.ndarray]:
    a = arr(3, 17).astype(np.float64)
    return Tensor(a, dtype=lg.float64).amax(1) - Tensor(a, dtype=lg.float64).sum(1), a.max(1) - a.sum(1)


@case
def red_expand_then_reduce() -> tuple[Tensor, np.ndarray]:
    a = arr(4, 1)
    return Tensor(a).expand(4, 9).sum(1), np.broadcast_to(a, (4, 9)).sum(1)


@case
def ew_cat_with_empty() -> tuple[Tensor, np.ndarray]:
    a, e = arr(3, 2), np.zeros((3, 0), np.float32)
    return lg.cat([Tensor(e), Tensor(a), Tensor(e)], dim=1) * 2, a * 2


@case
def ew_int64() -> tuple[Tensor, np.ndarray]:
    a = np.arange(-9, 28, dtype=np.int64) * 3_000_000_000
    return Tensor(a, dtype=lg.int64) // 7 + 1, a // 7 + 1


@case
def ew_new_primitives_tail_37() -> tuple[list[Tensor], list[np.ndarray]]:
    # issue 16's primitives: erf/erfc, inverse trigonometry, atan2, shifts with counts outside
    # the width (guarded in the graph: a raw C shift by >= 32 would be undefined), bitcasts
    import math as _m
    a = arr(37, lo=-0.9, hi=0.9)
    b = arr(37, seed=1)
    i = np.arange(-18, 19, dtype=np.int32) * 977
    c = (np.arange(37, dtype=np.int32) * 5) % 45 - 5
    t, ti, tc = Tensor(a), Tensor(i), Tensor(c)
    outs = [t.erf() + t.erfc() * 2 + t.asin() + t.acos() + t.atan() + t.atan2(Tensor(b)),
            (ti << tc) ^ (ti >> tc), (t.view(lg.int32) ^ 1).view(lg.float32)]
    sh = np.where((c >= 0) & (c < 32), c, 0)
    shl = np.where((c >= 0) & (c < 32), i << sh, 0)
    shr = np.where((c >= 0) & (c < 32), i >> sh, np.where(i < 0, -1, 0))
    erf = np.vectorize(_m.erf)(a.astype(np.float64))
    want = [erf + (1 - erf) * 2 + np.arcsin(a) + np.arccos(a) + np.arctan(a) + np.arctan2(a, b),
            (shl ^ shr).astype(np.int32), (a.view(np.int32) ^ 1).view(np.float32)]
    return outs, [w.astype(np.float32) if w.dtype.kind == "f" else w for w in want]


# --- sort: values and indices, NaN, ties, rows not a multiple of the work-group -------------------
@case
def sort_values_nan_ties() -> tuple[Tensor, np.ndarray]:
    a = np.round(arr(5, 7) * 2) / 2
    a[1, 3] = np.nan
    s = Tensor(a).sort(1)
    return s.values, np.sort(a, 1, kind="stable")


@case
def sort_indices_descending_int() -> tuple[Tensor, np.ndarray]:
    a = (arr(3, 11) * 4).astype(np.int32)
    return Tensor(a).argsort(-1, descending=True), np.argsort(-a, 1, kind="stable").astype(np.int32)


@case
def sort_topk_of_view() -> tuple[Tensor, np.ndarray]:
    a = arr(6, 5)
    t = Tensor(a).T.topk(2, 1)
    return [t.values, t.indices], [-np.sort(-a.T, 1)[:, :2], np.argsort(-a.T, 1, kind="stable")[:, :2].astype(np.int32)]


@case
def sort_merge_levels_partial_runs() -> tuple[Tensor, np.ndarray]:
    """Long rows merge sorted (MERGE_FROM lowered for the case): rank-counted blocks, then merge
    levels whose last run has no partner or a short one (22 = 4 + 4 + 4 + 4 + 4 + 2 after padding
    to 24), NaN, ties and both orders."""
    from lazygrad.ir import graph as sorting
    saved = sorting.MERGE_FROM, sorting.MERGE_BLOCK
    sorting.MERGE_FROM, sorting.MERGE_BLOCK = 8, 4
    try:
        a = np.round(arr(3, 22) * 2) / 2
        b = a.copy()
        a[1, 5] = np.nan                       # NaN sorts last ascending (numpy and torch agree)
        up, down = Tensor(a).sort(1), Tensor(b).argsort(1, descending=True)
        outs = [up.values, up.indices, down]
    finally:
        sorting.MERGE_FROM, sorting.MERGE_BLOCK = saved
    want_idx = np.argsort(a, 1, kind="stable").astype(np.int32)
    return outs, [np.sort(a, 1, kind="stable"), want_idx, np.argsort(-b, 1, kind="stable").astype(np.int32)]


@case
def scatter_add_sorted_segments() -> tuple[Tensor, np.ndarray]:
    """The gather's gradient through the sorted scatter-add (SCATTER_FROM lowered for the
    case): repeated indices, an empty segment, a negative and an out-of-range lazy index."""
    from lazygrad.autodiff import rules
    saved = rules.SCATTER_FROM
    rules.SCATTER_FROM = 0
    try:
        a = arr(6, 35)                                                   # 35 columns: 32 + a ragged 3
        x = Tensor(a, requires_grad=True)
        idx = Tensor(np.array([0, 5, 5, -1, 2, 9, 0], np.int32)) + 0      # lazy: 9 is past the end
        w = arr(7, 35, seed=1)
        (x.index_select(0, idx) * Tensor(w)).sum().backward()
        g = x.grad
    finally:
        rules.SCATTER_FROM = saved
    want = np.zeros((6, 35), np.float32)
    for j, i in enumerate([0, 5, 5, 5, 2, None, 0]):
        if i is not None:
            want[i] += w[j]
    return g, want


# the index past the end is the point of the case: realized without LAZYGRAD_CHECK_INDEX (on in
# the test run), which would refuse it
scatter_add_sorted_segments.unchecked_indices = True  # type: ignore[attr-defined]


# --- gather: negative and repeated indices, broadcast index and input, int and bool values ----------
@case
def gather_rows_negative_index() -> tuple[Tensor, np.ndarray]:
    a = arr(7, 5)
    idx = np.array([[0, -1, 3], [6, 6, -7]], np.int32)
    return Tensor(a)[Tensor(idx)], a[idx]


@case
def gather_along_dim_and_select() -> tuple[list[Tensor], list[np.ndarray]]:
    a = (arr(3, 6, 4) * 10).astype(np.int32)
    idx = np.random.default_rng(0).integers(0, 6, (3, 2, 4))
    m = arr(3, 6, 4) > 0
    return ([Tensor(a).gather(1, Tensor(idx)), Tensor(a).index_select(2, [3, 0]), Tensor(m)[:, [5, 1]]],
            [np.take_along_axis(a, idx, 1), a[:, :, [3, 0]], m[:, [5, 1]]])


# --- issue 16 surface: compound ops fused into one chain kernel, first-maximum pools --------------
@case
def ew_compound_chain_one_kernel() -> tuple[Tensor, np.ndarray]:
    # hypot, logaddexp and round(decimals) read their input several times: one kernel now
    a = arr(5, 13)
    t = Tensor(a)
    y = (t.hypot(t * 2) + t.logaddexp(-t)).round(decimals=1) * 0.5
    assert len(lg.schedule(y)) == 1 or not lg.config.settings().fuse
    want = np.round(np.hypot(a, a * 2) + np.logaddexp(a, -a), 1) * 0.5
    return y, want.astype(np.float32)


@case
def rowwise_first_max_pool_ties() -> tuple[list[Tensor], list[np.ndarray]]:
    # max_pool2d (floor mode) as argmax + pick, on tied windows, overlapping (stride < kernel)
    a = np.random.default_rng(5).integers(0, 3, (2, 3, 5, 7)).astype(np.float32)
    t = Tensor(a)
    win = np.lib.stride_tricks.sliding_window_view(a, (2, 2), axis=(2, 3))   # stride 1
    out = t.max_pool2d(2, 1)
    ad = F.adaptive_max_pool2d(t, (2, 3))
    ref_ad = np.zeros((2, 3, 2, 3), np.float32)
    for i in range(2):
        for j in range(3):
            h0, h1 = (i * 5) // 2, -((-(i + 1) * 5) // 2)
            w0, w1 = (j * 7) // 3, -((-(j + 1) * 7) // 3)
            ref_ad[:, :, i, j] = a[:, :, h0:h1, w0:w1].max(axis=(2, 3))
    return [out, ad], [win.max(axis=(-1, -2)), ref_ad]


# --- attention: keys not a multiple of the tile, causal, masks, a broadcast key, the backward -----
def _sdpa_reference(q, k, v, keep=None, add=None, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if add is not None:
        s = s + add
    L, S = s.shape[-2:]
    kept = np.ones(s.shape, bool) if keep is None else np.broadcast_to(keep, s.shape)
    if causal:
        kept = kept & np.tril(np.ones((L, S), bool))
    s = np.where(kept, s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isinf(m), 0, m))
    t = e.sum(-1, keepdims=True)
    return (e / np.where(t == 0, 1, t)) @ v


@case
def attention_forward_masks_tiles() -> tuple[list[Tensor], list[np.ndarray]]:
    from lazygrad.nn import functional as F
    # 11 query rows: a CPU's blocks of 8 rows per work-item end in a partial block
    q, k, v = arr(2, 3, 11, 4), arr(1, 3, 37, 4, seed=1), arr(2, 3, 37, 3, seed=2)
    keep = arr(2, 1, 11, 37, seed=3) > -1.0
    keep[0, 0, 2] = False                      # a fully masked row: zeros
    add = arr(11, 37, seed=4)
    tq, tk, tv = Tensor(q), Tensor(k), Tensor(v)
    outs = [F.scaled_dot_product_attention(tq, tk, tv, attn_mask=Tensor(keep)),
            F.scaled_dot_product_attention(tq, tk, tv, attn_mask=Tensor(add), is_causal=True),
            (tq @ Tensor(k.transpose(0, 1, 3, 2)).transpose(-2, -1).transpose(-2, -1) * 0.5).softmax(-1) @ tv]
    return outs, [_sdpa_reference(q, k, v, keep=keep), _sdpa_reference(q, k, v, add=add, causal=True),
                  _sdpa_reference(q * np.float32(0.5 * 2), k, v)]


@case
def attention_backward_float_mask() -> tuple[list[Tensor], list[np.ndarray]]:
    from lazygrad.nn import functional as F
    q, k, v, add = arr(1, 2, 6, 4), arr(1, 2, 35, 4, seed=1), arr(1, 2, 35, 5, seed=2), arr(6, 35, seed=3)
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v, add)]
    o = F.scaled_dot_product_attention(*leaves[:3], attn_mask=leaves[3], is_causal=True)
    dq, dk, dv, dm = lg.grad(o.sum(), leaves)
    # the reference: the plain graph's own gradients (LAZYGRAD_ATTENTION=0)
    with lg.config.override(attention=False):
        plain = [Tensor(a, requires_grad=True) for a in (q, k, v, add)]
        po = F.scaled_dot_product_attention(*plain[:3], attn_mask=plain[3], is_causal=True)
        ref = [g.numpy() for g in lg.grad(po.sum(), plain)]
    return [dq, dk, dv, dm], ref


# --- the fused LSTM step: a hidden size with a tail past the vectors, a ragged row block ------------
@case
def lstm_cell_forward_backward() -> tuple[list[Tensor], list[np.ndarray]]:
    from lazygrad import nn
    from lazygrad.ir.lstm import reference
    # batch 3: the last block of 2 rows per work-item is half empty; hidden 12: one vector of 8
    # and a scalar tail of 4 (vectors of 4 on a 128-bit target: none)
    m = nn.LSTM(5, 12)
    x, h0, c0 = arr(3, 3, 5), arr(1, 3, 12, seed=1), arr(1, 3, 12, seed=2)
    leaves = [Tensor(a, requires_grad=True) for a in (x, h0, c0)]
    out, (hn, cn) = m(leaves[0], (leaves[1], leaves[2]))
    grads = lg.grad((out * out).sum() + cn.sum(), leaves + [m.weight_hh_l0])
    w_ih, w_hh, b = (p.numpy() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0 + m.bias_hh_l0))
    h, c, ref = h0[0], c0[0], []
    for t in range(3):
        h, c = reference([x[t] @ w_ih.T + b, h, c, w_hh])[:2]
        ref.append(h)
    with lg.config.override(fuse=False):   # the gradients' reference: the primitive graph's own
        plain = [Tensor(a, requires_grad=True) for a in (x, h0, c0)]
        po, (_, pc) = m(plain[0], (plain[1], plain[2]))
        ref_grads = [g.numpy() for g in lg.grad((po * po).sum() + pc.sum(), plain + [m.weight_hh_l0])]
    return [out] + grads, [np.stack(ref)] + ref_grads


# --- whole graphs ---------------------------------------------------------------------------------
@case
def mlp_backward() -> tuple[Tensor, np.ndarray]:
    x, w1, w2 = arr(3, 5), arr(5, 7, seed=1), arr(7, 2, seed=2)
    tw1 = Tensor(w1, requires_grad=True)
    tw2 = Tensor(w2, requires_grad=True)
    loss = ((Tensor(x) @ tw1).relu() @ tw2).square().mean()
    (g1,) = lg.grad(loss, [tw1])
    h = x @ w1
    o = np.maximum(h, 0) @ w2
    go = 2 * o / o.size
    gh = (go @ w2.T) * (h > 0)
    return g1, x.T @ gh


# --- controls: kernels with a deliberate bug, to show the checker reports what it should ----------
# (launched through lazygrad's own runtime, so buffers come from the same allocator)
_CONTROL_SOURCES = {
    "control_out_of_bounds": "out[i] = a[i + 1];",
    "control_uninitialized": "out[i] = b[i] * 2.0f;",
    "control_data_race": "out[0] = a[i] + (float)i;",
}


def _control(name: str, body: str) -> Case:
    def run_control() -> tuple[Tensor, np.ndarray]:
        from lazygrad.dtypes import float32
        from lazygrad.runtime.device import Buffer, get_kernel, launch

        src = (f"__kernel void {name}(__global float* restrict out, __global const float* restrict a, "
               f"__global const float* restrict b) {{ int i = get_global_id(0); {body} }}")
        out = Buffer(4, float32).copyin(np.zeros(4, np.float32))
        a = Buffer.from_numpy(np.arange(4, dtype=np.float32), float32)
        b = Buffer(4, float32)  # never written
        launch(get_kernel(name, src), (4,), (4,), [out, a, b])
        out.numpy()
        return Tensor(0.0), np.float32(0.0)
    run_control.__name__ = name
    return run_control


CONTROLS: dict[str, Case] = {name: _control(name, body) for name, body in _CONTROL_SOURCES.items()}


def kernel_tags(source: str) -> list[str]:
    """Template mode of one kernel, read off its source (the templates' distinct shapes)."""
    found = re.search(r"__kernel\b.*?\bvoid\s+(\w+)\s*\(", source, re.S)
    name = found.group(1) if found else "?"
    tags = []
    if name.startswith("E_"):
        tags.append("elementwise/vector_tail" if "for (" in source and "vstore" in source else
                    "elementwise/vector" if "vstore" in source else "elementwise/scalar")
    elif name.startswith("T_"):
        tags.append("rowtotal")
    elif name.startswith("G_"):
        tags.append("gather")
    elif name.startswith("X_"):
        tags.append("scatter")
    elif name.startswith("S_"):
        tags.append("sort/merge" if "binary search" in source or "while (lo < hi)" in source else
                    "sort/indices" if "= (int)i;" in source or "= (long)i;" in source else "sort/values")
    elif name.startswith("A_"):
        tags += [tag for tag, marker in (("attention/fwd", "alpha"), ("attention/dq", "dq0["), ("attention/dkv", "dk0["))
                 if marker in source]
    elif name.startswith("L_"):
        tags.append("lstm/vector" if "vload" in source else "lstm/scalar")
        if "the hidden dim's tail" in source:
            tags.append("lstm/tail")
    elif name.startswith("C_"):
        modes = {"conv/plain": "// blocks inside the row", "conv/edge": "constant columns from",
                 "conv/masked": "// edge blocks: lanes masked", "conv/shifted": "// shifted last block"}
        tags += [tag for tag, marker in modes.items() if marker in source]
    elif name.startswith(("R_", "W_")):
        kind = "rowwise" if name.startswith("W_") else "reduce"
        tags.append(f"{kind}/group" if "reqd_work_group_size" in source else f"{kind}/per_item")
        if "vload" in source or ".s1" in source:
            tags.append("reduce/vector")
        if re.search(r"acc\d+_1\b", source):
            tags.append("reduce/unrolled")
        if "stashed for the row output" in source:
            tags.append("rowwise/stash")
    else:
        tags.append(f"other/{name.split('_', 1)[0]}")
    params = source[found.end():].split(")", 1)[0] if found else ""
    if len(re.findall(r"__global (?!const)", params)) > 1:
        tags.append("multi_output")
    return tags


@case
def probe_kernels() -> tuple[Tensor, np.ndarray]:
    """The device probe's kernels (templates/probe.cl.j2) at every width up to 512 bits, run
    in this process as the probe's child runs them: memory-safe, and every verdict ok."""
    import contextlib
    import io
    from lazygrad.runtime import probe
    dev = lg.device()
    items = probe.probe_items(512, dev.caps.fp64)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        probe._child(dev.platform_index, dev.device_index, items, dev.caps.fp64, False, frozenset())
    verdicts = [json.loads(ln) for ln in out.getvalue().splitlines() if '"item"' in ln]
    bad = [v for v in verdicts if not v["verdict"].startswith("ok")]
    if len(verdicts) != len(items) or bad:
        raise AssertionError(f"probe verdicts: {verdicts}")
    return Tensor([float(len(verdicts))]), np.array([len(items)], dtype=np.float32)


def _render_spy() -> None:
    """Record which template files get rendered (tests check every template is exercised)."""
    from lazygrad import templating
    real = templating.template

    def spy(name: str):
        _rendered.append(name)
        return real(name)

    templating.template = spy  # type: ignore[assignment]


def run(names: list[str]) -> int:
    _render_spy()
    coverage: dict[str, dict[str, list[str]]] = {}
    failed = 0
    for name in names:
        print(f"@@case {name}", file=sys.stderr, flush=True)
        _rendered.clear()
        try:
            lg.manual_seed(1)
            make = CASES.get(name) or CONTROLS[name]
            ts, wants = make()
            if isinstance(ts, Tensor):
                ts, wants = [ts], [wants]
            tags = sorted({tag for k in lg.schedule(*ts) for tag in kernel_tags(k.source)})
            with lg.config.override(check_index=False) if getattr(make, "unchecked_indices", False) else nullcontext():
                lg.realize(*ts)                          # together: multi-output kernels
            msg = "ok"
            for t, want in zip(ts, wants):
                got, want = t.numpy(), np.asarray(want)
                if not (got.shape == want.shape and np.allclose(got.astype(np.float64), want.astype(np.float64),
                                                                rtol=1e-4, atol=1e-5, equal_nan=True)):
                    msg = f"FAIL mismatch: got {got!r} want {want!r}"
        except Exception:
            tags = []
            msg = "FAIL " + traceback.format_exc().replace("\n", " | ")
        failed += not msg.startswith("ok")
        coverage[name] = {"tags": tags, "templates": sorted(set(_rendered))}
        print(f"@@done {name} {msg}", file=sys.stderr, flush=True)
    print("@@coverage " + json.dumps(coverage), file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:] or list(CASES) + list(CONTROLS)))
