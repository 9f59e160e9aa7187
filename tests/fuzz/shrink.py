"""Shrinking a failing program and printing it as a reproducer.

`shrink` is delta debugging on the op list and the input shapes, keeping every change after
which the program still fails *the same way* (same failure kind): make an earlier value the
only output, drop ops (a use of a dropped op's value is rewired to one of its operands), drop
dead ops and unused leaves, cut input dims down to size 1 or half. Every candidate is checked
from scratch (references and lazygrad), so each step keeps a valid, failing program.

`reproducer` prints the program as a minimal Python snippet: the leaves as literal arrays, one
lazygrad line per op, the realize (inside `lg.config.override(fuse=False)` for an unfused
failure), and the value the reference expects.

Public names: shrink, reproducer.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .check import Failure, array_literal, check_program, leaf_code, references, torch_grads
from .ops import TABLE
from .program import Program, code_for
from .refs import R


def _live(p: Program) -> Program:
    """Drop ops no output (or the gradient output) depends on, and unused leaves."""
    need = set(p.outputs) | ({p.grad_output} if p.grad_output else set())
    keep = []
    for ins in reversed(p.instrs):
        if ins.name in need:
            keep.append(ins)
            need |= set(ins.args)
    q = p.copy(error=None)
    q.instrs = list(reversed(keep))
    q.leaves = [leaf for leaf in p.leaves if leaf.name in need]
    return q


def _fails(p: Program, failure: Failure) -> bool:
    try:
        out = check_program(p, unfused=failure.kind.startswith("unfused"), check_refs=failure.kind == "reference")
    except Exception:  # noqa: BLE001 - a candidate the fuzzer cannot even evaluate is invalid
        return False
    return out.failure is not None and out.failure.same_as(failure)


def shrink(p: Program, failure: Failure, budget_s: float = 120.0, log: Callable[[str], None] | None = None) -> Program:
    """The smallest program found within `budget_s` that still fails like `failure`."""
    start = time.monotonic()
    if failure.kind in ("no-error", "error-type"):
        return p  # error probes are one op on the program's values: shown as they are
    best = p
    progress = True
    while progress and time.monotonic() - start < budget_s:
        progress = False
        for cand in _candidates(best):
            if time.monotonic() - start > budget_s:
                break
            if _fails(cand, failure):
                best = cand
                progress = True
                if log:
                    log(f"  shrunk to {len(best.instrs)} ops, {sum(leaf.data.size for leaf in best.leaves)} input elements")
                break
    return best


def _candidates(p: Program):
    names = [ins.name for ins in p.instrs]
    # 1. an earlier value as the only output
    for name in names[:-1]:
        q = p.copy()
        q.outputs = [name]
        if q.grad_output is not None:
            q.grad_output = name if q.dtypes.get(name, "").startswith("float") else None
            q = _refit_weight(q)
        yield _live(q)
    if len(p.outputs) > 1:
        q = p.copy()
        q.outputs = [p.outputs[0]]
        yield _live(q)
    if p.grad_output is not None and p.grad_output not in p.outputs[:1]:
        q = p.copy()
        q.outputs = [p.grad_output]
        yield _live(q)
    # 2. drop an op: its uses read one of its operands instead
    for i, ins in enumerate(p.instrs):
        for a in ins.args:
            q = p.copy()
            q.instrs = [j for j in p.instrs if j is not ins]
            q.instrs = [_rename(j, ins.name, a) for j in q.instrs]
            q.outputs = [a if o == ins.name else o for o in p.outputs]
            if q.grad_output == ins.name:
                q.grad_output = a if a.startswith("v") else None
            yield _live(q)
    # 3. smaller inputs
    for li, leaf in enumerate(p.leaves):
        for dim, s in enumerate(leaf.data.shape):
            for new in sorted({1, s // 2}):
                if 0 < new < s:
                    q = p.copy()
                    idx = tuple(slice(0, new) if k == dim else slice(None) for k in range(leaf.data.ndim))
                    q.leaves[li] = type(leaf)(leaf.name, leaf.dtype, leaf.data[idx].copy(), leaf.grad, leaf.full)
                    if q.grad_weight is not None:
                        q = _refit_weight(q)
                    yield q
    # 4. simpler values: zeros where they do not matter (only a change is a candidate)
    for li, leaf in enumerate(p.leaves):
        if leaf.data.size > 1 and not leaf.is_full:
            flat = leaf.data.reshape(-1).copy()
            half = flat[len(flat) // 2:]
            if not np.any(half != 0) and not np.any(np.signbit(half.astype(np.float64))):
                continue
            half[...] = 0
            q = p.copy()
            q.leaves[li] = type(leaf)(leaf.name, leaf.dtype, flat.reshape(leaf.data.shape), leaf.grad, leaf.full)
            yield q


def _refit_weight(q: Program) -> Program:
    """After an input shrank, the gradient weight gets the gradient output's new shape (the
    same values, cycled)."""
    if q.grad_output is None or q.grad_weight is None:
        return q
    try:
        refs = references(q)
    except Exception:  # noqa: BLE001
        return q
    shape = np.shape(refs.values[q.grad_output])
    q.grad_weight = np.resize(q.grad_weight, shape).astype(q.grad_weight.dtype) if q.grad_weight.size else \
        np.ones(shape, q.grad_weight.dtype)
    return q


def _rename(ins, old: str, new: str):
    if old not in ins.args:
        return ins
    return type(ins)(ins.name, ins.row, tuple(new if a == old else a for a in ins.args), ins.params)


def reproducer(p: Program, kind: str, message: str) -> str:
    """A standalone snippet that rebuilds the failing program and shows got vs expected."""
    lines = ["import numpy as np", "import lazygrad as lg", "from lazygrad import Tensor",
             'nan, inf = float("nan"), float("inf")', f"# fuzz seed {p.seed}: {kind}: {message}"]
    body = [f"{leaf.name} = {leaf_code(leaf, literal=True)}" for leaf in p.leaves]
    for ins in p.instrs + ([p.error] if kind in ("no-error", "error-type") and p.error else []):
        body.append(f"{ins.name} = {code_for(TABLE[ins.row].lg, list(ins.args), ins.params)}")
    want: list[str] = []
    if kind in ("no-error", "error-type"):
        body.append("# torch raises here; lazygrad should raise (ValueError/IndexError/TypeError) too")
    elif kind.endswith("grad") and p.grad_output is not None:
        wrt = [leaf.name for leaf in p.leaves if leaf.grad]
        w = array_literal(p.grad_weight, p.dtypes[p.grad_output])
        body.append(f"grads = lg.grad({p.grad_output}, [{', '.join(wrt)}], "
                    f"grad_output=Tensor({w}, dtype=lg.{p.dtypes[p.grad_output]}), allow_unused=True)")
        body.append("for g in grads:\n    print(g.numpy())")
        try:
            g = torch_grads(p, None) or {}
            for name in wrt:
                want.append(f"# torch float64 d{p.grad_output}/d{name}: "
                            f"{array_literal(R.rnd(g[name], p.dtypes.get(name, 'float64')), 'float64')}")
        except Exception as e:  # noqa: BLE001
            want.append(f"# (torch reference failed: {e})")
    else:
        for o in p.outputs:
            body.append(f"print({o}.numpy())")
        try:
            refs = references(p)
            for o in p.outputs:
                want.append(f"# expected {o}: {array_literal(np.asarray(refs.values[o]), refs.dtypes[o])}")
        except Exception as e:  # noqa: BLE001
            want.append(f"# (reference failed: {e})")
    if kind.startswith("unfused"):
        body = ["with lg.config.override(fuse=False):"] + ["    " + "\n    ".join(b.splitlines()) for b in body]
    return "\n".join(lines + body + want)
