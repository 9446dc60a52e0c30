"""``mb.fit_multiple``: fit one model to M completed data sets through :mod:`mixedbayes.batch`.

Each completed set is one batch task (serially, in local processes, on a Dask
``LocalCluster`` or on a running cluster), written to ``out_dir`` as it finishes, so an
interrupted run resumes. The prior table is fixed once, from the first completed set, and
used by every fit: Rubin's rules pool one analysis model, and default priors scaled from the
data would otherwise differ slightly between imputations. Workers return the draws (the
design, which holds formula state, is rebuilt in the driver from the spec and the completed
set); within a worker, fits of one model structure reuse its compiled sampler.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from mixedbayes import api
from mixedbayes.batch import (
    BACKENDS,
    BatchError,
    frame_fingerprint,
    run_batch,
    settings_fingerprint,
)
from mixedbayes.errors import DataError, Problem, SpecError, format_rows
from mixedbayes.results import Fit
from mixedbayes.results.multiple import MultipleFit
from mixedbayes.spec import load_spec
from mixedbayes.workflows.impute import check_completed

if TYPE_CHECKING:
    import os

    import xarray as xr

    from mixedbayes.design import Design
    from mixedbayes.priors import PriorTable
    from mixedbayes.spec import ModelSpec

__all__ = ["fit_multiple"]


@dataclass(frozen=True)
class _Job:
    """What every imputation's fit shares (pickled to the workers)."""

    spec: ModelSpec
    priors: PriorTable
    draws: int | None
    tune: int | None
    chains: int | None
    fit_kwargs: dict[str, Any]


