"""Sections every report has: model, data, priors, convergence, parameters and model checks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.compile.model import integrated_out, sampled_parametrization
from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import (
    Block,
    Code,
    KeyValues,
    Note,
    Paragraph,
    Status,
    Table,
    figure_block,
    format_value,
    spec_line,
    table_from_frame,
    worst,
)
from mixedbayes.report.plots import forest_plot, trace_rank_plot
from mixedbayes.report.registry import ReportContext, Section, SectionUnavailable, register_section

__all__ = [
    "ConvergenceSection",
    "DataSection",
    "ForestSection",
    "LooSection",
    "ModelSection",
    "ParametersSection",
    "PosteriorPredictiveSection",
    "PriorsSection",
    "TraceSection",
]

MAX_TRACE_PARAMETERS = 12
PPC_EXTREME = 0.025


@register_section
class ModelSection(Section):
    """The model: kind, formula, family, sampler settings and the spec as YAML."""

    key = "model"
    title = "Model"
    order = 10

    def build(self, ctx: ReportContext) -> list[Block]:
        fit = ctx.fit
        spec: Any = fit.spec
        post = fit.idata["posterior"]
        attrs = dict(post.attrs)
        design = fit.design
        items = [
            ("kind", str(spec.kind)),
            ("model", spec_line(fit.spec)),
            ("family", f"{design.family.name} (link {design.link.name})"),
        ]
        items += kind_of(spec).report_items(spec)
        items.append(
            (
                "draws",
                f"{post.sizes['chain']} chains × {post.sizes['draw']} draws "
                f"(sampler {attrs.get('sampler', spec.sampler.name)}, "
                f"seed {attrs.get('seed', spec.sampler.seed)})",
            )
        )
        if attrs.get("marginalization"):
            items.append(("group effects", str(attrs["marginalization"])))
        if fit.timings:
            from mixedbayes.results.summary import timing_text

            items.append(("time", timing_text(fit.timings)))
        blocks: list[Block] = []
        if spec.description:
            blocks.append(Paragraph(str(spec.description)))
        blocks += [KeyValues(tuple(items)), Code(spec.to_yaml().rstrip(), "yaml")]
        return blocks


def _level_counts(counts: np.ndarray) -> str:
    if counts.size == 0:
        return "–"
    return f"{int(counts.min())} / {format_value(float(np.median(counts)))} / {int(counts.max())}"


@register_section
class DataSection(Section):
    """Rows used and dropped (with reasons); the response; the grouping factors."""

    key = "data"
    title = "Data"
    order = 20

    def build(self, ctx: ReportContext) -> list[Block]:
        design = ctx.fit.design
        report = design.report
        y = np.asarray(design.y, dtype=float)
        items = [
            ("rows", f"{report.rows_used} used of {report.rows_in}"),
            ("rows dropped", str(report.rows_dropped)),
            (
                "response",
                f"{design.response}: mean {format_value(np.nanmean(y))}, "
                f"sd {format_value(np.nanstd(y, ddof=1) if y.size > 1 else np.nan)}, "
                f"range [{format_value(np.nanmin(y))}, {format_value(np.nanmax(y))}]",
            ),
            ("columns", ", ".join(str(c) for c in design.data.columns)),
        ]
        blocks: list[Block] = [KeyValues(tuple(items))]
        changes = [("dropped", d.reason, d.column, d.count, d.rows) for d in report.dropped]
        if changes:
            rows = tuple(
                (what, reason, column, str(count), _rows_text(rows))
                for what, reason, column, count, rows in changes
            )
            blocks.append(
                Table(
                    ("what", "reason", "column", "rows", "row labels"),
                    rows,
                    caption="Rows dropped (never silently).",
                    numeric=(False, False, False, True, False),
                )
            )
        else:
            blocks.append(Paragraph("No row was dropped."))
        imputed = getattr(report, "imputed", ())
        if imputed:
            blocks.append(
                Table(
                    ("column", "cells", "how", "row labels"),
                    tuple((i.column, str(i.count), i.how, _rows_text(i.rows)) for i in imputed),
                    caption="Cells imputed (missing: in the spec); fit.imputed() has their "
                    "values with intervals.",
                    numeric=(False, True, False, False),
                )
            )
        if design.groups:
            integrated = integrated_out(ctx.fit.idata["posterior"].attrs)
            frame = pd.DataFrame(
                [
                    {
                        "grouping factor": g.name,
                        "levels": g.n_levels,
                        "rows per level (min / median / max)": _level_counts(
                            np.bincount(g.index[g.index >= 0], minlength=g.n_levels)
                        ),
                        "terms": ", ".join(g.terms),
                        "parametrization": sampled_parametrization(g, integrated, reasons=True),
                    }
                    for g in design.groups
                ]
            )
            blocks.append(table_from_frame(frame, caption="Grouping factors."))
        return blocks


def _rows_text(rows: tuple[object, ...], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" (+{len(rows) - limit} more)" if len(rows) > limit else "")


@register_section
class PriorsSection(Section):
    """The prior table with the provenance of every row."""

    key = "priors"
    title = "Priors"
    order = 30

    def build(self, ctx: ReportContext) -> list[Block]:
        frame = ctx.fit.priors.to_frame()
        if not (frame["nlpar"] != "").any():
            frame = frame.drop(columns=["nlpar"])
        n_user = int((frame["source"] != "default").sum())
        return [
            Paragraph(
                f"{len(frame)} priors: {len(frame) - n_user} defaults scaled from the data, "
                f"{n_user} set in the spec. The provenance says how each default was derived."
            ),
            table_from_frame(frame, caption="Prior table."),
        ]


@register_section
class ConvergenceSection(Section):
    """The convergence gates (R-hat, ESS, divergences, tree depth, E-BFMI) with badges."""

    key = "convergence"
    title = "Convergence"
    order = 40

    def status(self, ctx: ReportContext) -> Status | None:
        gates = ctx.diagnostics()
        if gates.failed:
            return "fail"
        return "warn" if gates.warned else "pass"

    def build(self, ctx: ReportContext) -> list[Block]:
        diag = ctx.diagnostics()
        frame = diag.to_frame()
        blocks: list[Block] = [
            Paragraph(str(diag).splitlines()[0]),
            table_from_frame(
                frame,
                columns=["status", "gate", "value", "threshold", "parameter", "message"],
                status_column="status",
                caption="Convergence gates.",
            ),
        ]
        for gate in diag.not_passed:
            blocks.append(
                Note(f"{gate.name}: {gate.remedy}", "fail" if gate.status == "fail" else "warn")
            )
        return blocks


@register_section
class ParametersSection(Section):
    """Posterior summary of the model's parameters."""

    key = "parameters"
    title = "Parameters"
    order = 50

    def build(self, ctx: ReportContext) -> list[Block]:
        summary = ctx.summary()
        # the summary's own columns, less the ones the parameter name already says
        columns = [c for c in summary.columns if c not in ("class", "group", "term")]
        return [
            table_from_frame(
                summary,
                columns=columns,
                caption=f"Posterior summary; lower and upper bound the central "
                f"{100 * ctx.prob:g}% interval.",
            )
        ]


