"""``fit.kfold``: K-fold cross-validation, grouped by a factor, run through :mod:`mixedbayes.batch`.

Each fold refits the model to the other folds' rows with the fit's prior table (fixed across
folds, as for simulation-based calibration) and sampler settings, and scores its held-out
rows (:func:`mixedbayes.results.kfold.heldout_log_density`). The refits are tasks of
:func:`mixedbayes.batch.run_batch`: serially, in local processes or on Dask. Within a process
the sampler reuses a compiled model for refits of the same structure: for the marginalised
Gaussian LMM its data are per-level statistics, so folds holding out equal numbers of levels
share one compilation; for other models the training sets must have the same number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes import api
from mixedbayes.batch import BatchError, check_backend, run_batch
from mixedbayes.errors import DataError, SpecError
from mixedbayes.results.kfold import (
    KFoldResult,
    grouped_folds,
    heldout_log_density,
    random_folds,
)
from mixedbayes.results.refit import register_refit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mixedbayes.batch.core import Backend
    from mixedbayes.priors import PriorTable
    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["kfold"]


@dataclass(frozen=True)
class FoldTask:
    """One refit: the training rows, the held-out rows and their responses, the settings."""

    spec: ModelSpec
    priors: PriorTable
    train: pd.DataFrame
    test: pd.DataFrame
    y: np.ndarray
    draws: int
    tune: int | None
    chains: int
    seed: int
    sampler: str | None
    group_draws: int


def run_fold(task: FoldTask) -> dict[str, Any]:
    """Fit the training rows and score the held-out ones (a batch task)."""
    from mixedbayes.inference.samplers import COMPILE_CACHE

    hits = COMPILE_CACHE.hits
    fit = api.fit(
        task.spec,
        task.train,
        draws=task.draws,
        tune=task.tune,
        chains=task.chains,
        seed=task.seed,
        sampler=task.sampler,
        priors=task.priors,
        check=False,
        log_likelihood=False,
    )
    elpd = heldout_log_density(
        fit.posterior, fit.design, task.test, task.y, group_draws=task.group_draws, seed=task.seed
    )
    return {
        "elpd": elpd,
        "n_train": fit.design.n,
        "compile_seconds": fit.timings["compile_seconds"],
        "sample_seconds": fit.timings["sample_seconds"],
        "compile_reused": COMPILE_CACHE.hits > hits,
    }


def fold_ids(
    fit: FitLike,
    k: int,
    group: str | None,
    folds: Sequence[int] | None,
    seed: int | None,
) -> np.ndarray:
    """The fold of each fitted row: given, grouped by ``group``'s levels, or at random."""
    data = fit.design.data
    if folds is not None:
        ids = np.asarray(folds)
        if ids.shape != (len(data),):
            raise SpecError(
                f"folds has {ids.size} values; the fit has {len(data)} rows.",
                where="folds",
                hint="give one fold number per row the fit used (fit.design.data).",
            )
        return ids
    if group is None:
        return random_folds(len(data), k, seed)
    if group not in data.columns:
        raise DataError(
            f"kfold group {group!r} is not a column of the data.",
            where="group",
            hint=f"use a grouping factor, e.g. {[g.name for g in fit.design.groups]}.",
        )
    return grouped_folds(data[group].to_numpy(), k, seed)


@register_refit("kfold")
def kfold(
    fit: FitLike,
    k: int = 10,
    *,
    group: str | None = None,
    folds: Sequence[int] | None = None,
    seed: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    group_draws: int = 10,
    backend: Backend = "serial",
    workers: int | None = None,
    address: str | None = None,
    client: Any = None,
    out_dir: str | None = None,
) -> KFoldResult:
    """K-fold cross-validation: expected log predictive density of held-out rows.

    Parameters
    ----------
    fit : Fit
    k : int
        Number of folds.
    group : str, optional
        Hold out whole levels of this column (a grouping factor): the held-out levels are
        new to each refit, and their effects are drawn from the fitted group-level
        distribution (brms's ``folds = "grouped"`` with ``allow_new_levels``). Without it,
        rows are split at random.
    folds : sequence of int, optional
        The fold of each row of ``fit.design.data`` (overrides ``k``/``group`` splitting).
    seed : int, optional
        Seeds the split and the refits (default: the fit's seed).
    draws, tune, chains : int, optional
        Sampler settings of the refits (default: as the fit was run).
    group_draws : int
        Effects drawn per posterior draw for each held-out level.
    backend, workers, address, client, out_dir
        How the refits run: see :func:`mixedbayes.batch.run_batch` (``out_dir`` also makes
        an interrupted run resume).

    Returns
    -------
    KFoldResult
        ``elpd_kfold``, ``se``, ``pointwise`` and per-fold timings.

    Raises
    ------
    BatchError
        If a fold's refit failed (with its traceback).
    """
    check_backend(backend, SpecError)
    design = fit.design
    attrs = fit.idata["posterior"].attrs
    base_seed = int(seed if seed is not None else attrs.get("seed", 0))
    ids = fold_ids(fit, k, group, folds, base_seed)
    labels = sorted(set(ids.tolist()))
    data = design.data
    post = fit.posterior
    seeds = np.random.SeedSequence(base_seed).generate_state(len(labels))
    tasks = {}
    for label, task_seed in zip(labels, seeds, strict=True):
        held = ids == label
        tasks[f"fold-{label}"] = FoldTask(
            spec=fit.spec,
            priors=fit.priors,
            train=data[~held],
            test=data[held],
            y=np.asarray(design.y)[held],
            draws=draws or int(post.sizes["draw"]),
            tune=tune if tune is not None else attrs.get("tuning_steps"),
            chains=chains or int(post.sizes["chain"]),
            seed=int(task_seed % (2**31 - 1)),
            sampler=attrs.get("sampler"),
            group_draws=group_draws,
        )
    result = run_batch(
        run_fold,
        tasks,
        backend=backend,
        workers=workers,
        address=address,
        client=client,
        out_dir=out_dir,
        retries=0,
    )
    if result.failures:
        text = "\n".join(r.describe() for r in result.failures.values())
        raise BatchError(f"{len(result.failures)} of {len(tasks)} refits failed:\n{text}")
    elpd = np.empty(len(data))
    rows = []
    for label in labels:
        held = ids == label
        value = result.values[f"fold-{label}"]
        elpd[held] = value["elpd"]
        rows.append(
            {
                "fold": label,
                "n_train": value["n_train"],
                "n_test": int(held.sum()),
                "compile_seconds": value["compile_seconds"],
                "sample_seconds": value["sample_seconds"],
                "compile_reused": value["compile_reused"],
            }
        )
    pointwise = pd.DataFrame({"observation": list(design.obs_index), "fold": ids, "elpd": elpd})
    if group is not None and folds is None:
        pointwise.insert(2, "group", data[group].astype(str).to_numpy())
    return KFoldResult.from_pointwise(pointwise, len(labels), group, pd.DataFrame(rows))
