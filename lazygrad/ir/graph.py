"""The lazy DAG: immutable, hash-consed nodes.

A `Node` is (op, srcs, shape, dtype, arg). Building the same op on the same sources twice
gives the same Node object, so identical subgraphs are shared and computed once. Every node
remembers the user's source line that created it (`origin`) and the user-level op it belongs to
(`label`: `relu`, not the compare-and-select it is made of) so kernels can point back to both.
The only mutable slot is `realized`: the device buffer holding the node's value once some
realize() computed it (a memo, not part of the node's identity).

Public names: Node, make, const, buffer_node, toposort, terms_of, origin_of_caller, user_line,
and one builder per movement op (reshape, permute, expand, pad, shrink, flip);
matmul and conv2d (with its ConvArg, conv_output_size) build the two core ops, sort (SortArg) the
sort kernel's (merge_sort_keys the merge sort of long rows of int64 keys), segment_sum
(SegmentArg) the scatter-add kernel's. IndexCheck,
add_index_check and index_checks record lazy tensor indices for LAZYGRAD_CHECK_INDEX.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
import itertools
import os
import sys
import weakref
from typing import Any, NamedTuple

from lazygrad.dtypes import DType
from lazygrad.ir.ops import ELEMENTWISE, MOVEMENT, REDUCE, Op
from lazygrad.ir.view import Shape

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # lazygrad/, above ir/
_uids = itertools.count()


_origin_override: list[tuple[str, str]] = []

# Modules below the Tensor API: their frames never name the user-level op (the graph builders
# are called `reshape`, `elementwise`, ...; the engine and autodiff build nodes for the user's
# ops, not ops of their own). Every other lazygrad module is an API layer whose public function
# or method names are what the user called.
# below the API: the stage packages and the bottom modules (paths relative to the package);
# a frame there is the library at work, not the op the user called
_BELOW_API_PACKAGES = frozenset({"ir", "runtime", "autodiff", "scheduling", "codegen", "debug", "engine"})
_BELOW_API = frozenset({"dtypes", "config", "target", "templating", "counters", "version", "dump",
                        "distributed/ddp", "distributed/collectives"})  # distributed: buckets are the gradients' own ops
# the Python spelling of an operator -> the op's name (reflected forms too)
_DUNDER = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "div", "floordiv": "floordiv",
           "mod": "remainder", "pow": "pow", "matmul": "matmul", "neg": "neg", "pos": "pos",
           "abs": "abs", "invert": "not", "and": "and", "or": "or", "xor": "xor",
           "lshift": "lshift", "rshift": "rshift", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
           "eq": "eq", "ne": "ne", "getitem": "getitem", "setitem": "setitem", "init": "tensor"}
# API entry points that are not ops: the nodes they make belong to the op being differentiated
# or realized (backward's detach of each .grad, assign's copy)
_NOT_OPS = frozenset({"backward", "grad", "realize", "numpy", "item", "tolist", "schedule", "assign",
                      "zero_grad", "state_dict", "load_state_dict", "parameters", "to", "cpu"})
_STOP, _STEP, _NONE = "\0forward", "\0step", ""


def origin_of_caller() -> tuple[str, str]:
    """('file.py:123' of the innermost stack frame outside the lazygrad package, the user-level
    op that made the node): the op is the outermost public lazygrad API function on the way
    in (`softmax`, not the `exp` it calls), stopping at the first module `forward` or
    optimizer `step` (their class name when they build nodes directly: `adam`). Inside
    `with_origin`, the origin and op it set (autodiff: "grad of exp #12 @ model.py:12",
    "exp_grad")."""
    if _origin_override:
        return _origin_override[-1]
    f = sys._getframe(1)
    label = _NONE
    stopped = False
    while f is not None:
        code = f.f_code
        info = _code_info.get(id(code))
        if info is None or info[0] is not code:
            info = _code_info[id(code)] = (code, _is_internal(code.co_filename), _frame_label(code))
        if not info[1]:
            return f"{_basename(code.co_filename)}:{f.f_lineno}", label
        if not stopped:
            name = info[2]
            if name is _STOP or name is _STEP:
                stopped = True
                if not label or name is _STEP:  # an optimizer's update is one op: `adam`
                    me = f.f_locals.get("self")
                    label = type(me).__name__.lower() if me is not None else code.co_name
            elif name:
                label = name
        f = f.f_back  # type: ignore[assignment]
    return "?", label


# id(code) -> (code, inside lazygrad?, its label): one dict lookup per frame. Hashing a code
# object hashes its bytecode: an lru_cache on the code per frame made a Tensor op ~18% slower
# than the walk without labels (5,000 `y * c + i` steps, best of 7, machine shared), this ~8%.
_code_info: dict[int, tuple[Any, bool, str]] = {}


def user_line(origin: str) -> str:
    """The user's source line of an origin: 'model.py:12' of "grad of exp #7 @ model.py:12"."""
    return origin.rsplit(" @ ", 1)[-1]


