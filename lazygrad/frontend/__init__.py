"""The Tensor API, split by op family.

`tensor.py` holds the Tensor class: construction, properties, host access, dtype promotion
and broadcasting, the binary operators built straight on graph nodes. Every family (unary
math in elementwise.py, reduce.py, movement.py, printing, math, activations, shapes, scans,
sorting, indexing, linalg, convolution, pooling, autograd) is a module that imports Tensor and lists its methods in TENSOR_METHODS (or
METHODS); this package installs them on the class. So imports go one way — a family knows
Tensor, Tensor knows no family — and a new family is one module and one line below.

Public names: Tensor, install.
"""
from __future__ import annotations

from lazygrad.frontend import (activations, autograd, conv, elementwise, indexing, linalg, mathops, movement,
                               pooling, printing, reduce, scan, shapes, sorting)
from lazygrad.frontend.tensor import Tensor

# the class's own method families first (unary math, reductions, movement), then the rest in
# the order they were installed before the split (a later family's method of the same name wins)
FAMILIES = (elementwise, reduce, movement, printing, mathops, activations, shapes, scan, sorting, indexing, linalg, conv, pooling, autograd)


def install(cls: type, families: tuple = FAMILIES) -> None:
    """Make each family's methods methods of `cls` (the Tensor class)."""
    for fam in families:
        for name, f in {**getattr(fam, "METHODS", {}), **getattr(fam, "TENSOR_METHODS", {})}.items():
            setattr(cls, name, f)


install(Tensor)
