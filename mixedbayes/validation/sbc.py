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

import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.batch import BACKENDS, BatchResult, run_batch
from mixedbayes.errors import DataError, SpecError
from mixedbayes.validation.stats import (
    bin_counts,
    chi2_uniformity,
    default_bins,
    ecdf_band,
    ecdf_test,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mixedbayes.priors import PriorTable
    from mixedbayes.spec import ModelSpec

__all__ = ["SBCResult", "current_replicate", "sbc"]

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
    template: pd.DataFrame
    response: str
    obs_index: tuple[Any, ...]
    integer_response: bool
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

    def data(self, y: np.ndarray) -> pd.DataFrame:
        """The template with the simulated response in the rows the model uses."""
        frame = self.template.copy()
        column = frame[self.response].astype("float64")
        column.loc[list(self.obs_index)] = y
        if self.integer_response and column.notna().all():
            frame[self.response] = column.round().astype("int64")
        else:
            frame[self.response] = column
        return frame


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
            job.data(np.asarray(item["y"])),
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
    import mixedbayes as mb

    rep = int(item["replicate"])
    fit_fn = job.fit_fn or mb.fit
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


# --------------------------------------------------------------------------- prior draws


def _response_column(spec: ModelSpec, design: Any, data: pd.DataFrame) -> str:
    name = spec.response if spec.kind == "nonlinear" else design.formula.response  # type: ignore[attr-defined]
    if name not in data.columns:
        raise SpecError(
            f"SBC replaces the response column with simulated values, but the response "
            f"{name!r} is not a column of the data.",
            where="formula",
            hint="compute the transformed response as a column first (df['log_y'] = ...) and "
            "use that column in the formula.",
        )
    return str(name)


def _quantities(model: Any, design: Any, var_names: Sequence[str] | None) -> list[_Quantity]:
    import xarray as xr

    from mixedbayes.results.summary import _cells, summary_variables

    names_in_model = {v.name for v in model.free_RVs} | {v.name for v in model.deterministics}
    if var_names is None:
        names = summary_variables(design, names_in_model, False)  # type: ignore[arg-type]
    else:
        names = list(var_names)
        unknown = [n for n in names if n not in names_in_model]
        if unknown:
            raise SpecError(
                f"var_names {unknown} are not variables of the model.",
                where="var_names",
                hint=f"use some of {sorted(names_in_model)}.",
            )
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


# --------------------------------------------------------------------------- the result


@dataclass
class SBCResult:
    """Ranks of every replicate, uniformity tests and plots.

    Attributes
    ----------
    ranks : DataFrame
        One row per successful replicate (index ``replicate``), one column per parameter;
        integers in ``0..max_rank``.
    true_values : DataFrame
        The values drawn from the prior, same shape as ``ranks``.
    posterior_means : DataFrame
        Each refit's posterior mean, same shape (parameter recovery at a glance).
    replicates : DataFrame
        Per replicate: ``status`` (ok/failed), ``attempts``, ``ess_bulk_min``, ``rhat_max``,
        ``divergences``, ``seconds``, ``compile_seconds``, ``worker``.
    failures : dict of int to str
        Replicates that failed every attempt, with the tracebacks of each attempt.
    max_rank : int
        ``L``: the posterior draws each rank counts among (ranks take ``0..L``).
    settings : dict
        The settings of the run (spec, draws, chains, seed, backend, ...).
    seconds : float
        Wall-clock time of the run (the prior draws and the batch).
    batch : BatchResult
    """

    ranks: pd.DataFrame
    true_values: pd.DataFrame
    posterior_means: pd.DataFrame
    replicates: pd.DataFrame
    failures: dict[int, str]
    max_rank: int
    settings: dict[str, Any]
    seconds: float
    batch: BatchResult | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Successful replicates."""
        return len(self.ranks)

    @property
    def parameters(self) -> list[str]:
        """The ranked parameters."""
        return list(self.ranks.columns)

    def test(self, bins: int | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Uniformity tests per parameter.

        Parameters
        ----------
        bins : int, optional
            Bins of the chi-square test (default :func:`~mixedbayes.validation.stats.default_bins`).
        alpha : float
            Level for the ``uniform`` column (each test at ``alpha``, no multiplicity
            correction; ``p_min_bonferroni`` corrects the smaller p-value for both tests and
            all parameters).

        Returns
        -------
        DataFrame
            ``parameter``, ``n``, ``chi2``, ``df``, ``p_chi2``, ``p_ecdf``, ``uniform``,
            ``p_min_bonferroni``.
        """
        if self.n == 0:
            raise DataError("no replicate succeeded: there are no ranks to test.", where="ranks")
        k = bins or default_bins(self.n, self.max_rank)
        rows = []
        m = 2 * len(self.parameters)
        for name in self.parameters:
            r = self.ranks[name].to_numpy()
            chi2, df, p_chi2 = chi2_uniformity(r, self.max_rank, k)
            _, p_ecdf = ecdf_test(r, self.max_rank)
            rows.append(
                {
                    "parameter": name,
                    "n": int(r.size),
                    "chi2": chi2,
                    "df": df,
                    "p_chi2": p_chi2,
                    "p_ecdf": p_ecdf,
                    "uniform": bool(p_chi2 >= alpha and p_ecdf >= alpha),
                    "p_min_bonferroni": min(1.0, m * min(p_chi2, p_ecdf)),
                }
            )
        return pd.DataFrame(rows)

    def plot_ranks(self, bins: int | None = None, *, prob: float = 0.99) -> Figure:
        """Rank histograms, one panel per parameter, with the ``prob`` band of uniform counts."""
        from scipy import stats

        k = bins or default_bins(self.n, self.max_rank)
        fig, axes = _grid(len(self.parameters))
        for ax, name in zip(axes, self.parameters, strict=False):
            observed, expected = bin_counts(self.ranks[name].to_numpy(), self.max_rank, k)
            x = np.arange(k)
            p_bin = expected / max(self.n, 1)
            lo = stats.binom.ppf((1 - prob) / 2, self.n, p_bin)
            hi = stats.binom.ppf(1 - (1 - prob) / 2, self.n, p_bin)
            ax.fill_between(x, lo, hi, step="mid", color="0.85", label=f"{prob:.0%} band")
            ax.bar(x, observed, width=1.0, color="C0", alpha=0.8, edgecolor="white")
            ax.step(x, expected, where="mid", color="0.3", lw=1)
            ax.set_title(name, fontsize=9)
            ax.set_xticks([])
        for ax in axes[len(self.parameters) :]:
            ax.set_visible(False)
        fig.suptitle(f"SBC rank histograms ({self.n} replicates, ranks 0..{self.max_rank})")
        return fig

    def plot_ecdf_diff(self, *, prob: float = 0.95) -> Figure:
        """ECDF of the fractional ranks minus the uniform CDF, with the simultaneous band."""
        fig, axes = _grid(len(self.parameters))
        band = ecdf_band(self.n, self.max_rank, prob) if self.n else None
        for ax, name in zip(axes, self.parameters, strict=False):
            r = np.sort(self.ranks[name].to_numpy())
            if band is None:
                continue
            z = band.z
            ecdf = np.searchsorted(r, np.arange(self.max_rank), side="right") / self.n
            ax.fill_between(z, band.lower - z, band.upper - z, step="post", color="0.85")
            ax.step(z, ecdf - z, where="post", color="C0")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_title(name, fontsize=9)
        for ax in axes[len(self.parameters) :]:
            ax.set_visible(False)
        fig.suptitle(f"SBC ECDF difference with {prob:.0%} simultaneous band ({self.n} replicates)")
        return fig

    def to_markdown(self, bins: int | None = None, alpha: float = 0.05) -> str:
        """A Markdown report: settings, per-parameter tests, replicate diagnostics, failures."""
        s = self.settings
        lines = [
            f"Replicates: {self.n} ok of {len(self.replicates)} "
            f"({len(self.failures)} failed after every retry); ranks 0..{self.max_rank} "
            f"(L = {self.max_rank} posterior draws per replicate, thinned evenly).",
            f"Refits: {s.get('chains')} chains × {s.get('draws')} draws after "
            f"{s.get('tune')} tuning, sampler {s.get('sampler') or 'default'}; "
            f"backend {s.get('backend')} with {s.get('workers')} worker(s); "
            f"{self.seconds:.0f} s wall-clock.",
            "",
        ]
        if self.n:
            table = self.test(bins, alpha)
            lines.append(
                f"| parameter | n | chi² (df) | p chi² | p ECDF | uniform at α = {alpha} |"
            )
            lines.append("|---|---:|---:|---:|---:|:---:|")
            for row in table.itertuples():
                lines.append(
                    f"| `{row.parameter}` | {row.n} | {row.chi2:.1f} ({row.df}) | "
                    f"{row.p_chi2:.3f} | {row.p_ecdf:.3f} | {'yes' if row.uniform else '**no**'} |"
                )
            worst = float(table["p_min_bonferroni"].min())
            lines += [
                "",
                f"Smallest p-value, Bonferroni-corrected over {2 * len(table)} tests: {worst:.3f}.",
            ]
        ok = self.replicates[self.replicates["status"] == "ok"]
        if len(ok):
            lines += [
                "",
                "Refit diagnostics (median [min–max] over replicates): "
                f"min bulk ESS {ok['ess_bulk_min'].median():.0f} "
                f"[{ok['ess_bulk_min'].min():.0f}–{ok['ess_bulk_min'].max():.0f}], "
                f"max R-hat {ok['rhat_max'].median():.3f} [{ok['rhat_max'].max():.3f} worst], "
                f"replicates with divergences {int((ok['divergences'] > 0).sum())}, "
                f"with max R-hat > 1.05 {int((ok['rhat_max'] > 1.05).sum())}, "
                f"with min bulk ESS < 100 {int((ok['ess_bulk_min'] < 100).sum())}, "
                f"seconds per refit {ok['seconds'].median():.1f} "
                f"[{ok['seconds'].min():.1f}–{ok['seconds'].max():.1f}].",
            ]
        if self.failures:
            lines += ["", "Failed replicates (last error):", ""]
            for rep, text in sorted(self.failures.items()):
                last = [ln for ln in text.splitlines() if ln.startswith("--- attempt")]
                lines.append(f"- {rep}: {last[-1] if last else text.splitlines()[0]}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        head = f"SBCResult({self.n} replicates, {len(self.parameters)} parameters"
        return head + f", {len(self.failures)} failed, L={self.max_rank})"


def _grid(k: int) -> tuple[Figure, list[Any]]:
    import matplotlib.pyplot as plt

    cols = min(4, max(1, k))
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    fig.set_layout_engine("constrained")
    return fig, list(axes.ravel())


# --------------------------------------------------------------------------- the driver


def _frame_digest(df: pd.DataFrame) -> str:
    content = pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()
    meta = json.dumps([list(map(str, df.columns)), list(map(str, df.dtypes))]).encode()
    return hashlib.sha256(content + meta).hexdigest()[:16]


def sbc(
    spec: ModelSpec | dict[str, Any] | str | os.PathLike[str],
    template_data: pd.DataFrame,
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
        Any kind (``lmm``, ``glmm``, ``nonlinear``).
    template_data : DataFrame
        The design (covariates, groups, doses); its response column is replaced by simulated
        values in each replicate. Not modified.
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
    import mixedbayes as mb
    from mixedbayes.compile import compile_model
    from mixedbayes.priors import build_prior_table

    t0 = time.perf_counter()
    if not isinstance(template_data, pd.DataFrame):
        raise DataError(
            f"template_data must be a pandas DataFrame, not {type(template_data).__name__}.",
            where="template_data",
        )
    if n < 1:
        raise SpecError(f"n must be >= 1, not {n}.", where="n")
    if backend not in BACKENDS:
        raise SpecError(
            f"unknown backend {backend!r}.", where="backend", hint=f"use one of {BACKENDS}."
        )
    if max_rank < 1 or max_rank > chains * draws:
        raise SpecError(
            f"max_rank must lie in 1..chains × draws = {chains * draws}, not {max_rank}.",
            where="max_rank",
            hint="lower max_rank or draw more.",
        )
    model_spec = mb.load_spec(spec)
    # positions as row labels: the simulated response goes to the rows the design used
    template = template_data.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = mb.design(model_spec, template)
    table = priors if priors is not None else build_prior_table(design, model_spec.priors)
    response = _response_column(model_spec, design, template)
    # the plain model (every parameter and the response) is the one to draw from
    compiled = compile_model(design, table, marginalize=False)
    model = compiled.model
    quantities = _quantities(model, design, var_names)
    var_list = sorted({q.var for q in quantities})
    draw = _prior_sampler(model, [*var_list, compiled.observed])
    integer = bool(getattr(design.family, "discrete", False))
    job = _Job(
        spec=model_spec,
        template=template,
        response=response,
        obs_index=tuple(design.obs_index),
        integer_response=integer,
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
        by_var = dict(zip(var_list, values[:-1], strict=True))
        truth = {q.label: float(np.asarray(by_var[q.var])[q.index]) for q in quantities}
        truths[i] = truth
        tasks[f"rep-{i:05d}"] = {"replicate": i, "y": values[-1], "true": truth}
    settings = {
        "spec": model_spec.to_yaml(),
        "template": _frame_digest(template_data),
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
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
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