def _frame_label(code: Any) -> str:
    """The op name a frame of `code` stands for ("" if none, _STOP for forward/step)."""
    if _below_api(code.co_filename):
        return _NONE
    name = code.co_name
    if name.startswith("_method_"):  # a Tensor method an op family installs (frontend/__init__)
        name = name[len("_method_"):]
    if name == "forward":
        return _STOP
    if name == "step":
        return _STEP
    if name.startswith("__") and name.endswith("__"):
        bare = name[2:-2]
        return _DUNDER.get(bare[1:] if bare[1:] in _DUNDER and bare.startswith("r") else bare, _NONE)
    if name.startswith("_") or name.startswith("<") or name in _NOT_OPS:
        return _NONE
    return name


@functools.lru_cache(maxsize=4096)
def _below_api(filename: str) -> bool:
    path = os.path.abspath(filename)
    if not path.startswith(_PKG_DIR + os.sep):
        return False
    rel = os.path.splitext(os.path.relpath(path, _PKG_DIR))[0].replace(os.sep, "/")
    return rel.split("/", 1)[0] in _BELOW_API_PACKAGES or rel in _BELOW_API


@functools.lru_cache(maxsize=4096)
def _is_internal(filename: str) -> bool:
    return os.path.dirname(os.path.abspath(filename)).startswith(_PKG_DIR)


@functools.lru_cache(maxsize=4096)
def _basename(filename: str) -> str:
    return os.path.basename(filename)


class with_origin:
    """Context manager: nodes made inside get `origin` and the user-level op `label`
    (autodiff labels gradient nodes)."""

    def __init__(self, origin: str, label: str = "") -> None:
        self.origin = origin
        self.label = label

    def __enter__(self) -> None:
        _origin_override.append((self.origin, self.label))

    def __exit__(self, *exc: object) -> None:
        _origin_override.pop()


class Node:
    """One operation in the lazy graph. Create with `make`, never directly."""

    __slots__ = ("op", "srcs", "shape", "dtype", "arg", "origin", "label", "uid", "realized", "__weakref__")

    op: Op
    srcs: tuple[Node, ...]
    shape: Shape
    dtype: DType
    arg: Any
    origin: str
    label: str     # the user-level op that made it (`relu`, `softmax`, `exp_grad`); "" if none
    uid: int
    realized: Any  # runtime.Buffer once computed

    def __repr__(self) -> str:
        arg = f" {self.arg}" if self.arg is not None and self.op is not Op.BUFFER else ""
        return f"<{self.op.name}{arg} {self.shape} {self.dtype.name} #{self.uid}>"

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


# identical (op, srcs, shape, dtype, arg) → the same Node, for as long as it is alive
_intern: weakref.WeakValueDictionary[tuple, Node] = weakref.WeakValueDictionary()


def _arg_key(arg: Any) -> Any:
    # 1, 1.0, True and -0.0/0.0 hash alike but are different constants
    if isinstance(arg, (float, int, bool)):
        return (type(arg), repr(arg))
    return arg


