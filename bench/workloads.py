"""What every benchmark computes, independent of who computes it.

A *kind* names an operation (``chain``, ``softmax``, ``mlp_step`` ...). For each kind this
module says how to make its inputs (deterministic numpy arrays, so a worker subprocess can
rebuild exactly the same data from the case parameters) and how to compute a float64 numpy
reference used to check every contender's answer.

Public names: CHAIN_OPS, chain_ops, make_inputs, reference, KINDS.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, Any]
Arrays = dict[str, np.ndarray]

# The elementwise chain of length L applies the first L entries of this cycle, one primitive
# each. Cheap ops, so long chains stay memory-bound and show what fusion saves; the constants
# keep values bounded however long the chain is.
CHAIN_OPS: tuple[tuple[str, float | None], ...] = (
    ("mul", 0.9), ("add", 0.1), ("relu", None), ("sub", 0.05),
)

KINDS: tuple[str, ...] = (
    "chain", "issue2", "copylike", "copy", "sum_sq", "softmax", "layernorm",
    "matmul", "matmul_relu", "conv2d_relu", "mlp_step", "overhead",
)

LAYERNORM_EPS = 1e-5
MLP_LR = 1e-3


def chain_ops(length: int) -> list[tuple[str, float | None]]:
    """The ops of an elementwise chain of `length` primitives, in order."""
    return [CHAIN_OPS[i % len(CHAIN_OPS)] for i in range(length)]


def _uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # rng.random in float32 is much faster than standard_normal for 16M elements
    return (rng.random(shape, dtype=np.float32) * 2.0 - 1.0).astype(np.float32, copy=False)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)


def make_inputs(kind: str, params: Params, seed: int = 0) -> Arrays:
    """Deterministic float32 inputs (int32 labels for mlp_step) for one case."""
    rng = np.random.default_rng(seed)
    if kind in ("chain", "issue2", "copylike", "copy", "sum_sq"):
        return {"x": _uniform(rng, (params["n"],))}
    if kind == "overhead":
        return {"x": _uniform(rng, (params["n"],))}
    if kind in ("softmax", "layernorm"):
        return {"x": _normal(rng, tuple(params["shape"]))}
    if kind in ("matmul", "matmul_relu"):
        m, k, n = params["m"], params["k"], params["n"]
        arrays = {"a": _normal(rng, (m, k)), "b": _normal(rng, (k, n), 1.0 / np.sqrt(k))}
        if kind == "matmul_relu":
            arrays["bias"] = _normal(rng, (n,), 0.1)
        return arrays
    if kind == "conv2d_relu":
        cin = params["x"][1]
        fan_in = cin * params["w"][2] * params["w"][3]
        return {"x": _normal(rng, tuple(params["x"])),
                "w": _normal(rng, tuple(params["w"]), 1.0 / np.sqrt(fan_in))}
    if kind == "mlp_step":
        sizes = params["sizes"]
        arrays: Arrays = {"X": _normal(rng, (params["batch"], sizes[0])),
                          "Y": rng.integers(0, sizes[-1], params["batch"]).astype(np.int32)}
        for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / np.sqrt(fi)
            arrays[f"w{i}"] = (rng.random((fi, fo), dtype=np.float32) * 2 - 1) * np.float32(bound)
            arrays[f"b{i}"] = (rng.random((fo,), dtype=np.float32) * 2 - 1) * np.float32(bound)
        return arrays
    raise KeyError(f"unknown benchmark kind {kind!r}")


# ---------------------------------------------------------------------------------------
# float64 references


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ref_chain(p: Params, a: Arrays) -> np.ndarray:
    y = a["x"].astype(np.float64)
    for op, c in chain_ops(p["length"]):
        y = {"mul": lambda v: v * c, "add": lambda v: v + c, "sub": lambda v: v - c,
             "relu": lambda v: np.maximum(v, 0.0)}[op](y)
    return y


def _ref_issue2(p: Params, a: Arrays) -> np.ndarray:
    x = a["x"].astype(np.float64)
    return np.tanh(np.maximum(x * 2 + 1, 0) * np.exp(-x) + _sigmoid(x))


def _ref_softmax(p: Params, a: Arrays) -> np.ndarray:
    x = a["x"].astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _ref_layernorm(p: Params, a: Arrays) -> np.ndarray:
    x = a["x"].astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LAYERNORM_EPS)


def _ref_conv2d_relu(p: Params, a: Arrays) -> np.ndarray:
    x, w = a["x"].astype(np.float64), a["w"].astype(np.float64)
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))  # N,C,OH,OW,KH,KW
    return np.maximum(np.einsum("nchwij,ocij->nohw", win, w), 0.0)


def _ref_mlp_loss(p: Params, a: Arrays) -> float:
    """Cross-entropy loss of the first training step (before any update)."""
    h = a["X"].astype(np.float64)
    n_layers = len(p["sizes"]) - 1
    for i in range(n_layers):
        h = h @ a[f"w{i}"] + a[f"b{i}"]
        if i < n_layers - 1:
            h = np.maximum(h, 0.0)
    h = h - h.max(-1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(a["Y"])), a["Y"]].mean())


_REFERENCES: dict[str, Callable[[Params, Arrays], Any]] = {
    "chain": _ref_chain,
    "issue2": _ref_issue2,
    "copylike": lambda p, a: a["x"].astype(np.float64) * 2 + 1,
    "copy": lambda p, a: a["x"].astype(np.float64),
    "sum_sq": lambda p, a: np.float64(np.dot(a["x"].astype(np.float64), a["x"].astype(np.float64))),
    "softmax": _ref_softmax,
    "layernorm": _ref_layernorm,
    "matmul": lambda p, a: a["a"].astype(np.float64) @ a["b"].astype(np.float64),
    "matmul_relu": lambda p, a: np.maximum(
        a["a"].astype(np.float64) @ a["b"].astype(np.float64) + a["bias"], 0.0),
    "conv2d_relu": _ref_conv2d_relu,
    "mlp_step": _ref_mlp_loss,
    "overhead": lambda p, a: np.maximum(a["x"].astype(np.float64) * 2 + 1, 0.0),
}


def reference(kind: str, params: Params, arrays: Arrays) -> np.ndarray:
    """The float64 answer every contender's output is checked against."""
    return np.asarray(_REFERENCES[kind](params, arrays), dtype=np.float64)


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """max |out - ref| / max |ref|: one number that works for sums, matmuls and maps."""
    out = np.asarray(out, dtype=np.float64).reshape(ref.shape)
    scale = float(np.max(np.abs(ref))) if ref.size else 1.0
    return float(np.max(np.abs(out - ref))) / (scale if scale > 0 else 1.0)
