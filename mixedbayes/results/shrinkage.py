"""Shrinkage of group effects: no pooling, complete pooling and the fitted partial pooling.

Everything is on the model's link scale (the linear predictor). For each grouping factor and
each of its terms (``Intercept``, slopes) the coefficient of a level, ``b[term] +
r_<group>[level, term]``, is estimated three ways:

- **complete pooling**: the term's coefficient in the GLM with the fixed effects only, fitted by
  maximum likelihood with the family's own likelihood (least squares for a gaussian identity
  model). A group term with no fixed counterpart (``y ~ 1 + (0 + x | g)``) is a pure deviation
  from zero, so its complete-pooling value is 0.
- **no pooling**: per level, the GLM fitted by the family's likelihood to that level's rows
  alone, on the factor's columns of ``Z``; the fixed columns not matched to the factor's terms
  enter as an offset at their posterior means, the values the partial-pooling estimate is
  conditional on (:mod:`mixedbayes.results.pooling`). A level whose maximum-likelihood
  estimate does not exist (all counts zero, all binary responses equal, separation) gets a
  weakly penalised fit instead, flagged ``"penalised"`` in the ``no_pooling_fit`` column. NaN
  (``"none"``) where the level cannot be estimated (no more rows than terms, or a
  rank-deficient ``Z``).
- **partial pooling**: the posterior of ``b[term] + r_<group>[level, term]`` (only ``r`` for a
  term without a fixed counterpart): its mean and central interval. The posterior shrinks
  towards the mixed model's own population value, the posterior mean of ``b[term]``
  (``population_mean`` in ``.terms``, a dotted line in the plots); for a GLMM it differs from
  complete pooling, whose coefficients are marginal over the groups (on a log or logit
  scale the pooled intercept exceeds or flattens the mixed model's conditional one).

The **shrinkage factor** of level ``j`` and term ``k`` is ``v_jk / (v_jk + tau_k^2)``: ``v_jk``
is the sampling variance of the level's no-pooling estimate of that coefficient (the diagonal
of the inverse observed information of its GLM fit, family parameters at their posterior
means) and ``tau_k`` the posterior mean of the group-level SD ``sd_<group>[k]``. It is the
weight a normal-normal model puts on the population value: 0 when the level's own data
dominate, 1 when the level is pulled all the way to complete pooling, and always in [0, 1].
With several terms each coefficient is taken alone (the marginal variance of its estimate and
its own SD); with correlated effects the posterior may also move a slope through the
intercept, so an arrow need not follow the factor of each term exactly. Per term, the
**shrinkage %** is the pharmacometric eta-shrinkage of Savic & Karlsson (2009),
``100 (1 - SD_levels(E[r]) / E[sd])``: the SD over levels of the posterior means of ``r`` (with
``ddof=1``) relative to the posterior mean of the group-level SD.

Reference: Savic, R. M. & Karlsson, M. O. (2009). Importance of shrinkage in empirical Bayes
estimates for diagnostics. *The AAPS Journal* 11(3), 558-569.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.groups import find_factor
from mixedbayes.errors import SpecError
from mixedbayes.naming import Names
from mixedbayes.results.pooling import PENALISED, RowLikelihood, factor_fits, pooled_fit
from mixedbayes.results.summary import check_prob

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixedbayes.design import Design, GroupFactor
    from mixedbayes.results.protocols import FitLike

__all__ = ["FACTOR_DEFINITION", "Shrinkage", "shrinkage"]

#: How the shrinkage factor is defined (printed by ``str(Shrinkage)`` and the report).
FACTOR_DEFINITION = (
    "shrinkage factor of level j and term k = v_jk / (v_jk + tau_k^2): "
    "v_jk is the sampling variance of the level's no-pooling estimate of b[k] + r[j, k] "
    "(inverse observed information of the GLM fitted to the level's rows alone), tau_k the "
    "posterior mean of the group-level SD of term k (each term on its own); 0 = the level's "
    "own estimate is kept, "
    "1 = it is pulled all the way to complete pooling (the GLM with fixed effects only)"
)

#: The mixed model's own population value of a term in the plots.
POPULATION_LABEL = "population (posterior mean of b)"

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
    "no_pooling_se",
    "no_pooling_fit",
]
TERM_COLUMNS = ["group", "term", "shrinkage_pct", "n_levels", "population_mean"]


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
    design: Design,
    posterior: Any,
    lik: RowLikelihood,
    g: GroupFactor,
    beta: np.ndarray,
    prob: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-level and per-term tables of one grouping factor."""
    fixed = list(design.fixed_terms)
    matched = [fixed.index(t) if t in fixed else None for t in g.terms]
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
    fits, complete = factor_fits(lik, g, beta, b.mean(axis=0), matched)
    population = np.array([b[:, c].mean() if c is not None else 0.0 for c in matched])
    no_pool = fits.estimates
    for k, c in enumerate(matched):
        if c is not None:
            draws[:, :, k] += b[:, c][:, None]
    alpha = (1.0 - prob) / 2.0
    mean = draws.mean(axis=0)
    lower, upper = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)

    sd = (
        posterior[Names.sd(g.name)]
        .sel({g.term_dim: list(g.terms)})
        .mean(("chain", "draw"))
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = fits.variances / (fits.variances + sd[None, :] ** 2)

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
            "no_pooling_se": np.sqrt(fits.variances).ravel(),
            "no_pooling_fit": np.repeat(fits.method, K),
        },
        columns=LEVEL_COLUMNS,
    )

    r_mean = r.mean(axis=(0, 1))
    spread = r_mean.std(axis=0, ddof=1) if L > 1 else np.full(K, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * (1.0 - spread / sd)
    terms = pd.DataFrame(
        {
            "group": g.name,
            "term": list(g.terms),
            "shrinkage_pct": pct,
            "n_levels": L,
            "population_mean": population,
        },
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
    All estimates are of the level's coefficient ``b[term] + r_<group>[level, term]`` on the
    link scale. Complete pooling is the term's coefficient in the GLM with the fixed effects
    only (0 for a group term without a fixed counterpart); no pooling is the GLM fitted to the
    level's rows alone on the factor's ``Z``, the other fixed columns held at their posterior
    means; both by maximum likelihood with the family's own likelihood, its parameters
    (``sigma``, ``alpha``, ...) at their posterior means (:mod:`mixedbayes.results.pooling`).
    A level without a finite maximum-likelihood estimate (all counts zero, separation) gets a
    weakly penalised fit, ``no_pooling_fit == "penalised"``; a level with no more rows than
    terms gets none (NaN, ``"none"``). Partial pooling is the posterior of the coefficient.
    The shrinkage factor is ``v / (v + tau^2)``, ``v`` the squared ``no_pooling_se`` and
    ``tau`` the posterior mean of the term's group-level SD: in [0, 1], 0 for no shrinkage
    and 1 for complete pooling. The shrinkage % is ``100 (1 - SD over levels of E[r] /
    E[sd])`` (Savic & Karlsson, 2009). The per-level fits ignore the other grouping factors,
    so with nested or crossed factors (``(1 | clinic/patient)``) a level's no-pooling
    estimate also carries the other factors' effects.

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
    lik = RowLikelihood.at_posterior_mean(design, posterior)
    beta = pooled_fit(lik)
    level_tables, term_tables = [], []
    for g in factors:
        lv, tm = _factor_table(design, posterior, lik, g, beta, prob)
        level_tables.append(lv)
        term_tables.append(tm)
    return Shrinkage(
        levels=pd.concat(level_tables, ignore_index=True),
        terms=pd.concat(term_tables, ignore_index=True),
        prob=prob,
        scale=design.link.name,
    )


@dataclass(frozen=True)
class Shrinkage:
    """No-pooling, complete-pooling and partial-pooling estimates of group effects.

    Attributes
    ----------
    levels : DataFrame
        One row per grouping factor, level and term: ``group``, ``level``, ``term``,
        ``n_rows``, ``no_pooling``, ``complete_pooling``, ``partial_mean``,
        ``partial_lower``, ``partial_upper``, ``shrinkage_factor``, ``no_pooling_se``
        (the no-pooling estimate's standard error) and ``no_pooling_fit`` (``"mle"``,
        ``"penalised"`` for the fallback, ``"none"``).
    terms : DataFrame
        One row per grouping factor and term: ``group``, ``term``, ``shrinkage_pct``,
        ``n_levels``, ``population_mean`` (the posterior mean of ``b[term]``, 0 for a term
        without a fixed counterpart).
    prob : float
        Mass of the partial-pooling intervals.
    scale : str
        The link whose scale the estimates are on (``"identity"``, ``"log"``, ...).
    """

    levels: pd.DataFrame
    terms: pd.DataFrame
    prob: float = 0.95
    scale: str = "identity"

    @property
    def definition(self) -> str:
        """How the estimates and the shrinkage factor are defined, in words."""
        return f"All estimates are on the {self.scale} link scale. The {FACTOR_DEFINITION}."

    def __str__(self) -> str:
        lines = [
            f"Shrinkage of group effects ({100 * self.prob:g}% intervals)",
            "shrinkage % = 100 (1 - SD over levels of E[r] / E[sd]) (Savic & Karlsson 2009)",
            self.terms.to_string(index=False, float_format=lambda v: f"{v:.3g}"),
            *textwrap.wrap(self.definition, 92),
            "shrinkage factor per level: median [min, max] over levels",
        ]
        for (grp, term), sub in self.levels.groupby(["group", "term"], sort=False):
            f = sub["shrinkage_factor"].dropna()
            if f.empty:
                lines.append(f"  {grp} {term}: no level could be estimated alone")
                continue
            missing = len(sub) - len(f)
            note = f" ({missing} levels without a no-pooling estimate)" if missing else ""
            lines.append(f"  {grp} {term}: {f.median():.3g} [{f.min():.3g}, {f.max():.3g}]{note}")
        fallback = self.levels.loc[self.levels["no_pooling_fit"] == PENALISED]
        for grp, sub in fallback.groupby("group", sort=False):
            names = list(dict.fromkeys(sub["level"].astype(str)))
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            lines.append(
                f"  {grp!s}: {len(names)} levels without a finite maximum-likelihood estimate "
                f"(e.g. all counts zero, separation) got the weakly penalised fit: {shown}"
            )
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
        rows = self.terms[self.terms["group"] == group]
        population = dict(zip(rows["term"], rows["population_mean"], strict=True))
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
            _plot_2d(ax, table, ("Intercept", slope), group, self.scale, population)
            return _figure(ax)
        panels = [term] if term is not None else terms
        if ax is not None and len(panels) > 1:
            raise SpecError(
                f"an axes holds one panel, but {group!r} has {len(panels)} terms.",
                where="ax",
                hint=f"pass term= (one of {terms}), or leave ax out.",
            )
        if ax is not None:
            _plot_1d(ax, table, panels[0], group, self.scale, population)
            return _figure(ax)
        fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.0), squeeze=False)
        for a, t in zip(axes[0], panels, strict=True):
            _plot_1d(a, table, t, group, self.scale, population)
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


