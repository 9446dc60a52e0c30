"""pm.Model builder of the ``nonlinear`` kind: per-parameter linear predictors on link scales,
the shared group-effect core across parameters, a structural mean, a residual error model.

Variables: ``b_<key>`` (dim ``<key>_term``) per parameter key (``log_CL``); the core's
``sd_<group>``, ``cor_<group>``, ``r_<group>`` with terms named by parameter (``log_CL``,
``log_CL:wt``); residual ``sigma`` and/or ``sigma_prop``. A covariate of parameter formulas
imputed in the model (the spec's ``missing:``) adds its submodel as the regression kinds do
(:func:`~mixedbayes.compile.regression.add_covariate_submodels`: ``b_<column>``,
``sigma_<column>``, ``<column>_missing``) and completes every parameter's ``X`` that uses it
(:func:`completed_parameter_X`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.context import BuildContext, new_model
from mixedbayes.compile.group_effects import contribution, cor_dim, group_effects
from mixedbayes.compile.priors import ordered_vector_prior, scalar_prior, vector_prior
from mixedbayes.compile.regression import add_covariate_submodels, response_var_name
from mixedbayes.errors import DataError, format_rows
from mixedbayes.naming import Names
from mixedbayes.priors.nonlinear import ERROR_PARAMS
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.nonlinear import NonlinearDesign

__all__ = [
    "add_nonlinear",
    "build_nonlinear",
    "completed_parameter_X",
    "fixed_effects",
    "nonlinear_response_name",
    "parameter_predictors",
    "structural_mean",
]

#: Name of the observed variable (the response column as an identifier).
nonlinear_response_name = response_var_name


def parameter_predictors(
    design: NonlinearDesign, priors: PriorTable, ctx: BuildContext
) -> dict[str, Any]:
    """Each parameter's value per observation on its natural scale (``CL``, ``V``, ...).

    Each parameter is a part of the model (``b_<key>``, ``<key>_term``, ``X_<key>``) over
    the same observations; the grouping factors' one covariance spans every parameter.
    """
    import pytensor.tensor as pt

    obs = ctx.names.obs_dim
    eta: dict[str, Any] = {}
    imputed: dict[str, Any] = {}
    if design.imputation is not None and design.imputation.covariates:
        imputed, _ = add_covariate_submodels(design, priors, ctx)
    b = fixed_effects(design, priors, ctx)
    for p in design.params:
        names = p.names
        X = ctx.data(names.data("X"), p.X, dims=(obs, names.term_dim))
        X = completed_parameter_X(design, ctx, p.key, X, imputed)
        eta[p.key] = pt.dot(X, b[p.key])
    for g in design.groups:
        r = group_effects(g.structure, priors, ctx)
        index = ctx.data(ctx.names.data("index", g.name), g.index, dims=obs)
        Z = ctx.data(ctx.names.data("Z", g.name), g.Z, dims=(obs, g.term_dim))
        for p in design.params:
            cols = design.group_columns.get((g.name, p.key))
            if cols:
                eta[p.key] = eta[p.key] + contribution(r, index, Z, cols)
    return {p.name: p.link.inverse(eta[p.key]) for p in design.params}


def completed_parameter_X(
    design: NonlinearDesign, ctx: BuildContext, key: str, X: Any, imputed: dict[str, Any]
) -> Any:
    """Parameter ``key``'s design ``X`` (observation × term, uncentred) with the rows of every
    imputed covariate's missing cells rebuilt from their values (``imputed``, by column):
    ``+ (x − fill) · D`` with ``D`` the parameter's change per unit of the covariate."""
    import pytensor.tensor as pt

    plan = design.imputation
    if plan is None:
        return X
    for cov in plan.covariates:
        x = imputed.get(cov.column)
        D = cov.parts_D.get(key)
        if x is None or D is None or not np.any(D):
            continue
        D_data = ctx.data(Names(key).data("D", cov.column), D)
        X = pt.inc_subtensor(X[cov.rows], (x - cov.fill)[:, None] * D_data)
    return X


def fixed_effects(design: NonlinearDesign, priors: PriorTable, ctx: BuildContext) -> dict[str, Any]:
    """``b_<key>`` of every parameter, by key.

    The parameters of ``design.order`` (largest first) have ordered intercepts: the prior of
    each one's intercept is its prior truncated below at the next one's intercept (the last
    one's is its prior as it is), so that ``lrc1 = lrc2 + exp(u)`` on the sampler's scale and
    the order holds at every point. The intercept of an ordered parameter with covariate
    terms is its own variable ``b_<key>[Intercept]``.
    """
    import pytensor.tensor as pt

    out: dict[str, Any] = {}
    lower_of = dict(zip(design.order[:-1], design.order[1:], strict=True))

    def build(key: str) -> Any:
        if key in out:
            return out[key]
        p = design.param(key)
        names = p.names
        rows = [priors.get("b", t, "", p.key) for t in p.terms]
        if key in lower_of:
            below = build(lower_of[key])
            below_term = design.param(lower_of[key]).terms.index("Intercept")
            b = ordered_vector_prior(
                ctx, names.b, rows, names.term_dim, p.terms.index("Intercept"), below[below_term]
            )
        else:
            b = vector_prior(ctx, names.b, rows, names.term_dim, positive=False)
        out[key] = pt.as_tensor(b)
        return out[key]

    for p in design.params:
        build(p.key)
    return out


