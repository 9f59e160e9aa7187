"""Gradient clipping (torch.nn.utils): clip_grad_norm_ and clip_grad_value_.

Both are lazy: the new `.grad` of each parameter is graph (the gradient times a scale that is
computed on the device from the total norm), so clipping reads nothing back to the host and
fuses into the optimizer step that realizes the gradients. The returned total norm rides
along with that step (the gradients carry it, like the loss), so reading it afterwards
launches no kernel.

Public names: clip_grad_norm_, clip_grad_value_.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from lazygrad.frontend.tensor import Tensor, stack

# norm of a flat tensor by order (torch.linalg.vector_norm); any other order: (sum |x|^p)^(1/p)
_NORMS: dict[float, Callable[[Tensor], Tensor]] = {
    math.inf: lambda x: x.abs().max(),
    -math.inf: lambda x: x.abs().min(),
    0.0: lambda x: (x != 0).float().sum(),
    1.0: lambda x: x.abs().sum(),
    2.0: lambda x: (x * x).sum().sqrt(),
}


def _vector_norm(x: Tensor, order: float) -> Tensor:
    rule = _NORMS.get(order)
    return rule(x) if rule is not None else (x.abs() ** order).sum() ** (1.0 / order)


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def _replace_grad(p: Tensor, new: Tensor, *extra_companions: Tensor) -> None:
    # the old gradient carries the loss it came from (realized with the step): keep that
    companions = (*getattr(p.grad, "_companions", ()), *extra_companions)
    p.grad = new
    if companions:
        new._companions = companions


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients of `parameters` so that their total `norm_type` norm (the norm of the
    per-gradient norms, as torch computes it) is at most `max_norm`: each is multiplied by
    min(1, max_norm / (total + 1e-6)). Returns the total norm before clipping as a 0-d Tensor.
    `error_if_nonfinite=True` raises RuntimeError on a NaN or infinite norm, which needs the norm
    on the host (one realize); the default stays lazy. `foreach` is accepted for torch's
    signature and ignored."""
    params = _grads(parameters)
    if not params:
        return Tensor(0.0)
    order = float(norm_type)
    grads = [p.grad.float() for p in params]
    norms = [_vector_norm(g.reshape(-1), order) for g in grads]
    total = _vector_norm(stack(norms), order)
    if error_if_nonfinite and not math.isfinite(value := total.item()):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {order} of the gradients is non-finite "
                           f"({value}), so it cannot be clipped; pass error_if_nonfinite=False to scale the "
                           "gradients by it anyway")
    scale = (max_norm / (total + 1e-6)).minimum(1.0)
    for i, (p, g) in enumerate(zip(params, grads)):
        _replace_grad(p, (g * scale).cast(p.grad.dtype), *((total,) if i == 0 else ()))
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient of `parameters` to [-clip_value, clip_value] (lazily, like torch's
    in-place clamp). `foreach` is accepted for torch's signature and ignored."""
    v = float(clip_value)
    for p in _grads(parameters):
        _replace_grad(p, p.grad.clip(-v, v))


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
