"""Scaled dot-product attention as lazy graph, with torch's semantics.

    out = softmax(q @ k^T * scale + mask) @ v

`q` is (..., L, E), `k` (..., S, E), `v` (..., S, Ev); the batch dims of the three and of the
mask broadcast against each other like torch's math reference. A bool mask keeps the positions
where it is True; a float mask is added to the scores; `is_causal` keeps the lower triangle
(top-left aligned, `tril(ones(L, S))`) and is and-ed with an explicit mask (torch 2.13 does
that when no input requires grad, and raises when one does; lazygrad always combines). A row every position of which is masked gives zeros (and
zero gradients), as torch's safe softmax does, not NaN.

The graph is the plain matmul → scale/mask → softmax → matmul chain, so the pattern is the same
whether it comes from this function or from user code: the fuse_attention pass makes it one
kernel (an online softmax over the K/V rows, FlashAttention style: the L×S scores are never
stored) and autodiff differentiates it as one attention (FlashAttention-2's backward: a row
reduction Δ = rowsum(dO·O), then dQ in one kernel and dK, dV in another, recomputing the scores
from the forward's per-row logsumexp). What the kernel declines (float16, a head dim over
ir.attention.MAX_HEAD_DIM, an empty dim) stays the plain graph, and `lg.schedule` says why on
the last matmul's kernel. `dropout_p > 0` in training puts a dropout between the softmax and
the matmul: not the pattern, so the plain graph. A float mask gets its gradient (the L×S dS,
plain graph) only when it requires grad; the causal mask is computed from the indices.

Public names: scaled_dot_product_attention, attention_weights, causal_mask.
"""
from __future__ import annotations

import math

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir.attention import causal_keep
from lazygrad.frontend.activations import dropout
from lazygrad.frontend.tensor import Tensor


def causal_mask(length: int, source_length: int | None = None) -> Tensor:
    """The bool mask (length, source_length) that keeps position j for query i when j <= i
    (torch's `tril(ones(L, S))`, True = attend): a graph of positions, not an uploaded array,
    so the fused attention kernel knows it and computes it from the indices."""
    s = length if source_length is None else source_length
    return Tensor(causal_keep(length, s))


def _check(q: Tensor, k: Tensor, v: Tensor) -> None:
    op = "scaled_dot_product_attention"
    for name, t in (("query", q), ("key", k), ("value", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (..., seq, features), got shape {t.shape}")
        if not t.dtype.is_float:
            raise TypeError(f"{op}: {name} must be floating point, got {t.dtype.name}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{op}: query features {q.shape[-1]} (shape {q.shape}) must equal key features "
                         f"{k.shape[-1]} (shape {k.shape})")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: key length {k.shape[-2]} (shape {k.shape}) must equal value length "
                         f"{v.shape[-2]} (shape {v.shape})")


def _safe_softmax(scores: Tensor, keep: Tensor | None) -> Tensor:
    """softmax over the last dim where a row may be entirely -inf (all masked): such a row is
    0, not 0/0. The row maximum is detached (softmax does not depend on it, so its gradient is
    zero anyway) and replaced by 0 in an all -inf row, so exp never sees -inf - -inf."""
    if keep is not None:
        scores = keep.where(scores, float("-inf"))
    m = scores.amax(-1, keepdim=True).detach()
    m = m.isinf().where(0.0, m)
    e = (scores - m).exp()
    s = e.sum(-1, keepdim=True)
    return e / (s == 0).where(1.0, s)


def attention_weights(query: Tensor, key: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) over the last dim, (..., L, S): the attention weights of
    `scaled_dot_product_attention` before dropout (same arguments, same mask rules)."""
    op = "scaled_dot_product_attention"
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    keep: Tensor | None = None
    add: Tensor | None = None
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            attn_mask = Tensor(np.asarray(attn_mask))
        try:
            np.broadcast_shapes(attn_mask.shape, (1,) * max(0, query.ndim - 2) + (L, S))
        except ValueError:
            raise ValueError(f"{op}: attn_mask shape {attn_mask.shape} does not broadcast to the scores' "
                             f"(..., {L}, {S}) for query {query.shape} and key {key.shape}") from None
        if attn_mask.dtype is dt.bool_:
            keep = attn_mask
        elif attn_mask.dtype.is_float:
            add = attn_mask
        else:
            raise TypeError(f"{op}: attn_mask must be bool (True = attend) or float (added), got {attn_mask.dtype.name}")
    if is_causal:
        tri = causal_mask(L, S)
        keep = tri if keep is None else keep & tri
    scores = (query @ key.transpose(-2, -1)) * scale
    if add is not None:
        scores = scores + add
    if attn_mask is None:
        # causal alone never masks a whole row (column 0 is always kept): the plain softmax
        return (scores if keep is None else keep.where(scores, float("-inf"))).softmax(-1)
    # an explicit mask (bool, or float holding -inf) may mask a whole row
    return _safe_softmax(scores, keep)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 training: bool = True) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention: softmax(q k^T * scale + mask) v.

    query (..., L, E), key (..., S, E), value (..., S, Ev) → (..., L, Ev). `attn_mask` is a bool
    (True = attend) or float (added to the scores) tensor broadcastable to (..., L, S);
    `is_causal` keeps the lower triangle (and-ed with `attn_mask` if both are given); `scale`
    defaults to 1/sqrt(E); `dropout_p` drops attention weights (inverted dropout), applied like
    torch whenever it is non-zero (`training=False` turns it off, for modules in eval mode).
    A row whose every position is masked gives zeros, like torch."""
    _check(query, key, value)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    weights = attention_weights(query, key, attn_mask, is_causal, scale)
    if dropout_p and training:
        weights = dropout(weights, dropout_p, True)
    return weights @ value
