"""Neural-network functions on Tensors: layers without state, losses, normalisation, dropout.

Every function builds lazy graph like any Tensor method (nothing runs here), checks its
arguments when called (raising with the function name and the shapes involved), and is
written in a numerically stable form (log-softmax with the row maximum subtracted, BCE with
logits through softplus of -|x|, log terms clamped like PyTorch).

Public names: linear, embedding, dropout, layernorm, batchnorm, mse_loss, l1_loss, nll_loss,
cross_entropy, binary_cross_entropy, binary_cross_entropy_with_logits, pending_buffer_updates,
drop_history; and torch's other names from functional_names.py (relu, gelu, softmax, conv2d,
max_pool2d, layer_norm, pad, ...); scaled_dot_product_attention and causal_mask (from nn.attention).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir.graph import buffer_node
from lazygrad.ir.ops import Op
from lazygrad.frontend.activations import dropout  # noqa: F401  (F.dropout)
from lazygrad.frontend.linalg import linear as _linear
from lazygrad.frontend.tensor import Tensor
from lazygrad.nn.attention import causal_mask, scaled_dot_product_attention  # noqa: F401 (re-exported)
from typing import Any

Number = Union[int, float]

_REDUCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "mean": lambda loss: loss.mean(),
    "sum": lambda loss: loss.sum(),
    "none": lambda loss: loss,
}


def embedding(input: object, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """torch.nn.functional.embedding: the rows of `weight` (num_embeddings, embedding_dim)
    picked by the integer indices `input` (a Tensor, array or list of any shape), giving shape
    input.shape + (embedding_dim,). The gradient of `weight` is a scatter-add (a repeated index
    accumulates); the row `padding_idx` is returned as it is but gets no gradient. Indices
    held in a buffer are bounds-checked like torch (one small read); lazily computed indices
    are not: a negative one wraps, one past the end picks a zero row. The lookup is the gather
    kernel (one read per element); the gradient a one-hot scatter-add, whose work grows with
    num_embeddings."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding: weight must be a 2-D Tensor (num_embeddings, embedding_dim), got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    idx = input if isinstance(input, Tensor) else Tensor(np.asarray(input))
    if not idx.dtype.is_int:
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype.name} of shape {idx.shape}")
    n = weight.shape[0]
    if idx.node.op is Op.BUFFER:
        # index data already on the host or the device: a small read buys torch's bounds check
        # (torch rejects negative indices, which indexing would wrap)
        host = idx.numpy()
        if host.size and (host.min() < 0 or host.max() >= n):
            bad = host.min() if host.min() < 0 else host.max()
            raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings (indices of shape {idx.shape})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {n} embeddings")
        # the looked-up padding rows read through a detached copy: their value is returned, no
        # gradient flows to them, and every other row still gets its scatter-added gradient
        # (selected after the gather, so the gather reads the weight buffer itself)
        out = weight[idx]
        is_pad = (idx == padding_idx % n).unsqueeze(-1)
        return is_pad.where(out.detach(), out)
    return weight[idx]


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {sorted(_REDUCTIONS)}, got {reduction!r}")
    return _REDUCTIONS[reduction](loss)


