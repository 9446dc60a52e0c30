"""pm.Model builder for regression kinds (``lmm``, ``glmm``): fixed + group effects.

Every builder takes a :class:`~mixedbayes.compile.context.BuildContext`: the model is explicit
and the names are the context's part's (:class:`~mixedbayes.naming.Names`), so the linear
predictor can be built for several parts of one model. Variables of the plain part (the
names users see):

- ``b`` (dim ``term``): fixed effects on the original scale of the predictors;
- ``Intercept``: the intercept with the predictors centred at their means (sampled, as in
  brms), and ``b_slope`` (dim ``slope``): the non-intercept fixed effects (sampled);
- the group-effect core's ``sd_<group>``, ``cor_<group>``, ``r_<group>``;
- the family's parameters (``sigma``), or, for a parameter with a distributional formula
  (``zi``), ``b_zi`` (dim ``zi_term``) and its own group effects (``sd_<g>_zi``,
  ``r_<g>_zi``); the observed response under its column name;
- per covariate imputed in the model (the spec's ``missing:``,
  :mod:`mixedbayes.design.imputation`): its submodel as a part named after the column
  (``b_chl``, ``sigma_chl``, ``sd_<g>_chl``; the observed cells its likelihood ``chl``, dim
  ``observed_chl``), each missing cell a parameter (``chl_missing``, dim ``chl_row``: the
  data's row labels) with the submodel as its prior, and the response's ``X`` completed in
  the graph (:func:`completed_X`: ``X + (x − fill) · D`` at those rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.context import BuildContext, new_model
from mixedbayes.compile.group_effects import add_group_effects, cor_dim
from mixedbayes.compile.imputation_discrete import categorical_submodel, sum_out_classes
from mixedbayes.compile.priors import scalar_prior, vector_prior
from mixedbayes.compile.variance import apply_variance
from mixedbayes.design.base import ModelDesign
from mixedbayes.design.design import Design
from mixedbayes.design.dpars import DparDesign
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from collections.abc import Callable

    from mixedbayes.design.nonlinear import NonlinearDesign

__all__ = [
    "add_covariate_submodels",
    "add_regression",
    "build_regression",
    "completed_X",
    "dpar_coefficients",
    "dpar_predictor",
    "fixed_effects",
    "linear_predictor",
    "regression_coords",
    "regression_mean",
    "response_var_name",
]


def response_var_name(design: ModelDesign) -> str:
    """Name of the observed variable: the response, made a plain identifier."""
    return re.sub(r"\W+", "_", design.response).strip("_") or "y"


def fixed_effects(
    design: Design,
    priors: PriorTable,
    ctx: BuildContext,
    nlpar: str = "",
    with_data: bool = True,
) -> tuple[Any, Any, Any]:
    """Add ``Intercept``, ``b_slope`` and ``b`` (the part's names); return (intercept,
    b_slope, X data).

    The slopes multiply the predictors centred at their means (``X`` data, observation ×
    slope; not added when ``with_data`` is False); each part is None when the model has no
    such term.
    """
    import pytensor.tensor as pt

    names = ctx.names
    terms = list(design.fixed_terms)
    slopes = [t for t in terms if t != "Intercept"]
    slope_cols = [terms.index(t) for t in slopes]
    intercept = b_slope = X_data = None
    parts: dict[str, Any] = {}
    if slopes:
        if with_data:
            Xc = design.X[:, slope_cols] - design.x_means[slope_cols]
            X_data = ctx.data(names.data("X"), Xc, dims=(names.obs_dim, names.slope_dim))
        rows = [priors.get("b", t, "", nlpar) for t in slopes]
        b_slope = pt.as_tensor(
            vector_prior(ctx, names.b_slope, rows, names.slope_dim, positive=False)
        )
        parts.update(zip(slopes, [b_slope[i] for i in range(len(slopes))], strict=True))
    if design.has_intercept:
        row = priors.get("Intercept", "", "", nlpar)
        intercept = scalar_prior(ctx, names.intercept, row, positive=False)
        if slopes:
            shift = ctx.data(names.data("X_means"), design.x_means[slope_cols], names.slope_dim)
            parts["Intercept"] = intercept - pt.dot(shift, b_slope)
        else:
            parts["Intercept"] = intercept
    if terms:
        ctx.deterministic(names.b, pt.stack([parts[t] for t in terms]), dims=names.term_dim)
    return intercept, b_slope, X_data


def linear_predictor(
    design: Design,
    priors: PriorTable,
    ctx: BuildContext,
    nlpar: str = "",
    hierarchical: bool = True,
    imputed: dict[str, Any] | None = None,
) -> Any:
    """Fixed plus group effects of ``design``'s rows, added to ``ctx.model``.

    ``hierarchical=False`` keeps every centred block on ``r_<group>`` (no ``beta_<group>``).
    ``imputed``: by imputed covariate, its missing cells' values (a tensor); the columns of
    ``X`` that depend on it are rebuilt from them
    (:func:`completed_X`).
    """
    import pytensor.tensor as pt

    names = ctx.names
    intercept, b_slope, X_data = fixed_effects(design, priors, ctx, nlpar)
    if imputed and X_data is not None:
        X_data = completed_X(design, ctx, X_data, imputed)
    eta: Any = pt.zeros(design.n)
    if b_slope is not None:
        eta = eta + pt.dot(X_data, b_slope)
    if intercept is not None:
        eta = eta + intercept
    centring = hierarchical_centring(design) if hierarchical else None
    for g in design.groups:
        index = ctx.data(names.data("index", g.name), g.index, dims=names.obs_dim)
        Z = ctx.data(names.data("Z", g.name), g.Z, dims=(names.obs_dim, g.term_dim))
        level_mean = None
        if centring is not None and centring.factor == g.name:
            level_mean = level_means(ctx, design, g, intercept, b_slope, centring)
        eta = eta + add_group_effects(
            g, priors, ctx, index=index, Z=Z, nlpar=nlpar, level_mean=level_mean
        )
    return eta


@dataclass(frozen=True)
class Centring:
    """How the centred blocks of one factor are centred on the fixed effects.

    Attributes
    ----------
    factor : str
    between : list of int
        Slope columns (positions in ``b_slope``) constant within the factor's levels
        (between-level covariates): the intercept's level mean adds their effect.
    level_values : ndarray, shape (levels, len(between))
        Their centred values per level.
    interactions : dict of str to (list of int, ndarray)
        By varying slope term ``t``: the slope columns equal to ``t``'s column times a
        per-level constant (``time:trt`` for the slope of ``time``), and those constants
        (levels × columns): the slope's level mean adds their effect.
    """

    factor: str
    between: list[int]
    level_values: np.ndarray
    interactions: dict[str, tuple[list[int], np.ndarray]]


def level_means(
    ctx: BuildContext,
    design: Design,
    g: Any,
    intercept: Any,
    b_slope: Any,
    centring: Centring,
) -> dict[str, Any]:
    """What each centred term of factor ``g`` is centred on: a varying slope on its fixed
    slope plus its interactions with between-level covariates, the intercept on the
    population intercept on the original scale (less the mean shift of those slope
    columns) plus the between-level covariates' effects. The likelihood then depends on
    these fixed effects only through the level coefficients."""
    import pytensor.tensor as pt

    slopes = [t for t in design.fixed_terms if t != "Intercept"]
    centred = {g.terms[c] for b in g.blocks if b.parametrization == "centered" for c in b.columns}
    means: dict[str, Any] = {}
    shared = [s for s in slopes if s in centred]
    k = [slopes.index(s) for s in shared]
    for t in shared:
        means[t] = b_slope[slopes.index(t)]
        cols, values = centring.interactions.get(t, ([], np.zeros((g.n_levels, 0))))
        if cols:
            level_c = ctx.data(ctx.names.data("C_level", f"{g.name}_{g.terms.index(t)}"), values)
            means[t] = means[t] + pt.dot(level_c, b_slope[cols])
            k += cols
    icpt = intercept
    if k:
        terms = list(design.fixed_terms)
        where = [terms.index(slopes[j]) for j in k]
        xbar = ctx.data(ctx.names.data("X_means", g.name), design.x_means[where])
        icpt = icpt - pt.dot(xbar, b_slope[k])
    if centring.between:
        level_X = ctx.data(ctx.names.data("X_level", g.name), centring.level_values)
        icpt = icpt + pt.dot(level_X, b_slope[centring.between])
    means["Intercept"] = icpt
    return means


def hierarchical_centring(design: Design) -> Centring | None:
    """How the factor whose centred intercept is centred on the population mean is centred
    (:class:`Centring`); None when no centred factor has an intercept (or the model has
    none)."""
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
    X = design.X[:, slope_cols]
    Xc = X - design.x_means[slope_cols]
    first = np.array([int(np.flatnonzero(g.index == j)[0]) for j in range(g.n_levels)])
    level_values = Xc[first]
    constant = np.all(np.isclose(Xc, level_values[g.index]), axis=0)
    between = [i for i in range(len(slope_cols)) if constant[i]]
    slopes = [terms[j] for j in slope_cols]
    interactions = {}
    for c, t in enumerate(g.terms):
        if t == "Intercept" or t not in slopes:
            continue
        z = g.Z[:, c]
        found = _interactions(X, z, g.index, g.n_levels, skip={slopes.index(t), *between})
        if found[0]:
            interactions[t] = found
    return Centring(g.name, between, level_values[:, between], interactions)


def _interactions(
    X: np.ndarray, z: np.ndarray, index: np.ndarray, n_levels: int, skip: set[int]
) -> tuple[list[int], np.ndarray]:
    """Columns of ``X`` equal to ``z`` times a per-level constant (0 where ``z`` is 0), and
    those constants per level (0 for a level where ``z`` is 0 throughout)."""
    nonzero = np.abs(z) > 1e-12
    cols, values = [], []
    for j in range(X.shape[1]):
        if j in skip or not np.allclose(X[~nonzero, j], 0.0):
            continue
        ratio = np.zeros(len(z))
        ratio[nonzero] = X[nonzero, j] / z[nonzero]
        per_level = np.zeros(n_levels)
        seen = np.zeros(n_levels, dtype=bool)
        rows = np.flatnonzero(nonzero)
        per_level[index[rows[::-1]]] = ratio[rows[::-1]]  # a level's first nonzero row wins
        seen[index[rows]] = True
        if np.allclose(ratio[nonzero], per_level[index[nonzero]]) and seen.any():
            cols.append(j)
            values.append(per_level)
    return cols, (np.stack(values, axis=1) if values else np.zeros((n_levels, 0)))


def dpar_predictor(dpar: DparDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """The family parameter ``dpar.name`` per row from its distributional formula.

    Adds ``b_<param>`` (dim ``<param>_term``; priors ``nlpar`` = the parameter) on the
    uncentred columns ``X_<param>``, and the group effects of its own factors through the
    shared core (:func:`~mixedbayes.compile.group_effects.add_group_effects`:
    ``sd_<g>_<param>``, ``r_<g>_<param>``, read by ``index_<param>_<g>``, ``Z_<param>_<g>``);
    returns the inverse link of the linear predictor (``sigmoid`` for ``zi``).
    """
    import pytensor.tensor as pt

    obs = ctx.names.obs_dim
    names = ctx.names.scoped(dpar.name)
    b = dpar_coefficients(dpar, priors, ctx)
    X = ctx.data(names.data("X"), dpar.X, dims=(obs, names.term_dim))
    eta = pt.dot(X, b)
    for g in dpar.groups:
        index = ctx.data(names.data("index", g.name), g.index, dims=obs)
        Z = ctx.data(names.data("Z", g.name), g.Z, dims=(obs, g.term_dim))
        eta = eta + add_group_effects(g, priors, ctx, index=index, Z=Z, nlpar=dpar.name)
    return dpar.link.inverse(eta)


def dpar_coefficients(dpar: DparDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add ``b_<param>`` (dim ``<param>_term``, priors ``nlpar`` = the parameter) of a
    distributional formula to ``ctx.model``; return it."""
    import pytensor.tensor as pt

    names = ctx.names.scoped(dpar.name)
    rows = [
        priors.get("Intercept", "", "", dpar.name)
        if t == "Intercept"
        else priors.get("b", t, "", dpar.name)
        for t in dpar.terms
    ]
    return pt.as_tensor(vector_prior(ctx, names.b, rows, names.term_dim, positive=False))


