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
from mixedbayes.design.variance import row_varying_sigma
from mixedbayes.results.predict import family_params, linear_predictor_draws, rows_of
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
    resid = np.asarray(design.y)[None, None, :] - eta
    scale = _row_scale(posterior, design, eta)
    if scale is not None:  # D R D: p(e_i | e_-i) = p(z_i | z_-i) / s_i with z = e / s
        resid = resid / scale
    resid = resid.reshape(c * d, n)
    out = np.empty_like(resid)
    for part, values in chunks(residual_draws(posterior, rd, unit_sigma=scale is not None)):
        out[part] = residual_log_likelihood(rd, resid[part], values)
    out = out.reshape(c, d, n)
    return out if scale is None else out - np.log(scale)


def _row_scale(posterior: xr.Dataset, design: Design, eta: np.ndarray) -> np.ndarray | None:
    """Each fitted row's residual SD (chain, draw, rows) when it varies, else None."""
    if not row_varying_sigma(design):
        return None
    mu = design.link.inverse_numpy(eta)
    sigma = family_params(posterior, design, rows_of(design, None), mu=mu)["sigma"]
    return np.asarray(np.broadcast_to(sigma, eta.shape))


def residual_predictive(posterior: xr.Dataset, design: Design, seed: int | None) -> np.ndarray:
    """Replicated responses at the fitted rows, (chain, draw, rows): the mean (fixed and
    group effects) plus residuals drawn from each draw's within-subject covariance."""
    eta, _ = linear_predictor_draws(posterior, design, None)
    return residual_response(posterior, design, None, eta, seed, _row_scale(posterior, design, eta))
