"""Results of an ``lmm`` with correlated residuals (``residuals:``; docs/residuals.md).

From the posterior draws with NumPy: the pointwise log-likelihood (each row given the other
rows of its subject), replicated responses that carry the within-subject correlation, and
the implied within-subject covariance over the visits is
:func:`mixedbayes.results.residual_covariance.residual_covariance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.design.residuals import (
    ResidualDesign,
    residual_design,
    residual_log_likelihood,
    simulate_residuals,
)
from mixedbayes.naming import Names
from mixedbayes.results.predict import linear_predictor_draws

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.design import Design

__all__ = [
    "chunks",
    "residual_draws",
    "residual_pointwise_log_likelihood",
    "residual_predictive",
]

#: Parameter draws evaluated at once (bounds the memory of the block arrays).
CHUNK_DRAWS = 200


def residual_draws(posterior: xr.Dataset, rd: ResidualDesign) -> dict[str, np.ndarray]:
    """The structure's parameter draws by role (``sigma``, ``phi``, ``rho``, ``sd``,
    ``cor``), chains and draws flattened into one leading dim."""

    def flat(name: str) -> np.ndarray:
        da = posterior[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose("chain", "draw", *other).to_numpy()
        return np.asarray(values.reshape(-1, *values.shape[2:]), dtype=float)

    if rd.correlation == "unstructured":
        return {"sd": flat(Names.sd(rd.time)), "cor": flat(Names.cor(rd.time))}
    names = Names()
    key, name = ("rho", Names.RHO_CS) if rd.correlation == "cs" else ("phi", Names.PHI_AR)
    return {"sigma": flat(names.param("sigma")), key: flat(names.param(name))}


def chunks(values: dict[str, np.ndarray]) -> Any:
    """(slice, values) over the draws, :data:`CHUNK_DRAWS` at a time."""
    d = len(next(iter(values.values())))
    for start in range(0, d, CHUNK_DRAWS):
        yield (
            slice(start, start + CHUNK_DRAWS),
            {k: v[start : start + CHUNK_DRAWS] for k, v in values.items()},
        )


def residual_pointwise_log_likelihood(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """Each fitted row's log-density given the other rows of its subject, (chain, draw,
    rows): the leave-one-out form for non-factorised normal models (Bürkner, Gabry &
    Vehtari 2020; :func:`~mixedbayes.design.residuals.residual_log_likelihood`)."""
    rd = residual_design(design)
    eta, _ = linear_predictor_draws(posterior, design, None)
    c, d, n = eta.shape
    resid = (np.asarray(design.y)[None, None, :] - eta).reshape(c * d, n)
    out = np.empty_like(resid)
    for part, values in chunks(residual_draws(posterior, rd)):
        out[part] = residual_log_likelihood(rd, resid[part], values)
    return out.reshape(c, d, n)


def residual_predictive(posterior: xr.Dataset, design: Design, seed: int | None) -> np.ndarray:
    """Replicated responses at the fitted rows, (chain, draw, rows): the mean (fixed and
    group effects) plus residuals drawn from each draw's within-subject covariance."""
    rd = residual_design(design)
    eta, _ = linear_predictor_draws(posterior, design, None)
    c, d, n = eta.shape
    rng = np.random.default_rng(seed)
    noise = np.empty((c * d, n))
    for part, values in chunks(residual_draws(posterior, rd)):
        noise[part] = simulate_residuals(rd, values, rng)
    return np.asarray(eta + noise.reshape(c, d, n))
