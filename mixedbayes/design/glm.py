"""The parts of a design that generalised models add: trials, offsets, the working response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import SpecError
from mixedbayes.spec.formula import FormulaParts, auxiliary_formula

if TYPE_CHECKING:
    from mixedbayes.families import Family, Link

__all__ = [
    "OFFSET_PREFIX",
    "auxiliary_variables",
    "split_offsets",
    "trials_array",
    "working_response",
]

OFFSET_PREFIX = "offset("


def auxiliary_variables(parts: FormulaParts) -> set[str]:
    """Columns the binomial failures/trials expressions use."""
    import formulae as fm

    out: set[str] = set()
    for expr in (parts.failures, parts.trials):
        if expr:
            desc = fm.model_description(auxiliary_formula(expr))
            out |= {v for v in desc.var_names if v}
    return out


def _evaluate(expr: str, frame: pd.DataFrame, namespace: dict[str, Any]) -> np.ndarray:
    import formulae as fm

    dm = fm.design_matrices(
        auxiliary_formula(expr), frame, na_action="error", extra_namespace=namespace
    )
    return np.asarray(dm.response.design_matrix, dtype=float).reshape(len(frame))


def trials_array(
    parts: FormulaParts,
    family: Family,
    frame: pd.DataFrame,
    y: np.ndarray,
    namespace: dict[str, Any],
) -> np.ndarray | None:
    """Number of trials per row (binomial), from ``cbind(k, n - k)`` or ``k | trials(n)``.

    Raises
    ------
    SpecError
        When the family needs trials and the formula gives none, or gives them to a family
        that takes none.
    """
    given = parts.failures is not None or parts.trials is not None
    if family.needs_trials and not given:
        raise SpecError(
            f"the {family.name} family needs the number of trials.",
            where="formula",
            hint="write the response as 'cbind(successes, failures) ~ ...' or "
            "'successes | trials(n) ~ ...'.",
        )
    if given and not family.needs_trials:
        raise SpecError(
            f"the response gives trials, but the {family.name} family takes none.",
            where="formula",
            hint="use family binomial, or write the response without cbind()/trials().",
        )
    if not given:
        return None
    if parts.failures is not None:
        return y + _evaluate(parts.failures, frame, namespace)
    assert parts.trials is not None
    return _evaluate(parts.trials, frame, namespace)


def split_offsets(names: list[str], X: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Take ``offset(...)`` columns out of the fixed design: (names, X, summed offset)."""
    keep = [j for j, n in enumerate(names) if not n.startswith(OFFSET_PREFIX)]
    offset = X[:, [j for j in range(len(names)) if j not in keep]].sum(axis=1)
    return [names[j] for j in keep], X[:, keep], offset


def working_response(
    family: Family, link: Link, y: np.ndarray, trials: np.ndarray | None
) -> np.ndarray:
    """The response on the link scale (for the ``auto`` parametrization rule).

    Proportions and counts are pulled away from the boundaries (``(y + 0.5) / (n + 1)``,
    ``y + 0.5``) before the link is applied; values the link cannot take get the link of
    the mean.
    """
    if family.name == "gaussian" and link.name == "identity":
        return y
    if trials is not None:
        values = (y + 0.5) / (trials + 1.0)
    elif family.discrete:
        values = y + 0.5
    elif set(np.unique(y)) <= {0.0, 1.0}:
        values = (y + 0.5) / 2.0
    else:
        values = y
    with np.errstate(all="ignore"):
        z = link.link_numpy(np.asarray(values, dtype=float))
        fallback = link.link_numpy(np.asarray([np.mean(values)]))[0]
    return np.where(np.isfinite(z), z, fallback if np.isfinite(fallback) else 0.0)
