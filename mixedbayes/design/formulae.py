"""The formulae adapter every kind's design shares: formula functions, column roles, names."""

from __future__ import annotations

import difflib
import re
from typing import Any

import numpy as np

from mixedbayes.design.contrasts import SUM_FUNCTION, contr_sum, display_label
from mixedbayes.errors import Problem
from mixedbayes.spec.formula import FormulaParts

__all__ = [
    "FORMULA_FUNCTIONS",
    "common_names",
    "formula_predictors",
    "formula_variables",
    "function_problems",
]

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


def formula_predictors(formula: str) -> set[str]:
    """The columns a formula uses as predictors (fixed or varying), not its response or
    grouping factors."""
    from mixedbayes.spec.formula import split_formula

    _, covariates, groups = formula_variables(split_formula(formula))
    return covariates - groups


def known_functions() -> list[str]:
    """Every function a formula may call: :data:`FORMULA_FUNCTIONS` and formulae's own
    transforms and encodings (``C``, ``I``, ``scale``, ``center``, ``poly``, ``Sum``, ...)."""
    from formulae.categorical import ENCODINGS
    from formulae.transforms import TRANSFORMS

    return sorted({*FORMULA_FUNCTIONS, *TRANSFORMS, *ENCODINGS} - {"np"})


def _resolves(name: str) -> bool:
    head, _, rest = name.partition(".")
    if head not in FORMULA_FUNCTIONS and head not in known_functions():
        return False
    obj: Any = FORMULA_FUNCTIONS.get(head)
    for attr in rest.split(".") if rest else ():
        if obj is None or not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def function_problems(formula: str, formulae_formula: str, where: str = "formula") -> list[Problem]:
    """A problem per function ``formulae_formula`` (the formula as formulae reads it) calls
    that a formula cannot call (``lg(age)``, ``np.lg(x)``), naming the function, the
    ``formula`` as the user wrote it, and the closest known functions."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "''", formulae_formula)  # no calls inside strings
    problems = []
    seen: set[str] = set()
    for name in re.findall(r"([A-Za-z_][\w.]*)\s*\(", text):
        if name in seen or _resolves(name):
            continue
        seen.add(name)
        known = known_functions()
        close = difflib.get_close_matches(name.rpartition(".")[2], known, n=3, cutoff=0.5)
        guess = f"did you mean {' or '.join(close)}? " if close else ""
        guess = guess[:1].upper() + guess[1:]
        problems.append(
            Problem(
                f"the formula {formula!r} calls {name}(), which is not a formula function.",
                where,
                f"{guess}a formula can call {', '.join(known)} and numpy's functions as "
                "np.<name>; or compute the column in the data first.",
            )
        )
    return problems
