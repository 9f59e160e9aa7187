"""Reference evaluator: a plain numpy interpreter of the lazy DAG.

Tests compare compiled results of arbitrary graphs with it. It never touches kernels: only
realized BUFFER nodes are read from the device.

Public names: evaluate.
"""
from __future__ import annotations

import numpy as np

from lazygrad.ir.attention import reference as attention_reference
from lazygrad.ir.lstm import reference as lstm_reference
from lazygrad.ir.graph import Node, toposort
from lazygrad.ir.ops import BINARY, MOVEMENT, PRIMITIVES, REDUCE, UNARY, Op
from lazygrad.ir.random import rand_reference


def _conv2d(x: np.ndarray, w: np.ndarray, arg) -> np.ndarray:
    """torch's conv2d (no bias) as a sum over kernel positions of grouped channel products."""
    (sh, sw), (ph, pw), (dh, dw), groups = arg
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = arg.out_size((h, wd), (kh, kw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.zeros((n, groups, o // groups, oh, ow), dtype=np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            out += np.einsum("ngchw,goc->ngohw", patch.reshape(n, groups, cg, oh, ow), wg[..., i, j])
    return out.reshape(n, o, oh, ow)


def _sort(x: np.ndarray, arg) -> np.ndarray:
    """Stable sort of the last axis, NaN largest (Python's sort is stable)."""
    rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    out = np.empty(rows.shape, np.int64 if arg.indices else x.dtype)
    for r, row in enumerate(rows):
        vals = row.tolist()
        if arg.descending:
            key = (lambda j: (vals[j] == vals[j], -vals[j] if vals[j] == vals[j] else 0))
        else:
            key = (lambda j: (vals[j] != vals[j], vals[j] if vals[j] == vals[j] else 0))
        order = sorted(range(len(vals)), key=key)
        out[r] = order if arg.indices else row[order]
    return out.reshape(x.shape)


def _gather(x: np.ndarray, idx: np.ndarray, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    """x at idx along axis (both broadcast over size-1 dims; out of range: 0)."""
    x = x[tuple(slice(0, s) if k != axis and x.shape[k] != 1 else slice(None) for k, s in enumerate(shape))]
    x = np.broadcast_to(x, tuple(x.shape[axis] if k == axis else s for k, s in enumerate(shape)))
    n = x.shape[axis]
    idx = np.broadcast_to(idx, shape).astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    ok = (idx >= 0) & (idx < n)
    return np.where(ok, np.take_along_axis(x, np.where(ok, idx, 0), axis), np.zeros((), x.dtype))


def _segment_sum(g: np.ndarray, keys: np.ndarray, axis: int, size: int) -> np.ndarray:
    """g summed into `size` positions along axis by the sorted keys (index << 32 | position)."""
    keys = keys.astype(np.int64)
    idx, pos = keys >> 32, keys & 0xFFFFFFFF
    out = np.zeros(g.shape[:axis] + (size,) + g.shape[axis + 1:], g.dtype)
    for i, j in zip(idx, pos):
        if 0 <= i < size:
            out[(slice(None),) * axis + (int(i),)] += g[(slice(None),) * axis + (int(j),)]
    return out


def evaluate(roots: list[Node]) -> list[np.ndarray]:
    """numpy values of `roots`, computed from their graphs (iteratively)."""
    vals: dict[int, np.ndarray] = {}
    for n in toposort(roots, stop_at_realized=False):
        d = n.dtype.np
        src = [vals[s.uid] for s in n.srcs]
        with np.errstate(all="ignore"):
            if n.op is Op.BUFFER and n.realized is None:  # an Iota the engine has not filled yet
                v = np.arange(n.arg.n, dtype=d)
            elif n.op is Op.BUFFER:
                v = n.realized.numpy().reshape(n.shape)
            elif n.op is Op.CONST:
                v = np.array(n.arg, dtype=d)
            elif n.op is Op.RAND:
                v = rand_reference(n.arg, n.numel).reshape(n.shape)
            elif n.op in UNARY or n.op in BINARY:
                v = PRIMITIVES[n.op].np(*src)
            elif n.op is Op.WHERE:
                v = np.where(src[0], src[1], src[2])
            elif n.op is Op.CAST:
                v = src[0]
            elif n.op is Op.BITCAST:
                v = np.ascontiguousarray(src[0]).view(d)
            elif n.op in REDUCE or n.op in MOVEMENT:  # the op table's numpy reference (x, arg)
                v = PRIMITIVES[n.op].np(src[0], n.arg)
            elif n.op is Op.MATMUL:
                v = np.matmul(src[0], src[1])
            elif n.op is Op.CONV2D:
                v = _conv2d(src[0], src[1], n.arg)
            elif n.op is Op.CONTIGUOUS:
                v = src[0]
            elif n.op is Op.SORT:
                v = _sort(src[0], n.arg)
            elif n.op is Op.ATTENTION:
                v = attention_reference(src, n.arg)
            elif n.op is Op.SEGMENT_SUM:
                v = _segment_sum(src[0], src[1], n.arg.axis, n.arg.size)
            elif n.op is Op.LSTM_CELL:
                v = lstm_reference(src)
            elif n.op is Op.GATHER:
                v = _gather(src[0], src[1], n.arg.axis, n.arg.full_shape(n.shape))
            else:
                raise AssertionError(f"no numpy reference for {n.op}")
            vals[n.uid] = np.asarray(v).astype(d, copy=False).reshape(n.shape)
    return [vals[r.uid] for r in roots]
