"""K-fold cross-validation, the parts that need no refitting: folds and held-out densities.

Folds are *grouped* when a grouping factor is named (as loo's ``kfold_split_grouped`` and
brms's ``kfold(folds = "grouped", group = ...)``): every level of the factor is held out
once, with all its rows, and the folds hold as equal numbers of levels as ``k`` allows.
Without a group the rows are split at random into folds of equal size (``kfold_split_random``).

The held-out rows' log predictive density is ``log mean_s p(y_i | θ_s)`` over the draws of
the fit to the other folds. Levels the training fit has not seen (all the held-out levels of
a grouped split) get effects drawn from the fitted group-level distribution, as brms's
``allow_new_levels = TRUE`` does (:func:`mixedbayes.results.predict.linear_predictor_draws`
with ``new_groups="sample"``), ``group_draws`` times per posterior draw.

The refitting itself is :func:`mixedbayes.workflows.kfold.kfold` (``fit.kfold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import SpecError
from mixedbayes.results.predict import family_params, linear_predictor_draws, rows_of

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design

__all__ = ["KFoldResult", "grouped_folds", "heldout_log_density", "random_folds"]


def _check_k(k: int, n: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= n:
        raise SpecError(
            f"k must be a whole number from 2 to the number of {what} ({n}), got {k!r}.",
            where="k",
            hint=f"pass e.g. k={min(10, n)}.",
        )


def grouped_folds(
    labels: Sequence[Any] | np.ndarray, k: int, seed: int | None = None
) -> np.ndarray:
    """Fold (1..k) of each row such that every level of ``labels`` is in exactly one fold.

    Levels are shuffled and dealt to the folds in turn, so fold sizes in levels differ by at
    most one (loo's ``kfold_split_grouped``).

    Parameters
    ----------
    labels : sequence
        The grouping factor's level of each row.
    k : int
        Number of folds (2 to the number of levels).
    seed : int, optional
    """
    values = pd.Series(np.asarray(labels, dtype=object)).astype(str)
    levels = np.array(sorted(values.unique()))
    _check_k(k, len(levels), "levels")
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(levels), np.arange(len(levels)) % k + 1, strict=True))
    return values.map(fold_of).to_numpy(dtype=np.int64)


def random_folds(n: int, k: int, seed: int | None = None) -> np.ndarray:
    """Fold (1..k) of each of ``n`` rows, at random, fold sizes differing by at most one."""
    _check_k(k, n, "rows")
    rng = np.random.default_rng(seed)
    return np.asarray(rng.permutation(np.arange(n) % k + 1), dtype=np.int64)


def heldout_log_density(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame,
    y: np.ndarray,
    *,
    group_draws: int = 10,
    seed: int | None = None,
) -> np.ndarray:
    """Log predictive density of each held-out row, ``log mean p(y_i | draws)``.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws of the model fitted without these rows.
    design : Design
        That model's design (its transforms are applied to ``newdata``).
    newdata : DataFrame
        The held-out rows.
    y : ndarray
        Their responses.
    group_draws : int
        Effects drawn for each unseen level per posterior draw (the density is averaged
        over them: a Monte Carlo integral over the group-level distribution).
    seed : int, optional

    Returns
    -------
    ndarray
        One value per row of ``newdata``.
    """
    from scipy.special import logsumexp

    nd = rows_of(design, newdata)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=max(1, group_draws))
    parts = []
    for s in seeds:
        eta, _ = linear_predictor_draws(
            posterior, design, newdata, new_groups="sample", seed=int(s)
        )
        # a distributional formula's effects of unseen levels are drawn too (zi ~ (1 | g))
        mu = design.link.inverse_numpy(eta)
        params = family_params(posterior, design, nd, new_groups="sample", seed=int(s) + 1, mu=mu)
        logp = design.family.logp_reference(np.asarray(y, dtype=float), mu, params, nd.trials)
        parts.append(np.asarray(logp).reshape(-1, len(newdata)))
    stacked = np.concatenate(parts, axis=0)
    return np.asarray(logsumexp(stacked, axis=0) - np.log(stacked.shape[0]))


@dataclass(frozen=True, eq=False)
class KFoldResult:
    """K-fold cross-validation of a fit.

    Attributes
    ----------
    elpd_kfold : float
        Sum of the held-out rows' log predictive densities.
    se : float
        Its standard error, ``sqrt(n · var(pointwise))``.
    pointwise : DataFrame
        One row per observation: ``observation`` (the row label), ``fold``, ``group``
        (the held-out level, grouped folds) and ``elpd``.
    k : int
    group : str or None
        The grouping factor whose levels were held out (None: random folds of rows).
    folds : DataFrame
        One row per fold: ``fold``, ``n_train``, ``n_test``, ``compile_seconds``,
        ``sample_seconds``, ``compile_reused`` (the refit reused a compiled model).
    """

    elpd_kfold: float
    se: float
    pointwise: pd.DataFrame
    k: int
    group: str | None
    folds: pd.DataFrame

    @classmethod
    def from_pointwise(
        cls, pointwise: pd.DataFrame, k: int, group: str | None, folds: pd.DataFrame
    ) -> KFoldResult:
        """The totals of ``pointwise`` (its ``elpd`` column)."""
        values = pointwise["elpd"].to_numpy(dtype=float)
        se = float(np.sqrt(len(values) * np.var(values, ddof=1))) if len(values) > 1 else np.nan
        return cls(float(values.sum()), se, pointwise, k, group, folds)

    def __str__(self) -> str:
        how = f"grouped by {self.group}" if self.group else "random rows"
        return (
            f"{self.k}-fold cross-validation ({how}), {len(self.pointwise)} observations\n"
            f"elpd_kfold = {self.elpd_kfold:.2f} (SE {self.se:.2f})"
        )
