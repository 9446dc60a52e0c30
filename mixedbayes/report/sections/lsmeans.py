"""Least-squares means per visit and arm, and the arm differences at each visit (MMRM)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixedbayes.design.matrices import fixed_predictors
from mixedbayes.kinds import kind_of
from mixedbayes.report.blocks import Block, Paragraph, figure_block, table_from_frame
from mixedbayes.report.registry import ReportContext, Section, SectionUnavailable, register_section

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from mixedbayes.results.emmeans import EMMeans
    from mixedbayes.results.protocols import FitLike

__all__ = ["LSMeansSection", "lsmeans_columns"]


def _residual_time(fit: FitLike) -> str | None:
    """The time column of the spec's ``residuals:`` when the fixed part reads it."""
    residuals = getattr(fit.design.spec, "residuals", None)
    matrices = getattr(fit.design, "_matrices", None)
    if residuals is None or matrices is None:
        return None
    return residuals.time if residuals.time in fixed_predictors(matrices).columns else None


def lsmeans_columns(fit: FitLike) -> tuple[list[str], list[str]]:
    """The ``specs`` and ``by`` of the report's LS-means.

    With correlated residuals over a visit column the fixed part reads: ``by`` is the visit
    and ``specs`` the predictors that interact with it and take few values (the arm of
    ``arm * visit``), else the other factors, else the visit alone. Without: every factor
    of the fixed part, ``by`` empty.

    Raises
    ------
    SectionUnavailable
        When the model has no factor to give means for.
    """
    matrices = getattr(fit.design, "_matrices", None)
    if matrices is None:
        raise SectionUnavailable("LS-means need a regression model's design.")
    fp = fixed_predictors(matrices)
    data = fit.design.data
    time = _residual_time(fit)
    if time is None:
        if not fp.categorical:
            raise SectionUnavailable(
                "the model has no categorical predictor to give LS-means for; call "
                "fit.emmeans(...) with the columns you want."
            )
        return list(fp.categorical), []

    def few(col: str) -> bool:
        return col in fp.categorical or data[col].nunique() <= 10

    partners = [
        c
        for c in fp.columns
        if c != time and few(c) and any({c, time} <= term for term in fp.terms)
    ]
    specs = partners or [c for c in fp.categorical if c != time]
    return (specs, [time]) if specs else ([time], [])


@register_section
class LSMeansSection(Section):
    """Estimated marginal means per visit and arm; the arm differences at each visit."""

    key = "lsmeans"
    title = "Least-squares means"
    order = 97

    def applies(self, fit: FitLike) -> bool:
        return kind_of(fit.spec).supports("slopes") and _residual_time(fit) is not None

    def build(self, ctx: ReportContext) -> list[Block]:
        from mixedbayes.results.emmeans import emmeans

        specs, by = lsmeans_columns(ctx.fit)
        em = emmeans(ctx.fit, specs, by, prob=ctx.prob)
        over = f" averaged over {', '.join(em.averaged)} with equal weights" if em.averaged else ""
        held = ", ".join(f"{k} = {v:.4g}" for k, v in em.held.items())
        blocks: list[Block] = [
            Paragraph(
                f"Estimated marginal (least-squares) means of {' × '.join(specs)}"
                + (f" at each {by[0]}" if by else "")
                + f", population level, {em.type} scale: the model's prediction{over}"
                + (f", numeric predictors at their mean ({held})" if held else "")
                + f"; posterior means with {ctx.prob:.0%} central intervals "
                "(fit.emmeans(...) in Python)."
            )
        ]
        pairs = em.pairs()
        if len(pairs):
            blocks += _differences(em, pairs, ctx.prob)
        blocks.append(
            table_from_frame(
                em.means,
                caption="Least-squares means (n: rows of the data in the cell).",
                digits=4,
                max_rows=60,
            )
        )
        if by:
            blocks.append(
                figure_block(
                    _plot(em),
                    f"Least-squares means of {' × '.join(specs)} over {by[0]} with intervals",
                    f"Least-squares means over {by[0]} ({ctx.prob:.0%} intervals).",
                    name="lsmeans",
                )
            )
        return blocks


def _differences(em: EMMeans, pairs: Any, prob: float) -> list[Block]:
    blocks: list[Block] = []
    if em.by:
        last = pairs[em.by[0]].iloc[-1]
        at_last = pairs[pairs[em.by[0]] == last]
        text = "; ".join(
            f"{r.contrast} {r.estimate:.4g} ({prob:.0%} interval {r.lower:.4g} to "
            f"{r.upper:.4g}; probability of direction {r.pd:.3f})"
            for r in at_last.itertuples()
        )
        blocks.append(Paragraph(f"At the last {em.by[0]} ({last}): {text}."))
    columns = [*em.by, "contrast", "estimate", "sd", "lower", "upper", "pd"]
    blocks.append(
        table_from_frame(
            pairs,
            caption="Pairwise differences (later level minus earlier)"
            + (f" at each {em.by[0]}" if em.by else "")
            + "; pd: probability of direction.",
            columns=columns,
            digits=4,
            max_rows=60,
        )
    )
    return blocks


def _plot(em: EMMeans) -> MplFigure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    means = em.means
    by = em.by[0]
    xs = list(dict.fromkeys(means[by]))
    position = {v: i for i, v in enumerate(xs)}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    groups = means.groupby(list(em.specs), sort=False)
    offsets = np.linspace(-0.12, 0.12, max(groups.ngroups, 1))
    for (label, part), dx in zip(groups, offsets, strict=True):
        x = np.array([position[v] for v in part[by]], dtype=float) + dx
        y = part["estimate"].to_numpy(dtype=float)
        err = np.vstack([y - part["lower"].to_numpy(float), part["upper"].to_numpy(float) - y])
        name = " ".join(map(str, label)) if isinstance(label, tuple) else str(label)
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(by)
    ax.set_ylabel(f"least-squares mean ({em.type} scale)")
    ax.legend(title=" × ".join(em.specs), fontsize=8)
    fig.tight_layout()
    return fig
