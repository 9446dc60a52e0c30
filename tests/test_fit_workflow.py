"""Fitting end to end: parametrizations agree, recovery on simulated data, the Fit object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_posterior, clustered_data, frame_hash, quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow


def covers(fit: mb.Fit, truth: dict[str, float], prob: float = 0.99) -> None:
    table = fit.summary(prob=prob).set_index("parameter")
    for name, value in truth.items():
        lo, hi = table.loc[name, "lower"], table.loc[name, "upper"]
        assert lo <= value <= hi, (name, value, lo, hi)


def test_marginalised_and_plain_noncentred_give_the_same_posterior(
    sleep_fit: mb.Fit, sleepstudy: pd.DataFrame
) -> None:
    """sleep_fit integrates the subject effects out and draws r_Subject afterwards; the plain
    non-centred model samples them jointly: same posterior, r included."""
    assert sleep_fit.idata["posterior"].attrs["marginalization"].startswith("integrated out")
    nc = quiet_fit(
        mb.LMM("Reaction ~ Days + (Days | Subject)", parametrization="noncentered"),
        sleepstudy,
        seed=21,
        marginalize=False,
    )
    assert "z_Subject" in nc.posterior and "z_Subject" not in sleep_fit.posterior
    assert_same_posterior(sleep_fit, nc)
    a = sleep_fit.summary().set_index("parameter")
    b = nc.summary().set_index("parameter")
    for name in a.index:
        assert abs(a.loc[name, "sd"] / b.loc[name, "sd"] - 1) < 0.15, name
    ra = sleep_fit.posterior["r_Subject"].mean(("chain", "draw"))
    rb = nc.posterior["r_Subject"].mean(("chain", "draw"))
    assert float(abs(ra - rb).max()) < 0.1 * float(sleep_fit.posterior["sd_Subject"].mean())


def test_three_level_recovery_with_treatment_by_time() -> None:
    sim = mb.simulate.lmm(
        n_clinics=10, patients_per_clinic=8, n_times=6, missing_response=0.03, seed=33
    )
    before = frame_hash(sim.data)
    spec = mb.LMM(
        "y ~ trt * time + age * time + dose + (1 | clinic/patient) + (0 + time | clinic:patient)"
    )
    with pytest.warns(mb.DataWarning, match="missing response"):
        fit = mb.fit(spec, sim.data, draws=500, tune=700, chains=4, seed=32)
    assert frame_hash(sim.data) == before
    assert fit.design.report.rows_dropped == int(sim.data["y"].isna().sum()) > 0
    truth = {f"b[{k}]": v for k, v in sim.params["b"].items()}
    truth["sigma"] = sim.params["sigma"]
    truth["sd_clinic[Intercept]"] = sim.params["sd_clinic"]["Intercept"]
    truth["sd_clinic:patient[Intercept]"] = sim.params["sd_clinic:patient"]["Intercept"]
    truth["sd_clinic:patient[time]"] = sim.params["sd_clinic:patient"]["time"]
    covers(fit, truth)
    assert fit.posterior["r_clinic:patient"].sizes["clinic:patient"] == 80
    # patient effects track the realised ones
    est = (
        fit.posterior["r_clinic:patient"]
        .sel({"clinic:patient_term": "Intercept"})
        .mean(("chain", "draw"))
    )
    real = sim.effects["clinic:patient"].loc[list(est["clinic:patient"].to_numpy())].iloc[:, 0]
    assert np.corrcoef(est.to_numpy(), real.to_numpy())[0, 1] > 0.8


def test_crossed_recovery() -> None:
    sim = mb.simulate.crossed(n_subjects=30, n_items=20, reps=2, seed=41)
    fit = quiet_fit(mb.LMM(sim.formula), sim.data, draws=500, chains=4, seed=42)
    truth = {f"b[{k}]": v for k, v in sim.params["b"].items()}
    truth["sd_subject[Intercept]"] = sim.params["sd_subject"]["Intercept"]
    truth["sd_item[Intercept]"] = sim.params["sd_item"]["Intercept"]
    truth["sigma"] = sim.params["sigma"]
    covers(fit, truth)


def test_fit_object(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    tree = sleep_fit.idata
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(tree.children)
    assert tree["log_likelihood"]["Reaction"].shape == (4, 1000, 180)
    post = sleep_fit.posterior
    assert list(post["r_Subject"]["Subject"].to_numpy()[:2]) == ["308", "309"]
    assert post["sd_Subject"].dims == ("chain", "draw", "Subject_term")
    table = sleep_fit.summary()
    assert list(table.columns) == [
        "parameter",
        "class",
        "group",
        "term",
        "mean",
        "sd",
        "median",
        "lower",
        "upper",
        "rhat",
        "ess_bulk",
        "ess_tail",
        "mcse_mean",
    ]
    assert len(sleep_fit.summary(include_group_levels=True)) == len(table) + 36
    assert "half-Student-t" in str(sleep_fit.priors)
    assert sleep_fit.timings["compile_seconds"] > 0

    path = sleep_fit.save(tmp_path / "fit")
    back = mb.load(path)
    assert back.spec == sleep_fit.spec
    assert set(back.idata.children) == set(tree.children)
    for group in tree.children:
        a, b = tree[group].to_dataset(), back.idata[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            if a[name].dtype != object:
                np.testing.assert_array_equal(a[name].to_numpy(), b[name].to_numpy())
        for dim in a.coords:
            assert list(map(str, a[dim].to_numpy())) == list(map(str, b[dim].to_numpy()))
    new = pd.DataFrame({"Days": [0, 9, 3], "Subject": ["308", "372", "999"]})
    p1 = sleep_fit.predict(new, new_groups="population")
    p2 = back.predict(new, new_groups="population")
    np.testing.assert_array_equal(p1.to_numpy(), p2.to_numpy())
    with pytest.raises(mb.DataError, match="999"):
        back.predict(new)
    r1 = sleep_fit.predict(new.iloc[:2], kind="response", seed=5)
    r2 = back.predict(new.iloc[:2], kind="response", seed=5)
    np.testing.assert_array_equal(r1.to_numpy(), r2.to_numpy())


def test_pymc_sampler_and_posterior_predictive(sleepstudy: pd.DataFrame) -> None:
    """The pymc backend; (1 | Subject): SD 37.12, sigma 30.99 (lme4 REML)."""
    fit = quiet_fit(
        mb.LMM("Reaction ~ Days + (1 | Subject)"),
        sleepstudy,
        sampler="pymc",
        draws=500,
        chains=2,
        seed=51,
        posterior_predictive=True,
    )
    assert fit.idata["posterior"].attrs["sampler"] == "pymc"
    assert fit.idata["posterior_predictive"]["Reaction"].shape == (2, 500, 180)
    table = fit.summary(prob=0.9).set_index("parameter")
    assert abs(table.loc["sd_Subject[Intercept]", "median"] / 37.12 - 1) < 0.35
    assert abs(table.loc["sigma", "median"] / 30.99 - 1) < 0.2


def test_hierarchical_centring_with_a_between_patient_covariate() -> None:
    """Random intercepts plus a covariate constant within patient (trt): the centred block is
    centred on Intercept + trt, giving the non-centred posterior with far better mixing."""
    data = clustered_data()
    spec = "y ~ trt + time + (1 | patient)"
    centred = quiet_fit(
        mb.LMM(spec, parametrization="centered"), data, chains=2, seed=93, marginalize=False
    )
    plain = quiet_fit(
        mb.LMM(spec, parametrization="noncentered"),
        data,
        draws=3000,
        chains=2,
        seed=94,
        marginalize=False,
    )
    assert "beta_patient" in centred.posterior
    gates = centred.diagnose()
    assert gates["ess_bulk"].status == "pass" and gates["rhat"].status == "pass"
    assert_same_posterior(centred, plain)
