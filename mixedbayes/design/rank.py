"""Rank deficiency of a fixed-effects matrix: which columns the others already determine.

lme4 drops such columns ("fixed-effect model matrix is rank deficient so dropping 1 column");
brms samples them, identified only by their priors (a ridge in the posterior that slows NUTS
and makes the coefficients meaningless). mixedbayes keeps them, like brms, but says which
columns they are and what they equal, so the fix (remove a term, recode a factor with an
empty cell) is one step.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from mixedbayes.design.data import DataWarning

__all__ = ["dependent_columns", "warn_rank_deficient"]

#: Relative tolerance on the pivoted QR's diagonal (of unit-norm columns).
RANK_TOL = 1e-9


def dependent_columns(X: np.ndarray, names: Sequence[str]) -> list[str]:
    """Describe each column of ``X`` that is a linear combination of the columns before it.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    names : sequence of str
        The columns' names.

    Returns
    -------
    list of str
        One line per dependent column, e.g. ``"'t2' = 2·'t'"`` or ``"'c' = 1·'Intercept'"``;
        ``"'a:b' is zero in every row"`` for an empty column. Empty when ``X`` has full
        column rank.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(5.0)
    >>> dependent_columns(np.column_stack([np.ones(5), t, 2 * t]), ["Intercept", "t", "t2"])
    ["'t2' = 2·'t'"]
    """
    X = np.asarray(X, dtype=float)
    names = [str(n) for n in names]
    if X.ndim != 2 or X.shape[1] == 0:
        return []
    norms = np.linalg.norm(X, axis=0)
    lines = [f"'{names[int(j)]}' is zero in every row" for j in np.flatnonzero(norms == 0)]
    nonzero = np.flatnonzero(norms > 0)
    unit = X[:, nonzero] / norms[nonzero]
    if not lines and np.linalg.matrix_rank(unit, tol=np.sqrt(RANK_TOL)) == len(nonzero):
        return []
    kept: list[int] = []
    for j in nonzero:
        column = X[:, j] / norms[j]
        if kept:
            basis = X[:, kept] / norms[kept]
            coef, *_ = scipy.linalg.lstsq(basis, column)
            residual = np.linalg.norm(column - basis @ coef)
            if residual < np.sqrt(RANK_TOL):
                scaled = coef * norms[j] / norms[kept]
                parts = [
                    f"{c:.4g}·'{names[k]}'"
                    for c, k in zip(scaled, kept, strict=True)
                    if abs(c) > 1e-8 * max(1.0, np.abs(scaled).max())
                ]
                lines.append(f"'{names[int(j)]}' = " + " + ".join(parts))
                continue
        kept.append(int(j))
    return lines


def warn_rank_deficient(X: np.ndarray, names: Sequence[str], what: str = "fixed-effect") -> None:
    """Warn (:class:`~mixedbayes.design.data.DataWarning`) when ``X`` is rank deficient,
    naming each dependent column and what it equals."""
    lines = dependent_columns(X, names)
    if lines:
        warnings.warn(
            f"the {what} matrix is rank deficient: {'; '.join(lines)}. Those coefficients are "
            "identified only by their priors (lme4 would drop them). Fix: remove the term, or "
            "recode a factor whose interaction has an empty cell.",
            DataWarning,
            stacklevel=4,
        )
