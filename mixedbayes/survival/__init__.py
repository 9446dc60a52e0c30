"""The hazard side of joint longitudinal–survival models (as JMbayes2).

- :mod:`~mixedbayes.survival.association`: the registry of association structures (value,
  slope, area, shared);
- :mod:`~mixedbayes.survival.baselines`: the registry of baseline hazards (Weibull,
  Gompertz, piecewise constant, B-spline), each written once for NumPy and PyTensor, with a
  NumPy/SciPy cumulative hazard;
- :mod:`~mixedbayes.survival.quadrature`: Gauss–Legendre nodes and weights over each row's
  interval;
- :mod:`~mixedbayes.survival.likelihood`: the per-row log-likelihood by quadrature (right
  censoring, counting-process rows, left truncation) and its closed-form reference.

No PyMC or pytensor is imported here.
"""

from __future__ import annotations

from mixedbayes.survival.association import (
    ASSOCIATIONS,
    AssociationType,
    register_association,
)
from mixedbayes.survival.baselines import (
    BASELINES,
    Baseline,
    BaselineParam,
    get_baseline,
    register_baseline,
)
from mixedbayes.survival.likelihood import log_likelihood_rows, reference_log_likelihood
from mixedbayes.survival.quadrature import gauss_legendre, hazard_nodes, interval_nodes

__all__ = [
    "ASSOCIATIONS",
    "BASELINES",
    "AssociationType",
    "Baseline",
    "BaselineParam",
    "gauss_legendre",
    "get_baseline",
    "hazard_nodes",
    "interval_nodes",
    "log_likelihood_rows",
    "reference_log_likelihood",
    "register_association",
    "register_baseline",
]
