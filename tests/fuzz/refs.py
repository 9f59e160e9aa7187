"""The semantics the references implement, once in numpy (R) and once in torch (TR).

Reference values are kept in a *compute representation* of their nominal dtype: floats of
every width as float64 holding values rounded to the nominal width (so a float32 program
overflows, underflows and rounds like float32 after every op, but each op itself is computed
in float64), integers in their own width (they wrap like the device), bools as bools.

Where numpy and torch disagree the references follow torch, and where torch is undefined or
raises in a way a lazy kernel cannot (integer division by zero, NaN cast to int) they follow
lazygrad's documented choice (docs/semantics.md). Each helper says which.

Public names: R (numpy helpers), TR (torch helpers), RefError, promote, float_of, acc_dtype,
scalar_dtype, DTYPE_ORDER.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

DTYPE_ORDER = ("bool", "uint8", "int8", "int16", "uint32", "int32", "int64", "float32", "float64")
_SMALL_INTS = ("uint8", "int8", "int16", "uint32")
_NP = {"bool": np.bool_, "int32": np.int32, "int64": np.int64, "float32": np.float32, "float64": np.float64,
       **{d: np.dtype(d).type for d in _SMALL_INTS}}
_TORCH = {"bool": torch.bool, "int32": torch.int32, "int64": torch.int64, "float32": torch.float64,
          "float64": torch.float64,  # floats are computed in float64 (rounded to the nominal width)
          # torch has few uint32 ops: computed in int64, wrapped into uint32 after every op
          **{d: getattr(torch, d) for d in _SMALL_INTS}, "uint32": torch.int64}
_TORCH_NATIVE = {**_TORCH, "float32": torch.float32}  # TR.native(): each dtype computed as itself
_native = [False]


class RefError(Exception):
    """The reference refuses this op on these inputs (torch raises): lazygrad must raise too."""


def is_float(d: str) -> bool:
    return d.startswith("float")


def is_int(d: str) -> bool:
    return d.startswith(("int", "uint"))


def promote(*ds: str) -> str:
    """torch's lattice for tensor operands: bool < integers < float32 < float64; among
    integers numpy's result_type, which is torch's (uint8 with int8 is int16) and, for uint32
    that torch does not promote, numpy's own (uint32 with int32 is int64)."""
    if any(is_float(d) for d in ds):
        return max(ds, key=DTYPE_ORDER.index)
    ints = [d for d in ds if is_int(d)]
    return str(np.result_type(*[np.dtype(d) for d in ints])) if ints else "bool"


def weighted_promote(ds: list[str], zero_d: tuple[bool, ...] | None) -> str:
    """torch.result_type of tensor operands, 0-d ones (zero_d[i]) weighing less: the 0-d
    operands decide only when of a higher kind (bool < int < float) than those with dims."""
    if zero_d is None or all(zero_d) or not any(zero_d):
        return promote(*ds)
    heavy = promote(*[d for d, z in zip(ds, zero_d) if not z])
    light = promote(*[d for d, z in zip(ds, zero_d) if z])
    return light if _kind(light) > _kind(heavy) else heavy


def _kind(d: str) -> int:
    return 2 if is_float(d) else 1 if is_int(d) else 0


def float_of(d: str) -> str:
    return d if is_float(d) else "float32"


def acc_dtype(d: str) -> str:
    """sum/cumsum of bool and integer tensors accumulate in int64 (torch)."""
    return "int64" if not is_float(d) else d


def scalar_dtype(d: str, c: object) -> str:
    """Result dtype of tensor (dtype d) op Python scalar c. Like torch, a scalar only changes
    the category: an int tensor with a float scalar is float32, a bool tensor with an int scalar
    is int64 (torch's int scalar)."""
    if isinstance(c, bool):
        return d
    if isinstance(c, int):
        return "int64" if d == "bool" else d
    return d if is_float(d) else "float32"


