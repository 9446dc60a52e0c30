"""The joint model's hazard in NumPy (``results/joint_hazard.py``): each survival row's
log-likelihood against the baselines' own cumulative hazards, event times simulated from it
against a closed form, LOO's per-subject sums, the lag and kept visits. No sampling."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import mixedbayes as mb
from mixedbayes.errors import DataError, SpecError
from mixedbayes.naming import Names
from mixedbayes.results.joint_hazard import (
    hazard_variables,
    log_hazard,
    simulate_event_times,
    survival_log_likelihood,
)


def _design(spec: dict[str, Any], data: dict[str, pd.DataFrame]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.design(spec, data)


def _one_draw(values: dict[str, np.ndarray]) -> xr.Dataset:
    """A posterior of one chain and one draw."""
    return xr.Dataset(
        {
            k: (
                ("chain", "draw", *(f"{k}_{i}" for i in range(np.ndim(v)))),
                np.asarray(v)[None, None],
            )
            for k, v in values.items()
        }
    )


@pytest.fixture(scope="module")
def sim() -> Any:
    return mb.simulate.joint(60, alpha=1.0, trt_hazard=0.5, hazard=0.05, seed=11)


def _baseline_values(design: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for p in design.baseline.params():
        if p.size:
            out[p.name] = rng.normal(-2.5, 0.3, p.size)
        elif p.positive:
            out[p.name] = np.array(1.3)
        else:
            out[p.name] = np.array(-2.5 if p.level else 0.05)
    return out


@pytest.mark.parametrize("baseline", ["weibull", "gompertz", "piecewise", "bspline"])
def test_survival_log_likelihood_matches_each_baselines_cumulative_hazard(
    sim: Any, baseline: str
) -> None:
    """With a time-constant predictor (``shared`` association) each row's log-likelihood is
    ``event (log h0(stop) + lin) − exp(lin) (H0(stop) − H0(start))``, H0 the baseline's own
    closed form or adaptive quadrature: the model's nodes agree with it."""
    from mixedbayes.survival import reference_log_likelihood

    spec = {
        **sim.spec,
        "survival": {"formula": "Surv(stop, event) ~ trt", "baseline": baseline},
        "association": {"y": ["shared"]},
    }
    design = _design(spec, sim.data)
    rng = np.random.default_rng(3)
    sub = design.structure(design.subject_factor)
    values = {
        Names.r(sub.name): rng.normal(0, 0.5, (sub.n_levels, len(sub.terms))),
        "alpha": np.array([0.8, -0.6]),
        Names("event").b: np.array([0.4]),
        Names("y").b: np.array([1.0, 0.2]),
        **_baseline_values(design, rng),
    }
    got = survival_log_likelihood(_one_draw(values), design)[0, 0]
    surv = design.survival
    lin = surv.X @ values["b_event"] + values["r_id"][surv.level] @ values["alpha"]
    theta = {p.name: values[p.name] for p in design.baseline.params()}
    expected = reference_log_likelihood(
        design.baseline, theta, surv.start, surv.stop, surv.event, lin
    )
    # The model's quadrature error: Weibull's t^(shape − 1) is not smooth at 0 (15 nodes:
    # within 1e-3); a cubic B-spline's exp has ~5 nodes per knot span (within 5e-3); a
    # Gompertz hazard is smooth and the piecewise one is split at its breaks (exact).
    rtol = {"weibull": 1e-3, "bspline": 5e-3}.get(baseline, 1e-8)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-8)
    assert hazard_variables(design) == sorted(k for k in values if k != "b_y")


