"""A GLMM's latent residual process (``residuals: {correlation: ar1 | car1}`` of a ``glmm``).

Per subject ``j``, its rows ordered by time ``T_1 < … < T_k``, a stationary Gaussian process
is added to the linear predictor (brms's latent ``ar()`` on a non-Gaussian family, glmmTMB's
``ar1(0 + visit | id)``)::

    eta_i += e_i,    e_j ~ MvNormal(0, sigma_ar² R_j),    R_j[t, s] = phi_ar^|T_t − T_s|

(``ar1``: integer visits, gaps allowed, ``phi_ar`` in (−1, 1); ``car1``: continuous times,
``phi_ar`` in (0, 1)). It is sampled **non-centred**, ``e_j = sigma_ar · L_j z_j`` with ``z``
standard normal (``z_ar``, one per row) and ``L_j`` the closed-form Cholesky factor of
``R_j``::

    L[t, s] = phi^(T_t − T_s) · c_s  (s ≤ t),   c_1 = 1,   c_s = sqrt(1 − phi^(2 (T_s − T_{s−1})))

which is the recursion ``e_1 = σ z_1``, ``e_t = phi^Δ e_{t−1} + σ sqrt(1 − phi^(2Δ)) z_t``.
Vectorised as the ``lmm``'s residual blocks (:mod:`mixedbayes.design.residuals`): the
subjects' patterns of lags, padded to the largest block (up to
:data:`~mixedbayes.compile.residuals.PAD_LIMIT` rows, else one batch per size); one
``(patterns, k, k)`` factor, one batched product over the subjects and one gather back to
the rows; no loop over subjects in the graph. Padded positions come last in a block and
``L`` is lower triangular, so they never reach a row. The process per row is kept as
``e_ar`` (predictions and the pointwise log-likelihood read it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixedbayes.compile.context import BuildContext
from mixedbayes.compile.priors import scalar_prior
from mixedbayes.compile.residuals import PAD_LIMIT, powers, residual_parameters
from mixedbayes.design.residuals import ResidualBatch, ResidualDesign, padded_batch
from mixedbayes.naming import Names
from mixedbayes.priors.table import PriorTable

__all__ = ["add_latent_residuals", "latent_batches", "latent_factor", "latent_process"]


def latent_batches(rd: ResidualDesign) -> tuple[ResidualBatch, ...]:
    """The batches the process is built over: one padded batch up to ``PAD_LIMIT`` rows per
    subject, else one per block size."""
    return rd.batches if rd.max_block > PAD_LIMIT else (padded_batch(rd),)


def latent_factor(rd: ResidualDesign, batch: ResidualBatch, phi: Any) -> Any:
    """The Cholesky factor of the correlation ``phi^|T_t − T_s|`` per pattern of ``batch``,
    a ``(patterns, k, k)`` tensor, written in closed form (module docstring). At a padded
    position (after a block's rows) the entries are 0 except a 1 on the diagonal."""
    import pytensor.tensor as pt

    k, u = batch.k, batch.n_patterns
    p = powers(phi, batch.lags) if rd.correlation == "ar1" else pt.power(phi, batch.lags)
    # c_s² = 1 − phi^(2 (T_s − T_{s−1})) = 1 − (phi^(T_s − T_{s−1}))²; 1 at a padded step
    # (its lag is 0: sqrt(1 − 1) would have an infinite gradient)
    steps = np.arange(1, k)
    step_valid = np.ones((u, k - 1), dtype=bool) if batch.valid is None else batch.valid[:, 1:]
    c2 = pt.where(step_valid, 1.0 - pt.sqr(p[:, steps, steps - 1]), 1.0)
    c = pt.concatenate([pt.ones((u, 1)), pt.sqrt(c2)], axis=1)
    lower = np.tril(np.ones((k, k)))[None]
    if batch.valid is not None:
        pair = batch.valid[:, :, None] & batch.valid[:, None, :]
        lower = np.where(pair, lower, np.eye(k)[None])
    return lower * p * c[:, None, :]


def latent_process(rd: ResidualDesign, sigma: Any, phi: Any, z: Any) -> Any:
    """The process ``e`` per design row from its standard normals ``z`` (one per row, in the
    design's order): ``sigma · L_j z_j`` per subject."""
    import pytensor.tensor as pt

    parts, position = [], np.empty(len(rd.subject), dtype=np.int64)
    offset = 0
    for batch in latent_batches(rd):
        m, k = batch.rows.shape
        valid = batch.rows >= 0
        L = latent_factor(rd, batch, phi)
        Z = z[np.maximum(batch.rows, 0)] * valid.astype(float)  # subjects × k
        if batch.n_patterns == 1:
            E = pt.dot(Z, L[0].T)
        else:
            E = pt.sum(L[batch.pattern] * Z[:, None, :], axis=-1)
        parts.append(E.reshape((m * k,)))
        flat = offset + np.arange(m * k).reshape(m, k)
        position[batch.rows[valid]] = flat[valid]
        offset += m * k
    e = parts[0] if len(parts) == 1 else pt.concatenate(parts)
    return sigma * e[position]


def add_latent_residuals(rd: ResidualDesign, priors: PriorTable, ctx: BuildContext) -> Any:
    """Add ``phi_ar``, ``sigma_ar``, the standard normals ``z_ar`` and the process ``e_ar``
    (dim of the rows) to ``ctx.model``; return ``e_ar``, what the linear predictor adds."""
    import pymc as pm

    names = ctx.names
    phi = residual_parameters(rd, priors, ctx, sigma=False)["phi"]
    row = priors.get(Names.SIGMA_AR)
    sigma = scalar_prior(ctx, names.param(Names.SIGMA_AR), row, positive=True)
    with ctx.active():
        z = pm.Normal(names.param(Names.Z_AR), 0.0, 1.0, dims=names.obs_dim)
    e = latent_process(rd, sigma, phi, z)
    return ctx.deterministic(names.param(Names.E_AR), e, dims=names.obs_dim)
