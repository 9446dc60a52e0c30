"""pm.Model builder of the ``compositional`` kind.

Each sample's log-abundances ``λ`` (samples × taxa, CLR scale) are

``λ = b0 + X·b + Σ_g Σ_k Z_gk · r_g[level, k, :]``

with every taxon vector sum-to-zero: a zero-sum normal is drawn as ``sd · (z @ H')``, ``z``
standard normal with one coordinate fewer than taxa and ``H`` the orthonormal pivot basis of
the zero-sum subspace (``mixedbayes.compositional.pivot_basis``), so the softmax's one
unidentified direction per vector never reaches the sampler. (One free coordinate per taxon,
centred afterwards, keeps each coordinate's scale its taxon's but leaves that direction to
the sampler: a standard normal far wider than the data-pinned intercepts, whose ESS fell
from ~150 to 3 on 90 samples × 40 taxa.) Pooled across taxa: each coefficient's taxon effects
share ``sd_b[coefficient]``; each group term's effects share ``sd_<g>[term]`` (or, with
``group_sd: taxon``, have an SD per taxon, ``taxon_sd_<g>``, log-normal around it with spread
``tau_sd_<g>``), and a correlated factor's terms one LKJ correlation ``cor_<g>`` for every
taxon.

Likelihoods (``spec.likelihood``): ``DirichletMultinomial(n, phi·softmax(λ))``;
``Multinomial(n, softmax(η))`` with latent log-abundances ``η ~ Normal(λ, sigma[taxon])`` per
sample (logistic-normal, as fido), sampled data-centred (:mod:`mixedbayes.compile.latent`);
``Normal(λ @ M, sigma)`` of the transformed compositions.

The intercepts' prior centres (the CLR of the pooled composition by default) are in the prior
table. Variables: ``b`` (``term`` × ``taxon``, CLR effects, ``b[Intercept]`` at the covariates'
zero), ``sd_b`` (``slope``), ``sd_<g>``, ``cor_<g>``, ``r_<g>`` (``<g>`` × ``<g>_term`` ×
``taxon``), ``tau_sd_<g>`` and ``taxon_sd_<g>``, ``eta`` and ``sigma``, or ``phi``, or
``sigma`` per log-ratio coordinate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.compile.priors import scalar_prior, vector_prior
from mixedbayes.design.compositional import SAMPLE_DIM, TAXON_DIM
from mixedbayes.errors import SpecError
from mixedbayes.naming import Names

if TYPE_CHECKING:
    from mixedbayes.compile.context import BuildContext
    from mixedbayes.design.compositional import CompositionalDesign
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.priors.table import PriorRow, PriorTable

__all__ = [
    "BASIS_DIM",
    "HS_GLOBAL",
    "HS_LOCAL",
    "HS_SLAB",
    "LATENT",
    "add_compositional",
    "tau_sd_name",
    "taxon_sd_name",
]

#: The zero-sum basis dimension of the standardised effects (taxa − 1).
BASIS_DIM = "taxon_basis"
#: The multinomial likelihood's latent log-abundances (samples × taxa).
LATENT = "eta"
#: ``pooling: horseshoe``: the global scale per coefficient, the slab's variance per
#: coefficient and the local scales (coefficient × taxon).
HS_GLOBAL, HS_SLAB, HS_LOCAL = "tau_b", "slab_b", "lambda_b"


def taxon_sd_name(group: str) -> str:
    """``group_sd: taxon``: the SD of a group term's effects per taxon, ``taxon_sd_<g>``
    (``<g>_term`` × taxon)."""
    return f"taxon_sd_{group}"


def tau_sd_name(group: str) -> str:
    """``group_sd: taxon``: the SD of the taxa's log SDs per group term, ``tau_sd_<g>``."""
    return f"tau_sd_{group}"


def _normal_scale(row: PriorRow) -> float:
    if row.prior.name != "normal":
        raise SpecError(
            f"the {row.class_} {row.coef or ''} prior of a compositional model must be a normal "
            f"(its effects are drawn zero-sum across taxa), not {row.prior}.",
            where="priors",
            hint="use normal(0, s).",
        )
    return float(row.prior.args[1])


