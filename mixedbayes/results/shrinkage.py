"""Shrinkage of group effects: no pooling, complete pooling and the fitted partial pooling.

For each grouping factor and each of its terms (``Intercept``, slopes) the group-specific
coefficient of a level is estimated three ways:

- **complete pooling**: the least-squares coefficient of the term's fixed-effect column when
  ``y`` is regressed on the fixed design ``X`` ignoring the groups (the column whose name equals
  the group term's). A group term with no fixed counterpart (``y ~ 1 + (0 + x | g)``) is a pure
  deviation from zero, so its complete-pooling value is 0.
- **no pooling**: per level, least squares of ``y - X_other β_pooled`` on the factor's columns
  of ``Z``, where ``X_other`` are the fixed columns not matched to the factor's terms and
  ``β_pooled`` their complete-pooling coefficients
  (:func:`mixedbayes.design.parametrization.no_pooling`). NaN where the level cannot be
  estimated (no more rows than terms, or a rank-deficient ``Z``).
- **partial pooling**: the posterior of ``b[term] + r_<group>[level, term]`` (only ``r`` for a
  term without a fixed counterpart): its mean and central interval.

The **shrinkage factor** of a level and term is ``(no - partial) / (no - complete)``: 0 when the
fit keeps the level's own estimate, 1 when it pulls it all the way to the pooled value. Per
term, the **shrinkage %** is the pharmacometric eta-shrinkage of Savic & Karlsson (2009),
``100 (1 - SD_levels(E[r]) / E[sd])``: the SD over levels of the posterior means of ``r`` (with
``ddof=1``) relative to the posterior mean of the group-level SD.

The least-squares estimates are on the linear-predictor scale: they use the design's working
response (the link of the response, pulled away from the boundaries, less any offset), exact
for gaussian identity models and a first-order approximation for other families.

Reference: Savic, R. M. & Karlsson, M. O. (2009). Importance of shrinkage in empirical Bayes
estimates for diagnostics. *The AAPS Journal* 11(3), 558-569.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.groups import find_factor
from mixedbayes.design.parametrization import no_pooling
from mixedbayes.errors import SpecError
from mixedbayes.naming import Names
from mixedbayes.results.summary import check_prob

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixedbayes.design import Design, GroupFactor
    from mixedbayes.results.protocols import FitLike

__all__ = ["Shrinkage", "shrinkage"]

LEVEL_COLUMNS = [
    "group",
    "level",
    "term",
    "n_rows",
    "no_pooling",
    "complete_pooling",
    "partial_mean",
    "partial_lower",
    "partial_upper",
    "shrinkage_factor",
]
TERM_COLUMNS = ["group", "term", "shrinkage_pct", "n_levels"]


def _factors(design: Design, group: str | None) -> list[GroupFactor]:
    names = [g.name for g in design.groups]
    if not names:
        raise SpecError(
            "the model has no grouping factors, so nothing is shrunk.",
            where="group",
            hint="fit a model with group effects, e.g. 'y ~ x + (1 | g)'.",
        )
    if group is None:
        return list(design.groups)
    return [find_factor(design.groups, group)]


def _factor_table(
    design: Design, posterior: Any, g: GroupFactor, beta: np.ndarray, prob: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-level and per-term tables of one grouping factor."""
    fixed = list(design.fixed_terms)
    matched = [fixed.index(t) if t in fixed else None for t in g.terms]
    used = {c for c in matched if c is not None}
    other = [c for c in range(len(fixed)) if c not in used]
    resid = design.working_y() - design.X[:, other] @ beta[other]
    no_pool, _, _ = no_pooling(resid, g, tuple(range(len(g.terms))))
    complete = np.array([beta[c] if c is not None else 0.0 for c in matched])

    r = (
        posterior[Names.r(g.name)]
        .sel({g.dim: list(g.levels), g.term_dim: list(g.terms)})
        .transpose("chain", "draw", g.dim, g.term_dim)
        .to_numpy()
    )
    draws = r.reshape(-1, g.n_levels, len(g.terms)).copy()
    names = Names()
    b = (
        posterior[names.b]
        .sel({names.term_dim: fixed})
        .transpose("chain", "draw", names.term_dim)
        .to_numpy()
    )
    b = b.reshape(-1, len(fixed))
    for k, c in enumerate(matched):
        if c is not None:
            draws[:, :, k] += b[:, c][:, None]
    alpha = (1.0 - prob) / 2.0
    mean = draws.mean(axis=0)
    lower, upper = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)

    denom = no_pool - complete[None, :]
    scale = np.nanmax(np.abs(np.concatenate([no_pool.ravel(), complete, [1.0]])))
    ok = np.isfinite(no_pool) & (np.abs(denom) > 1e-9 * scale)
    factor = np.full(no_pool.shape, np.nan)
    factor[ok] = ((no_pool - mean)[ok]) / denom[ok]

    counts = g.counts
    L, K = no_pool.shape
    levels = pd.DataFrame(
        {
            "group": g.name,
            "level": np.repeat(np.asarray(g.levels, dtype=object), K),
            "term": np.tile(np.asarray(g.terms, dtype=object), L),
            "n_rows": np.repeat(counts, K).astype(int),
            "no_pooling": no_pool.ravel(),
            "complete_pooling": np.tile(complete, L),
            "partial_mean": mean.ravel(),
            "partial_lower": lower.ravel(),
            "partial_upper": upper.ravel(),
            "shrinkage_factor": factor.ravel(),
        },
        columns=LEVEL_COLUMNS,
    )

    r_mean = r.mean(axis=(0, 1))
    sd = (
        posterior[Names.sd(g.name)]
        .sel({g.term_dim: list(g.terms)})
        .mean(("chain", "draw"))
        .to_numpy()
    )
    spread = r_mean.std(axis=0, ddof=1) if L > 1 else np.full(K, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * (1.0 - spread / sd)
    terms = pd.DataFrame(
        {"group": g.name, "term": list(g.terms), "shrinkage_pct": pct, "n_levels": L},
        columns=TERM_COLUMNS,
    )
    return levels, terms


def shrinkage(fit: FitLike, group: str | None = None, prob: float = 0.95) -> Shrinkage:
    """How far the fit pulls each level's coefficients from its own data towards the pool.

    Parameters
    ----------
    fit : Fit
        A fitted model with at least one grouping factor.
    group : str, optional
        Only this grouping factor (default: every factor).
    prob : float
        Mass of the central posterior interval of the partial-pooling estimate.

    Returns
    -------
    Shrinkage
        ``.levels`` (one row per factor, level and term), ``.terms`` (the shrinkage % per
        factor and term) and ``.plot()``.

    Raises
    ------
    SpecError
        If the model has no grouping factor, ``group`` names none of them, or ``prob`` is not
        in (0, 1).

    Notes
    -----
    Complete pooling is the term's coefficient in the least-squares fit of ``y`` on the fixed
    design (0 for a group term without a fixed counterpart); no pooling is the per-level least
    squares of ``y - X_other β`` on the factor's ``Z`` (NaN where a level has no more rows than
    terms); partial pooling is the posterior of ``b[term] + r_<group>[level, term]``. The
    shrinkage factor ``(no - partial) / (no - complete)`` is 0 for no shrinkage and 1 for
    complete pooling (NaN where no pooling is NaN or equals complete pooling). The shrinkage %
    is ``100 (1 - SD over levels of E[r] / E[sd])`` (Savic & Karlsson, 2009). Least-squares
    estimates use the working response on the link scale (exact for gaussian identity
    models, approximate otherwise). Both least-squares estimates ignore the other grouping
    factors, so with nested or crossed factors (``(1 | clinic/patient)``) a level's
    no-pooling estimate also carries the other factors' effects and its shrinkage factor can
    fall well outside [0, 1].

    Examples
    --------
    >>> s = mb.shrinkage(fit)  # doctest: +SKIP
    >>> s.terms  # doctest: +SKIP
    >>> s.plot()  # doctest: +SKIP
    """
    check_prob(prob)
    design = fit.design
    factors = _factors(design, group)
    posterior = fit.posterior
    beta, *_ = np.linalg.lstsq(design.X, design.working_y(), rcond=None)
    level_tables, term_tables = [], []
    for g in factors:
        lv, tm = _factor_table(design, posterior, g, beta, prob)
        level_tables.append(lv)
        term_tables.append(tm)
    return Shrinkage(
        levels=pd.concat(level_tables, ignore_index=True),
        terms=pd.concat(term_tables, ignore_index=True),
        prob=prob,
    )


@dataclass(frozen=True)
class Shrinkage:
    """No-pooling, complete-pooling and partial-pooling estimates of group effects.

    Attributes
    ----------
    levels : DataFrame
        One row per grouping factor, level and term: ``group``, ``level``, ``term``,
        ``n_rows``, ``no_pooling``, ``complete_pooling``, ``partial_mean``,
        ``partial_lower``, ``partial_upper``, ``shrinkage_factor``.
    terms : DataFrame
        One row per grouping factor and term: ``group``, ``term``, ``shrinkage_pct``,
        ``n_levels``.
    prob : float
        Mass of the partial-pooling intervals.
    """

    levels: pd.DataFrame
    terms: pd.DataFrame
    prob: float = 0.95

    def __str__(self) -> str:
        lines = [
            f"Shrinkage of group effects ({100 * self.prob:g}% intervals)",
            "shrinkage % = 100 (1 - SD over levels of E[r] / E[sd]) (Savic & Karlsson 2009)",
            self.terms.to_string(index=False, float_format=lambda v: f"{v:.3g}"),
            "shrinkage factor per level (0 = none, 1 = complete pooling): "
            "median [min, max] over levels",
        ]
        for (grp, term), sub in self.levels.groupby(["group", "term"], sort=False):
            f = sub["shrinkage_factor"].dropna()
            if f.empty:
                lines.append(f"  {grp} {term}: no level could be estimated alone")
                continue
            missing = len(sub) - len(f)
            note = f" ({missing} levels without a no-pooling estimate)" if missing else ""
            lines.append(f"  {grp} {term}: {f.median():.3g} [{f.min():.3g}, {f.max():.3g}]{note}")
        return "\n".join(lines)

    def plot(
        self, group: str | None = None, term: str | None = None, ax: Axes | None = None
    ) -> Figure:
        """Arrows from each level's no-pooling estimate to its partial-pooling estimate.

        Parameters
        ----------
        group : str, optional
            The grouping factor (default: the first one in the table).
        term : str, optional
            One term. By default a factor with an intercept and one slope gets a 2-D plot
            (intercept against slope, with the complete-pooling point marked); any other
            factor gets one panel per term, estimate against the level's number of rows.
        ax : matplotlib Axes, optional
            Draw into this axes (only when one panel is drawn).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        groups = list(dict.fromkeys(self.terms["group"]))
        if group is None:
            group = groups[0]
        if group not in groups:
            raise SpecError(
                f"no grouping factor {group!r} in this table.",
                where="group",
                hint=f"use one of {groups}.",
            )
        table = self.levels[self.levels["group"] == group]
        terms = list(dict.fromkeys(table["term"]))
        if term is not None and term not in terms:
            raise SpecError(
                f"grouping factor {group!r} has no term {term!r}.",
                where="term",
                hint=f"use one of {terms}.",
            )
        if term is None and len(terms) == 2 and "Intercept" in terms:
            slope = next(t for t in terms if t != "Intercept")
            if ax is None:
                fig, ax = plt.subplots(figsize=(6.0, 5.0))
            _plot_2d(ax, table, "Intercept", slope, group)
            return _figure(ax)
        panels = [term] if term is not None else terms
        if ax is not None and len(panels) > 1:
            raise SpecError(
                f"an axes holds one panel, but {group!r} has {len(panels)} terms.",
                where="ax",
                hint=f"pass term= (one of {terms}), or leave ax out.",
            )
        if ax is not None:
            _plot_1d(ax, table, panels[0], group)
            return _figure(ax)
        fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.0), squeeze=False)
        for a, t in zip(axes[0], panels, strict=True):
            _plot_1d(a, table, t, group)
        fig.tight_layout()
        return fig


def _figure(ax: Axes) -> Figure:
    fig = ax.get_figure(root=True)
    if fig is None:  # pragma: no cover - an axes drawn on always has a figure
        raise RuntimeError("the axes belongs to no figure.")
    return fig


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.9, "shrinkA": 0, "shrinkB": 0},
    )


def _plot_2d(ax: Axes, table: pd.DataFrame, xterm: str, yterm: str, group: str) -> None:
    wide = table.pivot(index="level", columns="term")
    nx, ny = wide[("no_pooling", xterm)], wide[("no_pooling", yterm)]
    px, py = wide[("partial_mean", xterm)], wide[("partial_mean", yterm)]
    ok = nx.notna() & ny.notna()
    for lv in wide.index[ok]:
        _arrow(ax, (float(nx[lv]), float(ny[lv])), (float(px[lv]), float(py[lv])))
    ax.scatter(nx[ok], ny[ok], facecolors="none", edgecolors="C0", label="no pooling", zorder=3)
    ax.scatter(px, py, color="C1", s=18, label="partial pooling (posterior mean)", zorder=4)
    cx = float(table.loc[table["term"] == xterm, "complete_pooling"].iloc[0])
    cy = float(table.loc[table["term"] == yterm, "complete_pooling"].iloc[0])
    ax.scatter([cx], [cy], marker="*", s=220, color="k", label="complete pooling", zorder=5)
    ax.update_datalim(np.column_stack([np.r_[nx[ok], px, cx], np.r_[ny[ok], py, cy]]))
    ax.autoscale_view()
    ax.set_xlabel(f"{xterm} ({group})")
    ax.set_ylabel(f"{yterm} ({group})")
    ax.set_title(f"Shrinkage of {group} effects")
    ax.legend(fontsize="small")


def _dodge(n_rows: np.ndarray) -> np.ndarray:
    """x positions: the number of rows, levels with equal counts spread side by side."""
    x = n_rows.astype(float)
    distinct = np.unique(x)
    gap = float(np.diff(distinct).min()) if distinct.size > 1 else 1.0
    out = x.copy()
    for v in distinct:
        idx = np.flatnonzero(x == v)
        if idx.size > 1:
            out[idx] = v + 0.4 * gap * (np.linspace(-0.5, 0.5, idx.size))
    return out


def _count_ticks(ax: Axes, n_rows: np.ndarray) -> None:
    """Ticks at the observed numbers of rows (at most 10 of them)."""
    distinct = np.unique(n_rows)
    if distinct.size <= 10:
        ax.set_xticks(distinct.astype(float), [str(int(v)) for v in distinct])


def _plot_1d(ax: Axes, table: pd.DataFrame, term: str, group: str) -> None:
    sub = table[table["term"] == term]
    x = _dodge(sub["n_rows"].to_numpy())
    no = sub["no_pooling"].to_numpy()
    part = sub["partial_mean"].to_numpy()
    ok = np.isfinite(no)
    for xi, a, b in zip(x[ok], no[ok], part[ok], strict=True):
        _arrow(ax, (float(xi), float(a)), (float(xi), float(b)))
    ax.scatter(x[ok], no[ok], facecolors="none", edgecolors="C0", label="no pooling", zorder=3)
    ax.scatter(x, part, color="C1", s=18, label="partial pooling (posterior mean)", zorder=4)
    ax.axhline(
        float(sub["complete_pooling"].iloc[0]), color="k", ls="--", lw=1, label="complete pooling"
    )
    ax.update_datalim(np.column_stack([np.r_[x[ok], x], np.r_[no[ok], part]]))
    ax.autoscale_view()
    _count_ticks(ax, sub["n_rows"].to_numpy())
    ax.set_xlabel(f"rows per level of {group}")
    ax.set_ylabel(term)
    ax.set_title(f"{group}: {term}")
    ax.legend(fontsize="small")
