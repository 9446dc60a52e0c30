"""The ``auto`` choice between centred and non-centred group effects.

Centred effects sample well when each level's data pin its effect down (the likelihood
dominates the group-level prior); non-centred effects sample well when they do not (funnel
geometry). The rule, per block of terms:

1. Fit the fixed effects by least squares and take the residuals ``e``.
2. For each level with more rows than the block has terms, regress ``e`` on the block's
   columns of ``Z``: this is the no-pooling estimate ``b_j`` with sampling variance
   ``s2 (Z_j'Z_j)^-1``, ``s2`` the pooled within-level residual variance.
3. The between-level variance of each term, ``tau2_k = var_j(b_jk) - mean_j(s2 [(Z_j'Z_j)^-1]_kk)``
   (a method-of-moments estimate, floored at a small positive value).
4. The data weight of level ``j`` and term ``k`` is ``w_jk = tau2_k / (s2 [(Z_j'Z_j)^-1]_kk)``,
   the ratio of group-level to sampling variance (0 for levels too small to estimate).
5. Centred if the median over levels of ``min_k w_jk`` exceeds 1, else non-centred.

The rule uses only data already in the design, costs one small solve per level, and is
recorded with its numbers in each block's ``reason``.
"""

from __future__ import annotations

import numpy as np

from mixedbayes.design.groups import GroupBlock, GroupFactor, level_sums

__all__ = [
    "choose_parametrization",
    "no_pooling",
    "noncentred_beside_residual_correlation",
    "one_centred_intercept",
]


