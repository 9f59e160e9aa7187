"""Views: how a tensor's multi-index maps to a position in a flat buffer, with no copy.

A `View` is (shape, strides, offset, mask). Movement ops (reshape, permute, expand, pad,
shrink, flip) become new views. When a reshape cannot be expressed on one view (reshaping a
transposed tensor), a `ShapeTracker` stacks views: the top view's flat index is unravelled
into the shape of the view below it, and so on down to the buffer.

Public names: View, ShapeTracker, strides_for_shape, prod.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

Shape = tuple[int, ...]
Mask = tuple[tuple[int, int], ...] | None


def prod(xs: tuple[int, ...] | list[int]) -> int:
    return math.prod(xs)


@lru_cache(maxsize=4096)
def strides_for_shape(shape: Shape) -> tuple[int, ...]:
    """Row-major strides; size-1 dims get stride 0 so views compare equal regardless."""
    strides: list[int] = []
    acc = 1
    for s in reversed(shape):
        strides.append(acc if s != 1 else 0)
        acc *= s
    return tuple(reversed(strides))


def _canonical_strides(shape: Shape, strides: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(0 if s == 1 else st for s, st in zip(shape, strides))


# ---------------------------------------------------------------------------------------
# tiny string algebra for index expressions: keeps generated C readable (no "*1", "+0")
def s_add(a: str, b: str) -> str:
    if a == "0":
        return b
    if b == "0":
        return a
    if b.startswith("-"):
        return f"{a}{b}"
    return f"{a}+{b}"


def s_mul(a: str, c: int) -> str:
    if c == 0 or a == "0":
        return "0"
    if c == 1:
        return a
    return f"{a}*{c}" if _atomic(a) else f"({a})*{c}"


def s_div(a: str, c: int) -> str:
    if c == 1 or a == "0":
        return a
    return f"{a}/{c}" if _atomic(a) else f"({a})/{c}"


def s_mod(a: str, c: int) -> str:
    if c == 1:
        return "0"
    return f"{a}%{c}" if _atomic(a) else f"({a})%{c}"


def _atomic(a: str) -> bool:
    return a.replace("_", "").isalnum() or (a.startswith("(") and a.endswith(")") and a.count("(") == 1)


@dataclass(frozen=True)
class View:
    """One strided window onto a flat buffer. `mask` marks the in-bounds box (padding)."""

    shape: Shape
    strides: tuple[int, ...]
    offset: int = 0
    mask: Mask = None

    @staticmethod
    def create(shape: Shape, strides: tuple[int, ...] | None = None, offset: int = 0,
               mask: Mask = None) -> View:
        shape = tuple(int(s) for s in shape)
        strides = _canonical_strides(shape, strides if strides is not None else strides_for_shape(shape))
        if mask is not None:
            if any(lo >= hi for lo, hi in mask):
                # nothing is valid: the whole view reads padding
                mask = tuple((0, 0) for _ in shape)
                strides, offset = tuple(0 for _ in shape), 0
            elif all(lo == 0 and hi == s for (lo, hi), s in zip(mask, shape)):
                mask = None
        return View(shape, strides, offset, mask)

    @property
    def contiguous(self) -> bool:
        return self.offset == 0 and self.mask is None and self.strides == strides_for_shape(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    # --- movement ------------------------------------------------------------------------
    def permute(self, order: tuple[int, ...]) -> View:
        return View.create(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order),
                           self.offset, tuple(self.mask[i] for i in order) if self.mask else None)

    def expand(self, new_shape: Shape) -> View:
        if 0 in new_shape:
            return View.create(new_shape)
        mask = None
        if self.mask:
            mask = tuple(m if s == ns else ((0, ns) if m != (0, 0) else (0, 0))
                         for m, s, ns in zip(self.mask, self.shape, new_shape))
        strides = tuple(st if s == ns else 0 for st, s, ns in zip(self.strides, self.shape, new_shape))
        return View.create(new_shape, strides, self.offset, mask)

    def shrink(self, arg: tuple[tuple[int, int], ...]) -> View:
        offset = self.offset + sum(lo * st for (lo, _), st in zip(arg, self.strides))
        mask = None
        if self.mask:
            mask = tuple((max(mlo, lo) - lo, min(mhi, hi) - lo) for (mlo, mhi), (lo, hi) in zip(self.mask, arg))
        return View.create(tuple(hi - lo for lo, hi in arg), self.strides, offset, mask)

    def pad(self, arg: tuple[tuple[int, int], ...]) -> View:
        """Pad = shrink to a window larger than the data, with a mask marking the data."""
        if all(b == 0 and a == 0 for b, a in arg):
            return self
        new_shape = tuple(s + b + a for s, (b, a) in zip(self.shape, arg))
        old_mask = self.mask or tuple((0, s) for s in self.shape)
        mask = tuple((mlo + b, mhi + b) for (mlo, mhi), (b, _) in zip(old_mask, arg))
        offset = self.offset - sum(b * st for (b, _), st in zip(arg, self.strides))
        return View.create(new_shape, self.strides, offset, mask)

    def flip(self, axes: tuple[int, ...]) -> View:
        strides = list(self.strides)
        offset = self.offset
        mask = list(self.mask) if self.mask else None
        for ax in axes:
            s = self.shape[ax]
            offset += (s - 1) * strides[ax]
            strides[ax] = -strides[ax]
            if mask:
                lo, hi = mask[ax]
                mask[ax] = (s - hi, s - lo)
        return View.create(self.shape, tuple(strides), offset, tuple(mask) if mask else None)

    def reshape(self, new_shape: Shape) -> View | None:
        """The same elements in a new shape on this one view, or None if that needs a new view."""
        if self.shape == new_shape:
            return self
        if prod(new_shape) == 0 or prod(self.shape) == 0:
            return View.create(new_shape)
        if self.mask is not None:
            return self._reshape_masked(new_shape)
        # drop size-1 dims, then match groups of old dims to groups of new dims by product
        old = [(s, st) for s, st in zip(self.shape, self.strides) if s != 1]
        new = [s for s in new_shape if s != 1]
        new_strides: list[int] = []
        i = j = 0
        while i < len(old) or j < len(new):
            if i >= len(old) or j >= len(new):
                return None
            group_old = [old[i]]
            group_new = [new[j]]
            po, pn = old[i][0], new[j]
            i += 1
            j += 1
            while po != pn:
                if po < pn:
                    if i >= len(old):
                        return None
                    group_old.append(old[i])
                    po *= old[i][0]
                    i += 1
                else:
                    if j >= len(new):
                        return None
                    group_new.append(new[j])
                    pn *= new[j]
                    j += 1
            # the old group must be one strided run: stride[k] == stride[k+1]*shape[k+1]
            for (s0, st0), (s1, st1) in zip(group_old, group_old[1:]):
                if st0 != st1 * s1:
                    return None
            acc = group_old[-1][1]
            group_strides = []
            for s in reversed(group_new):
                group_strides.append(acc)
                acc *= s
            new_strides.extend(reversed(group_strides))
        it = iter(new_strides)
        strides = tuple(0 if s == 1 else next(it) for s in new_shape)
        return View.create(new_shape, strides, self.offset)

    def _reshape_masked(self, new_shape: Shape) -> View | None:
        # only adding or removing size-1 dims keeps a mask expressible
        if [s for s in self.shape if s != 1] != [s for s in new_shape if s != 1]:
            return None
        assert self.mask is not None
        keep = [(s, st, m) for s, st, m in zip(self.shape, self.strides, self.mask) if s != 1]
        if any(m == (0, 0) for s, st, m in zip(self.shape, self.strides, self.mask) if s == 1):
            if not new_shape:
                # a 0-d view has no dim to carry "nothing valid": a view of its own on top keeps
                # this one's mask (a bare 0-d view would read the buffer: a zero-size one is NULL)
                return None
            return View.create(new_shape, mask=tuple((0, 0) for _ in new_shape))
        it = iter(keep)
        strides, mask = [], []
        for s in new_shape:
            if s == 1:
                strides.append(0)
                mask.append((0, 1))
            else:
                _, st, m = next(it)
                strides.append(st)
                mask.append(m)
        return View.create(new_shape, tuple(strides), self.offset, tuple(mask))

    # --- index expressions ----------------------------------------------------------------
    def expr(self, idxs: list[str]) -> tuple[str, list[str]]:
        """C expression of the flat buffer index for multi-index `idxs`, plus validity terms."""
        out = str(self.offset) if self.offset else "0"
        terms = "0"
        for i, st in zip(idxs, self.strides):
            terms = s_add(terms, s_mul(i, st))
        out = s_add(terms, str(self.offset)) if self.offset else terms
        valid: list[str] = []
        if self.mask:
            for i, (lo, hi), s in zip(idxs, self.mask, self.shape):
                if lo == 0 and hi == s:
                    continue
                if lo >= hi:
                    return "0", ["0"]
                if lo > 0:
                    valid.append(f"{i}>={lo}")
                if hi < s:
                    valid.append(f"{i}<{hi}")
        return out, valid


@dataclass(frozen=True)
class ShapeTracker:
    """A stack of views; views[-1] has the logical shape, views[0] indexes the buffer."""

    views: tuple[View, ...]

    @staticmethod
    def from_shape(shape: Shape) -> ShapeTracker:
        return ShapeTracker((View.create(shape),))

    @property
    def shape(self) -> Shape:
        return self.views[-1].shape

    @property
    def contiguous(self) -> bool:
        return len(self.views) == 1 and self.views[0].contiguous

    @property
    def single(self) -> bool:
        return len(self.views) == 1

    def _top(self, v: View) -> ShapeTracker:
        return ShapeTracker(self.views[:-1] + (v,)).simplify()

    def permute(self, order: tuple[int, ...]) -> ShapeTracker:
        return self._top(self.views[-1].permute(order))

    def expand(self, shape: Shape) -> ShapeTracker:
        return self._top(self.views[-1].expand(shape))

    def shrink(self, arg: tuple[tuple[int, int], ...]) -> ShapeTracker:
        return self._top(self.views[-1].shrink(arg))

    def pad(self, arg: tuple[tuple[int, int], ...]) -> ShapeTracker:
        return self._top(self.views[-1].pad(arg))

    def flip(self, axes: tuple[int, ...]) -> ShapeTracker:
        return self._top(self.views[-1].flip(axes))

    def reshape(self, shape: Shape) -> ShapeTracker:
        v = self.views[-1].reshape(shape)
        if v is not None:
            return self._top(v)
        return ShapeTracker(self.views + (View.create(shape),)).simplify()

    def compose(self, top: ShapeTracker) -> ShapeTracker:
        """`top` indexes the elements of self's logical shape (contiguously); stack them."""
        assert prod(top.views[0].shape) == 0 or True
        return ShapeTracker(self.views + top.views).simplify()

    def simplify(self) -> ShapeTracker:
        """Fold a contiguous top view into the view below it (it is just a reshape)."""
        views = list(self.views)
        while len(views) >= 2:
            top = views[-1]
            if top.contiguous:
                merged = views[-2].reshape(top.shape)
                if merged is not None:
                    views[-2:] = [merged]
                    continue
            below = views[-2]
            if below.contiguous and top.mask is None and prod(below.shape) == prod(top.shape):
                # contiguous below: the top view's flat index is the buffer index directly
                views[-2:] = [View.create(top.shape, top.strides, top.offset)]
                continue
            if below.contiguous and top.mask is not None and prod(below.shape) == prod(top.shape):
                views[-2:] = [top]
                continue
            merged = _merge_permuted(top, below)
            if merged is not None:
                views[-2:] = [merged]
                continue
            break
        return ShapeTracker(tuple(views))

    def expr(self, idxs: list[str]) -> tuple[str, list[str]]:
        """Buffer index and validity terms for the logical multi-index `idxs`."""
        idx, valid = self.views[-1].expr(idxs)
        for v in reversed(self.views[:-1]):
            sub: list[str] = []
            acc = 1
            for s in reversed(v.shape):
                if s == 1:
                    sub.append("0")
                else:
                    sub.append(s_mod(s_div(idx, acc), s) if acc * s < _upper(v) else s_div(idx, acc))
                acc *= s
            idx, more = v.expr(list(reversed(sub)))
            valid += more
        return idx, valid