def structural_mean(design: NonlinearDesign, theta: dict[str, Any], xp: str = "pytensor") -> Any:
    """The structural model's prediction per observation from parameters per observation."""
    spec = design.spec
    if spec.curve_model is not None:
        import pytensor.tensor as pt

        from mixedbayes.nonlinear.library import get_curve_model

        return get_curve_model(spec.curve_model).mean(design.time, theta, pt)
    if spec.model is not None:
        import pytensor.tensor as pt

        from mixedbayes.pk.library import concentration, get_pk_model

        return concentration(get_pk_model(spec.model), design.doses, theta, pt)
    if spec.expression is not None:
        from mixedbayes.nonlinear.expression import parse_expression

        expr = parse_expression(spec.expression)
        return expr.evaluate({**design.covariates, **theta}, xp="pytensor")
    return _ode_mean(design, theta)


def _ode_mean(design: NonlinearDesign, theta: dict[str, Any]) -> Any:
    from mixedbayes.nonlinear.expression import parse_expression
    from mixedbayes.pk.ode import observe, parse_ode, solve_ode, subject_grid

    spec = design.spec
    assert spec.ode is not None and design.time is not None and design.dosing is not None
    system = parse_ode(spec.ode.rhs)
    doses = [(r.subject, r.time, r.amount) for r in design.dosing.records]
    grid, first = subject_grid(system, spec.ode.dose_state, design.subjects, design.time, doses)
    per_subject = {name: value[first] for name, value in theta.items()}
    states = solve_ode(system, grid, per_subject, substeps=spec.ode.substeps)
    at_obs = observe(states, grid)
    env = {**theta, **{s: at_obs[:, i] for i, s in enumerate(system.states)}}
    return parse_expression(spec.ode.observe, where="ode.observe").evaluate(env, xp="pytensor")


def _check_lognormal(design: NonlinearDesign) -> None:
    bad = design.obs_index[design.y <= 0]
    if len(bad):
        raise DataError(
            f"the log-normal error model needs a positive response; rows {format_rows(list(bad))}"
            " are <= 0.",
            where=f"column '{design.response}'",
            hint="use error: additive or combined, or drop those rows (e.g. below the LLOQ).",
        )


def _residual(
    ctx: BuildContext, error: str, name: str, mu: Any, scale: dict[str, Any], y: Any
) -> Any:
    """The observed variable of the residual error model ``error``."""
    import pymc as pm
    import pytensor.tensor as pt

    if error == "lognormal":
        log_mu = pt.log(pt.maximum(mu, 1e-12))
        dist = pm.LogNormal.dist(mu=log_mu, sigma=scale["sigma"])
    else:
        if error == "additive":
            sd = scale["sigma"]
        elif error == "proportional":
            sd = scale["sigma_prop"] * pt.abs(mu) + 1e-8
        else:  # combined
            sd = pt.sqrt(scale["sigma"] ** 2 + (scale["sigma_prop"] * mu) ** 2)
        dist = pm.Normal.dist(mu=mu, sigma=sd)
    return ctx.register(dist, name, observed=y, dims=ctx.names.obs_dim)


def add_nonlinear(design: NonlinearDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add a nonlinear model (parameters, structural mean, residual error) to ``ctx.model``;
    return the observed variable."""
    error = design.spec.error
    if error == "lognormal":
        _check_lognormal(design)
    ctx.add_coords(nonlinear_coords(design))
    theta = parameter_predictors(design, priors, ctx)
    with ctx.active():
        mu = structural_mean(design, theta)
    scale = {
        name: scalar_prior(ctx, ctx.names.param(name), priors.get(name), positive=True)
        for name in ERROR_PARAMS[error]
    }
    y = ctx.data(ctx.names.data("y_obs"), np.asarray(design.y), dims=ctx.names.obs_dim)
    return _residual(ctx, error, nonlinear_response_name(design), mu, scale, y)


def nonlinear_coords(design: NonlinearDesign) -> dict[str, Any]:
    """The model coords of a nonlinear design."""
    coords = design.coords()
    for g in design.groups:
        if g.correlated:
            coords[cor_dim(g)] = list(g.terms)
    return coords


def build_nonlinear(design: NonlinearDesign, priors: PriorTable) -> Any:
    """A new ``pm.Model`` of a nonlinear design."""
    ctx = BuildContext(new_model(nonlinear_coords(design)))
    add_nonlinear(design, priors, ctx)
    return ctx.model
