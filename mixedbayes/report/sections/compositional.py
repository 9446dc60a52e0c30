"""Sections of kinds with taxa (compositional models): differential abundance (a table and a
volcano plot per coefficient, a forest of every taxon's effect), and the communities —
expected against observed composition by covariate pattern."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import Block, Paragraph, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, register_section

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["CompositionSection", "TaxaEffectsSection"]

#: Rows of the differential-abundance table; taxa drawn in the community plot.
TOP_ROWS, TOP_TAXA = 25, 10
#: How the taxon effects of a coefficient are pooled, by ``spec.pooling``.
POOLING_TEXT = {
    "taxa": "whose SD is estimated (sd_b): taxa share evidence and most shrink toward no change. ",
    "horseshoe": "with heavy tails and a spike near zero (a regularised horseshoe: tau_b, "
    "lambda_b, slab_b): most taxa shrink hard toward no change, the few large effects are "
    "left alone. ",
}


def _taxa(fit: FitLike) -> bool:
    return kind_of(fit.spec).supports("taxa")


@register_section
class TaxaEffectsSection(Section):
    """Each taxon's effects with their local false sign rates, as a table, a volcano plot and
    a forest plot."""

    key = "taxa_effects"
    title = "Differential abundance"
    order = 130

    def applies(self, fit: FitLike) -> bool:
        return _taxa(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        import matplotlib.pyplot as plt

        from mixedbayes.results.compositional import taxa_effects

        table = taxa_effects(ctx.fit, prob=ctx.prob)
        terms = map(str, ctx.fit.idata["posterior"]["term"].to_numpy())  # the formula's order
        coefficients = [t for t in terms if t in set(table["coefficient"])]
        if not coefficients:
            return [Paragraph("The formula has no coefficient besides the intercept.")]
        calls = table[table["call"] != ""].groupby("coefficient").size()
        blocks: list[Block] = [
            Paragraph(
                "Each coefficient has one effect per taxon on the CLR scale (the log-ratio of "
                "the taxon to the geometric mean of all taxa), drawn from a common prior "
                + POOLING_TEXT.get(cast(Any, ctx.fit.spec).pooling, "with a fixed SD. ")
                + "lfsr is the posterior probability that the effect's sign is wrong; an effect "
                "is called (increase / decrease) at lfsr <= 0.05. Calls per coefficient: "
                + ", ".join(f"{c}: {int(calls.get(c, 0))}" for c in coefficients)
                + "."
            ),
            table_from_frame(
                table.head(TOP_ROWS).drop(columns="scale"),
                caption=f"The {TOP_ROWS} effects with the smallest lfsr; central "
                f"{100 * ctx.prob:g}% intervals.",
            ),
        ]
        fig, axes = plt.subplots(
            1, len(coefficients), figsize=(3.6 * len(coefficients), 3.2), squeeze=False
        )
        for ax, coef in zip(axes.ravel(), coefficients, strict=True):
            part = table[table["coefficient"] == coef]
            called = part["call"] != ""
            y = -np.log10(np.maximum(part["lfsr"], 1e-4))
            ax.scatter(part["mean"][~called], y[~called], s=10, color="0.6")
            ax.scatter(part["mean"][called], y[called], s=14, color="C3")
            ax.axhline(-np.log10(0.05), color="k", lw=0.6, ls="--")
            ax.set_title(coef, fontsize=9)
            ax.set_xlabel("effect (CLR)")
        axes[0, 0].set_ylabel("-log10 lfsr")
        fig.tight_layout()
        blocks.append(
            figure_block(
                fig,
                "Volcano plots of the taxon effects",
                "Posterior mean effect against -log10 lfsr per taxon; red: called at lfsr <= "
                "0.05 (dashed line).",
                name="taxa_volcano",
            )
        )
        coef = coefficients[-1]  # the last term: an interaction when there is one
        part = table[table["coefficient"] == coef].sort_values("mean")
        height = max(2.5, 0.16 * len(part))
        fig, ax = plt.subplots(figsize=(5, height))
        pos = np.arange(len(part))
        colors = ["C3" if c else "C0" for c in part["call"] != ""]
        ax.hlines(pos, part["lower"], part["upper"], colors=colors, lw=1)
        ax.scatter(part["mean"], pos, s=8, c=colors)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(pos, part["taxon"], fontsize=6 if len(part) > 40 else 8)
        ax.set_xlabel(f"{coef} (CLR)")
        fig.tight_layout()
        blocks.append(
            figure_block(
                fig,
                f"Forest plot of {coef} for every taxon",
                f"Posterior mean and central {100 * ctx.prob:g}% interval per taxon; red: called.",
                name="taxa_forest",
            )
        )
        return blocks


def _patterns(design: Any) -> tuple[pd.Series, list[str]]:
    """Each sample's covariate pattern (the fixed-effect variables' values) as a label."""
    from mixedbayes.design.formulae import formula_predictors
    from mixedbayes.spec.compositional import RESPONSE

    data = design.samples.data
    columns = sorted(
        c for c in formula_predictors(f"{RESPONSE} {design.spec.formula}") if c in data.columns
    )
    if not columns:
        return pd.Series("all samples", index=data.index), []
    label = data[columns].astype(str).agg(", ".join, axis=1)
    return label, columns


@register_section
class CompositionSection(Section):
    """Mean composition per covariate pattern, expected against observed, and each sample's
    expected against observed proportions."""

    key = "composition"
    title = "Communities: expected and observed"
    order = 131

    def applies(self, fit: FitLike) -> bool:
        return _taxa(fit)

    def build(self, ctx: ReportContext) -> list[Block]:
        import matplotlib.pyplot as plt

        from mixedbayes.results.compositional import expected_proportions

        design: Any = ctx.fit.design
        expected = expected_proportions(ctx.fit)
        observed = pd.DataFrame(design.counts, index=expected.index, columns=design.taxa)
        observed = observed.div(observed.sum(axis=1).replace(0, np.nan), axis=0)
        label, columns = _patterns(design)
        label.index = expected.index
        order = list(dict.fromkeys(label.sort_values()))[:12]
        top = list(observed.mean().sort_values(ascending=False).index[:TOP_TAXA])
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        for ax, (name, frame) in zip(
            axes, (("observed", observed), ("expected", expected)), strict=True
        ):
            means = frame.groupby(label).mean().reindex(order)
            bottom = np.zeros(len(order))
            for j, taxon in enumerate(top):
                ax.bar(
                    range(len(order)), means[taxon], bottom=bottom, color=f"C{j % 10}", label=taxon
                )
                bottom += means[taxon].to_numpy()
            ax.bar(range(len(order)), 1 - bottom, bottom=bottom, color="0.85", label="other")
            ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=7)
            ax.set_title(f"{name} (mean per {', '.join(columns) or 'sample'})", fontsize=9)
        axes[0].set_ylabel("proportion")
        axes[1].legend(fontsize=6, bbox_to_anchor=(1.02, 1), loc="upper left")
        fig.tight_layout()
        comp = figure_block(
            fig,
            "Composition by covariate pattern, observed and expected",
            f"Mean proportions of the {len(top)} most abundant taxa (and the rest) per "
            "covariate pattern: observed, and the model's expected composition (posterior "
            "mean, group effects included).",
            name="composition",
        )
        fig, ax = plt.subplots(figsize=(4, 4))
        floor = 0.5 / max(float(np.max(design.totals)), 1.0)
        x = np.maximum(expected.to_numpy().ravel(), floor)
        y = np.maximum(observed.to_numpy().ravel(), floor)
        ax.loglog(x, y, ".", ms=2, alpha=0.5)
        ax.plot([floor, 1], [floor, 1], color="k", lw=0.6)
        ax.set_xlabel("expected proportion")
        ax.set_ylabel("observed proportion")
        fig.tight_layout()
        scatter = figure_block(
            fig,
            "Observed against expected proportions",
            "Every sample and taxon (log scales; observed zeros drawn at half a read).",
            name="proportions",
        )
        return [comp, scatter]
