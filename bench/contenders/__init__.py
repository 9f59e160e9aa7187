"""The contenders, in table order.

Contenders with an ``env`` run in a worker subprocess (bench.worker) that has that
environment from its start; the others run in the harness process, interleaved.

Public names: CONTENDERS, BY_NAME, REFERENCE_CONTENDERS, Contender, Unsupported.
"""
from __future__ import annotations

from bench.contenders import lazygrad_impl, numpy_impl, opencl_impl, tinygrad_impl, torch_impl
from bench.contenders.base import Contender, Unsupported
from bench.envsetup import lazygrad_unfused_env, tinygrad_env

CONTENDERS: list[Contender] = [
    Contender("lazygrad", lambda: lazygrad_impl.BUILDERS, lazygrad_impl.version,
              "lazygrad, fused (this process)"),
    Contender("lazygrad-unfused", lambda: lazygrad_impl.BUILDERS, lazygrad_impl.version,
              "lazygrad with LAZYGRAD_FUSE=0 (worker process)", env=lazygrad_unfused_env()),
    Contender("numpy", lambda: numpy_impl.BUILDERS, numpy_impl.version, "numpy (OpenBLAS)"),
    Contender("torch", lambda: torch_impl.EAGER_BUILDERS, torch_impl.version, "PyTorch eager, CPU"),
    # inductor compiles take 5-20 s each here: --quick only compiles the issue-2 chain
    Contender("torch.compile", lambda: torch_impl.COMPILE_BUILDERS, torch_impl.version,
              "torch.compile (inductor, C++/OpenMP)", quick_kinds=frozenset({"issue2"})),
    Contender("tinygrad", lambda: tinygrad_impl.BUILDERS, tinygrad_impl.version,
              "tinygrad DEV=CL on PoCL (worker process)", env=tinygrad_env()),
    Contender("opencl-hand", lambda: opencl_impl.BUILDERS, opencl_impl.version,
              "hand-written float8 pyopencl kernels (ceiling)"),
]

BY_NAME: dict[str, Contender] = {c.name: c for c in CONTENDERS}

# ratio columns in the report: "how many times faster than X"
REFERENCE_CONTENDERS: tuple[str, ...] = ("numpy", "torch", "tinygrad")

__all__ = ["CONTENDERS", "BY_NAME", "REFERENCE_CONTENDERS", "Contender", "Unsupported"]
