"""Recovery of a GLMM's latent AR(1) process by simulation (``residuals: ar1`` of a ``glmm``;
docs/residuals.md, "GLMMs: latent residual process").

Poisson counts of 40 subjects × 8 visits (a few visits dropped: gaps), ``log mu = 1 + 0.3 x
+ e``, ``e`` an AR(1) per subject with ``phi`` 0.6 and SD 0.5, simulated here by its
recursion. One small fit (2 chains × 300 draws) shared by the tests: the 90 % intervals of
``phi_ar`` and ``sigma_ar`` cover the truth; predictions, the pointwise log-likelihood (LOO)
and the implied covariance work on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow

PHI, SIGMA, INTERCEPT = 0.6, 0.5, 1.0


def simulate(
    seed: int = 11, n_subjects: int = 40, n_visits: int = 8, intercept: float = INTERCEPT
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        visits = np.arange(1, n_visits + 1)
        e = np.empty(n_visits)
        e[0] = SIGMA * rng.normal()
        for t in range(1, n_visits):
            e[t] = PHI * e[t - 1] + SIGMA * np.sqrt(1 - PHI**2) * rng.normal()
        keep = rng.random(n_visits) > 0.1  # gaps: the process runs on, the visit is missing
        for v, et in zip(visits[keep], e[keep], strict=True):
            x = rng.normal()
            rows.append({"id": f"s{s:02d}", "visit": int(v), "x": x, "y": 0.0, "e": et})
    df = pd.DataFrame(rows)
    df["y"] = rng.poisson(np.exp(intercept + 0.3 * df["x"] + df["e"]))
    return df.drop(columns="e")


SPEC = mb.GLMM("y ~ x", "poisson", residuals={"correlation": "ar1", "time": "visit", "group": "id"})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


@pytest.fixture(scope="module")
def fit(data: pd.DataFrame) -> mb.Fit:
    return quiet_fit(SPEC, data, draws=300, tune=300, chains=2, seed=3)


def test_phi_and_sigma_recovered(fit: mb.Fit) -> None:
    table = fit.summary(prob=0.9).set_index("parameter")
    for name, truth in (("phi_ar", PHI), ("sigma_ar", SIGMA)):
        row = table.loc[name]
        assert row["lower"] <= truth <= row["upper"], (name, row.to_dict())
        assert row["rhat"] < 1.05, (name, row.to_dict())
    assert abs(table.loc["b[x]", "mean"] - 0.3) < 0.15


def test_predictions_and_loo_carry_the_process(fit: mb.Fit, data: pd.DataFrame) -> None:
    e = fit.posterior["e_ar"].mean(("chain", "draw")).to_numpy()
    mean = fit.predict(data, kind="mean").mean(("chain", "draw")).to_numpy()
    population = fit.predict(data, kind="mean", level="population").mean(("chain", "draw"))
    # in-sample the process follows the counts: rows with e > 0 are predicted above the
    # fixed part
    y = data["y"].to_numpy()
    assert np.corrcoef(e, np.log1p(y))[0, 1] > 0.5
    assert np.corrcoef(mean, y)[0, 1] > np.corrcoef(population.to_numpy(), y)[0, 1]
    loo = fit.loo()
    assert np.isfinite(loo.elpd)
    cov = fit.residual_covariance(times=[1, 2, 3])
    phi = float(fit.posterior["phi_ar"].mean())
    assert cov.to_numpy()[0, 1] / cov.to_numpy()[0, 0] == pytest.approx(phi, abs=0.1)
