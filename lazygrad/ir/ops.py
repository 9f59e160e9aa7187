"""The primitive operations: the one table that says what every op is.

Each primitive has its arity, category, OpenCL C expression and numpy reference in one row.
Gradient rules live in autodiff/rules.py (`vjp_rules`), keyed by the same `Op`.
Adding an op means adding a row here and, if differentiable, a rule there.

Public names: Op, Primitive, PRIMITIVES, UNARY, BINARY, ELEMENTWISE, MOVEMENT, REDUCE, CORES, SORTS,
GATHERS, SCATTERS, ATTENTIONS, LSTMS, OWN_KERNEL,
REDUCE_IDENTITY, reduce_identity, CL_CONSTANTS, cl_constant.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass
from enum import Enum

import numpy as np

from lazygrad.dtypes import DTYPES, DType


class Op(Enum):
    # sources
    BUFFER = "buffer"      # a realized device buffer
    CONST = "const"        # a scalar literal (shape ()), broadcast with EXPAND
    RAND = "rand"          # counter-based uniform [0, 1) numbers, arg = seed
    # unary
    NEG = "neg"; EXP = "exp"; LOG = "log"; SQRT = "sqrt"; RECIP = "recip"
    SIN = "sin"; COS = "cos"; TANH = "tanh"; NOT = "not"
    ERF = "erf"; ERFC = "erfc"; ASIN = "asin"; ACOS = "acos"; ATAN = "atan"
    # binary
    ADD = "add"; SUB = "sub"; MUL = "mul"; DIV = "div"; IDIV = "idiv"; MOD = "mod"
    MAX = "max"; POW = "pow"; CMPLT = "cmplt"; CMPEQ = "cmpeq"; AND = "and"; OR = "or"
    XOR = "xor"; ATAN2 = "atan2"; SHL = "shl"; SHR = "shr"
    # ternary
    WHERE = "where"
    # dtype change
    CAST = "cast"
    BITCAST = "bitcast"    # the same bits read as another dtype of the same size (as_type)
    # reductions over axes (arg = axes, reduced dims keep size 1)
    SUM = "sum"; RMAX = "rmax"; RPROD = "rprod"
    # movement (views, never copies)
    RESHAPE = "reshape"; PERMUTE = "permute"; EXPAND = "expand"; PAD = "pad"
    SHRINK = "shrink"; FLIP = "flip"
    DETACH = "detach"      # identity view that stops gradients
    # special kernels
    MATMUL = "matmul"      # (..., M, K) @ (..., K, N), batch dims already broadcast
    CONV2D = "conv2d"      # direct convolution of x (N, C, H, W) by w (O, C/g, kh, kw), arg graph.ConvArg
    CONTIGUOUS = "contiguous"  # force a copy into a fresh buffer
    GATHER = "gather"      # x read at integer positions idx along one axis, arg graph.GatherArg
    SEGMENT_SUM = "segment_sum"  # g summed into the positions a sorted index names (a gather's gradient), arg graph.SegmentArg
    SORT = "sort"          # rows of the last axis sorted (values) or their argsort (indices), arg graph.SortArg
    ATTENTION = "attention"  # softmax(q k^T scale + mask) v or a part of its gradient, arg attention.AttentionArg
    LSTM_CELL = "lstm_cell"  # one LSTM step (xw, h, c, w_hh) -> (h', c', gate activations), ir/lstm.py

    # members are singletons compared by identity: hash them by identity too (Enum's own
    # __hash__ is Python code, and every node's intern key hashes its op)
    __hash__ = object.__hash__


@dataclass(frozen=True)
class Primitive:
    """One row of the op table. `cl` formats operands {0},{1},{2} and typed literals
    {one},{zero} and {name} for the constants of CL_CONSTANTS; `cl_int` overrides it for
    integer dtypes, `cl_bool` for bools (in vectors a true bool is the all-ones mask -1)."""

    op: Op
    category: str
    arity: int
    cl: str | None = None
    cl_int: str | None = None
    np: Callable[..., np.ndarray] | None = None
    flops: int = 1
    cl_bool: str | None = None
    wraps: bool = False
    view: Callable[[Any, Any], Any] | None = None  # movement: (ShapeTracker of the source, arg) -> its view


def _np_idiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # C semantics: truncate toward zero
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.abs(a) // np.where(b == 0, 1, np.abs(b))
    return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))


def _np_erf(a: np.ndarray) -> np.ndarray:
    # numpy has no erf: the math module's, element by element (the reference is for tests)
    return np.vectorize(math.erf, otypes=[a.dtype])(a) if a.size else a.copy()


def _np_erfc(a: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erfc, otypes=[a.dtype])(a) if a.size else a.copy()


def _np_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # C semantics: the sign of the dividend (fmod for floats)
    if np.result_type(a, b).kind == "f":
        with np.errstate(invalid="ignore"):
            return np.fmod(a, b)
    return (a - _np_idiv(a, b) * b).astype(np.result_type(a, b))


# Named constants an OpenCL expression of the table may use as {name}: one value for every
# dtype, or a value per float dtype; rendered as literals of the operand's type.
CL_CONSTANTS: dict[str, float | dict[str, float]] = {
    "half": 0.5, "sixth": 1 / 6, "twelfth": 1 / 12, "twentieth": 0.05,
    # below this the polynomials of SIN/COS are used (float64 vectors are not affected)
    "trig_small": {"float16": 2.0 ** -7, "float32": 2.0 ** -7, "float64": 0.0},
    # the smallest |x| whose tanh rounds to +-1 in the dtype
    "tanh_one": {"float16": 4.5, "float32": 9.010914, "float64": 19.1},
}


def cl_constant(name: str, dtype_name: str) -> float:
    v = CL_CONSTANTS[name]
    return v[dtype_name] if isinstance(v, dict) else v


_ROWS = [
    Primitive(Op.BUFFER, "source", 0),
    Primitive(Op.CONST, "source", 0),
    Primitive(Op.RAND, "source", 0),
    Primitive(Op.NEG, "unary", 1, "(-{0})", np=np.negative, wraps=True),
    # PoCL's scalar exp and tanh return garbage for a NaN the compiler can see (a literal, or a
    # reduction over an empty axis): their constant folding of exp(NAN) is undefined. The
    # guard folds to NaN there and costs a compare per element elsewhere.
    Primitive(Op.EXP, "unary", 1, "(isnan({0})?{0}:exp({0}))", np=np.exp, flops=8),
    Primitive(Op.LOG, "unary", 1, "log({0})", np=np.log, flops=8),
    Primitive(Op.SQRT, "unary", 1, "sqrt({0})", np=np.sqrt, flops=4),
    Primitive(Op.RECIP, "unary", 1, "({one}/{0})", np=np.reciprocal, flops=4),
    # PoCL's float vector sin/cos give garbage (about 0.008) in every lane with |x| < 2**-7 when
    # another lane of the vector takes the large-argument path (|x| >= ~1e6, inf): those lanes
    # use the Taylor polynomial instead, exact to the last bit there
    Primitive(Op.SIN, "unary", 1, "((fabs({0})<{trig_small})?({0}*({one}-{0}*{0}*{sixth}*({one}-{0}*{0}*{twentieth}))):"
              "sin({0}))", np=np.sin, flops=8),
    Primitive(Op.COS, "unary", 1, "((fabs({0})<{trig_small})?({one}-{0}*{0}*{half}*({one}-{0}*{0}*{twelfth})):"
              "cos({0}))", np=np.cos, flops=8),
    # PoCL's tanh never reaches 1.0f (0.99999994 up to inf): from where tanh rounds to +-1 it is
    # +-1 exactly, like torch and numpy; NaN guarded like exp
    Primitive(Op.TANH, "unary", 1, "(isnan({0})?{0}:((fabs({0})>={tanh_one})?copysign({one},{0}):tanh({0})))",
              np=np.tanh, flops=8),
    # OpenCL's erf and inverse trigonometry (not derived: a derived erf was a 1.5e-7 approximation,
    # too coarse for float64, and atan has no short exact form in exp/log/sqrt)
    Primitive(Op.ERF, "unary", 1, "erf({0})", np=_np_erf, flops=8),
    Primitive(Op.ERFC, "unary", 1, "erfc({0})", np=_np_erfc, flops=8),
    Primitive(Op.ASIN, "unary", 1, "asin({0})", np=np.arcsin, flops=8),
    Primitive(Op.ACOS, "unary", 1, "acos({0})", np=np.arccos, flops=8),
    Primitive(Op.ATAN, "unary", 1, "atan({0})", np=np.arctan, flops=8),
    Primitive(Op.NOT, "unary", 1, "({0}=={zero})", np=np.logical_not),
    Primitive(Op.ADD, "binary", 2, "({0}+{1})", np=np.add, wraps=True),
    Primitive(Op.SUB, "binary", 2, "({0}-{1})", np=np.subtract, wraps=True),
    Primitive(Op.MUL, "binary", 2, "({0}*{1})", np=np.multiply, wraps=True),
    Primitive(Op.DIV, "binary", 2, "({0}/{1})", np=np.divide, flops=4),
    Primitive(Op.IDIV, "binary", 2, "({0}/{1})", np=_np_idiv, flops=4),
    Primitive(Op.MOD, "binary", 2, "fmod({0},{1})", "({0}%{1})", np=_np_mod, flops=4),
    # NaN-propagating like np.maximum and torch.maximum (fmax alone returns the other operand)
    Primitive(Op.MAX, "binary", 2, "(((({0})>({1}))|(({0})!=({0})))?({0}):({1}))", "max({0},{1})",
              np=np.maximum),
    Primitive(Op.POW, "binary", 2, "pow({0},{1})", np=np.power, flops=16),
    # bools order as false < true; as vector masks true is -1, so not as integers
    Primitive(Op.CMPLT, "binary", 2, "({0}<{1})", np=np.less, cl_bool="((!{0})&{1})"),
    Primitive(Op.CMPEQ, "binary", 2, "({0}=={1})", np=np.equal),
    # bitwise on ints, logical on bools (a vector bool lane is 0 or all ones: both stay bools)
    Primitive(Op.AND, "binary", 2, "({0}&{1})", np=np.bitwise_and),
    Primitive(Op.OR, "binary", 2, "({0}|{1})", np=np.bitwise_or),
    Primitive(Op.XOR, "binary", 2, "({0}^{1})", np=np.bitwise_xor),
    Primitive(Op.ATAN2, "binary", 2, "atan2({0},{1})", np=np.arctan2, flops=8),
    # integers only; the Tensor layer keeps the count in [0, bits) (OpenCL masks it, torch gives
    # 0 or the sign beyond)
    Primitive(Op.SHL, "binary", 2, "({0}<<{1})", np=np.left_shift, wraps=True),
    Primitive(Op.SHR, "binary", 2, "({0}>>{1})", np=np.right_shift),
    Primitive(Op.WHERE, "ternary", 3, np=np.where),
    Primitive(Op.CAST, "cast", 1),
    Primitive(Op.BITCAST, "cast", 1),
    # reductions: np(x, axes) keeps the reduced dims (the node's shape)
    Primitive(Op.SUM, "reduce", 1, "({0}+{1})", np=lambda x, a: np.sum(x, axis=a, keepdims=True), wraps=True),
    Primitive(Op.RMAX, "reduce", 1, "(((({0})>({1}))|(({0})!=({0})))?({0}):({1}))", "max({0},{1})",
              np=lambda x, a: np.max(x, axis=a, keepdims=True)),
    Primitive(Op.RPROD, "reduce", 1, "({0}*{1})", np=lambda x, a: np.prod(x, axis=a, keepdims=True), wraps=True),
    # movement: np(x, arg) is the numpy reference, view(st, arg) the view it makes of its source
    # (what lowering composes; a pad's view also carries the mask its fill value guards)
    Primitive(Op.RESHAPE, "movement", 1, np=lambda x, a: x.reshape(a), view=lambda st, a: st.reshape(a)),
    Primitive(Op.PERMUTE, "movement", 1, np=lambda x, a: x.transpose(a), view=lambda st, a: st.permute(a)),
    Primitive(Op.EXPAND, "movement", 1, np=lambda x, a: np.broadcast_to(x, a), view=lambda st, a: st.expand(a)),
    Primitive(Op.PAD, "movement", 1, np=lambda x, a: np.pad(x, a[0], constant_values=a[1]),
              view=lambda st, a: st.pad(a[0])),
    Primitive(Op.SHRINK, "movement", 1, np=lambda x, a: x[tuple(slice(lo, hi) for lo, hi in a)],
              view=lambda st, a: st.shrink(a)),
    Primitive(Op.FLIP, "movement", 1, np=lambda x, a: np.flip(x, a), view=lambda st, a: st.flip(a)),
    Primitive(Op.DETACH, "movement", 1, np=lambda x, a: x, view=lambda st, a: st),
    Primitive(Op.MATMUL, "matmul", 2, flops=2),
    Primitive(Op.CONV2D, "conv", 2, flops=2),
    Primitive(Op.CONTIGUOUS, "copy", 1),
    Primitive(Op.SORT, "sort", 1, flops=2),
    Primitive(Op.GATHER, "gather", 2),
    Primitive(Op.SEGMENT_SUM, "scatter", 3, flops=1),
    Primitive(Op.ATTENTION, "attention", -1, flops=4),  # 3 to 8 sources (arity -1: ir/attention.py says)
    Primitive(Op.LSTM_CELL, "lstm", 4, flops=2),
]
PRIMITIVES: dict[Op, Primitive] = {p.op: p for p in _ROWS}
assert set(PRIMITIVES) == set(Op), "every Op needs a row in the primitive table"
assert all(p.np is not None and p.view is not None for p in _ROWS if p.category == "movement"), \
    "a movement op needs its numpy reference and its view"
assert all(p.np is not None and p.cl is not None for p in _ROWS if p.category == "reduce"), \
    "a reduction needs its numpy reference and its combine"


def ops_in(category: str) -> frozenset[Op]:
    return frozenset(p.op for p in _ROWS if p.category == category)


UNARY = ops_in("unary")
BINARY = ops_in("binary")
ELEMENTWISE = UNARY | BINARY | {Op.WHERE, Op.CAST, Op.BITCAST}
MOVEMENT = ops_in("movement")
REDUCE = ops_in("reduce")
SOURCES = ops_in("source")
# ops that are the core of a kernel of their own template, their elementwise consumers its epilogue
CORES = ops_in("matmul") | ops_in("conv")
# ops with a kernel of their own and no fused producers or consumers (templates/sort.cl.j2)
SORTS = ops_in("sort")
GATHERS = ops_in("gather")
SCATTERS = ops_in("scatter")
ATTENTIONS = ops_in("attention")
LSTMS = ops_in("lstm")
OWN_KERNEL = SORTS | GATHERS | SCATTERS | ATTENTIONS | LSTMS
COMPARISONS = frozenset({Op.CMPLT, Op.CMPEQ})


def _lowest(d: DType) -> float | int | bool:
    """The smallest value of dtype d: the identity of max."""
    if d.is_float:
        return float("-inf")
    return int(np.iinfo(d.np).min) if d.is_int else False


# The identity of each reduction in each dtype, the only copy: the accumulator's start in
# generated code, the padding of a split reduction's partial rows, a max pool's padding.
_IDENTITY_OF: dict[Op, Callable[[DType], float | int | bool]] = {
    Op.SUM: lambda d: d.np(0).item(),  # False, 0 or 0.0
    Op.RMAX: _lowest,
    Op.RPROD: lambda d: d.np(1).item(),  # True, 1 or 1.0
}
REDUCE_IDENTITY: dict[tuple[Op, DType], float | int | bool] = {
    (op, d): f(d) for op, f in _IDENTITY_OF.items() for d in DTYPES.values()}
assert {op for op, _ in REDUCE_IDENTITY} == REDUCE, "every reduction needs an identity per dtype"


def reduce_identity(op: Op, d: DType) -> float | int | bool:
    return REDUCE_IDENTITY[(op, d)]