def add_compositional(design: CompositionalDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add a compositional model to ``ctx.model``; return its observed variable."""
    import pymc as pm
    import pytensor.tensor as pt

    from mixedbayes.compile.group_effects import cor_dim
    from mixedbayes.compositional import pivot_basis

    names = Names()
    J = len(design.taxa)
    H = pt.as_tensor(pivot_basis(J))
    ctx.add_coords({**design.coords(), BASIS_DIM: list(range(J - 1))})
    ctx.add_coords({cor_dim(g): list(g.terms) for g in design.groups if g.correlated})
    terms = list(design.samples.fixed_terms)
    slopes = design.slopes
    centred = design.spec.parametrization == "centered"
    with ctx.active():
        rows = [priors.get("Intercept", t) for t in design.taxa]
        s0 = np.array([_normal_scale(r) for r in rows])
        mu0 = np.array([float(r.prior.args[0]) for r in rows])
        z0 = pm.Normal(Names.z("Intercept"), 0.0, 1.0, dims=BASIS_DIM)
        b0 = mu0 - mu0.mean() + s0 * pt.dot(H, z0)
        b0 = b0 - pt.mean(b0)  # zero-sum (already, when the taxa share one scale)
        lam: Any = pt.zeros((design.n, J)) + b0[None, :]
        b_rows = []
        if slopes:
            cols = [terms.index(t) for t in slopes]
            x_means = design.samples.X[:, cols].mean(axis=0)
            X = ctx.data(names.data("X"), design.samples.X[:, cols] - x_means)
            if design.spec.pooling == "horseshoe":
                b_slope = _horseshoe(names, slopes, priors, ctx, centred)
            else:
                if design.spec.pooling == "taxa":
                    rows = [priors.get("sd_b", t) for t in slopes]
                    sd_b = vector_prior(ctx, "sd_b", rows, names.slope_dim, positive=True)
                else:
                    sd_b = pt.as_tensor([_normal_scale(priors.get("b", t)) for t in slopes])
                b_slope = _zero_sum(names.b_slope, sd_b, (names.slope_dim,), H, centred)
            lam = lam + pt.dot(X, b_slope)
            b0 = b0 - pt.dot(pt.as_tensor(x_means), b_slope)
            b_rows = [b_slope]
        # terms: the intercept first, then the slopes (the design requires the intercept)
        b_all = pt.concatenate([b0[None, :], *b_rows], axis=0)
        ctx.deterministic(names.b, b_all, dims=(names.term_dim, TAXON_DIM))
        for g in design.groups:
            r = _group_effects(g, priors, ctx, H, design.spec.group_sd == "taxon")
            index = ctx.data(names.data("index", g.name), g.index)
            Z = ctx.data(names.data("Z", g.name), g.Z)
            lam = lam + pt.sum(Z[:, :, None] * r[index], axis=1)
        return _likelihood(design, priors, ctx, lam)


def _group_effects(
    g: GroupFactor, priors: PriorTable, ctx: BuildContext, H: Any, per_taxon: bool
) -> Any:
    """``r_<g>`` (levels × terms × taxa), every taxon vector zero-sum: the group-effect
    core's ``sd_<g>`` (pooled across taxa) and, for a correlated factor, ``cor_<g>`` (LKJ,
    shared by every taxon), so each taxon's term vector ``r[l, :, j]`` has covariance
    ``(1 − 1/J)·L Lᵀ``. Uncorrelated: :func:`_zero_sum`. Correlated, non-centred:
    ``r = L·z·Hᵀ``; centred: each basis coordinate's term vector is ``MvNormal(0, L Lᵀ)``
    (``r_<g>_basis``), ``r`` its image under ``H``. ``per_taxon`` (``group_sd: taxon``):
    :func:`_taxon_scaled` (a centred uncorrelated factor's zero-sum normal is then
    ``r_<g>_raw``)."""
    import pymc as pm
    import pytensor.tensor as pt

    from mixedbayes.compile.group_effects import group_scales, scale_cholesky

    sd, chols = group_scales(g.structure, priors, ctx)
    centred = all(b.parametrization == "centered" for b in g.blocks)
    name = Names.r(g.name)
    dims = (g.dim, g.term_dim, TAXON_DIM)
    if not g.correlated:
        raw = f"{name}_raw" if per_taxon and centred else name
        r = _zero_sum(raw, sd[None, :], (g.dim, g.term_dim), H, centred, Names.z(g.name))
        if not per_taxon and centred:
            return r
    else:
        L = scale_cholesky(g.structure, sd, chols)
        if centred:  # (levels, basis, terms): each coordinate's term vector MvNormal(0, L Lᵀ)
            w = pm.MvNormal(f"{name}_basis", 0.0, chol=L, dims=(g.dim, BASIS_DIM, g.term_dim))
        else:
            z = pm.Normal(Names.z(g.name), 0.0, 1.0, dims=(g.dim, g.term_dim, BASIS_DIM))
            w = pt.tensordot(z, L, axes=[[1], [1]])  # (levels, basis, terms): L·z per coordinate
        r = pt.tensordot(w, H, axes=[[1], [1]])  # (levels, terms, taxa)
    if per_taxon:
        r = _taxon_scaled(g, priors, ctx, sd, r)
    return ctx.deterministic(name, r, dims=dims)


def _taxon_scaled(g: GroupFactor, priors: PriorTable, ctx: BuildContext, sd: Any, r: Any) -> Any:
    """``group_sd: taxon``: the shared-SD effects ``r`` rescaled per term and taxon and
    centred again, ``r' = C(ρ ⊙ r)``, ``ρ[k, j] = exp(tau_sd[k]·ζ[k, j])``, ``ζ ~ Normal(0,
    1)`` (``z_taxon_sd_<g>``), ``tau_sd_<g>`` from the prior table; ``taxon_sd_<g> = sd·ρ``
    (the SDs before the centring, which shrinks each by about ``1 − 1/J``). ``sd_<g>`` is
    then the median of the taxa's SDs."""
    import pymc as pm
    import pytensor.tensor as pt

    rows = [priors.get("tau_sd", t, g.name) for t in g.terms]
    tau = vector_prior(ctx, tau_sd_name(g.name), rows, g.term_dim, positive=True)
    dims = (g.term_dim, TAXON_DIM)
    with ctx.active():
        zeta = pm.Normal(Names.z(taxon_sd_name(g.name)), 0.0, 1.0, dims=dims)
    rho = pt.exp(pt.as_tensor(tau)[:, None] * zeta)
    ctx.deterministic(taxon_sd_name(g.name), sd[:, None] * rho, dims=dims)
    scaled = r * rho[None, :, :]
    return scaled - pt.mean(scaled, axis=-1, keepdims=True)


