"""Why a value is stored in a buffer instead of fused into its reader: a typed cut.

The scheduler records one `Cut` per stored node (and, per kernel input, the cut that made it
an input). A cut is a `CutReason` with the details its text names (an op, a count, a limit)
and the row-wise fusions that were tried on it and declined (`notes`, cuts themselves). Its
`str()` is the sentence users read in `lg.schedule(...)`, `LAZYGRAD_DEBUG=3` and
`lazygrad-dump --explain`: each reason's value is the template of that sentence, so the text
lives in this one table and code compares members, never strings.

Public names: CutReason, Cut.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CutReason(Enum):
    """Each member's value is its text, `{0}`, `{1}`, ... standing for the cut's details."""

    USER_REALIZE = "user realize"
    FUSION_DISABLED = "fusion disabled (LAZYGRAD_FUSE=0)"
    CONTIGUOUS = "explicit contiguous()"
    LIBRARY_COPY = "{0}"  # a copy the library makes on purpose; the CONTIGUOUS node's arg says why
    SORT = "sort: a rank-counting kernel of its own (one work-item per element, O(n) over its row)"
    GATHER = "gather: a kernel of its own (one index read per output element)"
    SCATTER = "scatter-add: a kernel of its own (a work-item per output row and block of columns, summing its segment of the sorted index)"
    ATTENTION = ("attention {0}: a kernel of its own (one row per work-item over the other side's rows: "
                 "the L×S scores are never stored)")                          # (part)
    # why a recognised attention pattern stays the plain graph (a note on its last matmul's cut)
    ATTENTION_DECLINED = "attention not fused: {0}"                        # (why)
    LSTM_CELL = ("lstm cell: a kernel of its own (the gates' matmul with the cell update, writing h, c and "
                 "the gate activations)")
    # why an LSTM step stays the plain graph (a note on its gates' matmul's cut)
    LSTM_DECLINED = "lstm cell not fused: {0}"                             # (why)
    SEVERAL_CONSUMERS = "{0} consumers of a reduction result"              # (count)
    UNUSED = "unused"
    CONSUMER_CLAIMED = "consumer already fused with another reduction"
    REDUCE_FEEDS_BROADCAST = "reduce feeding a broadcast"
    REDUCE_FEEDS_REDUCE = "reduction feeding another {0}"                   # (op)
    VIEW_OF_REDUCTION = "{0} view of a reduction result"                    # (op)
    FEEDS_OP = "feeds {0}"                                                  # (op)
    OPERAND_VIEW = "{0} read through a {1} view: copied to a plain buffer"  # (operand, view op)
    OPERAND_COMPUTED = "{0} is computed ({1}): stored for {2}"              # (operand, op, kernel)
    COSTLY_PROLOGUE = ("matmul operand prologue ({0}, {1} flops per element) "
                       "too costly to recompute in every tile")             # (op, flops)
    TOO_LARGE = "kernel too large (build cost > {0} statements)"            # (limit)
    COSTLY_SHARED = "read by {0} kernels, too costly ({1} statements) to recompute in each"  # (count, cost)
    TOO_MANY_ARGUMENTS = "too many kernel arguments (> {0} buffers)"        # (limit)
    REALIZED_EARLIER = "realized earlier"   # an input with a buffer before this schedule
    # why a row-wise fusion of a stored reduction was declined (notes on its cut)
    ROW_VIEW = "read through a view other than a row broadcast"
    ROW_SHAPE = "rows of a different shape or axes than the consumer's"
    ROW_TOO_LONG = "row longer than {0} elements: not fused row-wise"       # (limit)
    ROW_EXACT = ("a sum whose value a max/min reads: computed once, so its readers compare the same bits "
                 "(recomputed, another kernel's summation order rounds differently)")


@dataclass(frozen=True)
class Cut:
    """A cut: its reason, the details its text names, and declined row fusions as notes
    (printed after the reason in parentheses, in the order they were found)."""

    reason: CutReason
    details: tuple[str | int, ...] = ()
    notes: tuple[Cut, ...] = ()

    def noted(self, note: Cut) -> Cut:
        """This cut with `note` added (once: a fusion declined twice is noted once)."""
        return self if note in self.notes else Cut(self.reason, self.details, (*self.notes, note))

    def __str__(self) -> str:
        return self.reason.value.format(*self.details) + "".join(f" ({n})" for n in self.notes)