# --- numpy -----------------------------------------------------------------------------------------
class R:
    """numpy helpers. Arrays are in the compute representation described above."""

    @staticmethod
    def rnd(a, d: str) -> np.ndarray:
        a = np.asarray(a)
        if d == "float32":
            with np.errstate(over="ignore", invalid="ignore"):
                return a.astype(np.float32).astype(np.float64)
        if d == "float64":
            return a.astype(np.float64)
        return a.astype(_NP[d])

    @staticmethod
    def cast(a: np.ndarray, src: str, dst: str) -> np.ndarray:
        """lazygrad's casts: float -> int rounds toward zero and saturates, NaN -> 0 (torch is
        undefined there); float -> bool is `!= 0` (NaN -> True, like torch); int -> int wraps."""
        if is_float(src) and is_int(dst):
            info = np.iinfo(_NP[dst])
            with np.errstate(invalid="ignore"):
                t = np.trunc(np.where(np.isnan(a), 0.0, a))
                lo = np.float64(info.min)
                t = np.clip(t, lo, np.float64(info.max))
                out = t.astype(np.int64 if dst == "int64" else np.int64)
                # float64(INT64_MAX) rounds up to 2**63: saturate explicitly
                out = np.where(t >= 2.0 ** 63, np.int64(info.max), out) if dst == "int64" else out
            return out.astype(_NP[dst])
        if dst == "bool":
            return a != 0
        if is_float(dst):
            return R.rnd(a.astype(np.float64), dst)
        return a.astype(_NP[dst])

    @staticmethod
    def conv(a: np.ndarray, src: str, dst: str) -> np.ndarray:
        """An operand converted for a promotion (values only grow: no saturation needed)."""
        return a if src == dst else R.cast(a, src, dst)

    # elementwise with torch semantics
    @staticmethod
    def sign(x):
        return ((x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)) if x.dtype != np.bool_ else x  # NaN -> 0 (torch)

    @staticmethod
    def relu(x):
        return np.where(np.isnan(x) | (x > 0), x, np.zeros((), x.dtype)) if x.dtype.kind == "f" else np.maximum(x, 0)

    @staticmethod
    def sigmoid(x):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-x))

    @staticmethod
    def softplus(x):
        # torch: x where x > 20, else log1p(exp(x))
        with np.errstate(over="ignore"):
            return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))

    @staticmethod
    def gelu(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    @staticmethod
    def elu(x):
        with np.errstate(over="ignore"):
            return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))

    @staticmethod
    def leaky_relu(x, slope):
        return np.where(x > 0, x, x * slope)

    @staticmethod
    def clip(x, lo, hi):
        # torch.clamp: NaN in x or a bound gives NaN; lo > hi gives hi
        y = x
        if lo is not None:
            y = np.where(np.isnan(y) | (y >= lo), y, lo) if not _isnan(lo) else np.full_like(y, np.nan)
        if hi is not None:
            y = np.where(np.isnan(y) | (y <= hi), y, hi) if not _isnan(hi) else np.full_like(y, np.nan)
        return y

    @staticmethod
    def maximum(x, y):
        if x.dtype == np.bool_:
            return x | y
        return np.maximum(x, y)

    @staticmethod
    def minimum(x, y):
        if x.dtype == np.bool_:
            return x & y
        return np.minimum(x, y)

    @staticmethod
    def add(x, y):
        return (x | y) if x.dtype == np.bool_ else x + y  # bool + bool is bool (torch and numpy)

    @staticmethod
    def mul(x, y):
        return (x & y) if x.dtype == np.bool_ else x * y

    @staticmethod
    def floordiv(x, y):
        if x.dtype.kind == "f":
            # torch.floor_divide: floor of the true quotient (through fmod, like Python's //)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.floor_divide(x, y)
        if x.dtype == np.bool_:
            x, y = x.astype(np.int32), y.astype(np.int32)
        # integers: Python's floor; x // 0 is 0 (lazygrad; torch raises); MIN // -1 wraps to MIN
        xi, yi = x.astype(object), y.astype(object)
        out = np.vectorize(lambda a, b: 0 if b == 0 else a // b, otypes=[object])(xi, yi)
        return _wrap(out, x.dtype)

    @staticmethod
    def mod(x, y):
        if x.dtype.kind == "f":
            with np.errstate(divide="ignore", invalid="ignore"):
                # torch.remainder: fmod, moved by y when its sign differs from y's; a zero result
                # keeps the dividend's sign (np.remainder gives it the divisor's)
                m = np.fmod(x, y)
                return np.where((m != 0) & ((m < 0) != (y < 0)), m + y, m)
        xi, yi = x.astype(object), y.astype(object)
        out = np.vectorize(lambda a, b: 0 if b == 0 else a % b, otypes=[object])(xi, yi)
        return _wrap(out, x.dtype)

    @staticmethod
    def floordiv_s(x, c):
        if x.dtype.kind in "iu" and c == 0:
            raise RefError("floordiv: integer division by a Python zero (torch raises ZeroDivisionError)")
        return R.floordiv(x, np.asarray(c, x.dtype))

    @staticmethod
    def mod_s(x, c):
        if x.dtype.kind in "iu" and c == 0:
            raise RefError("mod: integer modulo by a Python zero (torch raises ZeroDivisionError)")
        return R.mod(x, np.asarray(c, x.dtype))

    @staticmethod
    def pow(x, y):
        with np.errstate(all="ignore"):
            return np.power(x, y)

    # reductions: torch's shapes, dtypes and empty-axis rules
    @staticmethod
    def axes(x, axis):
        if axis is None:
            return tuple(range(x.ndim))
        return tuple(a % max(x.ndim, 1) for a in (axis if isinstance(axis, tuple) else (axis,))) if x.ndim else ()

    @staticmethod
    def sum(x, axis, keepdim):
        d = x.dtype
        if d.kind in "biu":
            x = x.astype(np.int64)
        out = np.sum(x, axis=R.axes(x, axis), keepdims=keepdim)
        return np.asarray(out)

    @staticmethod
    def mean(x, axis, keepdim):
        n = int(np.prod([x.shape[a] for a in R.axes(x, axis)]))
        s = np.sum(x, axis=R.axes(x, axis), keepdims=keepdim)
        return np.asarray(s / n if n else s * np.nan)

    @staticmethod
    def _nonempty(x, axis, op):
        ax = R.axes(x, axis)
        if any(x.shape[a] == 0 for a in ax) or (axis is None and x.size == 0):
            raise RefError(f"{op}: reduction over a zero-size dim (torch raises IndexError)")
        return ax

    @staticmethod
    def max(x, axis, keepdim):
        return np.asarray(np.max(x, axis=R._nonempty(x, axis, "max"), keepdims=keepdim))

    @staticmethod
    def min(x, axis, keepdim):
        return np.asarray(np.min(x, axis=R._nonempty(x, axis, "min"), keepdims=keepdim))

    @staticmethod
    def prod(x, axis, keepdim):
        return np.asarray(np.prod(x, axis=R.axes(x, axis), keepdims=keepdim))

    @staticmethod
    def any(x, axis, keepdim):
        # uint8 gives uint8 like torch's (a legacy rule torch keeps); every other dtype bool
        r = np.asarray(np.any(x != 0, axis=R.axes(x, axis), keepdims=keepdim))
        return r.astype(np.uint8) if x.dtype == np.uint8 else r

    @staticmethod
    def all(x, axis, keepdim):
        r = np.asarray(np.all(x != 0, axis=R.axes(x, axis), keepdims=keepdim))
        return r.astype(np.uint8) if x.dtype == np.uint8 else r

    @staticmethod
    def argmax(x, axis, keepdim, smallest=False):
        """Index of the first maximum (minimum), a NaN counting as the extreme (torch and numpy
        agree); flattened for axis=None, with every dim kept as size 1 under keepdim (torch)."""
        R._nonempty(x, axis, "argmax")
        f = np.argmin if smallest else np.argmax
        if axis is None:
            i = np.asarray(f(x.reshape(-1)))
            return (i.reshape((1,) * x.ndim) if keepdim else i).astype(np.int64)
        if not x.ndim:
            return np.asarray(0, np.int64)
        i = f(x, axis=axis)
        return (np.expand_dims(i, axis) if keepdim else np.asarray(i)).astype(np.int64)

    @staticmethod
    def logsumexp(x, axis, keepdim):
        ax = R.axes(x, axis)
        with np.errstate(all="ignore"):
            m = np.max(x, axis=ax, keepdims=True, initial=-np.inf) if x.size else np.full(
                [1 if i in ax else s for i, s in enumerate(x.shape)], -np.inf)
            m = np.where(np.isinf(m), 0.0, m)
            s = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
        return s if keepdim else s.reshape([n for i, n in enumerate(x.shape) if i not in ax])

    @staticmethod
    def softmax(x, axis):
        with np.errstate(all="ignore"):
            m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
            e = np.exp(x - m)
            return e / np.sum(e, axis=axis, keepdims=True)

    @staticmethod
    def log_softmax(x, axis):
        with np.errstate(all="ignore"):
            m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
            d = x - m
            return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))

    @staticmethod
    def var(x, axis, keepdim, correction):
        ax = R.axes(x, axis)
        n = int(np.prod([x.shape[a] for a in ax]))
        with np.errstate(all="ignore"):
            d = x - np.mean(x, axis=ax, keepdims=True)
            return np.sum(d * d, axis=ax, keepdims=keepdim) / max(n - correction, 0)

    @staticmethod
    def lse_mag(x, axis, keepdim):
        """What logsumexp's rounding error scales with: the largest |x| of the row, plus 1."""
        ax = R.axes(x, axis)
        a = np.where(np.isfinite(x), np.abs(x), 0.0)
        m = np.max(a, axis=ax, keepdims=keepdim, initial=0.0)
        return m + 1.0

    @staticmethod
    def lsm_mag(x, axis):
        a = np.where(np.isfinite(x), np.abs(x), 0.0)
        return a + np.max(a, axis=axis, keepdims=True, initial=0.0)

    @staticmethod
    def cumsum(x, axis):
        if x.dtype.kind in "biu":
            x = x.astype(np.int64)
        return np.cumsum(x, axis=axis) + (0.0 if x.dtype.kind == "f" else 0)  # from +0.0, like torch

    # movement
    @staticmethod
    def pad(x, widths, value):
        if any(max(0, -b) + max(0, -a) > s for (b, a), s in zip(widths, x.shape)):
            raise RefError("pad: negative widths crop more than the dim holds")
        crop = tuple(slice(max(0, -b), s - max(0, -a)) for (b, a), s in zip(widths, x.shape))
        return np.pad(x[crop], [(max(0, b), max(0, a)) for b, a in widths], constant_values=value)

    @staticmethod
    def squeeze(x, dim):
        return np.squeeze(x, dim) if x.shape[dim] == 1 else x

    @staticmethod
    def flatten(x, s, e):
        if x.ndim == 0:
            return x.reshape(1)
        e = e % x.ndim
        return x.reshape(x.shape[:s] + (-1 if x.size else int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])

    @staticmethod
    def repeat(x, sizes):
        return np.tile(x.reshape((1,) * (len(sizes) - x.ndim) + x.shape), sizes)

    @staticmethod
    def expand(x, shape):
        shape = tuple(shape)
        if any(s < -1 for s in shape):
            raise RefError("expand: negative size (torch raises)")
        xs = (1,) * (len(shape) - x.ndim) + x.shape
        return np.broadcast_to(x.reshape(xs), tuple(s if t == -1 else t for s, t in zip(xs, shape)))

    @staticmethod
    def flip(x, dims):
        if len(set(d % max(x.ndim, 1) for d in dims)) != len(dims):
            raise RefError("flip: a dim appears twice (torch raises)")
        return np.flip(x, dims) if dims else x

    @staticmethod
    def split(x, size, dim, i):
        n = x.shape[dim]
        if size <= 0 and n:
            raise RefError("split: size 0 for a non-empty dim (torch raises)")
        starts = list(range(0, n, size)) if size > 0 else [0]
        return np.take(x, range(starts[i], min(n, starts[i] + size)), axis=dim) if n else x

    @staticmethod
    def chunk(x, chunks, dim, i):
        if chunks <= 0:
            raise RefError("chunk: chunks must be > 0 (torch raises)")
        n = x.shape[dim]
        size = max(1, -(-n // chunks))
        return R.split(x, size, dim, i)

    @staticmethod
    def take(x, idx, dim):
        n = x.shape[dim]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise RefError(f"index out of range for size {n} (torch raises IndexError)")
        return np.take(x, np.where(idx < 0, idx + n, idx), axis=dim)

    @staticmethod
    def matmul(x, y):
        if x.dtype == np.bool_:
            x, y = x.astype(np.int32), y.astype(np.int32)
        if x.dtype.kind in "iu":
            return np.matmul(x.astype(np.int64), y.astype(np.int64)).astype(x.dtype)  # wraps like the device
        return np.matmul(x, y)

    @staticmethod
    def conv2d(x, w, b, stride, padding, dilation, groups):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        wg = w.reshape(groups, o // groups, cg, kh, kw)
        out = np.zeros((n, groups, o // groups, oh, ow))
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out += np.einsum("ngchw,goc->ngohw", patch.reshape(n, groups, cg, oh, ow), wg[..., i, j])
        out = out.reshape(n, o, oh, ow)
        return out + b.reshape(1, o, 1, 1) if b is not None else out


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _wrap(obj: np.ndarray, d: np.dtype) -> np.ndarray:
    bits = np.dtype(d).itemsize * 8
    half = 0 if np.dtype(d).kind == "u" else 1 << (bits - 1)  # unsigned: v mod 2**bits
    f = np.vectorize(lambda v: ((int(v) + half) % (1 << bits)) - half, otypes=[object])
    return f(obj).astype(d) if obj.size else obj.astype(d)


# --- torch -----------------------------------------------------------------------------------------
class TR:
    """torch helpers: the same semantics on torch tensors (floats as float64), differentiable
    wherever the float op is."""

    @staticmethod
    @contextmanager
    def native():
        """Inside: float32 values are torch float32 tensors computed in float32 (torch's own
        rounding, overflow and cancellation inside its gradient formulas), not float64."""
        _native.append(True)
        try:
            yield
        finally:
            _native.pop()

    @staticmethod
    def relu(x):
        """torch.relu except that relu(-0.0) is +0.0 (docs/semantics.md: a documented difference);
        the same gradient (none at 0, NaN passes)."""
        if not x.dtype.is_floating_point:
            return torch.relu(x)
        return torch.where(x.isnan() | (x > 0), x, torch.zeros((), dtype=x.dtype))

    @staticmethod
    def _dt(d: str):
        return (_TORCH_NATIVE if _native[-1] else _TORCH)[d]

    @staticmethod
    def tensor(a: np.ndarray, d: str, grad: bool = False) -> torch.Tensor:
        t = torch.tensor(np.array(a, copy=True), dtype=TR._dt(d))
        return t.requires_grad_(grad) if grad else t

    @staticmethod
    def rnd(t: torch.Tensor, d: str) -> torch.Tensor:
        if d == "uint32":
            return t.to(torch.int64) % 2 ** 32
        if _native[-1]:
            return t.to(TR._dt(d))
        if d == "float32":
            return _Round32.apply(t)
        if is_float(d):
            return t.to(torch.float64)
        return t.to(_TORCH[d])

    @staticmethod
    def cast(t: torch.Tensor, src: str, dst: str) -> torch.Tensor:
        if is_float(src) and is_int(dst):
            info = np.iinfo(_NP[dst])
            z = torch.nan_to_num(t.detach(), nan=0.0).trunc()
            return torch.where(z >= float(info.max) + 1, int(info.max),
                               torch.where(z <= float(info.min), info.min, z.clamp(info.min, info.max).to(torch.int64))
                               ).to(_TORCH[dst])
        if dst == "bool":
            return t != 0
        if is_float(dst):
            return TR.rnd(t if t.is_floating_point() else t.detach().to(TR._dt(dst)), dst)
        return t.to(_TORCH[dst])

    conv = staticmethod(lambda t, src, dst: t if src == dst else TR.cast(t, src, dst))

    @staticmethod
    def sign(x):
        return torch.sign(x) if x.dtype != torch.bool else x

    @staticmethod
    def clip(x, lo, hi):
        return torch.clamp(x, lo, hi)

    @staticmethod
    def add(x, y):
        return x | y if x.dtype == torch.bool else x + y

    @staticmethod
    def mul(x, y):
        return x & y if x.dtype == torch.bool else x * y

    @staticmethod
    def maximum(x, y):
        return x | y if x.dtype == torch.bool else torch.maximum(x, y)

    @staticmethod
    def minimum(x, y):
        return x & y if x.dtype == torch.bool else torch.minimum(x, y)

    @staticmethod
    def floordiv(x, y):
        if x.is_floating_point():
            return torch.floor_divide(x.detach(), y.detach())  # torch has no derivative for it
        if x.dtype == torch.bool:
            x, y = x.to(torch.int32), y.to(torch.int32)
        zero = y == 0
        return torch.where(zero, torch.zeros_like(x), torch.floor_divide(x, torch.where(zero, torch.ones_like(y), y)))

    @staticmethod
    def mod(x, y):
        if x.is_floating_point():
            return torch.remainder(x, y)
        zero = y == 0
        return torch.where(zero, torch.zeros_like(x), torch.remainder(x, torch.where(zero, torch.ones_like(y), y)))

    @staticmethod
    def floordiv_s(x, c):
        return TR.floordiv(x, torch.tensor(c, dtype=x.dtype))

    @staticmethod
    def mod_s(x, c):
        return TR.mod(x, torch.tensor(c, dtype=x.dtype))

    @staticmethod
    def prod(x, axis, keepdim):
        if not x.ndim:
            return x
        dims = sorted((d % x.ndim for d in TR.dims(x, axis)), reverse=True)
        for d in dims:
            x = torch.prod(x, d, keepdim=True)
        return x if keepdim else x.reshape([s for i, s in enumerate(x.shape) if i not in dims])

    @staticmethod
    def dims(t, axis):
        if axis is None:
            return tuple(range(t.ndim))
        return axis if isinstance(axis, tuple) else (axis,)

    @staticmethod
    def sum(x, axis, keepdim):
        if not x.is_floating_point():
            x = x.to(torch.int64)
        return torch.sum(x, dim=TR.dims(x, axis), keepdim=keepdim) if x.ndim else x

    @staticmethod
    def mean(x, axis, keepdim):
        return torch.mean(x, dim=TR.dims(x, axis), keepdim=keepdim) if x.ndim else x

    @staticmethod
    def reduces(x, axis) -> bool:
        """Whether a max/min over `axis` reduces anything: over size-1 dims (or a 0-d tensor)
        lazygrad's max is the identity, whose gradient passes at a NaN where torch's mask
        x == max(x) sends NaN (docs/semantics.md, "Reductions")."""
        return x.ndim > 0 and any(x.shape[d] != 1 for d in TR.dims(x, axis))

    @staticmethod
    def keep(x, axis, keepdim):
        """The identity max/min: x with the size-1 dims dropped unless keepdim."""
        if not x.ndim or keepdim:
            return x
        dims = {d % x.ndim for d in TR.dims(x, axis)}
        return x.reshape(tuple(s for i, s in enumerate(x.shape) if i not in dims))

    @staticmethod
    def amax(x, axis, keepdim):
        return torch.amax(x, dim=TR.dims(x, axis), keepdim=keepdim) if TR.reduces(x, axis) else TR.keep(x, axis, keepdim)

    @staticmethod
    def amin(x, axis, keepdim):
        return torch.amin(x, dim=TR.dims(x, axis), keepdim=keepdim) if TR.reduces(x, axis) else TR.keep(x, axis, keepdim)

    @staticmethod
    def any(x, axis, keepdim):
        r = torch.any(x != 0, dim=TR.dims(x, axis), keepdim=keepdim) if x.ndim else x != 0
        return r.to(torch.uint8) if x.dtype == torch.uint8 else r

    @staticmethod
    def all(x, axis, keepdim):
        r = torch.all(x != 0, dim=TR.dims(x, axis), keepdim=keepdim) if x.ndim else x != 0
        return r.to(torch.uint8) if x.dtype == torch.uint8 else r

    @staticmethod
    def gelu_tanh(x):
        """gelu('tanh') as x * sigmoid(2z), lazygrad's form: torch's 0.5 x (1 + tanh z) rounds
        1 + tanh z to 0 for z < -19 in float64, so its gradient there is 0 where the true one is
        about 1e-14 (fuzz soak seed 114691877); the same function, its tail kept."""
        z = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        return x * torch.sigmoid(2 * z)

    @staticmethod
    def argmax(x, axis, keepdim, smallest=False):
        f = torch.argmin if smallest else torch.argmax
        if x.dtype == torch.bool:
            x = x.to(torch.int32)
        return f(x, dim=axis, keepdim=keepdim)  # int64, like lazygrad's

    @staticmethod
    def logsumexp(x, axis, keepdim):
        # a 0-d input too: torch's logsumexp of it is exp/log again (NaN gradient at NaN), not
        # the identity (fuzz seed 772435530 compared lazygrad, which matches torch, with the identity)
        return torch.logsumexp(x, dim=TR.dims(x, axis) if x.ndim else 0, keepdim=keepdim)

    @staticmethod
    def var(x, axis, keepdim, correction):
        return torch.var(x, dim=TR.dims(x, axis), keepdim=keepdim, correction=correction)

    @staticmethod
    def cumsum(x, axis):
        return torch.cumsum(x if x.is_floating_point() else x.to(torch.int64), dim=axis)

    @staticmethod
    def pad(x, widths, value):
        flat = [w for pair in reversed(widths) for w in pair]
        if x.dtype == torch.bool:
            return torch.nn.functional.pad(x.to(torch.int32), flat, value=int(value)).to(torch.bool)
        return torch.nn.functional.pad(x, flat, value=value)

    @staticmethod
    def getitem(x, key):
        """x[key] where slices may have negative steps (torch slices cannot)."""
        key = key if isinstance(key, tuple) else (key,)
        dim = 0
        plain = []
        flips = []
        for k in key:
            if k is None:
                plain.append(None)
                continue
            if k is Ellipsis:
                n_real = sum(1 for q in key if q is not None and q is not Ellipsis)
                skip = x.ndim - n_real
                plain.append(Ellipsis)
                dim += skip
                continue
            if isinstance(k, slice) and k.step is not None and k.step < 0:
                start, stop, step = k.indices(x.shape[dim])
                idx = list(range(start, stop, step))
                flips.append((dim, idx))
                plain.append(slice(None))
            else:
                plain.append(k)
            dim += 1 if not isinstance(k, int) else 1
        y = x
        for d, idx in flips:
            y = torch.index_select(y, d, torch.tensor(idx, dtype=torch.int64))
        return y[tuple(plain)]

    @staticmethod
    def matmul(x, y):
        if x.dtype == torch.bool:
            x, y = x.to(torch.int32), y.to(torch.int32)
        if not x.is_floating_point():
            return torch.matmul(x.to(torch.int64), y.to(torch.int64)).to(x.dtype)
        return torch.matmul(x, y)


class _Round32(torch.autograd.Function):
    """Round a float64 tensor to float32 precision; the gradient passes through in float64."""

    @staticmethod
    def forward(ctx, t):
        return t.to(torch.float32).to(torch.float64)

    @staticmethod
    def backward(ctx, g):
        return g
