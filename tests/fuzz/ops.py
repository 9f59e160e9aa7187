"""The fuzzer's op table: one row per op, each with its lazygrad expression, its numpy reference,
its torch reference, its dtype rules and its domain (which operands it takes, which parameters
it draws). Adding an op to the fuzzer means adding a row here.

Templates are Python expressions: operands are `{x}`, `{y}`, `{z}`, parameters `{name}`. A
template is rendered with the parameters as literals, so the line the fuzzer runs is the line
its reproducer prints. The numpy template sees `np`, `R` (refs.R), `nan`, `inf`; the torch
template `torch`, `F`, `TR`, `np`, `nan`, `inf`; the lazygrad template `lg`, `Tensor`.

A row's `make(ctx, x)` picks the operands (x itself, existing values, or new input leaves) and
the parameters, or returns None when the op does not apply to x.

Public names: Row, ROWS, TABLE, Key, Raw.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .refs import acc_dtype, float_of, promote, scalar_dtype, weighted_promote
from .values import FLOATS, INTS, random_shape, special_scalar

ALL = FLOATS + INTS + ("bool",)
NUM = FLOATS + INTS


class Raw(str):
    """A parameter rendered verbatim (a dtype name, a piece of an index expression)."""


class Key(tuple):
    """A basic index (ints, slices, None, ...) rendered the way one writes it: `1::-1, None, 0`."""

    def render(self) -> str:
        parts = []
        for k in self:
            if isinstance(k, slice):
                s = "" if k.start is None else str(k.start)
                s += ":" + ("" if k.stop is None else str(k.stop))
                if k.step is not None:
                    s += ":" + str(k.step)
                parts.append(s)
            elif k is Ellipsis:
                parts.append("...")
            else:
                parts.append(repr(k))
        return ", ".join(parts) + ("," if len(parts) == 1 else "") if parts else "()"


def lit(v: Any) -> str:
    """A parameter as Python source (`nan`, `inf` are names the evaluators define)."""
    if isinstance(v, Key):
        return v.render()
    if isinstance(v, str):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (tuple, list)):
        inner = ", ".join(lit(e) for e in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


# --- dtype rules: operand conversion before the references, and the result dtype --------------------
Conv = Callable[[list[str], dict], list[str]]


def keep(ds: list[str], p: dict) -> list[str]:
    return list(ds)


def to_float(ds: list[str], p: dict) -> list[str]:
    return [float_of(d) for d in ds]


def to_common(ds: list[str], p: dict) -> list[str]:
    # a 0-d operand weighs less than one with dims (torch.result_type): `zero_d` from the make
    return [weighted_promote(ds, p.get("zero_d"))] * len(ds)


def to_common_float(ds: list[str], p: dict) -> list[str]:
    return [float_of(weighted_promote(ds, p.get("zero_d")))] * len(ds)


def to_scalar(ds: list[str], p: dict) -> list[str]:
    return [scalar_dtype(ds[0], p["c"])]


def to_scalar_float(ds: list[str], p: dict) -> list[str]:
    return [float_of(scalar_dtype(ds[0], p["c"]))]


def to_where(ds: list[str], p: dict) -> list[str]:
    return [ds[0]] + [weighted_promote(ds[1:], p.get("zero_d"))] * 2


SAME = lambda ds, p: ds[0]  # noqa: E731
BOOL = lambda ds, p: "bool"  # noqa: E731
ANY_ALL = lambda ds, p: "uint8" if ds[0] == "uint8" else "bool"  # noqa: E731  (torch's uint8 rule)
INT64 = lambda ds, p: "int64"  # noqa: E731  (argmax: indices are int64, like torch's)
ACC = lambda ds, p: acc_dtype(ds[0])  # noqa: E731
PARAM = lambda ds, p: str(p["dtype"])  # noqa: E731
WHERE = lambda ds, p: ds[1]  # noqa: E731


@dataclass(frozen=True)
class Row:
    name: str
    lg: str
    np: str
    torch: str
    make: Callable[..., Any]
    out: Callable[[list[str], dict], str] = SAME
    conv: Conv = keep
    x: tuple[str, ...] = ALL          # dtypes operand x may have
    exact: bool = False               # no rounding of its own (movement, selection, integer ops)
    mag: str | None = None            # numpy template of the magnitude its rounding error scales with
    weight: float = 1.0


# --- make: operands and parameters ---------------------------------------------------------------------
def unary(ctx, x):
    return [x], {}


def _bcast_shape(ctx, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with `shape`: a suffix of it, some dims set to 1, maybe longer."""
    rng = ctx.rng
    k = int(rng.integers(0, len(shape) + 1))
    out = [1 if rng.random() < 0.3 else s for s in shape[len(shape) - k:]]
    if len(shape) < 4 and rng.random() < 0.15:
        out = [int(rng.choice([1, 2, 3]))] + ([1] * (len(shape) - k)) + out
    return tuple(out)


