"""Named tuples that ops with several results return, like `torch.return_types`.

Public names: ValuesIndices.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # a type only: this module sits below tensor.py
    from lazygrad.frontend.tensor import Tensor


class ValuesIndices(NamedTuple):
    """`(values, indices)` of `max(dim)` / `min(dim)` (torch.return_types.max / min): unpacks
    as a pair, or read `.values` and `.indices`."""

    values: "Tensor"
    indices: "Tensor"
