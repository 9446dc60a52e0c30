"""Dynamic prediction of a joint model: each patient's survival after a landmark, given their
measurements up to it (as JMbayes2's ``predict(..., process = "event")``), with NumPy.

For each posterior draw, the patient's random effects are drawn from the population
distribution (``M`` candidates) and weighted by the likelihood of the patient's measurements
up to the landmark times their probability of surviving to it (importance sampling); the
conditional survival ``S(t | T > landmark) = exp(−(H(t) − H(landmark)))`` is averaged over the
weighted candidates. Across draws this gives the posterior of the prediction: its mean and a
central interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, SpecError
from mixedbayes.naming import Names

if TYPE_CHECKING:
    from mixedbayes.design.joint import JointDesign
    from mixedbayes.results.protocols import FitLike

__all__ = ["SurvivalPrediction", "dynamic_accuracy", "predict_survival", "validate_dynamic"]


@dataclass(frozen=True)
class SurvivalPrediction:
    """What :func:`predict_survival` returns.

    Attributes
    ----------
    survival : DataFrame
        One row per subject and time: ``subject``, ``landmark``, ``time``, ``mean``,
        ``lower``, ``upper`` of ``S(time | T > landmark)``.
    trajectory : DataFrame
        One row per subject, outcome and time (the visits up to the landmark and the
        prediction times): the outcome's mean (response scale) with its interval, and the
        observed value where there is one.
    draws : ndarray, shape (subjects, draws, times)
        The posterior draws of the conditional survival.
    """

    survival: pd.DataFrame
    trajectory: pd.DataFrame
    draws: np.ndarray


def _draws(post: Any, name: str, index: np.ndarray) -> np.ndarray:
    """Posterior draws of ``name`` flattened over (chain, draw), at ``index``."""
    da = post[name]
    arr = np.asarray(da.to_numpy(), dtype=float)
    return arr.reshape(-1, *arr.shape[2:])[index]


class _Patient:
    """One patient's rows: the outcomes' design rows at the visits up to the landmark, and
    the association rows at any times (subject factor only)."""

    def __init__(self, design: JointDesign, visits: pd.DataFrame, subject: str) -> None:
        self.design, self.visits, self.subject = design, visits, subject

    def rows(self, name: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        d = self.design.outcomes[name]
        nd = d.new_data(frame)
        return nd.X, nd.group_Z[self.design.subject_factor]

    def at(self, name: str) -> Any:
        from mixedbayes.design.joint import rows_at

        spec = self.design.spec

        def read(t: np.ndarray, who: np.ndarray) -> Any:
            frame = rows_at(self.visits, spec, who, t)
            X, Z = self.rows(name, frame)
            return X, {self.design.subject_factor: (np.zeros(len(t), dtype=np.int64), Z)}

        return read


def _check(design: JointDesign) -> None:
    for name, d in design.outcomes.items():
        others = [g.name for g in d.groups if g.name != design.subject_factor]
        if others:
            raise SpecError(
                f"predict_survival reads outcomes whose only grouping factor is the subject; "
                f"{name!r} also has {others}.",
                where="predict_survival",
                hint="not yet available for nested or crossed factors.",
            )
        if d.trials is not None or any(p.predictor for p in d.family.params):
            raise SpecError(
                f"predict_survival does not yet take the binomial trials or zero-inflation "
                f"of {name!r}.",
                where="predict_survival",
            )


def predict_survival(
    fit: FitLike,
    newdata: pd.DataFrame | None = None,
    *,
    times: Any,
    landmark: float | None = None,
    n_draws: int = 200,
    n_candidates: int = 300,
    prob: float = 0.95,
    seed: int | None = None,
) -> SurvivalPrediction:
    """Posterior predictions of survival after a landmark (see the module docstring).

    Parameters
    ----------
    fit : Fit
        A joint fit.
    newdata : DataFrame, optional
        Longitudinal rows of the patients (subject, time, responses, the longitudinal and
        hazard covariates); default: the fit's own longitudinal table (every subject).
    times : float or sequence of float
        Times at which to predict survival (those after a subject's landmark are used).
    landmark : float, optional
        Known alive up to this time; measurements after it are ignored. Default: each
        subject's last visit.
    n_draws, n_candidates : int
        Posterior draws used (thinned evenly) and random-effect candidates per draw.
    prob : float
        Mass of the central interval.
    seed : int, optional
    """
    from mixedbayes.results.summary import check_prob
    from mixedbayes.survival import ASSOCIATIONS, hazard_nodes

    check_prob(prob)
    design: JointDesign = fit.design  # type: ignore[assignment]
    _check(design)
    spec = design.spec
    data = design.source_tables["longitudinal"] if newdata is None else newdata
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise DataError(
            "newdata must be a non-empty DataFrame of the patients' visits.",
            where="newdata",
            hint="give the longitudinal rows (with the hazard's covariates) of each patient.",
        )
    if newdata is None:  # the hazard's covariates are in the survival table
        surv = design.source_tables["survival"]
        extra = [c for c in surv.columns if c not in data.columns or c == spec.subject]
        data = data.merge(surv[extra], on=spec.subject, how="left")
    t_req = np.atleast_1d(np.asarray(times, dtype=float))
    rng = np.random.default_rng(seed)
    post = fit.idata["posterior"].to_dataset()
    total = post.sizes["chain"] * post.sizes["draw"]
    index = np.unique(np.linspace(0, total - 1, min(n_draws, total)).astype(int))
    sub = design.structure(design.subject_factor)
    k = len(sub.terms)
    sd = _draws(post, Names.sd(sub.name), index)
    cor = _draws(post, Names.cor(sub.name), index) if sub.correlated else None
    alpha = _draws(post, "alpha", index)
    b = {name: _draws(post, Names(name).b, index) for name in design.outcomes}
    fam = {
        name: {p.name: _draws(post, Names(name).param(p.name), index) for p in d.family.params}
        for name, d in design.outcomes.items()
    }
    gamma = _draws(post, Names("event").b, index) if design.survival.terms else None
    theta = {p.name: _draws(post, p.name, index) for p in design.baseline.params()}
    q = spec.quadrature
    breaks = design.baseline.quadrature_breaks()
    scale = float(np.max(design.survival.stop))
    out_rows, traj_rows, all_draws = [], [], []
    for subject, visits in data.groupby(data[spec.subject].astype(str), sort=False):
        visits = visits.sort_values(spec.time)
        mark = float(visits[spec.time].max()) if landmark is None else float(landmark)
        seen = visits[visits[spec.time] <= mark]
        if seen.empty:
            raise DataError(
                f"subject {subject!r} has no visit at or before the landmark {mark}.",
                where="landmark",
                hint="give a later landmark or the patient's first measurements.",
            )
        later = t_req[t_req > mark]
        patient = _Patient(design, seen, str(subject))
        x_event = design.hazard_rows(seen.iloc[[0]])[0] if gamma is not None else None
        # the outcomes' rows at the visits
        obs = {}
        seen_times: dict[str, np.ndarray] = {}
        for name, d in design.outcomes.items():
            y = d.response_values(seen)
            X, Z = patient.rows(name, seen)
            ok = np.isfinite(y).ravel()
            cols = design.rows[(name, sub.name)].columns
            obs[name] = (y.ravel()[ok], X[ok], Z[ok], cols)
            seen_times[name] = seen[spec.time].to_numpy(dtype=float)[ok]
        # the hazard's time points: [0, landmark] (survived) and [landmark, t] for each t
        lowers = np.concatenate([[0.0], np.full(later.size, mark)])
        uppers = np.concatenate([[mark], later])
        nodes, weights = hazard_nodes(lowers, uppers, q, breaks)
        flat = nodes.ravel()
        who = np.repeat(str(subject), flat.size)
        readings: list[tuple[str, Any, Any, tuple[int, ...], int, int]] = []
        labels_used = 0
        for a_name, how in spec.associations():
            kind = ASSOCIATIONS.get(how)
            cols = design.rows[(a_name, sub.name)].columns
            if kind.reads_effects:
                readings.append((a_name, None, None, cols, labels_used, len(cols)))
                labels_used += len(cols)
                continue
            X, maps = kind.rows(patient.at(a_name), flat, who, scale, q)  # type: ignore[misc]
            Z = maps[design.subject_factor][1]
            readings.append((a_name, X, Z, cols, labels_used, 1))
            labels_used += 1
        trajectory_rows = {}
        for name, (_, X, Z, cols) in obs.items():
            Xt, Zt = patient.rows(name, _times_frame(patient, spec, later))
            trajectory_rows[name] = (np.vstack([X, Xt]), np.vstack([Z, Zt]), cols)
        draws = np.empty((len(index), later.size))
        means = {name: np.empty((len(index), len(obs[name][0]) + later.size)) for name in obs}
        for j in range(len(index)):
            L = np.diag(sd[j])
            if cor is not None:
                L = sd[j][:, None] * np.linalg.cholesky(cor[j] + 1e-12 * np.eye(k))
            r = rng.standard_normal((n_candidates, k)) @ L.T
            logw = np.zeros(n_candidates)
            for name, (y, X, Z, cols) in obs.items():
                d = design.outcomes[name]
                eta = X @ b[name][j] + r[:, list(cols)] @ Z.T
                params = {p: v[j] for p, v in fam[name].items()}
                logw += d.family.logp_reference(y, d.link.inverse_numpy(eta), params).sum(axis=1)
            log_h = design.baseline.log_hazard(nodes, {p: v[j] for p, v in theta.items()}, np)
            log_h = np.broadcast_to(log_h, (n_candidates, *nodes.shape)).copy()
            if gamma is not None and x_event is not None:
                log_h += float(x_event @ gamma[j])
            for a_name, X, Z, cols, start, width in readings:
                coef = alpha[j][start : start + width]
                if X is None:
                    log_h += (r[:, list(cols)] @ coef)[:, None, None]
                else:
                    f = X @ b[a_name][j] + r[:, list(cols)] @ Z.T
                    log_h += coef[0] * f.reshape(n_candidates, *nodes.shape)
            H = np.sum(weights * np.exp(log_h), axis=2)  # candidates × intervals
            logw -= H[:, 0]
            w = np.exp(logw - logw.max())
            w /= w.sum()
            draws[j] = w @ np.exp(-H[:, 1:])
            for name, (Xa, Za, cols) in trajectory_rows.items():
                d = design.outcomes[name]
                eta = Xa @ b[name][j] + r[:, list(cols)] @ Za.T
                means[name][j] = w @ d.link.inverse_numpy(eta)
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        for i, t in enumerate(later):
            col = draws[:, i]
            out_rows.append(
                {
                    "subject": subject,
                    "landmark": mark,
                    "time": t,
                    "mean": float(col.mean()),
                    "lower": float(np.quantile(col, lo)),
                    "upper": float(np.quantile(col, hi)),
                }
            )
        for name, m in means.items():
            y = obs[name][0]
            for i, t in enumerate(np.concatenate([seen_times[name], later])):
                traj_rows.append(
                    {
                        "subject": subject,
                        "outcome": name,
                        "time": float(t),
                        "mean": float(m[:, i].mean()),
                        "lower": float(np.quantile(m[:, i], lo)),
                        "upper": float(np.quantile(m[:, i], hi)),
                        "observed": float(y[i]) if i < len(y) else np.nan,
                    }
                )
        all_draws.append(draws)
    return SurvivalPrediction(
        pd.DataFrame(out_rows),
        pd.DataFrame(traj_rows),
        np.stack(all_draws) if len({d.shape for d in all_draws}) == 1 else np.empty(0),
    )


def _times_frame(patient: _Patient, spec: Any, times: np.ndarray) -> pd.DataFrame:
    from mixedbayes.design.joint import rows_at

    return rows_at(patient.visits, spec, np.repeat(patient.subject, times.size), times)


def _censoring_survival(time: np.ndarray, censored: np.ndarray) -> Any:
    """Kaplan–Meier of the censoring times: ``G(t) = P(C > t)`` as a step function."""
    order = np.argsort(time, kind="stable")
    t, c = time[order], censored[order]
    at_risk = len(t) - np.arange(len(t))
    factors = np.where(c, 1.0 - 1.0 / at_risk, 1.0)
    steps, values = t, np.cumprod(factors)

    def G(x: np.ndarray, left: bool = False) -> np.ndarray:
        idx = np.searchsorted(steps, x, side="left" if left else "right") - 1
        return np.where(idx >= 0, values[np.clip(idx, 0, None)], 1.0)

    return G


def dynamic_accuracy(
    risk: np.ndarray, time: np.ndarray, event: np.ndarray, landmark: float, horizon: float
) -> dict[str, float]:
    """Time-dependent AUC and Brier score of predicted risks ``P(T <= landmark + horizon |
    T > landmark)`` of the subjects at risk at the landmark, with inverse probability of
    censoring weights (Gerds & Schumacher 2006; the censoring Kaplan–Meier among them).

    Cases: an event in ``(landmark, landmark + horizon]``; controls: alive after it; a
    subject censored in the window counts through the weights of the others.
    """
    end = landmark + horizon
    at_risk = time > landmark
    risk, time, event = risk[at_risk], time[at_risk], event[at_risk]
    G = _censoring_survival(time, event == 0)
    case = (time <= end) & (event == 1)
    control = time > end
    w = np.zeros(len(time))
    with np.errstate(divide="ignore"):
        w[case] = 1.0 / G(time[case], left=True)
        w[control] = 1.0 / G(np.array([end]))[0]
    w[~np.isfinite(w)] = 0.0
    status = case.astype(float)
    brier = float(np.sum(w * (status - risk) ** 2) / len(time))
    wc, wk = w[case], w[control]
    rc, rk = risk[case], risk[control]
    if wc.size == 0 or wk.size == 0:
        auc = float("nan")
    else:
        greater = (rc[:, None] > rk[None, :]) + 0.5 * (rc[:, None] == rk[None, :])
        auc = float(np.sum(wc[:, None] * wk[None, :] * greater) / (wc.sum() * wk.sum()))
    return {
        "landmark": landmark,
        "horizon": horizon,
        "at_risk": int(at_risk.sum()),
        "cases": int(case.sum()),
        "controls": int(control.sum()),
        "auc": auc,
        "brier": brier,
    }


def validate_dynamic(
    fit: FitLike,
    *,
    landmark: float,
    horizon: float,
    n_draws: int = 100,
    seed: int | None = None,
) -> dict[str, float]:
    """Time-dependent AUC and Brier score at ``landmark`` for ``horizon`` of the fit's own
    subjects (internal validation, as JMbayes2's ``tvAUC`` / ``tvBrier``): each subject at
    risk at the landmark is predicted from their measurements up to it (posterior mean of
    ``1 − S(landmark + horizon | T > landmark)``), then scored by
    :func:`dynamic_accuracy`."""
    design: JointDesign = fit.design  # type: ignore[assignment]
    spec = design.spec
    surv = design.survival
    stop = pd.Series(surv.stop, index=surv.subject).groupby(level=0).max()
    event = pd.Series(surv.event, index=surv.subject).groupby(level=0).max()
    alive = stop.index[stop.to_numpy() > landmark]
    long = design.source_tables["longitudinal"]
    rows = long[long[spec.subject].astype(str).isin(alive)]
    rows = rows[rows[spec.time] <= landmark]
    extra = [
        c
        for c in design.source_tables["survival"].columns
        if c not in rows.columns or c == spec.subject
    ]
    rows = rows.merge(design.source_tables["survival"][extra], on=spec.subject, how="left")
    pred = predict_survival(
        fit, rows, times=[landmark + horizon], landmark=landmark, n_draws=n_draws, seed=seed
    )
    risk = 1.0 - pred.survival.set_index("subject")["mean"]
    ids = [str(s) for s in risk.index]
    return dynamic_accuracy(
        risk.to_numpy(),
        stop.loc[ids].to_numpy(),
        event.loc[ids].to_numpy(),
        landmark,
        horizon,
    )
