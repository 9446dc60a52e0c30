"""Longitudinal workflow on simulated data: predictions for new groups, hypotheses, slopes,
contrasts, and the naive pooled analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import clustered_data, quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow

FORMULA = "y ~ trt * time + age * time + (1 | clinic) + (1 + time | clinic:patient)"


@pytest.fixture(scope="module")
def nested_fit() -> mb.Fit:
    sim = mb.simulate.lmm(n_clinics=6, patients_per_clinic=6, n_times=5, sd_clinic=1.0, seed=61)
    return quiet_fit(
        mb.LMM("y ~ time + (1 | clinic/patient)"), sim.data, draws=500, chains=2, seed=62
    )


def arms_fit(interaction: float, seed: int) -> mb.Fit:
    sim = mb.simulate.lmm(
        n_clinics=4,
        patients_per_clinic=10,
        n_times=6,
        beta={"trt:time": interaction},
        seed=seed,
    )
    return quiet_fit(mb.LMM(FORMULA), sim.data, draws=500, chains=2, seed=seed + 1)


@pytest.fixture(scope="module")
def diverging() -> mb.Fit:
    return arms_fit(-0.6, 71)


@pytest.fixture(scope="module")
def parallel() -> mb.Fit:
    return arms_fit(0.0, 81)


def test_predictive_sd_nests(nested_fit: mb.Fit) -> None:
    """Known patient < new patient in a known clinic < new clinic."""
    data = nested_fit.design.data
    first = data.iloc[0]
    rows = pd.DataFrame(
        {
            "time": [2.0, 2.0, 2.0],
            "clinic": [first["clinic"], first["clinic"], "new-clinic"],
            "patient": [first["patient"], "new-patient", "new-patient-2"],
        }
    )
    pred = nested_fit.predict(rows, new_groups="sample", seed=3)
    sd = pred.std(("chain", "draw")).to_numpy()
    assert sd[0] < sd[1] < sd[2], sd
    # a new patient in a known clinic keeps that clinic's effect
    clinic_effect = float(nested_fit.posterior["r_clinic"].sel(clinic=str(first["clinic"])).mean())
    pop = nested_fit.predict(rows, level="population").mean(("chain", "draw")).to_numpy()
    mean = pred.mean(("chain", "draw")).to_numpy()
    assert abs((mean[1] - pop[1]) - clinic_effect) < 0.25 * abs(clinic_effect) + 0.1
    again = nested_fit.predict(rows, new_groups="sample", seed=3)
    np.testing.assert_array_equal(pred.to_numpy(), again.to_numpy())
    other = nested_fit.predict(rows, new_groups="sample", seed=4)
    assert not np.array_equal(pred.to_numpy(), other.to_numpy())
    r1 = nested_fit.predict(rows, kind="response", new_groups="sample", seed=9)
    r2 = nested_fit.predict(rows, kind="response", new_groups="sample", seed=9)
    np.testing.assert_array_equal(r1.to_numpy(), r2.to_numpy())
    assert float(r1.std(("chain", "draw"))[0]) > sd[0]


def test_level_selects_factors(nested_fit: mb.Fit) -> None:
    rows = nested_fit.design.data.iloc[:3]
    full = nested_fit.predict(rows).mean(("chain", "draw")).to_numpy()
    pop = nested_fit.predict(rows, level="population").mean(("chain", "draw")).to_numpy()
    clinic_only = nested_fit.predict(rows, level=["clinic"]).mean(("chain", "draw")).to_numpy()
    assert not np.allclose(full, pop) and not np.allclose(clinic_only, full)
    with pytest.raises(mb.SpecError, match="level"):
        nested_fit.predict(rows, level=["ward"])
    with pytest.raises(mb.DataError, match="new-clinic"):
        nested_fit.predict(rows.assign(clinic="new-clinic"))


def test_interaction_excludes_zero_when_arms_diverge(diverging: mb.Fit) -> None:
    h = diverging.hypothesis("trt:time < 0").iloc[0]
    assert h["excludes_zero"] and h["post_prob"] > 0.99 and h["upper"] < 0
    s = diverging.slopes("time", by="trt", compare=True)
    assert len(s) == 3
    diff = s.iloc[2]
    assert diff["upper"] < 0
    # the slope difference between arms is the interaction coefficient (linear model)
    coef = float(diverging.posterior["b"].sel(term="trt:time").mean())
    assert diff["estimate"] == pytest.approx(coef, abs=1e-3)


def test_interaction_covers_zero_when_parallel(parallel: mb.Fit) -> None:
    h = parallel.hypothesis(["trt:time < 0", "trt:time = 0"], rope=(-0.1, 0.1))
    assert h.iloc[0]["lower"] < 0 < h.iloc[0]["upper"]
    assert 0.025 < h.iloc[0]["post_prob"] < 0.975
    assert h.iloc[1]["p_in_rope"] > 0.5
    s = parallel.slopes("time", by="trt", compare=True)
    assert s.iloc[2]["lower"] < 0 < s.iloc[2]["upper"]


def test_cross_level_interaction(diverging: mb.Fit) -> None:
    """A baseline covariate (age) modifying the time slope: slopes by age quantiles."""
    s = diverging.slopes("time", by="age", compare=True)
    ages = diverging.design.data["age"].quantile([0.1, 0.5, 0.9]).to_numpy()
    coef = float(diverging.posterior["b"].sel(term="age:time").mean())
    last = s.iloc[-1]
    assert last["estimate"] == pytest.approx(coef * (ages[2] - ages[0]), abs=1e-3)
    h = diverging.hypothesis("age:time > 0").iloc[0]
    assert h["estimate"] == pytest.approx(coef)
    c = diverging.contrasts("trt", [0, 1], by="time")
    assert len(c) == diverging.design.data["time"].nunique()


def test_hypothesis_errors(parallel: mb.Fit) -> None:
    with pytest.raises(mb.SpecError, match="comparison"):
        parallel.hypothesis("trt:time")
    with pytest.raises(mb.SpecError, match=r"'bogus'.*the fixed effects are"):
        parallel.hypothesis("bogus < 0")
    with pytest.raises(mb.SpecError):
        parallel.hypothesis("__import__('os') < 0")
    ok = parallel.hypothesis("sd_clinic:patient[time] > 0.1")
    assert ok.iloc[0]["estimate"] > 0


def test_naive_intervals_are_narrower_on_clustered_data() -> None:
    data = clustered_data()
    out = mb.compare_naive(
        mb.LMM("y ~ trt + time + (1 | patient)"), data, draws=500, chains=2, seed=92
    )
    eff = out.effects.set_index("parameter")
    for name in ("b[Intercept]", "b[trt]"):
        assert eff.loc[name, "width_ratio"] < 0.8, eff
    icc = out.icc.iloc[0]
    assert 0.5 < icc["icc"] < 1
    assert icc["design_effect"] == pytest.approx(1 + (icc["mean_cluster_size"] - 1) * icc["icc"])
    assert icc["effective_n"] < out.mixed.design.n / 2
    assert "naive" in str(out).lower()
