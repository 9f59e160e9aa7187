"""einsum: torch.einsum's equations lowered onto the nodes lazygrad already fuses.

An equation is parsed into one subscript letter per dim (an ellipsis becomes generated letters,
broadcast from the right). Each operand first loses its repeated letters (a diagonal: a strided
view) and the letters no one else needs (a sum). Operands are then combined left to right: a
pair that contracts letters and keeps letters of both sides is a (batched) MATMUL, so it is the
same kernel as `a @ b` with its epilogue fused; a pair without kept letters on one side is a
broadcast multiply and a sum (one reduce kernel, like `(a * b).sum()`); a pair that contracts
nothing is a broadcast multiply (elementwise). The result is permuted into the output order
(a view).

Public names: einsum.
"""
from __future__ import annotations

import string
from collections.abc import Sequence

from lazygrad import dtypes as dt
from lazygrad.frontend.tensor import Tensor
from lazygrad.ir.view import prod


def _parse(equation: str, ndims: list[int]) -> tuple[list[list[str]], list[str]]:
    """The letters of each operand and of the output (ellipses expanded)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    specs = lhs.split(",")
    if len(specs) != len(ndims):
        raise ValueError(f"einsum: {equation!r} has {len(specs)} operand subscripts for {len(ndims)} operands")
    used = set(c for c in eq if c.isalpha())
    for c in eq:
        if not (c.isalpha() or c in ",.->"):
            raise ValueError(f"einsum: invalid subscript {c!r} in {equation!r} (letters, ',', '...', '->')")
    free = [c for c in string.ascii_letters if c not in used]
    n_ell = [nd - (len(s) - 3) if "..." in s else 0 for s, nd in zip(specs, ndims)]
    width = max(n_ell + [0])
    ell = free[:width]
    letters = []
    for s, nd, k in zip(specs, ndims, n_ell):
        if s.count("...") > 1 or s.replace("...", "").count(".") or k < 0:
            raise ValueError(f"einsum: subscripts {s!r} do not fit an operand with {nd} dims")
        parts = s.split("...")
        ls = list(parts[0]) + (ell[width - k:] if len(parts) == 2 else []) + (list(parts[1]) if len(parts) == 2 else [])
        if len(ls) != nd:
            raise ValueError(f"einsum: subscripts {s!r} name {len(ls)} dims of an operand with {nd} dims")
        letters.append(ls)
    if arrow:
        if rhs.count("...") > 1:
            raise ValueError(f"einsum: more than one ellipsis in the output of {equation!r}")
        parts = rhs.split("...")
        out = list(parts[0]) + (ell + list(parts[1]) if len(parts) == 2 else [])
        if len(set(out)) != len(out) or any(c not in {x for ls in letters for x in ls} for c in out):
            raise ValueError(f"einsum: output subscripts of {equation!r} repeat a letter or name one no operand has")
    else:  # torch's implicit output: the ellipsis, then the letters seen once, sorted
        counts: dict[str, int] = {}
        for ls in letters:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and c not in ell)
    return letters, out


def _diagonal(x: Tensor, ls: list[str]) -> tuple[Tensor, list[str]]:
    """Remove repeated letters: the diagonal over the two dims (a strided view of their flat
    product)."""
    while len(set(ls)) != len(ls):
        c = next(c for c in ls if ls.count(c) > 1)
        i = ls.index(c)
        j = ls.index(c, i + 1)
        n = x.shape[i]
        if x.shape[j] != n:
            raise ValueError(f"einsum: the repeated subscript {c!r} has sizes {n} and {x.shape[j]}")
        rest = [k for k in range(x.ndim) if k not in (i, j)]
        x = x.permute(*rest, i, j).reshape(*[x.shape[k] for k in rest], n * n)[..., ::n + 1]
        ls = [ls[k] for k in rest] + [c]
    return x, ls


def _sum_out(x: Tensor, ls: list[str], needed: set[str]) -> tuple[Tensor, list[str]]:
    axes = tuple(k for k, c in enumerate(ls) if c not in needed)
    if not axes:
        return x, ls
    return x.sum(axes, dtype=x.dtype), [c for c in ls if c in needed]


def _expand(x: Tensor, ls: list[str], size: dict[str, int]) -> Tensor:
    want = tuple(size[c] for c in ls)
    return x if x.shape == want else x.expand(want)


def _contract(a: Tensor, la: list[str], b: Tensor, lb: list[str], keep: set[str],
              size: dict[str, int]) -> tuple[Tensor, list[str]]:
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    a, b = _expand(a, la, size), _expand(b, lb, size)
    if summed and left and right:
        # a batched matrix product: (batch, L, K) @ (batch, K, R)
        bs = [size[c] for c in batch]
        l_, k_, r_ = prod(tuple(size[c] for c in left)), prod(tuple(size[c] for c in summed)), \
            prod(tuple(size[c] for c in right))
        am = a.permute(*[la.index(c) for c in batch + left + summed]).reshape(*bs, l_, k_)
        bm = b.permute(*[lb.index(c) for c in batch + summed + right]).reshape(*bs, k_, r_)
        out = (am @ bm).reshape(*bs, *[size[c] for c in left], *[size[c] for c in right])
        return out, batch + left + right
    # a broadcast multiply over all letters, then a sum of the contracted ones (one kernel)
    letters = batch + left + right + summed
    pa = a.permute(*[la.index(c) for c in letters if c in la]).reshape(
        *[size[c] if c in la else 1 for c in letters])
    pb = b.permute(*[lb.index(c) for c in letters if c in lb]).reshape(
        *[size[c] if c in lb else 1 for c in letters])
    prod_ = pa * pb
    if not summed:
        return prod_, letters
    n = len(letters) - len(summed)
    return prod_.sum(tuple(range(n, len(letters))), dtype=prod_.dtype), letters[:n]


def einsum(equation: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """torch.einsum: `einsum("bij,bjk->bik", a, b)` (or the operands as one list); ellipses,
    repeated subscripts (diagonals), the implicit output (no '->') and size-1 broadcasting like
    torch. Contractions become matmul or multiply-and-sum nodes, fused like those."""
    ops = list(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else list(operands)
    if not ops:
        raise ValueError("einsum: no operands")
    ops = [t if isinstance(t, Tensor) else Tensor(t) for t in ops]
    letters, out = _parse(equation, [t.ndim for t in ops])
    d = ops[0].dtype
    for t in ops[1:]:
        d = dt.promote(d, t.dtype)
    size: dict[str, int] = {}
    for t, ls in zip(ops, letters):
        for c, s in zip(ls, t.shape):
            if size.get(c, 1) != 1 and s != 1 and size[c] != s:
                raise ValueError(f"einsum: subscript {c!r} has sizes {size[c]} and {s} in {equation!r} "
                                 f"(shapes {[t.shape for t in ops]})")
            size[c] = s if size.get(c, 1) == 1 else size[c]
    xs = []
    for k, (t, ls) in enumerate(zip(ops, letters)):
        t, ls = _diagonal(t.cast(d), ls)
        others = {c for j, l2 in enumerate(letters) if j != k for c in l2}
        xs.append(_sum_out(t, ls, others | set(out)))
    acc, la = xs[0]
    for k in range(1, len(xs)):
        later = {c for _, l2 in xs[k + 1:] for c in l2} | set(out)
        b, lb = xs[k]
        acc, la = _contract(acc, la, b, lb, later, size)
        acc, la = _sum_out(acc, la, later)
    acc, la = _sum_out(acc, la, set(out))
    acc = _expand(acc, la, size)
    return acc.permute(*[la.index(c) for c in out]) if la != out else acc
