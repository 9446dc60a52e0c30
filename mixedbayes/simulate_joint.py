"""Simulated joint longitudinal–survival data with informative dropout (``mb.simulate.joint``).

A linear mixed outcome ``y = b0 + b_time·t + b_trt_time·trt·t + u0 + u1·t + ε`` measured every
``visit_every`` until death or the end of follow-up; the hazard is
``λ·exp(γ·trt + α·(m(t) − b0))``, ``m(t)`` the subject's true current value. The event time
is drawn exactly (the cumulative hazard of a linear ``m`` has a closed form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SimulatedJoint", "joint"]


@dataclass(frozen=True)
class SimulatedJoint:
    """Simulated joint data and the truth behind it.

    Attributes
    ----------
    data : dict of str to DataFrame
        ``{"longitudinal": visits, "survival": subjects}``, as ``mb.fit`` takes them.
    params : dict
        The true values, named as the fit names them (``b_y[time]``, ``alpha[y:value]``,
        ``b_event[trt]``, ``sigma_y``, ``sd_id[y:Intercept]``, ...).
    effects : DataFrame
        Each subject's random intercept and slope.
    spec : dict
        The joint spec of the generating model (Weibull baseline, which includes the
        constant hazard).
    """

    data: dict[str, pd.DataFrame]
    params: dict[str, float]
    effects: pd.DataFrame
    spec: dict[str, Any]


def joint(
    n_subjects: int = 200,
    *,
    intercept: float = 1.0,
    slope: float = 0.2,
    trt_slope: float = 0.0,
    sd_intercept: float = 0.5,
    sd_slope: float = 0.5,
    sigma: float = 1.0,
    alpha: float = 1.5,
    trt_hazard: float = 0.0,
    hazard: float = 0.03,
    visit_every: float = 0.5,
    follow_up: float = 10.0,
    centre_effects: bool = True,
    seed: int | None = None,
) -> SimulatedJoint:
    """Simulate visits and survival with dropout driven by the current value.

    Parameters
    ----------
    n_subjects : int
        Subjects, half of them treated (``trt`` 1).
    intercept, slope, trt_slope : float
        The outcome's population intercept, slope in time and treatment-by-time slope.
    sd_intercept, sd_slope, sigma : float
        SDs of the random intercepts and slopes (independent) and of the measurement error.
    alpha : float
        Log hazard ratio per unit of the current true value (above the population
        intercept).
    trt_hazard : float
        Log hazard ratio of treatment.
    hazard : float
        The hazard of an untreated subject at the population intercept.
    visit_every, follow_up : float
        Visit spacing and administrative censoring time.
    centre_effects : bool
        Centre the random effects on their sample means, so that the data's mean slope is
        the population's (recovery tests then compare with the population value).
    seed : int, optional
    """
    if n_subjects < 2 or visit_every <= 0 or follow_up <= 0 or hazard <= 0:
        raise ValueError(
            "n_subjects must be at least 2 and visit_every, follow_up and hazard positive."
        )
    rng = np.random.default_rng(seed)
    u0 = rng.normal(0, sd_intercept, n_subjects)
    u1 = rng.normal(0, sd_slope, n_subjects)
    if centre_effects:
        u0, u1 = u0 - u0.mean(), u1 - u1.mean()
    trt = np.zeros(n_subjects, dtype=np.int64)
    trt[rng.permutation(n_subjects)[: n_subjects // 2]] = 1
    # hazard λ·exp(γ·trt + α·(u0 + (slope + trt_slope·trt + u1)·t)) = c·exp(k·t)
    c = hazard * np.exp(trt_hazard * trt + alpha * u0)
    k = alpha * (slope + trt_slope * trt + u1)
    e = rng.exponential(size=n_subjects)
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = 1.0 + k * e / c
        t_event = np.where(np.abs(k) < 1e-12, e / c, np.where(arg > 0, np.log(arg) / k, np.inf))
    stop = np.minimum(t_event, follow_up)
    event = (t_event <= follow_up).astype(np.int64)
    stop = np.maximum(stop, 1e-3)
    ids = [f"p{i:0{len(str(n_subjects))}d}" for i in range(n_subjects)]
    visits = []
    for i in range(n_subjects):
        times = np.arange(0.0, stop[i], visit_every)
        mean = intercept + u0[i] + (slope + trt_slope * trt[i] + u1[i]) * times
        y = mean + rng.normal(0, sigma, times.size)
        visits.append(pd.DataFrame({"id": ids[i], "time": times, "y": y, "trt": int(trt[i])}))
    long = pd.concat(visits, ignore_index=True)
    surv = pd.DataFrame({"id": ids, "stop": stop, "event": event, "trt": trt})
    formula = "y ~ time + time:trt + (time | id)" if trt_slope else "y ~ time + (time | id)"
    hazard_rhs = "trt" if trt_hazard else "1"
    spec = {
        "kind": "joint",
        "subject": "id",
        "time": "time",
        "longitudinal": {"y": formula},
        "survival": {"formula": f"Surv(stop, event) ~ {hazard_rhs}", "baseline": "weibull"},
    }
    params = {
        "b_y[Intercept]": intercept,
        "b_y[time]": slope,
        "sd_id[y:Intercept]": sd_intercept,
        "sd_id[y:time]": sd_slope,
        "sigma_y": sigma,
        "alpha[y:value]": alpha,
        "shape": 1.0,
    }
    if trt_slope:
        params["b_y[time:trt]"] = trt_slope
    if trt_hazard:
        params["b_event[trt]"] = trt_hazard
    effects = pd.DataFrame({"Intercept": u0, "time": u1}, index=pd.Index(ids, name="id"))
    return SimulatedJoint({"longitudinal": long, "survival": surv}, params, effects, spec)