def other(dtypes: tuple[str, ...] = ALL, same_shape: bool = False):
    """A second tensor operand: an existing value that broadcasts with x, or a new leaf."""
    def make(ctx, x):
        def fits(v):
            if v.dtype not in dtypes:
                return False
            if same_shape:
                return v.shape == x.shape
            return _broadcasts(v.shape, x.shape)
        y = ctx.pick(fits) if ctx.rng.random() < 0.5 else None
        if y is None:
            d = ctx.dtype(dtypes)
            y = ctx.leaf(x.shape if same_shape else _bcast_shape(ctx, x.shape), d)
        ops = [x, y] if ctx.rng.random() < 0.8 else [y, x]
        return ops, _zero_d(ops)
    return make


def _zero_d(operands) -> dict:
    """The operands' 0-d flags, for the result dtype (to_common, to_where), when they differ."""
    flags = tuple(len(v.shape) == 0 for v in operands)
    return {"zero_d": flags} if any(flags) and not all(flags) else {}


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    for s, t in zip(reversed(a), reversed(b)):
        if s != t and s != 1 and t != 1:
            return False
    return True


def scalar(finite_only: bool = False, nonzero_int: bool = False):
    def make(ctx, x):
        rng = ctx.rng
        d = x.dtype
        if d == "bool" and rng.random() < 0.5:
            d = "int32"
        elif d in INTS and rng.random() < 0.2:
            d = "float32"  # an int tensor with a float scalar: float32 (torch)
        c = special_scalar(rng, d, finite=finite_only or ctx.grad)
        if d == "bool":
            c = bool(c)
        if d in INTS and d != x.dtype:
            c = int(np.clip(c, -2**31, 2**31 - 1))
        if nonzero_int and isinstance(c, int) and c == 0 and not ctx.want_error():
            c = 3
        return [x], {"c": c}
    return make


def where_make(ctx, x):
    c = ctx.pick(lambda v: v.dtype == "bool" and _broadcasts(v.shape, x.shape))
    if c is None:
        c = ctx.leaf(_bcast_shape(ctx, x.shape), "bool")
    both = tuple(np.broadcast_shapes(c.shape, x.shape))
    y = ctx.pick(lambda v: v is not x and _broadcasts(v.shape, both) and v.dtype != "bool") \
        if ctx.rng.random() < 0.5 else None
    if y is None:
        y = ctx.leaf(_bcast_shape(ctx, both), x.dtype if x.dtype != "bool" else "float32")
    ops = [c, x, y] if ctx.rng.random() < 0.5 else [c, y, x]
    return ops, _zero_d(ops[1:])


def axis_params(ctx, x, allow_none=True, allow_tuple=True, keepdim=True):
    rng = ctx.rng
    nd = len(x.shape)
    r = rng.random()
    if nd == 0 or (allow_none and r < 0.25):
        axis = None if allow_none else (0 if nd else None)
    elif allow_tuple and nd > 1 and r < 0.5:
        k = int(rng.integers(1, nd + 1))
        axis = tuple(int(a) - (nd if rng.random() < 0.3 else 0) for a in rng.choice(nd, k, replace=False))
    else:
        axis = int(rng.integers(-nd, nd))
    p = {"axis": axis}
    if keepdim:
        p["keepdim"] = bool(rng.random() < 0.5)
    return p


def reduce(allow_tuple=True):
    def make(ctx, x):
        return [x], axis_params(ctx, x, allow_tuple=allow_tuple)
    return make


def prod_make(ctx, x):
    if not x.ref.size:
        return None
    # a product through a subnormal factor keeps only its few digits, and how many depends on
    # the multiplication order (docs/semantics.md, "Precision through subnormals"): the gradient
    # out / x was 7% off at seed 16180134 (torch float32 0.2%); subnormal factors stay out
    a = np.abs(x.ref)
    if np.any((a < np.finfo(np.float32).tiny) & (a > 0)):
        return None
    return [x], axis_params(ctx, x)


def argmax_make(ctx, x):
    return [x], axis_params(ctx, x, allow_tuple=False)


def axis_make(ctx, x):
    if not x.shape:
        return None
    return [x], {"axis": int(ctx.rng.integers(-len(x.shape), len(x.shape)))}


def var_make(ctx, x):
    p = axis_params(ctx, x)
    p["correction"] = int(ctx.rng.integers(0, 2))
    return [x], p


def clip_make(ctx, x):
    rng = ctx.rng
    d = x.dtype
    lo = special_scalar(rng, d, finite=ctx.grad) if rng.random() < 0.8 else None
    hi = special_scalar(rng, d, finite=ctx.grad) if rng.random() < 0.8 or lo is None else None
    if d in FLOATS:
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    return [x], {"lo": lo, "hi": hi}


