"""lazygrad: a lazy graph compiler for deep learning that generates fused OpenCL kernels.

    import lazygrad as lg
    x = lg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = (x.exp() * 2).sum()      # builds a lazy graph, nothing runs yet
    y.backward()                 # the gradient is more lazy graph
    print(y.item(), x.grad.numpy())   # now kernels are scheduled, fused, compiled, run
"""
from lazygrad.version import __version__  # noqa: F401

from lazygrad import config  # noqa: F401  (lg.config.override(fuse=False): settings for a block)
from lazygrad.counters import counters
from lazygrad.dtypes import DType, bool_, float16, float32, float64, int8, int16, int32, int64, uint8, uint32
from lazygrad.ir.random import manual_seed
from lazygrad.frontend.tensor import Tensor, cat, is_grad_enabled, no_grad, realize, stack

from lazygrad import config, data, nn, optim  # (lg.nn.Linear, lg.optim.SGD, like torch.nn / torch.optim)
from lazygrad.frontend import activations, mathops, shapes
from lazygrad import utils
from lazygrad.frontend.creation import (empty, full_like, linspace, logspace, normal, ones_like, rand_like, randint, randn_like, tensor, zeros_like)
from lazygrad.frontend.einsum import einsum
from lazygrad.autodiff.rules import format_grad_graph
from lazygrad.engine.realize import schedule_kernels
from lazygrad.frontend.autograd import grad_tensors
from lazygrad.runtime.device import get_device, synchronize as _sync
from lazygrad.frontend.mathops import std_mean, var_mean

from lazygrad.frontend.torch_functions import *  # noqa: E402,F401,F403  (lg.exp(x), lg.sum(x, 1), lg.where(c, a, b), ...)
from lazygrad.frontend.torch_functions import __all__ as _torch_names  # noqa: E402

zeros, ones, full, arange, eye, rand, randn = (Tensor.zeros, Tensor.ones, Tensor.full, Tensor.arange, Tensor.eye,
                                               Tensor.rand, Tensor.randn)

bool = bool_  # noqa: A001  (lg.bool, like torch.bool)


def grad(y: Tensor, xs: "list[Tensor] | Tensor", grad_output: "Tensor | None" = None,
         allow_unused: bool = False) -> "list[Tensor]":
    """Lazy gradient tensors dy/dx for each x in xs (a DAG rewrite; nothing runs)."""
    return grad_tensors(y, [xs] if isinstance(xs, Tensor) else list(xs), grad_output, allow_unused)


def grad_graph(*tensors: Tensor) -> str:
    """The lazy graph behind `tensors` (typically gradients), one node per line in dependency
    order: id, op and arg, shape, dtype, sources, and where it came from — the user's source
    line for forward nodes, "grad of OP #id @ file:line" for nodes autodiff made."""
    return format_grad_graph([t.node for t in tensors])


def schedule(*tensors: Tensor) -> list:
    """The kernels realizing `tensors` would launch, without running them: each has name,
    source, ops, reason, inputs, outputs."""
    return schedule_kernels([t.node for t in tensors])


def synchronize() -> None:
    """Wait for every queued kernel (and add their device time to counters.kernel_time)."""
    _sync()


def device():
    """The OpenCL device lazygrad runs on, with its queried capabilities (`.caps`)."""
    return get_device()


__all__ = ["config", "data", "nn", "optim", "Tensor", "DType", "bool_", "float16", "float32", "float64",
           "uint8", "int8", "int16", "uint32", "int32", "int64", "counters",
           "manual_seed", "cat", "stack", "no_grad", "is_grad_enabled", "realize", "grad", "grad_graph", "schedule",
           "synchronize", "device", "std_mean", "var_mean", "einsum", "tensor", "zeros", "ones", "full", "empty",
           "arange", "eye", "rand", "randn", "linspace", "logspace", "randint", "normal", "zeros_like", "ones_like",
           "full_like", "rand_like", "randn_like", "utils", *_torch_names]

# torch's dtype aliases (lg.float, lg.long, ...), last: they hide the builtins in this module
float, double, half, int, long = float32, float64, float16, int32, int64  # noqa: A001  (torch's aliases)
short = int16
