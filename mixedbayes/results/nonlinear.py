"""Outputs of nonlinear (PK) fits: typical values, between-subject variability, individual
parameters with shrinkage, each subject's fitted curve (any structural model), predictions
for new regimens. Curves and regimens are evaluated in NumPy from the posterior draws
(:mod:`mixedbayes.results.nonlinear_predict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, SpecError
from mixedbayes.naming import Names
from mixedbayes.results.group_draws import Level, NewGroups

if TYPE_CHECKING:
    from mixedbayes.design.nonlinear import NonlinearDesign
    from mixedbayes.design.nonlinear_rows import NonlinearRows
    from mixedbayes.pk.dosing import DoseRecord
    from mixedbayes.results.protocols import FitLike

__all__ = [
    "ConcentrationCurves",
    "curve_axis",
    "individual_curves",
    "individual_parameters",
    "predict_regimen",
    "typical_values",
]


def _design(fit: FitLike) -> NonlinearDesign:
    from mixedbayes.kinds import kind_of

    kind_of(fit.spec).require("pk", "typical_values")
    return fit.design  # type: ignore[return-value]


def _flat(da: Any) -> np.ndarray:
    values = da.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(-1, *values.shape[2:])


def _subject_factor(design: NonlinearDesign) -> Any:
    from mixedbayes.kinds import kind_of

    return kind_of(design.spec).subject_factor(design)


def _interval(x: np.ndarray, prob: float) -> tuple[float, float, float]:
    q = (1 - prob) / 2
    return float(np.mean(x)), float(np.quantile(x, q)), float(np.quantile(x, 1 - q))


def typical_values(fit: FitLike, prob: float = 0.95) -> pd.DataFrame:
    """Typical value of each parameter on its natural scale and between-subject variability.

    For a log-scale parameter the typical value is exp(intercept) and the BSV is reported as
    %CV = 100·sqrt(exp(ω²) − 1), ω the SD of its random intercept; for other links the SD
    on the link scale.
    """
    design = _design(fit)
    post = fit.posterior
    factor = _subject_factor(design)
    rows = []
    for p in design.params:
        b = _flat(post[Names(p.key).b].sel({p.term_dim: "Intercept"}))
        tv = p.link.inverse_numpy(b)
        row: dict[str, object] = {"parameter": p.name, "link": p.link.name}
        row["typical"], row["typical_lower"], row["typical_upper"] = _interval(tv, prob)
        if factor is not None and p.key in factor.terms:
            omega = _flat(post[Names.sd(factor.name)].sel({factor.term_dim: p.key}))
            bsv = 100 * np.sqrt(np.expm1(omega**2)) if p.link.name == "log" else omega
            row["bsv"], row["bsv_lower"], row["bsv_upper"] = _interval(bsv, prob)
            row["bsv_unit"] = "%CV" if p.link.name == "log" else f"SD ({p.link.name} scale)"
        rows.append(row)
    return pd.DataFrame(rows)


def _theta_draws(
    fit: FitLike,
    rows: NonlinearRows,
    *,
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Parameter draws (draws × rows) at ``rows``, from b and the group effects."""
    from mixedbayes.results.nonlinear_predict import parameter_draws

    theta = parameter_draws(
        fit.posterior,
        _design(fit),
        rows,
        level=level,
        new_groups=new_groups,
        rng=np.random.default_rng(seed),
    )
    return {k: v.reshape(-1, v.shape[-1]) for k, v in theta.items()}


