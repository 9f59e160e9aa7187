"""The IR checkers and printers: every graph rule fires on a hand-made bad node (built with
`graph.make`, past the builders' asserts) and names it; real graphs of every kernel kind pass;
the lowered checker catches corrupted kernels; the printers' output; LAZYGRAD_VERIFY's hooks
in the engine, and that verifying changes no kernel."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

import lazygrad as lg
import lazygrad.nn.functional as F
from lazygrad import Tensor
from lazygrad import dtypes as dt
from lazygrad.codegen.lower import Region, LoweredKernel, lower
from lazygrad.codegen.lowered_check import LoweredIRError, format_lowered, verify_lowered
from lazygrad.config import override, settings
from lazygrad.engine import realize as engine
from lazygrad.ir import graph as g
from lazygrad.ir.graph import ConvArg, GatherArg, SortArg, toposort
from lazygrad.ir.ops import Op
from lazygrad.ir.printer import format_graph, format_node
from lazygrad.ir.verify import CHECKS, IRError, describe_node, verify_graph
from lazygrad.ir.view import ShapeTracker, View
from lazygrad.runtime.device import Buffer
from lazygrad.scheduling.scheduler import schedule

f32, i32 = dt.float32, dt.int32


def buf(shape=(2, 3), dtype=np.float32) -> g.Node:
    """A fresh realized buffer node (fresh: no other test shares it through hash-consing)."""
    return Tensor(np.zeros(shape, dtype)).node


def _x():
    return buf()


# (case, a function building the bad node, a fragment of the rule the message must state)
BAD = [
    ("arity", lambda: g.make(Op.ADD, (_x(),), (2, 3), f32), "add takes 2 sources, has 1"),
    ("elementwise shapes", lambda: g.make(Op.ADD, (_x(), buf((3, 2))), (2, 3), f32),
     "sources of shapes (2, 3), (3, 2) differ from the output shape (2, 3)"),
    ("binary dtypes", lambda: g.make(Op.ADD, (_x(), buf(dtype=np.int32)), (2, 3), f32),
     "sources of dtypes float32, int32 differ from the output dtype float32"),
    ("unary dtype", lambda: g.make(Op.EXP, (_x(),), (2, 3), dt.float64), "differ from the output dtype float64"),
    ("comparison gives bool", lambda: g.make(Op.CMPLT, (_x(), _x()), (2, 3), f32), "cmplt gives bool, not float32"),
    ("comparison operands", lambda: g.make(Op.CMPEQ, (_x(), buf(dtype=np.int32)), (2, 3), dt.bool_),
     "cmpeq compares sources of different dtypes float32, int32"),
    ("not gives bool", lambda: g.make(Op.NOT, (_x(),), (2, 3), f32), "not gives bool"),
    ("where condition", lambda: g.make(Op.WHERE, (_x(), _x(), _x()), (2, 3), f32), "where's condition is float32, not bool"),
    ("where branches", lambda: g.make(Op.WHERE, (buf(dtype=np.bool_), _x(), buf(dtype=np.int32)), (2, 3), f32),
     "where's branches are float32, int32"),
    ("bitcast size", lambda: g.make(Op.BITCAST, (_x(),), (2, 3), dt.int64), "bitcast of float32 to int64"),
    ("shift of floats", lambda: g.make(Op.SHL, (_x(), _x()), (2, 3), f32), "shl of float32: shifts are for integers"),
    ("reduce axis range", lambda: g.make(Op.SUM, (_x(),), (2, 3), f32, (2,)), "reduce axes (2,) are not"),
    ("reduce axes sorted", lambda: g.make(Op.SUM, (_x(),), (1, 1), f32, (1, 0)), "reduce axes (1, 0) are not"),
    ("reduce keeps 1s", lambda: g.make(Op.SUM, (_x(),), (2,), f32, (1,)), "over (1,) gives (2, 1), not (2,)"),
    ("reduce dtype", lambda: g.make(Op.RMAX, (_x(),), (2, 1), i32, (1,)), "changes the dtype float32 to int32"),
    ("reshape numel", lambda: g.make(Op.RESHAPE, (_x(),), (4,), f32, (4,)), "reshape of (2, 3) (6 elements) to (4,)"),
    ("reshape arg", lambda: g.make(Op.RESHAPE, (_x(),), (6,), f32, (3, 2)), "reshape arg (3, 2) is not the shape (6,)"),
    ("permute order", lambda: g.make(Op.PERMUTE, (_x(),), (2, 2), f32, (0, 0)), "(0, 0) is not a permutation of 2 axes"),
    ("permute shape", lambda: g.make(Op.PERMUTE, (_x(),), (2, 3), f32, (1, 0)), "gives (3, 2), not (2, 3)"),
    ("expand non-1 dim", lambda: g.make(Op.EXPAND, (_x(),), (4, 3), f32, (4, 3)), "only size-1 dims grow"),
    ("expand dims", lambda: g.make(Op.EXPAND, (_x(),), (1, 2, 3), f32, (1, 2, 3)), "only size-1 dims grow"),
    ("pad negative", lambda: g.make(Op.PAD, (_x(),), (2, 2), f32, (((0, 0), (0, -1)), 0.0)), "pad widths"),
    ("pad shape", lambda: g.make(Op.PAD, (_x(),), (2, 4), f32, (((0, 0), (1, 1)), 0.0)), "gives (2, 5), not (2, 4)"),
    ("pad value", lambda: g.make(Op.PAD, (_x(),), (2, 5), f32, (((0, 0), (1, 1)), "zero")), "pad value 'zero'"),
    ("shrink bounds", lambda: g.make(Op.SHRINK, (_x(),), (2, 2), f32, ((0, 2), (2, 4))), "shrink bounds"),
    ("shrink shape", lambda: g.make(Op.SHRINK, (_x(),), (2, 2), f32, ((0, 2), (1, 2))), "gives (2, 1), not (2, 2)"),
    ("flip axes", lambda: g.make(Op.FLIP, (_x(),), (2, 3), f32, (2,)), "flip axes (2,)"),
    ("view dtype", lambda: g.make(Op.PERMUTE, (_x(),), (3, 2), i32, (1, 0)), "view changes the dtype float32 to int32"),
    ("detach shape", lambda: g.make(Op.DETACH, (_x(),), (3, 2), f32), "differ from the output shape (3, 2)"),
    ("matmul inner dims", lambda: g.make(Op.MATMUL, (_x(), _x()), (2, 3), f32), "matmul of (2, 3) and (2, 3)"),
    ("matmul shape", lambda: g.make(Op.MATMUL, (_x(), buf((3, 4))), (2, 3), f32), "gives (2, 4), not (2, 3)"),
    ("conv2d shape", lambda: g.make(Op.CONV2D, (buf((1, 2, 5, 5)), buf((4, 2, 3, 3))), (1, 4, 5, 5), f32,
                                    ConvArg((1, 1), (0, 0), (1, 1), 1)), "gives (1, 4, 3, 3), not (1, 4, 5, 5)"),
    ("conv2d groups", lambda: g.make(Op.CONV2D, (buf((1, 2, 5, 5)), buf((4, 2, 3, 3))), (1, 4, 3, 3), f32,
                                     ConvArg((1, 1), (0, 0), (1, 1), 2)), "in 2 groups: channels do not match"),
    ("conv2d arg", lambda: g.make(Op.CONV2D, (buf((1, 2, 5, 5)), buf((4, 2, 3, 3))), (1, 4, 3, 3), f32, (1, 1)),
     "is not a ConvArg"),
    ("argsort dtype", lambda: g.make(Op.SORT, (_x(),), (2, 3), f32, SortArg(False, True)), "argsort gives integer indices"),
    ("sort dtype", lambda: g.make(Op.SORT, (_x(),), (2, 3), i32, SortArg(False, False)), "sorted values are float32"),
    ("gather index dtype", lambda: g.make(Op.GATHER, (_x(), _x()), (2, 3), f32, GatherArg(1)), "gather indices are float32"),
    ("gather axis", lambda: g.make(Op.GATHER, (_x(), buf(dtype=np.int32)), (2, 3), f32, GatherArg(2)), "along axis 2"),
    ("gather broadcast", lambda: g.make(Op.GATHER, (_x(), buf((2, 2), np.int32)), (2, 3), f32, GatherArg(1)),
     "indices (2, 2) do not broadcast to (2, 3)"),
    ("contiguous shape", lambda: g.make(Op.CONTIGUOUS, (_x(),), (6,), f32), "differ from the output shape (6,)"),
    ("buffer unrealized", lambda: g.make(Op.BUFFER, (), (2,), f32), "a buffer node without a realized buffer"),
    ("buffer size", lambda: g.buffer_node(Buffer(6, f32), (2, 2), f32), "realized buffer holds 6 elements, the node 4"),
    ("buffer dtype", lambda: g.buffer_node(Buffer(4, i32), (2, 2), f32), "realized buffer is int32, the node float32"),
    ("const shape", lambda: g.make(Op.CONST, (), (2,), f32, 1.0), "a constant has shape (), not (2,)"),
    ("const type", lambda: g.make(Op.CONST, (), (), f32, "1"), "constant '1' is a str"),
    ("const whole", lambda: g.make(Op.CONST, (), (), i32, 2.5), "constant 2.5 is not a whole number for int32"),
    ("const not finite", lambda: g.make(Op.CONST, (), (), i32, float("inf")), "constant inf is not a whole number"),
    ("rand dtype", lambda: g.make(Op.RAND, (), (3,), dt.float64, 7), "rand gives float32, not float64"),
    ("rand seed", lambda: g.make(Op.RAND, (), (3,), f32, -1), "rand seed -1"),
    ("shape sizes", lambda: g.make(Op.NEG, (buf((0,)),), (-1,), f32), "shape (-1,) is not a tuple of sizes >= 0"),
    ("dtype", lambda: g.make(Op.NEG, (_x(),), (2, 3), "float32"), "dtype 'float32' is not a lazygrad dtype"),
    # an equal copy is not enough: the renderers test `dtype is bool_`
    ("dtype copy", lambda: g.make(Op.NEG, (_x(),), (2, 3), dataclasses.replace(f32)), "is not a lazygrad dtype (one of"),
]


@pytest.mark.parametrize("make_bad, rule", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_each_graph_rule_fires_and_names_the_node(make_bad, rule):
    bad = make_bad()
    with pytest.raises(IRError) as e:
        verify_graph(toposort([bad]))
    assert e.value.node is bad
    assert rule in str(e.value), str(e.value)
    assert f"at #{bad.uid} {bad.op.value} {bad.shape}" in str(e.value)
    assert f"from {bad.origin}" in str(e.value) and "test_ir_verify.py" in bad.origin


def test_the_rule_table_covers_every_op_from_the_op_table():
    # every op gets the common checks plus its category's: the arity rule comes from the table
    assert set(CHECKS) == set(Op)
    common = CHECKS[Op.ADD][0]
    assert all(CHECKS[op][0] is common and len(CHECKS[op]) >= 2 for op in Op)
    # a comparison's bool-result rule replaces the arithmetic same-dtype rule of its category
    assert CHECKS[Op.CMPLT] != CHECKS[Op.ADD]


def test_a_source_created_after_its_node_is_caught():
    x = buf()
    n = g.make(Op.NEG, (x,), (2, 3), f32)
    later = g.make(Op.EXP, (x,), (2, 3), f32)
    n.srcs = (later,)  # what a pass rewiring a node in place would do
    with pytest.raises(IRError, match=rf"source #{later.uid} was created after the node .* at #{n.uid} neg"):
        verify_graph([x, later, n])


def test_dependency_order_and_duplicates_are_checked():
    x = buf()
    n = g.make(Op.NEG, (x,), (2, 3), f32)
    with pytest.raises(IRError, match=rf"source #{x.uid} does not come before the node.* at #{n.uid} neg"):
        verify_graph([n, x])
    with pytest.raises(IRError, match="appears twice"):
        verify_graph([x, x])
    # the sources of a realized node are not part of what a realize walks
    n.realized = Buffer(6, f32)
    verify_graph([n])


def _graphs() -> dict[str, list[Tensor]]:
    """Real graphs, forward and gradient, that make one kernel kind or more each."""
    r = np.random.default_rng(0)
    x = Tensor(r.random((4, 8), dtype=np.float32), requires_grad=True)
    w = Tensor(r.random((8, 5), dtype=np.float32), requires_grad=True)
    big_a = Tensor(r.random((40, 48), dtype=np.float32))
    big_b = Tensor(r.random((48, 40), dtype=np.float32))
    t = Tensor(np.array([1, 2, 0, 3], dtype=np.int32))
    im = Tensor(r.random((1, 2, 6, 6), dtype=np.float32), requires_grad=True)
    k = Tensor(r.random((3, 2, 3, 3), dtype=np.float32), requires_grad=True)
    loss = (F.cross_entropy(x @ w[:, :4], t) + F.conv2d(im, k, padding=1).relu().mean()
            + x.sort(1)[0].sum() + x[t].flip(0).pad(((1, 0), (0, 2))).max() + (Tensor.rand(4, 8) < x).sum())
    gx, gw, gim, gk = lg.grad(loss, [x, w, im, k])
    return {"elementwise": [(x * 2 + 1).exp()], "reduce": [x.sum(1)], "rowwise": [x.softmax(1)],
            "rowtotal": [F.cross_entropy(x, t)], "matmul": [(x @ w).relu()], "conv": [F.conv2d(im, k)],
            "sort": [x.sort(1)[0]], "gather": [x[t]], "multi-output": [x.exp(), x.exp().sum(1)],
            "packed matmul": [big_a @ big_b], "loss and gradients": [loss, gx, gw, gim, gk]}


def test_real_graphs_and_their_lowered_kernels_of_every_kind_pass():
    kinds = set()
    with override(matmul_pack="1", verify=True):  # the engine checks the graph and each lowered kernel
        for name, outs in _graphs().items():
            nodes = [o.node for o in outs]
            verify_graph(toposort(nodes))
            kinds |= {k.kind for k in engine.schedule_kernels(nodes)}
    assert kinds == {"elementwise", "reduce", "rowwise", "rowtotal", "matmul", "conv", "sort", "gather"}


# --- the printer ------------------------------------------------------------------------------------
def test_format_graph_prints_one_line_per_node_in_dependency_order():
    a = g.make(Op.BUFFER, (), (2, 3), f32, origin="t.py:1")
    c = g.make(Op.CONST, (), (), f32, 2.0, origin="t.py:2")
    r = g.make(Op.RESHAPE, (c,), (1, 1), f32, (1, 1), origin="t.py:2")
    e = g.make(Op.EXPAND, (r,), (2, 3), f32, (2, 3), origin="t.py:2")
    m = g.make(Op.MUL, (a, e), (2, 3), f32, origin="t.py:3")
    s = g.make(Op.SUM, (m,), (2, 1), f32, (1,), origin="grad of exp #9 @ t.py:4")
    s.label = "exp_grad"
    assert format_graph([s]).splitlines() == [
        f"#{a.uid:<6} buffer                   (2, 3)         float32  ()  <- t.py:1",
        f"#{c.uid:<6} const 2.0                ()             float32  ()  <- t.py:2",
        f"#{r.uid:<6} reshape (1, 1)           (1, 1)         float32  (#{c.uid})  <- t.py:2",
        f"#{e.uid:<6} expand (2, 3)            (2, 3)         float32  (#{r.uid})  <- t.py:2",
        f"#{m.uid:<6} mul                      (2, 3)         float32  (#{a.uid},#{e.uid})  <- t.py:3",
        f"#{s.uid:<6} sum (1,)                 (2, 1)         float32  (#{m.uid})  <- grad of exp #9 @ t.py:4 exp_grad",
    ]
    # a realized node is printed as such, without what is below it
    m.realized = Buffer(6, f32)
    assert format_graph([s]).splitlines() == [format_node(m), format_node(s)]
    assert format_node(m).endswith(f"(#{a.uid},#{e.uid}) realized  <- t.py:3")
    assert describe_node(s) == f"#{s.uid} sum (2, 1) float32 from grad of exp #9 @ t.py:4 (exp_grad)"


def test_format_graph_prints_gradient_graphs_as_grad_graph_does_plus_labels():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    (gx,) = lg.grad(x.exp().sum(), [x])
    nodes = toposort([gx.node])
    assert [n.label for n in nodes] == ["grad_seed", "sum_grad", "sum_grad", "tensor", "exp", "exp_grad"]
    want = [f"{line} {n.label}" for line, n in zip(lg.grad_graph(gx).splitlines(), nodes)]
    assert format_graph([gx.node]).splitlines() == want


# --- the lowered checker ----------------------------------------------------------------------------
def _reduce_kernel() -> LoweredKernel:
    x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))
    y = (x * 2 + 1).sum(1)
    (k,) = schedule([y.node])
    lk = lower(k)
    verify_lowered(lk)
    return lk


def _first(lk: LoweredKernel, kind: str) -> int:
    return next(i for i, ins in enumerate(lk.instrs) if ins.kind.value == kind)


def _with(lk: LoweredKernel, i: int, **changes) -> LoweredKernel:
    out = copy.copy(lk)
    out.instrs = list(lk.instrs)
    out.instrs[i] = dataclasses.replace(lk.instrs[i], **changes)
    return out


def _corruptions(lk: LoweredKernel) -> list[tuple[str, LoweredKernel, str]]:
    ld, alu = _first(lk, "load"), _first(lk, "alu")
    load = lk.instrs[ld]
    n = len(lk.instrs)
    dup = copy.copy(lk)
    dup.buffers = lk.buffers + [lk.buffers[1]]
    extra = copy.copy(lk)
    extra.results = lk.results + [lk.results[0]]
    acc = _first(lk, "acc")
    stage = copy.copy(lk)
    stage.stage_results = [acc]
    stored = copy.copy(lk)
    stored.results = [_first(lk, "const")]
    return [
        ("operand used before it is defined", _with(lk, alu, args=(n - 1,) * len(lk.instrs[alu].args)),
         "is not an earlier instruction"),
        ("operand of another region", _with(lk, alu, region=Region.OUTER), "is computed in region 'inner0', not here"),
        ("alu arity", _with(lk, alu, args=lk.instrs[alu].args[:1]), "takes 2 operands, has 1"),
        ("alu dtype", _with(lk, alu, dtype=dt.float64), "gives float64"),
        ("load of no buffer", _with(lk, ld, args=(len(lk.buffers),)), "not one of the input buffers"),
        ("load of an output", _with(lk, ld, args=(0,)), "not one of the input buffers 1..1"),
        ("load dtype", _with(lk, ld, dtype=i32), "load of int32 from buffer 1 of float32"),
        ("load view shape", _with(lk, ld, st=ShapeTracker.from_shape((8, 4))),
         "its view has shape (8, 4), the 'inner0' loop runs over (4, 8)"),
        ("load out of bounds", _with(lk, ld, st=ShapeTracker((View.create((4, 8), offset=1),))),
         "reads positions 1..32 of buffer 1 (32 elements)"),
        ("unknown kind", _with(lk, ld, kind="store"), "unknown instruction kind 'store'"),
        ("unknown region", _with(lk, ld, stage=5), "region 'inner5' is not one of"),
        ("constant value", _with(lk, _first(lk, "const"), value=None), "a constant has no operands"),
        ("acc of the wrong stage", _with(lk, _first(lk, "acc"), value=1), "acc of stage 1"),
        ("a buffer twice", dup, "a buffer is passed twice"),
        ("an output stored twice", extra, "2 results and 1 output views for 1 outputs"),
        ("stage result region", stage, f"stage 0 accumulates {acc}, not a value of region 'inner0'"),
        ("stored from the wrong region", stored, "output 0 is stored through a view of shape (4,), the loop runs over (4, 8)"),
    ]


def test_verify_lowered_catches_corrupted_kernels():
    lk = _reduce_kernel()
    for name, bad, rule in _corruptions(lk):
        with pytest.raises(LoweredIRError) as e:
            verify_lowered(bad)
        assert rule in str(e.value), (name, str(e.value))
        assert "reduce kernel computing" in str(e.value) and lk.kernel.output.origin in str(e.value), name
    verify_lowered(lk)  # the corruptions were of copies


def test_verify_lowered_checks_random_seeds_and_template_kernels():
    (k,) = schedule([(Tensor.rand(4, 8) * 2).node])
    lk = lower(k)
    verify_lowered(lk)
    with pytest.raises(LoweredIRError, match="random numbers of seed 1: the kernel has 1 seeds"):
        verify_lowered(_with(lk, _first(lk, "rand"), value=1))
    (k,) = schedule([Tensor(np.ones((2, 5), np.float32)).sort(1)[0].node])
    lk = lower(k)
    verify_lowered(lk)
    lk.instrs.append(_reduce_kernel().instrs[0])
    with pytest.raises(LoweredIRError, match="a template kernel has no instructions"):
        verify_lowered(lk)


def test_format_lowered_prints_buffers_instructions_and_stores():
    lk = _reduce_kernel()
    lines = format_lowered(lk).splitlines()
    x = lk.buffers[1]
    assert lines[0] == "reduce kernel, out (4,), keep (4,) reduce (8,) stages ['sum'] -> " + str(lk.stage_results)
    assert lines[1] == f"  buf0 out #{lk.kernel.output.uid} reshape (4,) float32"
    assert lines[2] == f"  buf1 in  #{x.uid} buffer (4, 8) float32"
    ld, acc = _first(lk, "load"), _first(lk, "acc")
    assert lines[3 + ld] == f"  %{ld} = load buf1 float32 [inner0]  view (4, 8):(8, 1)"
    assert lines[3 + acc] == f"  %{acc} = acc sum %{lk.stage_results[0]} value=0 float32 [outer]"
    assert len(lines) == 3 + len(lk.instrs) + 1
    assert any(ln.startswith("  %") and "= alu mul %" in ln and "[inner0]" in ln for ln in lines)
    assert lines[-1] == f"  store buf0 <- %{lk.results[0]}  view (4,):(1,)"


# --- the setting and the engine's hooks -------------------------------------------------------------
def test_the_setting_reads_its_variable_and_changes_no_code(monkeypatch):
    monkeypatch.setenv("LAZYGRAD_VERIFY", "0")
    assert settings().verify is False
    off = settings().codegen_key()
    monkeypatch.setenv("LAZYGRAD_VERIFY", "1")
    assert settings().verify is True
    assert settings().codegen_key() == off  # verifying must not make plans or programs differ


def test_verification_on_and_off_schedule_identical_kernels():
    outs = [o.node for outs in _graphs().values() for o in outs]
    with override(verify=False):
        off = [(k.name, k.source, k.global_size, k.local_size) for k in engine.schedule_kernels(outs)]
    with override(verify=True):
        on = [(k.name, k.source, k.global_size, k.local_size) for k in engine.schedule_kernels(outs)]
    assert on == off and len(on) > 10


def test_realize_verifies_the_graph_only_when_asked():
    def bad() -> Tensor:
        return Tensor(g.make(Op.CONST, (), (), i32, 2.5))
    with override(verify=False):
        assert bad().item() == 2  # the silent wrong value the check exists for
    with override(verify=True), pytest.raises(IRError, match="constant 2.5 is not a whole number"):
        bad().item()
    with override(verify=True), pytest.raises(IRError, match="constant 2.5"):
        lg.schedule(bad())


def test_every_realize_verifies_even_when_the_plan_is_cached():
    def step(b: g.Node) -> Tensor:
        return Tensor(g.make(Op.NEG, (b,), b.shape, f32))
    with override(verify=True):
        step(buf((2, 2))).numpy()
        hits = lg.counters.schedule_cache_hits
        step(buf((2, 2))).numpy()
        assert lg.counters.schedule_cache_hits == hits + 1
        # the same structure with a buffer too small for its node: the plan would run on it
        wrong = g.buffer_node(Buffer(3, f32), (2, 2), f32)
        with pytest.raises(IRError, match="realized buffer holds 3 elements, the node 4"):
            step(wrong).numpy()


def test_realize_verifies_every_lowered_kernel(monkeypatch):
    def corrupt(k):
        lk = lower(k)
        i = next(i for i, ins in enumerate(lk.instrs) if ins.kind.value == "load")
        lk.instrs[i] = dataclasses.replace(lk.instrs[i], args=(0,))
        return lk
    monkeypatch.setattr(engine, "lower", corrupt)
    x = Tensor(np.ones((3, 5), np.float32))
    with override(verify=False):
        lg.schedule(x.exp())  # unchecked, the corrupt kernel goes to the renderer
    with override(verify=True), pytest.raises(LoweredIRError, match="not one of the input buffers"):
        (x * 3).numpy()


def test_a_copied_dtype_is_the_module_object_so_nothing_compares_it_wrong():
    # found by the identity rule: a pickled lg.bool_ was an equal copy, the renderers' `is bool_`
    # missed it, and the cast it made (hash-consed with the real one) gave 0.5 -> False
    import pickle
    for d in dt.DTYPES.values():
        assert pickle.loads(pickle.dumps(d)) is d and copy.deepcopy(d) is d
    assert dt.as_dtype(dataclasses.replace(dt.bool_)) is dt.bool_
    x = Tensor(np.array([0.5, 0.0, 2.0, -1.0] * 16, np.float32))
    assert x.cast(pickle.loads(pickle.dumps(dt.bool_))).numpy()[:4].tolist() == [True, False, True, True]
