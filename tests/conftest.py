"""Shared fixtures: data, and fits shared across tests (compilation dominates small fits)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "refdata"
READ_ONLY = SHARED / "read-only"


def frame_hash(df: pd.DataFrame) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Content, columns and dtypes of a frame (to show it was not mutated)."""
    content = int(pd.util.hash_pandas_object(df, index=True).sum())
    return content, tuple(map(str, df.columns)), tuple(map(str, df.dtypes))


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return mb.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    path = READ_ONLY / "radon_HLMdiag.csv"
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    return pd.read_csv(path)


def theoph_subjects(n: int) -> pd.DataFrame:
    """The first ``n`` subjects of the theophylline data (a small PK data set)."""
    df = mb.datasets.load("theoph")
    return df[df["Subject"].astype(str).isin([str(i) for i in range(1, n + 1)])].copy()


def quiet_fit(spec: object, data: pd.DataFrame, **kwargs: object) -> mb.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return mb.fit(spec, data, **kwargs)  # type: ignore[arg-type]


def assert_same_posterior(first: mb.Fit, second: mb.Fit, *, sd_slack: float = 0.0) -> None:
    """Every summary parameter's mean agrees within 4 Monte Carlo SEs (plus ``sd_slack`` × sd)."""
    a = first.summary().set_index("parameter")
    b = second.summary().set_index("parameter")
    for name in a.index:
        mc = float(np.hypot(a.loc[name, "mcse_mean"], b.loc[name, "mcse_mean"]))
        tol = 4 * mc + sd_slack * abs(float(a.loc[name, "sd"])) + 1e-9
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) <= tol, name


def assert_save_load_round_trip(fit: mb.Fit, path: Path) -> mb.Fit:
    """Save ``fit`` under ``path``, load it back, and check the spec and the in-sample mean
    predictions survive; returns the loaded fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.save(path)
        again = mb.load(path)
    assert again.spec == fit.spec
    np.testing.assert_allclose(
        again.predict(None, kind="mean").to_numpy(), fit.predict(None, kind="mean").to_numpy()
    )
    return again


def clustered_data() -> pd.DataFrame:
    """Strongly clustered patients with a between-patient treatment (naive-vs-mixed data)."""
    return mb.simulate.lmm(
        n_clinics=5,
        patients_per_clinic=8,
        n_times=6,
        sd_clinic=0.1,
        sd_patient=(1.5, 0.0),
        cor_patient=0.0,
        seed=91,
    ).data


@pytest.fixture(scope="session")
def sleep_fit(sleepstudy: pd.DataFrame) -> mb.Fit:
    """sleepstudy, correlated intercept and slope, 4 chains x 1000 (reference tolerances)."""
    spec = mb.load_spec(Path(__file__).resolve().parents[1] / "models" / "sleepstudy.yaml")
    return quiet_fit(spec, sleepstudy, draws=1000, tune=1000, chains=4, seed=11)


def count_data() -> pd.DataFrame:
    """Poisson counts: 6 groups x 8 rows, a numeric and a text covariate, one row with a
    missing response (dropped, with a DataWarning)."""
    rng = np.random.default_rng(21)
    g = np.repeat(np.arange(6), 8)
    x = rng.normal(size=len(g))
    arm = np.where(np.arange(len(g)) % 2 == 0, "ctl", "trt")
    eta = 0.5 + 0.4 * x + 0.3 * (arm == "trt") + rng.normal(0, 0.4, 6)[g]
    count = rng.poisson(np.exp(eta)).astype(float)
    count[5] = np.nan
    return pd.DataFrame({"count": count, "x": x, "arm": arm, "g": [f"g{i}" for i in g]})


@pytest.fixture(scope="session")
def count_small_fit() -> mb.Fit:
    """A small Poisson GLMM (1 chain x 100 draws): for checks that need a GLMM fit, not
    good estimates."""
    spec = mb.GLMM("count ~ x + arm + (1 | g)", "poisson")
    return quiet_fit(spec, count_data(), draws=100, tune=200, chains=1, seed=5)


EVENT_SPEC: dict[str, object] = {
    "kind": "nonlinear",
    "model": "oral_1cmt_ke",
    "parameters": {"log_KE": "1", "log_KA": "1", "log_CL": "1 + (1 | ID)"},
    "response": "DV",
    "time": "TIME",
    "subject": "ID",
    "dosing": {"events": {"id": "ID", "time": "TIME", "amt": "AMT", "evid": "EVID", "dv": "DV"}},
    "priors": [
        {"class": "b", "coef": "Intercept", "nlpar": "log_KE", "prior": "normal(-2.5, 1)"},
        {"class": "b", "coef": "Intercept", "nlpar": "log_KA", "prior": "normal(0.5, 1)"},
        {"class": "b", "coef": "Intercept", "nlpar": "log_CL", "prior": "normal(-3, 1)"},
        {"class": "sd", "group": "ID", "prior": "normal(0, 0.5)"},
    ],
}


def theoph_events(n: int) -> pd.DataFrame:
    """The first ``n`` theophylline subjects as a NONMEM-style event table: one dose record
    (EVID 1) per subject at time 0, then the observations after it (EVID 0)."""
    df = theoph_subjects(n)
    df["Subject"] = df["Subject"].astype(str)
    first = df.groupby("Subject", sort=False).first().reset_index()
    doses = pd.DataFrame(
        {"ID": first["Subject"], "TIME": 0.0, "AMT": first["Dose"], "EVID": 1, "DV": np.nan}
    )
    obs = df[df["Time"] > 0]
    observations = pd.DataFrame(
        {"ID": obs["Subject"], "TIME": obs["Time"], "AMT": 0.0, "EVID": 0, "DV": obs["conc"]}
    )
    events = pd.concat([doses, observations]).sort_values(["ID", "TIME", "EVID"], kind="stable")
    return events.reset_index(drop=True)


@pytest.fixture(scope="session")
def event_table_fit() -> mb.Fit:
    """One-compartment PK from an event table, 4 subjects, 1 chain x 100 draws."""
    return quiet_fit(EVENT_SPEC, theoph_events(4), draws=100, tune=200, chains=1, seed=4)
