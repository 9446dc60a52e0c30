"""Sections of kinds whose fits offer shrinkage, trajectories and predictions (rootograms)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import Block, Paragraph, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, SectionUnavailable, register_section

if TYPE_CHECKING:
    from mixedbayes.design import GroupFactor
    from mixedbayes.results.protocols import FitLike

__all__ = ["RootogramSection", "ShrinkageSection", "TrajectoriesSection", "individual_factor"]


def _supports(fit: FitLike, capability: str) -> bool:
    return kind_of(fit.spec).supports(capability)


def individual_factor(fit: FitLike) -> GroupFactor:
    """The grouping factor whose levels are the individuals followed over time.

    The factor with the most levels among those with at least two rows per level (median),
    so that an observation-level factor (``(1 | obs)``) is not taken for the individuals;
    the factor with the most levels when none has repeated rows.

    Parameters
    ----------
    fit : Fit

    Returns
    -------
    GroupFactor
    """
    factor = kind_of(fit.spec).subject_factor(fit.design)
    if factor is None:
        raise SectionUnavailable("the model has no grouping factor.")
    return factor


@register_section
class ShrinkageSection(Section):
    """No pooling → partial pooling → complete pooling, per grouping factor and term."""

    key = "shrinkage"
    title = "Shrinkage"
    order = 100

    def applies(self, fit: FitLike) -> bool:
        return _supports(fit, "shrinkage")

    def build(self, ctx: ReportContext) -> list[Block]:
        shr = ctx.fit.shrinkage(prob=ctx.prob)
        blocks: list[Block] = [
            Paragraph(
                "Each level's coefficient b[term] + r[level, term] is estimated three ways: "
                "no pooling (a GLM fitted by the family's own likelihood to the level's rows "
                "alone; a level without a finite maximum-likelihood estimate, such as one with "
                "all counts zero, gets a weakly penalised fit, marked 'penalised' in the "
                "no_pooling_fit column), complete pooling (the GLM with the fixed effects "
                "only) and partial pooling (the posterior of the mixed model). "
                f"{shr.definition} Shrinkage % = 100 (1 − SD over levels of E[r] / E[sd]) "
                "(Savic & Karlsson 2009)."
            ),
            table_from_frame(shr.terms, caption="Shrinkage per grouping factor and term."),
        ]
        for group in dict.fromkeys(shr.terms["group"]):
            group = str(group)
            fig = shr.plot(group=group)
            blocks.append(
                figure_block(
                    fig,
                    f"Shrinkage of the {group} effects",
                    f"Arrows from each level's no-pooling estimate to its posterior mean "
                    f"({group}).",
                    name=f"shrinkage-{group}",
                )
            )
            levels = ctx.sample_levels(group)
            table = shr.levels[
                (shr.levels["group"] == group) & shr.levels["level"].astype(str).isin(levels)
            ]
            n_levels = int(shr.levels.loc[shr.levels["group"] == group, "level"].nunique())
            shown = ctx.sample_phrase(len(levels), n_levels) + " levels"
            blocks.append(
                table_from_frame(
                    table.drop(columns=["group"]),
                    caption=f"Per-level estimates of {group} ({shown}).",
                )
            )
        return blocks


@register_section
class TrajectoriesSection(Section):
    """Fitted individual trajectories with the data, for a sample of individuals."""

    key = "trajectories"
    title = "Individual trajectories"
    order = 110

    def applies(self, fit: FitLike) -> bool:
        return _supports(fit, "trajectories")

    def build(self, ctx: ReportContext) -> list[Block]:
        factor = individual_factor(ctx.fit)
        levels = ctx.sample_levels(factor.name)
        traj = ctx.fit.trajectories(groups=levels, group=factor.name, prob=ctx.prob)
        data = ctx.fit.design.data
        within = data[traj.time].groupby(np.asarray(factor.index), sort=False).nunique()
        if int(within.max()) <= 1:
            raise SectionUnavailable(
                f"no individual trajectories: the time axis {traj.time!r} does not vary "
                f"within levels of {factor.name!r} (the model has no time covariate)."
            )
        fig = traj.plot(ncols=4)
        sample = ctx.sample_phrase(len(levels), factor.n_levels).capitalize()
        return [
            figure_block(
                fig,
                f"Fitted trajectories of {len(levels)} levels of {factor.name}",
                f"{sample} levels of {factor.name} ({', '.join(levels)}): observations "
                f"(points), posterior mean and central {100 * ctx.prob:g}% interval of the "
                f"expected {traj.response} (line and band), population curve (dashed).",
                name="trajectories",
            )
        ]


@register_section
class RootogramSection(Section):
    """Hanging rootogram: observed against expected frequency of each count."""

    key = "rootogram"
    title = "Rootogram"
    order = 120

    def applies(self, fit: FitLike) -> bool:
        return _supports(fit, "predict") and bool(fit.design.family.discrete)

    def build(self, ctx: ReportContext) -> list[Block]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = ctx.fit.rootogram(seed=ctx.seed)
        fig = root.plot()
        table = root.table
        return [
            figure_block(
                fig,
                "Hanging rootogram of the counts",
                "Bars of sqrt(observed frequency) hang from sqrt(expected frequency) (red): a "
                "bar ending above zero means fewer such counts than the model expects, below "
                "zero more.",
                name="rootogram",
            ),
            table_from_frame(
                table,
                max_rows=30,
                caption="Observed and expected frequency per count (expected: posterior "
                "predictive mean, with its central 90% range).",
            ),
        ]
