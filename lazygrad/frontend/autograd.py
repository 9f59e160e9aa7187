"""Tensor-level autograd: `Tensor.backward` and `lg.grad` on top of autodiff's graph rewrite.

autodiff (lazygrad/autodiff) knows nodes only; this module knows which tensors are leaves,
accumulates into `.grad` like torch (detached unless create_graph), and wraps gradient nodes
back into differentiable Tensors, so `lg.grad` of an `lg.grad` gives second derivatives.

Public names: grad_tensors, backward.
"""
from __future__ import annotations

from lazygrad.autodiff.rules import _as, add, grad
from lazygrad.frontend.tensor import Tensor
from lazygrad.ir import graph as gr


def _leaves(t: Tensor) -> list[Tensor]:
    """Leaf tensors requiring grad that `t` was computed from (iterative walk)."""
    out: list[Tensor] = []
    seen: set[int] = set()
    stack = [t]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if not x._inputs:
            if x.requires_grad:
                out.append(x)
            continue
        stack.extend(x._inputs)
    return out


def grad_tensors(y: Tensor, xs: list[Tensor], grad_output: Tensor | None = None,
                 allow_unused: bool = False) -> list[Tensor]:
    """lg.grad: lazy gradient tensors of y with respect to each of xs."""
    for x in (y, *xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: expected lazygrad Tensors, got {type(x).__name__}")
    if grad_output is None and y.numel() != 1:
        raise RuntimeError(f"grad: y has shape {y.shape}; a grad_output is needed for non-scalar outputs")
    seed = None
    if grad_output is not None:
        if grad_output.shape != y.shape:
            raise ValueError(f"grad: grad_output shape {grad_output.shape} does not match output shape {y.shape}")
        seed = _as(grad_output.node, y.dtype)
    nodes = grad(y.node, [x.node for x in xs], seed)
    sources = (y,) if grad_output is None else (y, grad_output)
    out = []
    for x, n in zip(xs, nodes):
        if n is None:
            if not allow_unused:
                raise RuntimeError(f"grad: the output does not depend on an input of shape {x.shape}; "
                                   "pass allow_unused=True for zeros")
            out.append(Tensor.zeros(*x.shape, dtype=x.dtype))
        else:
            out.append(Tensor._from(n, *sources))  # differentiable again: lg.grad of lg.grad
    return out


def backward(t: Tensor, gradient: Tensor | None = None, create_graph: bool = False) -> None:
    """Tensor.backward: add d(t)/d(leaf) to `.grad` of every leaf tensor t depends on that has
    requires_grad=True. The `.grad` tensors are detached unless `create_graph`."""
    if not t.requires_grad:
        raise RuntimeError(f"backward: the tensor of shape {t.shape} does not require grad: no tensor with "
                           "requires_grad=True leads to it (or it was computed from detach()ed tensors or "
                           "under lg.no_grad())")
    if gradient is None and t.numel() != 1:
        raise RuntimeError(f"backward: grad can be implicitly created only for scalar outputs, got shape {t.shape}; "
                           "pass a gradient tensor of the same shape")
    leaves = _leaves(t)
    if not leaves:
        raise RuntimeError(f"backward: no tensor with requires_grad=True leads to the tensor of shape {t.shape} "
                           "(requires_grad was switched off on its inputs)")
    seed = None
    if gradient is not None:
        gradient = gradient if isinstance(gradient, Tensor) else Tensor(gradient)
        if gradient.shape != t.shape:
            raise ValueError(f"backward: gradient shape {gradient.shape} does not match tensor shape {t.shape}")
        seed = _as(gradient.node, t.dtype)
    nodes = grad(t.node, [x.node for x in leaves], seed)
    for leaf, n in zip(leaves, nodes):
        if n is None:
            continue
        earlier = ()
        if leaf.grad is not None:
            n = add(leaf.grad.node, n)
            earlier = getattr(leaf.grad, "_companions", ())
        # like torch: without create_graph, .grad carries no history back to the leaves
        leaf.grad = Tensor._from(n, t) if create_graph else Tensor(gr.detach(n))
        # the loss is realized with the gradient (in the optimizer's step), not recomputed later
        leaf.grad._companions = (*earlier, t) if t.node.realized is None else earlier
    # after every .grad is set: each distinct hook once (one DDP wraps many leaves)
    for hook in dict.fromkeys(h for leaf, n in zip(leaves, nodes) if n is not None
                              for h in getattr(leaf, "_post_backward", ())):
        hook()


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_backward(self, gradient: Tensor | None = None, create_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into `.grad` of every leaf tensor that requires grad
    (`create_graph=True`: the `.grad` tensors can be differentiated again)."""
    backward(self, gradient, create_graph)


TENSOR_METHODS = {"backward": _method_backward}
