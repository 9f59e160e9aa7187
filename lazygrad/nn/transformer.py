"""Attention modules with torch's parameter names and layout, so a torch state_dict loads
unchanged: MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer,
TransformerEncoder, TransformerDecoder, and generate_square_subsequent_mask.

Mask conventions are torch's, which differ between the two levels: in
`scaled_dot_product_attention` a bool mask is True where a position is *kept*; in the modules
(`attn_mask`, `key_padding_mask`, `src_mask`, ...) a bool mask is True where a position is
*masked out*. Float masks are added to the scores at both levels. The modules turn every mask
into one additive float mask, so a row that masks every key gives zeros rather than NaN.

Public names: MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer,
TransformerEncoder, TransformerDecoder, generate_square_subsequent_mask.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Union

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn import functional as F
from lazygrad.nn import init
from lazygrad.nn.attention import attention_weights
from lazygrad.nn.layers import Dropout, LayerNorm, Linear, _param, _positive
from lazygrad.nn.module import Module, ModuleList

Activation = Union[str, Callable[[Tensor], Tensor]]

# torch's "gelu" is the exact (erf) form; lazygrad's Tensor.gelu defaults to the tanh form
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": lambda x: x.relu(),
    "gelu": lambda x: x.gelu(approximate="none"),
}


def generate_square_subsequent_mask(sz: int) -> Tensor:
    """torch.nn.Transformer.generate_square_subsequent_mask: the (sz, sz) float mask that is 0
    on and below the diagonal and -inf above it (position i may attend to j <= i)."""
    return Tensor(np.triu(np.full((sz, sz), -np.inf, np.float32), 1))


def _additive(mask: Tensor | np.ndarray | None, what: str, op: str) -> Tensor | None:
    """A module-level mask as an additive float mask: a bool mask is True where masked (-inf)."""
    if mask is None:
        return None
    m = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
    if m.dtype is dt.bool_:
        return m.where(float("-inf"), 0.0)
    if not m.dtype.is_float:
        raise TypeError(f"{op}: {what} must be bool (True = masked) or float (added), got {m.dtype.name}")
    return m


def _activation(activation: Activation, op: str) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {sorted(_ACTIVATIONS)} or a callable, got {activation!r}")
    return _ACTIVATIONS[activation]


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: project query, key and value, attend in `num_heads` heads
    of embed_dim / num_heads features each, concatenate and project out.

    Parameters as torch names them: `in_proj_weight` (3E, E) and `in_proj_bias` (3E) (or
    `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when kdim/vdim differ from embed_dim),
    `out_proj.weight`, `out_proj.bias`. add_bias_kv and add_zero_attn are not supported."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False) -> None:
        op = "MultiheadAttention"
        self.embed_dim = _positive(embed_dim, "embed_dim", op)
        self.num_heads = _positive(num_heads, "num_heads", op)
        if embed_dim % num_heads:
            raise ValueError(f"{op}: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if add_bias_kv or add_zero_attn:
            raise ValueError(f"{op}: add_bias_kv and add_zero_attn are not supported")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{op}: dropout must be in [0, 1], got {dropout}")
        self.kdim = embed_dim if kdim is None else _positive(kdim, "kdim", op)
        self.vdim = embed_dim if vdim is None else _positive(vdim, "vdim", op)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _param(3 * embed_dim, embed_dim)
            init.xavier_uniform_(self.in_proj_weight)
        else:
            self.q_proj_weight = _param(embed_dim, embed_dim)
            self.k_proj_weight = _param(embed_dim, self.kdim)
            self.v_proj_weight = _param(embed_dim, self.vdim)
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        self.in_proj_bias = _param(3 * embed_dim) if bias else None   # zeros, like torch
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _projection_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._qkv_same_embed_dim:
            return tuple(self.in_proj_weight.chunk(3, 0))  # type: ignore[return-value]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """(attn_output, attn_weights) like torch. query (L, N, E) ((N, L, E) with batch_first,
        (L, E) unbatched), key/value (S, N, kdim/vdim). `key_padding_mask` (N, S) and
        `attn_mask` (L, S) or (N * num_heads, L, S): bool True = masked out, float = added.
        `attn_weights` is (N, L, S) averaged over heads (or (N, num_heads, L, S) with
        average_attn_weights=False), after dropout like torch's; None unless need_weights.
        `is_causal` is a hint that attn_mask is the causal mask (torch requires attn_mask with
        it and so does this)."""
        op = "MultiheadAttention"
        if is_causal and attn_mask is None:
            raise ValueError(f"{op}: is_causal is a hint that attn_mask is causal; give attn_mask with it "
                             "(generate_square_subsequent_mask)")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{op}: query, key and value must all be 3-D (batched) or 2-D (unbatched), got "
                             f"{query.shape}, {key.shape}, {value.shape}")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = (key_padding_mask if isinstance(key_padding_mask, Tensor)
                                    else Tensor(np.asarray(key_padding_mask))).unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        S = key.shape[0]
        if E != self.embed_dim or key.shape[2] != self.kdim or value.shape[2] != self.vdim:
            raise ValueError(f"{op}: feature sizes of query {query.shape}, key {key.shape}, value {value.shape} "
                             f"must be embed_dim {self.embed_dim}, kdim {self.kdim}, vdim {self.vdim}")
        if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
            raise ValueError(f"{op}: key {key.shape} and value {value.shape} must share (S, N) with batch N={N}")
        H, D = self.num_heads, self.head_dim
        wq, wk, wv = self._projection_weights()
        bq, bk, bv = self.in_proj_bias.chunk(3, 0) if self.in_proj_bias is not None else (None, None, None)

        def heads(x: Tensor, w: Tensor, b: Tensor | None, n: int) -> Tensor:   # (n, N, e) -> (N, H, n, D)
            return F.linear(x, w, b).reshape(n, N, H, D).permute(1, 2, 0, 3)

        q, k, v = heads(query, wq, bq, L), heads(key, wk, bk, S), heads(value, wv, bv, S)
        mask = _additive(attn_mask, "attn_mask", op)
        if mask is not None:
            if mask.shape == (L, S):
                mask = mask.reshape(1, 1, L, S)
            elif mask.shape == (N * H, L, S):
                mask = mask.reshape(N, H, L, S)
            else:
                raise ValueError(f"{op}: attn_mask shape {mask.shape} must be ({L}, {S}) or ({N * H}, {L}, {S})")
        pad = _additive(key_padding_mask, "key_padding_mask", op)
        if pad is not None:
            if pad.shape != (N, S):
                raise ValueError(f"{op}: key_padding_mask shape {pad.shape} must be ({N}, {S})"
                                 f"{'' if batched else ' unbatched: (S,)'}")
            pad = pad.reshape(N, 1, 1, S)
            mask = pad if mask is None else mask + pad
        weights = attention_weights(q, k, mask, scale=1.0 / math.sqrt(D))   # (N, H, L, S)
        weights = F.dropout(weights, self.dropout, self.training)
        out = (weights @ v).permute(2, 0, 1, 3).reshape(L, N, E)             # (L, N, E)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        w = weights.mean(1) if average_attn_weights else weights
        return out, (w if batched else w.squeeze(0))

    def extra_repr(self) -> str:
        """The constructor arguments that differ from the defaults, roughly as torch prints them."""
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def _check_dropout(p: float, op: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout must be in [0, 1], got {p}")
    return p


def _causal_if_asked(mask: Tensor | None, is_causal: bool, length: int) -> Tensor | None:
    # torch's layers take is_causal only as a hint next to a mask; here it may stand alone
    # and then means the square causal mask
    if is_causal and mask is None:
        return generate_square_subsequent_mask(length)
    return mask


class TransformerEncoderLayer(Module):
    """torch.nn.TransformerEncoderLayer: self-attention then a feed-forward block, each with
    a residual connection and a LayerNorm (after the residual, or before the block with
    norm_first=True). Sub-modules as torch names them: self_attn, linear1, dropout, linear2,
    norm1, norm2, dropout1, dropout2."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        op = "TransformerEncoderLayer"
        _check_dropout(dropout, op)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first, self.batch_first = norm_first, batch_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        self.activation = _activation(activation, op)

    def _sa(self, x: Tensor, mask: Tensor | None, pad: Tensor | None) -> Tensor:
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=False)[0])

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """One encoder layer over `src` ((S, N, E), or (N, S, E) with batch_first); masks as in
        MultiheadAttention. is_causal without src_mask means the square causal mask."""
        seq = src.shape[1 if self.batch_first and src.ndim == 3 else 0]
        mask = _causal_if_asked(src_mask, is_causal, seq)
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), mask, src_key_padding_mask)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, mask, src_key_padding_mask))
        return self.norm2(x + self._ff(x))


