"""Results of an ``lmm`` with correlated residuals (``residuals:``; docs/residuals.md).

From the posterior draws with NumPy: the pointwise log-likelihood (each row given the other
rows of its subject) and replicated responses that carry the within-subject correlation
(:mod:`mixedbayes.results.residual_draws` draws them; the implied within-subject covariance
is :func:`mixedbayes.results.residual_covariance.residual_covariance`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.design.residuals import residual_design, residual_log_likelihood
from mixedbayes.results.predict import linear_predictor_draws
from mixedbayes.results.residual_draws import chunks, residual_draws, residual_response

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.design import Design

__all__ = ["residual_pointwise_log_likelihood", "residual_predictive"]


def residual_pointwise_log_likelihood(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """Each fitted row's log-density given the other rows of its subject, (chain, draw,
    rows): the leave-one-out form for non-factorised normal models (Bürkner, Gabry &
    Vehtari 2020; :func:`~mixedbayes.design.residuals.residual_log_likelihood`)."""
    rd = residual_design(design)
    eta, _ = linear_predictor_draws(posterior, design, None)
    c, d, n = eta.shape
    resid = (np.asarray(design.y)[None, None, :] - eta).reshape(c * d, n)
    out = np.empty_like(resid)
    for part, values in chunks(residual_draws(posterior, rd)):
        out[part] = residual_log_likelihood(rd, resid[part], values)
    return out.reshape(c, d, n)


def residual_predictive(posterior: xr.Dataset, design: Design, seed: int | None) -> np.ndarray:
    """Replicated responses at the fitted rows, (chain, draw, rows): the mean (fixed and
    group effects) plus residuals drawn from each draw's within-subject covariance."""
    eta, _ = linear_predictor_draws(posterior, design, None)
    return residual_response(posterior, design, None, eta, seed)