def _zero_sum(
    name: str, scale: Any, batch: tuple[str, ...], H: Any, centred: bool, z_name: str = ""
) -> Any:
    """Taxon vectors (``batch`` × taxa) summing to zero, each Normal(0, ``scale``) on the
    zero-sum subspace: centred (``pm.ZeroSumNormal`` named ``name``) or non-centred
    (``scale · (z @ H')``, ``z`` standard normal named ``z_name``, default
    ``z_<name without r_>``)."""
    import pymc as pm
    import pytensor.tensor as pt

    scale = pt.as_tensor(scale)
    if centred:
        return pm.ZeroSumNormal(name, sigma=scale[..., None], dims=(*batch, TAXON_DIM))
    z_name = z_name or Names.z(name.removeprefix("r_"))
    z = pm.Normal(z_name, 0.0, 1.0, dims=(*batch, BASIS_DIM))
    return scale[..., None] * pt.dot(z, H.T)


def _horseshoe(
    names: Names, slopes: list[str], priors: PriorTable, ctx: BuildContext, centred: bool
) -> Any:
    """Taxon effects (slope × taxa) under a regularised horseshoe per coefficient
    (Piironen & Vehtari 2017), made zero-sum across taxa.

    ``v[k, j] = tau_b[k] · λ̃[k, j] · w[k, j]`` with the global scale ``tau_b`` (prior table),
    local scales ``lambda_b ~ half-Cauchy(0, 1)`` (slope × taxon) and
    ``λ̃² = slab_b λ² / (slab_b + tau_b² λ²)``, ``slab_b`` the slab's variance (prior table:
    inverse-gamma, a Student-t slab for the few large effects); ``b = v − mean_taxa(v)``.
    The mean is the one direction the softmax does not see: the horseshoe pins it where most
    taxa are shrunk to zero, so the CLR effects are ``v`` less the shift shared by the
    unchanged taxa. Non-centred ``w ~ Normal(0, 1)`` (``z_b_slope``) or centred
    ``v ~ Normal(0, tau_b · λ̃)`` (``b_slope_raw``)."""
    import pymc as pm
    import pytensor.tensor as pt

    dims = (names.slope_dim, TAXON_DIM)
    tau = vector_prior(
        ctx, HS_GLOBAL, [priors.get(HS_GLOBAL, t) for t in slopes], names.slope_dim, positive=True
    )
    slab = vector_prior(
        ctx, HS_SLAB, [priors.get(HS_SLAB, t) for t in slopes], names.slope_dim, positive=True
    )
    lam = pm.HalfCauchy(HS_LOCAL, 1.0, dims=dims)
    tau_lam2 = (tau**2)[:, None] * lam**2
    scale = pt.sqrt(slab[:, None] * tau_lam2 / (slab[:, None] + tau_lam2))
    if centred:
        v = pm.Normal(f"{names.b_slope}_raw", 0.0, scale, dims=dims)
    else:
        v = scale * pm.Normal(Names.z(names.b_slope), 0.0, 1.0, dims=dims)
    return v - pt.mean(v, axis=1, keepdims=True)