class TransformerDecoderLayer(Module):
    """torch.nn.TransformerDecoderLayer: self-attention over the target, attention to the
    encoder's memory, then a feed-forward block, each with a residual and a LayerNorm (post or
    pre with norm_first). Sub-modules as torch names them: self_attn, multihead_attn, linear1,
    dropout, linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        op = "TransformerDecoderLayer"
        _check_dropout(dropout, op)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first, self.batch_first = norm_first, batch_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
        self.activation = _activation(activation, op)

    def _sa(self, x: Tensor, mask: Tensor | None, pad: Tensor | None) -> Tensor:
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=False)[0])

    def _mha(self, x: Tensor, mem: Tensor, mask: Tensor | None, pad: Tensor | None) -> Tensor:
        return self.dropout2(self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=pad,
                                                 need_weights=False)[0])

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        """One decoder layer over `tgt` attending to `memory` (both (seq, N, E), or (N, seq, E)
        with batch_first); masks as in MultiheadAttention. tgt_is_causal without tgt_mask means
        the square causal mask."""
        seq = tgt.shape[1 if self.batch_first and tgt.ndim == 3 else 0]
        mask = _causal_if_asked(tgt_mask, tgt_is_causal, seq)
        x = tgt
        if self.norm_first:
            x = x + self._sa(self.norm1(x), mask, tgt_key_padding_mask)
            x = x + self._mha(self.norm2(x), memory, memory_mask, memory_key_padding_mask)
            return x + self._ff(self.norm3(x))
        x = self.norm1(x + self._sa(x, mask, tgt_key_padding_mask))
        x = self.norm2(x + self._mha(x, memory, memory_mask, memory_key_padding_mask))
        return self.norm3(x + self._ff(x))


def _clones(layer: Module, n: int, op: str) -> ModuleList:
    if not isinstance(layer, Module):
        raise TypeError(f"{op}: the layer must be a Module, got {type(layer).__name__}")
    _positive(n, "num_layers", op)
    return ModuleList(copy.deepcopy(layer) for _ in range(n))


class TransformerEncoder(Module):
    """torch.nn.TransformerEncoder: `num_layers` deep copies of `encoder_layer` applied in turn
    (named layers.0, layers.1, ...), then the optional final `norm`."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        """Every layer over `src` with the same masks, then `norm` if given."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """torch.nn.TransformerDecoder: `num_layers` deep copies of `decoder_layer` applied in turn
    (named layers.0, ...), each attending to the same memory, then the optional final `norm`."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        """Every layer over `tgt` and `memory` with the same masks, then `norm` if given."""
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal))
        return self.norm(x) if self.norm is not None else x
