"""The Tensor API, split by op family.

`tensor.py` holds the Tensor class: construction, broadcasting, dtype promotion, the
elementwise, reduce and movement methods built straight on graph nodes. Every other family
(printing, math, activations, shapes, scans, sorting, indexing, linalg, convolution, pooling,
autograd) is a module that imports Tensor and lists its methods in TENSOR_METHODS (or
METHODS); this package installs them on the class. So imports go one way — a family knows
Tensor, Tensor knows no family — and a new family is one module and one line below.

Public names: Tensor, install.
"""
from __future__ import annotations

from lazygrad.frontend import (activations, autograd, conv, indexing, linalg, mathops, pooling, printing,
                               scan, shapes, sorting)
from lazygrad.frontend.tensor import Tensor

FAMILIES = (printing, mathops, activations, shapes, scan, sorting, indexing, linalg, conv, pooling, autograd)


def install(cls: type, families: tuple = FAMILIES) -> None:
    """Make each family's methods methods of `cls` (the Tensor class)."""
    for fam in families:
        for name, f in {**getattr(fam, "METHODS", {}), **getattr(fam, "TENSOR_METHODS", {})}.items():
            setattr(cls, name, f)


install(Tensor)
