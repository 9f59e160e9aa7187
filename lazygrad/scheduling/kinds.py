"""What kind of kernel the scheduler made: the one value lowering and codegen dispatch on.

A `StrEnum`, so a kind prints as it always did (`conv`, in tables, kernel comments and the
dump) and compares equal to its name: `lg.schedule(y)[0].kind == "conv"` keeps working for
users, while the library itself compares members (`kind is KernelKind.CONV`).

Public names: KernelKind.
"""
from __future__ import annotations

from enum import StrEnum


class KernelKind(StrEnum):
    ELEMENTWISE = "elementwise"   # one output element per work-item (or vector of them)
    REDUCE = "reduce"             # one reduction and its per-row epilogue
    ROWWISE = "rowwise"           # reductions broadcast back over their rows (softmax, layernorm)
    ROWTOTAL = "rowtotal"         # a full reduction of a row-wise kernel's per-row values
    MATMUL = "matmul"             # a register-tiled matmul and its epilogue
    CONV = "conv"                 # the direct conv2d and its epilogue
    SORT = "sort"                 # a rank-counting kernel per row
    GATHER = "gather"             # one index read per output element
    SCATTER = "scatter"           # a sum over the sorted index's segment per output row (block of columns)
    ATTENTION = "attention"       # softmax(q k^T scale + mask) v with an online softmax, or its backward
    LSTM = "lstm"                 # one LSTM step: the gates' matmul and the cell update
