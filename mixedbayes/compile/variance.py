"""The residual SD's variance function in the graph (``variance: {power: fitted}``, nlme's
``varPower``): ``sigma_i = sigma·|mu_i|^delta_power``. A sigma formula (``sigma:``,
``variance: {ident: col}``) is a distributional formula, built by
:func:`~mixedbayes.compile.regression.dpar_predictor`; this module multiplies whatever
``sigma`` is (a scalar or a row vector) by the power of the fitted value.
"""

from __future__ import annotations

from typing import Any

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.priors import scalar_prior
from mixedbayes.design.variance import FITTED_FLOOR, power_of_fitted
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

__all__ = ["apply_variance", "power_factor"]


def power_factor(design: Any, priors: PriorTable, ctx: BuildContext, mu: Any) -> Any:
    """``|mu|^delta_power`` per row, adding ``delta_power`` to ``ctx.model``; None when the
    design has no power variance function."""
    import pytensor.tensor as pt

    if not power_of_fitted(design):
        return None
    name = Names.DELTA_POWER
    delta = scalar_prior(ctx, ctx.names.param(name), priors.get(name), positive=False)
    return pt.power(pt.maximum(pt.abs(mu), FITTED_FLOOR), delta)


def apply_variance(
    design: Any, params: dict[str, Any], mu: Any, priors: PriorTable, ctx: BuildContext
) -> dict[str, Any]:
    """``params`` with ``sigma`` multiplied by :func:`power_factor` (unchanged without a
    power variance function)."""
    factor = power_factor(design, priors, ctx, mu)
    if factor is None:
        return params
    return {**params, "sigma": params["sigma"] * factor}