def regression_coords(design: Design, names: Names | None = None) -> dict[str, Any]:
    """The model coords of a regression design (of the part ``names``)."""
    names = names or Names()
    coords: dict[str, Any] = {
        names.obs_dim: list(design.obs_index),
        names.term_dim: list(design.fixed_terms),
        names.slope_dim: [t for t in design.fixed_terms if t != "Intercept"],
    }
    for dpar in design.dpars:
        coords[names.scoped(dpar.name).term_dim] = list(dpar.terms)
    for g in (*design.groups, *(g for d in design.dpars for g in d.groups)):
        coords.update(g.coords())
        if g.correlated:
            coords[cor_dim(g)] = list(g.terms)
    return coords


def add_regression(
    design: Design,
    priors: PriorTable,
    ctx: BuildContext,
    hierarchical: bool = True,
    latent: Callable[[BuildContext], Any] | None = None,
) -> Any:
    """Add a regression part (linear predictor, family parameters, likelihood) to
    ``ctx.model`` under ``ctx.names``; return the observed variable.

    ``hierarchical=False`` turns hierarchical centring off (see :func:`linear_predictor`).
    A design whose spec imputes covariates (``design.imputation``) first gets each
    covariate's submodel and missing cells (:func:`add_covariate_submodels`). ``latent``
    adds a term of the linear predictor of its own (a GLMM's latent residual process,
    :mod:`mixedbayes.compile.latent_residuals`) and returns it (one value per row).
    """
    imputed: dict[str, Any] = {}
    summed: dict[str, Any] = {}
    if design.imputation is not None and design.imputation.covariates:
        imputed, summed = add_covariate_submodels(design, priors, ctx)
    eta, mu, params, trials = regression_mean(
        design, priors, ctx, hierarchical, "", imputed, latent
    )
    names = ctx.names
    y = ctx.data(names.data("y_obs"), np.asarray(design.y), dims=names.obs_dim)
    name = response_var_name(design)
    observed = design.family.likelihood(
        ctx.model, name, mu, params, y, names.obs_dim, trials=trials
    )
    for column, class_logp in summed.items():
        sum_out_classes(design, ctx, column, class_logp, eta, params, y, trials)
    return observed


