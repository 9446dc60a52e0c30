"""Per-level and pooled GLM fits by the family's own likelihood, on the link scale.

:func:`mixedbayes.results.shrinkage.shrinkage` compares each level's posterior with two
estimates that ignore the group-level distribution:

- the **complete-pooling** fit: the GLM with the fixed effects only (``y ~ X``, the model's
  offset kept), by maximum likelihood;
- the **no-pooling** fits: per level ``j`` of a grouping factor, the GLM of that level's rows
  on the factor's columns of ``Z`` with the linear predictor
  ``offset + X_other b + Z_j θ_j``, by maximum likelihood (``X_other``: the fixed columns
  not matched to the factor's terms, held at their posterior means ``b``, the values the
  partial-pooling estimate is conditional on).

Both use the family's log-density (:meth:`Family.logp_reference`, SciPy) with the family's
own parameters (``sigma``, ``alpha``, ``zi``, ...) held at their posterior means. The fits are
a damped Newton iteration, vectorised over levels, on the observed information; the first and
second derivatives of each row's log-density with respect to its linear predictor are central
finite differences of the SciPy log-density, so a new family needs nothing more.

**Fallback.** A level whose maximum-likelihood estimate does not exist (all counts zero, all
binary responses equal, separation by a slope) or is not found (no convergence in
``MAX_ITER`` steps, a non-positive-definite information, an estimate more than ``CAP`` penalty
scales away from the pooled value) is fitted again with a weak normal penalty on its
coefficients: ``θ_jk ~ Normal(c_k, s_k)`` with ``c_k`` the complete-pooling value and
``s_k = 2.5 · s / sd(z_k)`` (``s`` the family's response scale on the link scale, as the
default priors use: 1 on a log or logit scale; ``sd(z_k)`` the column's SD over all rows, 1
for a constant column), rstanarm's weakly informative scaling. Its method is ``"penalised"``;
the variance then includes the penalty's precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.design.groups import level_sums
from mixedbayes.families import response_scale
from mixedbayes.results.predict import family_params, linear_predictor_draws, rows_of

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design, GroupFactor

__all__ = [
    "MLE",
    "NONE",
    "PENALISED",
    "LevelFits",
    "RowLikelihood",
    "factor_fits",
    "fit_levels",
    "penalty_scales",
    "pooled_fit",
]

#: How a level's no-pooling estimate was obtained.
MLE, PENALISED, NONE = "mle", "penalised", "none"
#: Newton steps at most; relative step size that counts as converged.
MAX_ITER, STEP_TOL = 60, 1e-9
#: Halvings of a Newton step at most (line search).
MAX_HALVINGS = 40
#: A maximum-likelihood estimate further than CAP penalty scales from the pooled value is
#: taken as diverging (separation, all-zero counts).
CAP = 10.0
#: The weak penalty's scale, in units of the response scale per SD of the column.
PENALTY_SCALE = 2.5


@dataclass(frozen=True)
class RowLikelihood:
    """Each row's log-density as a function of its linear predictor (SciPy reference).

    Attributes
    ----------
    design : Design
        Gives the family, the link, the response and the trials.
    params : dict of str to ndarray
        The family's parameters, one value per row (posterior means).
    """

    design: Design
    params: dict[str, np.ndarray]

    @classmethod
    def at_posterior_mean(cls, design: Design, posterior: xr.Dataset) -> RowLikelihood:
        """The likelihood with the family's parameters at their posterior means."""
        eta, _ = linear_predictor_draws(posterior, design, None)
        mu = design.link.inverse_numpy(eta)
        draws = family_params(posterior, design, rows_of(design, None), mu=mu)
        params = {
            k: np.broadcast_to(np.asarray(v).mean(axis=(0, 1)), (design.n,)).copy()
            for k, v in draws.items()
        }
        return cls(design, params)

    def logp(self, eta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Pointwise log-density of ``rows`` (indices) at linear predictor ``eta``."""
        d = self.design
        trials = None if d.trials is None else d.trials[rows]
        with np.errstate(all="ignore"):
            mu = d.link.inverse_numpy(eta)
            out = d.family.logp_reference(
                d.y[rows], mu, {k: v[rows] for k, v in self.params.items()}, trials
            )
        return np.asarray(out, dtype=float)

    def derivatives(
        self, eta: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log-density and its first and second derivatives in ``eta`` (central differences)."""
        h = 1e-4 * (1.0 + np.abs(eta))
        up, mid, down = (self.logp(eta + s * h, rows) for s in (1.0, 0.0, -1.0))
        return mid, (up - down) / (2.0 * h), (up - 2.0 * mid + down) / h**2


@dataclass(frozen=True)
class LevelFits:
    """Per-level GLM estimates.

    Attributes
    ----------
    estimates : ndarray, shape (levels, terms)
        NaN where the level has no estimate.
    variances : ndarray, shape (levels, terms)
        Diagonal of the inverse observed information (the sampling variance) at the estimate.
    method : ndarray of str, shape (levels,)
        ``"mle"``, ``"penalised"`` (the fallback) or ``"none"`` (not estimable: no more rows
        than terms, a rank-deficient ``Z_j``, or no fit found).
    """

    estimates: np.ndarray
    variances: np.ndarray
    method: np.ndarray


def _newton(
    lik: RowLikelihood,
    index: np.ndarray,
    Z: np.ndarray,
    offset: np.ndarray,
    start: np.ndarray,
    active: np.ndarray,
    penalty: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise each active level's (penalised) log-likelihood; (theta, information, converged)."""
    L, K = start.shape
    theta = start.copy()
    done = ~active
    converged = np.zeros(L, dtype=bool)

    def evaluate(th: np.ndarray, levels: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
        rows = np.flatnonzero(levels[index])
        idx, Zr = index[rows], Z[rows]
        eta = offset[rows] + np.einsum("nk,nk->n", Zr, th[idx])
        if order == 0:
            obj = level_sums(idx, lik.logp(eta, rows), L)
            if penalty is not None:
                obj -= 0.5 * np.sum(((th - penalty[0]) / penalty[1]) ** 2, axis=1)
            return (obj,)
        l0, d1, d2 = lik.derivatives(eta, rows)
        obj = level_sums(idx, l0, L)
        grad = level_sums(idx, Zr * d1[:, None], L)
        info = -level_sums(idx, Zr[:, :, None] * Zr[:, None, :] * d2[:, None, None], L)
        if penalty is not None:
            obj -= 0.5 * np.sum(((th - penalty[0]) / penalty[1]) ** 2, axis=1)
            grad -= (th - penalty[0]) / penalty[1] ** 2
            info += np.diag(1.0 / penalty[1] ** 2)
        return obj, grad, info

    info = np.full((L, K, K), np.nan)
    for _ in range(MAX_ITER):
        todo = ~done
        if not todo.any():
            break
        obj, grad, info_now = evaluate(theta, todo, 2)
        info[todo] = info_now[todo]
        bad = todo & ~(np.isfinite(obj) & np.isfinite(grad).all(axis=1))
        bad |= todo & ~np.isfinite(info_now).all(axis=(1, 2))
        done |= bad
        todo &= ~bad
        if not todo.any():
            break
        # a positive-definite working information: negative curvature clipped, a small ridge
        work = info_now[todo]
        eig = np.linalg.eigvalsh(work)
        ridge = np.maximum(0.0, -eig.min(axis=1)) + 1e-10 * (1.0 + np.abs(eig).max(axis=1))
        work = work + ridge[:, None, None] * np.eye(K)
        step = np.zeros((L, K))
        step[todo] = np.linalg.solve(work, grad[todo][:, :, None])[:, :, 0]
        t = np.ones(L)
        pending = todo.copy()
        for _ in range(MAX_HALVINGS):
            (trial,) = evaluate(theta + t[:, None] * step, pending, 0)
            ok = pending & np.isfinite(trial) & (trial >= obj - 1e-12 * (1.0 + np.abs(obj)))
            pending &= ~ok
            if not pending.any():
                break
            t[pending] *= 0.5
        moved = t[:, None] * step
        theta[todo] += moved[todo]
        size = np.abs(moved).max(axis=1) / (1.0 + np.abs(theta).max(axis=1))
        newly = todo & (size < STEP_TOL)
        converged |= newly
        done |= newly
    # the information at the final estimates
    if converged.any():
        _, grad, info_end = evaluate(theta, converged, 2)
        info[converged] = info_end[converged]
        # a (near-)zero score at the solution, relative to its sampling scale
        with np.errstate(all="ignore"):
            sd = np.sqrt(1.0 / np.abs(np.diagonal(info_end, axis1=1, axis2=2)))
            small = (np.abs(grad * sd) < 1e-3).all(axis=1)
        converged &= small
    return theta, info, converged


def _variances(info: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal of the inverse information where it is positive definite; and which are."""
    L, K = info.shape[:2]
    var = np.full((L, K), np.nan)
    good = ok & np.isfinite(info).all(axis=(1, 2))
    if good.any():
        eig = np.linalg.eigvalsh(info[good])
        pd_ = eig.min(axis=1) > 1e-12 * np.abs(eig).max(axis=1)
        idx = np.flatnonzero(good)
        good[idx[~pd_]] = False
    if good.any():
        var[good] = np.diagonal(np.linalg.inv(info[good]), axis1=1, axis2=2)
    return var, good


def penalty_scales(design: Design, Z: np.ndarray) -> np.ndarray:
    """``2.5 · s / sd(z_k)`` per column (``s``: the response scale on the link scale)."""
    _, s, _ = response_scale(design.family, design.y, design.link)
    sd = Z.std(axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-12 * (1.0 + np.abs(Z).max(axis=0))), sd, 1.0)
    return PENALTY_SCALE * s / sd


def fit_levels(
    lik: RowLikelihood,
    index: np.ndarray,
    Z: np.ndarray,
    offset: np.ndarray,
    centre: np.ndarray,
    estimable: np.ndarray,
) -> LevelFits:
    """Per-level GLM fits of ``eta = offset + Z θ_j``, by maximum likelihood or the fallback.

    Parameters
    ----------
    lik : RowLikelihood
    index : ndarray of int, shape (n,)
        The level of each row.
    Z : ndarray, shape (n, terms)
    offset : ndarray, shape (n,)
    centre : ndarray, shape (terms,)
        The starting values and the penalty's centre (the complete-pooling values).
    estimable : ndarray of bool, shape (levels,)
        Levels to fit (the others get ``"none"``).

    Returns
    -------
    LevelFits
    """
    L, K = estimable.size, Z.shape[1]
    start = np.broadcast_to(centre, (L, K)).copy()
    theta, info, conv = _newton(lik, index, Z, offset, start, estimable, None)
    scale = penalty_scales(lik.design, Z)
    var, good = _variances(info, conv)
    good &= (np.abs(theta - centre) <= CAP * scale).all(axis=1)
    method = np.full(L, NONE, dtype=object)
    method[good] = MLE
    retry = estimable & ~good
    if retry.any():
        p_theta, p_info, p_conv = _newton(
            lik, index, Z, offset, start, retry, (np.asarray(centre, float), scale)
        )
        p_var, p_good = _variances(p_info, p_conv & retry)
        theta[retry], var[retry] = p_theta[retry], p_var[retry]
        method[p_good] = PENALISED
    est = np.where((method != NONE)[:, None], theta, np.nan)
    var = np.where((method != NONE)[:, None], var, np.nan)
    return LevelFits(est, var, method)


def pooled_fit(lik: RowLikelihood) -> np.ndarray:
    """The complete-pooling GLM: ``y ~ X`` (with the model's offset) by maximum likelihood.

    Starts from the least-squares fit of the working response; falls back to the weakly
    penalised fit (centred on that start) when no finite MLE exists, and gives NaN
    coefficients when neither is found.
    """
    d = lik.design
    if d.X.shape[1] == 0:
        return np.zeros(0)
    offset = d.offset if d.offset is not None else np.zeros(d.n)
    start, *_ = np.linalg.lstsq(d.X, d.working_y(), rcond=None)
    fits = fit_levels(lik, np.zeros(d.n, dtype=int), d.X, offset, start, np.ones(1, dtype=bool))
    return np.asarray(fits.estimates[0])


def factor_fits(
    lik: RowLikelihood,
    g: GroupFactor,
    pooled: np.ndarray,
    held: np.ndarray,
    matched: list[int | None],
) -> tuple[LevelFits, np.ndarray]:
    """The no-pooling fits of one grouping factor, and its complete-pooling values.

    Parameters
    ----------
    lik : RowLikelihood
    g : GroupFactor
    pooled : ndarray
        The complete-pooling coefficients of the fixed columns (:func:`pooled_fit`).
    held : ndarray
        The values at which the fixed columns not matched to the factor's terms enter the
        offset (the shrinkage uses their posterior means).
    matched : list of int or None
        Per term of the factor, its fixed column (None: no fixed counterpart, whose
        complete-pooling value is 0).

    Returns
    -------
    (LevelFits, ndarray)
    """
    d = lik.design
    used = {c for c in matched if c is not None}
    other = [c for c in range(len(held)) if c not in used]
    offset = d.X[:, other] @ held[other]
    if d.offset is not None:
        offset = offset + d.offset
    complete = np.array([pooled[c] if c is not None else 0.0 for c in matched])
    k = len(g.terms)
    ZtZ = level_sums(g.index, g.Z[:, :, None] * g.Z[:, None, :], g.n_levels)
    estimable = g.counts > k
    if estimable.any():
        estimable[estimable] = np.linalg.matrix_rank(ZtZ[estimable]) == k
    return fit_levels(lik, g.index, g.Z, offset, complete, estimable), complete
