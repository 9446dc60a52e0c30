"""Tests of the simulators with known parameters (mixedbayes.simulate)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixedbayes.simulate import DEFAULT_BETA, SimulatedData, crossed, lmm

LMM_COLUMNS = ["y", "time", "trt", "age", "dose", "clinic", "patient"]
TERMS = ["Intercept", "time", "trt", "trt:time", "age", "age:time", "dose"]


def _design(data: pd.DataFrame) -> np.ndarray:
    """Fixed-effects design matrix, columns in the order of TERMS."""
    t = data["time"].to_numpy(float)
    trt = data["trt"].to_numpy(float)
    age = data["age"].to_numpy(float)
    dose = data["dose"].to_numpy(float)
    return np.column_stack([np.ones_like(t), t, trt, trt * t, age, age * t, dose])


def _linear_predictor(sim: SimulatedData) -> np.ndarray:
    """Rebuild eta from the data, the true fixed effects and the realised random effects."""
    data = sim.data
    b = np.array([sim.params["b"][term] for term in TERMS])
    eta = _design(data) @ b
    eta += sim.effects["clinic"]["Intercept"].reindex(data["clinic"].astype(str)).to_numpy()
    nested = data["clinic"].astype(str) + ":" + data["patient"].astype(str)
    patient = sim.effects["clinic:patient"].reindex(nested)
    eta += patient["Intercept"].to_numpy() + patient["time"].to_numpy() * data["time"]
    if "rater" in data:
        eta += sim.effects["rater"]["Intercept"].reindex(data["rater"].astype(str)).to_numpy()
    return np.asarray(eta, dtype=float)


def _assert_same(a: SimulatedData, b: SimulatedData) -> None:
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.params == b.params
    assert a.formula == b.formula
    assert a.effects.keys() == b.effects.keys()
    for key in a.effects:
        pd.testing.assert_frame_equal(a.effects[key], b.effects[key])


# --------------------------------------------------------------------------- lmm


def test_same_seed_gives_identical_data() -> None:
    kwargs: dict[str, Any] = {"crossed": 4, "unbalanced": True, "missing_response": 0.1}
    _assert_same(lmm(seed=123, **kwargs), lmm(seed=123, **kwargs))


def test_different_seeds_give_different_data() -> None:
    a, b = lmm(seed=1), lmm(seed=2)
    assert not np.allclose(a.data["y"], b.data["y"])
    assert not np.allclose(a.effects["clinic"], b.effects["clinic"])


def test_default_shape_columns_and_types() -> None:
    sim = lmm(seed=0)
    data = sim.data
    assert isinstance(sim, SimulatedData)
    assert data.shape == (10 * 10 * 6, 7)
    assert list(data.columns) == LMM_COLUMNS
    assert data["y"].notna().all()
    assert data["time"].dtype == np.int64
    assert data["trt"].dtype == np.int64
    assert sorted(data["time"].unique()) == list(range(6))
    assert set(data["trt"].unique()) == {0, 1}
    for col in ("age", "dose", "y"):
        assert data[col].dtype == np.float64
    for col in ("clinic", "patient"):
        assert isinstance(data[col].dtype, pd.CategoricalDtype)
    assert list(data["clinic"].cat.categories) == [f"c{i:02d}" for i in range(1, 11)]
    assert data["patient"].iloc[0] == "c01p01"
    assert sim.formula == (
        "y ~ trt * time + age * time + dose + (1 | clinic) + (1 + time | clinic:patient)"
    )
    assert set(sim.params) == {
        "b",
        "sd_clinic",
        "sd_clinic:patient",
        "cor_clinic:patient",
        "sigma",
    }
    assert sim.params["b"] == dict(DEFAULT_BETA)
    assert sim.params["sd_clinic"] == {"Intercept": 0.5}
    assert sim.params["sd_clinic:patient"] == {"Intercept": 1.0, "time": 0.3}
    assert sim.params["cor_clinic:patient"] == 0.2
    assert sim.params["sigma"] == 0.5
    assert set(sim.effects) == {"clinic", "clinic:patient"}


def test_patients_are_nested_in_clinics() -> None:
    sim = lmm(n_clinics=7, patients_per_clinic=5, n_times=4, seed=3)
    data = sim.data
    clinics_per_patient = data.groupby("patient", observed=True)["clinic"].nunique()
    assert clinics_per_patient.eq(1).all()
    assert data["patient"].nunique() == 7 * 5
    assert data.groupby("clinic", observed=True)["patient"].nunique().eq(5).all()
    for clinic, patient in data[["clinic", "patient"]].drop_duplicates().itertuples(index=False):
        assert patient.startswith(clinic)
    nested = (data["clinic"].astype(str) + ":" + data["patient"].astype(str)).unique()
    assert list(sim.effects["clinic:patient"].index) == list(nested)
    assert sim.effects["clinic:patient"].index[0] == "c01:c01p01"
    assert list(sim.effects["clinic:patient"].columns) == ["Intercept", "time"]
    assert list(sim.effects["clinic"].index) == list(data["clinic"].cat.categories)


def test_patient_level_covariates() -> None:
    data = lmm(n_clinics=6, patients_per_clinic=8, seed=4).data
    per_patient = data.groupby("patient", observed=True)
    assert per_patient["trt"].nunique().eq(1).all()
    assert per_patient["age"].nunique().eq(1).all()
    assert (per_patient["dose"].nunique() > 1).all()
    # Treatment is balanced within clinic.
    patients = data.drop_duplicates("patient")
    assert patients.groupby("clinic", observed=True)["trt"].sum().eq(4).all()


def test_crossed_raters() -> None:
    sim = lmm(n_clinics=3, patients_per_clinic=4, crossed=5, sd_crossed=0.7, seed=5)
    data = sim.data
    assert list(data.columns) == [*LMM_COLUMNS, "rater"]
    assert list(data["rater"].cat.categories) == ["r01", "r02", "r03", "r04", "r05"]
    assert sim.formula.endswith("(1 + time | clinic:patient) + (1 | rater)")
    assert sim.params["sd_rater"] == {"Intercept": 0.7}
    assert list(sim.effects["rater"].index) == ["r01", "r02", "r03", "r04", "r05"]
    # Raters are crossed with patients: patients see several raters, raters several patients.
    assert data.groupby("patient", observed=True)["rater"].nunique().max() > 1
    assert data.groupby("rater", observed=True)["patient"].nunique().min() > 1


def test_unbalanced_gives_varying_visit_counts() -> None:
    data = lmm(n_clinics=5, patients_per_clinic=10, n_times=8, unbalanced=True, seed=6).data
    visits = data.groupby("patient", observed=True)["time"].agg(["size", "max"])
    assert visits["size"].nunique() > 1
    assert visits["size"].min() >= 2
    assert visits["size"].max() <= 8
    # Each patient keeps its first visits.
    assert (visits["max"] == visits["size"] - 1).all()
    assert data["patient"].nunique() == 50


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_missing_response_fraction(fraction: float) -> None:
    sim = lmm(missing_response=fraction, seed=7)
    full = lmm(seed=7)
    missing = sim.data["y"].isna()
    assert missing.mean() == pytest.approx(fraction, abs=1 / len(missing))
    # Only y is blanked; the covariates and the observed y are those of the complete data.
    pd.testing.assert_frame_equal(sim.data.drop(columns="y"), full.data.drop(columns="y"))
    np.testing.assert_array_equal(sim.data["y"][~missing], full.data["y"][~missing])


def test_effects_and_params_rebuild_the_data_exactly() -> None:
    sim = lmm(n_clinics=4, patients_per_clinic=5, crossed=3, sigma=0.0, seed=8)
    np.testing.assert_allclose(sim.data["y"].to_numpy(), _linear_predictor(sim), atol=1e-12)


def test_beta_updates_the_defaults() -> None:
    sim = lmm(beta={"time": 2.0, "time:trt": 1.5}, seed=9)
    expected = dict(DEFAULT_BETA) | {"time": 2.0, "trt:time": 1.5}
    assert sim.params["b"] == expected


def test_unknown_beta_term_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="beta") as excinfo:
        lmm(beta={"time": 1.0, "slope": 2.0})
    message = str(excinfo.value)
    assert "slope" in message
    for term in TERMS:
        assert term in message


def test_ols_recovers_the_fixed_effects() -> None:
    """OLS is unbiased here: the random effects are independent of the covariates.

    Its sampling error is judged by a cluster-robust (CR0, by clinic) standard error, which
    accounts for the clinic, patient and slope effects; with 60 clinics and 1,440 patients
    every coefficient must lie within 4 such SEs of the truth (a two-sided normal tail of
    6e-5 per coefficient, and the seed is fixed). The SEs are checked to be small, so that
    the test has teeth.
    """
    sim = lmm(n_clinics=60, patients_per_clinic=24, n_times=6, seed=2024)
    data = sim.data
    x = _design(data)
    y = data["y"].to_numpy()
    xtx_inv = np.linalg.inv(x.T @ x)
    coef = xtx_inv @ x.T @ y
    resid = y - x @ coef
    meat = np.zeros((x.shape[1], x.shape[1]))
    for rows in data.groupby("clinic", observed=True).indices.values():
        score = x[rows].T @ resid[rows]
        meat += np.outer(score, score)
    se = np.sqrt(np.diag(xtx_inv @ meat @ xtx_inv))
    truth = np.array([sim.params["b"][term] for term in TERMS])
    assert se[TERMS.index("time")] < 0.03
    assert se[TERMS.index("trt:time")] < 0.05
    assert se[TERMS.index("dose")] < 0.04
    z = (coef - truth) / se
    assert np.all(np.abs(z) < 4), dict(zip(TERMS, z.round(2), strict=True))


def test_realised_effects_and_residuals_match_the_true_sds() -> None:
    """Sample SDs of n draws have relative SE ~ 1/sqrt(2n); allow 4 of those."""
    sim = lmm(n_clinics=40, patients_per_clinic=50, n_times=5, cor_patient=0.5, seed=11)
    patient = sim.effects["clinic:patient"]
    n = len(patient)
    tol = 4 / math.sqrt(2 * n)
    sds = sim.params["sd_clinic:patient"]
    assert patient["Intercept"].std() == pytest.approx(sds["Intercept"], rel=tol)
    assert patient["time"].std() == pytest.approx(sds["time"], rel=tol)
    # SE of a correlation ~ (1 - r**2) / sqrt(n).
    cor = patient["Intercept"].corr(patient["time"])
    assert cor == pytest.approx(0.5, abs=4 * (1 - 0.25) / math.sqrt(n))
    resid = sim.data["y"].to_numpy() - _linear_predictor(sim)
    m = resid.size
    assert resid.std() == pytest.approx(sim.params["sigma"], rel=4 / math.sqrt(2 * m))
    assert abs(resid.mean()) < 4 * sim.params["sigma"] / math.sqrt(m)


def test_zero_sds_remove_the_random_effects() -> None:
    sim = lmm(sd_clinic=0.0, sd_patient=(0.0, 0.0), sigma=0.0, seed=12)
    assert np.all(sim.effects["clinic"].to_numpy() == 0)
    assert np.all(sim.effects["clinic:patient"].to_numpy() == 0)
    np.testing.assert_allclose(sim.data["y"], _design(sim.data) @ list(DEFAULT_BETA.values()))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_clinics": 0}, "n_clinics"),
        ({"n_clinics": 2.5}, "n_clinics"),
        ({"n_clinics": True}, "n_clinics"),
        ({"patients_per_clinic": 0}, "patients_per_clinic"),
        ({"n_times": 0}, "n_times"),
        ({"n_times": 2, "unbalanced": True}, "n_times"),
        ({"sd_clinic": -0.1}, "sd_clinic"),
        ({"sd_clinic": float("nan")}, "sd_clinic"),
        ({"sd_patient": (1.0,)}, "sd_patient"),
        ({"sd_patient": (1.0, -0.3)}, "sd_patient"),
        ({"sd_patient": 1.0}, "sd_patient"),
        ({"cor_patient": 1.0}, "cor_patient"),
        ({"cor_patient": -1.2}, "cor_patient"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": float("inf")}, "sigma"),
        ({"crossed": -1}, "crossed"),
        ({"sd_crossed": -0.4}, "sd_crossed"),
        ({"missing_response": 1.0}, "missing_response"),
        ({"missing_response": -0.1}, "missing_response"),
        ({"seed": -5}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"beta": {"Intercept": "ten"}}, "beta"),
        ({"beta": [1.0, 2.0]}, "beta"),
    ],
)
def test_lmm_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=re.escape(argument)):
        lmm(**kwargs)


# --------------------------------------------------------------------------- crossed


def test_crossed_design() -> None:
    sim = crossed(n_subjects=6, n_items=4, reps=3, seed=1)
    data = sim.data
    assert data.shape == (6 * 4 * 3, 4)
    assert list(data.columns) == ["y", "x", "subject", "item"]
    assert isinstance(data["subject"].dtype, pd.CategoricalDtype)
    assert isinstance(data["item"].dtype, pd.CategoricalDtype)
    assert list(data["subject"].cat.categories) == [f"s{i:02d}" for i in range(1, 7)]
    assert list(data["item"].cat.categories) == ["i01", "i02", "i03", "i04"]
    assert data.groupby(["subject", "item"], observed=True).size().eq(3).all()
    assert sim.formula == "y ~ x + (1 | subject) + (1 | item)"
    assert sim.params == {
        "b": {"Intercept": 1.0, "x": 0.5},
        "sd_subject": {"Intercept": 0.6},
        "sd_item": {"Intercept": 0.4},
        "sigma": 0.5,
    }
    assert set(sim.effects) == {"subject", "item"}
    assert list(sim.effects["subject"].index) == list(data["subject"].cat.categories)
    assert list(sim.effects["item"].index) == list(data["item"].cat.categories)
    assert sim.effects["subject"].index.name == "subject"
    assert sim.effects["item"].index.name == "item"


def test_crossed_is_reproducible_and_rebuilds_exactly() -> None:
    _assert_same(crossed(seed=5), crossed(seed=5))
    assert not np.allclose(crossed(seed=5).data["y"], crossed(seed=6).data["y"])
    sim = crossed(n_subjects=5, n_items=7, reps=1, beta0=2.0, beta_x=-1.0, sigma=0.0, seed=3)
    data = sim.data
    eta = (
        2.0
        - 1.0 * data["x"].to_numpy()
        + sim.effects["subject"]["Intercept"].reindex(data["subject"].astype(str)).to_numpy()
        + sim.effects["item"]["Intercept"].reindex(data["item"].astype(str)).to_numpy()
    )
    np.testing.assert_allclose(data["y"].to_numpy(), eta, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_items": 0}, "n_items"),
        ({"reps": 0}, "reps"),
        ({"sd_subject": -1.0}, "sd_subject"),
        ({"sd_item": -1.0}, "sd_item"),
        ({"sigma": -1.0}, "sigma"),
        ({"beta_x": float("nan")}, "beta_x"),
        ({"seed": -1}, "seed"),
    ],
)
def test_crossed_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=re.escape(argument)):
        crossed(**kwargs)