def test_event_times_follow_the_hazard_in_closed_form(sim: Any) -> None:
    """A linear trajectory read by ``value`` under a constant baseline hazard has the
    cumulative hazard ``c/k (exp(k t) − 1)``: for simulated events ``F(T)/F(C)`` is uniform
    and the censored share is ``mean(1 − F(C))``."""
    design = _design(sim.spec, sim.data)
    sub = design.structure(design.subject_factor)
    effects = sim.effects.loc[list(sub.levels)].to_numpy()
    b = np.array([sim.params["b_y[Intercept]"], sim.params["b_y[time]"]])
    alpha, gamma, lam = 1.0, 0.5, 0.05
    values = {
        "b_y": b,
        "r_id": effects,
        "alpha": np.array([alpha]),
        "b_event": np.array([gamma]),
        "log_h0": np.array(np.log(lam) - alpha * b[0]),
        "shape": np.array(1.0),
    }
    surv = design.survival
    trt = surv.X[:, 0]
    u0, u1 = effects[surv.level, 0], effects[surv.level, 1]
    c = lam * np.exp(gamma * trt + alpha * u0)
    k = alpha * (b[1] + u1)

    def cdf(t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return 1 - np.exp(-c[rows] / k[rows] * np.expm1(k[rows] * t))

    rng = np.random.default_rng(5)
    u, censored, expected_censored = [], 0, 0.0
    for _ in range(40):
        stop, event = simulate_event_times(design, values, rng)
        assert (stop <= surv.stop + 1e-12).all() and (stop > 0).all()
        ev = event == 1
        u.append(cdf(stop[ev], ev) / cdf(surv.stop[ev], ev))
        censored += int((~ev).sum())
        expected_censored += float(np.sum(1 - cdf(surv.stop, np.ones(surv.n, bool))))
        np.testing.assert_array_equal(stop[~ev], surv.stop[~ev])
    assert stats.kstest(np.concatenate(u), "uniform").pvalue > 1e-3
    n = 40 * surv.n
    p = expected_censored / n
    assert abs(censored / n - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_log_hazard_reads_the_lagged_trajectory(sim: Any) -> None:
    """With ``lag: 1`` the hazard at t reads the outcome at max(t − 1, 0): the design's rows
    at the stop times are the unlagged design's rows at stop − 1."""
    plain = _design(sim.spec, sim.data)
    lagged = _design({**sim.spec, "lag": 1.0}, sim.data)
    surv = plain.survival
    shifted = plain.reading_at(
        plain.associations[0], np.maximum(surv.stop - 1.0, 0.0), surv.subject
    )
    np.testing.assert_allclose(lagged.associations[0].at_stop.X, shifted.X)
    values = {
        "b_y": np.array([1.0, 0.3]),
        "r_id": np.zeros((surv.n, 2)),
        "alpha": np.array([0.7]),
        "b_event": np.array([0.0]),
        "log_h0": np.array(-3.0),
        "shape": np.array(1.0),
    }
    readings = [lagged.associations[0].at_stop]
    got = log_hazard(lagged, values, surv.stop[:, None], readings)[:, 0]
    expected = -3.0 + 0.7 * (1.0 + 0.3 * np.maximum(surv.stop - 1.0, 0.0))
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    with pytest.raises(SpecError) as err:
        mb.load_spec({**sim.spec, "lag": -1})
    assert "lag" in str(err.value)


def test_visits_after_the_event_are_an_error_unless_kept(sim: Any) -> None:
    surv = sim.data["survival"].copy()
    surv["stop"] = surv["stop"] / 2
    data = {"longitudinal": sim.data["longitudinal"], "survival": surv}
    with pytest.raises(DataError) as err:
        _design(sim.spec, data)
    assert "visits_after_event" in str(err.value)
    kept = _design({**sim.spec, "visits_after_event": "keep"}, data)
    assert kept.outcomes["y"].n == len(sim.data["longitudinal"])


def test_loo_units_sum_each_subjects_rows() -> None:
    """LOO of a joint model leaves a subject out: its measurements of every outcome and its
    survival rows, summed."""
    from mixedbayes.kinds import kind_of

    sim = mb.simulate.joint(12, seed=2)
    spec = {**sim.spec, "longitudinal": {"y": "y ~ time + (time | id)", "z": "z ~ 1 + (1 | id)"}}
    long = sim.data["longitudinal"].assign(z=lambda d: d["y"] * 0.5 + 1)
    design = _design(spec, {"longitudinal": long, "survival": sim.data["survival"]})
    rng = np.random.default_rng(0)
    n_y, n_z, n_s = design.outcomes["y"].n, design.outcomes["z"].n, design.survival.n
    ll = xr.Dataset(
        {
            "y": (("chain", "draw", "observation_y"), rng.normal(size=(2, 3, n_y))),
            "z": (("chain", "draw", "observation_z"), rng.normal(size=(2, 3, n_z))),
            "event": (("chain", "draw", "observation_event"), rng.normal(size=(2, 3, n_s))),
        }
    )
    units = kind_of(mb.load_spec(spec)).loo_units(design, ll)
    assert units.name == "subject" and units.sizes["id"] == 12
    who = long["id"].astype(str).to_numpy()
    for j, subject in enumerate(units["id"].to_numpy()):
        expected = (
            ll["y"].to_numpy()[..., who[design.outcomes["y"].obs_index] == subject].sum(-1)
            + ll["z"].to_numpy()[..., who[design.outcomes["z"].obs_index] == subject].sum(-1)
            + ll["event"].to_numpy()[..., design.survival.subject == subject].sum(-1)
        )
        np.testing.assert_allclose(units.to_numpy()[..., j], expected)
