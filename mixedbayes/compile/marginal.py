"""Marginalised Gaussian LMM: the random effects integrated out of the likelihood.

For a Gaussian, identity-link model with one grouping factor, ``y_j ~ N(F_j θ + Z_j r_j, σ²I)``
and ``r_j ~ N(0, L Lᵀ)``, integrating ``r_j`` out gives ``y_j ~ N(F_j θ, σ²I + Z_j L Lᵀ Z_jᵀ)``.
With ``A_j = I + Lᵀ Z_jᵀZ_j L / σ²`` (q × q, eigenvalues ≥ 1) and ``e_j = y_j − F_j θ``
(Woodbury and the matrix determinant lemma)::

    log p(y_j) = −½ [n_j log 2πσ² + log|A_j| + e_jᵀe_j / σ² − u_jᵀ A_j⁻¹ u_j],
    u_j = Lᵀ Z_jᵀ e_j / σ²,

and every term is a function of the per-group sufficient statistics ``Z_jᵀZ_j``,
``Z_jᵀF_j``, ``Z_jᵀy_j`` and the pooled ``FᵀF``, ``Fᵀy``, ``yᵀy``: the cost of one
log-density evaluation grows with the number of groups, not of rows.

Two nested factors (measurements in patients in clinics, ``(1 | clinic/patient)``) are
integrated out in turn: the patients' effects given the clinic's, then the clinic's, with the
cross-products ``Z_patientᵀ Z_clinic`` per patient as the extra statistic
(:mod:`mixedbayes.compile.marginal_math` has the formulas). Crossed factors, or more than
two, use the plain model.

After sampling, the effects are drawn from their exact conditional for every posterior draw
(outer factor first, then the inner one given it) by :func:`draw_group_effects`.

**A residual SD per row** (``sigma: "~ trt + visit"``, ``variance: {ident: visit}``) keeps
the model marginalised when the sigma formula has no group terms and its rows take at most
:data:`MAX_SIGMA_CLASSES` distinct values (factors and binary covariates: the *classes*
``c``, with ``σ_c = exp(u_c·b_sigma)``). With ``W = diag(1/σ_i²)`` the algebra above is the
same with ``ZᵀZ/σ²`` read as ``ZᵀWZ = Σ_c ZᵀZ_c/σ_c²`` (likewise ``ZᵀF``, ``Zᵀy``, ``FᵀF``,
``Fᵀy``, ``yᵀy`` and the outer factor's statistics), ``σ² = 1`` and ``n log σ²`` read as
``Σ_c n_c log σ_c²``: the statistics are kept per class and weighted in the graph, so the
cost grows with levels × classes, still not with rows. A continuous covariate in the sigma
formula (a class per row), group terms in it, or ``variance: {power: fitted}`` (the SD then
depends on the random effects) use the plain model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixedbayes.compile import marginal_math as mm
from mixedbayes.design.design import Design
from mixedbayes.design.groups import GroupFactor, level_sums
from mixedbayes.design.variance import power_of_fitted
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

__all__ = [
    "MAX_SIGMA_CLASSES",
    "MarginalLMM",
    "build_marginal",
    "centred_design",
    "draw_group_effects",
    "marginal_applies",
]


#: Most distinct rows of a sigma formula's design (classes) the marginalised LMM weighs its
#: per-class statistics over; above, the plain model.
MAX_SIGMA_CLASSES = 32

#: The statistics kept per class of the residual SD (a sigma formula), summed with the
#: weights ``1/σ_c²`` in the graph.
CLASS_STATS = ("FtF", "Fty", "yty", "ZtZ", "ZtF", "Zty", "ZtO", "OtO", "OtF", "Oty")


@dataclass(frozen=True, eq=False)
class MarginalLMM:
    """Sufficient statistics of a Gaussian LMM with one grouping factor (``inner``) or two
    nested ones (``inner`` within ``outer``).

    ``F`` is the fixed-effect design as sampled: a column of ones (when the model has an
    intercept) and the predictors centred at their means; ``y`` is the response minus the
    offset minus ``shift`` (its mean, for numerical accuracy of ``yᵀy``). ``Z`` are the inner
    factor's term values, ``O`` the outer factor's; ``parent`` maps inner to outer levels.
    """

    inner: str
    outer: str | None
    n: int
    stats: dict[str, np.ndarray]

    @property
    def heteroscedastic(self) -> bool:
        """Whether the statistics are per class of a sigma formula (``sigma_U``: the classes'
        rows of the sigma design, ``n_class``: their numbers of rows)."""
        return "sigma_U" in self.stats

    @property
    def shift(self) -> float:
        """The constant taken off the response."""
        return float(self.stats["shift"])

    @property
    def data(self) -> dict[str, np.ndarray]:
        """The statistics as named arrays (the model's data containers)."""
        return {Names().data(f"mlmm_{k}"): np.asarray(v) for k, v in self.stats.items()}


def _nesting(design: Design) -> tuple[GroupFactor, GroupFactor | None] | None:
    """(inner, outer) when the factors are one, or two with the first nested in the other."""
    groups = design.groups
    if len(groups) == 1:
        return groups[0], None
    if len(groups) != 2:
        return None
    for inner, outer in (groups, groups[::-1]):
        parents = np.full(inner.n_levels, -1)
        parents[inner.index] = outer.index
        if np.array_equal(parents[inner.index], outer.index) and inner.n_levels > outer.n_levels:
            return inner, outer
    return None


def marginal_applies(design: Design) -> str:
    """Empty when the random effects of ``design`` can be integrated out; else why not."""
    if design.family.name != "gaussian" or design.link.name != "identity":
        return f"the {design.family.name} family with {design.link.name} link is not Gaussian"
    if design.trials is not None:
        return "the model has a trials part"
    if any(d.name != "sigma" for d in design.dpars):
        return "the model has a distributional formula of a parameter other than sigma"
    sigma = design.dpar("sigma")
    if sigma is not None and sigma.groups:
        return "the sigma formula has group terms (its group effects are sampled)"
    if sigma is not None and len(np.unique(sigma.X, axis=0)) > MAX_SIGMA_CLASSES:
        return (
            f"the sigma formula's rows take more than {MAX_SIGMA_CLASSES} distinct values (a "
            "continuous covariate): the marginal statistics would be per row"
        )
    if power_of_fitted(design):
        return "the residual SD is a power of the fitted value (variance: {power: fitted})"
    if not design.groups:
        return "the model has no group effects"
    if _nesting(design) is None:
        names = ", ".join(g.name for g in design.groups)
        return (
            f"it has {len(design.groups)} grouping factors ({names}) that are not one factor "
            "nested in another (crossed designs, and more than two levels of nesting, use the "
            "plain model)"
        )
    return ""


def _fixed_matrix(design: Design) -> np.ndarray:
    terms = list(design.fixed_terms)
    slope_cols = [j for j, t in enumerate(terms) if t != "Intercept"]
    parts = []
    if design.has_intercept:
        parts.append(np.ones((design.n, 1)))
    parts.append(design.X[:, slope_cols] - design.x_means[slope_cols])
    return np.concatenate(parts, axis=1)


def _cross(index: np.ndarray, A: np.ndarray, B: np.ndarray, n_levels: int) -> np.ndarray:
    """Per level, ``AᵀB`` over its rows."""
    return level_sums(index, A[:, :, None] * B[:, None, :], n_levels)


def sufficient_statistics(design: Design) -> MarginalLMM:
    """The statistics of :class:`MarginalLMM` for a design that :func:`marginal_applies` to."""
    nesting = _nesting(design)
    assert nesting is not None
    inner, outer = nesting
    F = _fixed_matrix(design)
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - np.asarray(design.offset, dtype=float)
    shift = float(y.mean()) if design.has_intercept else 0.0
    y = y - shift
    Z = np.asarray(inner.Z, dtype=float)
    P = inner.n_levels
    Zo = None if outer is None else np.asarray(outer.Z, dtype=float)

    def row_stats(w: np.ndarray) -> dict[str, np.ndarray]:
        """The statistics over the rows with weight ``w`` (0 or 1: one class's rows)."""
        Fw, Zw = F * w[:, None], Z * w[:, None]
        out = {
            "FtF": F.T @ Fw,
            "Fty": Fw.T @ y,
            "yty": np.asarray(float(y @ (w * y))),
            "ZtZ": _cross(inner.index, Zw, Z, P),
            "ZtF": _cross(inner.index, Zw, F, P),
            "Zty": level_sums(inner.index, Zw * y[:, None], P),
        }
        if outer is not None and Zo is not None:
            Zow, C = Zo * w[:, None], outer.n_levels
            out |= {
                "ZtO": _cross(inner.index, Zw, Zo, P),
                "OtO": _cross(outer.index, Zow, Zo, C),
                "OtF": _cross(outer.index, Zow, F, C),
                "Oty": level_sums(outer.index, Zow * y[:, None], C),
            }
        return out

    sigma = design.dpar("sigma")
    if sigma is None:
        stats = row_stats(np.ones(design.n))
    else:  # per class of the sigma formula's rows, weighted by 1/σ_c² in the graph
        U, cls = np.unique(sigma.X, axis=0, return_inverse=True)
        cls = np.asarray(cls).reshape(-1)
        per_class = [row_stats((cls == c).astype(float)) for c in range(len(U))]
        stats = {k: np.stack([s[k] for s in per_class]) for k in per_class[0]}
        stats |= {"sigma_U": U, "n_class": np.bincount(cls, minlength=len(U)).astype(float)}
    stats["shift"] = np.asarray(shift)
    if outer is not None:
        parent = np.zeros(P, dtype=np.int64)
        parent[inner.index] = outer.index
        stats["parent"] = parent
    return MarginalLMM(inner.name, outer.name if outer is not None else None, design.n, stats)


def weighted(stats: dict[str, Any], w: Any, tensordot: Any) -> dict[str, Any]:
    """The per-class statistics summed with the classes' weights ``w`` (``1/σ_c²``; (K,)
    in the graph, (draws, K) in NumPy), the others as they are."""
    return {
        k: tensordot(w, v, axes=[[w.ndim - 1], [0]]) if k in CLASS_STATS else v
        for k, v in stats.items()
    }


def _entries(
    stats: dict[str, Any], shapes: dict[str, np.ndarray], lead: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """The per-level statistics as entry lists (``lead`` indexes before the level axis;
    ``shapes``: the statistics as arrays, for their sizes)."""
    out: dict[str, Any] = {}
    for key in ("ZtZ", "ZtF", "ZtO", "OtO", "OtF"):
        if key in stats:
            X = stats[key]
            a, b = shapes[key].shape[-2:]
            out[key] = [[X[(*lead, slice(None), i, j)] for j in range(b)] for i in range(a)]
    for key in ("Zty", "Oty"):
        if key in stats:
            X = stats[key]
            out[key] = [X[(*lead, slice(None), i)] for i in range(shapes[key].shape[-1])]
    return out


def _scale_entries(L: Any, q: int) -> list[list[Any]]:
    return [[L[i, j] for j in range(q)] for i in range(q)]


def build_marginal(design: Design, priors: PriorTable) -> tuple[Any, MarginalLMM]:
    """The ``pm.Model`` sampled instead of the plain one: the same parameters as the plain
    model except ``r_<group>``, and the marginal likelihood as a potential."""
    import pytensor.tensor as pt

    from mixedbayes.compile.context import BuildContext, new_model
    from mixedbayes.compile.group_effects import group_scales, scale_cholesky
    from mixedbayes.compile.priors import scalar_prior
    from mixedbayes.compile.regression import (
        dpar_coefficients,
        fixed_effects,
        regression_coords,
    )

    stats = sufficient_statistics(design)
    factors = {g.name: g for g in design.groups}
    ctx = BuildContext(new_model(regression_coords(design)))
    names = ctx.names
    intercept, b_slope, _ = fixed_effects(design, priors, ctx, with_data=False)
    data = {k: ctx.data(names.data(f"mlmm_{k}"), v) for k, v in stats.stats.items()}
    parts = []
    if intercept is not None:
        parts.append(pt.atleast_1d(intercept - data["shift"]))
    if b_slope is not None:
        parts.append(b_slope)
    theta = pt.concatenate(parts) if parts else pt.zeros(0)
    scales = {}
    for g in design.groups:
        sd, chols = group_scales(g.structure, priors, ctx)
        scales[g.name] = _scale_entries(scale_cholesky(g.structure, sd, chols), len(g.terms))
    sigma_dpar = design.dpar("sigma")
    log_sigma_terms: Any = 0.0
    if sigma_dpar is not None:  # σ_c = exp(u_c·b_sigma): weights 1/σ_c², σ² read as 1
        log_sigma = pt.dot(data["sigma_U"], dpar_coefficients(sigma_dpar, priors, ctx))
        data = weighted(data, pt.exp(-2.0 * log_sigma), pt.tensordot)
        log_sigma_terms = 2.0 * pt.dot(data["n_class"], log_sigma)  # Σ_c n_c log σ_c²
        s2: Any = 1.0
    else:
        (sigma_param,) = design.family.params
        sigma = scalar_prior(
            ctx, names.param(sigma_param.name), priors.get(sigma_param.name), positive=True
        )
        s2 = sigma**2
    n_outer = factors[stats.outer].n_levels if stats.outer is not None else 0
    parent = data.get("parent")
    ops = mm.Ops(
        sqrt=pt.sqrt,
        log=pt.log,
        segment_sum=lambda x: pt.inc_subtensor(pt.zeros(n_outer)[parent], x),
        total=pt.sum,
    )
    theta_e = [theta[k] for k in range(stats.stats["Fty"].shape[-1])]
    Lo = scales[stats.outer] if stats.outer is not None else None
    terms = mm.marginal_terms(
        _entries(data, stats.stats), theta_e, s2, scales[stats.inner], Lo, ops
    )
    ete = data["yty"] - 2.0 * pt.dot(theta, data["Fty"])
    ete = ete + pt.dot(theta, pt.dot(data["FtF"], theta))
    loglik = mm.log_likelihood(terms, ete, s2, stats.n, ops) - 0.5 * log_sigma_terms
    ctx.potential(names.var("marginal_loglik"), loglik)
    return ctx.model, stats


def centred_design(design: Design) -> Design:
    """``design`` with every block centred: the plain model whose free variables are the
    marginal model's plus ``r_<group>`` (for the log-likelihood and predictive draws)."""
    groups = tuple(
        g.with_blocks(
            tuple(
                dataclasses.replace(b, parametrization="centered", reason="marginalised")
                for b in g.blocks
            )
        )
        for g in design.groups
    )
    return dataclasses.replace(design, groups=groups)


def _scale_factors(post: dict[str, np.ndarray], g: GroupFactor) -> np.ndarray:
    """``L`` per draw (draws × q × q) from ``sd_<g>`` and ``cor_chol_<g>[_b]``."""
    sd = post[Names.sd(g.name)]
    q = len(g.terms)
    L = np.zeros((sd.shape[0], q, q))
    single = len(g.blocks) == 1
    for b, block in enumerate(g.blocks):
        cols = np.asarray(block.columns)
        if block.correlated:
            chol = post[Names.cor_chol(g.name, "" if single else str(b))]
            L[np.ix_(np.arange(sd.shape[0]), cols, cols)] = sd[:, cols, None] * chol
        else:
            L[:, cols, cols] = sd[:, cols]
    return L


def _draw_chunk(
    stats: MarginalLMM, post: dict[str, np.ndarray], factors: dict[str, GroupFactor], rng: Any
) -> dict[str, np.ndarray]:
    """Effects of one chunk of draws: ``{group: (draws, levels, terms)}``."""
    st = stats.stats
    lead: tuple[Any, ...] = (None,)  # the statistics broadcast over the draws
    s2: Any = 1.0
    if stats.heteroscedastic:  # weighted per draw: (draws, levels, ...) statistics
        st = weighted(st, np.exp(-2.0 * post["b_sigma"] @ st["sigma_U"].T), np.tensordot)
        lead = (slice(None),)
    else:
        s2 = post["sigma"][:, None] ** 2
    theta = [post["theta"][:, k][:, None] for k in range(post["theta"].shape[1])]
    inner = factors[stats.inner]
    Li = _scale_factors(post, inner)
    qi = len(inner.terms)
    L_in = [[Li[:, i, j][:, None] for j in range(qi)] for i in range(qi)]
    L_out = None
    parent = st.get("parent")
    n_outer = 0
    if stats.outer is not None:
        Lo = _scale_factors(post, factors[stats.outer])
        qo = Lo.shape[1]
        L_out = [[Lo[:, i, j][:, None] for j in range(qo)] for i in range(qo)]
        n_outer = factors[stats.outer].n_levels

    def segment_sum(x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], n_outer))
        np.add.at(out.T, np.asarray(parent), x.T)
        return out

    ops = mm.Ops(sqrt=np.sqrt, log=np.log, segment_sum=segment_sum, total=np.sum)
    t = mm.marginal_terms(_entries(st, st, lead), theta, s2, L_in, L_out, ops)
    out = {}
    w = t.w
    if L_out is not None and t.D is not None and t.z is not None:
        so = mm.backward(t.D, [z + rng.standard_normal(z.shape) for z in t.z])
        r_out = mm.mat_vec(L_out, so)  # entries (s, C)
        out[str(stats.outer)] = np.stack(r_out, axis=-1)
        ZtO = _entries(st, st, lead)["ZtO"]
        Zte = [
            t.Zte[a] - sum((ZtO[a][j] * r_out[j][:, parent] for j in range(len(r_out))), start=0.0)
            for a in range(qi)
        ]
        w = mm.forward(t.C, [x / s2 for x in mm.t_vec(L_in, Zte)])
    wi = mm.backward(t.C, [x + rng.standard_normal(x.shape) for x in w])
    out[stats.inner] = np.stack(mm.mat_vec(L_in, wi), axis=-1)
    return out