def _merge_permuted(top: View, below: View) -> View | None:
    """If `top` only permutes the dims of `below`'s shape (a transposed contiguous view, the
    common case of a row-wise loop running over permuted axes), the pair is `below` permuted."""
    if top.mask is not None or top.offset != 0 or prod(top.shape) != prod(below.shape) or prod(top.shape) == 0:
        return None
    cstr = strides_for_shape(below.shape)
    by_stride = {st: j for j, (sz, st) in enumerate(zip(below.shape, cstr)) if sz != 1}
    used: set[int] = set()
    strides, mask = [], []
    for sz, st in zip(top.shape, top.strides):
        if sz == 1:
            strides.append(0)
            mask.append((0, 1))
            continue
        j = by_stride.get(st)
        if j is None or j in used or below.shape[j] != sz:
            return None
        used.add(j)
        strides.append(below.strides[j])
        mask.append(below.mask[j] if below.mask else (0, sz))
    if len(used) != len(by_stride):
        return None
    if below.mask and any(below.mask[j] != (0, 1) for j, sz in enumerate(below.shape) if sz == 1):
        return None
    return View.create(top.shape, tuple(strides), below.offset, tuple(mask) if below.mask else None)


def _upper(v: View) -> int:
    # the flat index arriving at view v is < prod(v.shape): the outermost dim needs no modulo
    return prod(v.shape)
