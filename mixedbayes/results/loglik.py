"""Pointwise log-likelihood of a regression fit, from its draws with NumPy and SciPy.

The family's SciPy log-density (:meth:`~mixedbayes.families.base.Family.logp_reference`,
checked against PyMC's by the family registry's tests) at the linear predictor of every
draw: no function is compiled after sampling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.results.imputation import summed_out_log_likelihood
from mixedbayes.results.predict import family_params, linear_predictor_draws, rows_of

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.design import Design

__all__ = ["regression_log_likelihood"]

#: Draws evaluated at once (bounds the memory of the intermediate arrays).
CHUNK_VALUES = 5_000_000


def regression_log_likelihood(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """The log-likelihood of every fitted row under every draw, shape (chain, draw, rows).

    Parameters
    ----------
    posterior : xarray.Dataset
        With the fixed effects, the family's parameters and ``r_<group>`` of every factor.
    design : Design
    """
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    out = np.empty((n_chain, n_draw, design.n))
    step = max(1, CHUNK_VALUES // max(design.n * n_chain, 1))
    nd = rows_of(design, None)
    for start in range(0, n_draw, step):
        part = posterior.isel(draw=slice(start, start + step))
        eta, _ = linear_predictor_draws(part, design, None)
        mu = design.link.inverse_numpy(eta)
        params = family_params(part, design, nd, mu=mu)
        with np.errstate(all="ignore"):
            out[:, start : start + step] = design.family.logp_reference(
                design.y, mu, params, nd.trials
            )
        # rows whose binary covariate was summed out: their marginal log-likelihood
        for row, values in summed_out_log_likelihood(part, design).items():
            out[:, start : start + step, row] = values
    return out