def slope_make(ctx, x):
    return [x], {"slope": float(ctx.rng.choice([0.01, 0.2, -0.5, 2.0]))}


def cast_make(ctx, x):
    choices = [d for d in ALL if d != x.dtype]
    return [x], {"src": Raw(x.dtype), "dtype": Raw(str(ctx.rng.choice(choices)))}


def pow_make(ctx, x):
    ops, p = other(FLOATS)(ctx, x)
    if ctx.grad and ops[0] is not x:
        return None
    return ops, p


def pow_scalar_make(ctx, x):
    c = float(ctx.rng.choice([2.0, 0.5, -1.0, 1.0, 3.0, 0.0, -2.0, 1.5] + ([] if ctx.grad else [np.nan, np.inf])))
    return [x], {"c": c}


# movement
def reshape_make(ctx, x):
    rng = ctx.rng
    n = int(np.prod(x.shape))
    dims: list[int] = []
    rest = n
    for _ in range(int(rng.integers(0, 4))):
        divs = [d for d in range(1, rest + 1) if rest % d == 0] if rest else [0, 1, 2]
        d = int(rng.choice(divs))
        dims.append(d)
        if d:
            rest //= d
    if n and rest != 1 or not dims:
        dims.append(rest if n else 1)
    if n == 0 and 0 not in dims:
        dims.append(0)
    shape = tuple(dims)
    if n and rng.random() < 0.3:
        i = int(rng.integers(len(shape)))
        shape = shape[:i] + (-1,) + shape[i + 1:]
    return [x], {"shape": shape}


def permute_make(ctx, x):
    if len(x.shape) < 2:
        return None
    return [x], {"order": tuple(int(i) for i in ctx.rng.permutation(len(x.shape)))}


def transpose_make(ctx, x):
    nd = len(x.shape)
    if nd < 2:
        return None
    a, b = (int(v) for v in ctx.rng.integers(-nd, nd, 2))
    return [x], {"d0": a, "d1": b}


def expand_make(ctx, x):
    rng = ctx.rng
    shape = [int(rng.choice([2, 3, 5])) if s == 1 and rng.random() < 0.7 else (-1 if rng.random() < 0.3 else s)
             for s in x.shape]
    if len(shape) < 4 and rng.random() < 0.3:
        shape = [int(rng.choice([1, 2, 3]))] + shape
    if ctx.want_error() and shape:
        shape[int(rng.integers(len(shape)))] = -2  # torch raises: sizes below -1 are invalid
    if int(np.prod([abs(s) for s in shape])) > 400:
        return None
    return [x], {"shape": tuple(shape)}


def pad_make(ctx, x):
    if not x.shape:
        return None
    rng = ctx.rng
    widths = []
    for s in x.shape:
        b, a = (int(v) for v in rng.integers(-1, 3, 2))
        # negative widths crop the data before padding (lazygrad's numpy-style widths): at most
        # the whole dim (torch crops the padded tensor instead; the two agree within that)
        if max(0, -b) + max(0, -a) > s:
            b, a = max(b, 0), max(a, 0)
        widths.append((b, a))
    v = special_scalar(rng, x.dtype, finite=ctx.grad) if rng.random() < 0.6 else (False if x.dtype == "bool" else 0)
    if x.dtype in FLOATS:
        v = float(v)
    return [x], {"widths": tuple(widths), "value": v}


def getitem_make(ctx, x):
    rng = ctx.rng
    key: list[Any] = []
    for s in x.shape:
        r = rng.random()
        if r < 0.2 and s > 0:
            key.append(int(rng.integers(-s, s)))
        elif r < 0.3:
            key.append(slice(None))
        else:
            step = int(rng.choice([1, 1, 2, 3, -1, -1, -2, None]) or 1) if rng.random() < 0.9 else None
            lo = int(rng.integers(-s - 1, s + 2)) if rng.random() < 0.6 else None
            hi = int(rng.integers(-s - 1, s + 2)) if rng.random() < 0.6 else None
            key.append(slice(lo, hi, step))
        if rng.random() < 0.1:
            key.append(None)
    if key and rng.random() < 0.2:
        k = int(rng.integers(len(key) + 1))
        key = key[:k] + [Ellipsis] + key[k + int(rng.integers(0, 2)):]
    if not key:
        key = [None] if rng.random() < 0.5 else [Ellipsis]
    return [x], {"key": Key(key)}


def flip_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    k = int(ctx.rng.integers(1, nd + 1))
    dims = [int(d) for d in ctx.rng.choice(nd, k, replace=False)]
    if ctx.want_error():
        dims.append(dims[0] - nd)  # the same dim twice: torch raises
    return [x], {"dims": tuple(dims)}


def squeeze_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    return [x], {"dim": int(ctx.rng.integers(-nd, nd))}


