"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For replicate ``i``: draw the parameters ``θ̃`` and a data set ``ỹ`` from the prior predictive
distribution (on the template data's design), refit the model to ``ỹ``, and count the
posterior draws below ``θ̃``. If the model, the priors and the sampler are right, each
parameter's rank is uniform over ``0..L``; a ∪-shaped histogram means posteriors too narrow,
∩-shaped too wide, a slope a bias.

The prior is fixed once from the template data (default priors may depend on the data, such
as the response's scale) and the same table is used to draw and to refit every replicate.
The refits run through :mod:`mixedbayes.batch`: serially, in local processes, or on Dask;
with ``out_dir`` every finished replicate is on disk at once, and a second call with the same
settings resumes (``n`` may grow: the first replicates are reused, the new ones run).
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes import api
from mixedbayes.batch import check_backend, frame_fingerprint, run_batch, settings_fingerprint
from mixedbayes.errors import SpecError, require_known
from mixedbayes.spec import load_spec
from mixedbayes.workflows.sbc.replicate import (
    SAMPLE_DIMS,
    _Job,
    _Quantity,
    _refit,
    _seed,
    current_replicate,
)
from mixedbayes.workflows.sbc.result import SBCResult

if TYPE_CHECKING:
    from mixedbayes.priors import PriorTable
    from mixedbayes.spec import ModelSpec

__all__ = ["SBCResult", "current_replicate", "sbc"]


# --------------------------------------------------------------------------- prior draws


def _quantities(model: Any, design: Any, var_names: Sequence[str] | None) -> list[_Quantity]:
    import xarray as xr

    from mixedbayes.results.summary import _cells, summary_variables

    names_in_model = {v.name for v in model.free_RVs} | {v.name for v in model.deterministics}
    if var_names is None:
        names = summary_variables(design, names_in_model, False)  # type: ignore[arg-type]
    else:
        names = list(var_names)
        require_known(names, list(names_in_model), where="var_names", what="the model's variables")
    out = []
    for name in names:
        dims = tuple(model.named_vars_to_dims.get(name, ()))
        shape = tuple(len(model.coords[d]) for d in dims)
        da = xr.DataArray(
            np.zeros((1, 1, *shape)),
            dims=(*SAMPLE_DIMS, *dims),
            coords={d: list(model.coords[d]) for d in dims},
        )
        for label, _term, index in _cells(da, name, design):
            out.append(_Quantity(label, name, tuple(int(i) for i in index), dims, shape))
    if not out:
        raise SpecError("there is nothing to rank.", where="var_names")
    return out


def _prior_sampler(model: Any, names: list[str]) -> Callable[[int], list[np.ndarray]]:
    """A compiled forward sampler of ``names`` that is reseeded per replicate."""
    from pymc.pytensorf import reseed_rngs
    from pymc.sampling.forward import compile_forward_sampling_function
    from pytensor.tensor.random.type import RandomGeneratorType

    fn, _ = compile_forward_sampling_function(
        [model[n] for n in names],
        vars_in_trace=[],
        basic_rvs=model.basic_RVs,
        model=model,
        allow_input_downcast=True,
        accept_inplace=True,
    )
    shared = [v for v in fn.get_shared() if isinstance(v.type, RandomGeneratorType)]
    # reseed in the model's order of random variables, so that a replicate's draw does not
    # depend on which variables are asked for (the response needs every one of them)
    order = [
        inp
        for rv in model.basic_RVs
        for inp in rv.owner.inputs
        if isinstance(inp.type, RandomGeneratorType)
    ]
    rngs = [v for v in order if v in shared] + [v for v in shared if v not in order]

    def draw(seed: int) -> list[np.ndarray]:
        reseed_rngs(rngs, seed)
        return [np.asarray(v) for v in fn()]

    return draw


# --------------------------------------------------------------------------- the driver


def sbc(
    spec: ModelSpec | dict[str, Any] | str | os.PathLike[str],
    template_data: pd.DataFrame | dict[str, pd.DataFrame],
    n: int = 100,
    *,
    var_names: Sequence[str] | None = None,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    sampler: str | None = None,
    target_accept: float | None = None,
    max_rank: int = 99,
    seed: int = 0,
    priors: PriorTable | None = None,
    backend: str = "serial",
    workers: int | None = None,
    address: str | None = None,
    client: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    retries: int = 1,
    fit_fn: Callable[..., Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> SBCResult:
    """Simulation-based calibration of a model on the design of ``template_data``.

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
        Any kind (``lmm``, ``glmm``, ``nonlinear``, ``joint``).
    template_data : DataFrame, or dict of DataFrames for a joint model
        The design (covariates, groups, doses, visit times); its response column is replaced
        by simulated values in each replicate. Not modified. A joint model's replicates also
        draw each subject's event time from the hazard of the prior draw, censored at the
        template's survival time, and keep the template's visits (``visits_after_event:
        keep``: the model conditions on the visit times, so its posterior is unchanged).
    n : int
        Replicates.
    var_names : list of str, optional
        Variables to rank (every scalar of each). Default: the fixed effects (``b``,
        ``b_<key>``), ``sd_*``, ``cor_*`` (distinct off-diagonal elements) and the family or
        residual-error parameters, as :meth:`Fit.summary` shows them.
    draws, tune, chains, sampler, target_accept
        Settings of each refit.
    max_rank : int
        ``L``: each rank counts among ``L`` posterior draws picked evenly from the
        ``chains × draws`` (thinning that reduces autocorrelation); ranks take ``0..L``.
    seed : int
        Replicate ``i`` draws its parameters and data with a seed derived from
        ``(seed, i)``, so a run is reproducible and ``n`` can grow on resume.
    priors : PriorTable, optional
        The prior to calibrate; default: the spec's prior table on ``template_data`` (fixed
        once and used for every draw and refit).
    backend, workers, address, client, retries
        How the refits run (see :func:`mixedbayes.batch.run_batch`): ``"serial"``,
        ``"processes"`` or ``"dask"`` (a ``LocalCluster`` of ``workers``, or the cluster at
        ``address``). A failed refit is retried ``retries`` times with a new sampler seed
        (same data), then recorded as failed.
    out_dir : path, optional
        Each finished replicate is written there at once; calling again with the same
        settings resumes (raising ``n`` reuses the replicates done).
    fit_fn : callable, optional
        Fits one replicate: ``fit_fn(spec, data, draws=, tune=, chains=, seed=, sampler=,
        target_accept=, priors=, log_likelihood=False, check=False, **fit_kwargs)`` returning a
        :class:`~mixedbayes.Fit` (default :func:`mixedbayes.fit`). Must be picklable for the
        process and Dask backends.
    fit_kwargs : dict, optional
        More arguments for ``fit_fn`` (e.g. ``{"marginalize": False}``).

    Returns
    -------
    SBCResult
        ``.ranks``, ``.test()``, ``.plot_ranks()``, ``.plot_ecdf_diff()``, ``.to_markdown()``.

    Examples
    --------
    >>> res = mb.sbc(mb.LMM("y ~ time + (1 | id)"), df, n=200, backend="dask")  # doctest: +SKIP
    >>> res.test()  # doctest: +SKIP
    """
    from mixedbayes.kinds import build_prior_table, compile_model, kind_of

    t0 = time.perf_counter()
    if n < 1:
        raise SpecError(f"n must be >= 1, not {n}.", where="n")
    check_backend(backend, SpecError)
    if max_rank < 1 or max_rank > chains * draws:
        raise SpecError(
            f"max_rank must lie in 1..chains × draws = {chains * draws}, not {max_rank}.",
            where="max_rank",
            hint="lower max_rank or draw more.",
        )
    kind = kind_of(load_spec(spec))
    model_spec = kind.replicate_spec(load_spec(spec))
    # positions as row labels: the simulated responses go to the rows the design used
    template = kind.replicate_template(model_spec, template_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = api.design(model_spec, template)
    table = priors if priors is not None else build_prior_table(design, model_spec.priors)
    # the plain model (every parameter and the response) is the one to draw from
    compiled = compile_model(design, table, marginalize=False)
    model = compiled.model
    quantities = _quantities(model, design, var_names)
    observed = [rv.name for rv in model.observed_RVs]
    parameters = [v.name for v in (*model.free_RVs, *model.deterministics)]
    draw = _prior_sampler(model, [*parameters, *observed])
    job = _Job(
        spec=model_spec,
        template=template,
        priors=table,
        quantities=tuple(quantities),
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        target_accept=target_accept,
        max_rank=max_rank,
        seed=seed,
        fit_fn=fit_fn,
        fit_kwargs=dict(fit_kwargs or {}),
    )
    tasks: dict[str, dict[str, Any]] = {}
    truths: dict[int, dict[str, float]] = {}
    for i in range(n):
        values = draw(_seed(seed, i, 0))
        by_var = dict(zip(parameters, values[: len(parameters)], strict=True))
        simulated = dict(zip(observed, values[len(parameters) :], strict=True))
        truth = {q.label: float(np.asarray(by_var[q.var])[q.index]) for q in quantities}
        truths[i] = truth
        rng = np.random.default_rng(_seed(seed, i, 3))
        columns = kind.replicate_columns(design, template, by_var, simulated, rng)
        tasks[f"rep-{i:05d}"] = {"replicate": i, "columns": columns, "true": truth}
    settings = {
        "spec": model_spec.to_yaml(),
        "template": frame_fingerprint(template_data),
        "priors": str(table),
        "quantities": [q.label for q in quantities],
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "sampler": sampler,
        "target_accept": target_accept,
        "max_rank": max_rank,
        "seed": seed,
        "fit_fn": getattr(fit_fn, "__qualname__", None),
        "fit_kwargs": repr(sorted((fit_kwargs or {}).items())),
    }
    fingerprint = settings_fingerprint(settings)
    from functools import partial

    batch = run_batch(
        partial(_refit, job),
        tasks,
        backend=backend,  # type: ignore[arg-type]
        workers=workers,
        address=address,
        client=client,
        out_dir=out_dir,
        retries=retries,
        fingerprint=fingerprint,
        pass_attempt=True,
    )
    labels = [q.label for q in quantities]
    rank_rows, true_rows, mean_rows, rep_rows = {}, {}, {}, []
    failures: dict[int, str] = {}
    for key, record in batch.records.items():
        i = int(key.split("-")[1])
        row: dict[str, Any] = {
            "replicate": i,
            "status": record.status,
            "attempts": record.attempts,
            "worker": record.worker,
            "reused": key in batch.reused,
        }
        if record.ok:
            value = record.value
            rank_rows[i] = value["ranks"]
            true_rows[i] = value.get("true", truths[i])  # as ranked (a resumed run's too)
            mean_rows[i] = value.get("mean", {})
            row.update(
                {
                    k: value[k]
                    for k in (
                        "ess_bulk_min",
                        "rhat_max",
                        "divergences",
                        "seconds",
                        "compile_seconds",
                        "sample_seconds",
                        "seed",
                    )
                }
            )
        else:
            failures[i] = record.describe()
        rep_rows.append(row)
    ranks = pd.DataFrame.from_dict(rank_rows, orient="index", columns=labels).astype("int64")
    ranks.index.name = "replicate"
    true_values = pd.DataFrame.from_dict(true_rows, orient="index", columns=labels)
    true_values.index.name = "replicate"
    posterior_means = pd.DataFrame.from_dict(mean_rows, orient="index", columns=labels)
    posterior_means.index.name = "replicate"
    replicates = pd.DataFrame(rep_rows).set_index("replicate")
    for col in ("ess_bulk_min", "rhat_max", "divergences", "seconds", "compile_seconds"):
        if col not in replicates:
            replicates[col] = np.nan
    run_settings = {
        **{k: v for k, v in settings.items() if k not in ("priors", "template")},
        "n": n,
        "backend": backend,
        "workers": batch.workers,
        "address": address,
        "out_dir": str(out_dir) if out_dir is not None else None,
        "kind": model_spec.kind,
        "python": platform.python_version(),
    }
    return SBCResult(
        ranks=ranks,
        true_values=true_values,
        posterior_means=posterior_means,
        replicates=replicates,
        failures=failures,
        max_rank=max_rank,
        settings=run_settings,
        seconds=time.perf_counter() - t0,
        batch=batch,
    )
