"""Model checking: PSIS-LOO, model comparison and posterior predictive checks."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.results.ppc import observed_name

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.results.protocols import FitLike

__all__ = ["LooReport", "compare", "loo", "plot_ppc", "ppc_stats"]

SAMPLE_DIMS = ("chain", "draw")
K_BINS = ("good", "bad", "very bad")


# -- LOO -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LooReport:
    """PSIS-LOO of a fit.

    Attributes
    ----------
    elpd : float
        Expected log pointwise predictive density (``elpd_loo``).
    se : float
        Its standard error.
    p_loo : float
        Effective number of parameters.
    looic : float
        ``-2 * elpd``.
    n_samples, n_obs : int
        Posterior draws and observations.
    good_k : float
        Pareto k threshold (``min(1 - 1/log10(S), 0.7)`` for S draws, as arviz-stats).
    pareto_k : DataFrame
        Index ``good``, ``bad``, ``very bad``; columns ``range``, ``count``, ``pct``.
    high_k : tuple
        ``obs`` labels (the original row labels) of the observations with k > ``good_k``.
    elpd_data : arviz_stats ELPDData
        The full result (``elpd_i``, ``pareto_k`` per observation).
    pointwise : DataFrame or None
        With ``pointwise=True``: ``obs``, ``elpd_loo``, ``pareto_k`` per observation.
    """

    elpd: float
    se: float
    p_loo: float
    looic: float
    n_samples: int
    n_obs: int
    good_k: float
    pareto_k: pd.DataFrame
    high_k: tuple[Any, ...]
    elpd_data: Any
    pointwise: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        """Whether every Pareto k is at most ``good_k``."""
        return not self.high_k

    @property
    def warning(self) -> str:
        """Advice when some Pareto k exceed ``good_k`` (empty otherwise)."""
        if not self.high_k:
            return ""
        shown = ", ".join(str(o) for o in self.high_k[:10])
        more = f" and {len(self.high_k) - 10} more" if len(self.high_k) > 10 else ""
        return (
            f"{len(self.high_k)} observation(s) with Pareto k > {self.good_k:.2f} "
            f"(obs {shown}{more}): the PSIS-LOO estimate may be unreliable. Use moment "
            "matching (mixedbayes.diagnostics.loo(fit, moment_match=True)), K-fold "
            "cross-validation, or a more flexible model (e.g. a heavier-tailed family or "
            "more group-level terms)."
        )

    def __str__(self) -> str:
        lines = [
            f"PSIS-LOO from {self.n_samples} draws and {self.n_obs} observations",
            f"  elpd_loo {self.elpd:10.1f}  (se {self.se:.1f})",
            f"  p_loo    {self.p_loo:10.1f}",
            f"  looic    {self.looic:10.1f}",
            "Pareto k diagnostic:",
        ]
        for label, row in self.pareto_k.iterrows():
            lines.append(
                f"  {label!s:<9}{row['range']:<14}{int(row['count']):>6}  {row['pct']:5.1f}%"
            )
        if self.warning:
            lines.append(self.warning)
        return "\n".join(lines)


def _k_table(k: np.ndarray, good_k: float) -> pd.DataFrame:
    bins = np.array([-np.inf, good_k, 1.0, np.inf])
    counts = np.histogram(k[np.isfinite(k)], bins=bins)[0]
    counts[-1] += int(np.sum(~np.isfinite(k)))  # non-finite k: as bad as it gets
    total = max(int(k.size), 1)
    return pd.DataFrame(
        {
            "range": [f"(-inf, {good_k:.2f}]", f"({good_k:.2f}, 1]", "(1, inf)"],
            "count": counts.astype(int),
            "pct": 100.0 * counts / total,
        },
        index=pd.Index(K_BINS, name="k"),
    )


def _loo_data(fit: FitLike, moment_match: bool = False) -> Any:
    import arviz_stats as azs

    from mixedbayes.kinds import add_log_likelihood, kind_of

    kind = kind_of(fit.spec)
    if "log_likelihood" not in fit.idata.children:
        add_log_likelihood(fit.idata, fit.model, fit.spec, fit.design)
    units = kind.loo_units(fit.design, fit.idata["log_likelihood"].to_dataset())
    if units is not None:
        fit.idata["log_likelihood"][str(units.name)] = units
    var = observed_name(fit, "log_likelihood") if units is None else str(units.name)
    extra: dict[str, Any] = {"moment_match": True, "model": fit.model} if moment_match else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return azs.loo(fit.idata, pointwise=True, var_name=var, **extra)


def loo(fit: FitLike, *, pointwise: bool = False, moment_match: bool = False) -> LooReport:
    """PSIS-LOO cross-validation of a fit (arviz-stats).

    Parameters
    ----------
    fit : Fit
        A fit; its ``log_likelihood`` group is computed and stored first when missing.
    pointwise : bool
        Also return ``elpd_loo`` and Pareto k per observation (``report.pointwise``).
    moment_match : bool
        Correct the observations with high Pareto k by moment matching (Paananen et al.
        2021; arviz-stats with ``fit.model``). Slower; the k reported are those after it.

    Returns
    -------
    LooReport
        ``elpd``, ``se``, ``p_loo``, ``looic``, the Pareto k table and the observations
        with high k. ``report.warning`` says what to do when some k are high.
    """
    data = _loo_data(fit, moment_match)
    k_da = data.pareto_k
    k = np.asarray(k_da.to_numpy(), dtype=float).reshape(-1)
    good_k = float(data.good_k) if data.good_k is not None else 0.7
    obs_dims = list(k_da.dims)
    if len(obs_dims) == 1 and obs_dims[0] in k_da.coords:
        labels = list(k_da[obs_dims[0]].to_numpy())
    else:
        labels = list(range(k.size))
    high = tuple(
        label.item() if isinstance(label, np.generic) else label
        for label, kv in zip(labels, k, strict=True)
        if not np.isfinite(kv) or kv > good_k
    )
    table = None
    if pointwise:
        elpd_i = np.asarray(data.elpd_i.to_numpy(), dtype=float).reshape(-1)
        table = pd.DataFrame({"obs": labels, "elpd_loo": elpd_i, "pareto_k": k})
    elpd = float(data.elpd)
    return LooReport(
        elpd=elpd,
        se=float(data.se),
        p_loo=float(data.p),
        looic=-2.0 * elpd,
        n_samples=int(data.n_samples),
        n_obs=int(data.n_data_points),
        good_k=good_k,
        pareto_k=_k_table(k, good_k),
        high_k=high,
        elpd_data=data,
        pointwise=table,
    )


# -- comparison ------------------------------------------------------------------------------


def _names(fits: Sequence[FitLike], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        out = [str(n) for n in names]
        if len(out) != len(fits):
            raise ValueError(f"{len(out)} names for {len(fits)} fits.")
        if len(set(out)) != len(out):
            raise ValueError(f"model names must be unique: {out}")
        return out
    spec_names = [str(getattr(f.spec, "name", "") or "") for f in fits]
    if all(spec_names) and len(set(spec_names)) == len(spec_names):
        return spec_names
    return [f"model{i + 1}" for i in range(len(fits))]


def compare(
    fits: Mapping[str, FitLike] | Sequence[FitLike],
    *,
    names: Sequence[str] | None = None,
    method: str = "stacking",
) -> pd.DataFrame:
    """Compare fits of the same observations by PSIS-LOO (arviz-stats ``compare``).

    Parameters
    ----------
    fits : dict of str to Fit, or list of Fit
        At least two fits of the same observations.
    names : sequence of str, optional
        Names for a list of fits; default the specs' ``name`` when all are set and
        unique, else ``model1``, ``model2``, ...
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        How the weights are computed.

    Returns
    -------
    DataFrame
        Index the model names, best first; columns ``rank`` (0 is best), ``elpd_loo``,
        ``se``, ``p_loo``, ``elpd_diff`` (to the best), ``dse``, ``p_worse``, ``weight``
        and ``warning`` (high Pareto k, or differences too small or data too few for the
        normal approximation; empty when none).
    """
    import arviz_stats as azs

    if isinstance(fits, Mapping):
        if names is not None:
            raise ValueError("names are taken from the dict keys; do not pass names too.")
        labels = [str(k) for k in fits]
        models = list(fits.values())
    else:
        models = list(fits)
        labels = _names(models, names)
    if len(models) < 2:
        raise ValueError("compare needs at least two fits.")
    observed = [
        np.asarray(m.idata["observed_data"][observed_name(m, "observed_data")].to_numpy())
        for m in models
    ]
    for label, y in zip(labels[1:], observed[1:], strict=True):
        if y.shape != observed[0].shape or not np.allclose(y, observed[0], equal_nan=True):
            raise ValueError(
                f"{label!r} was not fitted to the same observations as {labels[0]!r}; "
                "LOO comparisons need the same rows and response."
            )
    elpds = {label: _loo_data(m) for label, m in zip(labels, models, strict=True)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare(elpds, method=method, round_to="none")
    warning = [
        "; ".join(str(s) for s in (row["diag_elpd"], row["diag_diff"]) if isinstance(s, str) and s)
        for _, row in table.iterrows()
    ]
    out = pd.DataFrame(
        {
            "rank": table["rank"].astype(int),
            "elpd_loo": table["elpd"].astype(float),
            "se": table["se"].astype(float),
            "p_loo": table["p"].astype(float),
            "elpd_diff": table["elpd_diff"].astype(float),
            "dse": table["dse"].astype(float),
            "p_worse": table["p_worse"].astype(float),
            "weight": table["weight"].astype(float),
            "warning": warning,
        },
        index=table.index,
    )
    out.index.name = "model"
    return out


# -- posterior predictive checks -------------------------------------------------------------


def _with_predictive(fit: FitLike, seed: int | None) -> xr.DataTree:
    if "posterior_predictive" not in fit.idata.children:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fit.sample_posterior_predictive(seed=seed)
    return fit.idata


def plot_ppc(
    fit: FitLike,
    *,
    num_draws: int = 100,
    kind: str | None = None,
    seed: int | None = None,
) -> Any:
    """Posterior predictive check: densities of replicated data over the observed density.

    Parameters
    ----------
    fit : Fit
        Without a ``posterior_predictive`` group, one is drawn first
        (``fit.sample_posterior_predictive(seed=seed)``, which adds it to ``fit.idata``).
    num_draws : int
        Replicated data sets drawn (at most the number of posterior draws).
    kind : {"kde", "hist", "ecdf"}, optional
        Density representation; default arviz-plots' ``plot.density_kind``.
    seed : int, optional
        Seed for the posterior predictive draws.

    Returns
    -------
    arviz_plots.PlotCollection
        Matplotlib backend (``pc.viz`` holds the figure; ``pc.savefig(path)`` saves it).
    """
    from arviz_plots import plot_ppc_dist

    tree = _with_predictive(fit, seed)
    var = observed_name(fit, "posterior_predictive")
    predictive = tree["posterior_predictive"]
    n = int(np.prod([predictive.sizes[d] for d in SAMPLE_DIMS if d in predictive.sizes]))
    return plot_ppc_dist(
        tree,
        var_names=[var],
        kind=kind,
        num_samples=max(1, min(int(num_draws), n)),
        backend="matplotlib",
    )


def ppc_stats(fit: FitLike, *, seed: int | None = None) -> pd.DataFrame:
    """Posterior predictive p-values of the mean, sd, min and max of the response.

    The p-value of a statistic T is the fraction of replicated data sets with
    ``T(y_rep) >= T(y)``; values near 0 or 1 point at a misfit.

    Parameters
    ----------
    fit : Fit
        Without a ``posterior_predictive`` group, one is drawn first.
    seed : int, optional
        Seed for the posterior predictive draws, when they are drawn here.

    Returns
    -------
    DataFrame
        One row per statistic (``mean``, ``sd``, ``min``, ``max``); columns
        ``statistic``, ``observed``, ``replicated_mean``, ``replicated_lower``,
        ``replicated_upper`` (central 95% of the replicated statistic), ``p_value``.
    """
    tree = _with_predictive(fit, seed)
    var = observed_name(fit, "posterior_predictive")
    rep_da = tree["posterior_predictive"][var]
    y = np.asarray(tree["observed_data"][observed_name(fit, "observed_data")].to_numpy(), float)
    obs_dims = [d for d in rep_da.dims if d not in SAMPLE_DIMS]
    rep = np.asarray(rep_da.transpose(*SAMPLE_DIMS, *obs_dims).to_numpy(), dtype=float)
    rep = rep.reshape(-1, int(np.prod(rep.shape[2:], dtype=int)))
    y = y.reshape(-1)
    if rep.shape[1] != y.size:
        raise ValueError(f"posterior_predictive has {rep.shape[1]} values per draw, data {y.size}")
    functions = {
        "mean": lambda a: np.mean(a, axis=-1),
        "sd": lambda a: np.std(a, axis=-1, ddof=1),
        "min": lambda a: np.min(a, axis=-1),
        "max": lambda a: np.max(a, axis=-1),
    }
    rows = []
    for stat, fn in functions.items():
        observed = float(fn(y))
        replicated = np.asarray(fn(rep), dtype=float)
        rows.append(
            {
                "statistic": stat,
                "observed": observed,
                "replicated_mean": float(replicated.mean()),
                "replicated_lower": float(np.quantile(replicated, 0.025)),
                "replicated_upper": float(np.quantile(replicated, 0.975)),
                "p_value": float(np.mean(replicated >= observed)),
            }
        )
    return pd.DataFrame(rows)
