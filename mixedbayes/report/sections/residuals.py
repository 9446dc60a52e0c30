"""The within-subject residual covariance of an ``lmm`` fitted with ``residuals:``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.report.blocks import Block, Paragraph, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, register_section

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure as MplFigure

    from mixedbayes.results.protocols import FitLike

__all__ = ["ResidualCovarianceSection"]


@register_section
class ResidualCovarianceSection(Section):
    """The implied residual covariance over the visits (table) and correlation (heatmap)."""

    key = "residual_covariance"
    title = "Residual covariance within a subject"
    order = 96

    def applies(self, fit: FitLike) -> bool:
        return getattr(fit.design.spec, "residuals", None) is not None

    def build(self, ctx: ReportContext) -> list[Block]:
        from mixedbayes.design.residuals import latent_residuals
        from mixedbayes.design.variance import row_varying_sigma
        from mixedbayes.results.residual_covariance import residual_covariance

        spec = getattr(ctx.fit.design.spec, "residuals", None)
        assert spec is not None
        latent = latent_residuals(ctx.fit.design)
        # D R D: only R is one matrix
        varying = row_varying_sigma(ctx.fit.design) and not latent
        cor = residual_covariance(ctx.fit, correlation=True)
        cov = cor if varying else residual_covariance(ctx.fit)
        what = "correlation (each row has its own SD)" if varying else "covariance"
        where = (
            "a latent process on the linear predictor (link scale, sigma_ar)"
            if latent
            else "residuals"
        )
        return [
            Paragraph(
                f"Correlated within each subject, {where}: {spec.correlation} over "
                f"{spec.time!r} (posterior means; with random effects this is the residual "
                "part only, their covariance adds to it)."
            ),
            table_from_frame(
                cov.reset_index(),
                caption=f"Residual {what} over {spec.time!r} (posterior mean).",
                digits=3,
            ),
            figure_block(
                _heatmap(cor),
                "Heatmap of the residual correlation between visits",
                "Residual correlation between visits (posterior mean).",
                name="residual_correlation",
            ),
        ]


def _heatmap(cor: pd.DataFrame) -> MplFigure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    k = len(cor)
    size = min(7.0, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    values = cor.to_numpy(dtype=float)
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(np.arange(k), list(cor.columns), rotation=90)
    ax.set_yticks(np.arange(k), list(cor.index))
    ax.set_xlabel(str(cor.columns.name or ""))
    ax.set_ylabel(str(cor.index.name or ""))
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig
