"""The typed contracts between the scheduler, lowering, codegen and the engine: kernel kinds
and cut reasons are enums whose text is what users always read, the scheduler's Kernel is
frozen, lg.schedule's records keep their public attributes, and lowered instructions carry
enums and typed per-kind fields."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lazygrad as lg
from lazygrad import Tensor
from lazygrad.codegen import dispatch as codegen
from lazygrad.codegen.lower import InstrKind, LoweredKernel, Panels, Region, RowTotal, lower
from lazygrad.debug import events as debug
from lazygrad.engine import realize as engine
from lazygrad.engine.scheduled import NarrowerBuild, ScheduledKernel
from lazygrad import passes
from lazygrad.ir.graph import toposort
from lazygrad.runtime.device import BuildError, current_target
from lazygrad.scheduling.cuts import Cut, CutReason
from lazygrad.scheduling.kinds import KernelKind
from lazygrad.scheduling.scheduler import Kernel, schedule
from lazygrad.target import vector_bits_of_source

R = CutReason
# every reason with example details, and the text the scheduler built for it by hand before
# cuts were typed (the f-strings of scheduler.py, evaluated): str(cut) must stay exactly this
TEXTS: dict[CutReason, tuple[tuple, str]] = {
    R.USER_REALIZE: ((), "user realize"),
    R.FUSION_DISABLED: ((), "fusion disabled (LAZYGRAD_FUSE=0)"),
    R.CONTIGUOUS: ((), "explicit contiguous()"),
    R.LIBRARY_COPY: (("matmul A packed into row panels",), "matmul A packed into row panels"),
    R.SORT: ((), "sort: a rank-counting kernel of its own (one work-item per element, O(n) over its row)"),
    R.GATHER: ((), "gather: a kernel of its own (one index read per output element)"),
    R.SEVERAL_CONSUMERS: ((3,), "3 consumers of a reduction result"),
    R.UNUSED: ((), "unused"),
    R.CONSUMER_CLAIMED: ((), "consumer already fused with another reduction"),
    R.REDUCE_FEEDS_BROADCAST: ((), "reduce feeding a broadcast"),
    R.REDUCE_FEEDS_REDUCE: (("sum",), "reduction feeding another sum"),
    R.VIEW_OF_REDUCTION: (("permute",), "permute view of a reduction result"),
    R.FEEDS_OP: (("sort",), "feeds sort"),
    R.OPERAND_VIEW: (("conv2d input", "permute"),
                     "conv2d input read through a permute view: copied to a plain buffer"),
    R.OPERAND_COMPUTED: (("sort input", "exp", "the sort kernel"),
                         "sort input is computed (exp): stored for the sort kernel"),
    R.COSTLY_PROLOGUE: (("div", 23),
                        "matmul operand prologue (div, 23 flops per element) too costly to recompute in every tile"),
    R.TOO_LARGE: ((1000,), "kernel too large (build cost > 1000 statements)"),
    R.COSTLY_SHARED: ((3, 250), "read by 3 kernels, too costly (250 statements) to recompute in each"),
    R.TOO_MANY_ARGUMENTS: ((48,), "too many kernel arguments (> 48 buffers)"),
    R.REALIZED_EARLIER: ((), "realized earlier"),
    R.ROW_VIEW: ((), "read through a view other than a row broadcast"),
    R.ROW_SHAPE: ((), "rows of a different shape or axes than the consumer's"),
    R.ROW_TOO_LONG: ((4194304,), "row longer than 4194304 elements: not fused row-wise"),
    R.ROW_EXACT: ((), "a sum whose value a max/min reads: computed once, so its readers compare the same bits "
                      "(recomputed, another kernel's summation order rounds differently)"),
    R.SCATTER: ((), "scatter-add: a kernel of its own (a work-item per output row and block of columns, summing "
                    "its segment of the sorted index)"),
    R.ATTENTION: (("dq",), "attention dq: a kernel of its own (one row per work-item over the other side's "
                           "rows: the L×S scores are never stored)"),
    R.ATTENTION_DECLINED: (("float16 inputs",), "attention not fused: float16 inputs"),
    R.LSTM_CELL: ((), "lstm cell: a kernel of its own (the gates' matmul with the cell update, writing h, c and "
                      "the gate activations)"),
    R.LSTM_DECLINED: (("float16",), "lstm cell not fused: float16"),
}


@pytest.mark.parametrize("reason", list(CutReason), ids=lambda r: r.name)
def test_each_cut_reads_as_the_text_the_scheduler_always_printed(reason):
    details, text = TEXTS[reason]
    assert str(Cut(reason, details)) == text


def test_row_fusion_notes_follow_the_reason_once_each_in_order():
    cut = Cut(R.REDUCE_FEEDS_BROADCAST)
    cut = cut.noted(Cut(R.ROW_SHAPE)).noted(Cut(R.ROW_VIEW)).noted(Cut(R.ROW_SHAPE))
    assert cut.notes == (Cut(R.ROW_SHAPE), Cut(R.ROW_VIEW))
    assert str(cut) == ("reduce feeding a broadcast (rows of a different shape or axes than the consumer's) "
                        "(read through a view other than a row broadcast)")


def test_every_kernel_kind_has_a_renderer():
    assert set(codegen.RENDERERS) == set(KernelKind)


def test_a_kind_prints_and_compares_as_its_name():
    """Users compare lg.schedule(...)[i].kind with strings and print it; both keep working."""
    x = Tensor(np.ones((4, 8), np.float32))
    (k,) = lg.schedule(x.sum(1))
    assert k.kind is KernelKind.REDUCE and k.kind == "reduce" and str(k.kind) == "reduce" and f"{k.kind}" == "reduce"


def test_kernel_is_frozen_and_keeps_no_render_fields():
    x = Tensor(np.ones((4, 8), np.float32))
    (k,) = schedule([(x * 2).node])
    assert isinstance(k, Kernel) and isinstance(k.reason, Cut) and k.reason.reason is R.USER_REALIZE
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.reason = Cut(R.UNUSED)  # type: ignore[misc]
    fields = {f.name for f in dataclasses.fields(Kernel)}
    assert not fields & {"name", "source", "global_size", "local_size"}, fields
    assert all(isinstance(c, Cut) for c in k.edge_reasons.values())


def test_the_scheduler_records_typed_cuts():
    x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))
    y = (x - x.amax(1, keepdim=True)).T + 1   # the row max is broadcast, then transposed
    ks = schedule([y.node])
    assert [k.reason.reason for k in ks] == [R.REDUCE_FEEDS_BROADCAST, R.USER_REALIZE]
    assert R.REDUCE_FEEDS_BROADCAST in {c.reason for c in ks[1].edge_reasons.values()}
    with lg.config.override(fuse=False):
        ks = schedule([((x * 2).exp()).node])
    assert [k.reason.reason for k in ks] == [R.FUSION_DISABLED, R.USER_REALIZE]


# what lg.schedule(...) records have always offered (tests, the README, bench and the dump use them)
PUBLIC = ["name", "source", "ops", "reason", "reasons", "inputs", "output", "outputs", "global_size",
          "local_size", "origins", "kind", "op_names", "core", "reduces", "extra_outputs", "extra_reasons",
          "edge_reasons", "user_ops", "user_summary", "ops_by_origin"]


def test_schedule_records_keep_their_public_attributes():
    x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))
    w = Tensor(np.ones((8, 8), np.float32))
    ks = lg.schedule((x @ w).relu(), x.softmax(1))
    assert len(ks) == 2 and all(isinstance(k, ScheduledKernel) for k in ks)
    for k in ks:
        missing = [a for a in PUBLIC if not hasattr(k, a)]
        assert not missing, missing
        assert isinstance(k.reason, str) and k.reasons == [k.reason, *k.extra_reasons]
        assert all(isinstance(v, str) for v in k.edge_reasons.values())
        assert k.name in k.source and k.global_size and isinstance(k.user_summary(), str)
        assert repr(k).startswith(f"Kernel({k.name}: ") and repr(k).endswith(f"; {k.reason})")
    assert [k.kind for k in ks] == ["matmul", "rowwise"] and ks[0].reason == "user realize"
    table = str(ks)
    assert table.splitlines()[0] == "schedule: 2 kernels" and "matmul" in table and "rowwise" in table


def test_width_fallback_is_a_note_on_the_built_kernel(monkeypatch):
    """A build that fails at a width is retried narrower; the kernel's reason ends with the
    note, as data on the record the observers get (the schedule itself is not written to)."""
    real = engine.get_kernel

    def refuse_wide(name, source, **kw):
        if vector_bits_of_source(source) >= 128:
            raise BuildError("clBuildProgram failed\nwide vectors refused (test)")
        return real(name, source, **kw)

    monkeypatch.setattr(engine, "get_kernel", refuse_wide)
    built: list[ScheduledKernel] = []

    class Obs(debug.Observer):
        timing = False

        def kernel_built(self, kernel, rendered, program):
            built.append(kernel)

    obs = Obs()
    debug.add_observer(obs)
    try:
        x = Tensor(np.arange(4 * 1032, dtype=np.float32).reshape(4, 1032))
        y = (x * 3 + 1).numpy()
    finally:
        debug.remove_observer(obs)
    np.testing.assert_allclose(y, np.arange(4 * 1032, dtype=np.float32).reshape(4, 1032) * 3 + 1)
    (k,) = built
    if vector_bits_of_source(k.source) == 0 and not k.notes:
        pytest.skip("this target renders scalar code: nothing to fall back from")
    assert k.notes and all(isinstance(n, NarrowerBuild) for n in k.notes)
    assert vector_bits_of_source(k.source) < 128
    assert str(k.kernel.reason) == "user realize"
    assert k.reason == "; ".join(["user realize", *map(str, k.notes)])
    assert str(k.notes[-1]).startswith(f"built with vectors of at most {k.notes[-1].bits} bits: the "
                                       f"{k.notes[-1].failed}-bit build failed (wide vectors refused (test))")


def _lowered(*ts: Tensor) -> list[LoweredKernel]:
    # the engine's own path, graph passes first: a matmul is lowered from its packed panels
    # and the lazy aranges uploaded (without either, this test raised KeyError when run alone;
    # in the full suite an earlier test had realized the shared arange)
    nodes = [t.node for t in ts]
    engine._fill_host_buffers(toposort(nodes))  # cross_entropy's lazy arange
    return [lk for _, lk in engine._lowered(passes.run(nodes, current_target()))]


def test_lowered_instructions_are_typed():
    x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))
    (lk,) = _lowered(x.softmax(1))
    assert all(isinstance(i.kind, InstrKind) and isinstance(i.region, Region) for i in lk.instrs)
    assert not hasattr(lk, "extra")
    inner = {i.stage for i in lk.instrs if i.region is Region.INNER}
    assert inner == set(range(len(lk.stage_results))) and len(inner) >= 2
    assert all(i.stage == 0 for i in lk.instrs if i.region is not Region.INNER)
    assert lk.panels is None and lk.total is None and isinstance(lk.twins, dict) and lk.n_seeds == 0


def test_lowered_per_kind_fields():
    x = Tensor(np.arange(32, dtype=np.float32).reshape(4, 8))
    w = Tensor(np.ones((8, 8), np.float32))
    (mm,) = _lowered(x @ w)
    assert isinstance(mm.panels, Panels) and {i.region for i in mm.instrs} >= {Region.A, Region.B}
    labels = Tensor(np.array([1, 0, 3, 7], np.int32))
    (ce,) = [lk for lk in _lowered(lg.nn.functional.cross_entropy(x, labels)) if lk.kernel.kind is KernelKind.ROWTOTAL]
    assert isinstance(ce.total, RowTotal) and ce.total.rows_shape == (4,)
    assert ce.instrs[ce.total.result].region is Region.OUTER
    (r,) = _lowered(Tensor.rand(4, 8) + x)
    assert r.n_seeds == 1
