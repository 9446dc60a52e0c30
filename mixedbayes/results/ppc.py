"""The ``posterior_predictive`` group of a fit, simulated with NumPy (no compilation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.results.protocols import FitLike

__all__ = ["observed_name", "posterior_predictive"]


def observed_name(fit: FitLike, group: str) -> str:
    """The observed variable in ``group`` of ``fit.idata`` (the response, as the compile
    stage names it; the only variable when the group has one)."""
    from mixedbayes.compile.regression import response_var_name

    name = response_var_name(fit.design)
    if group not in fit.idata.children:
        raise ValueError(f"the fit has no {group!r} group; groups: {list(fit.idata.children)}")
    variables = [str(v) for v in fit.idata[group].data_vars]
    if name in variables:
        return name
    if len(variables) == 1:
        return variables[0]
    raise ValueError(f"cannot tell the observed variable in {group!r} among {variables}")


def posterior_predictive(fit: FitLike, seed: int | None) -> xr.DataTree:
    """Replicated responses of every draw at the fitted rows, one variable named, dimensioned
    and labelled as the observed response in ``fit.idata["observed_data"]``.

    The kind draws them with NumPy (:meth:`~mixedbayes.kinds.Kind.simulate`); a kind that
    does not, or a family without a NumPy simulator, has PyMC's
    ``sample_posterior_predictive`` draw them from the model.
    """
    import xarray as xr

    name = observed_name(fit, "observed_data")
    observed = fit.idata["observed_data"][name]
    post = fit.idata["posterior"].to_dataset()
    try:
        values = fit.kind.simulate(fit.design, post, seed)
    except NotImplementedError:
        values = None
    if values is None:
        return _with_pymc(fit, seed)
    if values.shape[2:] != observed.shape:
        raise RuntimeError(
            f"the simulated responses have shape {values.shape[2:]} per draw but the observed "
            f"{name!r} has {observed.shape}: please report this as a bug."
        )
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
