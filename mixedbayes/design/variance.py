"""The residual SD of a regression design, row by row: what ``sigma:`` and ``variance:`` make
of it (:mod:`mixedbayes.spec.variance`; ``docs/distributional.md``). No PyMC here.

- ``sigma: "~ ..."`` and ``variance: {ident: col}`` are a distributional formula of
  ``sigma`` (a :class:`~mixedbayes.design.dpars.DparDesign`, log link); ``ident``'s terms are
  named ``col[level]`` (:func:`ident_terms`), not formulae's ``C(col)[level]``.
- ``variance: {power: fitted}`` multiplies each row's SD by ``|mu_i|^delta_power``
  (:func:`power_of_fitted`); the compile stage and the NumPy predictions apply it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixedbayes.design.design import Design

__all__ = [
    "FITTED_FLOOR",
    "ident_column",
    "ident_terms",
    "power_of_fitted",
    "row_varying_sigma",
]

#: ``|mu|`` is floored here before its power (a fitted value of exactly 0 would make the SD
#: 0 or infinite).
FITTED_FLOOR = 1e-12


def _variance(design: Any) -> Any:
    return getattr(getattr(design, "spec", None), "variance", None)


def ident_column(design: Any) -> str | None:
    """The column of ``variance: {ident: <col>}`` (None without one)."""
    variance = _variance(design)
    return None if variance is None or variance.ident is None else variance.ident.strip()


def power_of_fitted(design: Any) -> bool:
    """Whether each row's SD is ``sigma·|mu_i|^delta_power`` (``variance: {power: fitted}``)."""
    variance = _variance(design)
    return variance is not None and variance.power == "fitted"


def row_varying_sigma(design: Any) -> bool:
    """Whether the residual SD differs between rows (a sigma formula, or a power of the
    fitted value): then ``sigma`` is not one number per draw."""
    dpar = getattr(design, "dpar", None)
    return power_of_fitted(design) or (dpar is not None and dpar("sigma") is not None)


def ident_terms(design: Design) -> Design:
    """``design`` with the terms of ``variance: {ident: col}``'s sigma formula named
    ``col[level]`` (formulae names the factor ``C(col)``); unchanged without one."""
    column = ident_column(design)
    sigma = design.dpar("sigma")
    if column is None or sigma is None:
        return design
    pattern = re.compile(rf"^C\({re.escape(column)}\)\[")
    terms = tuple(pattern.sub(f"{column}[", t) for t in sigma.terms)
    renamed = dataclasses.replace(sigma, terms=terms)
    dpars = tuple(renamed if d is sigma else d for d in design.dpars)
    return dataclasses.replace(design, dpars=dpars)
