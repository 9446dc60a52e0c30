"""Helpers shared by the families: support checks that name rows and values, default priors
of shape and precision parameters, and data-scaled references for identity-like links.

No PyMC or SciPy is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem, format_rows
from mixedbayes.families.base import FamilyParam, Link, round_sig, sd_scale

if TYPE_CHECKING:
    from mixedbayes.priors.distributions import PriorDist

__all__ = [
    "HURDLE",
    "ZERO_INFLATION",
    "bad_rows_problem",
    "count_problems",
    "delta_reference",
    "fixed_prior",
    "format_values",
    "is_whole",
    "present_values",
]


def present_values(y: pd.Series) -> np.ndarray:
    """The response as floats (booleans become 0/1); missing values stay NaN.

    Parameters
    ----------
    y : pandas.Series
        The response, indexed by the data's row labels.

    Returns
    -------
    numpy.ndarray
        ``float64`` values, aligned with ``y.index``.
    """
    return np.asarray(y.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def is_whole(values: np.ndarray) -> np.ndarray:
    """Elementwise: finite and equal to an integer.

    Parameters
    ----------
    values : numpy.ndarray
        Values to check (floats; NaN and inf are not whole).

    Returns
    -------
    numpy.ndarray
        Boolean mask.
    """
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.floor(values) == values)


def format_values(values: Sequence[float] | np.ndarray, limit: int = 8) -> str:
    """Render values for a message (``-1, 2.5, inf``), eliding after ``limit``.

    Parameters
    ----------
    values : sequence of float
        The offending values, in row order.
    limit : int, default 8
        How many to show.

    Returns
    -------
    str
    """
    return format_rows([f"{float(v):g}" for v in values], limit=limit)


def bad_rows_problem(
    y: pd.Series,
    bad: np.ndarray,
    column: str,
    what: str,
    hint: str,
    *,
    values: np.ndarray | None = None,
    where: str | None = None,
) -> list[Problem]:
    """One :class:`Problem` naming the rows where ``bad`` holds and their values (or none).

    Parameters
    ----------
    y : pandas.Series
        The response, indexed by row labels.
    bad : numpy.ndarray
        Boolean mask aligned with ``y``.
    column : str
        The response column (for ``where``).
    what : str
        What the values should be, e.g. ``"the poisson response must be a non-negative
        integer"``.
    hint : str
        How to fix it.
    values : numpy.ndarray, optional
        The values to quote, aligned with ``y`` (default: the response itself).
    where : str, optional
        The ``where`` of the problem (default: ``column '<column>'``).

    Returns
    -------
    list of Problem
        Empty when no row is bad.
    """
    if not np.any(bad):
        return []
    rows = list(y.index[bad])
    quoted = (present_values(y) if values is None else np.asarray(values, dtype=float))[bad]
    return [
        Problem(
            f"{what}; rows {format_rows(rows)} hold {format_values(quoted)}.",
            f"column '{column}'" if where is None else where,
            hint,
        )
    ]


def count_problems(y: pd.Series, column: str, family: str) -> list[Problem]:
    """Problems of a count response: values that are not non-negative integers.

    Parameters
    ----------
    y : pandas.Series
        The response, indexed by row labels (missing values are skipped).
    column : str
        The response column.
    family : str
        The family's name, for the message.

    Returns
    -------
    list of Problem
    """
    v = present_values(y)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(v) & ~(is_whole(v) & (v >= 0))
    return bad_rows_problem(
        y,
        bad,
        column,
        f"the {family} response must be a count (an integer >= 0)",
        "correct the data-entry errors, or use a continuous family (gaussian, student, "
        "gamma, lognormal) for a response that is not a count.",
    )


def fixed_prior(
    name: str, args: tuple[float, ...], provenance: str
) -> Callable[[np.ndarray], tuple[PriorDist, str]]:
    """A ``FamilyParam`` default prior that does not depend on the data.

    The :class:`~mixedbayes.priors.distributions.PriorDist` is built when called (the priors
    package imports this one, so it is not imported at import time).

    Parameters
    ----------
    name : str
        A registered prior distribution, e.g. ``"gamma"``.
    args : tuple of float
        Its arguments, e.g. ``(0.01, 0.01)``.
    provenance : str
        Where it comes from, shown in the prior table.

    Returns
    -------
    callable
        ``y -> (prior, provenance)``.
    """

    def default(y: np.ndarray) -> tuple[PriorDist, str]:
        from mixedbayes.priors.distributions import PriorDist

        return PriorDist(name, args), provenance

    return default


#: Links for which ``s = 1`` is not the scale of the linear predictor: they keep (about) the
#: response's units, so the scale is ``|g'(mean y)|·sd(y)`` (delta method).
_DERIVATIVES: dict[str, Callable[[float], float]] = {
    "identity": lambda m: 1.0,
    "sqrt": lambda m: 0.5 / np.sqrt(m),
    "inverse": lambda m: 1.0 / m**2,
}


def delta_reference(y: np.ndarray, link: Link) -> tuple[float, float, str] | None:
    """``link(mean(y))`` and ``s = |g'(mean(y))|·sd(y)`` for identity, sqrt and inverse links.

    Used by positive-valued families (counts, gamma), whose default ``s = 1`` fits a log or
    logit scale only: on the identity scale of counts in the hundreds, ``s = 1`` would be a
    tight, informative prior.

    Parameters
    ----------
    y : numpy.ndarray
        The response.
    link : Link
        The link in force.

    Returns
    -------
    tuple of (float, float, str) or None
        ``(loc, s, provenance)``, or ``None`` for other links, an empty response or a
        non-positive mean (the caller then falls back to the default).
    """
    derivative = _DERIVATIVES.get(link.name)
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if derivative is None or not y.size:
        return None
    m = float(np.mean(y))
    if not m > 0:
        return None
    loc = float(link.link_numpy(np.asarray([m]))[0])
    s = abs(derivative(m)) * sd_scale(y)
    if not (np.isfinite(loc) and np.isfinite(s) and s > 0):
        return None
    return (
        round_sig(loc),
        round_sig(s),
        f"link(mean(y))={loc:.4g}, s=|g'(mean(y))|·sd(y)={s:.4g} (delta method)",
    )


#: The zero-inflation probability ``zi`` of a zero-inflated family (the probability of a
#: structural zero): always a linear predictor on the logit scale (``~ 1`` unless the spec's
#: ``zi`` formula says otherwise), with this prior on its intercept.
ZERO_INFLATION = FamilyParam(
    "zi",
    fixed_prior(
        "normal",
        (-1.0, 1.5),
        "Normal(-1, 1.5) on logit(zi): zero inflation 27 % a priori (median), "
        "95 % within (2 %, 87 %)",
    ),
    positive=False,
    predictor=True,
    link="logit",
)


#: The hurdle probability ``hu`` of a hurdle family (the probability of a zero: every zero
#: comes from it): always a linear predictor on the logit scale (``~ 1`` unless the spec's
#: ``hu`` formula says otherwise), with brms's prior on its intercept.
HURDLE = FamilyParam(
    "hu",
    fixed_prior(
        "logistic",
        (0.0, 1.0),
        "Logistic(0, 1) on logit(hu): uniform on the zero probability hu, as brms's default",
    ),
    positive=False,
    predictor=True,
    link="logit",
)
