"""PyTorch contenders: eager mode and torch.compile (inductor, C++ backend on this CPU).

Both share one table of pure functions per kind; the compiled contender wraps each in
``torch.compile`` (compilation happens during warm-up). Any failure to compile surfaces as
an exception, which the harness records as 'n/a' with the message.

Public names: EAGER_BUILDERS, COMPILE_BUILDERS, version.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.contenders.base import Builder, Runnable
from bench.workloads import LAYERNORM_EPS, MLP_LR, Arrays, Params, chain_ops


def version() -> str:
    import torch
    return torch.__version__


def _chain_fn(p: Params) -> Callable[..., Any]:
    ops = chain_ops(p["length"])

    def fn(x: Any) -> Any:
        for op, c in ops:
            x = {"mul": lambda v: v * c, "add": lambda v: v + c, "sub": lambda v: v - c,
                 "relu": lambda v: v.relu()}[op](x)
        return x
    return fn


def _layernorm_fn(p: Params) -> Callable[..., Any]:
    import torch.nn.functional as F
    cols = p["shape"][-1]
    return lambda x: F.layer_norm(x, (cols,), eps=LAYERNORM_EPS)


def _conv_fn(p: Params) -> Callable[..., Any]:
    import torch.nn.functional as F
    return lambda x, w: F.conv2d(x, w).relu()


# kind -> (function factory, input names in call order)
_FUNCTIONS: dict[str, tuple[Callable[[Params], Callable[..., Any]], tuple[str, ...]]] = {
    "chain": (_chain_fn, ("x",)),
    "issue2": (lambda p: lambda x: ((x * 2 + 1).relu() * (-x).exp() + x.sigmoid()).tanh(), ("x",)),
    "copylike": (lambda p: lambda x: x * 2 + 1, ("x",)),
    "copy": (lambda p: lambda x: x.clone(), ("x",)),
    "sum_sq": (lambda p: lambda x: (x * x).sum(), ("x",)),
    "softmax": (lambda p: lambda x: x.softmax(-1), ("x",)),
    "layernorm": (_layernorm_fn, ("x",)),
    "matmul": (lambda p: lambda a, b: a @ b, ("a", "b")),
    "matmul_relu": (lambda p: lambda a, b, bias: (a @ b + bias).relu(), ("a", "b", "bias")),
    "conv2d_relu": (_conv_fn, ("x", "w")),
    "overhead": (lambda p: lambda x: (x * 2 + 1).relu(), ("x",)),
}


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """torch.compile with room for every case: dynamo caches per code object, and all chain
    lengths and sizes share one code object; past the recompile limit (8) it would fall
    back to eager silently. With fail_on_recompile_limit_hit it raises instead."""
    import torch
    import torch._dynamo.config as dynamo_config
    dynamo_config.recompile_limit = max(int(dynamo_config.recompile_limit), 64)
    dynamo_config.accumulated_recompile_limit = max(
        int(dynamo_config.accumulated_recompile_limit), 1024)
    dynamo_config.fail_on_recompile_limit_hit = True
    return torch.compile(fn, dynamic=False)


def _make_builder(kind: str, compiled: bool) -> Builder:
    factory, names = _FUNCTIONS[kind]

    def build(p: Params, a: Arrays) -> Runnable:
        import torch
        fn = factory(p)
        if compiled:
            fn = _compile(fn)
        args = [torch.from_numpy(a[n]) for n in names]
        return Runnable(lambda: fn(*args), to_numpy=_to_numpy)
    return build


def _mlp_builder(compiled: bool) -> Builder:
    def build(p: Params, a: Arrays) -> Runnable:
        import torch
        n_layers = len(p["sizes"]) - 1
        layers: list[Any] = []
        for i in range(n_layers):
            lin = torch.nn.Linear(*a[f"w{i}"].shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(a[f"w{i}"].T.copy()))
                lin.bias.copy_(torch.from_numpy(a[f"b{i}"]))
            layers += [lin, torch.nn.ReLU()] if i < n_layers - 1 else [lin]
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=MLP_LR)
        X, Y = torch.from_numpy(a["X"]), torch.from_numpy(a["Y"].astype(np.int64))

        def loss_fn(xb: Any, yb: Any) -> Any:
            return torch.nn.functional.cross_entropy(model(xb), yb)
        if compiled:
            loss_fn = _compile(loss_fn)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(X, Y)
            loss.backward()
            opt.step()
            return float(loss.item())
        return Runnable(step, to_numpy=np.asarray, check_first=True)
    return build


EAGER_BUILDERS: dict[str, Builder] = {k: _make_builder(k, False) for k in _FUNCTIONS}
EAGER_BUILDERS["mlp_step"] = _mlp_builder(False)
COMPILE_BUILDERS: dict[str, Builder] = {k: _make_builder(k, True) for k in _FUNCTIONS}
COMPILE_BUILDERS["mlp_step"] = _mlp_builder(True)