def regression_mean(
    design: Design,
    priors: PriorTable,
    ctx: BuildContext,
    hierarchical: bool = True,
    nlpar: str = "",
    imputed: dict[str, Any] | None = None,
    latent: Callable[[BuildContext], Any] | None = None,
) -> tuple[Any, Any, dict[str, Any], Any]:
    """The linear predictor and mean of every row of ``design``, the family's parameters and
    the trials (data or None) of a regression part under ``ctx.names`` (priors of
    ``nlpar``), added to ``ctx.model``: everything of :func:`add_regression` but the
    likelihood."""
    names = ctx.names
    ctx.add_coords(regression_coords(design, names))
    eta = linear_predictor(
        design, priors, ctx, nlpar=nlpar, hierarchical=hierarchical, imputed=imputed
    )
    if design.offset is not None and np.any(design.offset != 0):
        eta = eta + ctx.data(names.data("offset"), design.offset, dims=names.obs_dim)
    if latent is not None:
        eta = eta + latent(ctx)
    mu = design.link.inverse(eta)
    params: dict[str, Any] = {}
    dpars = {d.name: d for d in design.dpars}
    for p in design.family.params:
        if p.name in dpars:
            params[p.name] = dpar_predictor(dpars[p.name], priors, ctx)
        else:
            row = priors.get(p.name, "", "", nlpar)
            params[p.name] = scalar_prior(ctx, names.param(p.name), row, positive=p.positive)
    params = apply_variance(design, params, mu, priors, ctx)  # variance: {power: fitted}
    trials = None
    if design.trials is not None:
        trials = ctx.data(
            names.data("trials"), np.asarray(design.trials, dtype="int64"), dims=names.obs_dim
        )
    return eta, mu, params, trials


