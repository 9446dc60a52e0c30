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
from mixedbayes.design.design import OBS_DIM
from mixedbayes.priors.distributions import build_prior
from mixedbayes.priors.table import PriorTable

__all__ = [
    "build_regression",
    "fixed_effects",
    "regression_coords",
    "response_var_name",
]


def response_var_name(design: Design) -> str:
    """Name of the observed variable: the response, made a plain identifier."""
    return re.sub(r"\W+", "_", design.response).strip("_") or "y"


def fixed_effects(
    design: Design, priors: PriorTable, nlpar: str = "", with_data: bool = True
) -> tuple[Any, Any, Any]:
    """Add ``Intercept``, ``b_slope`` and ``b``; return (intercept, b_slope, X data).

    The slopes multiply the predictors centred at their means (``X`` data, observation ×
    slope; not added when ``with_data`` is False); each part is None when the model has no
    such term.
    """
    import pymc as pm
    import pytensor.tensor as pt

    terms = list(design.fixed_terms)
    slopes = [t for t in terms if t != "Intercept"]
    slope_cols = [terms.index(t) for t in slopes]
    intercept = b_slope = X_data = None
    parts: dict[str, Any] = {}
    if slopes:
        if with_data:
            Xc = design.X[:, slope_cols] - design.x_means[slope_cols]
            X_data = pm.Data("X", Xc, dims=(OBS_DIM, "slope"))
        rows = [priors.get("b", t, "", nlpar) for t in slopes]
        b_slope = pt.as_tensor(vector_prior("b_slope", rows, "slope", positive=False))
        parts.update(zip(slopes, [b_slope[i] for i in range(len(slopes))], strict=True))
    if design.has_intercept:
        intercept = build_prior("Intercept", [priors.get("Intercept", "", "", nlpar).prior])
        if slopes:
            shift = pm.Data("X_means", design.x_means[slope_cols], dims="slope")
            parts["Intercept"] = intercept - pt.dot(shift, b_slope)
        else:
            parts["Intercept"] = intercept
    if terms:
        pm.Deterministic("b", pt.stack([parts[t] for t in terms]), dims="term")
    return intercept, b_slope, X_data