def draw_group_effects(
    idata: Any, design: Design, stats: MarginalLMM, seed: int, chunk: int = 256
) -> Any:
    """Add ``r_<group>`` of the integrated-out factors to the posterior of ``idata``, drawn
    from their exact conditional given each draw's fixed effects, ``sigma``, ``sd_``, ``cor_``."""
    import xarray as xr

    factors = {g.name: g for g in design.groups}
    ds = idata["posterior"].to_dataset()
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    S = n_chain * n_draw

    def flat(name: str) -> np.ndarray:
        arr = ds[name].to_numpy()
        return arr.reshape(S, *arr.shape[2:])

    names = Names()
    sigma_dpar = design.dpar("sigma")
    if sigma_dpar is None:
        post = {"sigma": flat(names.param("sigma"))}
    else:
        post = {"b_sigma": flat(sigma_dpar.names.b)}
    for g in design.groups:
        post[Names.sd(g.name)] = flat(Names.sd(g.name))
        for v in ds.data_vars:
            if str(v).startswith(Names.cor_chol(g.name)):
                post[str(v)] = flat(str(v))
    theta_parts = []
    if design.has_intercept:
        theta_parts.append(flat(names.intercept).reshape(S, 1) - stats.shift)
    if names.b_slope in ds:
        theta_parts.append(flat(names.b_slope))
    post["theta"] = np.concatenate([np.zeros((S, 0)), *theta_parts], axis=1)
    rng = np.random.default_rng(seed)
    r = {g.name: np.empty((S, g.n_levels, len(g.terms))) for g in design.groups}
    for start in range(0, S, chunk):
        sl = slice(start, min(start + chunk, S))
        drawn = _draw_chunk(stats, {k: v[sl] for k, v in post.items()}, factors, rng)
        for name, values in drawn.items():
            r[name][sl] = values
    new = {}
    for name, values in r.items():
        g = factors[name]
        da = xr.DataArray(
            values.reshape(n_chain, n_draw, g.n_levels, len(g.terms)),
            dims=("chain", "draw", g.dim, g.term_dim),
            coords={"chain": ds["chain"], "draw": ds["draw"], g.dim: list(g.levels)},
        )
        new[Names.r(name)] = da.assign_coords({g.term_dim: list(g.terms)})
        if len(g.blocks) > 1:  # the plain model's variables: one per block
            for b, block in enumerate(g.blocks):
                part = values[:, :, list(block.columns)]
                new[Names.r(name, str(b))] = xr.DataArray(
                    part.reshape(n_chain, n_draw, *part.shape[1:]),
                    dims=("chain", "draw", g.dim, g.block_term_dim(b)),
                    coords={
                        "chain": ds["chain"],
                        "draw": ds["draw"],
                        g.dim: list(g.levels),
                        g.block_term_dim(b): [g.terms[c] for c in block.columns],
                    },
                )
    idata["posterior"] = xr.DataTree(ds.assign(new))
    return idata
