"""How a Tensor looks to Python: repr/str with values, and format specs, in torch's manner.

`repr(t)` and `str(t)` realize the tensor (they run its kernels) and show its values, shape
and dtype, summarised like torch past `THRESHOLD` elements. A lazy library must still let a
debugger or a log line look at a tensor without computing it, so `lazy_repr(t)` never runs a
kernel, and the setting `lazy_repr` (LAZYGRAD_LAZY_REPR=1, or
`with lg.config.override(lazy_repr=True):`) makes repr/str use it.

Public names: THRESHOLD, EDGEITEMS, tensor_repr, lazy_repr, tensor_format.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lazygrad.config import settings

if TYPE_CHECKING:
    from lazygrad.frontend.tensor import Tensor

THRESHOLD = 1000  # elements shown in full; more are summarised with "..." (torch's default)
EDGEITEMS = 3     # values kept at each end of a summarised dim (torch's default)


def _suffix(t: Tensor) -> str:
    return ", requires_grad=True" if t.requires_grad else ""


def lazy_repr(t: Tensor) -> str:
    """Shape, dtype and state without running anything: the node's op while lazy, and the
    values only when they are already in a buffer (reading one runs no kernel)."""
    if t.node.realized is not None and t.numel() <= 64:
        return _values_repr(t, t.numpy())
    state = "realized" if t.node.realized is not None else f"lazy {t.node.op.value}"
    return f"<Tensor shape={t.shape} dtype={t.dtype!r} {state}{_suffix(t)}>"


def _values_repr(t: Tensor, values: np.ndarray) -> str:
    # the prefix makes numpy indent continuation lines under the first "["
    body = np.array2string(values, separator=", ", prefix="Tensor(", threshold=THRESHOLD, edgeitems=EDGEITEMS)
    return f"Tensor({body}, shape={t.shape}, dtype={t.dtype!r}{_suffix(t)})"


def tensor_repr(t: Tensor) -> str:
    """`Tensor([...], shape=(...), dtype=lg.float32)`: realizes `t` unless the `lazy_repr`
    setting is on."""
    if settings().lazy_repr:
        return lazy_repr(t)
    return _values_repr(t, t.numpy())


def tensor_format(t: Tensor, spec: str) -> str:
    """`format(t, spec)`: a one-element tensor formats as its Python number (`f"{loss:.4f}"`);
    any tensor with an empty spec is its str; other specs are a TypeError, as in torch."""
    if t.numel() == 1:
        return format(t.item(), spec)
    if not spec:
        return str(t)
    raise TypeError(f"unsupported format string {spec!r} passed to Tensor.__format__ "
                    f"(only one-element tensors take a format spec; got shape {t.shape})")


# --- Tensor methods: installed on the class by the package (lazygrad/frontend/__init__.py,
# lazygrad/nn/__init__.py), so the Tensor class never imports the families built on it


def _method_repr(self) -> str:
    """Values, shape and dtype, like torch's repr. This realizes the tensor (runs its kernels);
    with the `lazy_repr` setting on (LAZYGRAD_LAZY_REPR=1 or
    `with lg.config.override(lazy_repr=True):`) it is `lazy_repr()` instead."""
    return tensor_repr(self)


def _method_lazy_repr(self) -> str:
    """A repr that never runs a kernel: shape, dtype and the op that will make the value
    (values only if the tensor is already realized and small)."""
    return lazy_repr(self)


def _method_format(self, spec: str) -> str:
    """`f"{loss:.4f}"`: a one-element tensor formats as its Python number (realizing it); any
    other tensor takes only the empty spec (its str) and raises TypeError otherwise, like torch."""
    return tensor_format(self, spec)


TENSOR_METHODS = {"__repr__": _method_repr, "__str__": _method_repr, "lazy_repr": _method_lazy_repr, "__format__": _method_format}
