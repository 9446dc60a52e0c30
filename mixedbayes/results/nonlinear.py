"""Outputs of nonlinear (PK) fits: typical values, between-subject variability, individual
parameters with shrinkage, individual concentration curves, predictions for new regimens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, SpecError
from mixedbayes.naming import Names

if TYPE_CHECKING:
    from mixedbayes.design.nonlinear import NonlinearDesign
    from mixedbayes.pk.dosing import DoseRecord
    from mixedbayes.results.protocols import FitLike

__all__ = [
    "ConcentrationCurves",
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
    fit: FitLike, rows: np.ndarray, r_override: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Parameter draws (draws × rows) at design rows, from b and the group effects."""
    design = _design(fit)
    post = fit.posterior
    out = {}
    for p in design.params:
        b = _flat(post[Names(p.key).b])
        eta = b @ p.X[rows].T
        for g in design.groups:
            cols = design.group_columns.get((g.name, p.key))
            if not cols:
                continue
            if r_override is not None and g.name in r_override:
                r = r_override[g.name][:, None, :]
                r = np.broadcast_to(r, (r.shape[0], rows.size, r.shape[2]))
            else:
                r = _flat(post[Names.r(g.name)])[:, g.index[rows], :]
            eta = eta + np.einsum("snk,nk->sn", r[:, :, list(cols)], g.Z[rows][:, list(cols)])
        out[p.name] = p.link.inverse_numpy(eta)
    return out


def individual_parameters(fit: FitLike, prob: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each subject's parameters (natural scale) and the per-parameter shrinkage %.

    Returns
    -------
    (individual, shrinkage)
        ``individual``: subject, parameter, mean, lower, upper (at the subject's first
        observation's covariates); ``shrinkage``: parameter, shrinkage_pct = 100·(1 −
        SD(E[η_i]) / E[ω]) (Savic & Karlsson 2009).
    """
    design = _design(fit)
    factor = _subject_factor(design)
    if factor is None:
        raise SpecError("the model has no random effects, so no individual parameters.")
    first = np.array([int(np.flatnonzero(factor.index == j)[0]) for j in range(factor.n_levels)])
    theta = _theta_draws(fit, first)
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
    """Predicted concentration curves (mean and interval) with the observed points."""

    curves: pd.DataFrame
    observed: pd.DataFrame

    def plot(self, ncols: int = 4) -> Any:
        """One panel per subject: observed points, posterior mean curve and band."""
        import matplotlib.pyplot as plt

        subjects = list(dict.fromkeys(self.curves["subject"]))
        nrows = int(np.ceil(len(subjects) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows), squeeze=False)
        for ax, s in zip(axes.ravel(), subjects, strict=False):
            c = self.curves[self.curves["subject"] == s]
            ax.fill_between(c["time"], c["lower"], c["upper"], alpha=0.3, color="#3182bd")
            ax.plot(c["time"], c["mean"], color="#08519c")
            o = self.observed[self.observed["subject"] == s]
            ax.plot(o["time"], o["observed"], "o", ms=3, color="black")
            ax.set_title(str(s), fontsize=9)
        for ax in axes.ravel()[len(subjects) :]:
            ax.set_visible(False)
        fig.supxlabel("time")
        fig.supylabel("concentration")
        fig.tight_layout()
        return fig


def _pk_mean(design: NonlinearDesign, theta: dict[str, np.ndarray], doses: Any) -> np.ndarray:
    """Closed-form concentrations for draws (S × n) with dose matrices (n × D)."""
    from mixedbayes.pk.library import concentration, get_pk_model

    assert design.spec.model is not None
    model = get_pk_model(design.spec.model)
    S, n = next(iter(theta.values())).shape

    class _Tiled:
        dt = np.tile(doses.dt, (S, 1))
        amount = np.tile(doses.amount, (S, 1))
        duration = np.tile(doses.duration, (S, 1))

    flat = {k: v.reshape(-1) for k, v in theta.items()}
    return np.asarray(concentration(model, _Tiled, flat, np)).reshape(S, n)


def individual_curves(
    fit: FitLike,
    subjects: Sequence[str] | None = None,
    times: Sequence[float] | None = None,
    prob: float = 0.95,
) -> ConcentrationCurves:
    """Each subject's predicted concentration curve (PK library models)."""
    from mixedbayes.pk.dosing import dose_matrices

    design = _design(fit)
    factor = _subject_factor(design)
    if design.spec.model is None or design.time is None or factor is None:
        raise SpecError(
            "concentration curves need a PK library model with subjects.", where="model"
        )
    chosen = list(subjects) if subjects is not None else list(factor.levels)
    unknown = [s for s in chosen if s not in factor.levels]
    if unknown:
        raise DataError(f"unknown subjects {unknown}.", where=f"group '{factor.name}'")
    grid = np.asarray(times if times is not None else np.linspace(0, design.time.max(), 60))
    frames = []
    for s in chosen:
        j = factor.levels.index(s)
        row = int(np.flatnonzero(factor.index == j)[0])
        theta = _theta_draws(fit, np.full(grid.size, row))
        doses = dose_matrices(design.dosing, [design.subjects[row]] * grid.size, grid)
        conc = _pk_mean(design, theta, doses)
        q = (1 - prob) / 2
        frames.append(
            pd.DataFrame(
                {
                    "subject": s,
                    "time": grid,
                    "mean": conc.mean(axis=0),
                    "lower": np.quantile(conc, q, axis=0),
                    "upper": np.quantile(conc, 1 - q, axis=0),
                }
            )
        )
    level_of_row = np.array(factor.levels)[factor.index]
    keep = np.isin(level_of_row, chosen)
    observed = pd.DataFrame(
        {"subject": level_of_row[keep], "time": design.time[keep], "observed": design.y[keep]}
    )
    return ConcentrationCurves(pd.concat(frames, ignore_index=True), observed)


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
    (default: the first observation's).
    """
    from mixedbayes.pk.dosing import DosingTable, dose_matrices
    from mixedbayes.results.predict import _new_effects

    design = _design(fit)
    factor = _subject_factor(design)
    if design.spec.model is None:
        raise SpecError("regimen predictions need a PK library model.", where="model")
    grid = np.asarray(times, dtype=float)
    label = "new" if subject is None else str(subject)
    table = DosingTable(tuple(type(d)(label, d.time, d.amount, d.rate, d.cmt) for d in doses))
    matrices = dose_matrices(table, [label] * grid.size, grid)
    if subject is not None:
        if factor is None or str(subject) not in factor.levels:
            raise DataError(f"unknown subject {subject!r}.", where="subject")
        row = int(np.flatnonzero(factor.index == factor.levels.index(str(subject)))[0])
        theta = _theta_draws(fit, np.full(grid.size, row))
    else:
        override = {}
        rng = np.random.default_rng(seed)
        for g in design.groups:
            r_new = _new_effects(fit.posterior, g, ["new"], rng)[:, :, 0, :]
            override[g.name] = r_new.reshape(-1, r_new.shape[-1])
        if covariates:
            raise SpecError(
                "covariates for a new subject are not supported yet.", where="covariates"
            )
        theta = _theta_draws(fit, np.zeros(grid.size, dtype=int), override)
    conc = _pk_mean(design, theta, matrices)
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
