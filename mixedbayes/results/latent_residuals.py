"""Draws of a GLMM's latent residual process for predictions (``residuals:`` of a ``glmm``;
docs/residuals.md, "GLMMs: latent residual process").

The fitted rows read the sampled process (``e_ar``). Rows of ``newdata`` read it where their
subject and time are a fitted row's; at a new time of a fitted subject the process is drawn
from its conditional normal given that subject's sampled values (each posterior draw: the
AR(1)/CAR(1) covariance ``sigma_ar² phi_ar^|Δt|`` over the fitted and the new times); a new
subject's process is drawn from the stationary process itself, as ``new_groups`` says for
unseen levels (``"sample"``; ``"population"``: no process; ``"error"``: a ``DataError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.design.residuals import ResidualBatch, block_covariances, residual_design
from mixedbayes.errors import DataError
from mixedbayes.naming import Names
from mixedbayes.results.group_draws import level_names
from mixedbayes.results.residual_draws import residual_draws

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.design.design import Design

__all__ = ["latent_draws"]

#: Added to the diagonal of a conditional covariance before its Cholesky factor (relative
#: to ``sigma_ar²``): a new time next to a fitted one with ``|phi|`` near 1.
JITTER = 1e-10


def latent_draws(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    *,
    level: Any = None,
    new_groups: str = "error",
    rng: np.random.Generator,
) -> np.ndarray | float:
    """The latent process at the rows to predict for, (chain, draw, rows), or 0 when the
    prediction leaves the subject factor out (``level="population"`` or a list without it).
    """
    rd_fit = residual_design(design)
    wanted = level_names(level)
    if wanted is not None and rd_fit.group not in wanted:
        return 0.0
    e_fit = posterior[Names().param(Names.E_AR)].transpose("chain", "draw", ...).to_numpy()
    if newdata is None:
        return np.asarray(e_fit)
    c, d, _ = e_fit.shape
    e_fit = e_fit.reshape(c * d, -1)
    rd = residual_design(design, newdata)
    values = residual_draws(posterior, rd)
    fitted = {s: i for i, s in enumerate(rd_fit.subjects)}
    unseen = [s for s in rd.subjects if s not in fitted]
    if unseen and new_groups == "error":
        raise DataError(
            f"newdata has subjects the model has not seen ({rd.group}: {unseen[:8]}).",
            where=f"group '{rd.group}'",
            hint="pass new_groups='sample' to draw their latent process from the fitted one, "
            "or new_groups='population' to predict them without it.",
        )
    out = np.zeros((c * d, len(rd.subject)))
    for j, label in enumerate(rd.subjects):
        rows = np.flatnonzero(rd.subject == j)
        if label not in fitted:
            if new_groups == "sample":
                out[:, rows] = _conditional(rd, values, np.empty(0), None, rd.times[rows], rng)
            continue
        own = np.flatnonzero(rd_fit.subject == fitted[label])
        at = {t: i for t, i in zip(rd_fit.times[own], own, strict=True)}
        known = np.array([t in at for t in rd.times[rows]], dtype=bool)
        out[:, rows[known]] = e_fit[:, [at[t] for t in rd.times[rows[known]]]]
        if not known.all():
            t_new = rd.times[rows[~known]]
            out[:, rows[~known]] = _conditional(
                rd, values, rd_fit.times[own], e_fit[:, own], t_new, rng
            )
    return out.reshape(c, d, -1)


def _conditional(
    rd: Any,
    values: dict[str, np.ndarray],
    t_obs: np.ndarray,
    e_obs: np.ndarray | None,
    t_new: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws (draws, new) of the process at ``t_new`` given its values ``e_obs`` (draws,
    obs) at ``t_obs`` (none: the stationary process), one per parameter draw."""
    times = np.concatenate([t_obs, t_new])
    k, o = len(times), len(t_obs)
    batch = ResidualBatch(
        rows=np.zeros((1, k), dtype=np.int64),
        pattern=np.zeros(1, dtype=np.int64),
        lags=np.abs(times[None, :, None] - times[None, None, :]),
        visits=np.zeros((1, k), dtype=np.int64),
    )
    cov = block_covariances(rd, batch, values)[:, 0]  # draws, k, k
    mean = np.zeros((cov.shape[0], k - o))
    cond = cov[:, o:, o:]
    if e_obs is not None:
        gain = np.linalg.solve(cov[:, :o, :o], cov[:, :o, o:]).transpose(0, 2, 1)
        mean = np.einsum("dno,do->dn", gain, e_obs)
        cond = cond - gain @ cov[:, :o, o:]
        cond = 0.5 * (cond + cond.transpose(0, 2, 1))
    jitter = JITTER * values["sigma"][:, None, None] ** 2 * np.eye(k - o)[None]
    L = np.linalg.cholesky(cond + jitter)
    z = rng.standard_normal(mean.shape)
    return np.asarray(mean + np.einsum("dij,dj->di", L, z))