def _fit_one(job: _Job, task: dict[str, Any]) -> dict[str, Any]:
    """Fit one completed set (a batch task); return what pickles: the draws and timings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = api.fit(
            job.spec,
            task["data"],
            draws=job.draws,
            tune=job.tune,
            chains=job.chains,
            seed=task["seed"],
            priors=job.priors,
            **{"check": False, **job.fit_kwargs},
        )
    return {"idata": fit.idata, "timings": dict(fit.timings)}


def _check_missing(spec: ModelSpec, sets: list[pd.DataFrame]) -> PriorTable:
    """``DataError`` for a completed set whose modelled columns still have missing cells;
    returns the prior table of the first set's design."""
    from mixedbayes.kinds import build_prior_table

    problems: list[Problem] = []
    first = None
    for i, frame in enumerate(sets, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = api.design(spec, frame)
        first = first or design
        for d in design.report.dropped:
            problems.append(
                Problem(
                    f"column {d.column!r} still has missing values ({d.reason}) in rows "
                    f"{format_rows(list(d.rows), 5)}: the fit would drop {d.count} row(s).",
                    f"completed data set {i}",
                    "complete every cell the model uses (mb.impute fills them), or give "
                    "the spec a missing: entry.",
                )
            )
    DataError.collect(problems)
    assert first is not None
    return build_prior_table(first, spec.priors)


def _backend(backend: str) -> tuple[str, str | None]:
    if backend in BACKENDS:
        return backend, None
    if "://" in backend or ":" in backend:
        return "dask", backend
    raise SpecError(
        f"backend {backend!r} is not known.",
        where="backend",
        hint=f"use one of {list(BACKENDS)} or a Dask scheduler address ('tcp://host:8786').",
    )


def fit_multiple(
    spec: ModelSpec | dict[str, Any] | str | os.PathLike[str],
    datasets: Sequence[pd.DataFrame],
    *,
    backend: str = "serial",
    workers: int | None = None,
    client: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    retries: int = 1,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    **fit_kwargs: Any,
) -> MultipleFit:
    """Fit one model to each of M completed data sets (multiple imputation).

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
        Any kind.
    datasets : sequence of DataFrame
        At least 2 completed data sets (:func:`mixedbayes.impute` makes them), with the same
        columns and rows; the cells the model uses must be complete. Not modified.
    backend : {"serial", "processes", "dask"} or str
        How the fits run (:func:`mixedbayes.batch.run_batch`): in this process, in
        ``workers`` local processes, on a Dask ``LocalCluster`` of ``workers``, or on the
        running Dask cluster at this scheduler address (``"tcp://host:8786"``).
    workers : int, optional
        Worker processes for ``processes``/``dask`` (default: the usable CPUs).
    client : distributed.Client, optional
        A Dask client to use (with ``backend="dask"``).
    out_dir : path, optional
        Each finished fit is written there at once; calling again with the same arguments
        skips the fits done (resume after an interruption).
    retries : int
        Further attempts of a fit that raised (with the same seed).
    draws, tune, chains : int, optional
        Sampler settings of every fit (default: the spec's).
    seed : int, optional
        Imputation k's fit gets the k-th seed drawn from ``SeedSequence(seed)`` (a seed is
        drawn and recorded when None).
    **fit_kwargs
        More arguments of :func:`mixedbayes.fit` (``sampler=``, ``target_accept=``,
        ``priors=`` to use another prior table than the one fixed from the first set).

    Returns
    -------
    MultipleFit
        ``.fits``, ``.diagnostics()``, ``.pooled()``, ``.posterior``, ``.loo()``,
        ``.to_markdown()``.

    Raises
    ------
    SpecError
        Fewer than 2 data sets, an unknown backend.
    DataError
        Data sets whose columns or rows differ (named), or with missing cells in a column
        the model uses.
    BatchError
        A fit failed on every attempt (with its traceback).

    Examples
    --------
    >>> sets = mb.impute(df, completed_by_mice)  # doctest: +SKIP
    >>> mi = mb.fit_multiple(spec, sets, backend="dask", out_dir="out/mi")  # doctest: +SKIP
    >>> mi.pooled()  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    if isinstance(datasets, pd.DataFrame) or not isinstance(datasets, Sequence):
        raise SpecError(
            f"datasets must be a list of completed DataFrames, not {type(datasets).__name__}.",
            where="datasets",
            hint="pass mb.impute(data, source, m=...) or a list of DataFrames.",
        )
    sets = list(datasets)
    if len(sets) < 2:
        raise SpecError(
            f"multiple imputation needs at least 2 completed data sets; {len(sets)} given.",
            where="datasets",
            hint="make m >= 2 completed sets (mb.impute(data, source, m=20)), or fit a "
            "single data set with mb.fit.",
        )
    name, address = _backend(backend)
    if not isinstance(sets[0], pd.DataFrame):
        raise DataError(
            f"is a {type(sets[0]).__name__}, not a DataFrame.",
            where="completed data set 1",
            hint="pass pandas DataFrames (e.g. pd.read_csv of each completed set).",
        )
    # every set against the first (numbered from 2)
    check_completed(sets[0], sets[1:], observed=False, first=2, reference="completed data set 1's")
    model_spec = load_spec(spec)
    priors = fit_kwargs.pop("priors", None)
    table = _check_missing(model_spec, sets)
    table = priors if priors is not None else table
    base = int(seed) if seed is not None else int(np.random.default_rng().integers(2**31 - 1))
    seeds = [int(s % (2**31 - 1)) for s in np.random.SeedSequence(base).generate_state(len(sets))]
    job = _Job(model_spec, table, draws, tune, chains, dict(fit_kwargs))
    tasks = {
        f"imputation-{i:03d}": {"data": frame, "seed": s}
        for i, (frame, s) in enumerate(zip(sets, seeds, strict=True), 1)
    }
    settings = {
        "spec": model_spec.to_yaml(),
        "priors": str(table),
        "data": [frame_fingerprint(f) for f in sets],
        "seeds": seeds,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "fit_kwargs": repr(sorted(fit_kwargs.items())),
    }
    fingerprint = settings_fingerprint(settings)
    batch = run_batch(
        partial(_fit_one, job),
        tasks,
        backend=name,  # type: ignore[arg-type]
        workers=workers,
        address=address,
        client=client,
        out_dir=out_dir,
        retries=retries,
        fingerprint=fingerprint,
    )
    if batch.failures:
        text = "\n".join(r.describe() for r in batch.failures.values())
        raise BatchError(
            f"{len(batch.failures)} of {len(tasks)} imputation fits failed:\n{text}",
            hint=f"fix the cause; calling again with out_dir={out_dir!r} reruns only these."
            if out_dir is not None
            else "pass out_dir= to keep the finished fits when you call again.",
        )
    fits = []
    runs = []
    for i, (key, frame) in enumerate(zip(tasks, sets, strict=True), 1):
        record = batch.records[key]
        value = record.value
        fits.append(_rebuild(model_spec, frame, table, value["idata"], value["timings"]))
        runs.append(
            {
                "imputation": i,
                "seconds": record.seconds,
                "worker": record.worker,
                "reused": key in batch.reused,
                "attempts": record.attempts,
            }
        )
    first = fits[0].posterior
    return MultipleFit(
        tuple(fits),
        tuple(seeds),
        pd.DataFrame(runs),
        {
            "backend": backend,
            "workers": batch.workers,
            "draws": int(first.sizes["draw"]),
            "chains": int(first.sizes["chain"]),
            "tune": tune,
            "seed": base,
            "batch_seconds": batch.seconds,
            "seconds": time.perf_counter() - t0,
        },
    )


def _rebuild(
    spec: ModelSpec,
    data: pd.DataFrame,
    priors: PriorTable,
    idata: xr.DataTree,
    timings: dict[str, float],
) -> Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = api.design(spec, data)
    return Fit(idata, spec, cast("Design", design), priors, timings)