def linear_predictor(
    design: Design, priors: PriorTable, nlpar: str = "", hierarchical: bool = True
) -> Any:
    """Fixed plus group effects for the model in context (shared by regression kinds).

    ``hierarchical=False`` keeps every centred block on ``r_<group>`` (no ``beta_<group>``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    intercept, b_slope, X_data = fixed_effects(design, priors, nlpar)
    eta: Any = pt.zeros(design.n)
    if b_slope is not None:
        eta = eta + pt.dot(X_data, b_slope)
    if intercept is not None:
        eta = eta + intercept
    centring = _hierarchical_centring(design) if hierarchical else None
    for g in design.groups:
        index = pm.Data(f"index_{g.name}", g.index, dims=OBS_DIM)
        Z = pm.Data(f"Z_{g.name}", g.Z, dims=(OBS_DIM, g.term_dim))
        level_mean = None
        if centring is not None and centring[0] == g.name:
            level_mean = _level_means(design, g, intercept, b_slope, centring)
        eta = eta + add_group_effects(
            g, priors, index=index, Z=Z, nlpar=nlpar, level_mean=level_mean
        )
    return eta


def _level_means(
    design: Design, g: Any, intercept: Any, b_slope: Any, centring: tuple[str, list[int], Any]
) -> dict[str, Any]:
    """What each centred term of factor ``g`` is centred on: a varying slope on its fixed
    slope, the intercept on the population intercept on the original scale (less the
    centred slopes' mean shift) plus the between-level covariates' effects. The likelihood
    then depends on the fixed effects only through the level coefficients."""
    import pymc as pm
    import pytensor.tensor as pt

    slopes = [t for t in design.fixed_terms if t != "Intercept"]
    centred = {g.terms[c] for b in g.blocks if b.parametrization == "centered" for c in b.columns}
    means: dict[str, Any] = {}
    icpt = intercept
    shared = [s for s in slopes if s in centred]
    if shared:
        k = [slopes.index(s) for s in shared]
        terms = list(design.fixed_terms)
        xbar = pm.Data(f"X_means_{g.name}", design.x_means[[terms.index(s) for s in shared]])
        icpt = icpt - pt.dot(xbar, b_slope[k])
        means.update({s: b_slope[slopes.index(s)] for s in shared})
    if centring[1]:
        level_X = pm.Data(f"X_level_{g.name}", centring[2])
        icpt = icpt + pt.dot(level_X, b_slope[centring[1]])
    means["Intercept"] = icpt
    return means


def _hierarchical_centring(design: Design) -> tuple[str, list[int], np.ndarray] | None:
    """The factor whose centred intercept is centred on the population mean, the slope
    columns constant within its levels (between-level covariates) and their centred values
    per level; None when no centred factor has an intercept (or the model has none)."""
    if not design.has_intercept:
        return None
    candidates = [
        g
        for g in design.groups
        if "Intercept" in g.terms
        and any(
            b.parametrization == "centered" and g.terms.index("Intercept") in b.columns
            for b in g.blocks
        )
    ]
    if not candidates:
        return None
    g = max(candidates, key=lambda f: f.n_levels)
    terms = list(design.fixed_terms)
    slope_cols = [j for j, t in enumerate(terms) if t != "Intercept"]
    Xc = design.X[:, slope_cols] - design.x_means[slope_cols]
    first = np.array([int(np.flatnonzero(g.index == j)[0]) for j in range(g.n_levels)])
    level_values = Xc[first]
    constant = np.all(np.isclose(Xc, level_values[g.index]), axis=0)
    between = [i for i in range(len(slope_cols)) if constant[i]]
    return g.name, between, level_values[:, between]


def zi_predictor(design: Design, priors: PriorTable) -> Any:
    """``b_zi`` (dim ``zi_term``) and the zero-inflation probability per row (logit link)."""
    import pymc as pm
    import pytensor.tensor as pt

    assert design.zi_X is not None
    rows = [
        priors.get(
            "Intercept" if t == "Intercept" else "b", "" if t == "Intercept" else t, "", "zi"
        )
        for t in design.zi_terms
    ]
    b_zi = pt.as_tensor(vector_prior("b_zi", rows, "zi_term", positive=False))
    X_zi = pm.Data("X_zi", design.zi_X, dims=(OBS_DIM, "zi_term"))
    return pt.sigmoid(pt.dot(X_zi, b_zi))


def regression_coords(design: Design) -> dict[str, Any]:
    """The ``pm.Model`` coords of a regression design."""
    coords = design.coords()
    coords["slope"] = [t for t in design.fixed_terms if t != "Intercept"]
    if design.zi_terms:
        coords["zi_term"] = list(design.zi_terms)
    for g in design.groups:
        if g.correlated:
            coords[cor_dim(g)] = list(g.terms)
    return coords


def build_regression(design: Design, priors: PriorTable, hierarchical: bool = True) -> Any:
    """Build the ``pm.Model`` of a regression-kind design (``lmm``, ``glmm``).

    ``hierarchical=False`` turns hierarchical centring off (see :func:`linear_predictor`).
    """
    import pymc as pm

    with pm.Model(coords=regression_coords(design)) as model:
        eta = linear_predictor(design, priors, hierarchical=hierarchical)
        if design.offset is not None and np.any(design.offset != 0):
            eta = eta + pm.Data("offset", np.asarray(design.offset), dims=OBS_DIM)
        mu = design.link.inverse(eta)
        params: dict[str, Any] = {}
        for p in design.family.params:
            if p.predictor:
                params[p.name] = zi_predictor(design, priors)
            else:
                prior = priors.get(p.name).prior
                params[p.name] = build_prior(p.name, [prior], positive=p.positive)
        trials = None
        if design.trials is not None:
            trials = pm.Data("trials", np.asarray(design.trials, dtype="int64"), dims=OBS_DIM)
        y = pm.Data("y_obs", np.asarray(design.y), dims=OBS_DIM)
        design.family.likelihood(response_var_name(design), mu, params, y, OBS_DIM, trials=trials)
    return model
