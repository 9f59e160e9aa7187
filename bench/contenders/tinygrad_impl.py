"""tinygrad contender, on its OpenCL backend (DEV=CL) on the same PoCL device.

Runs in a worker subprocess because tinygrad's OpenCL loader needs the environment from
``bench.envsetup.tinygrad_env()`` before the process starts. Each step rebuilds the lazy
graph from realized inputs, realizes it and synchronizes the device, like a user would.

Public names: BUILDERS, version.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.contenders.base import Builder, Runnable
from bench.workloads import LAYERNORM_EPS, MLP_LR, Arrays, Params, chain_ops


def version() -> str:
    from importlib.metadata import version as dist_version
    return dist_version("tinygrad")


def _sync() -> None:
    from tinygrad import Device
    Device[Device.DEFAULT].synchronize()


def _kernel_counter(step: Callable[[], Any]) -> Callable[[], int | None]:
    def count() -> int | None:
        from tinygrad.helpers import GlobalCounters
        GlobalCounters.reset()
        step()
        return int(GlobalCounters.kernel_count)
    return count


def _to_numpy(t: Any) -> np.ndarray:
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _chain_fn(p: Params) -> Callable[..., Any]:
    ops = chain_ops(p["length"])

    def fn(x: Any) -> Any:
        for op, c in ops:
            x = {"mul": lambda v: v * c, "add": lambda v: v + c, "sub": lambda v: v - c,
                 "relu": lambda v: v.relu()}[op](x)
        return x
    return fn


_FUNCTIONS: dict[str, tuple[Callable[[Params], Callable[..., Any]], tuple[str, ...]]] = {
    "chain": (_chain_fn, ("x",)),
    "issue2": (lambda p: lambda x: ((x * 2 + 1).relu() * (-x).exp() + x.sigmoid()).tanh(), ("x",)),
    "copylike": (lambda p: lambda x: x * 2 + 1, ("x",)),
    "sum_sq": (lambda p: lambda x: (x * x).sum(), ("x",)),
    "softmax": (lambda p: lambda x: x.softmax(-1), ("x",)),
    "layernorm": (lambda p: lambda x: x.layernorm(-1, eps=LAYERNORM_EPS), ("x",)),
    "matmul": (lambda p: lambda a, b: a @ b, ("a", "b")),
    "matmul_relu": (lambda p: lambda a, b, bias: (a @ b + bias).relu(), ("a", "b", "bias")),
    "conv2d_relu": (lambda p: lambda x, w: x.conv2d(w).relu(), ("x", "w")),
    "overhead": (lambda p: lambda x: (x * 2 + 1).relu(), ("x",)),
}


def _make_builder(kind: str) -> Builder:
    factory, names = _FUNCTIONS[kind]

    def build(p: Params, a: Arrays) -> Runnable:
        from tinygrad import Tensor
        fn = factory(p)
        args = [Tensor(a[n]).realize() for n in names]
        _sync()

        def step() -> Any:
            out = fn(*args).realize()
            _sync()
            return out
        return Runnable(step, to_numpy=_to_numpy, count_kernels=_kernel_counter(step))
    return build


def _mlp_step(p: Params, a: Arrays) -> Runnable:
    from tinygrad import Tensor
    from tinygrad.helpers import Context
    from tinygrad.nn.optim import Adam
    n_layers = len(p["sizes"]) - 1
    # tinygrad >= 0.12: every Tensor is a trainable parameter unless is_param_(False)
    params = [Tensor(a[f"{k}{i}"]).realize() for i in range(n_layers) for k in ("w", "b")]
    X, Y = Tensor(a["X"]).is_param_(False).realize(), Tensor(a["Y"]).is_param_(False).realize()
    opt = Adam(params, lr=MLP_LR)

    def step() -> float:
        with Context(TRAINING=1):
            opt.zero_grad()
            h = X
            for i in range(n_layers):
                h = h @ params[2 * i] + params[2 * i + 1]
                if i < n_layers - 1:
                    h = h.relu()
            loss = h.sparse_categorical_crossentropy(Y)
            loss.backward()
            # realize the loss with the update: realizing it after opt.step() would
            # evaluate it on the already-updated weights (tinygrad assigns in place)
            Tensor.realize(loss, *opt.schedule_step())
            return float(loss.item())
    return Runnable(step, to_numpy=np.asarray, count_kernels=_kernel_counter(step),
                    check_first=True)


BUILDERS: dict[str, Builder] = {k: _make_builder(k) for k in _FUNCTIONS}
BUILDERS["mlp_step"] = _mlp_step
