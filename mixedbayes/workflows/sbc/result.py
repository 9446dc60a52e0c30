"""The result of simulation-based calibration: ranks, uniformity tests, plots and a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.batch import BatchResult
from mixedbayes.errors import DataError
from mixedbayes.workflows.sbc.stats import (
    bin_counts,
    chi2_uniformity,
    default_bins,
    ecdf_band,
    ecdf_test,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
            Bins of the chi-square test (default:
            :func:`~mixedbayes.workflows.sbc.stats.default_bins`).
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