def individual_parameters(fit: FitLike, prob: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each subject's parameters (natural scale) and the per-parameter shrinkage %.

    Returns
    -------
    (individual, shrinkage)
        ``individual``: subject, parameter, mean, lower, upper (at the subject's first
        observation's covariates); ``shrinkage``: parameter, shrinkage_pct = 100·(1 −
        SD(E[η_i]) / E[ω]) (Savic & Karlsson 2009).
    """
    from mixedbayes.design.nonlinear_rows import fitted_rows

    design = _design(fit)
    factor = _subject_factor(design)
    if factor is None:
        raise SpecError("the model has no random effects, so no individual parameters.")
    first = np.array([int(np.flatnonzero(factor.index == j)[0]) for j in range(factor.n_levels)])
    theta = _theta_draws(fit, fitted_rows(design).take(first))
    rows = []
    for name, draws in theta.items():
        for j, level in enumerate(factor.levels):
            mean, lo, hi = _interval(draws[:, j], prob)
            rows.append(
                {"subject": level, "parameter": name, "mean": mean, "lower": lo, "upper": hi}
            )
    r = _flat(fit.posterior[Names.r(factor.name)]).mean(axis=0)
    sd = _flat(fit.posterior[Names.sd(factor.name)]).mean(axis=0)
    shrink = [
        {"parameter": term, "shrinkage_pct": 100 * (1 - np.std(r[:, k], ddof=1) / sd[k])}
        for k, term in enumerate(factor.terms)
    ]
    return pd.DataFrame(rows), pd.DataFrame(shrink)


@dataclass(frozen=True)
class ConcentrationCurves:
    """Fitted curves of subjects (mean and interval), the population curve and the data.

    Attributes
    ----------
    curves : DataFrame
        ``subject``, ``time`` (the curve's axis: the time, or the one data column of an
        expression without time), ``mean``, ``lower``, ``upper`` (the subject's curve) and
        ``population`` (the posterior mean at the population level: no group effects).
    observed : DataFrame
        ``subject``, ``time``, ``observed``: the fitted rows of those subjects.
    axis, response : str
        The axis's and the response's column names (the plot's labels).
    """

    curves: pd.DataFrame
    observed: pd.DataFrame
    axis: str = "time"
    response: str = "concentration"

    def plot(self, ncols: int = 4) -> Any:
        """One panel per subject: observed points, posterior mean curve and band, and the
        population curve (dashed)."""
        import matplotlib.pyplot as plt

        subjects = list(dict.fromkeys(self.curves["subject"]))
        ncols = max(1, min(ncols, len(subjects)))
        nrows = int(np.ceil(len(subjects) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows), squeeze=False)
        for ax, s in zip(axes.ravel(), subjects, strict=False):
            c = self.curves[self.curves["subject"] == s]
            ax.fill_between(c["time"], c["lower"], c["upper"], alpha=0.3, color="#3182bd")
            ax.plot(c["time"], c["mean"], color="#08519c")
            if "population" in c:
                ax.plot(c["time"], c["population"], "--", color="#636363", lw=1)
            o = self.observed[self.observed["subject"] == s]
            ax.plot(o["time"], o["observed"], "o", ms=3, color="black")
            ax.set_title(str(s), fontsize=9)
        for ax in axes.ravel()[len(subjects) :]:
            ax.set_visible(False)
        fig.supxlabel(self.axis)
        fig.supylabel(self.response)
        fig.tight_layout()
        return fig


def curve_axis(design: NonlinearDesign) -> str:
    """The column along which a fit's curves are drawn: the spec's ``time``, else the one
    data column of the structural expression."""
    if design.spec.time:
        return design.spec.time
    if len(design.covariates) == 1:
        return next(iter(design.covariates))
    raise SpecError(
        "fitted curves need one axis: the spec has no 'time' and the expression reads "
        f"{sorted(design.covariates) or 'no data column'}.",
        where="time",
        hint="set 'time' to the column to draw the curves along, or use fit.predict(newdata).",
    )


def _axis_values(design: NonlinearDesign, axis: str) -> np.ndarray:
    if axis == design.spec.time and design.time is not None:
        return np.asarray(design.time)
    return np.asarray(design.covariates[axis])


def individual_curves(
    fit: FitLike,
    subjects: Sequence[str] | None = None,
    times: Sequence[float] | None = None,
    prob: float = 0.95,
) -> ConcentrationCurves:
    """Each subject's fitted curve on a grid (any nonlinear model), with the population
    curve and the subject's data.

    The parameters are the subject's at its first observation (covariates included); the
    doses are the subject's doses in the fit data. Evaluated in NumPy from the draws
    (:mod:`mixedbayes.results.nonlinear_predict`).
    """
    from mixedbayes.design.nonlinear_rows import fitted_rows
    from mixedbayes.results.nonlinear_predict import structural_draws

    design = _design(fit)
    factor = _subject_factor(design)
    if factor is None:
        raise SpecError("fitted curves need subjects: the model has no grouping factor.")
    axis = curve_axis(design)
    x = _axis_values(design, axis)
    chosen = [str(s) for s in subjects] if subjects is not None else list(factor.levels)
    unknown = [s for s in chosen if s not in factor.levels]
    if unknown:
        raise DataError(f"unknown subjects {unknown}.", where=f"group '{factor.name}'")
    lo = min(0.0, float(x.min())) if axis == design.spec.time else float(x.min())
    grid = np.asarray(times if times is not None else np.linspace(lo, float(x.max()), 60))
    first = [int(np.flatnonzero(factor.index == factor.levels.index(s))[0]) for s in chosen]
    rows = fitted_rows(design).take(np.repeat(first, grid.size))
    rows = rows.along(axis, np.tile(grid, len(chosen)), design.spec.time)
    conc = structural_draws(design, rows, _theta_draws(fit, rows))
    pop = structural_draws(design, rows, _theta_draws(fit, rows, level="population"))
    q = (1 - prob) / 2
    curves = pd.DataFrame(
        {
            "subject": np.repeat(chosen, grid.size),
            "time": rows.time if axis == design.spec.time else rows.covariates[axis],
            "mean": conc.mean(axis=0),
            "lower": np.quantile(conc, q, axis=0),
            "upper": np.quantile(conc, 1 - q, axis=0),
            "population": pop.mean(axis=0),
        }
    )
    level_of_row = np.array(factor.levels)[factor.index]
    keep = np.isin(level_of_row, chosen)
    observed = pd.DataFrame(
        {"subject": level_of_row[keep], "time": x[keep], "observed": design.y[keep]}
    )
    return ConcentrationCurves(curves, observed, axis, design.response)


def predict_regimen(
    fit: FitLike,
    doses: Sequence[DoseRecord],
    times: Sequence[float],
    *,
    subject: str | None = None,
    covariates: dict[str, float] | None = None,
    prob: float = 0.95,
    seed: int | None = None,
) -> pd.DataFrame:
    """Concentrations under a new dosing regimen, for a known subject or a new one.

    A new subject (``subject=None``) gets between-subject effects drawn from the fitted
    distribution, one per posterior draw (the population prediction interval); a known
    subject keeps its own effects. ``covariates`` sets the new subject's covariate values
    (default: the first observation's). For PK library and ODE models.
    """
    from mixedbayes.design.nonlinear_rows import fitted_rows
    from mixedbayes.pk.dosing import DosingTable
    from mixedbayes.results.nonlinear_predict import structural_draws

    design = _design(fit)
    factor = _subject_factor(design)
    if (
        design.spec.model is None or design.spec.curve_model is not None
    ) and design.spec.ode is None:
        raise SpecError(
            "regimen predictions need a model with doses (a PK library model or an ODE); "
            "for a curve or expression model use fit.predict(newdata).",
            where="model",
        )
    if covariates:
        raise SpecError("covariates for a new subject are not supported yet.", where="covariates")
    grid = np.asarray(times, dtype=float)
    label = "new" if subject is None else str(subject)
    table = DosingTable(tuple(type(d)(label, d.time, d.amount, d.rate, d.cmt) for d in doses))
    row = 0
    if subject is not None:
        if factor is None or str(subject) not in factor.levels:
            raise DataError(f"unknown subject {subject!r}.", where="subject")
        row = int(np.flatnonzero(factor.index == factor.levels.index(str(subject)))[0])
    rows = fitted_rows(design).take(np.full(grid.size, row))
    rows = replace(rows, time=grid, subjects=(label,) * grid.size, dosing=table)
    if subject is None:
        rows = replace(
            rows,
            group_index={g: np.full(grid.size, -1) for g in rows.group_index},
            group_labels={g: [label] * grid.size for g in rows.group_labels},
            new_levels={g: (label,) for g in rows.group_index},
        )
    theta = _theta_draws(fit, rows, new_groups="sample", seed=seed)
    conc = structural_draws(design, rows, theta)
    q = (1 - prob) / 2
    return pd.DataFrame(
        {
            "time": grid,
            "mean": conc.mean(axis=0),
            "median": np.median(conc, axis=0),
            "lower": np.quantile(conc, q, axis=0),
            "upper": np.quantile(conc, 1 - q, axis=0),
        }
    )