def no_pooling(
    resid: np.ndarray, factor: GroupFactor, columns: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-level least-squares estimates of ``resid`` on the block's columns of ``Z``.

    Returns
    -------
    (estimates, variances, s2)
        ``estimates`` and the diagonal of ``(Z_j'Z_j)^-1`` (both ``(levels, terms)``, NaN where
        the level is not identifiable), and the pooled residual variance ``s2``.
    """
    k = len(columns)
    L = factor.n_levels
    Z = factor.Z[:, columns]
    ZtZ = level_sums(factor.index, Z[:, :, None] * Z[:, None, :], L)
    Zty = level_sums(factor.index, Z * resid[:, None], L)
    yty = level_sums(factor.index, resid**2, L)
    counts = factor.counts
    ok = counts > k
    ok[ok] = np.linalg.matrix_rank(ZtZ[ok]) == k
    est = np.full((L, k), np.nan)
    inv_diag = np.full((L, k), np.nan)
    if ok.any():
        inv = np.linalg.inv(ZtZ[ok])
        est[ok] = np.einsum("lij,lj->li", inv, Zty[ok])
        inv_diag[ok] = np.diagonal(inv, axis1=1, axis2=2)
        ssr = float(np.clip(yty[ok] - np.sum(est[ok] * Zty[ok], axis=1), 0.0, None).sum())
        dof = int((counts[ok] - k).sum())
    s2 = ssr / dof if ok.any() and dof > 0 else float(np.var(resid))
    return est, inv_diag, s2


def _data_weight(factor: GroupFactor, columns: tuple[int, ...], resid: np.ndarray) -> float:
    """Steps 2–4 of the rule: the median over levels of the block's smallest data weight."""
    est, inv_diag, s2 = no_pooling(resid, factor, columns)
    ok = ~np.isnan(est).any(axis=1)
    if ok.sum() < 2 or s2 <= 0:
        return 0.0
    tau2 = np.var(est[ok], axis=0, ddof=1) - s2 * inv_diag[ok].mean(axis=0)
    tau2 = np.maximum(tau2, 1e-8 * max(s2, 1e-300))
    w = np.zeros(factor.n_levels)
    w[ok] = np.min(tau2 / (s2 * inv_diag[ok]), axis=1)
    return float(np.median(w))


def choose_parametrization(
    factor: GroupFactor, y: np.ndarray, X: np.ndarray, requested: str
) -> GroupFactor:
    """The factor with each block's parametrization set (``requested`` unless ``"auto"``).

    ``y`` may hold several responses (columns) sharing the factor's effects' parametrization
    (the taxa of a compositional model): the weight is then the median over responses.
    """
    if requested != "auto":
        fixed = tuple(
            GroupBlock(b.columns, b.correlated, requested, f"{requested} (set in the spec)")  # type: ignore[arg-type]
            for b in factor.blocks
        )
        return factor.with_blocks(fixed)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = np.asarray(y - X @ beta)
    responses = resid.reshape(len(resid), -1).T
    blocks: list[GroupBlock] = []
    for b in factor.blocks:
        weight = float(np.median([_data_weight(factor, b.columns, r) for r in responses]))
        choice = "centered" if weight > 1.0 else "noncentered"
        reason = f"auto: median data weight {weight:.3g} {'>' if weight > 1 else '<='} 1"
        if len(responses) > 1:
            reason += f" (median over {len(responses)} responses)"
        blocks.append(GroupBlock(b.columns, b.correlated, choice, reason))  # type: ignore[arg-type]
    return factor.with_blocks(tuple(blocks))


def one_centred_intercept(
    factors: tuple[GroupFactor, ...], auto: set[str]
) -> tuple[GroupFactor, ...]:
    """Keep one factor's intercept block centred, the one with the fewest levels (in nested
    designs the outer factor), which the compile stage then centres hierarchically on the
    population intercept; the other ``auto`` factors' centred intercept blocks become
    non-centred. With several centred intercepts only one can be hierarchically centred, and
    the others form a ridge with it and the population intercept (clinics ⊃ subjects Poisson
    GLMM: min-ESS/s 7 with both centred, 1,075 with this rule;
    ``benchmarks/results/parametrization.md``)."""

    def centred_intercept(f: GroupFactor) -> bool:
        return "Intercept" in f.terms and any(
            b.parametrization == "centered" and f.terms.index("Intercept") in b.columns
            for b in f.blocks
        )

    candidates = [f for f in factors if centred_intercept(f)]
    if len(candidates) < 2:
        return factors
    keep = min(candidates, key=lambda f: f.n_levels).name
    out = []
    for f in factors:
        if f.name == keep or f.name not in auto or not centred_intercept(f):
            out.append(f)
            continue
        icpt = f.terms.index("Intercept")
        blocks = tuple(
            GroupBlock(
                b.columns,
                b.correlated,
                "noncentered",
                f"auto: the data weight favours centring, but {keep}'s intercept is the "
                "centred one (hierarchically, on the population intercept); a second centred "
                "intercept would form a ridge with it",
            )
            if b.parametrization == "centered" and icpt in b.columns
            else b
            for b in f.blocks
        )
        out.append(f.with_blocks(blocks))
    return tuple(out)


def noncentred_beside_residual_correlation(
    factors: tuple[GroupFactor, ...], group: str, correlation: str, auto: set[str]
) -> tuple[GroupFactor, ...]:
    """Make the ``auto`` blocks of ``group`` non-centred when the residuals are correlated
    within it (``residuals:``).

    The rule's data weight counts a level's rows as independent; with serially correlated
    residuals they carry less information about the level's effect (AR(1) with ``phi`` 0.6:
    about a quarter as much) and the effect trades off against the residual process, so the
    rule calls centred where the posterior has a funnel (200 simulated fits of a random
    intercept beside AR(1) residuals: 55 diverged with the centred choice the rule made, 24
    non-centred; ``benchmarks/results/ar1_calibration.md``)."""
    out = []
    for f in factors:
        if f.name != group or f.name not in auto:
            out.append(f)
            continue
        blocks = tuple(
            GroupBlock(
                b.columns,
                b.correlated,
                "noncentered",
                f"auto: residuals correlated within {group} ({correlation}); the rule's data "
                f"weight ({b.reason}) counts the rows as independent, so non-centred",
            )
            if b.parametrization == "centered"
            else b
            for b in f.blocks
        )
        out.append(f.with_blocks(blocks))
    return tuple(out)
