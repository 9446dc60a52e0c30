"""The report of a multiple imputation (:class:`~mixedbayes.MultipleFit`): pooled and per fit.

A :class:`~mixedbayes.report.Report` built from the same blocks and rendered by the same
templates as a fit's report, with three sections: the pooled table by Rubin's rules (with the
fraction of missing information per parameter), a forest plot of the pooled estimates beside
each imputation's posterior mean, and the convergence of every imputation's fit (R-hat, ESS,
divergences), which brms's ``brm_multiple`` does not show. ``mi.report(path)`` writes it.

The sections are built here, not registered: the registry's sections take one fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from mixedbayes.report.blocks import (
    Block,
    KeyValues,
    Note,
    Paragraph,
    Status,
    figure_block,
    spec_line,
    table_from_frame,
)
from mixedbayes.report.builder import Report, SectionResult, report_format
from mixedbayes.results.rubin import RUBIN_COLUMNS

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["FMI_HIGH", "MultipleReportable", "build_multiple_report", "write_multiple_report"]

#: A fraction of missing information above this is flagged: more imputations are advised.
FMI_HIGH = 0.5

#: Columns of the pooled table shown, in order.
POOLED_SHOWN = ("parameter", *(c for c in RUBIN_COLUMNS if c != "lambda"))
#: Columns of the per-imputation diagnostics shown, in order (``status`` added here).
DIAGNOSTICS_SHOWN = (
    "imputation",
    "status",
    "rhat_max",
    "rhat_parameter",
    "ess_bulk_min",
    "ess_tail_min",
    "divergences",
    "failed",
    "seed",
    "seconds",
)


class MultipleReportable(Protocol):
    """What the report needs of a :class:`~mixedbayes.MultipleFit` (a protocol, so that the
    report does not import the results module that imports it)."""

    @property
    def fits(self) -> tuple[FitLike, ...]: ...

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def m(self) -> int: ...

    @property
    def spec(self) -> ModelSpec: ...

    def pooled(
        self,
        prob: float = 0.95,
        *,
        df_complete: float | None = None,
        include_group_levels: bool = False,
    ) -> pd.DataFrame: ...

    def diagnostics(self, **thresholds: Any) -> pd.DataFrame: ...


def _pooled_section(pooled: pd.DataFrame, m: int, prob: float) -> SectionResult:
    pct = f"{100 * prob:g}%"
    blocks: list[Block] = [
        Paragraph(
            f"Rubin's rules over {m} completed data sets: the estimate is the mean of the "
            "fits' posterior means; within is the mean of their posterior variances, between "
            "the variance of their means, total = within + (1 + 1/m) · between; riv is the "
            "relative increase in variance due to the missing data and fmi the fraction of "
            f"missing information; {pct} t intervals on the Barnard–Rubin df (complete-data df "
            f"{pooled.attrs.get('df_complete', float('nan')):g})."
        ),
        table_from_frame(
            pooled,
            columns=list(POOLED_SHOWN),
            caption=f"Pooled estimates by Rubin's rules; lower and upper bound the {pct} interval.",
        ),
    ]
    high = pooled[pooled["fmi"] > FMI_HIGH]
    if len(high):
        names = ", ".join(str(p) for p in high["parameter"][:6])
        more = f" and {len(high) - 6} more" if len(high) > 6 else ""
        need = int(np.ceil(100 * float(high["fmi"].max())))
        blocks.append(
            Note(
                f"fmi above {FMI_HIGH:g} for {names}{more}: the imputations disagree about "
                f"{'it' if len(high) == 1 else 'them'} relative to the posterior width. Use "
                f"more imputations (a common rule: m ≥ 100 × fmi, here about {need}).",
                "warn",
            )
        )
    status: Status = "warn" if len(high) else "pass"
    return SectionResult("pooled", "Pooled estimates (Rubin's rules)", tuple(blocks), status)


def _forest(pooled: pd.DataFrame, estimates: np.ndarray, prob: float) -> MplFigure:
    """The fit report's forest plot of the pooled table, each imputation's mean added."""
    from mixedbayes.report.plots import PANEL_TITLES, forest_plot, panel_of

    fig = forest_plot(pooled.rename(columns={"estimate": "mean"}), prob)
    panel = pooled["class"].map(panel_of).to_numpy()
    order = [p for p in PANEL_TITLES if p in set(panel)]  # forest_plot's panels, in order
    for ax, key in zip(fig.axes, order, strict=True):
        rows = np.flatnonzero(panel == key)[::-1]  # forest_plot draws each panel bottom-up
        for y, i in enumerate(rows):
            ax.plot(estimates[:, i], np.full(len(estimates), y), "|", color="tab:red", ms=8)
    fig.axes[-1].set_xlabel(
        f"pooled estimate and {100 * prob:g}% interval; red ticks: each imputation's mean"
    )
    return fig


def _forest_section(mi: MultipleReportable, pooled: pd.DataFrame, prob: float) -> SectionResult:
    names = list(pooled["parameter"])
    estimates = np.stack(
        [
            fit.summary(prob).set_index("parameter").loc[names, "mean"].to_numpy(float)
            for fit in mi.fits
        ]
    )
    fig = _forest(pooled.reset_index(drop=True), estimates, prob)
    block = figure_block(
        fig,
        "Pooled estimates with intervals and each imputation's posterior mean",
        f"Pooled estimates (points) and {100 * prob:g}% intervals (lines); red ticks: the "
        "posterior mean of each imputation's fit (their spread is the between variance).",
        name="pooled-forest",
    )
    return SectionResult("forest", "Pooled forest plot", (block,))


def _diagnostics_section(mi: MultipleReportable, **thresholds: Any) -> SectionResult:
    diag = mi.diagnostics(**thresholds)
    diag = diag.assign(status=np.where(diag["ok"].to_numpy(bool), "pass", "warn"))
    n_ok = int(diag["ok"].sum())
    blocks: list[Block] = [
        Paragraph(
            f"{n_ok} of {mi.m} imputations' fits pass every convergence gate. Convergence is "
            "judged per fit: the mixed draws' R-hat compares imputations too, so it measures "
            "how much the completed values move the posterior, not convergence."
        ),
        table_from_frame(
            diag,
            columns=list(DIAGNOSTICS_SHOWN),
            status_column="status",
            caption="Convergence of each imputation's fit (the worst R-hat and where, the "
            "smallest bulk and tail ESS, divergent transitions, the gates not passed).",
        ),
    ]
    if n_ok < mi.m:
        blocks.append(
            Note(
                "some fits do not pass every gate: read them in mi.fits[k].diagnose() "
                "(more tuning, draws or a higher target_accept).",
                "warn",
            )
        )
    status: Status = "pass" if n_ok == mi.m else "warn"
    return SectionResult("imputations", "Convergence per imputation", tuple(blocks), status)


def _facts(mi: MultipleReportable) -> tuple[tuple[str, str], ...]:
    s = mi.settings
    first = mi.fits[0]
    report = getattr(first.design, "report", None)
    rows = f"{report.rows_used} used of {report.rows_in}" if report is not None else "–"
    return (
        ("kind", str(mi.spec.kind)),
        ("imputations", str(mi.m)),
        ("rows", rows),
        ("each fit", f"{s.get('chains', '–')} chains × {s.get('draws', '–')} draws"),
        ("backend", f"{s.get('backend', '–')} ({s.get('seconds', float('nan')):.1f} s)"),
    )


def build_multiple_report(
    mi: MultipleReportable,
    *,
    prob: float = 0.95,
    df_complete: float | None = None,
    title: str | None = None,
    **thresholds: Any,
) -> Report:
    """The report of a multiple imputation: pooled table, forest plot, per-fit convergence.

    Parameters
    ----------
    mi : MultipleFit
    prob : float
        Mass of the pooled t intervals.
    df_complete : float, optional
        Complete-data degrees of freedom (:meth:`MultipleFit.pooled`).
    title : str, optional
        Default: the spec's name with "multiple imputation".
    **thresholds
        Convergence thresholds (:func:`mixedbayes.diagnostics.diagnose`).

    Returns
    -------
    Report
        Sections ``model``, ``pooled``, ``forest``, ``imputations``; one that cannot be
        built holds a note saying why.
    """
    from mixedbayes.results.summary import check_prob

    check_prob(prob)
    pooled = mi.pooled(prob, df_complete=df_complete)
    model = SectionResult(
        "model",
        "Model",
        (
            KeyValues((("model", spec_line(mi.spec)), ("kind", str(mi.spec.kind)))),
            Paragraph(
                f"The model was fitted to each of {mi.m} completed data sets with one prior "
                "table; the fits are pooled by Rubin's rules below."
            ),
        ),
    )
    sections = [model, _pooled_section(pooled, mi.m, prob)]
    for key, title_text, make in (
        ("forest", "Pooled forest plot", lambda: _forest_section(mi, pooled, prob)),
        (
            "imputations",
            "Convergence per imputation",
            lambda: _diagnostics_section(mi, **thresholds),
        ),
    ):
        try:
            sections.append(make())
        except Exception as exc:  # a section that cannot be built says why
            sections.append(
                SectionResult(key, title_text, unavailable=f"{type(exc).__name__}: {exc}")
            )
    name = getattr(mi.spec, "name", None)
    heading = f"{name}: multiple imputation" if name else "Multiple imputation"
    return Report.now(
        title or f"{heading} ({mi.m} completed data sets)", mi.spec, _facts(mi), sections
    )


def write_multiple_report(
    mi: MultipleReportable,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    embed: bool = False,
    **options: Any,
) -> Path:
    """Build the report of a multiple imputation and write it (HTML or Markdown).

    Parameters
    ----------
    mi : MultipleFit
    path : str or path
    format : {"html", "md"}, optional
        Default: from the suffix of ``path``.
    embed : bool
        Markdown: embed images instead of writing PNG files next to it.
    **options
        Passed to :func:`build_multiple_report`.

    Returns
    -------
    Path
        The file written.
    """
    report_format(path, format)  # fail on a bad format before building anything
    return build_multiple_report(mi, **options).write(path, format, embed=embed)