def make(op: Op, srcs: tuple[Node, ...], shape: Shape, dtype: DType, arg: Any = None,
         origin: str | None = None, label: str = "") -> Node:
    """The node for op(srcs) — an existing one if this exact node is alive already."""
    key = (op, tuple(s.uid for s in srcs), shape, dtype, _arg_key(arg))
    if op not in (Op.BUFFER, Op.RAND):
        found = _intern.get(key)
        if found is not None:
            return found
    n = Node.__new__(Node)
    n.op, n.srcs, n.shape, n.dtype, n.arg = op, srcs, tuple(shape), dtype, arg
    if origin is not None:
        n.origin, n.label = origin, label
    else:
        n.origin, n.label = origin_of_caller()
    n.uid = next(_uids)
    n.realized = None
    if op not in (Op.BUFFER, Op.RAND):
        _intern[key] = n
    return n


def buffer_node(buf: Any, shape: Shape, dtype: DType) -> Node:
    n = make(Op.BUFFER, (), shape, dtype, None)
    n.realized = buf
    return n


class Iota(NamedTuple):
    """The arg of a BUFFER node holding 0, 1, ..., n-1 that nothing has computed yet: the
    engine fills it when it first realizes a graph reading it, so a rule that needs the
    positions along an axis (the one-hot of a sort's or gather's gradient) builds a graph
    without touching the device."""

    n: int


@functools.lru_cache(maxsize=64)
def iota(n: int, dtype: DType) -> Node:
    """0, 1, ..., n-1 as a (n,) BUFFER node of `dtype`, filled at its first realize (one per
    size and dtype, like the front end's arange buffers)."""
    return make(Op.BUFFER, (), (n,), dtype, Iota(n))


def const(value: float | int | bool, dtype: DType, shape: Shape = ()) -> Node:
    n = make(Op.CONST, (), (), dtype, value)
    return expand(reshape(n, (1,) * len(shape)), shape) if shape else n


def elementwise(op: Op, *srcs: Node, dtype: DType | None = None, arg: Any = None) -> Node:
    assert op in ELEMENTWISE
    shape = srcs[0].shape
    assert all(s.shape == shape for s in srcs), f"{op}: shapes {[s.shape for s in srcs]}"
    return make(op, tuple(srcs), shape, dtype or srcs[-1].dtype, arg)


def reduce(op: Op, src: Node, axes: tuple[int, ...]) -> Node:
    assert op in REDUCE
    axes = tuple(sorted(set(axes)))
    if not axes:
        return src
    shape = tuple(1 if i in axes else s for i, s in enumerate(src.shape))
    return make(op, (src,), shape, src.dtype, axes)


# --- movement builders: each returns src itself when the op does nothing ------------------
def reshape(src: Node, shape: Shape) -> Node:
    shape = tuple(int(s) for s in shape)
    if shape == src.shape:
        return src
    if src.op is Op.RESHAPE:  # reshape of reshape is one reshape
        src = src.srcs[0]
        if shape == src.shape:
            return src
    return make(Op.RESHAPE, (src,), shape, src.dtype, shape)


def permute(src: Node, order: tuple[int, ...]) -> Node:
    if tuple(order) == tuple(range(len(order))):
        return src
    return make(Op.PERMUTE, (src,), tuple(src.shape[i] for i in order), src.dtype, tuple(order))


def expand(src: Node, shape: Shape) -> Node:
    if tuple(shape) == src.shape:
        return src
    return make(Op.EXPAND, (src,), tuple(shape), src.dtype, tuple(shape))


def pad(src: Node, widths: tuple[tuple[int, int], ...], value: float = 0.0) -> Node:
    if all(b == 0 and a == 0 for b, a in widths):
        return src
    shape = tuple(s + b + a for s, (b, a) in zip(src.shape, widths))
    return make(Op.PAD, (src,), shape, src.dtype, (tuple(widths), value))


def shrink(src: Node, bounds: tuple[tuple[int, int], ...]) -> Node:
    if all(lo == 0 and hi == s for (lo, hi), s in zip(bounds, src.shape)):
        return src
    return make(Op.SHRINK, (src,), tuple(hi - lo for lo, hi in bounds), src.dtype, tuple(bounds))


def flip(src: Node, axes: tuple[int, ...]) -> Node:
    axes = tuple(a for a in sorted(set(axes)) if src.shape[a] > 1)
    if not axes:
        return src
    return make(Op.FLIP, (src,), src.shape, src.dtype, axes)