@register_section
class ForestSection(Section):
    """Means and intervals of the parameters, one panel per class."""

    key = "forest"
    title = "Forest plot"
    order = 60

    def build(self, ctx: ReportContext) -> list[Block]:
        fig = forest_plot(ctx.summary(), ctx.prob)
        return [
            figure_block(
                fig,
                "Forest plot of posterior means and intervals",
                f"Posterior means (points) and central {100 * ctx.prob:g}% intervals (lines).",
                name="forest",
            )
        ]


@register_section
class TraceSection(Section):
    """Trace and rank plots of the summary parameters."""

    key = "trace"
    title = "Trace and rank plots"
    order = 70

    def build(self, ctx: ReportContext) -> list[Block]:
        labels = [str(p) for p in ctx.summary()["parameter"]]
        blocks: list[Block] = []
        if len(labels) > MAX_TRACE_PARAMETERS:
            blocks.append(
                Note(
                    f"The first {MAX_TRACE_PARAMETERS} of {len(labels)} parameters are drawn.",
                    "info",
                )
            )
            labels = labels[:MAX_TRACE_PARAMETERS]
        fig = trace_rank_plot(ctx.fit.posterior, labels)
        blocks.append(
            figure_block(
                fig,
                "Trace and rank plots per chain",
                "Traces should overlap and rank histograms be flat (dashed: uniform).",
                name="trace",
            )
        )
        return blocks