def unsqueeze_make(ctx, x):
    nd = len(x.shape)
    if nd >= 4:
        return None
    return [x], {"dim": int(ctx.rng.integers(-nd - 1, nd + 1))}


def flatten_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return [x], {"s": 0, "e": -1}
    s = int(ctx.rng.integers(0, nd))
    e = int(ctx.rng.integers(s, nd))
    return [x], {"s": s, "e": e}


def repeat_make(ctx, x):
    sizes = tuple(int(ctx.rng.choice([1, 1, 2, 3])) for _ in range(len(x.shape) + int(ctx.rng.integers(0, 2))))
    if not sizes or int(np.prod(sizes)) * max(1, int(np.prod(x.shape))) > 300:
        return None
    return [x], {"sizes": sizes}


def cat_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    dim = int(ctx.rng.integers(-nd, nd))
    d = dim % nd
    y = ctx.pick(lambda v: len(v.shape) == nd and all(a == b for i, (a, b) in enumerate(zip(v.shape, x.shape))
                                                     if i != d))
    if y is None or ctx.rng.random() < 0.4:
        shape = list(x.shape)
        shape[d] = int(ctx.rng.choice([0, 1, 2, 3]))
        y = ctx.leaf(tuple(shape), x.dtype if ctx.rng.random() < 0.7 else ctx.dtype(ALL))
    return ([x, y] if ctx.rng.random() < 0.7 else [y, x]), {"dim": dim}


def stack_make(ctx, x):
    nd = len(x.shape)
    if nd >= 4:
        return None
    y = ctx.pick(lambda v: v.shape == x.shape) if ctx.rng.random() < 0.5 else None
    if y is None:
        y = ctx.leaf(x.shape, x.dtype)
    return [x, y], {"dim": int(ctx.rng.integers(-nd - 1, nd + 1))}