def _residual_factors(design: CompositionalDesign, ctx: BuildContext) -> Any:
    """``F Λᵀ`` (samples × taxa): per-sample factor scores ``F ~ Normal(0, 1)``
    (``factor_scores``, samples × factor) and loadings ``Λ`` (``loadings``, taxa × factor),
    ``Normal(0, 1)`` below the diagonal, half-Normal(0, 1) on it and zero above it (the
    lower-triangular constraint that fixes the factors' rotation and signs)."""
    import pymc as pm
    import pytensor.tensor as pt

    K, J = design.spec.factors, len(design.taxa)
    if K >= J:
        raise SpecError(
            f"factors: {K} needs fewer factors than taxa ({J}).",
            where="factors",
            hint="use a few factors (1–3).",
        )
    ctx.add_coords({"factor": list(range(K))})
    rows, cols = np.tril_indices(J, k=-1, m=K)
    with ctx.active():
        diag = pm.HalfNormal("loadings_diag", 1.0, dims="factor")
        below = pm.Normal("loadings_below", 0.0, 1.0, shape=len(rows))
        scores = pm.Normal("factor_scores", 0.0, 1.0, dims=(SAMPLE_DIM, "factor"))
    loadings = pt.zeros((J, K))
    loadings = pt.set_subtensor(loadings[np.arange(K), np.arange(K)], diag)
    loadings = pt.set_subtensor(loadings[rows, cols], below)
    loadings = ctx.deterministic("loadings", loadings, dims=(TAXON_DIM, "factor"))
    return pt.dot(scores, loadings.T)


def _likelihood(
    design: CompositionalDesign, priors: PriorTable, ctx: BuildContext, lam: Any
) -> Any:
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.tensor.special import softmax

    from mixedbayes.compile.latent import data_centred_normal

    how = design.spec.likelihood
    dims = (SAMPLE_DIM, TAXON_DIM)
    if how == "logratio_normal":
        rows = [priors.get("sigma", c) for c in design.transform.coordinates()]
        sigma = vector_prior(ctx, "sigma", rows, "coordinate", positive=True)
        mu = pt.dot(lam, pt.as_tensor(design.transform.matrix()))
        assert design.outcome is not None
        y = ctx.data(Names().data("y_obs"), design.outcome)
        return pm.Normal("logratio", mu, sigma, observed=y, dims=(SAMPLE_DIM, "coordinate"))
    n = ctx.data(Names().data("trials"), design.totals.astype("int64"))
    counts = ctx.data(Names().data("y_obs"), design.counts.astype("int64"))
    if how == "dirichlet_multinomial":
        phi = scalar_prior(ctx, "phi", priors.get("phi"), positive=True)
        alpha = phi * softmax(lam, axis=1)
        return pm.DirichletMultinomial("counts", n=n, a=alpha, observed=counts, dims=dims)
    rows = [priors.get("sigma", t) for t in design.taxa]
    sigma = vector_prior(ctx, "sigma", rows, TAXON_DIM, positive=True)
    if design.spec.factors:
        lam = lam + _residual_factors(design, ctx)
    latent = data_centred_normal(LATENT, lam, pt.as_tensor(sigma)[None, :], counts, n, dims)
    return pm.Multinomial("counts", n=n, p=softmax(latent, axis=1), observed=counts, dims=dims)