def _ppc_flags(table: pd.DataFrame) -> list[Status]:
    """``warn`` for a statistic whose posterior predictive p-value is extreme.

    A statistic that every replicated data set shares with the data (the minimum 0 of
    counts) has p = 1 by construction and is not flagged.
    """
    p = table["p_value"].to_numpy(dtype=float)
    observed = table["observed"].to_numpy(dtype=float)
    lower = table["replicated_lower"].to_numpy(dtype=float)
    upper = table["replicated_upper"].to_numpy(dtype=float)
    degenerate = (lower == upper) & (upper == observed)
    extreme = ((p < PPC_EXTREME) | (p > 1 - PPC_EXTREME)) & ~degenerate
    return ["warn" if e else "pass" for e in extreme]


@register_section
class PosteriorPredictiveSection(Section):
    """Replicated data against the observed data: density overlay and p-values."""

    key = "ppc"
    title = "Posterior predictive check"
    order = 80

    def _stats(self, ctx: ReportContext) -> pd.DataFrame:
        def make() -> pd.DataFrame:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ctx.fit.ppc_stats(seed=ctx.seed)

        return ctx._cached("ppc_stats", make)  # type: ignore[no-any-return]

    def status(self, ctx: ReportContext) -> Status | None:
        return worst(_ppc_flags(self._stats(ctx)))

    def build(self, ctx: ReportContext) -> list[Block]:
        table = self._stats(ctx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pc = ctx.fit.plot_ppc(num_draws=50, seed=ctx.seed)
        figure = pc.get_viz("figure")
        shown = table.assign(check=_ppc_flags(table))
        return [
            figure_block(
                figure,
                "Posterior predictive density overlay",
                "Densities of 50 replicated data sets over the observed data.",
                name="ppc",
            ),
            table_from_frame(
                shown,
                status_column="check",
                caption="Posterior predictive p-values P(T(y_rep) ≥ T(y)); values near 0 or 1 "
                "point at a misfit.",
            ),
        ]


@register_section
class LooSection(Section):
    """PSIS-LOO: expected log predictive density and the Pareto k diagnostic."""

    key = "loo"
    title = "Leave-one-out cross-validation"
    order = 90

    def status(self, ctx: ReportContext) -> Status | None:
        return "pass" if ctx.loo().ok else "warn"

    def build(self, ctx: ReportContext) -> list[Block]:
        loo = ctx.loo()
        if not np.isfinite(loo.elpd):
            raise SectionUnavailable("PSIS-LOO gave a non-finite elpd.")
        items = (
            ("elpd_loo", f"{format_value(loo.elpd)} (se {format_value(loo.se)})"),
            ("p_loo", format_value(loo.p_loo)),
            ("looic", format_value(loo.looic)),
            ("draws × observations", f"{loo.n_samples} × {loo.n_obs}"),
        )
        k = loo.pareto_k.reset_index()
        k["check"] = ["pass", "warn", "fail"][: len(k)]
        k.loc[k["count"] == 0, "check"] = "pass"
        blocks: list[Block] = [
            KeyValues(items),
            table_from_frame(k, status_column="check", caption="Pareto k diagnostic."),
        ]
        if loo.warning:
            blocks.append(Note(loo.warning, "warn"))
        return blocks
