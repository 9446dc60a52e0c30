"""The ``posterior_predictive`` group of a fit, simulated with NumPy (no compilation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.results.protocols import FitLike

__all__ = ["posterior_predictive"]


def posterior_predictive(fit: FitLike, seed: int | None) -> xr.DataTree:
    """Replicated responses of every draw at the fitted rows, one variable named, dimensioned
    and labelled as the observed response in ``fit.idata["observed_data"]``.

    Regression and nonlinear fits are simulated by :func:`~mixedbayes.results.predict.
    predict_draws` (``kind="response"``); any other model by PyMC's
    ``sample_posterior_predictive``.
    """
    import xarray as xr

    from mixedbayes.diagnostics.checks import _observed_name
    from mixedbayes.results.predict import predict_draws

    name = _observed_name(fit, "observed_data")
    observed = fit.idata["observed_data"][name]
    post = fit.idata["posterior"].to_dataset()
    try:
        draws = predict_draws(post, fit.design, None, kind="response", seed=seed)
    except (NotImplementedError, AttributeError, TypeError):
        return _with_pymc(fit, seed)
    values = np.asarray(draws.to_numpy())
    if values.shape[2:] != observed.shape:
        return _with_pymc(fit, seed)
    if np.issubdtype(np.asarray(observed).dtype, np.integer):
        values = np.rint(values).astype(np.asarray(observed).dtype)
    da = xr.DataArray(
        values,
        dims=("chain", "draw", *observed.dims),
        coords={"chain": post["chain"], "draw": post["draw"], **dict(observed.coords)},
    )
    return xr.DataTree(xr.Dataset({name: da}))


def _with_pymc(fit: Any, seed: int | None) -> xr.DataTree:
    import pymc as pm

    tree = pm.sample_posterior_predictive(
        fit.idata, model=fit.model, random_seed=seed, progressbar=False
    )
    return tree["posterior_predictive"] if "posterior_predictive" in tree.children else tree
