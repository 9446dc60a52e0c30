"""The Gaussian ``lmm`` with correlated residuals within a subject (``residuals:``).

Per subject ``j`` the residuals ``e_j = y_j − X_j β − Z_j r_j`` are multivariate normal,
``e_j ~ MvNormal(0, R_j)``, with ``R_j`` from the structure (``docs/residuals.md``):

- ``ar1``: ``σ² φ^|t_i − t_k|`` on integer visits (``phi_ar`` in (−1, 1));
- ``car1``: the same on continuous times (``phi_ar`` in (0, 1));
- ``cs``: ``σ² (ρ + (1 − ρ) δ_ik)`` (``rho_cs``);
- ``unstructured``: the sub-matrix of ``diag(sd) Ω diag(sd)`` at the subject's visits
  (``sd_<visit>``, ``cor_<visit>`` = Ω with an LKJ prior on its Cholesky factor).

Random effects stay parameters (``r_<g>`` as in the plain model; the residual likelihood is
conditional on them); only the residual block is correlated, so the marginalised path of the
plain LMM does not apply (the kind says so in ``marginalization``).

Cost: subjects are grouped by pattern (:mod:`mixedbayes.design.residuals`) and padded to
the largest block (up to :data:`PAD_LIMIT` rows; above, one batch per block size): one
batched Cholesky of the ``(patterns, k, k)`` covariances and its triangular inverse, then
every subject's quadratic form reads its pattern's inverse factor: ``O(patterns · k³ +
subjects · k²)`` per evaluation. The whole log-density is one ``OpFromGraph`` node
(:func:`opaque_residual_logp`).

The observed variable is one :class:`pymc.CustomDist` over every row (dim ``observation``),
with this log-density and a NumPy generator (prior and posterior predictive draws).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.priors import scalar_prior, vector_prior
from mixedbayes.compile.regression import (
    dpar_predictor,
    linear_predictor,
    regression_coords,
    response_var_name,
)
from mixedbayes.compile.variance import apply_variance
from mixedbayes.design.residuals import (
    ResidualBatch,
    ResidualDesign,
    padded_batch,
    simulate_residuals,
)
from mixedbayes.design.variance import row_varying_sigma
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.design import Design

__all__ = [
    "add_residual_regression",
    "opaque_residual_logp",
    "powers",
    "residual_coords",
    "residual_logp",
    "residual_parameters",
]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: Largest block padded into one batch (:func:`~mixedbayes.design.residuals.padded_batch`);
#: above it, one batch per block size (padding a few long blocks would cost k³ per subject).
PAD_LIMIT = 24

#: Most patterns whose quadratic forms are summed through the pattern indicator (a
#: patterns × subjects product); above it, each subject reads its pattern's factor.
ONE_HOT_LIMIT = 64


def residual_coords(rd: ResidualDesign) -> dict[str, list[Any]]:
    """The coords an unstructured covariance adds (its visit levels, twice); else none."""
    if rd.correlation != "unstructured":
        return {}
    levels = [str(v) for v in rd.visit_levels]
    first, second = Names.visit_dims(rd.time)
    return {first: levels, second: levels}


def residual_parameters(
    rd: ResidualDesign, priors: PriorTable, ctx: BuildContext, sigma: bool = True
) -> dict[str, Any]:
    """Add the structure's parameters to ``ctx.model``; return them by role: ``sigma`` and
    ``phi`` (``ar1``, ``car1``), ``sigma`` and ``rho`` (``cs``), ``sd`` and ``chol`` (the
    Cholesky factor of the correlation, ``unstructured``). ``sigma=False``: no ``sigma``
    (each row's SD comes from elsewhere: a sigma formula)."""
    import pymc as pm
    import pytensor.tensor as pt

    names = ctx.names
    if rd.correlation == "unstructured":
        first, second = Names.visit_dims(rd.time)
        levels = [str(v) for v in rd.visit_levels]
        rows = [priors.get("sd", v, rd.time) for v in levels]
        sd = pt.as_tensor(vector_prior(ctx, Names.sd(rd.time), rows, first, positive=True))
        eta = float(priors.get("cor", "", rd.time).prior.args[0])
        with ctx.active():
            chol = pm.LKJCorr(Names.residual_chol(rd.time), n=len(levels), eta=eta)
        ctx.deterministic(Names.cor(rd.time), pt.dot(chol, chol.T), dims=(first, second))
        return {"sd": sd, "chol": chol}
    scale = {}
    if sigma:
        scale["sigma"] = scalar_prior(ctx, names.param("sigma"), priors.get("sigma"), positive=True)
    if rd.correlation == "cs":
        rho = scalar_prior(ctx, names.param(Names.RHO_CS), priors.get(Names.RHO_CS), positive=False)
        return {**scale, "rho": rho}
    phi = scalar_prior(ctx, names.param(Names.PHI_AR), priors.get(Names.PHI_AR), positive=False)
    return {**scale, "phi": phi}


def powers(phi: Any, lags: np.ndarray) -> Any:
    """``phi ** lags`` for integer lags, exact for a negative ``phi`` (a gathered table of
    powers ``1, φ, φ², …``)."""
    import pytensor.tensor as pt

    top = int(lags.max()) if lags.size else 0
    table = pt.concatenate([pt.ones(1), pt.cumprod(pt.repeat(pt.shape_padleft(phi), top))])
    return table[lags.astype(np.int64)]


def _block_cov(rd: ResidualDesign, batch: ResidualBatch, theta: dict[str, Any]) -> Any:
    """The batch's covariance per pattern, a ``(u, k, k)`` tensor."""
    import pytensor.tensor as pt

    k = batch.k
    if rd.correlation == "unstructured":
        v = batch.visits
        return theta["full"][v[:, :, None], v[:, None, :]]
    s2 = pt.sqr(theta["sigma"])
    if rd.correlation == "cs":
        rho = theta["rho"]
        eye = np.eye(k)[None]
        one = np.ones((batch.n_patterns, k, k))
        return s2 * (rho * one + (1.0 - rho) * eye)
    if rd.correlation == "ar1":
        return s2 * powers(theta["phi"], batch.lags)
    return s2 * pt.power(theta["phi"], batch.lags)


def residual_logp(resid: Any, rd: ResidualDesign, theta: dict[str, Any]) -> Any:
    """The log-density of the residuals ``resid`` (one per design row) under the blocks of
    ``rd`` with the structure's parameters ``theta``: a scalar tensor."""
    import pytensor.tensor as pt
    from pytensor.tensor.linalg import solve_triangular

    total: Any = 0.0
    if rd.correlation == "unstructured":  # the visits' covariance, built once
        L_full = theta["sd"][:, None] * theta["chol"]
        theta = {**theta, "full": pt.dot(L_full, L_full.T)}
    batches = rd.batches if rd.max_block > PAD_LIMIT else (padded_batch(rd),)
    for batch in batches:
        k = batch.k
        cov = _block_cov(rd, batch, theta)
        rows = batch.rows
        n_values = rows.size
        if batch.valid is not None:  # padded positions: covariance 1, residual 0
            pair = batch.valid[:, :, None] & batch.valid[:, None, :]
            cov = pt.where(pair, cov, np.eye(k)[None])
            n_values = int(batch.valid[batch.pattern].sum())
        L = pt.linalg.cholesky(cov)  # batched over the patterns
        eye = pt.as_tensor(np.broadcast_to(np.eye(k), (batch.n_patterns, k, k)).copy())
        L_inv = solve_triangular(L, eye, lower=True)
        log_det = 2.0 * pt.log(pt.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
        E = resid[np.maximum(rows, 0)]  # subjects × k
        if batch.valid is not None:
            E = E * batch.valid[batch.pattern].astype(float)
        u, m = batch.n_patterns, rows.shape[0]
        if u == 1:
            quad = pt.sum(pt.sqr(pt.dot(E, L_inv[0].T)))
        elif u <= ONE_HOT_LIMIT:
            # Σ_s e_sᵀ P_p(s) e_s = Σ_p <P_p, Σ_{s∈p} e_s e_sᵀ>: the per-pattern sums of
            # outer products as one product with the pattern indicator (dense BLAS, no
            # per-subject gather)
            one_hot = (batch.pattern[None, :] == np.arange(u)[:, None]).astype(float)
            outer = (E[:, :, None] * E[:, None, :]).reshape((m, k * k))
            S = pt.dot(one_hot, outer).reshape((u, k, k))
            P = (L_inv[:, :, :, None] * L_inv[:, :, None, :]).sum(axis=1)  # L⁻ᵀ L⁻¹
            quad = pt.sum(P * S)
        else:
            quad = pt.sum(pt.sqr(pt.matmul(L_inv[batch.pattern], E[:, :, None])))
        counts = np.bincount(batch.pattern, minlength=u).astype(float)
        total = total - 0.5 * (quad + pt.dot(counts, log_det) + n_values * _LOG_2PI)
    return total


def opaque_residual_logp(resid: Any, rd: ResidualDesign, theta: dict[str, Any]) -> Any:
    """:func:`residual_logp` as one node (an ``OpFromGraph``, its gradient another).

    PyTensor's algebraic rewrites (``local_greedy_distributor``) of the gradient of the
    batched Cholesky graph through the LKJ transform's graph ran for minutes and used
    gigabytes (a 200 × 8 MMRM: 50 s, 6 GB; 1,000 × 8: killed); kept apart, the model
    compiles in seconds. The value is the same.
    """
    import pytensor.tensor as pt
    from pytensor.compile.builders import OpFromGraph

    keys = sorted(theta)
    inputs = [pt.as_tensor(resid), *[pt.as_tensor(theta[k]) for k in keys]]
    dummies = [x.type() for x in inputs]
    inner = residual_logp(dummies[0], rd, dict(zip(keys, dummies[1:], strict=True)))
    # named after the blocks: the compile cache's structure key reads the name, not the
    # inner graph's constants (mixedbayes.inference.reuse)
    name = f"residual_logp_{rd.digest()}"
    op = OpFromGraph(dummies, [pt.as_tensor(inner)], inline=False, name=name)
    return op(*inputs)


def _signature(ndims: list[int]) -> str:
    """The CustomDist signature: the mean and the SD over the rows, the parameters
    (scalars, the visits' SDs ``(k)``, their correlation's Cholesky factor ``(k,k)``), the
    rows."""
    shapes = {0: "()", 1: "(k)", 2: "(k,k)"}
    return ",".join(["(n)", "(n)", *[shapes[d] for d in ndims]]) + "->(n)"


def row_scale(design: Design, priors: PriorTable, ctx: BuildContext, mu: Any) -> Any:
    """Each row's residual SD when it varies (``sigma:`` formula, ``variance:``; with
    ``ar1``/``car1``/``cs`` the covariance is ``D R D``, nlme's varIdent + corAR1), else
    None: the sigma formula's predictor, or ``sigma``, times ``|mu|^delta_power``."""
    if not row_varying_sigma(design):
        return None
    dpar = design.dpar("sigma")
    if dpar is not None:
        sigma = dpar_predictor(dpar, priors, ctx)
    else:
        sigma = scalar_prior(ctx, ctx.names.param("sigma"), priors.get("sigma"), positive=True)
    return apply_variance(design, {"sigma": sigma}, mu, priors, ctx)["sigma"]


def add_residual_regression(
    design: Design, rd: ResidualDesign, priors: PriorTable, ctx: BuildContext
) -> Any:
    """Add an ``lmm`` with correlated residuals to ``ctx.model`` (fixed and group effects as
    the plain model, the structure's parameters, the observed response); return the
    observed variable."""
    import pymc as pm
    import pytensor.tensor as pt

    names = ctx.names
    ctx.add_coords({**regression_coords(design, names), **residual_coords(rd)})
    eta = linear_predictor(design, priors, ctx)
    if design.offset is not None and np.any(design.offset != 0):
        eta = eta + ctx.data(names.data("offset"), design.offset, dims=names.obs_dim)
    mu = design.link.inverse(eta)
    # each row's SD (sigma:, variance:): the residuals are scaled by it, R keeps sigma = 1
    scale = row_scale(design, priors, ctx, mu)
    theta = residual_parameters(rd, priors, ctx, sigma=scale is None)
    keys = sorted(theta)
    unit = {} if scale is None or rd.correlation == "unstructured" else {"sigma": 1.0}

    def logp(value: Any, mu: Any, s: Any, *params: Any) -> Any:
        theta = {**unit, **dict(zip(keys, params, strict=True))}
        if scale is None:
            return opaque_residual_logp(value - mu, rd, theta)
        return opaque_residual_logp((value - mu) / s, rd, theta) - pt.sum(pt.log(s))

    def random(mu: Any, s: Any, *params: Any, rng: Any = None, size: Any = None) -> np.ndarray:
        values = {k: np.asarray(p)[None] for k, p in zip(keys, params, strict=True)}
        values |= {k: np.ones(1) for k in unit}
        if "chol" in values:
            chol = values.pop("chol")
            values["cor"] = chol @ np.swapaxes(chol, -1, -2)
        noise = simulate_residuals(rd, values, np.random.default_rng(rng))[0]
        return np.asarray(mu) + np.asarray(s) * noise

    y = ctx.data(names.data("y_obs"), np.asarray(design.y), dims=names.obs_dim)
    with ctx.active():
        return pm.CustomDist(
            response_var_name(design),
            pt.as_tensor(mu),
            pt.ones_like(mu) if scale is None else pt.as_tensor(scale) * pt.ones_like(mu),
            *[pt.as_tensor(theta[k]) for k in keys],
            logp=logp,
            random=random,
            signature=_signature([pt.as_tensor(theta[k]).ndim for k in keys]),
            observed=y,
            dims=names.obs_dim,
        )
