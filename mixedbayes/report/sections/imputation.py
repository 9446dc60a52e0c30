"""The imputed values of a fit that imputes by sampling (the spec's ``missing:``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.report.blocks import Block, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, register_section

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure as MplFigure

    from mixedbayes.results.protocols import FitLike

__all__ = ["ImputationSection"]

#: The DataTree group of the imputed values (:mod:`mixedbayes.results.imputation`).
_GROUP = "imputed"


@register_section
class ImputationSection(Section):
    """Observed against imputed values per variable, and the imputed values' table."""

    key = "imputation"
    title = "Imputed values"
    order = 95  # after the core sections (the data section lists the cells)

    def applies(self, fit: FitLike) -> bool:
        return _GROUP in fit.idata.children

    def build(self, ctx: ReportContext) -> list[Block]:
        from mixedbayes.results.imputation import imputed_table

        table = imputed_table(ctx.fit.idata, ctx.prob)
        source = ctx.fit.design.source
        return [
            figure_block(
                _plot(table, source),
                "Observed values and imputed values per variable",
                "Per imputed variable: the observed values (grey) and each imputed cell's "
                f"posterior mean with its central {ctx.prob:.0%} interval (red).",
                name="imputed",
            ),
            table_from_frame(
                table,
                max_rows=40,
                caption="Imputed cells (row: the data's label); probability: a summed-out "
                "binary covariate's posterior probability of class 1, a categorical one's of its "
                "most probable level (class).",
            ),
        ]


def _plot(table: pd.DataFrame, source: pd.DataFrame) -> MplFigure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(table["column"]))
    fig, axes = plt.subplots(
        len(columns), 1, figsize=(6.5, 1.6 + 1.1 * len(columns)), squeeze=False
    )
    rng = np.random.default_rng(0)
    for ax, column in zip(axes[:, 0], columns, strict=True):
        rows = table[table["column"] == column]
        if rows["class"].notna().any():  # a categorical covariate: levels, not values
            counts = rows["class"].value_counts()
            ax.barh(counts.index.astype(str), counts.to_numpy(), color="tab:red")
            ax.set_title(f"{column}: most probable level of the imputed cells", fontsize=9)
            continue
        if column in source.columns:
            observed = source[column].dropna().to_numpy(dtype=float)
            ax.scatter(
                observed,
                1 + rng.uniform(-0.15, 0.15, observed.size),
                s=10,
                color="0.5",
                alpha=0.7,
            )
        y = rng.uniform(-0.2, 0.2, len(rows))
        ax.errorbar(
            rows["mean"],
            y,
            xerr=[rows["mean"] - rows["lower"], rows["upper"] - rows["mean"]],
            fmt="o",
            ms=3,
            color="tab:red",
            lw=1,
        )
        ax.set_yticks([0, 1], ["imputed", "observed"])
        ax.set_ylim(-0.5, 1.5)
        ax.set_title(column, fontsize=9, loc="left")
    fig.tight_layout()
    return fig