def split_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    dim = int(ctx.rng.integers(-nd, nd))
    n = x.shape[dim]
    size = int(ctx.rng.integers(1, max(2, n + 1)))
    if ctx.want_error():
        size = 0
    parts = max(1, -(-n // size)) if size else 1
    return [x], {"size": size, "dim": dim, "i": int(ctx.rng.integers(0, parts))}


def chunk_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    dim = int(ctx.rng.integers(-nd, nd))
    n = x.shape[dim]
    chunks = int(ctx.rng.integers(1, 5))
    if ctx.want_error():
        chunks = 0
    size = max(1, -(-n // chunks)) if chunks else 1
    parts = max(1, -(-n // size)) if n else 1
    return [x], {"n": chunks, "dim": dim, "i": int(ctx.rng.integers(0, parts))}


def take_make(ctx, x):
    nd = len(x.shape)
    if nd == 0:
        return None
    dim = int(ctx.rng.integers(0, min(nd, 2)))
    n = x.shape[dim]
    bad = ctx.want_error()
    ok = (lambda v: v.dtype in INTS and len(v.shape) <= 2 and v.ref.size > 0 and v.ref.min() >= -n and v.ref.max() < n)
    idx = ctx.pick(ok) if n and not bad and ctx.rng.random() < 0.4 else None
    if idx is None:
        if n == 0 and not bad:
            return None
        shape = random_shape(ctx.rng, int(ctx.rng.integers(0, 3)))
        data = ctx.rng.integers(-n, max(n, 1), int(np.prod(shape))).reshape(shape)
        if bad:
            data = data.reshape(-1)
            if data.size == 0:
                data = np.array([0])
                shape = (1,)
            data[int(ctx.rng.integers(data.size))] = n + int(ctx.rng.integers(0, 3)) if ctx.rng.random() < 0.5 else -n - 1
            data = data.reshape(shape)
        idx = ctx.leaf_from(data.astype(np.int32), "int32")
    return [x, idx], {"pre": Raw(":, " * dim), "dim": dim}


def matmul_make(ctx, x):
    if not x.shape or x.dtype == "bool":
        return None
    rng = ctx.rng
    k = x.shape[-1]
    n = int(rng.choice([1, 2, 3, 5]))
    r = rng.random()
    if r < 0.2:
        shape = (k,)
    elif r < 0.7 or len(x.shape) < 2:
        shape = (k, n)
    else:
        batch = tuple(1 if rng.random() < 0.3 else s for s in x.shape[:-2])
        shape = batch + (k, n)
    d = x.dtype if rng.random() < 0.8 else ctx.dtype(NUM)
    if (d in INTS) != (x.dtype in INTS):
        d = x.dtype
    y = ctx.leaf(shape, d)
    return [x, y], {}


def conv_make(ctx, x, bias: bool = False):
    rng = ctx.rng
    if len(x.shape) != 4 or x.dtype not in FLOATS or x.shape[1] == 0:
        if rng.random() < 0.6:
            return None
        x = ctx.leaf((int(rng.choice([1, 2])), int(rng.choice([1, 2, 3, 4])), int(rng.integers(1, 7)),
                      int(rng.integers(1, 7))), "float32")
    c = x.shape[1]
    groups = int(rng.choice([g for g in (1, 2, 3) if c % g == 0]))
    o = groups * int(rng.choice([1, 2]))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    oh = (x.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (x.shape[3] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        return None
    w = ctx.leaf((o, c // groups, kh, kw), x.dtype)
    ops = [x, w] + ([ctx.leaf((o,), x.dtype)] if bias else [])
    return ops, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _row(name, lg, np_, th, make, **kw) -> Row:
    return Row(name, lg, np_, th, make, **kw)


def _unary_float(name, lg, np_, th, x=ALL, make=unary, **kw):
    return Row(name, lg, np_, th, make, conv=to_float, x=x, **kw)


def _cmp(name, sym, weight=0.4):
    return Row(name, f"{{x}} {sym} {{y}}", f"{{x}} {sym} {{y}}", f"{{x}} {sym} {{y}}", other(ALL), out=BOOL,
               conv=to_common, exact=True, weight=weight)


def _cmp_scalar(name, sym, weight=0.3):
    return Row(name, f"{{x}} {sym} {{c}}", f"{{x}} {sym} {{c}}", f"{{x}} {sym} {{c}}", scalar(), out=BOOL,
               conv=to_scalar, x=NUM, exact=True, weight=weight)


_RED = "{axis}, keepdim={keepdim}"

ROWS: list[Row] = [
    # unary float math (ints and bools are converted to float32 first, like torch)
    _unary_float("exp", "{x}.exp()", "np.exp({x})", "torch.exp({x})"),
    _unary_float("log", "{x}.log()", "np.log({x})", "torch.log({x})"),
    _unary_float("sqrt", "{x}.sqrt()", "np.sqrt({x})", "torch.sqrt({x})"),
    _unary_float("rsqrt", "{x}.rsqrt()", "1.0 / np.sqrt({x})", "torch.rsqrt({x})", weight=0.3),
    _unary_float("tanh", "{x}.tanh()", "np.tanh({x})", "torch.tanh({x})"),
    _unary_float("sin", "{x}.sin()", "np.sin({x})", "torch.sin({x})", weight=0.5),
    _unary_float("cos", "{x}.cos()", "np.cos({x})", "torch.cos({x})", weight=0.5),
    _unary_float("reciprocal", "{x}.reciprocal()", "1.0 / {x}", "torch.reciprocal({x})"),
    _unary_float("sigmoid", "{x}.sigmoid()", "R.sigmoid({x})", "torch.sigmoid({x})", x=FLOATS),
    _unary_float("softplus", "{x}.softplus()", "R.softplus({x})", "F.softplus({x})", x=FLOATS, weight=0.5),
    # gelu's 1 + tanh(..) cancels for negative x: its error is absolute, about eps |x|
    _unary_float("gelu", "{x}.gelu('tanh')", "R.gelu({x})", "TR.gelu_tanh({x})", x=FLOATS, weight=0.3,
                 mag="np.abs({x})"),
    _unary_float("silu", "{x}.silu()", "{x} * R.sigmoid({x})", "F.silu({x})", x=FLOATS, weight=0.3),
    # lazygrad's elu is exp(x) - 1 (torch: expm1): absolute error about eps near 0
    _unary_float("elu", "{x}.elu()", "R.elu({x})", "F.elu({x})", x=FLOATS, weight=0.3, mag="np.ones_like({x})"),
    _unary_float("leaky_relu", "{x}.leaky_relu({slope})", "R.leaky_relu({x}, {slope})", "F.leaky_relu({x}, {slope})",
                 x=FLOATS, make=slope_make, weight=0.3),
    # unary, same dtype
    _row("neg", "-{x}", "-{x}", "-{x}", unary, x=NUM, exact=True),
    _row("abs", "{x}.abs()", "np.abs({x})", "torch.abs({x})", unary, x=NUM, exact=True),
    _row("sign", "{x}.sign()", "R.sign({x})", "TR.sign({x})", unary, x=NUM, exact=True, weight=0.5),
    _row("relu", "{x}.relu()", "R.relu({x})", "TR.relu({x})", unary, x=NUM, exact=True),
    _row("square", "{x}.square()", "{x} * {x}", "{x} * {x}", unary, x=NUM, weight=0.5),
    _row("floor", "{x}.floor()", "np.floor({x})", "torch.floor({x})", unary, x=NUM, exact=True, weight=0.4),
    _row("ceil", "{x}.ceil()", "np.ceil({x})", "torch.ceil({x})", unary, x=NUM, exact=True, weight=0.3),
    _row("round", "{x}.round()", "np.round({x})", "torch.round({x})", unary, x=FLOATS, exact=True, weight=0.3),
    _row("logical_not", "{x}.logical_not()", "np.logical_not({x})", "torch.logical_not({x})", unary, out=BOOL,
         exact=True, weight=0.4),
    _row("isnan", "{x}.isnan()", "np.isnan({x})", "torch.isnan({x})", unary, out=BOOL, x=FLOATS, exact=True,
         weight=0.4),
    _row("isinf", "{x}.isinf()", "np.isinf({x})", "torch.isinf({x})", unary, out=BOOL, x=FLOATS, exact=True,
         weight=0.3),
    _row("cast", "{x}.cast(lg.{dtype})", "R.cast({x}, '{src}', '{dtype}')", "TR.cast({x}, '{src}', '{dtype}')",
         cast_make, out=PARAM, exact=True, weight=1.5),
    _row("clip", "{x}.clip({lo}, {hi})", "R.clip({x}, {lo}, {hi})", "TR.clip({x}, {lo}, {hi})", clip_make, x=NUM,
         exact=True, weight=0.6),
    # binary, tensor with tensor (broadcast, promoted like torch)
    _row("add", "{x} + {y}", "R.add({x}, {y})", "TR.add({x}, {y})", other(ALL), conv=to_common, weight=1.5),
    _row("sub", "{x} - {y}", "{x} - {y}", "{x} - {y}", other(NUM), conv=to_common, x=NUM),
    _row("mul", "{x} * {y}", "R.mul({x}, {y})", "TR.mul({x}, {y})", other(ALL), conv=to_common, weight=1.5),
    _row("div", "{x} / {y}", "{x} / {y}", "{x} / {y}", other(NUM), conv=to_common_float, x=NUM),
    _row("floordiv", "{x} // {y}", "R.floordiv({x}, {y})", "TR.floordiv({x}, {y})", other(NUM), conv=to_common,
         x=NUM, weight=0.5),
    _row("mod", "{x} % {y}", "R.mod({x}, {y})", "TR.mod({x}, {y})", other(NUM), conv=to_common, x=NUM, weight=0.5),
    _row("maximum", "{x}.maximum({y})", "R.maximum({x}, {y})", "TR.maximum({x}, {y})", other(ALL), conv=to_common,
         exact=True),
    _row("minimum", "{x}.minimum({y})", "R.minimum({x}, {y})", "TR.minimum({x}, {y})", other(ALL),
         conv=to_common, exact=True),
    _row("pow", "{x} ** {y}", "R.pow({x}, {y})", "torch.pow({x}, {y})", pow_make, conv=to_common_float, x=FLOATS,
         weight=0.4),
    _cmp("lt", "<"), _cmp("le", "<="), _cmp("gt", ">"), _cmp("ge", ">="), _cmp("eq", "=="), _cmp("ne", "!="),
    _row("and", "{x} & {y}", "{x} & {y}", "{x} & {y}", other(("bool",) + INTS), conv=to_common,
         x=("bool",) + INTS, exact=True, weight=0.5),
    _row("or", "{x} | {y}", "{x} | {y}", "{x} | {y}", other(("bool",) + INTS), conv=to_common,
         x=("bool",) + INTS, exact=True, weight=0.5),
    _row("xor", "{x} ^ {y}", "{x} ^ {y}", "{x} ^ {y}", other(("bool",) + INTS), conv=to_common,
         x=("bool",) + INTS, exact=True, weight=0.3),
    _row("where", "{x}.where({y}, {z})", "np.where({x}, {y}, {z})", "torch.where({x}, {y}, {z})", where_make,
         out=WHERE, conv=to_where, exact=True, weight=1.2),
    # binary with a Python scalar (NaN, +-inf, +-0, denormals, INT_MIN/INT_MAX)
    _row("add_s", "{x} + {c}", "R.add({x}, {c})", "TR.add({x}, {c})", scalar(), conv=to_scalar),
    _row("rsub_s", "{c} - {x}", "{c} - {x}", "{c} - {x}", scalar(), conv=to_scalar, x=NUM, weight=0.5),
    _row("mul_s", "{x} * {c}", "R.mul({x}, {c})", "TR.mul({x}, {c})", scalar(), conv=to_scalar),
    _row("div_s", "{x} / {c}", "{x} / {c}", "{x} / {c}", scalar(), conv=to_scalar_float, x=NUM, weight=0.5),
    _row("rdiv_s", "{c} / {x}", "{c} / {x}", "{c} / {x}", scalar(), conv=to_scalar_float, x=NUM, weight=0.5),
    _row("floordiv_s", "{x} // {c}", "R.floordiv_s({x}, {c})", "TR.floordiv_s({x}, {c})",
         scalar(nonzero_int=True), conv=to_scalar, x=NUM, weight=0.3),
    _row("mod_s", "{x} % {c}", "R.mod_s({x}, {c})", "TR.mod_s({x}, {c})",
         scalar(nonzero_int=True), conv=to_scalar, x=NUM, weight=0.3),
    _row("pow_s", "{x} ** {c}", "R.pow({x}, {c})", "torch.pow({x}, {c})", pow_scalar_make, conv=to_float, x=FLOATS,
         weight=0.5),
    # maximum with a scalar is torch.maximum with a 0-d tensor (ties split the gradient), not clamp
    _row("maximum_s", "{x}.maximum({c})", "np.maximum({x}, {c})", "torch.maximum({x}, torch.tensor({c}, dtype={x}.dtype))",
         scalar(), conv=to_scalar, x=NUM, exact=True, weight=0.5),
    _row("minimum_s", "{x}.minimum({c})", "np.minimum({x}, {c})", "torch.minimum({x}, torch.tensor({c}, dtype={x}.dtype))",
         scalar(), conv=to_scalar, x=NUM, exact=True, weight=0.5),
    _cmp_scalar("lt_s", "<"), _cmp_scalar("gt_s", ">"), _cmp_scalar("eq_s", "=="), _cmp_scalar("ne_s", "!="),
    _cmp_scalar("le_s", "<="), _cmp_scalar("ge_s", ">="),
    # reductions (random axes, keepdim both ways)
    _row("sum", f"{{x}}.sum({_RED})", "R.sum({x}, {axis}, {keepdim})", f"TR.sum({{x}}, {{axis}}, {{keepdim}})",
         reduce(), out=ACC, mag="R.sum(np.abs({x}), {axis}, {keepdim})", weight=1.5),
    _row("mean", f"{{x}}.mean({_RED})", "R.mean({x}, {axis}, {keepdim})", "TR.mean({x}, {axis}, {keepdim})",
         reduce(), conv=to_float, mag="R.mean(np.abs({x}), {axis}, {keepdim})"),
    _row("max", f"{{x}}.amax({_RED})", "R.max({x}, {axis}, {keepdim})", "TR.amax({x}, {axis}, {keepdim})",
         reduce(), exact=True),
    _row("min", f"{{x}}.amin({_RED})", "R.min({x}, {axis}, {keepdim})", "TR.amin({x}, {axis}, {keepdim})",
         reduce(), exact=True),
    _row("prod", f"{{x}}.prod({_RED})", "R.prod({x}, {axis}, {keepdim})", "TR.prod({x}, {axis}, {keepdim})",
         prod_make, x=FLOATS, mag="np.abs(R.prod({x}, {axis}, {keepdim})) * (1 + R.sum(np.abs(np.log(np.abs({x}))), {axis}, {keepdim}))",
         weight=0.3),
    _row("argmax", f"{{x}}.argmax({_RED})", "R.argmax({x}, {axis}, {keepdim})", "TR.argmax({x}, {axis}, {keepdim})",
         argmax_make, out=INT64, exact=True, weight=0.6),
    _row("argmin", f"{{x}}.argmin({_RED})", "R.argmax({x}, {axis}, {keepdim}, smallest=True)",
         "TR.argmax({x}, {axis}, {keepdim}, smallest=True)", argmax_make, out=INT64, exact=True,
         weight=0.4),
    _row("any", f"{{x}}.any({_RED})", "R.any({x}, {axis}, {keepdim})", "TR.any({x}, {axis}, {keepdim})",
         reduce(), out=ANY_ALL, exact=True, weight=0.4),
    _row("all", f"{{x}}.all({_RED})", "R.all({x}, {axis}, {keepdim})", "TR.all({x}, {axis}, {keepdim})",
         reduce(), out=ANY_ALL, exact=True, weight=0.4),
    _row("logsumexp", f"{{x}}.logsumexp({_RED})", "R.logsumexp({x}, {axis}, {keepdim})",
         "TR.logsumexp({x}, {axis}, {keepdim})", reduce(), conv=to_float, x=NUM,
         mag="R.lse_mag({x}, {axis}, {keepdim})", weight=0.6),
    _row("softmax", "{x}.softmax({axis})", "R.softmax({x}, {axis})", "torch.softmax({x}, {axis})", axis_make,
         conv=to_float, x=FLOATS, weight=0.6),
    _row("log_softmax", "{x}.log_softmax({axis})", "R.log_softmax({x}, {axis})", "torch.log_softmax({x}, {axis})",
         axis_make, conv=to_float, x=FLOATS, mag="R.lsm_mag({x}, {axis})", weight=0.5),
    _row("var", "{x}.var({axis}, {keepdim}, correction={correction})", "R.var({x}, {axis}, {keepdim}, {correction})",
         "TR.var({x}, {axis}, {keepdim}, {correction})", var_make, conv=to_float, x=FLOATS,
         mag="R.mean({x} * {x}, {axis}, {keepdim}) * 4", weight=0.3),
    _row("cumsum", "{x}.cumsum({axis})", "R.cumsum({x}, {axis})", "TR.cumsum({x}, {axis})", axis_make, out=ACC,
         mag="R.cumsum(np.abs({x}), {axis})", weight=0.4),
    # movement
    _row("reshape", "{x}.reshape({shape})", "{x}.reshape({shape})", "{x}.reshape({shape})", reshape_make, exact=True,
         weight=1.2),
    _row("permute", "{x}.permute({order})", "np.transpose({x}, {order})", "{x}.permute({order})", permute_make,
         exact=True),
    _row("transpose", "{x}.transpose({d0}, {d1})", "np.swapaxes({x}, {d0}, {d1})", "torch.transpose({x}, {d0}, {d1})",
         transpose_make, exact=True, weight=0.5),
    _row("expand", "{x}.expand({shape})", "R.expand({x}, {shape})", "{x}.expand({shape})", expand_make, exact=True),
    _row("pad", "{x}.pad({widths}, value={value})", "R.pad({x}, {widths}, {value})", "TR.pad({x}, {widths}, {value})",
         pad_make, exact=True),
    _row("getitem", "{x}[{key}]", "{x}[{key}]", "TR.getitem({x}, np.index_exp[{key}])", getitem_make, exact=True,
         weight=1.5),
    _row("flip", "{x}.flip({dims})", "R.flip({x}, {dims})", "torch.flip({x}, {dims})", flip_make, exact=True,
         weight=0.6),
    _row("squeeze", "{x}.squeeze({dim})", "R.squeeze({x}, {dim})", "torch.squeeze({x}, {dim})", squeeze_make,
         exact=True, weight=0.3),
    _row("unsqueeze", "{x}.unsqueeze({dim})", "np.expand_dims({x}, {dim})", "torch.unsqueeze({x}, {dim})",
         unsqueeze_make, exact=True, weight=0.4),
    _row("flatten", "{x}.flatten({s}, {e})", "R.flatten({x}, {s}, {e})", "torch.flatten({x}, {s}, {e})",
         flatten_make, exact=True, weight=0.3),
    _row("repeat", "{x}.repeat({sizes})", "R.repeat({x}, {sizes})", "{x}.repeat({sizes})", repeat_make, exact=True,
         weight=0.4),
    _row("cat", "lg.cat([{x}, {y}], dim={dim})", "np.concatenate([{x}, {y}], axis={dim})",
         "torch.cat([{x}, {y}], dim={dim})", cat_make, conv=to_common, exact=True, weight=0.8),
    _row("stack", "lg.stack([{x}, {y}], dim={dim})", "np.stack([{x}, {y}], axis={dim})",
         "torch.stack([{x}, {y}], dim={dim})", stack_make, conv=to_common, exact=True, weight=0.5),
    _row("split", "{x}.split({size}, dim={dim})[{i}]", "R.split({x}, {size}, {dim}, {i})",
         "torch.split({x}, {size}, dim={dim})[{i}]", split_make, exact=True, weight=0.4),
    _row("chunk", "{x}.chunk({n}, dim={dim})[{i}]", "R.chunk({x}, {n}, {dim}, {i})",
         "torch.chunk({x}, {n}, dim={dim})[{i}]", chunk_make, exact=True, weight=0.4),
    _row("take", "{x}[{pre}{y}]", "R.take({x}, {y}, {dim})", "{x}[{pre}{y}.long()]", take_make, exact=True,
         weight=0.6),
    # contractions
    _row("matmul", "{x} @ {y}", "R.matmul({x}, {y})", "TR.matmul({x}, {y})", matmul_make, conv=to_common, x=NUM,
         mag="R.matmul(np.abs({x}), np.abs({y}))", weight=0.8),
    _row("conv2d", "{x}.conv2d({y}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups})",
         "R.conv2d({x}, {y}, None, {stride}, {padding}, {dilation}, {groups})",
         "F.conv2d({x}, {y}, None, {stride}, {padding}, {dilation}, {groups})", conv_make, x=FLOATS,
         mag="R.conv2d(np.abs({x}), np.abs({y}), None, {stride}, {padding}, {dilation}, {groups})", weight=0.4),
    _row("conv2d_bias", "{x}.conv2d({y}, {z}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups})",
         "R.conv2d({x}, {y}, {z}, {stride}, {padding}, {dilation}, {groups})",
         "F.conv2d({x}, {y}, {z}, {stride}, {padding}, {dilation}, {groups})",
         lambda ctx, x: conv_make(ctx, x, bias=True), x=FLOATS,
         mag="R.conv2d(np.abs({x}), np.abs({y}), np.abs({z}), {stride}, {padding}, {dilation}, {groups})", weight=0.3),
]
TABLE: dict[str, Row] = {r.name: r for r in ROWS}
assert len(TABLE) == len(ROWS), "op names must be unique"
