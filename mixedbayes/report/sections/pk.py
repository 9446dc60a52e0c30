"""Sections of kinds with PK outputs: typical values, individual parameters, fitted curves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import Block, Paragraph, figure_block, format_value, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, SectionUnavailable, register_section

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["ConcentrationSection", "IndividualParametersSection", "TypicalValuesSection"]


def _nonlinear(fit: FitLike) -> bool:
    return kind_of(fit.spec).supports("pk")


def _subject_factor(ctx: ReportContext) -> Any:
    factor = kind_of(ctx.fit.spec).subject_factor(ctx.fit.design)
    if factor is None:
        raise SectionUnavailable("the model has no between-subject effects.")
    return factor


@register_section
class TypicalValuesSection(Section):
    """Typical parameter values on the natural scale and between-subject variability."""

    key = "typical_values"
    title = "Typical values and variability"
    order = 100

    def applies(self, fit: FitLike) -> bool:
        return _nonlinear(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        table = ctx.fit.typical_values(ctx.prob)
        _, shrink = ctx.fit.individual_parameters(ctx.prob)
        return [
            Paragraph(
                "Typical values are the inverse link of each parameter's intercept; "
                "between-subject variability (BSV) of a log-scale parameter is the %CV "
                "100·sqrt(exp(ω²) − 1)."
            ),
            table_from_frame(
                table,
                caption=f"Typical values and BSV (central {100 * ctx.prob:g}% intervals).",
            ),
            table_from_frame(
                shrink,
                caption="η-shrinkage of the individual parameters (Savic & Karlsson 2009); "
                "above 20–30 % the individual estimates say little beyond the prior.",
            ),
        ]


@register_section
class IndividualParametersSection(Section):
    """Each subject's parameters, for a sample of subjects."""

    key = "individual_parameters"
    title = "Individual parameters"
    order = 105

    def applies(self, fit: FitLike) -> bool:
        return _nonlinear(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        factor = _subject_factor(ctx)
        levels = ctx.sample_levels(factor.name)
        individual, _ = ctx.fit.individual_parameters(ctx.prob)
        chosen = individual[individual["subject"].astype(str).isin(levels)]
        cells = chosen.assign(
            value=[
                f"{format_value(m)} [{format_value(lo)}, {format_value(hi)}]"
                for m, lo, hi in zip(chosen["mean"], chosen["lower"], chosen["upper"], strict=True)
            ]
        )
        wide = cells.pivot(index="subject", columns="parameter", values="value")
        wide = wide.reindex([lv for lv in levels if lv in set(wide.index)])
        wide = wide.reset_index().rename(columns={"subject": factor.name})
        wide.columns = [str(c) for c in wide.columns]
        return [
            table_from_frame(
                pd.DataFrame(wide),
                caption=f"Posterior mean [central {100 * ctx.prob:g}% interval] of each "
                f"parameter, natural scale, for {len(levels)} of {factor.n_levels} subjects.",
            )
        ]


@register_section
class ConcentrationSection(Section):
    """Fitted curves of a sample of subjects over their observations (any structural model:
    PK library, expression or ODE), with the population curve."""

    key = "concentration"
    title = "Fitted curves"
    order = 110

    def applies(self, fit: FitLike) -> bool:
        return _nonlinear(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        factor = _subject_factor(ctx)
        levels = ctx.sample_levels(factor.name)
        curves = ctx.fit.concentration_curves(subjects=levels)
        fig = curves.plot(ncols=4)
        return [
            figure_block(
                fig,
                f"Fitted curves of {len(levels)} subjects",
                f"Observed {curves.response} (points) against {curves.axis}, each subject's "
                f"posterior mean curve and 95% band, and the population curve (dashed: no "
                f"subject effects) for {len(levels)} of {factor.n_levels} subjects "
                f"({', '.join(levels)}).",
                name="concentration",
            )
        ]
