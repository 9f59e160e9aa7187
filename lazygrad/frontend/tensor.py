"""Tensor: the user-facing, PyTorch-like API over lazy nodes.

Every method validates its input (raising at build time with the op, shapes and dtypes in
the message), applies broadcasting and dtype promotion, and builds graph nodes. Nothing runs
until a value is needed (`numpy()`, `item()`, `realize()`).

Public names: Tensor, no_grad, realize, is_grad_enabled.

The op families in their own modules (mathops.py, activations.py, ...) attach their Tensor methods from their
`METHODS` tables when lazygrad is imported.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Union

import numpy as np

from lazygrad import dtypes as dt
from lazygrad.ir import graph as g
from lazygrad.dtypes import DType
from lazygrad.ir.graph import Node
from lazygrad.ir.ops import Op
from lazygrad.engine.realize import realize as _realize
from lazygrad.runtime.device import Buffer, get_device
from lazygrad.ir.random import next_seed
from lazygrad.frontend.return_types import ValuesIndices
from lazygrad.ir.view import prod

Scalar = Union[int, float, bool]
ShapeLike = Union[int, Sequence[int]]

_grad_enabled = [True]


def is_grad_enabled() -> bool:
    """False inside a `no_grad()` block: new tensors then record no gradient history."""
    return _grad_enabled[-1]


@contextmanager
def no_grad():
    """Ops inside build tensors that do not require grad (like torch.no_grad)."""
    _grad_enabled.append(False)
    try:
        yield
    finally:
        _grad_enabled.pop()


def _shape_arg(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"shape: sizes must be ints, got {shape!r}")
        out.append(int(s))
    return tuple(out)


MAX_NUMEL = 2**40  # elements in one tensor; keeps every index expression inside a signed 64-bit long


def _check_shape(shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    for s in shape:
        if s < 0:
            raise ValueError(f"{op}: negative size in shape {shape}")
    n = 1
    for s in shape:
        n *= s
        if n > MAX_NUMEL:
            raise ValueError(f"{op}: shape {shape} has more elements ({prod(shape)}) than lazygrad supports "
                             f"({MAX_NUMEL})")
    return shape


def broadcast_shapes(*shapes: tuple[int, ...], op: str = "broadcast") -> tuple[int, ...]:
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    if len(shapes) == 2 and not shapes[1]:
        return tuple(shapes[0])  # a scalar operand
    if len(shapes) == 2 and not shapes[0]:
        return tuple(shapes[1])
    nd = max(len(s) for s in shapes)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _norm_axis(axis: int, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dims")
    return int(axis) % max(ndim, 1)


def _to_numpy(data: Any, op: str = "Tensor") -> np.ndarray:
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"{op}: data is not a rectangular nested list of numbers ({e})") from None
    if arr.dtype == object and arr.size and all(isinstance(v, int) for v in arr.flat):
        raise OverflowError(f"{op}: integers out of the int64 range (e.g. {max(arr.flat, key=abs)})")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: data must be numeric (bool, int or float), got {arr.dtype} from {type(data).__name__}")
    return arr


def _int_range(d: DType) -> tuple[int, int]:
    info = np.iinfo(d.np)
    return int(info.min), int(info.max)


class Tensor:
    """A lazily computed n-dimensional array on the OpenCL device."""

    # a dict of slots documents each attribute (help(Tensor) shows the texts)
    __slots__ = {
        "node": "The lazy graph node this tensor currently stands for (realized: a buffer node).",
        "requires_grad": "Whether gradients flow back to this tensor (`backward()` fills `.grad` of such leaves).",
        "grad": "The gradient accumulated by `backward()` (a Tensor, lazy until read), or None.",
        "_inputs": "The tensors that require grad this one was computed from (empty for leaves).",
        # a .grad carries the loss it came from, so `opt.step(); loss.item()` reads the loss
        # computed with the step
        "_companions": "Tensors realized together with this one.",
        "_post_backward": "Callbacks run once per backward() that accumulated into this leaf's .grad.",
        "__weakref__": "Weak references to tensors (the runtime's caches hold them weakly).",
    }
    __array_priority__ = 1000  # numpy defers binary ops with a Tensor to us

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        if isinstance(data, Node):
            node = data
        elif isinstance(data, Tensor):
            node = data.node
        else:
            arr = _to_numpy(data)
            want = dt.as_dtype(dtype) if dtype is not None else (
                dt.default_float if arr.dtype.kind == "f" and not isinstance(data, np.ndarray) else
                dt.from_numpy_array_dtype(arr.dtype) if isinstance(data, np.ndarray) else
                dt.bool_ if arr.dtype.kind == "b" else dt.default_int)
            if dtype is None and isinstance(data, np.ndarray) and _native_f64(arr.dtype) and _device_has(dt.float64):
                want = dt.float64  # like torch.tensor: a float64 array stays float64 where the device has fp64
            _check_device_dtype(want, "Tensor")
            if arr.dtype.kind == "f" and want.is_int and not np.all(np.isfinite(arr)):
                raise ValueError("Tensor: cannot convert NaN or Inf to an integer dtype")
            if arr.dtype.kind in "iuf" and want.is_int and arr.size:
                info = np.iinfo(want.np)
                lo, hi = arr.min(), arr.max()
                if lo < info.min or hi > info.max or (arr.dtype.kind == "f" and (lo <= info.min - 1 or hi >= info.max + 1)):
                    hint = " (pass dtype=lg.int64)" if want is dt.int32 and dtype is None else ""
                    raise OverflowError(f"Tensor: values {lo}..{hi} out of range for {want.name}{hint}")
            buf = Buffer.from_numpy(np.ascontiguousarray(arr, dtype=want.np).reshape(-1), want)
            node = g.buffer_node(buf, tuple(arr.shape), want)
        if dtype is not None and isinstance(data, (Node, Tensor)) and node.dtype != dt.as_dtype(dtype):
            node = g.elementwise(Op.CAST, node, dtype=dt.as_dtype(dtype))
        self.node: Node = node
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and not node.dtype.is_float:
            raise TypeError(f"Tensor: only floating point tensors can require grad, got {node.dtype.name}")
        self.grad: Tensor | None = None
        self._inputs: tuple[Tensor, ...] = ()
        if self.requires_grad and isinstance(data, (Node, Tensor)):
            self._own_leaf_node()

    # --- construction helpers -------------------------------------------------------------------
    @staticmethod
    def _from(node: Node, *inputs: Tensor) -> Tensor:
        if node.numel > MAX_NUMEL:  # expand/pad/broadcast can multiply sizes past what indices hold
            raise ValueError(f"{node.op.value}: result shape {node.shape} from {[i.shape for i in inputs]} has more "
                             f"elements ({node.numel}) than lazygrad supports ({MAX_NUMEL})")
        t = Tensor.__new__(Tensor)
        t.grad = None
        needs_grad = any(i.requires_grad for i in inputs)
        if needs_grad and not is_grad_enabled():
            # gradients are found on nodes, not tensors: cut the node path to the inputs
            node = g.detach(node)
        t.node = node
        if needs_grad and is_grad_enabled():
            t.requires_grad = True
            t._inputs = tuple(i for i in inputs if i.requires_grad)
        else:
            t.requires_grad = False
            t._inputs = ()
        return t

    @staticmethod
    def full(shape: ShapeLike, value: Scalar, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of `shape` filled with `value`; the dtype follows the value (bool, int32,
        float32) unless given."""
        shape = _check_shape(_shape_arg((shape,) if isinstance(shape, int) else tuple(shape)), "full")
        d = dt.as_dtype(dtype) if dtype is not None else (
            dt.bool_ if isinstance(value, bool) else dt.default_int if isinstance(value, int) else dt.default_float)
        t = Tensor(g.const(_py(value, d), d, shape))
        t.requires_grad = requires_grad
        return t.contiguous_if_grad()

    @staticmethod
    def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros; `shape` as separate ints or one tuple, float32 unless `dtype` is
        given."""
        return Tensor.full(_shape_arg(shape), 0.0, dtype or dt.default_float, requires_grad).contiguous_if_grad()

    @staticmethod
    def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of ones; `shape` as separate ints or one tuple, float32 unless `dtype` is given."""
        return Tensor.full(_shape_arg(shape), 1.0, dtype or dt.default_float, requires_grad).contiguous_if_grad()

    @staticmethod
    def empty(*shape: Any, dtype: Any = None) -> Tensor:
        """A tensor of the given shape; lazygrad fills it with zeros (torch leaves it
        uninitialised)."""
        return Tensor.zeros(*shape, dtype=dtype)

    def contiguous_if_grad(self) -> Tensor:
        """For a tensor that requires grad, make it a leaf with a buffer of its own (so an optimizer
        can replace it); otherwise return it unchanged."""
        # a leaf that requires grad must be a real buffer so optimizers can replace it
        return self._own_leaf_node() if self.requires_grad else self

    def _own_leaf_node(self) -> Tensor:
        """Realize this leaf into a buffer node of its own. Hash-consing makes equal lazy values
        one node (two `Tensor.zeros(3)` are the same node) and gradients are found per node, so
        two leaves sharing a node would each get the other's gradient too."""
        self.realize()
        self.node = g.buffer_node(self.node.realized, self.shape, self.dtype)
        return self

    @staticmethod
    def arange(start: Scalar, stop: Scalar | None = None, step: Scalar = 1, dtype: Any = None) -> Tensor:
        """Values from `start` to `stop` (exclusive) in steps of `step`, like torch.arange: int64
        for int arguments, float32 otherwise."""
        out = Tensor._arange(start, stop, step, dtype)
        # torch's integer arange is int64; the positions are counted in int32 where they fit
        # (the cast fuses into whatever reads them)
        return out.cast(dt.int64) if dtype is None and out.dtype.is_int else out

    @staticmethod
    def _positions(start: int, stop: int | None = None, step: int = 1) -> Tensor:
        """arange of ints in lazygrad's index arithmetic: int32 while the values fit, int64
        beyond. The masks and one-hot picks inside ops (argmax, cumsum's triangle, gathers) use
        it, so their kernels count in int; the indices an op returns are cast to int64."""
        return Tensor._arange(start, stop, step, None)

    @staticmethod
    def _arange(start: Scalar, stop: Scalar | None, step: Scalar, dtype: Any) -> Tensor:
        if stop is None:
            start, stop = 0, start
        if step == 0:
            raise ValueError("arange: step must not be zero")
        if not all(math.isfinite(v) for v in (start, stop, step)):
            raise ValueError(f"arange: start, stop and step must be finite, got {start}, {stop}, {step}")
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        if is_int:
            start, stop, step = int(start), int(stop), int(step)
            n = max(0, -(-(stop - start) // step))  # exact: no float division of big ints
        else:
            n = max(0, math.ceil((stop - start) / step))
        n = _check_shape((n,), "arange")[0]
        last = start + (n - 1) * step if n else start
        lo32, hi32 = _int_range(dt.int32)
        fits32 = lo32 <= min(start, last) and max(start, last) <= hi32
        # int32 while the values fit it and int64 when they do not (int32 would wrap them)
        d = dt.as_dtype(dtype) if dtype is not None else (
            (dt.default_int if fits32 else dt.int64) if is_int else dt.default_float)
        if d.is_int:
            lo, hi = _int_range(d)
            if n and not (lo <= math.floor(min(start, last)) and math.ceil(max(start, last)) <= hi):
                raise ValueError(f"arange: values {start}..{last} ({n} elements) do not fit {d.name} "
                                 f"(range {lo}..{hi})")
        # the indices 0..n-1 the values are made from: int32 while they and the values fit it,
        # int64 beyond; for floats the dtype itself (float32 indices are not exact past 2**24)
        if d.is_float:
            base_dt = d if d.itemsize >= 4 else dt.float32
        else:
            base_dt = dt.int32 if fits32 and n - 1 <= hi32 and d is not dt.int64 else dt.int64
        base = Tensor(g.iota(n, base_dt))  # filled at realize: building a graph never asks the device
        out = base * step + start if (step != 1 or start != 0) else base
        return out.cast(d)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = None) -> Tensor:
        """The n x m identity matrix (m defaults to n), float32 unless `dtype` is given."""
        m = n if m is None else m
        r = Tensor._positions(n).reshape(n, 1)
        c = Tensor._positions(m).reshape(1, m)
        return (r == c).cast(dtype or dt.default_float)

    @staticmethod
    def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Uniform [0, 1), computed lazily on the device (reproducible after lg.manual_seed)."""
        shape = _check_shape(_shape_arg(shape), "rand")
        t = Tensor(g.make(Op.RAND, (), shape, dt.float32, next_seed()))
        d = dt.as_dtype(dtype) if dtype is not None else dt.default_float
        t = t.cast(d) if d != dt.float32 else t
        t.requires_grad = requires_grad
        return t.contiguous_if_grad()

    @staticmethod
    def uniform(*shape: Any, low: float = 0.0, high: float = 1.0, dtype: Any = None,
                requires_grad: bool = False) -> Tensor:
        """Uniform random values in [low, high), computed on the device (reproducible after
        `lg.manual_seed`)."""
        t = Tensor.rand(*shape, dtype=dtype) * (high - low) + low
        t.requires_grad = requires_grad
        return t.contiguous_if_grad()

    @staticmethod
    def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Standard normal by Box-Muller on two uniform streams."""
        shape = _check_shape(_shape_arg(shape), "randn")
        u1 = 1.0 - Tensor.rand(*shape)
        u2 = Tensor.rand(*shape)
        t = (u1.log() * -2.0).sqrt() * (u2 * (2 * math.pi)).cos()
        d = dt.as_dtype(dtype) if dtype is not None else dt.default_float
        t = t.cast(d) if d != dt.float32 else t
        t.requires_grad = requires_grad
        return t.contiguous_if_grad()

    @staticmethod
    def zeros_like(t: Tensor, dtype: Any = None) -> Tensor:
        """Zeros of `t`'s shape and dtype (or `dtype`)."""
        return Tensor.full(t.shape, 0, dtype or t.dtype)

    @staticmethod
    def ones_like(t: Tensor, dtype: Any = None) -> Tensor:
        """Ones of `t`'s shape and dtype (or `dtype`)."""
        return Tensor.full(t.shape, 1, dtype or t.dtype)

    @staticmethod
    def full_like(t: Tensor, value: Scalar, dtype: Any = None) -> Tensor:
        """`value` in `t`'s shape and dtype (or `dtype`)."""
        return Tensor.full(t.shape, value, dtype or t.dtype)

    # --- properties -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each dim, a tuple of ints (torch's `.shape`; `size()` is the same)."""
        return self.node.shape

    @property
    def dtype(self) -> DType:
        """The element type, a `lazygrad.DType` such as `lg.float32`."""
        return self.node.dtype

    @property
    def ndim(self) -> int:
        """The number of dims."""
        return len(self.node.shape)

    def dim(self) -> int:
        """The number of dims (`ndim`)."""
        return self.ndim

    def numel(self) -> int:
        """The number of elements."""
        return prod(self.shape)

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of dim `dim` (negative counts from the end), like torch."""
        return self.shape if dim is None else self.shape[_norm_axis(dim, self.ndim, "size")]

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self) -> bool:
        """True for a tensor that no recorded operation made (user-created, or not requiring grad):
        `backward()` fills `.grad` only on leaves."""
        return not self._inputs

    # --- Python protocols: printing, formatting, copying, pickling (torch's behaviour) ----------




    def __reduce__(self) -> tuple:
        """Pickle the values (realizing the tensor), dtype and requires_grad; like torch, not
        `.grad` and not the graph: an unpickled tensor is a leaf."""
        return (_rebuild_tensor, (self.numpy(), self.dtype.name, self.requires_grad))

    def __deepcopy__(self, memo: dict) -> Tensor:
        """A new leaf tensor with a copy of the values, requires_grad and a deep copy of `.grad`.
        Like torch, only leaves can be deep-copied (copy `t.detach()` for a computed tensor)."""
        if not self.is_leaf:
            raise RuntimeError("deepcopy: only tensors created explicitly by the user (graph leaves) support the "
                               "deepcopy protocol, like torch; deep-copy t.detach() instead")
        new = Tensor(np.array(self.numpy()), dtype=self.dtype, requires_grad=self.requires_grad)
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = self.grad.__deepcopy__(memo)
        return new

    def __hash__(self) -> int:
        return id(self)

    # --- realization and host access --------------------------------------------------------------
    def realize(self) -> Tensor:
        """Compute this tensor now (schedule, compile and run its kernels) and return it. Several
        tensors at once: `lg.realize(a, b)`."""
        realize(self)
        return self

    def numpy(self) -> np.ndarray:
        """The values as a numpy array (realizes the tensor and copies it to the host)."""
        self.realize()
        return self.node.realized.numpy().reshape(self.shape).astype(self.dtype.np, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def tolist(self) -> Any:
        """The values as nested Python lists (realizes the tensor)."""
        return self.numpy().tolist()

    def item(self) -> Scalar:
        """The value of a one-element tensor as a Python number (realizes it); ValueError for more
        elements."""
        if self.numel() != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python scalar, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    def detach(self) -> Tensor:
        """The same values with no gradient history (`requires_grad=False`): no gradient flows back
        through it."""
        return Tensor(g.detach(self.node))

    def contiguous(self) -> Tensor:
        """A copy of the values into a buffer of their own, in row-major order (realized as a kernel
        boundary)."""
        return Tensor._from(g.make(Op.CONTIGUOUS, (self.node,), self.shape, self.dtype), self)

    def assign(self, other: Tensor | Any) -> Tensor:
        """Replace this tensor's value (same shape and dtype); its history is dropped."""
        other = other if isinstance(other, Tensor) else Tensor(other, dtype=self.dtype)
        if other.shape != self.shape:
            raise ValueError(f"assign: shape {other.shape} does not match {self.shape}")
        if other.dtype != self.dtype:
            other = other.cast(self.dtype)
        self.node = other.node
        return self

    # --- dtype ------------------------------------------------------------------------------------
    def cast(self, dtype: Any) -> Tensor:
        """The tensor converted to `dtype` (a DType, its name, or a numpy/Python type); the same
        tensor if it already has it. Casts to int or bool carry no gradient."""
        d = dt.as_dtype(dtype)
        if d == self.dtype:
            return self
        return Tensor._from(g.elementwise(Op.CAST, self.node, dtype=d), self) if d.is_float else \
            Tensor(g.elementwise(Op.CAST, self.node, dtype=d))

    def to(self, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False,
           non_blocking: bool = False) -> Tensor:
        """torch's `to`: `t.to(lg.float64)`, `t.to("cpu")`, `t.to(other)` (other's dtype),
        `t.to("cpu", lg.int32)`, `t.to(dtype=..., device=...)`. lazygrad has one device: "cpu"
        (PoCL's, or the OpenCL device in use) and "opencl" name it and change nothing; another
        device is a ValueError. `copy=True` gives a new tensor even when nothing changes."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype if dtype is None else dtype
            elif _is_device(a):
                device = a
            elif dtype is None:
                dtype = a
            else:
                raise TypeError(f"to: unexpected argument {a!r} (after dtype {dtype!r})")
        if device is not None:
            _check_device_name(device)
        out = self.cast(dtype) if dtype is not None else self
        return Tensor._from(g.make(Op.CONTIGUOUS, (out.node,), out.shape, out.dtype), out) if copy and out is self \
            else out

    def cpu(self) -> Tensor:
        """The tensor itself (lazygrad's one device; torch's `cpu()`)."""
        return self

    @property
    def device(self) -> str:
        """"cpu": lazygrad has one device (the OpenCL device in use), named like torch's CPU."""
        return "cpu"

    def float(self) -> Tensor:
        """Cast to float32."""
        return self.cast(dt.float32)

    def half(self) -> Tensor:
        """Cast to float16 (if the device supports it)."""
        return self.cast(dt.float16)

    def double(self) -> Tensor:
        """Cast to float64 (if the device supports it)."""
        return self.cast(dt.float64)

    def int(self) -> Tensor:
        """Cast to int32 (truncates toward zero)."""
        return self.cast(dt.int32)

    def long(self) -> Tensor:
        """Cast to int64."""
        return self.cast(dt.int64)

    def bool(self) -> Tensor:
        """Cast to bool (nonzero is True)."""
        return self.cast(dt.bool_)

    def byte(self) -> Tensor:
        """Cast to uint8 (integers wrap into 0..255 like torch; floats see docs/semantics.md)."""
        return self.cast(dt.uint8)

    def char(self) -> Tensor:
        """Cast to int8 (integers wrap into -128..127 like torch)."""
        return self.cast(dt.int8)

    def short(self) -> Tensor:
        """Cast to int16 (integers wrap like torch)."""
        return self.cast(dt.int16)

    # --- elementwise building blocks ---------------------------------------------------------------
    def _unary(self, op: Op, float_only: bool = True) -> Tensor:
        x = self.cast(dt.least_upper_float(self.dtype)) if float_only else self
        return Tensor._from(g.elementwise(op, x.node), x)

    def _weight(self) -> dt.Weight:
        """How this tensor weighs in promotion: a 0-d tensor below one with dims (torch)."""
        return dt.Weight.ZERO_DIM if self.ndim == 0 else dt.Weight.TENSOR

    def _coerce(self, other: Any, op: str) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, np.bool_, int, np.integer, float, np.floating)):
            # the scalar is made in the pair's result dtype (torch.result_type with a scalar, the
            # lightest operand): an int wraps into it first, so uint8 + 300 adds 44 like torch
            d = dt.result_type((self.dtype, self._weight()), (dt.scalar_dtype(other), dt.Weight.SCALAR))
            return Tensor(g.const(_py(other, d), d))
        if isinstance(other, (list, tuple, np.ndarray)):
            return Tensor(other)
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__}")

    def _broadcast_pair(self, other: Any, op: str, reverse: bool = False,
                        dtype: DType | None = None) -> tuple[Tensor, Tensor]:
        o = self._coerce(other, op)
        a, b = (o, self) if reverse else (self, o)
        shape = broadcast_shapes(a.shape, b.shape, op=op)
        # a coerced scalar is a 0-d tensor of the result dtype already, so the weights of the
        # two tensors give torch's result with it too
        d = dtype or dt.result_type((a.dtype, a._weight()), (b.dtype, b._weight()))
        return a.cast(d)._expand_to(shape), b.cast(d)._expand_to(shape)

    def _expand_to(self, shape: tuple[int, ...]) -> Tensor:
        """Broadcast to `shape` (already validated by broadcast_shapes): the internal fast path."""
        if self.shape == shape:
            return self
        node = self.node
        if len(node.shape) < len(shape):
            node = g.reshape(node, (1,) * (len(shape) - len(node.shape)) + node.shape)
        return Tensor._from(g.expand(node, shape), self)

    def _binary(self, op: Op, other: Any, reverse: bool = False, name: str = "",
                result_dtype: DType | None = None, operand_dtype: DType | None = None) -> Tensor:
        a, b = self._broadcast_pair(other, name or op.value, reverse, operand_dtype)
        if a.dtype is dt.bool_ and op in _BOOL_ARITHMETIC:
            # bool with bool stays bool, like torch and numpy: + and maximum are or, * is and
            logic = _BOOL_ARITHMETIC[op]
            if logic is None:
                raise TypeError(f"{name or op.value}: bool tensors of shape {a.shape} cannot be subtracted (like torch); "
                                "use ^ or logical_not()")
            return Tensor(g.elementwise(logic, a.node, b.node, dtype=dt.bool_))
        if a.dtype is dt.bool_ and op in (Op.DIV, Op.POW):
            a, b = a.cast(dt.default_int), b.cast(dt.default_int)
        return Tensor._from(g.elementwise(op, a.node, b.node, dtype=result_dtype or a.dtype), a, b)

    # arithmetic
    def add(self, o: Any) -> Tensor:
        """Elementwise self + other, broadcasting and promoting dtypes like torch (torch.result_type:
        a 0-d tensor or a Python scalar widens only to a higher kind; bool + bool is or)."""
        return self._binary(Op.ADD, o, name="add")
    def sub(self, o: Any) -> Tensor:
        """Elementwise self - other, broadcasting and promoting dtypes like torch."""
        return self._binary(Op.SUB, o, name="sub")
    def mul(self, o: Any) -> Tensor:
        """Elementwise self * other, broadcasting and promoting dtypes like torch."""
        return self._binary(Op.MUL, o, name="mul")


    def floordiv(self, o: Any, reverse: bool = False) -> Tensor:
        """Elementwise floor division self // other, rounding toward minus infinity like Python and
        torch; an integer division by zero gives 0 (a lazy kernel cannot raise), except a literal `x
        // 0`, which raises ZeroDivisionError when the op is built."""
        a, b = self._broadcast_pair(o, "floordiv", reverse)
        if a.dtype.is_float:
            return _float_floordiv(a, b)
        if a.dtype is dt.bool_:
            a, b = a.cast(dt.default_int), b.cast(dt.default_int)
        if isinstance(o, (int, np.integer)) and not reverse and o == 0:
            raise ZeroDivisionError(f"floordiv: integer division by zero ({a.dtype.name} tensor of shape {a.shape})")
        # x/0 and INT_MIN/-1 are undefined in OpenCL C (x86 traps): divide by 1 there, then give
        # 0 for a zero divisor (numpy's result; a lazy kernel cannot raise)
        zero = b == 0
        tmin = int(np.iinfo(a.dtype.np).min)
        safe_b = (zero | ((a == tmin) & (b == -1))).where(Tensor(g.const(1, b.dtype)), b)
        q = Tensor(g.elementwise(Op.IDIV, a.node, safe_b.node))
        r = Tensor(g.elementwise(Op.MOD, a.node, safe_b.node))
        # C truncates toward zero; Python and torch floor
        fix = (r != 0) & ((r < 0) != (b < 0))
        return zero.where(Tensor(g.const(0, q.dtype)), q - fix.cast(q.dtype))

    def mod(self, o: Any, reverse: bool = False) -> Tensor:
        """Elementwise remainder with the sign of the divisor (Python's and torch's `%`); integer `x
        % 0` gives 0."""
        a, b = self._broadcast_pair(o, "mod", reverse)
        if a.dtype.is_float:
            # torch.remainder: fmod (exact, the sign of a) moved to the sign of b. a - (a // b) b
            # loses everything once a / b is large (-1e30 % 88.7 was inf)
            r = Tensor._from(g.elementwise(Op.MOD, a.node, b.node), a, b)
            return ((r != 0) & ((r < 0) != (b < 0))).where(r + b, r)
        if isinstance(o, (int, np.integer)) and not reverse and o == 0:
            raise ZeroDivisionError(f"mod: integer modulo by zero ({a.dtype.name} tensor of shape {a.shape})")
        r = a - a.floordiv(b) * b
        return (b == 0).where(Tensor(g.const(0, r.dtype)), r)  # x % 0 is 0, as in numpy



    def maximum(self, o: Any) -> Tensor:
        """Elementwise larger of self and other (NaN propagates), broadcasting like torch."""
        return self._binary(Op.MAX, o, name="maximum")

    def minimum(self, o: Any) -> Tensor:
        """Elementwise smaller of self and other (NaN propagates), broadcasting like torch."""
        a, b = self._broadcast_pair(o, "minimum")
        if a.dtype is dt.bool_:
            return a & b
        return a._order_reversed().maximum(b._order_reversed())._order_reversed()

    def _order_reversed(self) -> Tensor:
        """An order-reversing bijection onto the same dtype, its own inverse, that cannot overflow:
        min is built from max through it. -x for floats; ~x (= -x-1) for integers, where -x wraps
        at INT_MIN; logical not for bools."""
        if self.dtype.is_float:
            return -self
        return self.logical_not() if self.dtype is dt.bool_ else self ^ -1

    __add__ = add
    __sub__ = sub
    __mul__ = mul

    def __radd__(self, o: Any) -> Tensor: return self._binary(Op.ADD, o, reverse=True, name="add")
    def __rsub__(self, o: Any) -> Tensor: return self._binary(Op.SUB, o, reverse=True, name="sub")
    def __rmul__(self, o: Any) -> Tensor: return self._binary(Op.MUL, o, reverse=True, name="mul")
    def __truediv__(self, o: Any) -> Tensor: return self.div(o)
    def __rtruediv__(self, o: Any) -> Tensor: return self.div(o, reverse=True)
    def __floordiv__(self, o: Any) -> Tensor: return self.floordiv(o)
    def __rfloordiv__(self, o: Any) -> Tensor: return self.floordiv(o, reverse=True)
    def __mod__(self, o: Any) -> Tensor: return self.mod(o)
    def __rmod__(self, o: Any) -> Tensor: return self.mod(o, reverse=True)
    remainder = mod
    floor_divide = floordiv
    def __pow__(self, o: Any) -> Tensor: return self.pow(o)
    def __rpow__(self, o: Any) -> Tensor: return self.pow(o, reverse=True)
    def __matmul__(self, o: Any) -> Tensor: return self.matmul(o)
    def __rmatmul__(self, o: Any) -> Tensor: return self._coerce(o, "matmul").matmul(self)

    def __neg__(self) -> Tensor:
        """Elementwise -x (a TypeError for bools, like torch). Also `neg`, `negative`."""
        if self.dtype is dt.bool_:
            raise TypeError("neg: negation of a bool tensor is not supported, use logical_not() or ~")
        return Tensor._from(g.elementwise(Op.NEG, self.node), self)

    def __pos__(self) -> Tensor:
        return self

    neg = negative = __neg__

    # comparisons and logic (bool results, no gradient)
    def _cmp(self, op: Op, o: Any, reverse: bool = False, name: str = "") -> Tensor:
        a, b = self._broadcast_pair(o, name, reverse)
        return Tensor(g.elementwise(op, a.node, b.node, dtype=dt.bool_))

    def __lt__(self, o: Any) -> Tensor:
        """Elementwise self < other, a bool tensor (no gradient). Also `lt`."""
        return self._cmp(Op.CMPLT, o, name="lt")

    def __gt__(self, o: Any) -> Tensor:
        """Elementwise self > other, a bool tensor (no gradient). Also `gt`."""
        return self._cmp(Op.CMPLT, o, reverse=True, name="gt")

    def __le__(self, o: Any) -> Tensor:
        """Elementwise self <= other, a bool tensor (no gradient; False where either is NaN). Also `le`."""
        return self._cmp_or_equal(o, reverse=False, name="le")

    def __ge__(self, o: Any) -> Tensor:
        """Elementwise self >= other, a bool tensor (no gradient; False where either is NaN). Also `ge`."""
        return self._cmp_or_equal(o, reverse=True, name="ge")

    def _cmp_or_equal(self, o: Any, reverse: bool, name: str) -> Tensor:
        # a <= b as (a < b) | (a == b): not (b < a) would be true for NaN (torch: false)
        a, b = self._broadcast_pair(o, name, reverse)
        lt = g.elementwise(Op.CMPLT, a.node, b.node, dtype=dt.bool_)
        eq = g.elementwise(Op.CMPEQ, a.node, b.node, dtype=dt.bool_)
        return Tensor(g.elementwise(Op.OR, lt, eq, dtype=dt.bool_))

    def __eq__(self, o: Any) -> Tensor:
        """Elementwise self == other, a bool tensor (no gradient), like torch: use `(a ==
        b).all().item()` for one truth value. Also `eq`."""
        return self._cmp(Op.CMPEQ, o, name="eq")  # type: ignore[override]

    def __ne__(self, o: Any) -> Tensor:
        """Elementwise self != other, a bool tensor (no gradient). Also `ne`."""
        return self._cmp(Op.CMPEQ, o, name="ne").logical_not()  # type: ignore[override]
    lt, gt, le, ge, eq, ne = __lt__, __gt__, __le__, __ge__, __eq__, __ne__

    def logical_not(self) -> Tensor:
        """Elementwise logical not: True where self is zero (or False), as a bool tensor."""
        return Tensor(g.elementwise(Op.NOT, self.node, dtype=dt.bool_))

    def _bitwise(self, op: Op, o: Any, name: str, reverse: bool = False) -> Tensor:
        """& | ^ like torch: bitwise on integers (integer result), logical on bools (bool result)."""
        a, b = self._broadcast_pair(o, name, reverse)
        if a.dtype.is_float:
            raise TypeError(f"{name}: bitwise ops need bool or integer tensors, got {a.dtype.name} "
                            f"(shapes {a.shape} and {b.shape})")
        return Tensor(g.elementwise(op, a.node, b.node, dtype=a.dtype))

    def __and__(self, o: Any) -> Tensor:
        """Elementwise `&`: bitwise on integers, logical on bools, like torch (a TypeError for
        floats). Also `bitwise_and`."""
        return self._bitwise(Op.AND, o, "and")
    def __or__(self, o: Any) -> Tensor:
        """Elementwise `|`: bitwise on integers, logical on bools, like torch. Also `bitwise_or`."""
        return self._bitwise(Op.OR, o, "or")
    def __xor__(self, o: Any) -> Tensor:
        """Elementwise `^`: bitwise on integers, logical on bools, like torch. Also `bitwise_xor`."""
        return self._bitwise(Op.XOR, o, "xor")
    def __rand__(self, o: Any) -> Tensor: return self._bitwise(Op.AND, o, "and", True)
    def __ror__(self, o: Any) -> Tensor: return self._bitwise(Op.OR, o, "or", True)
    def __rxor__(self, o: Any) -> Tensor: return self._bitwise(Op.XOR, o, "xor", True)

    def __invert__(self) -> Tensor:
        """Elementwise `~`: bitwise not of integers, logical not of bools (a TypeError for floats).
        Also `bitwise_not`."""
        if self.dtype.is_float:
            raise TypeError(f"invert: ~ needs a bool or integer tensor, got {self.dtype.name}")
        return self.logical_not() if self.dtype is dt.bool_ else self ^ -1

    def _truth(self) -> Tensor:
        return self if self.dtype is dt.bool_ else self != 0

    def logical_and(self, o: Any) -> Tensor:
        """Elementwise logical and of the truth values (nonzero is True), as a bool tensor."""
        return self._truth() & self._coerce(o, "logical_and")._truth()
    def logical_or(self, o: Any) -> Tensor:
        """Elementwise logical or of the truth values (nonzero is True), as a bool tensor."""
        return self._truth() | self._coerce(o, "logical_or")._truth()
    def logical_xor(self, o: Any) -> Tensor:
        """Elementwise logical exclusive or of the truth values (nonzero is True), as a bool tensor."""
        return self._truth() ^ self._coerce(o, "logical_xor")._truth()
    bitwise_and, bitwise_or, bitwise_xor, bitwise_not = __and__, __or__, __xor__, __invert__

    def where(self, a: Any, b: Any) -> Tensor:
        """`self` is the condition: elementwise a if self else b (also Tensor.where(c, a, b))."""
        return _where(self, a, b)







































































    # --- gather / scatter / select (lazygrad/frontend/indexing.py) ---------------------------------------------








    def cat(self, *others: Tensor, dim: int = 0) -> Tensor:
        """Concatenate `self` and `others` along `dim` (see `lazygrad.cat`)."""
        return cat([self, *others], dim=dim)

    # --- linear algebra ---------------------------------------------------------------------------

    def dot(self, w: Any) -> Tensor:
        """The same as `matmul` (for 1-D tensors, the dot product)."""
        return self.matmul(w)





    # --- autodiff ---------------------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (`.grad = None`)."""
        self.grad = None

    def register_post_backward_hook(self, hook: Any) -> None:
        """Call `hook()` at the end of every `backward()` that accumulates into this leaf's
        `.grad`, after every leaf's `.grad` is set; a hook registered on several leaves runs
        once per backward (DistributedDataParallel averages the gradients across ranks here)."""
        self._post_backward = (*getattr(self, "_post_backward", ()), hook)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set `requires_grad` in place, like torch (only floating point tensors); returns self."""
        if flag and not self.dtype.is_float:
            raise TypeError(f"requires_grad_: only floating point tensors can require grad, got {self.dtype.name}")
        newly = flag and not self.requires_grad and self.is_leaf
        self.requires_grad = flag
        return self._own_leaf_node() if newly else self

    # --- neural-network functions (defined in lazygrad/nn/functional.py) --------------------------









# arithmetic of two bool tensors (None: refused, like torch)
_BOOL_ARITHMETIC: dict[Op, Op | None] = {Op.ADD: Op.OR, Op.MUL: Op.AND, Op.MAX: Op.OR, Op.SUB: None}

def _values_indices(x: Tensor, axis: Any, keepdim: bool, name: str) -> ValuesIndices:
    """torch's max(dim): the maxima along one dim and the index of the first. The values are
    amax's (the same graph) unless a gradient is wanted: then they are picked by the index, so
    the gradient goes to that one element like torch's, not split between ties like amax's."""
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{name}: dim must be one int for the (values, indices) pair, got {axis!r} "
                        f"(a{'max' if name == 'max' else 'min'} reduces over several dims)")
    ax = _norm_axis(axis, x.ndim, name)
    x._require_nonempty(ax, name)
    idx = x._first_max_index(ax, keepdim=True)  # int32 where it fits: the pick below counts in it
    if not (x.requires_grad and is_grad_enabled()) or x.ndim == 0:
        values = x.amax(ax, keepdim)
    else:
        n = x.shape[ax]
        hit = Tensor._positions(n).reshape((n,) + (1,) * (x.ndim - ax - 1)) == idx
        # -0.0 is the exact identity of +: the one picked element comes out as it is (-0.0 too)
        values = hit.where(x, -0.0).sum(ax, keepdim)
    idx = idx.cast(dt.index_dtype)
    return ValuesIndices(values, idx if keepdim or x.ndim == 0 else idx.squeeze(ax))


def _infinite_slope(x: Tensor, weight: Tensor) -> Tensor:
    """Zeros whose gradient with respect to x is g * weight * inf elementwise (weight detached;
    NaN where g * weight is 0): weight * sqrt(x - x.detach()) has the value weight * sqrt(0) = 0
    and sqrt's VJP makes the gradient g * weight / (2 sqrt(0)), IEEE's (g * weight) / 0. For a
    gradient that torch defines as infinite on a finite value."""
    return weight * (x - x.detach()).sqrt()


# the names `to(device)` accepts: lazygrad runs on one OpenCL device and calls it the CPU
_DEVICE_NAMES = frozenset({"cpu", "opencl"})


def _is_device(a: Any) -> bool:
    """A device argument of `to`: a device string (or "cpu:0"), or an object with torch.device's
    `type` (a string)."""
    if isinstance(a, str):
        return a.split(":")[0] in _DEVICE_NAMES or a not in dt.DTYPES
    return isinstance(getattr(a, "type", None), str) and not isinstance(a, (DType, type, np.dtype))


def _check_device_name(device: Any) -> None:
    name = device if isinstance(device, str) else device.type
    if name.split(":")[0] not in _DEVICE_NAMES:
        raise ValueError(f"to: lazygrad runs on one device ('cpu', the OpenCL device in use), not {device!r}")


def _rebuild_tensor(values: np.ndarray, dtype_name: str, requires_grad: bool) -> Tensor:
    """Unpickle a Tensor (see Tensor.__reduce__): module level, so pickle finds it by name."""
    return Tensor(values, dtype=dt.DTYPES[dtype_name], requires_grad=requires_grad)


def _py(value: Any, d: DType) -> Scalar:
    if d is dt.bool_:
        return bool(value)
    if d.is_int:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot represent {value} as {d.name}")
        return int(value)
    return float(value)


def _float_floordiv(a: Tensor, b: Tensor) -> Tensor:
    """torch.floor_divide of floats (Python's // too): the floor of the exact quotient, through
    fmod, so 1 // 0.1 is 9 (floor(1 / 0.1) rounds the quotient to 10 first). torch has no
    derivative for it; here it has none either (detached: zero gradient)."""
    a, b = a.detach(), b.detach()
    q = a / b
    r = Tensor(g.elementwise(Op.MOD, a.node, b.node))
    div = (a - r) / b
    div = ((r != 0) & ((b < 0) != (r < 0))).where(div - 1, div)
    f = div.floor()
    f = (div - f > 0.5).where(f + 1, f)
    signed_zero = ((q < 0) | (1 / q < 0)).where(-0.0, 0.0)  # copysign(0, q): 1 / -0.0 is -inf
    return (b == 0).where(q, (div != 0).where(f, signed_zero))


def _signed_zero(r: Tensor, x: Tensor) -> Tensor:
    """r, whose zeros take the sign of x (floor(-0.0) and round(-0.4) are -0.0, like torch).
    x is detached by the callers: x * 0 would pass 0 * g, NaN for an infinite g."""
    return (r == 0).where(x * 0.0, r)


def _or_nan(cond: Tensor, bound: Any) -> Tensor:
    """`cond`, or true where the bound (a Tensor or a Python number) is NaN."""
    if isinstance(bound, Tensor):
        return cond | (bound != bound) if bound.dtype.is_float else cond
    return cond | True if isinstance(bound, float) and math.isnan(bound) else cond


def _native_f64(npd: np.dtype) -> bool:
    return npd.kind == "f" and npd.itemsize == 8


def _device_has(d: DType) -> bool:
    return get_device().supports(d)


def _check_device_dtype(d: DType, op: str) -> None:
    if d.name in ("float16", "float64", "int64"):
        if not get_device().supports(d):
            raise TypeError(f"{op}: the OpenCL device {get_device().caps.name!r} does not support {d.name}")


def _where(cond: Any, a: Any, b: Any) -> Tensor:
    c = cond if isinstance(cond, Tensor) else Tensor(cond)
    if c.dtype is not dt.bool_:
        c = c != 0
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    ref = ta if ta is not None else tb
    if ref is None:
        d = dt.default_float if isinstance(a, float) or isinstance(b, float) else (
            dt.bool_ if isinstance(a, bool) and isinstance(b, bool) else dt.default_int)
        ta = Tensor(g.const(_py(a, d), d))
        tb = Tensor(g.const(_py(b, d), d))
    else:
        ta = ta if ta is not None else ref._coerce(a, "where")
        tb = tb if tb is not None else ref._coerce(b, "where")
    d = dt.result_type((ta.dtype, ta._weight()), (tb.dtype, tb._weight()))  # torch.where's rule
    shape = broadcast_shapes(c.shape, ta.shape, tb.shape, op="where")
    c, ta, tb = c._expand_to(shape), ta.cast(d)._expand_to(shape), tb.cast(d)._expand_to(shape)
    return Tensor._from(g.elementwise(Op.WHERE, c.node, ta.node, tb.node, dtype=d), ta, tb)


def _getitem(x: Tensor, idx: Any) -> Tensor:
    if not isinstance(idx, tuple):
        idx = (idx,)
    if any(isinstance(i, (Tensor, list, np.ndarray)) for i in idx):
        return x._advanced_index(idx)  # lazygrad.frontend.indexing
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    consumed = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"getitem: too many indices ({consumed}) for tensor of shape {x.shape}")
    if n_ell:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.ndim - consumed) + idx[k + 1:]
    else:
        idx = idx + (slice(None),) * (x.ndim - consumed)
    bounds, flips, steps = [], [], []
    squeeze_dims, new_dims = [], []
    dim = 0
    out_dim = 0
    for i in idx:
        if i is None:
            new_dims.append(out_dim)
            out_dim += 1
            continue
        s = x.shape[dim]
        if isinstance(i, (bool, np.bool_)):
            raise IndexError("getitem: bool indices are not supported")
        if isinstance(i, (int, np.integer)):
            j = int(i)
            if not -s <= j < s:
                raise IndexError(f"getitem: index {j} is out of bounds for dim {dim} with size {s} (shape {x.shape})")
            j %= s
            bounds.append((j, j + 1))
            steps.append(1)
            squeeze_dims.append(dim)
        elif isinstance(i, slice):
            if i.step == 0:
                raise ValueError("getitem: slice step cannot be zero")
            start, stop, step = i.indices(s)
            if step > 0:
                n = max(0, (stop - start + step - 1) // step)
                lo = start
                hi = start + (n - 1) * step + 1 if n else start
            else:
                n = max(0, (start - stop - step - 1) // (-step))
                hi = start + 1
                lo = start + (n - 1) * step if n else hi
                flips.append(dim)
            bounds.append((lo, hi) if n else (0, 0))
            steps.append(abs(step) if n > 1 else 1)  # one element: the step is moot (and may be huge)
            out_dim += 1
        else:
            raise IndexError(f"getitem: unsupported index {i!r} of type {type(i).__name__}")
        dim += 1
    y = x.shrink(tuple(bounds))
    if flips:
        y = y.flip(tuple(flips))
    if any(st != 1 for st in steps):
        # stride by padding each dim to a multiple of its step, splitting, and keeping index 0
        pads = []
        for s, st in zip(y.shape, steps):
            pads.append((0, (-s) % st if st > 1 else 0))
        y = y.pad(pads) if any(p[1] for p in pads) else y
        split = []
        for s, st in zip(y.shape, steps):
            split += [s // st, st] if st > 1 else [s, 1]
        y = y.reshape(split)
        y = y.shrink(tuple((0, split[k]) if k % 2 == 0 else (0, 1) for k in range(len(split))))
        y = y.reshape(tuple(split[k] for k in range(0, len(split), 2)))
    shape = [s for d, s in enumerate(y.shape) if d not in squeeze_dims]
    for d in new_dims:
        shape.insert(d, 1)
    return y.reshape(tuple(shape))


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along `dim`: each input is padded into place and the results added, so the
    whole concatenation is one kernel."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ref = tensors[0]
    ax = _norm_axis(dim, ref.ndim, "cat")
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != ax):
            raise ValueError(f"cat: shapes {[tuple(t.shape) for t in tensors]} differ outside dim {dim}")
    d = ref.dtype
    for t in tensors[1:]:
        d = dt.promote(d, t.dtype)
    total = sum(t.shape[ax] for t in tensors)
    out: Tensor | None = None
    start = 0
    # floats are padded with -0.0, the exact identity of +: x + -0.0 is x for every x, -0.0
    # included (a +0.0 pad turned a -0.0 element into +0.0)
    fill = -0.0 if d.is_float else 0
    for t in tensors:
        widths = [(0, 0)] * ref.ndim
        widths[ax] = (start, total - start - t.shape[ax])
        start += t.shape[ax]
        p = t.cast(d).pad(widths, value=fill)
        if out is None:
            out = p
        elif d is dt.bool_:
            out = out | p
        else:
            out = out + p
    assert out is not None
    return out


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim `dim` (like torch.stack): one fused kernel."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def companions_of(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The lazy tensors to realize along with `tensors` (see Tensor._companions); each is
    handed over once."""
    out: list[Tensor] = []
    for t in tensors:
        comp = getattr(t, "_companions", ())
        if comp:
            out.extend(c for c in comp if c.node.realized is None)
            t._companions = ()
    return out


def realize(*tensors: Tensor) -> None:
    """Realize several tensors together: one schedule, shared work computed once."""
    flat: list[Tensor] = []
    for t in tensors:
        if isinstance(t, (list, tuple)):
            flat.extend(t)
        else:
            flat.append(t)
    flat += companions_of(flat)
    _realize([t.node for t in flat])
    for t in flat:
        # a tensor no gradient will flow back through keeps only its buffer: dropping the
        # graph that made it lets training loops (param = param - lr * grad) run in constant
        # memory instead of chaining every step's graph to the next
        n = t.node
        if n.realized is not None and n.op is not Op.BUFFER and not (t.requires_grad and t._inputs):
            t.node = g.buffer_node(n.realized, n.shape, n.dtype)

