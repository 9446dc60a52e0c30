"""The ``imputed`` group of a nonlinear fit (the spec's ``missing:``; see
:mod:`mixedbayes.results.imputation`, whose machinery this reuses).

- a covariate of parameter formulas: its sampled cells ``<column>_missing``, and in rows with
  a missing response draws from its submodel's posterior predictive;
- the response: at the observation rows kept out of the likelihood, the posterior predictive
  of the structural model with the residual error (each row's parameters from its covariates
  — an imputed covariate at its drawn value — and its subject's effects; a subject seen only
  in those rows draws its effects from the fitted distribution), with the fit's doses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.results.imputation import imputed_draws

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.design.nonlinear import NonlinearDesign

__all__ = ["nonlinear_imputed_draws", "nonlinear_response_draws"]


def nonlinear_response_draws(
    posterior: xr.Dataset,
    design: NonlinearDesign,
    frame: pd.DataFrame,
    covariates: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Posterior predictive draws of the response at the observation rows ``frame`` kept out
    of the likelihood, (chain, draw, rows); ``covariates``: by imputed column, the draws of
    its cells among these rows (their positions ``predictive_rows``)."""
    from mixedbayes.design.imputation import affine_change
    from mixedbayes.design.nonlinear_rows import aside_rows
    from mixedbayes.results.nonlinear_predict import (
        imputed_eta_shift,
        parameter_draws,
        residual_draws,
        structural_draws,
    )

    plan = design.imputation
    assert plan is not None
    group_seed, noise_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    rows = aside_rows(design, frame)
    cells = {}
    for cov in plan.covariates:
        x = covariates.get(cov.column)
        if x is None:
            continue
        at = frame.iloc[cov.predictive_rows]
        parts_D = {
            key: affine_change(
                design.param(key).matrices.common, design.param(key).terms, at, cov.column
            )
            for key in cov.parts_D
        }
        cells[cov.column] = (cov.predictive_rows, x, parts_D)
    theta = parameter_draws(
        posterior,
        design,
        rows,
        new_groups="sample",
        rng=np.random.default_rng(group_seed),
        eta_shift=imputed_eta_shift(posterior, design, rows.n, cells),
    )
    mu = structural_draws(design, rows, theta)
    return residual_draws(posterior, design.spec.error, mu, np.random.default_rng(noise_seed))


def nonlinear_imputed_draws(
    posterior: xr.Dataset, design: NonlinearDesign, seed: int | None = None
) -> dict[str, tuple[str, pd.Index, np.ndarray]]:
    """The ``imputed`` group's variables of a nonlinear design (see
    :func:`~mixedbayes.results.imputation.imputed_draws`)."""
    return imputed_draws(posterior, design, seed, response_draws=nonlinear_response_draws)
