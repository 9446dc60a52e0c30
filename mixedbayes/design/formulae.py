"""The formulae adapter every kind's design shares: formula functions, column roles, names."""

from __future__ import annotations

from typing import Any

import numpy as np

from mixedbayes.design.contrasts import SUM_FUNCTION, contr_sum, display_label
from mixedbayes.spec.formula import FormulaParts

__all__ = ["FORMULA_FUNCTIONS", "common_names", "formula_variables"]

#: Functions a formula may call (``log(x)``, ``center(x)`` and formulae's own ``C``, ``scale``);
#: ``contr_sum`` is the sum-to-zero coding a spec's ``contrasts`` asks for.
FORMULA_FUNCTIONS: dict[str, Any] = {
    SUM_FUNCTION: contr_sum,
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "np": np,
}


def common_names(common: Any) -> list[str]:
    """Column names of formulae's common (fixed) matrix (``Intercept``, ``trt[B]:time``,
    ``Sex[S.Female]`` for sum coding)."""
    names: list[str] = []
    for term_name, sl in common.slices.items():
        labels = common.terms[term_name].labels
        names += list(labels) if len(labels) == sl.stop - sl.start else [term_name]
    return [display_label(n) for n in names]


def formula_variables(parts: FormulaParts) -> tuple[set[str], set[str], set[str]]:
    """Columns of the response, of the fixed/varying predictors, and of the grouping factors."""
    import formulae as fm

    desc = fm.model_description(parts.formulae_formula)
    response = set(desc.response.var_names) if desc.response is not None else set()
    groups: set[str] = set()
    covariates: set[str] = set()
    for term in desc.common_terms:
        covariates |= term.var_names
    for term in desc.group_terms:
        groups |= term.factor.var_names
        covariates |= term.expr.var_names
    covariates = {v for v in covariates if v} - response - groups
    return {v for v in response if v}, covariates, {v for v in groups if v}
