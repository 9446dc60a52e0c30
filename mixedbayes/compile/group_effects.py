"""The group-effect core, shared by every model kind.

For one grouping factor's structure (:class:`~mixedbayes.design.GroupStructure`: levels, terms,
blocks; apart from any rows) it adds to the context's model:

- ``sd_<group>`` (dim ``<group>_term``): the SD of each term's effects;
- per correlated block, the Cholesky factor of its LKJ correlation matrix
  (``cor_chol_<group>``) and, over all the factor's terms, ``cor_<group>``
  (dims ``<group>_term``, ``<group>_term2``; 0 between terms of different blocks);
- ``r_<group>`` (dims ``<group>``, ``<group>_term``): the effects, with the real level names.

Each block is centred (``r ~ MvNormal(0, diag(sd) Ω diag(sd))``) or non-centred
(``z ~ Normal(0, 1)``, ``r = (z Lᵀ) · sd``) as the design chose. The core returns the
effects ``r`` (levels × terms); each set of rows reads them through its row map,
``sum_k Z[:, k] · r[index, columns[k]]`` (:func:`contribution`), so several parts of one model
(the parameters of a nonlinear model, the outcomes of a joint model) share one covariance.
Names come from :class:`~mixedbayes.naming.Names`; group-level names are not prefixed by part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.priors import vector_prior
from mixedbayes.design.groups import GroupBlock, GroupFactor, GroupStructure
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

__all__ = [
    "add_group_effects",
    "contribution",
    "cor_dim",
    "group_effects",
    "group_scales",
    "read_effects",
    "scale_cholesky",
]


def cor_dim(factor: GroupStructure | GroupFactor) -> str:
    """Second dimension name of ``cor_<key>``."""
    return Names.cor_dim(factor.key)


def _block_effects(
    ctx: BuildContext,
    factor: GroupStructure,
    block: GroupBlock,
    b: int,
    sd: Any,
    chol_corr: Any,
    single: bool,
    level_mean: Any = None,
) -> Any:
    import pymc as pm
    import pytensor.tensor as pt

    g = factor.key
    cols = list(block.columns)
    k = len(cols)
    sd_b = sd[cols]
    suffix = "" if single else str(b)
    dims = (factor.dim, factor.term_dim if single else factor.block_term_dim(b))
    # Hierarchical centring: a centred block holding the intercept samples the level
    # coefficients around the population intercept (plus the between-level covariates),
    # beta_j ~ N(mean_j, ...), and r_j = beta_j - mean_j; same posterior, better geometry.
    mean = None
    if level_mean is not None and block.parametrization == "centered":
        centred = [(i, factor.terms[c]) for i, c in enumerate(cols)]
        centred = [(i, t) for i, t in centred if t in level_mean]
        if centred:
            mean = pt.zeros((factor.n_levels, k))
            for i, t in centred:
                mean = pt.set_subtensor(mean[:, i], level_mean[t])
    name = Names.beta(g, suffix) if mean is not None else Names.r(g, suffix)
    with ctx.active():
        if chol_corr is not None:
            if block.parametrization == "centered":
                chol = sd_b[:, None] * chol_corr
                mu = np.zeros((factor.n_levels, k)) if mean is None else mean
                coef = pm.MvNormal(name, mu=mu, chol=chol, dims=dims)
                return coef if mean is None else coef - mean
            z = pm.Normal(Names.z(g, suffix), 0.0, 1.0, dims=dims)
            return pt.dot(z, chol_corr.T) * sd_b
        if block.parametrization == "centered":
            loc: Any = 0.0 if mean is None else mean
            coef = pm.Normal(name, loc, sd_b, dims=dims)
            return coef if mean is None else coef - mean
        z = pm.Normal(Names.z(g, suffix), 0.0, 1.0, dims=dims)
        return z * sd_b


def group_scales(
    factor: GroupStructure, priors: PriorTable, ctx: BuildContext, nlpar: str = ""
) -> tuple[Any, list[Any]]:
    """Add the factor's ``sd_<key>``, the LKJ Cholesky factor of each correlated block
    (``cor_chol_<key>[_<block>]``) and ``cor_<key>``; return ``sd`` and the Cholesky
    factors (None for an uncorrelated block). The prior rows are the factor's (``group`` its
    name, ``nlpar`` as given); the names are built on its key (``sd_Subject_zi``)."""
    import pymc as pm
    import pytensor.tensor as pt

    g = factor.key
    sd_rows = [priors.get("sd", t, factor.name, nlpar) for t in factor.terms]
    sd = pt.as_tensor(vector_prior(ctx, Names.sd(g), sd_rows, factor.term_dim, positive=True))
    eta = (
        float(priors.get("cor", "", factor.name, nlpar).prior.args[0]) if factor.correlated else 1.0
    )
    single = len(factor.blocks) == 1
    chols: list[Any] = []
    for b, block in enumerate(factor.blocks):
        suffix = "" if single else str(b)
        if not block.correlated:
            chols.append(None)
            continue
        with ctx.active():
            chols.append(pm.LKJCorr(Names.cor_chol(g, suffix), n=len(block.columns), eta=eta))
    if factor.correlated:
        k = len(factor.terms)
        cor = pt.eye(k)
        for block, chol in zip(factor.blocks, chols, strict=True):
            if chol is not None:
                cols = np.asarray(block.columns)
                cor = pt.set_subtensor(cor[np.ix_(cols, cols)], pt.dot(chol, chol.T))
        ctx.deterministic(Names.cor(g), cor, dims=(factor.term_dim, cor_dim(factor)))
    return sd, chols


def scale_cholesky(factor: GroupStructure, sd: Any, chols: Sequence[Any]) -> Any:
    """The lower-triangular ``L`` (terms × terms) with ``cov(r_j) = L Lᵀ``: block-diagonal,
    ``diag(sd_b) · chol_b`` for a correlated block and ``diag(sd_b)`` otherwise."""
    import pytensor.tensor as pt

    k = len(factor.terms)
    L = pt.zeros((k, k))
    for block, chol in zip(factor.blocks, chols, strict=True):
        cols = np.asarray(block.columns)
        piece = sd[cols][:, None] * chol if chol is not None else pt.diag(sd[cols])
        L = pt.set_subtensor(L[np.ix_(cols, cols)], piece)
    return L


def group_effects(
    factor: GroupStructure,
    priors: PriorTable,
    ctx: BuildContext,
    nlpar: str = "",
    level_mean: Any = None,
) -> Any:
    """Add the factor's ``sd_``, ``cor_`` and ``r_`` variables; return ``r`` (levels × terms).

    Parameters
    ----------
    factor : GroupStructure
        What the covariance is about (a ``GroupFactor``'s ``structure``; after
        :func:`~mixedbayes.design.merge_factors`, the terms of several parts).
    priors : PriorTable
        Must hold the ``sd`` rows of every term (and ``cor`` for correlated factors), with
        ``nlpar`` as given.
    nlpar : str
        The nonlinear parameter (or the family parameter of a distributional formula, ``zi``)
        the prior rows belong to (empty for the plain part of regression models and for
        nonlinear factors whose terms span several parameters).
    level_mean : dict, optional
        By term, what the level coefficients are centred on (``"Intercept"``: per level,
        the population intercept plus the between-level covariate effects; a varying slope:
        its fixed slope): a centred block holding the intercept is then sampled
        hierarchically centred (variable ``beta_<group>``; ``r_<group>`` is the deviation).
    ctx : BuildContext
        The model to add to.
    """
    import pytensor.tensor as pt

    g = factor.key
    sd, chols = group_scales(factor, priors, ctx, nlpar)
    # One block per block of the factor; a block covering every term in order is named
    # r_<group> (or z_<group>) directly.
    single = len(factor.blocks) == 1
    pieces = [
        pt.as_tensor(_block_effects(ctx, factor, block, b, sd, chol, single, level_mean))
        for b, (block, chol) in enumerate(zip(factor.blocks, chols, strict=True))
    ]
    if single and factor.blocks[0].parametrization == "centered" and level_mean is None:
        return pieces[0]
    order = np.argsort(np.concatenate([b.columns for b in factor.blocks]))
    full = pt.concatenate(pieces, axis=1)[:, order] if not single else pieces[0]
    return ctx.deterministic(Names.r(g), full, dims=(factor.dim, factor.term_dim))


def contribution(r: Any, index: Any, Z: Any, columns: Sequence[int] | None = None) -> Any:
    """``sum_k Z[:, k] · r[index, k]`` over ``columns`` (all terms when None)."""
    import pytensor.tensor as pt

    if columns is not None:
        cols = list(columns)
        return pt.sum(Z[:, cols] * r[index][:, cols], axis=1)
    return pt.sum(Z * r[index], axis=1)


def read_effects(r: Any, index: Any, Z: Any, columns: Sequence[int]) -> Any:
    """What one set of rows (a :class:`~mixedbayes.design.RowMap`) reads of ``r``:
    ``sum_k Z[:, k] · r[index, columns[k]]``, ``Z`` holding only the row map's columns."""
    import pytensor.tensor as pt

    return pt.sum(Z * r[index][:, list(columns)], axis=1)


def add_group_effects(
    factor: GroupFactor,
    priors: PriorTable,
    ctx: BuildContext,
    *,
    index: Any,
    Z: Any,
    nlpar: str = "",
    level_mean: Any = None,
) -> Any:
    """Add the factor's effects to ``ctx.model``; return their linear-predictor term.

    Parameters
    ----------
    factor : GroupFactor
    priors : PriorTable
    ctx : BuildContext
    index, Z : tensor-like
        Level index per row and the term values per row (data containers, so that new data
        of the same shape can be swapped in).
    nlpar : str
        The nonlinear parameter these effects belong to (empty for regression models).
    """
    r = group_effects(factor.structure, priors, ctx, nlpar, level_mean)
    if len(factor.terms) == 1 and factor.terms[0] == "Intercept":
        return r[index, 0]
    return contribution(r, index, Z)