def toposort(roots: list[Node] | tuple[Node, ...], stop_at_realized: bool = True,
             stop: Callable[[Node], bool] | None = None) -> list[Node]:
    """Nodes reachable from `roots` in dependency order (sources first). Iterative. The walk
    does not look below realized nodes (unless `stop_at_realized` is False) nor below nodes
    for which `stop` is true; those nodes themselves are included."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
            continue
        if n.uid in seen:
            continue
        seen.add(n.uid)
        stack.append((n, True))
        if (stop_at_realized and n.realized is not None) or (stop is not None and stop(n)):
            continue
        stack.extend((s, False) for s in reversed(n.srcs) if s.uid not in seen)
    return order


def terms_of(n: Node, op: Op) -> list[Node]:
    """The operands of a lazy tree of the associative `op` rooted at n (n itself if it is not
    one): `a & b & c` -> [a, b, c]. Iterative; a realized node is a term."""
    terms, stack = [], [n]
    while stack:
        x = stack.pop()
        if x.op is op and x.realized is None:
            stack.extend(x.srcs)
        else:
            terms.append(x)
    return terms


def is_movement(n: Node) -> bool:
    return n.op in MOVEMENT


class IndexCheck(NamedTuple):
    """A lazy integer index whose values are only known once computed: with
    LAZYGRAD_CHECK_INDEX=1 the engine realizes `index` first and raises IndexError if a value is
    outside [-size, size)."""

    index: Node
    size: int
    op: str        # the op that indexes, for the message ("getitem")
    where: str     # e.g. "dim 0 of shape (2, 3)"


# node read through a lazy index -> the check of that index (weak: dies with the graph)
_index_checks: weakref.WeakKeyDictionary[Node, IndexCheck] = weakref.WeakKeyDictionary()


def add_index_check(node: Node, check: IndexCheck) -> None:
    _index_checks[node] = check


def index_checks(nodes: list[Node]) -> list[IndexCheck]:
    """The pending index checks of `nodes` (typically a toposort of what is being realized)."""
    if not _index_checks:
        return []
    return [c for c in (_index_checks.get(n) for n in nodes) if c is not None]


def detach(src: Node) -> Node:
    return make(Op.DETACH, (src,), src.shape, src.dtype, None)


def matmul(a: Node, b: Node) -> Node:
    """(..., M, K) @ (..., K, N) with equal batch dims."""
    assert a.shape[:-2] == b.shape[:-2] and a.shape[-1] == b.shape[-2], (a.shape, b.shape)
    return make(Op.MATMUL, (a, b), a.shape[:-1] + (b.shape[-1],), a.dtype)


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """torch's output length of a window sweep (floor mode)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


class ConvArg(NamedTuple):
    """The geometry of a CONV2D node besides its operands' shapes: (h, w) pairs and groups."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def out_size(self, hw: tuple[int, int], khw: tuple[int, int]) -> tuple[int, int]:
        """torch's output height and width (floor mode)."""
        return tuple(conv_output_size(*a)  # type: ignore[return-value]
                     for a in zip(hw, khw, self.stride, self.padding, self.dilation))


class SortArg(NamedTuple):
    """A SORT node's order (descending or not; always stable, NaN the largest value, like
    torch) and what it yields: the sorted values or the indices that sort the row; or one
    merge level (`run`)."""

    descending: bool
    indices: bool
    # > 0: not a sort but one merge level of a merge sort: the rows hold sorted runs of `run`
    # unique int64 keys, merged pairwise into runs of 2 * run (frontend.sorting builds these)
    run: int = 0


def sort(x: Node, arg: SortArg, index_dtype: DType) -> Node:
    """The rows of x's last axis sorted (arg.indices: the argsort, of `index_dtype`)."""
    return make(Op.SORT, (x,), x.shape, index_dtype if arg.indices else x.dtype, arg)