def _scale_note(scale: str) -> str:
    return "" if scale == "identity" else f", {scale} scale"


def _no_pooling_points(ax: Axes, x: Any, y: Any, penalised: np.ndarray) -> None:
    """Hollow circles for maximum-likelihood estimates, crosses for the penalised fallback."""
    mle = ~penalised
    ax.scatter(x[mle], y[mle], facecolors="none", edgecolors="C0", label="no pooling", zorder=3)
    if penalised.any():
        ax.scatter(
            x[penalised],
            y[penalised],
            marker="x",
            color="C0",
            label="no pooling (penalised fallback)",
            zorder=3,
        )


def _plot_2d(
    ax: Axes,
    table: pd.DataFrame,
    terms: tuple[str, str],
    group: str,
    scale: str,
    population: dict[str, float],
) -> None:
    xterm, yterm = terms
    wide = table.pivot(index="level", columns="term")
    nx, ny = wide[("no_pooling", xterm)], wide[("no_pooling", yterm)]
    px, py = wide[("partial_mean", xterm)], wide[("partial_mean", yterm)]
    ok = nx.notna() & ny.notna()
    for lv in wide.index[ok]:
        _arrow(ax, (float(nx[lv]), float(ny[lv])), (float(px[lv]), float(py[lv])))
    penalised = (wide[("no_pooling_fit", xterm)] == PENALISED).to_numpy()[ok.to_numpy()]
    _no_pooling_points(ax, nx[ok].to_numpy(), ny[ok].to_numpy(), penalised)
    ax.scatter(px, py, color="C1", s=18, label="partial pooling (posterior mean)", zorder=4)
    cx = float(table.loc[table["term"] == xterm, "complete_pooling"].iloc[0])
    cy = float(table.loc[table["term"] == yterm, "complete_pooling"].iloc[0])
    ax.scatter([cx], [cy], marker="*", s=220, color="k", label="complete pooling", zorder=5)
    mx, my = float(population[xterm]), float(population[yterm])
    ax.scatter([mx], [my], marker="P", s=90, color="C2", label=POPULATION_LABEL, zorder=5)
    ax.update_datalim(np.column_stack([np.r_[nx[ok], px, cx, mx], np.r_[ny[ok], py, cy, my]]))
    ax.autoscale_view()
    ax.set_xlabel(f"{xterm} ({group}{_scale_note(scale)})")
    ax.set_ylabel(f"{yterm} ({group}{_scale_note(scale)})")
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