def _as_tensor(x: object, op: str, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: {name} must be a Tensor or array-like, got {type(x).__name__} ({e})") from None


def _check_class_indices(target: Tensor, c: int, ignore_index: int, op: str) -> None:
    """Raise like torch ("Target 5 is out of bounds") when a class index is outside [0, c) and
    not ignore_index. Only for targets whose values are known at build time: a buffer (built
    from a list or numpy array, or realized), read back if need be (a few ints). A lazy target
    (computed by ops not run yet) is not checked: that needs a check at realize time, which a
    kernel cannot raise; its out-of-range entries pick no class and contribute no loss."""
    if target.node.op is not Op.BUFFER or target.numel() == 0:
        return
    t = target.numpy()
    bad = t[((t < 0) | (t >= c)) & (t != ignore_index)]
    if bad.size:
        raise IndexError(f"{op}: target {bad.flat[0]} is out of bounds for {c} classes (class indices must be in "
                         f"[0, {c}) or equal ignore_index={ignore_index}; target shape {target.shape})")


def _same_shape(a: Tensor, b: Tensor, op: str, what: str = "target") -> None:
    # torch only warns for mse_loss on mismatched shapes; broadcasting (N, 1) against (N,)
    # silently computes an (N, N) loss, so we refuse it
    if a.shape != b.shape:
        raise ValueError(f"{op}: input shape {a.shape} and {what} shape {b.shape} must be equal")


# --- layers ----------------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with PyTorch's weight layout (out_features, in_features)."""
    return _linear(x, weight, bias)




def layernorm(x: Tensor, normalized_shape: int | Sequence[int] | None = None, weight: Tensor | None = None,
              bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing `normalized_shape` dims (the last dim by default) with the
    biased variance, then scale and shift, like torch.nn.functional.layer_norm."""
    if normalized_shape is None:
        normalized_shape = x.shape[-1:]
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not ns or x.ndim < len(ns) or x.shape[-len(ns):] != ns:
        raise ValueError(f"layernorm: input shape {x.shape} does not end in normalized_shape {ns}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != ns:
            raise ValueError(f"layernorm: {name} shape {p.shape} must equal normalized_shape {ns}")
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    x = x.cast(dt.least_upper_float(x.dtype))
    centered = x - x.mean(axes, keepdim=True)
    var = (centered * centered).mean(axes, keepdim=True)
    y = centered * (var + eps).rsqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


def drop_history(t: Tensor) -> Tensor:
    """Point `t` (in place) at a fresh node holding only its realized buffer, releasing the graph
    that computed it; state updated every step (parameters, running statistics) would otherwise
    keep every earlier step's graph and buffers alive through its node's sources."""
    n = t.node
    if n.realized is not None and n.op is not Op.BUFFER:
        t.node = buffer_node(n.realized, n.shape, n.dtype)
    return t


# Running statistics updated in training mode are assigned lazily; they are realized together
# with the next optimizer step (which drains this registry) so BatchNorm costs no extra realize.
_pending: dict[int, weakref.ref] = {}


def pending_buffer_updates() -> list[Tensor]:
    """Tensors (BatchNorm running statistics) assigned a lazy new value since the last call;
    the optimizer realizes them in the same call as the parameter update."""
    out = []
    for ref in _pending.values():
        t = ref()
        if t is not None and t.node.realized is None:
            out.append(t)
    _pending.clear()
    return out


def _assign_pending(t: Tensor, value: Tensor) -> None:
    t.assign(value)
    _pending[id(t)] = weakref.ref(t)


def batchnorm(x: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
              weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
              momentum: float | Tensor = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every dim but dim 1 (channels), like torch's F.batch_norm.

    In training mode the batch statistics normalise the input and, when running statistics
    are given, they are updated in place (lazily): new = (1 - momentum) * old + momentum *
    batch, with the unbiased batch variance. `momentum` may be a device scalar Tensor
    (cumulative averaging changes it every step; a Python float would be a new kernel)."""
    if x.ndim < 2:
        raise ValueError(f"batchnorm: input must have a channel dim 1, got shape {x.shape}")
    c = x.shape[1]
    for name, p in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if p is not None and p.shape != (c,):
            raise ValueError(f"batchnorm: {name} shape {p.shape} must be ({c},) for input {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batchnorm: give both running_mean and running_var, or neither")
    bshape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    x = x.cast(dt.least_upper_float(x.dtype))
    if training or running_mean is None:
        n = x.numel() // max(c, 1)
        if n <= 1 and training:
            raise ValueError(f"batchnorm: expected more than 1 value per channel when training, got input {x.shape}")
        mean = x.mean(axes, keepdim=True)
        centered = x - mean
        var = (centered * centered).mean(axes, keepdim=True)
        if training and running_mean is not None and running_var is not None:
            m = momentum
            drop_history(running_mean)
            drop_history(running_var)
            _assign_pending(running_mean, running_mean * (1 - m) + mean.reshape(c) * m)
            _assign_pending(running_var, running_var * (1 - m) + var.reshape(c) * (m * n / (n - 1)))
    else:
        assert running_var is not None
        mean, var = running_mean.reshape(bshape), running_var.reshape(bshape)
        centered = x - mean
    y = centered * (var + eps).rsqrt()
    if weight is not None:
        y = y * weight.reshape(bshape)
    return y + bias.reshape(bshape) if bias is not None else y


# --- losses ----------------------------------------------------------------------------------------
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error."""
    target = _as_tensor(target, "mse_loss", "target")
    _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) absolute error."""
    target = _as_tensor(target, "l1_loss", "target")
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


_LOG_FLOOR_INPUT = 1e-38   # the smallest normal float32 is 1.2e-38: 1/p stays finite above it


def _clamped_log(p: Tensor) -> Tensor:
    """log(p), -100 for p == 0 (PyTorch's BCE clamp), with a finite gradient everywhere:
    log(max(log p, -100)) would give 0 * (1/0) = NaN at p == 0, so the log only ever sees
    inputs where 1/p is finite and the clamped elements get a zero gradient."""
    ok = p > _LOG_FLOOR_INPUT
    return ok.where(ok.where(p, 1.0).log(), -100.0)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p, each log clamped at -100 as in
    PyTorch so p = 0 or 1 gives a finite loss."""
    target = _as_tensor(target, "binary_cross_entropy", "target")
    _same_shape(input, target, "binary_cross_entropy")
    if not input.dtype.is_float:
        raise TypeError(f"binary_cross_entropy: input must be float probabilities, got {input.dtype.name}")
    t = target.cast(input.dtype)
    loss = -(t * _clamped_log(input) + (1.0 - t) * _clamped_log(1.0 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(input) computed from the logits without forming the sigmoid:
    (1 - t) x + (1 + (pw - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)), exact for any |x|."""
    target = _as_tensor(target, "binary_cross_entropy_with_logits", "target")
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    t = target.cast(dt.least_upper_float(input.dtype))
    x = input.cast(t.dtype)
    # -log(sigmoid(x)) = log(1 + exp(-|x|)) + max(-x, 0), written with where() on the sign so
    # exp never overflows and the gradient at x = 0 does not depend on abs/max tie rules
    pos = x >= 0
    log_sig_neg = (1.0 + pos.where(-x, x).exp()).log() + pos.where(0.0, -x)
    coef = 1.0 if pos_weight is None else 1.0 + (pos_weight - 1.0) * t
    loss = (1.0 - t) * x + coef * log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def _classes_last(x: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N, d1, ..., C) so the class reduction runs over the last dim."""
    return x.permute(0, *range(2, x.ndim), 1) if x.ndim > 2 else x


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits `input` (C,), (N, C) or (N, C, d1, ...) against class
    indices (an int tensor shaped like input without dim 1) or class probabilities (a float
    tensor shaped like input), with PyTorch's weight, ignore_index and label_smoothing rules.

    Class indices outside [0, C) other than ignore_index raise IndexError when the target's
    values are known at build time (`_check_class_indices`); in a lazy target they contribute
    no loss."""
    op = "cross_entropy"
    target = _as_tensor(target, op, "target")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dim, got a 0-d tensor")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    probs = target.dtype.is_float
    if input.ndim == 1:  # a single unbatched sample
        input = input.unsqueeze(0)
        target = target.unsqueeze(0)
    c = input.shape[1]
    if weight is not None and weight.shape != (c,):
        raise ValueError(f"{op}: weight shape {weight.shape} must be ({c},) for {c} classes")
    logp = _classes_last(input).log_softmax(-1)
    w = weight.reshape((1,) * (logp.ndim - 1) + (c,)) if weight is not None else None
    if probs:
        if target.shape != input.shape:
            raise ValueError(f"{op}: probability target shape {target.shape} must equal input shape {input.shape}")
        p = _classes_last(target).cast(logp.dtype)
        if label_smoothing:
            p = p * (1.0 - label_smoothing) + label_smoothing / c
        loss = -((logp * p * w) if w is not None else (logp * p)).sum(-1)
        return _reduce(loss, reduction, op)
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: class-index target shape {target.shape} must be {expected} for input {input.shape}")
    if target.dtype is dt.bool_:
        raise TypeError(f"{op}: class-index target must be an integer tensor, got bool")
    _check_class_indices(target, c, ignore_index, op)
    valid = (target != ignore_index).unsqueeze(-1)
    onehot = valid & (target.unsqueeze(-1) == Tensor._positions(c))
    picked_w = onehot.cast(logp.dtype) * w if w is not None else onehot.cast(logp.dtype)  # w[target]
    # the loss of a row is -sum_c coef_c * logp_c: one reduction for nll and smoothing terms.
    # Terms are selected, not multiplied by a 0/1 coefficient: a -inf log-probability of a class
    # that is not the target (or of an ignored row) must not make 0 * -inf = NaN
    wlogp = logp * w if w is not None else logp
    terms = onehot.where(wlogp * (1.0 - label_smoothing) if label_smoothing else wlogp, 0.0)
    if label_smoothing:
        terms = terms + valid.where(wlogp * (label_smoothing / c), 0.0)
    loss = -terms.sum(-1)
    if reduction == "mean":
        # PyTorch divides by the total weight of the targets that were not ignored
        return loss.sum() / picked_w.sum()
    return _reduce(loss, reduction, op)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities `input` (N, C, ...) at class indices."""
    op = "nll_loss"
    target = _as_tensor(target, op, "target")
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have a class dim, got shape {input.shape}")
    c = input.shape[1]
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected or target.dtype.is_float:
        raise ValueError(f"{op}: target must be class indices of shape {expected}, got {target.shape} {target.dtype.name}")
    _check_class_indices(target, c, ignore_index, op)
    onehot = (target != ignore_index).unsqueeze(-1) & (target.unsqueeze(-1) == Tensor._positions(c))
    picked_w = onehot.cast(input.dtype) * weight if weight is not None else onehot.cast(input.dtype)
    x = _classes_last(input)
    loss = -onehot.where(x * weight if weight is not None else x, 0.0).sum(-1)  # selected: 0 * -inf is NaN
    if reduction == "mean":
        return loss.sum() / picked_w.sum()
    return _reduce(loss, reduction, op)


# torch.nn.functional's other names (activations, softmax, conv and pooling, norms, pad)
from lazygrad.nn.functional_names import (avg_pool2d, batch_norm, celu, conv2d, elu, gelu, hardsigmoid, hardswish, hardtanh, layer_norm, leaky_relu, log_softmax, logsigmoid, max_pool2d, mish, normalize, pad, quick_gelu, relu, relu6, selu, sigmoid, silu, softmax, softmin, softplus, softsign, tanh)

# --- issue 16 part B: gather/scatter, resampling, 1-D/3-D/transposed conv and pooling ---------------
# (the functions live in their own modules; these are torch's F names for them)
from lazygrad.frontend.convnd import conv1d, conv3d, conv_transpose1d, conv_transpose2d  # noqa: E402,F401
from lazygrad.frontend.indexing import one_hot  # noqa: E402,F401
from lazygrad.frontend.pooling import avg_pool1d, avg_pool3d, max_pool1d, max_pool3d, max_unpool2d  # noqa: E402,F401
from lazygrad.frontend.pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,  # noqa: E402,F401
                                       adaptive_max_pool1d, adaptive_max_pool2d)
from lazygrad.frontend.resample import interpolate, pad  # noqa: E402,F401,F811  (every padding mode: replaces the constant-only one)


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_dropout(self, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability `p` and scale the rest by 1 / (1 - p) while
    `training`; the identity otherwise."""
    return dropout(self, p, training)


def _method_layernorm(self, normalized_shape: Any = None, weight: Tensor | None = None, bias: Tensor | None = None,
              eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last dims (`normalized_shape`, default the last dim), with
    optional affine `weight` and `bias`; torch.nn.functional.layer_norm."""
    return layernorm(self, normalized_shape, weight, bias, eps)


def _method_batchnorm(self, running_mean: Tensor | None = None, running_var: Tensor | None = None,
              weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
              momentum: Any = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over the channel dim 1, torch.nn.functional.batch_norm's arguments:
    batch statistics (and running-statistic updates) while `training`, the running statistics
    otherwise."""
    return batchnorm(self, running_mean, running_var, weight, bias, training, momentum, eps)


def _method_cross_entropy(self, target: Any, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits `self` (N, C, ...) against class indices or class probabilities,
    torch.nn.functional.cross_entropy's arguments (weight, ignore_index, reduction,
    label_smoothing)."""
    return cross_entropy(self, target, weight, ignore_index, reduction, label_smoothing)


def _method_nll_loss(self, target: Any, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities `self` against class indices,
    torch.nn.functional.nll_loss's arguments."""
    return nll_loss(self, target, weight, ignore_index, reduction)


def _method_binary_cross_entropy(self, target: Any, weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities `self` against targets in [0, 1] (logs clamped at
    -100 like torch)."""
    return binary_cross_entropy(self, target, weight, reduction)


def _method_binary_cross_entropy_with_logits(self, target: Any, weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of logits `self`, computed stably (torch's arguments, including
    pos_weight)."""
    return binary_cross_entropy_with_logits(self, target, weight, reduction, pos_weight)


def _method_mse_loss(self, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error against `target` (reduction 'mean', 'sum' or 'none')."""
    return mse_loss(self, target, reduction)


TENSOR_METHODS = {"dropout": _method_dropout, "layernorm": _method_layernorm, "batchnorm": _method_batchnorm, "cross_entropy": _method_cross_entropy, "nll_loss": _method_nll_loss, "binary_cross_entropy": _method_binary_cross_entropy, "binary_cross_entropy_with_logits": _method_binary_cross_entropy_with_logits, "mse_loss": _method_mse_loss}
