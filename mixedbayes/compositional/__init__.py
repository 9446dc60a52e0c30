"""Compositional (microbiome) models: log-ratio transforms and zero handling.

- :mod:`~mixedbayes.compositional.transforms`: the registry of stateful log-ratio transforms
  (``clr``, ``alr``, ``ilr``), remembered with a fit for prediction;
- :mod:`~mixedbayes.compositional.zeros`: the registry of zero-handling rules (``model``,
  ``pseudocount``, ``multiplicative``).

No PyMC or pytensor is imported here.
"""

from __future__ import annotations

from mixedbayes.compositional.transforms import (
    TRANSFORMS,
    Transform,
    get_transform,
    pivot_basis,
    register_transform,
    softmax,
)
from mixedbayes.compositional.zeros import ZEROS, register_zeros, replace_zeros

__all__ = [
    "TRANSFORMS",
    "ZEROS",
    "Transform",
    "get_transform",
    "pivot_basis",
    "register_transform",
    "register_zeros",
    "replace_zeros",
    "softmax",
]
