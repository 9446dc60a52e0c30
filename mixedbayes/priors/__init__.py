"""Priors: distributions (parsed from text), the prior table, defaults with provenance.

Each kind makes its defaults (``priors/regression.py``, ``priors/nonlinear.py``);
:func:`apply_overrides` merges a spec's overrides into them for every kind.
"""

from mixedbayes.priors.distributions import DISTRIBUTIONS, PriorDist, parse_prior
from mixedbayes.priors.regression import default_regression_priors
from mixedbayes.priors.table import PriorRow, PriorTable, apply_overrides

__all__ = [
    "DISTRIBUTIONS",
    "PriorDist",
    "PriorRow",
    "PriorTable",
    "apply_overrides",
    "default_regression_priors",
    "parse_prior",
]