def _plot_1d(
    ax: Axes,
    table: pd.DataFrame,
    term: str,
    group: str,
    scale: str,
    population: dict[str, float],
) -> None:
    sub = table[table["term"] == term]
    x = _dodge(sub["n_rows"].to_numpy())
    no = sub["no_pooling"].to_numpy()
    part = sub["partial_mean"].to_numpy()
    ok = np.isfinite(no)
    for xi, a, b in zip(x[ok], no[ok], part[ok], strict=True):
        _arrow(ax, (float(xi), float(a)), (float(xi), float(b)))
    penalised = (sub["no_pooling_fit"] == PENALISED).to_numpy()[ok]
    _no_pooling_points(ax, x[ok], no[ok], penalised)
    ax.scatter(x, part, color="C1", s=18, label="partial pooling (posterior mean)", zorder=4)
    ax.axhline(
        float(sub["complete_pooling"].iloc[0]), color="k", ls="--", lw=1, label="complete pooling"
    )
    ax.axhline(float(population[term]), color="C2", ls=":", lw=1.2, label=POPULATION_LABEL)
    ax.update_datalim(np.column_stack([np.r_[x[ok], x], np.r_[no[ok], part]]))
    ax.autoscale_view()
    _count_ticks(ax, sub["n_rows"].to_numpy())
    ax.set_xlabel(f"rows per level of {group}")
    ax.set_ylabel(term if scale == "identity" else f"{term} ({scale} scale)")
    ax.set_title(f"{group}: {term}")
    ax.legend(fontsize="small")