class GatherArg(NamedTuple):
    """A GATHER node reads x along `axis`: out[c] = x[c with c[axis] := idx[c]], x and idx
    broadcast over their size-1 dims (x's other dims may be longer than the output's: torch);
    a negative index counts from the end, one out of range reads 0. `squeeze`: the output
    drops the (size-1) gathered axis."""

    axis: int
    squeeze: bool = False

    def full_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape with the gathered axis (size 1 when squeezed)."""
        return shape[:self.axis] + (1,) + shape[self.axis:] if self.squeeze else shape


def gather(x: Node, idx: Node, axis: int, shape: tuple[int, ...], squeeze: bool = False) -> Node:
    """x read along `axis` at the integer positions idx, of shape `shape` (without the axis if
    `squeeze`, which needs its size to be 1)."""
    assert len(x.shape) == len(idx.shape) == len(shape), (x.shape, idx.shape, shape)
    assert all(i in (1, o) for i, o in zip(idx.shape, shape)), (idx.shape, shape)
    assert all(k == axis or a == 1 or a >= o for k, (a, o) in enumerate(zip(x.shape, shape))), (x.shape, shape)
    assert not squeeze or shape[axis] == 1, shape
    out = shape[:axis] + shape[axis + 1:] if squeeze else shape
    return make(Op.GATHER, (x, idx), tuple(out), x.dtype, GatherArg(axis, squeeze))


class SegmentArg(NamedTuple):
    """A SEGMENT_SUM node sums g along `axis` into `size` positions: out[.., p, ..] is the sum of
    g[.., j, ..] over the j whose index is p, the j in increasing order. Its second source is
    the index sorted with the positions: int64 keys `index << 32 | j`, ascending; its third the
    (J,) index itself in position order (`size` where out of range), which the kernel does not
    read: the node's own gradient is the gather at it."""

    axis: int
    size: int


def segment_sum(g: Node, keys: Node, idx: Node, axis: int, size: int) -> Node:
    """g (.., J, ..) summed into (.., size, ..) by the sorted (J,) keys of the (J,) idx (see SegmentArg)."""
    assert len(keys.shape) == 1 and keys.shape[0] == g.shape[axis] and idx.shape == keys.shape, \
        (g.shape, keys.shape, idx.shape, axis)
    shape = g.shape[:axis] + (size,) + g.shape[axis + 1:]
    return make(Op.SEGMENT_SUM, (g, keys, idx), shape, g.dtype, SegmentArg(axis, size))


# Rows of keys longer than MERGE_FROM are merge sorted by merge_sort_keys: blocks of MERGE_BLOCK
# rank-counted, then one merge level (a SORT node with `run`) per doubling. Up to MERGE_FROM, one
# rank-counting sort: n compares per element (4M per row at 2,048), fewer launches.
MERGE_FROM = 2048
MERGE_BLOCK = 256
_INT64_MAX = 2**63 - 1


def merge_sort_keys(keys: Node) -> Node:
    """Unique int64 keys sorted along the last axis, O(n log n) (one SORT kernel on short rows)."""
    n, lead = keys.shape[-1], keys.shape[:-1]
    if n <= MERGE_FROM:
        return sort(keys, SortArg(False, False), keys.dtype)
    m = -(-n // MERGE_BLOCK)
    k = pad(keys, ((0, 0),) * len(lead) + ((0, m * MERGE_BLOCK - n),), _INT64_MAX)
    k = reshape(sort(reshape(k, lead + (m, MERGE_BLOCK)), SortArg(False, False), keys.dtype), lead + (m * MERGE_BLOCK,))
    run = MERGE_BLOCK
    while run < m * MERGE_BLOCK:
        k = sort(k, SortArg(False, False, run), keys.dtype)
        run *= 2
    return shrink(k, tuple((0, s) for s in lead) + ((0, n),))


def conv2d(x: Node, w: Node, arg: ConvArg) -> Node:
    """x (N, C, H, W) convolved with w (O, C/groups, kh, kw): (N, O, OH, OW)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    assert cg * arg.groups == c and o % arg.groups == 0 and x.dtype == w.dtype, (x.shape, w.shape, arg)
    oh, ow = arg.out_size((h, wd), (kh, kw))
    return make(Op.CONV2D, (x, w), (n, o, oh, ow), x.dtype, arg)
