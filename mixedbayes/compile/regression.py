"""pm.Model builder for regression kinds (``lmm``; ``glmm`` later): fixed + group effects.

Variables (the names users see):

- ``b`` (dim ``term``): fixed effects on the original scale of the predictors;
- ``Intercept``: the intercept with the predictors centred at their means (sampled, as in
  brms), and ``b_slope`` (dim ``slope``): the non-intercept fixed effects (sampled);
- the group-effect core's ``sd_<group>``, ``cor_<group>``, ``r_<group>``;
- the family's parameters (``sigma``); the observed response under its column name.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mixedbayes.compile.group_effects import add_group_effects, cor_dim
from mixedbayes.compile.priors import vector_prior
from mixedbayes.design import Design
from mixedbayes.priors.distributions import build_prior
from mixedbayes.priors.table import PriorTable

__all__ = ["build_regression", "response_var_name"]


def response_var_name(design: Design) -> str:
    """Name of the observed variable: the response, made a plain identifier."""
    return re.sub(r"\W+", "_", design.response).strip("_") or "y"


def linear_predictor(design: Design, priors: PriorTable, nlpar: str = "") -> Any:
    """Fixed plus group effects for the model in context (shared by regression kinds)."""
    import pymc as pm
    import pytensor.tensor as pt

    terms = list(design.fixed_terms)
    slopes = [t for t in terms if t != "Intercept"]
    slope_cols = [terms.index(t) for t in slopes]
    Xc = design.X[:, slope_cols] - design.x_means[slope_cols]
    eta: Any = pt.zeros(design.n)
    parts: dict[str, Any] = {}
    if slopes:
        X_data = pm.Data("X", Xc, dims=("obs", "slope"))
        rows = [priors.get("b", t, "", nlpar) for t in slopes]
        b_slope = pt.as_tensor(vector_prior("b_slope", rows, "slope", positive=False))
        eta = eta + pt.dot(X_data, b_slope)
        parts.update(zip(slopes, [b_slope[i] for i in range(len(slopes))], strict=True))
    if design.has_intercept:
        intercept = build_prior("Intercept", [priors.get("Intercept", "", "", nlpar).prior])
        eta = eta + intercept
        shift = design.x_means[slope_cols]
        parts["Intercept"] = intercept - (pt.dot(shift, b_slope) if slopes else 0.0)
    if terms:
        pm.Deterministic("b", pt.stack([parts[t] for t in terms]), dims="term")
    for g in design.groups:
        index = pm.Data(f"index_{g.name}", g.index, dims="obs")
        Z = pm.Data(f"Z_{g.name}", g.Z, dims=("obs", g.term_dim))
        eta = eta + add_group_effects(g, priors, index=index, Z=Z, nlpar=nlpar)
    return eta


def build_regression(design: Design, priors: PriorTable) -> Any:
    """Build the ``pm.Model`` of a regression-kind design."""
    import pymc as pm

    coords = design.coords()
    coords["slope"] = [t for t in design.fixed_terms if t != "Intercept"]
    for g in design.groups:
        if g.correlated:
            coords[cor_dim(g)] = list(g.terms)
    with pm.Model(coords=coords) as model:
        eta = linear_predictor(design, priors)
        mu = design.link.inverse(eta)
        params = {
            p.name: build_prior(p.name, [priors.get(p.name).prior], positive=p.positive)
            for p in design.family.params
        }
        y = pm.Data("y_obs", np.asarray(design.y), dims="obs")
        design.family.likelihood(response_var_name(design), mu, params, y, "obs")
    return model
