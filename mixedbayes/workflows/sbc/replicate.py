"""One SBC replicate on a worker: refit the simulated data and rank the true values.

:func:`_refit` runs through :mod:`mixedbayes.batch` (pickled with its :class:`_Job` to the
workers); :func:`current_replicate` tells a custom ``fit_fn`` which replicate it is fitting.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes import api

if TYPE_CHECKING:
    from mixedbayes.priors import PriorTable
    from mixedbayes.spec import ModelSpec

SAMPLE_DIMS = ("chain", "draw")

_CURRENT: ContextVar[tuple[int, int] | None] = ContextVar("sbc_replicate", default=None)


def current_replicate() -> tuple[int, int] | None:
    """``(replicate, attempt)`` while a refit runs (for a custom ``fit_fn``); else None."""
    return _CURRENT.get()


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class _Quantity:
    """One ranked scalar: its label (``b[Days]``), variable and index into the variable."""

    label: str
    var: str
    index: tuple[int, ...]
    dims: tuple[str, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to refit one replicate (pickled to the workers)."""

    spec: ModelSpec
    template: pd.DataFrame | dict[str, pd.DataFrame]
    priors: PriorTable
    quantities: tuple[_Quantity, ...]
    draws: int
    tune: int
    chains: int
    sampler: str | None
    target_accept: float | None
    max_rank: int
    seed: int
    fit_fn: Callable[..., Any] | None
    fit_kwargs: dict[str, Any]

    def data(
        self, columns: dict[str, dict[str, np.ndarray]]
    ) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """The template with one replicate's simulated columns (by table; ``""`` for a
        single DataFrame), as the kind's ``replicate_columns`` gave them."""
        if isinstance(self.template, pd.DataFrame):
            return self.template.assign(**columns.get("", {}))
        return {
            name: frame.assign(**columns.get(name, {})) for name, frame in self.template.items()
        }


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] % (2**31 - 1))


def _flat(q: _Quantity) -> int:
    """Position of ``q`` in its variable flattened over the non-sample dimensions."""
    return int(np.ravel_multi_index(q.index, q.shape)) if q.index else 0


def _quiet_fit(fit_fn: Callable[..., Any], job: _Job, item: dict[str, Any], seed: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_fn(
            job.spec,
            job.data(item["columns"]),
            draws=job.draws,
            tune=job.tune,
            chains=job.chains,
            seed=seed,
            sampler=job.sampler,
            target_accept=job.target_accept,
            priors=job.priors,
            log_likelihood=False,
            check=False,
            **job.fit_kwargs,
        )


def _refit(job: _Job, item: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    """Refit one replicate and rank its true values among the posterior draws."""
    rep = int(item["replicate"])
    fit_fn = job.fit_fn or api.fit
    seed = _seed(job.seed, rep, 1, attempt)  # a retry samples with another seed
    t0 = time.perf_counter()
    token = _CURRENT.set((rep, attempt))
    try:
        fit = _quiet_fit(fit_fn, job, item, seed)
    finally:
        _CURRENT.reset(token)
    seconds = time.perf_counter() - t0
    post = fit.posterior
    total = post.sizes["chain"] * post.sizes["draw"]
    pick = np.unique(np.linspace(0, total - 1, job.max_rank).round().astype(np.int64))
    if pick.size != job.max_rank:  # pragma: no cover - checked before the batch runs
        raise ValueError(f"{total} draws cannot give {job.max_rank} rank draws")
    rng = np.random.default_rng(_seed(job.seed, rep, 2))
    ranks: dict[str, int] = {}
    for q in job.quantities:
        arr = np.asarray(post[q.var].transpose(*SAMPLE_DIMS, *q.dims).to_numpy())
        draws = arr.reshape(arr.shape[0] * arr.shape[1], -1)[:, _flat(q)][pick]
        truth = float(item["true"][q.label])
        below = int(np.sum(draws < truth))
        ties = int(np.sum(draws == truth))
        ranks[q.label] = below + (int(rng.integers(0, ties + 1)) if ties else 0)
    names = sorted({q.var for q in job.quantities})
    summary = fit.summary(var_names=names).set_index("parameter")
    labels = [q.label for q in job.quantities if q.label in summary.index]
    means = summary["mean"].to_dict()
    stats = fit.idata["sample_stats"]
    divergent = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    return {
        "ranks": ranks,
        "true": dict(item["true"]),
        "mean": {lab: float(means[lab]) for lab in labels},
        "ess_bulk_min": float(summary.loc[labels, "ess_bulk"].min()) if labels else np.nan,
        "rhat_max": float(summary.loc[labels, "rhat"].max()) if labels else np.nan,
        "divergences": divergent,
        "seconds": seconds,
        "compile_seconds": float(fit.timings.get("compile_seconds", np.nan)),
        "sample_seconds": float(fit.timings.get("sample_seconds", np.nan)),
        "seed": seed,
    }
