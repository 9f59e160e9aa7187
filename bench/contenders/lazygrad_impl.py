"""lazygrad contender: everything the benchmarks ask of lazygrad, in one place.

The same module serves the fused contender (in this process) and the unfused one (a worker
subprocess started with LAZYGRAD_FUSE=0, since the flag is read when a schedule is built and
schedules are cached). Every step rebuilds the lazy graph from realized inputs and realizes
it, so the timing includes lazygrad's Python cost (graph building, schedule-cache lookup,
launch) as a user sees it.

Any missing feature (AttributeError, NotImplementedError, ...) raised while building or
warming up is caught by the harness and shown as 'n/a' with the message; adjust the API
calls here when lazygrad's API changes.

Public names: BUILDERS, version, sync.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.contenders.base import Builder, Runnable
from bench.workloads import LAYERNORM_EPS, MLP_LR, Arrays, Params, chain_ops


def version() -> str:
    import lazygrad
    return str(getattr(lazygrad, "__version__", "?"))


def sync() -> None:
    """Wait until every enqueued kernel has finished (realize() may return before)."""
    import lazygrad
    fn = getattr(lazygrad, "synchronize", None)
    if fn is None:
        from lazygrad.runtime import device as runtime
        fn = runtime.synchronize
    fn()


def _kernel_counter(step: Callable[[], Any], build: Callable[[], Any] | None) -> Callable[[], int | None]:
    """Kernels one step launches (lg.counters), else the length of its schedule."""
    def count() -> int | None:
        import lazygrad as lg
        counters = getattr(lg, "counters", None)
        if counters is not None and hasattr(counters, "kernels_launched"):
            counters.reset()
            step()
            return int(counters.kernels_launched)
        if build is not None and hasattr(lg, "schedule"):
            return len(lg.schedule(build()))
        return None
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


# kind -> (function factory, input names in call order). The lambdas are the API surface.
_FUNCTIONS: dict[str, tuple[Callable[[Params], Callable[..., Any]], tuple[str, ...]]] = {
    "chain": (_chain_fn, ("x",)),
    "issue2": (lambda p: lambda x: ((x * 2 + 1).relu() * (-x).exp() + x.sigmoid()).tanh(), ("x",)),
    "copylike": (lambda p: lambda x: x * 2 + 1, ("x",)),
    "sum_sq": (lambda p: lambda x: (x * x).sum(), ("x",)),
    "softmax": (lambda p: lambda x: x.softmax(axis=-1), ("x",)),
    "layernorm": (lambda p: lambda x: x.layernorm(eps=LAYERNORM_EPS), ("x",)),
    "matmul": (lambda p: lambda a, b: a @ b, ("a", "b")),
    "matmul_relu": (lambda p: lambda a, b, bias: (a @ b + bias).relu(), ("a", "b", "bias")),
    "conv2d_relu": (lambda p: lambda x, w: x.conv2d(w).relu(), ("x", "w")),
    "overhead": (lambda p: lambda x: (x * 2 + 1).relu(), ("x",)),
}


def _make_builder(kind: str) -> Builder:
    factory, names = _FUNCTIONS[kind]

    def build(p: Params, a: Arrays) -> Runnable:
        import lazygrad as lg
        fn = factory(p)
        args = [lg.Tensor(a[n]) for n in names]
        lg.realize(*args)
        sync()

        def step() -> Any:
            out = fn(*args)
            out.realize()
            sync()
            return out
        return Runnable(step, to_numpy=_to_numpy,
                        count_kernels=_kernel_counter(step, lambda: fn(*args)))
    return build


def _mlp_step(p: Params, a: Arrays) -> Runnable:
    """784-512-512-10 ReLU MLP, cross-entropy, Adam; parameters as plain Tensors so the
    weight layout of nn.Linear does not matter."""
    import lazygrad as lg
    from lazygrad.optim import Adam
    n_layers = len(p["sizes"]) - 1
    params = [lg.Tensor(a[f"{k}{i}"], requires_grad=True)
              for i in range(n_layers) for k in ("w", "b")]
    X, Y = lg.Tensor(a["X"]), lg.Tensor(a["Y"])
    lg.realize(*params, X, Y)
    opt = Adam(params, lr=MLP_LR)

    def step() -> float:
        opt.zero_grad()
        h = X
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                h = h.relu()
        loss = h.cross_entropy(Y)
        loss.backward()
        opt.step(loss)  # the loss is realized with the update: the forward runs once
        return float(loss.item())
    return Runnable(step, to_numpy=np.asarray, count_kernels=_kernel_counter(step, None),
                    check_first=True)


BUILDERS: dict[str, Builder] = {k: _make_builder(k) for k in _FUNCTIONS}
BUILDERS["mlp_step"] = _mlp_step
