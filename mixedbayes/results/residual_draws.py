"""Draws of the residual structure's parameters and correlated residual draws (an ``lmm``
fitted with ``residuals:``; docs/residuals.md), from the posterior with NumPy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.design.residuals import ResidualDesign, residual_design, simulate_residuals
from mixedbayes.naming import Names

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.design.design import Design

__all__ = ["CHUNK_DRAWS", "chunks", "residual_draws", "residual_response"]

#: Parameter draws evaluated at once (bounds the memory of the block arrays).
CHUNK_DRAWS = 200


def residual_draws(
    posterior: xr.Dataset, rd: ResidualDesign, unit_sigma: bool = False
) -> dict[str, np.ndarray]:
    """The structure's parameter draws by role (``sigma``, ``phi``, ``rho``, ``sd``,
    ``cor``), chains and draws flattened into one leading dim. ``unit_sigma``: ``sigma`` is
    1 (each row's SD varies, ``sigma:``/``variance:``, and scales the residuals instead).
    Of a latent process (a ``glmm``) ``sigma`` is ``sigma_ar``."""

    def flat(name: str) -> np.ndarray:
        da = posterior[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose("chain", "draw", *other).to_numpy()
        return np.asarray(values.reshape(-1, *values.shape[2:]), dtype=float)

    if rd.correlation == "unstructured":
        return {"sd": flat(Names.sd(rd.time)), "cor": flat(Names.cor(rd.time))}
    names = Names()
    key, name = ("rho", Names.RHO_CS) if rd.correlation == "cs" else ("phi", Names.PHI_AR)
    corr = flat(names.param(name))
    scale = names.param(Names.SIGMA_AR if rd.latent else "sigma")
    sigma = np.ones(len(corr)) if unit_sigma else flat(scale)
    return {"sigma": sigma, key: corr}


def chunks(values: dict[str, np.ndarray]) -> Any:
    """(slice, values) over the draws, :data:`CHUNK_DRAWS` at a time."""
    d = len(next(iter(values.values())))
    for start in range(0, d, CHUNK_DRAWS):
        yield (
            slice(start, start + CHUNK_DRAWS),
            {k: v[start : start + CHUNK_DRAWS] for k, v in values.items()},
        )


def residual_response(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    eta: np.ndarray,
    seed: int | None,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """New responses (chain, draw, rows) at the linear predictor ``eta`` of the rows of
    ``newdata`` (the fitted rows when None), with residuals drawn jointly within each
    subject of those rows (its time and subject columns) from every draw's covariance.
    ``scale`` (chain, draw, rows): each row's SD when it varies (``sigma:``, ``variance:``);
    the correlation's residuals are multiplied by it."""
    rd = residual_design(design, newdata)
    c, d, n = eta.shape
    rng = np.random.default_rng(seed)
    noise = np.empty((c * d, n))
    for part, values in chunks(residual_draws(posterior, rd, unit_sigma=scale is not None)):
        noise[part] = simulate_residuals(rd, values, rng)
    noise = noise.reshape(c, d, n)
    if scale is not None:
        noise = noise * scale
    return np.asarray(eta + noise)
