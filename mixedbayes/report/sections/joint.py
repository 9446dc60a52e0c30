"""Sections of kinds with a hazard submodel (joint models): associations, the baseline
hazard, and dynamic survival curves of sampled patients with their trajectories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import Block, Paragraph, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, SectionUnavailable, register_section

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["AssociationSection", "BaselineHazardSection", "SurvivalCurvesSection"]


def _joint(fit: FitLike) -> bool:
    return kind_of(fit.spec).supports("survival")


@register_section
class AssociationSection(Section):
    """How the hazard reads the outcomes (``alpha``) and the hazard's covariates."""

    key = "association"
    title = "Association and hazard covariates"
    order = 120

    def applies(self, fit: FitLike) -> bool:
        return _joint(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        s = ctx.fit.summary(prob=ctx.prob)
        rows = s[s["class"].isin(["alpha", "b_event"])].copy()
        rows["hazard ratio"] = np.exp(rows["mean"])
        cols = ["parameter", "mean", "sd", "lower", "upper", "hazard ratio", "rhat", "ess_bulk"]
        return [
            Paragraph(
                "alpha: the change in the log hazard per unit of each outcome's association "
                "(its current value, slope or area on the linear-predictor scale, or the "
                "subject's random effects); b_event: log hazard ratios of the covariates. "
                "exp(mean) is shown as a hazard ratio."
            ),
            table_from_frame(
                pd.DataFrame(rows[cols]),
                caption=f"Posterior mean, sd and central {100 * ctx.prob:g}% interval.",
            ),
        ]


@register_section
class BaselineHazardSection(Section):
    """The baseline hazard over the follow-up, with its posterior band."""

    key = "baseline_hazard"
    title = "Baseline hazard"
    order = 121

    def applies(self, fit: FitLike) -> bool:
        return _joint(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        import matplotlib.pyplot as plt

        design: Any = ctx.fit.design
        base = design.baseline
        post = ctx.fit.idata["posterior"].to_dataset()
        n = post.sizes["chain"] * post.sizes["draw"]
        take = np.unique(np.linspace(0, n - 1, min(n, 400)).astype(int))
        grid = np.linspace(0, float(np.max(design.survival.stop)), 200)[1:]
        theta = {
            p.name: np.asarray(post[p.name].to_numpy(), float).reshape(n, -1)[take]
            for p in base.params()
        }
        curves = np.stack(
            [
                np.exp(base.log_hazard(grid, {k: _scalar(v[i]) for k, v in theta.items()}, np))
                for i in range(len(take))
            ]
        )
        lo, hi = (1 - ctx.prob) / 2, 1 - (1 - ctx.prob) / 2
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.fill_between(grid, *np.quantile(curves, [lo, hi], axis=0), alpha=0.3, lw=0)
        ax.plot(grid, curves.mean(axis=0))
        ax.set_xlabel("time")
        ax.set_ylabel("baseline hazard h0(t)")
        ax.set_yscale("log")
        events = design.survival.stop[design.survival.event > 0]
        ax.plot(events, np.full(events.shape, np.quantile(curves, lo)), "|", color="k", ms=6)
        return [
            figure_block(
                fig,
                "Baseline hazard with its posterior band",
                f"The {base.name} baseline hazard (posterior mean, central {100 * ctx.prob:g}% "
                "band, log scale) at covariates 0 and association terms 0; ticks: event times.",
                name="baseline_hazard",
            )
        ]


def _scalar(v: np.ndarray) -> Any:
    return v[0] if v.shape == (1,) else v


@register_section
class SurvivalCurvesSection(Section):
    """Sampled patients: their measurements and fitted trajectory up to their last visit,
    and their predicted survival after it."""

    key = "survival_curves"
    title = "Dynamic survival predictions"
    order = 122

    def applies(self, fit: FitLike) -> bool:
        return _joint(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        import matplotlib.pyplot as plt

        from mixedbayes.errors import SpecError
        from mixedbayes.results.joint_predict import predict_survival

        design: Any = ctx.fit.design
        spec = design.spec
        levels = ctx.sample_levels(design.subject_factor)
        long = design.source_tables["longitudinal"]
        surv = design.source_tables["survival"]
        chosen = long[long[spec.subject].astype(str).isin(levels)]
        extra = [c for c in surv.columns if c not in chosen.columns or c == spec.subject]
        chosen = chosen.merge(surv[extra], on=spec.subject, how="left")
        horizon = float(np.max(design.survival.stop))
        times = np.linspace(0, horizon, 40)[1:]
        try:
            pred = predict_survival(ctx.fit, chosen, times=times, n_draws=100, seed=ctx.seed)
        except SpecError as exc:
            raise SectionUnavailable(str(exc)) from None
        outcome = next(iter(design.outcomes))
        ncols = min(4, len(levels))
        nrows = int(np.ceil(len(levels) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
        for ax, subject in zip(axes.ravel(), levels, strict=False):
            tr = pred.trajectory[
                (pred.trajectory["subject"] == subject) & (pred.trajectory["outcome"] == outcome)
            ]
            ax.plot(tr["time"], tr["observed"], "o", ms=3, color="k")
            ax.plot(tr["time"], tr["mean"], color="C0")
            ax.fill_between(tr["time"], tr["lower"], tr["upper"], color="C0", alpha=0.2, lw=0)
            ax.set_title(str(subject), fontsize=9)
            s = pred.survival[pred.survival["subject"] == subject]
            right = ax.twinx()
            right.plot(s["time"], s["mean"], color="C3")
            right.fill_between(s["time"], s["lower"], s["upper"], color="C3", alpha=0.15, lw=0)
            right.set_ylim(0, 1.02)
        for ax in axes.ravel()[len(levels) :]:
            ax.set_visible(False)
        fig.tight_layout()
        return [
            figure_block(
                fig,
                f"Trajectories and survival predictions of {len(levels)} patients",
                f"Black points: measurements of {outcome}; blue: fitted trajectory (left "
                f"axis) up to the last visit and beyond; red: predicted survival after the "
                f"last visit given the measurements (right axis), central {100 * ctx.prob:g}% "
                "bands.",
                name="survival_curves",
            )
        ]
