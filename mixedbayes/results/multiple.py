""":class:`MultipleFit`: one fit per completed data set, pooled by Rubin's rules and by mixing.

Made by :func:`mixedbayes.fit_multiple`. Every imputation's fit is kept (``mi.fits``) with its
convergence diagnostics (``mi.diagnostics()``: one row per imputation), which brms's
``brm_multiple`` does not show. Two ways to pool:

- :meth:`MultipleFit.pooled`: Rubin's rules on each scalar parameter, with each fit's
  posterior mean as the estimate and its posterior variance as the within-imputation
  variance (:func:`mixedbayes.results.rubin.rubin_rules`); a t interval on the
  Barnard–Rubin degrees of freedom; the fraction of missing information per parameter.
- :attr:`MultipleFit.posterior`: the draws of every fit mixed as one posterior, which
  approximates the posterior given the observed data when the imputations are draws from
  the imputation model's posterior predictive distribution (Gelman et al., *BDA3*,
  §18.2; Zhou & Reiter 2010 recommend many imputations for this).

LOO is pooled by :meth:`MultipleFit.loo` (see there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.results.rubin import RUBIN_COLUMNS, rubin_rules
from mixedbayes.results.summary import check_prob, summarise, summary_variables

if TYPE_CHECKING:
    from pathlib import Path

    import xarray as xr

    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["MultipleFit", "PooledLoo", "mix_posteriors"]

#: Columns of :meth:`MultipleFit.pooled`.
POOLED_COLUMNS = ("parameter", "class", *RUBIN_COLUMNS)


def mix_posteriors(trees: list[xr.DataTree]) -> xr.DataTree:
    """The ``posterior`` (and ``sample_stats``) of several fits as one DataTree.

    Chains are renumbered ``0 .. m·C - 1`` (imputation by imputation, each fit's chains in
    order) and concatenated along ``chain``; the non-index coordinate ``imputation`` (1..m,
    on ``chain``) says which fit each chain came from. Every fit must have the same draws per
    chain.
    """
    import xarray as xr

    out: dict[str, xr.Dataset] = {}
    for group in ("posterior", "sample_stats"):
        parts = []
        start = 0
        for i, tree in enumerate(trees, 1):
            if group not in tree.children:
                break
            ds = tree[group].to_dataset()
            n = int(ds.sizes["chain"])
            ds = ds.assign_coords(chain=np.arange(start, start + n)).assign_coords(
                imputation=("chain", np.full(n, i))
            )
            parts.append(ds)
            start += n
        else:
            mixed = xr.concat(parts, dim="chain", join="outer", combine_attrs="drop")
            if group == "posterior":
                mixed.attrs["mixed_imputations"] = len(trees)
            out[group] = mixed
    return xr.DataTree.from_dict(out)


@dataclass(frozen=True)
class PooledLoo:
    """PSIS-LOO of every imputation's fit and their average (:meth:`MultipleFit.loo`).

    Attributes
    ----------
    elpd, se, p_loo : float
        Means over the imputations of ``elpd_loo``, its standard error and ``p_loo``.
    between_sd : float
        Standard deviation of ``elpd_loo`` across the imputations (ddof=1): how much the
        completed values move it.
    table : DataFrame
        One row per imputation: ``imputation``, ``elpd_loo``, ``se``, ``p_loo``,
        ``high_k`` (observations with Pareto k above the threshold).
    """

    elpd: float
    se: float
    p_loo: float
    between_sd: float
    table: pd.DataFrame

    def __str__(self) -> str:
        return (
            f"PSIS-LOO pooled over {len(self.table)} imputations: elpd_loo {self.elpd:.1f} "
            f"(mean se {self.se:.1f}; sd across imputations {self.between_sd:.1f}), "
            f"p_loo {self.p_loo:.1f}; high Pareto k in "
            f"{int((self.table['high_k'] > 0).sum())} imputation(s)."
        )


@dataclass(frozen=True, eq=False)
class MultipleFit:
    """Fits of one model to M completed data sets (:func:`mixedbayes.fit_multiple`).

    Attributes
    ----------
    fits : tuple of Fit
        One per completed data set, in the order given.
    seeds : tuple of int
        The sampler seed of each fit.
    runs : DataFrame
        Per imputation: ``imputation``, ``seconds`` (on the worker), ``worker``, ``reused``
        (read back from ``out_dir``), ``attempts``.
    settings : dict
        Backend, workers, draws, tune, chains, seed, wall-clock seconds.
    """

    fits: tuple[FitLike, ...]
    seeds: tuple[int, ...]
    runs: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def m(self) -> int:
        """Number of imputations."""
        return len(self.fits)

    @property
    def spec(self) -> ModelSpec:
        """The model spec every fit shares."""
        return self.fits[0].spec

    @property
    def df_complete(self) -> float:
        """Default complete-data degrees of freedom of :meth:`pooled`: rows used minus the
        number of population-level coefficients (the rows of class ``b`` or ``b_<part>``
        of the summary), as for a linear model; ``inf`` when the design does not say how
        many rows it used."""
        n = getattr(self.fits[0].design, "n", None)
        if n is None:
            return float("inf")
        classes = self._summary(0, 0.95, False)["class"].astype(str)
        k = int(sum(c == "b" or c.startswith("b_") for c in classes))
        return float(n - k) if n > k else float("inf")

    def _summary(self, i: int, prob: float, include_group_levels: bool) -> pd.DataFrame:
        key = ("summary", i, prob, include_group_levels)
        if key not in self._cache:
            self._cache[key] = self.fits[i].summary(prob, include_group_levels=include_group_levels)
        return self._cache[key]

    def pooled(
        self,
        prob: float = 0.95,
        *,
        df_complete: float | None = None,
        include_group_levels: bool = False,
    ) -> pd.DataFrame:
        """Rubin's rules on every scalar parameter (each element of a vector its own row).

        Parameters
        ----------
        prob : float
            Mass of the t interval (``lower``, ``upper``); 0.95 as every summary of the
            package.
        df_complete : float, optional
            Complete-data degrees of freedom for the Barnard–Rubin ``df``. Default
            :attr:`df_complete`: rows used minus population-level coefficients (the
            residual df of a linear model; for a mixed model an upper bound, which errs
            towards narrower intervals); ``float("inf")`` gives Rubin's (1987) large-sample
            df.
        include_group_levels : bool
            Also pool every group effect ``r_<group>[level, term]``.

        Returns
        -------
        DataFrame
            One row per scalar, named as :meth:`Fit.summary` names it: ``parameter``,
            ``class``, ``estimate`` (mean over imputations of the posterior means), ``se``
            (√total), ``within`` (mean of the posterior variances), ``between`` (variance of
            the posterior means across imputations, ddof=1), ``total`` (within + (1 + 1/m)
            between), ``riv`` ((1 + 1/m) between / within), ``lambda`` ((1 + 1/m) between /
            total), ``fmi`` ((riv + 2/(df + 3)) / (riv + 1), as mice's ``pool()``), ``df``
            (Barnard & Rubin 1999), ``lower``, ``upper``. ``attrs`` hold ``m``,
            ``df_complete`` and ``prob``.
        """
        check_prob(prob)
        dfc = self.df_complete if df_complete is None else float(df_complete)
        tables = [self._summary(i, prob, include_group_levels) for i in range(self.m)]
        names = list(tables[0]["parameter"])
        indexed = [t.set_index("parameter") for t in tables]
        for i, t in enumerate(indexed[1:], 2):
            if list(t.index) != names:
                missing = sorted(set(names) ^ set(t.index))
                raise ValueError(
                    f"imputation {i}'s fit has other parameters than the first: {missing[:5]}"
                )
        means = np.stack([t.loc[names, "mean"].to_numpy(float) for t in indexed])
        variances = np.stack([t.loc[names, "sd"].to_numpy(float) ** 2 for t in indexed])
        pooled = rubin_rules(means, variances, df_complete=dfc, prob=prob, names=names)
        pooled.insert(0, "class", tables[0]["class"].to_numpy())
        out = pooled.reset_index(names="parameter")
        out.attrs.update(pooled.attrs)
        return out[list(POOLED_COLUMNS)]

    def diagnostics(self, **thresholds: Any) -> pd.DataFrame:
        """Convergence of every imputation's fit, one row per imputation.

        Parameters
        ----------
        **thresholds
            Passed to :func:`mixedbayes.diagnostics.diagnose` (``rhat_max=``, ...).

        Returns
        -------
        DataFrame
            ``imputation``, ``ok`` (every gate passes), ``rhat_max`` and ``rhat_parameter``,
            ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``treedepth`` (fraction of
            draws at the maximum depth), ``ebfmi_min``, ``failed`` (the gates that did not
            pass), ``seed``, ``seconds``, ``worker``, ``reused``.
        """
        from mixedbayes.diagnostics import diagnose

        rows = []
        for i, fit in enumerate(self.fits):
            d = diagnose(fit, **thresholds)
            run = self.runs.iloc[i]
            rows.append(
                {
                    "imputation": i + 1,
                    "ok": d.ok,
                    "rhat_max": d["rhat"].value,
                    "rhat_parameter": d["rhat"].parameter,
                    "ess_bulk_min": d["ess_bulk"].value,
                    "ess_tail_min": d["ess_tail"].value,
                    "divergences": d["divergences"].value,
                    "treedepth": d["treedepth"].value,
                    "ebfmi_min": d["ebfmi"].value,
                    "failed": ", ".join(g.name for g in d.not_passed),
                    "seed": self.seeds[i],
                    "seconds": float(run["seconds"]),
                    "worker": run["worker"],
                    "reused": bool(run["reused"]),
                }
            )
        return pd.DataFrame(rows)

    @property
    def posterior(self) -> xr.DataTree:
        """Every fit's draws mixed as one posterior (a DataTree with ``posterior`` and
        ``sample_stats``).

        Chains are concatenated: imputation k's chains become chains ``(k-1)·C .. k·C - 1``
        (coordinate ``imputation`` on ``chain``), so ``summary``, ArviZ plots and
        predictions from draws work on it. Its R-hat compares imputations as well as
        chains (it measures how much the completed values move the posterior, not
        convergence): read convergence in :meth:`diagnostics`.
        """
        if "posterior" not in self._cache:
            self._cache["posterior"] = mix_posteriors([f.idata for f in self.fits])
        tree: xr.DataTree = self._cache["posterior"]
        return tree

    def summary(
        self,
        prob: float = 0.95,
        *,
        var_names: list[str] | None = None,
        include_group_levels: bool = False,
    ) -> pd.DataFrame:
        """Tidy summary of the mixed draws (:attr:`posterior`), as :meth:`Fit.summary`."""
        post = self.posterior["posterior"].to_dataset()
        design = self.fits[0].design
        names = var_names or summary_variables(design, post, include_group_levels)
        return summarise(post, design, names, prob)

    def loo(self) -> PooledLoo:
        """PSIS-LOO pooled over the imputations.

        Each fit's PSIS-LOO is computed (:func:`mixedbayes.diagnostics.loo`, arviz-stats
        ``loo``); the pooled ``elpd_loo`` is their mean, with the mean of their standard
        errors and the standard deviation across imputations. Each imputation's elpd scores
        its own completed data (imputed cells included), so the mean estimates the expected
        elpd over the imputation distribution; compare two models by their pooled elpd on
        the same completed sets, never one model's imputations with another's.
        """
        from mixedbayes.diagnostics import loo

        if "loo" not in self._cache:
            rows = []
            for i, fit in enumerate(self.fits, 1):
                r = loo(fit)
                rows.append(
                    {
                        "imputation": i,
                        "elpd_loo": r.elpd,
                        "se": r.se,
                        "p_loo": r.p_loo,
                        "high_k": len(r.high_k),
                    }
                )
            table = pd.DataFrame(rows)
            self._cache["loo"] = PooledLoo(
                elpd=float(table["elpd_loo"].mean()),
                se=float(table["se"].mean()),
                p_loo=float(table["p_loo"].mean()),
                between_sd=float(table["elpd_loo"].std(ddof=1)),
                table=table,
            )
        result: PooledLoo = self._cache["loo"]
        return result

    def to_markdown(self, prob: float = 0.95, *, df_complete: float | None = None) -> str:
        """Markdown: the pooled table (with FMI) and each imputation's diagnostics."""
        pooled = self.pooled(prob, df_complete=df_complete)
        diag = self.diagnostics()
        s = self.settings
        pct = f"{100 * prob:g}%"
        lines = [
            f"## Multiple imputation: {self.m} completed data sets",
            "",
            f"Each fit: {s.get('chains')} chains × {s.get('draws')} draws; backend "
            f"{s.get('backend')}; {s.get('seconds', float('nan')):.1f} s wall-clock. Pooled by "
            f"Rubin's rules (posterior mean and variance per fit); {pct} t intervals on the "
            f"Barnard–Rubin df (complete-data df {pooled.attrs['df_complete']:g}).",
            "",
            f"| parameter | estimate | se | within | between | riv | fmi | df | {pct} interval |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in pooled.itertuples(index=False):
            lines.append(
                f"| `{r.parameter}` | {r.estimate:.4g} | {r.se:.3g} | {r.within:.3g} | "
                f"{r.between:.3g} | {r.riv:.3f} | {r.fmi:.3f} | {r.df:.1f} | "
                f"[{r.lower:.4g}, {r.upper:.4g}] |"
            )
        lines += [
            "",
            f"### Convergence per imputation ({int(diag['ok'].sum())} of {self.m} pass every gate)",
            "",
            "| imputation | max R-hat | min bulk ESS | min tail ESS | divergences | "
            "not passed | seconds |",
            "|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in diag.itertuples(index=False):
            lines.append(
                f"| {r.imputation} | {r.rhat_max:.3f} | {r.ess_bulk_min:.0f} | "
                f"{r.ess_tail_min:.0f} | {r.divergences:.0f} | {str(r.failed) or '—'} | "
                f"{r.seconds:.1f} |"
            )
        return "\n".join(lines) + "\n"

    def report(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        prob: float = 0.95,
        df_complete: float | None = None,
        embed: bool = False,
    ) -> Path:
        """Write the report of the multiple imputation: a self-contained HTML page (or
        Markdown).

        The pooled table by Rubin's rules (estimate, se, within, between, total, riv, fmi,
        df, interval; a note where the FMI asks for more imputations), a forest plot of the
        pooled estimates with each imputation's posterior mean, and every imputation's
        convergence (R-hat, ESS, divergences). The same blocks and templates as
        :meth:`Fit.report <mixedbayes.Fit.report>`.

        Parameters
        ----------
        path : str or path
            The file to write (``.html`` or ``.md``).
        format : {"html", "md"}, optional
            Default: from the suffix of ``path``.
        prob : float
            Mass of the pooled t intervals.
        df_complete : float, optional
            Complete-data degrees of freedom (:meth:`pooled`).
        embed : bool
            Markdown only: embed the images instead of writing PNG files to
            ``<stem>_files/``.

        Returns
        -------
        Path
            The file written.

        See Also
        --------
        mixedbayes.report.multiple.build_multiple_report : the
            :class:`~mixedbayes.report.Report` object.
        """
        from mixedbayes.report.multiple import write_multiple_report

        return write_multiple_report(
            self, path, format=format, embed=embed, prob=prob, df_complete=df_complete
        )

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"MultipleFit({self.m} imputations of {type(self.spec).__name__}; "
            f"{s.get('chains')} chains × {s.get('draws')} draws each; backend "
            f"{s.get('backend')}; {s.get('seconds', float('nan')):.1f} s)"
        )
