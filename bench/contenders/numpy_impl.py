"""numpy contender: the CPU baseline everything is compared against.

Each op allocates its result, as numpy code normally does. Matmul goes to OpenBLAS.
The MLP step is hand-written forward/backward + Adam in numpy.

Public names: BUILDERS, version.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.contenders.base import Builder, Runnable
from bench.workloads import LAYERNORM_EPS, MLP_LR, Arrays, Params, chain_ops

F32 = np.float32


def version() -> str:
    return np.__version__


_CHAIN_FNS: dict[str, Callable[[np.ndarray, float | None], np.ndarray]] = {
    "mul": lambda v, c: v * F32(c),
    "add": lambda v, c: v + F32(c),
    "sub": lambda v, c: v - F32(c),
    "relu": lambda v, c: np.maximum(v, F32(0)),
}


def _chain(p: Params, a: Arrays) -> Runnable:
    x, ops = a["x"], chain_ops(p["length"])

    def step() -> np.ndarray:
        y = x
        for op, c in ops:
            y = _CHAIN_FNS[op](y, c)
        return y
    return Runnable(step)


def _issue2(p: Params, a: Arrays) -> Runnable:
    x = a["x"]

    def step() -> np.ndarray:
        sig = F32(1) / (F32(1) + np.exp(-x))
        return np.tanh(np.maximum(x * F32(2) + F32(1), F32(0)) * np.exp(-x) + sig)
    return Runnable(step)


def _softmax(p: Params, a: Arrays) -> Runnable:
    x = a["x"]

    def step() -> np.ndarray:
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return Runnable(step)


def _layernorm(p: Params, a: Arrays) -> Runnable:
    x = a["x"]

    def step() -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        d = x - mu
        var = (d * d).mean(-1, keepdims=True)
        return d / np.sqrt(var + F32(LAYERNORM_EPS))
    return Runnable(step)


def _conv2d_relu(p: Params, a: Arrays) -> Runnable:
    x, w = a["x"], a["w"]
    o, c, kh, kw = w.shape
    w2 = w.reshape(o, c * kh * kw)

    def step() -> np.ndarray:
        # im2col as a strided view, then one BLAS matmul
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        n, _, oh, ow = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        out = (cols @ w2.T).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
        return np.maximum(out, F32(0))
    return Runnable(step)


class _NumpyMLP:
    """784-512-512-10 ReLU MLP with cross-entropy and Adam, by hand."""

    def __init__(self, a: Arrays, n_layers: int) -> None:
        self.X, self.Y = a["X"], a["Y"]
        self.params = [a[f"{k}{i}"].copy() for i in range(n_layers) for k in ("w", "b")]
        self.m = [np.zeros_like(q) for q in self.params]
        self.v = [np.zeros_like(q) for q in self.params]
        self.t = 0

    def step(self) -> float:
        ws, bs = self.params[0::2], self.params[1::2]
        acts, pre = [self.X], []
        for i, (w, b) in enumerate(zip(ws, bs)):
            z = acts[-1] @ w + b
            pre.append(z)
            acts.append(np.maximum(z, F32(0)) if i < len(ws) - 1 else z)
        logits = acts[-1]
        shifted = logits - logits.max(-1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(-1, keepdims=True)
        rows = np.arange(len(self.Y))
        loss = float(np.mean(np.log(s[:, 0]) - shifted[rows, self.Y]))
        d = e / s
        d[rows, self.Y] -= F32(1)
        d /= F32(len(self.Y))
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        for i in range(len(ws) - 1, -1, -1):
            grads[2 * i] = acts[i].T @ d
            grads[2 * i + 1] = d.sum(0)
            if i > 0:
                d = (d @ ws[i].T) * (pre[i - 1] > 0)
        self._adam(grads)
        return loss

    def _adam(self, grads: list[np.ndarray], b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8) -> None:
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for q, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= F32(b1); m += F32(1 - b1) * g
            v *= F32(b2); v += F32(1 - b2) * (g * g)
            q -= F32(MLP_LR) * (m / F32(c1)) / (np.sqrt(v / F32(c2)) + F32(eps))


def _mlp_step(p: Params, a: Arrays) -> Runnable:
    mlp = _NumpyMLP(a, len(p["sizes"]) - 1)
    return Runnable(mlp.step, to_numpy=lambda r: np.asarray(r), check_first=True)


BUILDERS: dict[str, Builder] = {
    "chain": _chain,
    "issue2": _issue2,
    "copylike": lambda p, a: Runnable(lambda x=a["x"]: x * F32(2) + F32(1)),
    "copy": lambda p, a: Runnable(lambda x=a["x"]: x.copy()),
    "sum_sq": lambda p, a: Runnable(lambda x=a["x"]: (x * x).sum()),
    "softmax": _softmax,
    "layernorm": _layernorm,
    "matmul": lambda p, a: Runnable(lambda l=a["a"], r=a["b"]: l @ r),
    "matmul_relu": lambda p, a: Runnable(
        lambda l=a["a"], r=a["b"], b=a["bias"]: np.maximum(l @ r + b, F32(0))),
    "conv2d_relu": _conv2d_relu,
    "mlp_step": _mlp_step,
    "overhead": lambda p, a: Runnable(lambda x=a["x"]: np.maximum(x * F32(2) + F32(1), F32(0))),
}