def build_regression(design: Design, priors: PriorTable, hierarchical: bool = True) -> Any:
    """A new ``pm.Model`` of a regression-kind design (``lmm``, ``glmm``).

    ``hierarchical=False`` turns hierarchical centring off (see :func:`linear_predictor`).
    """
    ctx = BuildContext(new_model(regression_coords(design)))
    add_regression(design, priors, ctx, hierarchical)
    return ctx.model


# ------------------------------------------------------------------ imputation (missing:)
def add_covariate_submodels(
    design: Design | NonlinearDesign, priors: PriorTable, ctx: BuildContext
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add every imputed covariate's submodel and its likelihood (the observed cells) to
    ``ctx.model``, and the missing cells of each continuous covariate as parameters (any
    design with an :class:`~mixedbayes.design.imputation.ImputationPlan`: a regression's, or
    a nonlinear model's, whose parameters' ``X`` it then completes).

    Returns the missing cells' variables by continuous column, and by discrete column
    (summed out) the log-probabilities of each class at its missing cells, (classes, cells);
    a categorical column's submodel is a multinomial logit
    (:func:`~mixedbayes.compile.imputation_discrete.categorical_submodel`).
    """
    import pytensor.tensor as pt

    plan = design.imputation
    assert plan is not None
    out: dict[str, Any] = {}
    summed: dict[str, Any] = {}
    for cov in plan.covariates:
        column = cov.column
        if cov.categorical:
            class_logp = categorical_submodel(cov, priors, ctx.scoped(column))
            if class_logp is not None:
                summed[column] = class_logp
            continue
        names = Names(column)
        sub = cov.sub
        _, mu, params, _ = regression_mean(sub, priors, ctx.scoped(column), nlpar=column)
        ctx.add_coords(
            {
                names.observed_dim: list(sub.obs_index[cov.sub_observed]),
                Names.imputed_dim(column): list(cov.labels),
            }
        )
        observed = ctx.data(
            names.data("y_obs"), np.asarray(sub.y)[cov.sub_observed], dims=names.observed_dim
        )
        # Row indices are data containers, not constants: data of the same size with other
        # cells missing is the same structure, and its compiled program is reused.
        at_observed = ctx.data(names.data("observed_rows"), cov.sub_observed)
        sub.family.likelihood(
            ctx.model, column, mu[at_observed], params, observed, names.observed_dim
        )
        if not len(cov.rows):
            continue
        p = mu[ctx.data(names.data("missing_rows"), cov.sub_missing)]
        if cov.spec.discrete:
            k = len(cov.rows)
            summed[column] = pt.stack(
                [
                    sub.family.logp(pt.zeros(k, dtype="int64"), p, params),
                    sub.family.logp(pt.ones(k, dtype="int64"), p, params),
                ]
            )
            continue
        dist = sub.family.dist(p, params)
        out[column] = ctx.register(dist, Names.missing_var(column), dims=Names.imputed_dim(column))
    return out, summed


def completed_X(design: Design, ctx: BuildContext, X_data: Any, imputed: dict[str, Any]) -> Any:
    """The centred slope columns ``X_data`` (observation × slope) with the rows of every
    imputed covariate's missing cells rebuilt from their values: ``+ (x − fill) · D``."""
    import pytensor.tensor as pt

    plan = design.imputation
    assert plan is not None
    slope_cols = [j for j, t in enumerate(design.fixed_terms) if t != "Intercept"]
    X = X_data
    for cov in plan.covariates:
        x = imputed.get(cov.column)
        D = cov.D[:, slope_cols]
        if x is None or not np.any(D):
            continue
        D_data = ctx.data(ctx.names.data("D", cov.column), D)
        fill = ctx.data(ctx.names.data("fill", cov.column), np.asarray(cov.fill))
        rows = ctx.data(ctx.names.data("rows", cov.column), cov.rows)
        X = pt.inc_subtensor(X[rows], (x - fill)[:, None] * D_data)
    return X
