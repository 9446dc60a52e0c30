"""The implied within-subject residual covariance of an ``lmm`` fitted with ``residuals:``
(``fit.residual_covariance()``, the report's residual covariance section)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.residuals import (
    ResidualBatch,
    block_covariances,
    latent_residuals,
    residual_design,
)
from mixedbayes.design.variance import row_varying_sigma
from mixedbayes.results.residual_draws import chunks, residual_draws

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["residual_covariance"]


def residual_covariance(
    fit: FitLike, times: Sequence[Any] | None = None, *, correlation: bool = False
) -> pd.DataFrame:
    """The implied within-subject residual covariance over the visits (posterior mean).

    Parameters
    ----------
    fit : Fit
        An ``lmm`` fitted with ``residuals:``.
    times : sequence, optional
        The times (``ar1``, ``car1``) or visit levels (``cs``, ``unstructured``) to show;
        default every distinct one in the data (for ``car1`` at most the first 12).
    correlation : bool
        The correlation matrix instead of the covariance.

    Returns
    -------
    DataFrame
        Visits × visits, labelled by the time column's values. For ``ar1`` + random effects
        this is the residual part ``R`` only (the random effects add ``Z G Zᵀ``). When each
        row has its own SD (``sigma:``, ``variance:``) only the correlation is one matrix;
        the covariance is then a ``SpecError``.
    """
    from mixedbayes.errors import SpecError

    design: Any = fit.design
    if getattr(design.spec, "residuals", None) is None:
        raise SpecError(
            "this fit has no residual correlation structure.",
            where="residual_covariance",
            hint="fit an lmm with residuals: {correlation: ar1 | car1 | cs | unstructured, "
            "time: <column>}",
        )
    # D R D (sigma:, variance:) scales the response's residuals, not a latent process
    varying = row_varying_sigma(design) and not latent_residuals(design)
    if varying and not correlation:
        raise SpecError(
            "each row has its own residual SD (sigma: or variance:), so the covariance "
            "differs between subjects (D R D); only the correlation R is one matrix.",
            where="residual_covariance",
            hint="ask for residual_covariance(correlation=True), and for the SDs see b_sigma.",
        )
    rd = residual_design(design)
    values = residual_draws(fit.posterior, rd, unit_sigma=varying)
    if rd.correlation in ("cs", "unstructured"):
        labels = list(rd.visit_levels) if times is None else list(times)
        position = {str(v): i for i, v in enumerate(rd.visit_levels)}
        unknown = [t for t in labels if str(t) not in position]
        if unknown:
            raise SpecError(
                f"unknown visit levels {unknown}.",
                where="times",
                hint=f"use the levels of {rd.time!r}: {rd.visit_levels}",
            )
        grid = np.array([position[str(t)] for t in labels], dtype=float)
    else:
        default = np.unique(rd.times)[:12]
        labels = list(default) if times is None else list(times)
        if times is None and np.allclose(default, np.round(default)):
            labels = [int(t) for t in default]  # integer visits (ar1) read as such
        grid = np.asarray(labels, dtype=float)
    k = len(grid)
    batch = ResidualBatch(
        rows=np.zeros((1, k), dtype=np.int64),
        pattern=np.zeros(1, dtype=np.int64),
        lags=np.abs(grid[None, :, None] - grid[None, None, :]),
        visits=grid.astype(np.int64)[None],
    )
    total = np.zeros((k, k))
    d = 0
    for _, part in chunks(values):
        cov = block_covariances(rd, batch, part)[:, 0]  # d, k, k
        if correlation:
            sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
            cov = cov / (sd[:, :, None] * sd[:, None, :])
        total += cov.sum(axis=0)
        d += cov.shape[0]
    names = [str(t) for t in labels]
    frame = pd.DataFrame(total / d, index=names, columns=names)
    frame.index.name = frame.columns.name = rd.time
    return frame
