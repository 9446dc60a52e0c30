"""Discrete covariates summed out of the log-density (``missing:``, families ``bernoulli``
and ``categorical``; :mod:`mixedbayes.design.imputation_discrete`).

- a categorical covariate's submodel: a multinomial logit with one linear predictor per
  level but the first (the main model's reference level, the baseline):
  ``b_<column>[<level>]`` (dim ``<column>_term``) per non-baseline level, with the prior
  table's rows of ``nlpar`` ``<column>`` (the ``Intercept`` row for the intercept, the ``b``
  rows for the others), and their stack ``b_<column>`` (dims ``<column>_term``,
  ``<column>_class``; the baseline's column 0). The observed levels are its likelihood
  (``<column>``, dim ``observed_<column>``); the missing cells' log class probabilities
  ``log softmax(X b)`` are returned for :func:`sum_out_classes`.
- :func:`sum_out_classes`: for each row with a missing cell, the potential
  ``<column>_marginal`` adds ``logsumexp_k[log p(k | submodel) + log p(y | k)] − log p(y |
  fill)``, every class's linear predictor being the fill's plus ``D_k · b`` (one batched
  evaluation over the classes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.priors import vector_prior
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.design import Design
    from mixedbayes.design.imputation import ImputedCovariate

__all__ = ["categorical_submodel", "class_dim", "sum_out_classes"]


def class_dim(column: str) -> str:
    """The dim of a categorical covariate's levels: ``<column>_class``."""
    return f"{column}_class"


def categorical_submodel(cov: ImputedCovariate, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add a categorical covariate's multinomial-logit submodel and its observed levels'
    likelihood to ``ctx.model``; return the log class probabilities of its missing cells,
    (levels, cells)."""
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    column, sub = cov.column, cov.sub
    names = Names(column)
    assert cov.codes is not None
    terms = list(sub.fixed_terms)
    ctx.add_coords(
        {
            names.obs_dim: list(sub.obs_index),
            names.term_dim: terms,
            class_dim(column): list(cov.levels),
            names.observed_dim: list(sub.obs_index[cov.sub_observed]),
            Names.imputed_dim(column): list(cov.labels),
        }
    )
    rows = [
        priors.get("Intercept", "", "", column)
        if t == "Intercept"
        else priors.get("b", t, "", column)
        for t in terms
    ]
    per_level = [
        pt.as_tensor(
            vector_prior(ctx, Names.element(names.b, level), rows, names.term_dim, positive=False)
        )
        for level in cov.levels[1:]
    ]
    B = ctx.deterministic(
        names.b,
        pt.stack([pt.zeros(len(terms)), *per_level], axis=1),
        dims=(names.term_dim, class_dim(column)),
    )
    X = ctx.data(names.data("X"), sub.X, dims=(names.obs_dim, names.term_dim))
    eta = pt.dot(X, B)
    at_observed = ctx.data(names.data("observed_rows"), cov.sub_observed)
    observed = ctx.data(names.data("y_obs"), cov.codes[cov.sub_observed], dims=names.observed_dim)
    ctx.register(
        pm.Categorical.dist(logit_p=eta[at_observed]),
        column,
        observed=observed,
        dims=names.observed_dim,
    )
    if not len(cov.rows):
        return None
    at_missing = ctx.data(names.data("missing_rows"), cov.sub_missing)
    return log_softmax(eta[at_missing], axis=-1).T


def sum_out_classes(
    design: Design,
    ctx: BuildContext,
    column: str,
    class_logp: Any,
    eta: Any,
    params: dict[str, Any],
    y: Any,
    trials: Any,
) -> Any:
    """Sum a discrete covariate's missing cells out of the log-density exactly.

    ``class_logp``: the submodel's log-probability of each class at each missing cell,
    (classes, cells). The observed response's likelihood holds those rows at the fill's
    class (the design's ``X``); the potential ``<column>_marginal`` adds, per row,
    ``logsumexp_k[log p(k | submodel) + log p(y | k)] − log p(y | fill)``, class ``k``'s
    linear predictor being the fill's plus ``D_k · b``.
    """
    import pytensor.tensor as pt

    plan = design.imputation
    assert plan is not None
    cov = plan.covariate(column)
    class_D, fill = cov.class_changes()
    rows = ctx.data(ctx.names.data("rows", column), cov.rows)
    slope_cols = [j for j, t in enumerate(design.fixed_terms) if t != "Intercept"]
    D = ctx.data(ctx.names.data("D", column), np.ascontiguousarray(class_D[:, :, slope_cols]))
    eta_k = eta[rows][None, :] + pt.dot(D, ctx.model[ctx.names.b_slope])
    at_rows = {k: v if v.ndim == 0 else v[rows][None, :] for k, v in params.items()}
    tr = None if trials is None else trials[rows][None, :]
    ll = design.family.logp(y[rows][None, :], design.link.inverse(eta_k), at_rows, tr)
    total = pt.logsumexp(class_logp + ll, axis=0) - ll[fill]
    return ctx.potential(Names.marginal_var(column), total.sum())
