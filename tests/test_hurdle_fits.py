"""Recovery fits: a hurdle Poisson GLMM with ``hu: "~ x + (1 | g)"`` (40 groups × 10 rows) and
a zero-inflated Poisson GLMM in glmmTMB's Salamanders shape, ``zi: "~ spp + (1 | site)"``
(23 sites × 7 species × 4 visits, simulated: the data are not bundled).

One small fit per module fixture (2 chains × 500 draws). Tolerance: every parameter of the
truth within 3 posterior SDs of its posterior mean, R-hat below 1.05 (measured on the hurdle
fit: 1.02 at most, for ``sd_g_hu``; the largest |z| over four seeds of the Salamanders data
was 2.6, the species effects moving together with the reference species GP).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit
from scipy.stats import spearmanr
from test_hurdle import (
    HURDLE_TRUTH,
    SALAMANDER_SPEC,
    SALAMANDER_TRUTH,
    hurdle_data,
    hurdle_spec,
    salamander_data,
)

import mixedbayes as mb
from mixedbayes.results.predict import family_params, rows_of

pytestmark = pytest.mark.slow

SAMPLING = {"draws": 500, "tune": 500, "chains": 2}


@pytest.fixture(scope="module")
def hurdle_fit() -> mb.Fit:
    return quiet_fit(hurdle_spec(), hurdle_data(), seed=3, **SAMPLING)


@pytest.fixture(scope="module")
def salamander_fit() -> mb.Fit:
    return quiet_fit(SALAMANDER_SPEC, salamander_data(), seed=3, **SAMPLING)


def assert_recovers(fit: mb.Fit, truth: dict[str, float]) -> None:
    t = fit.summary().set_index("parameter")
    assert t["rhat"].max() < 1.05, t["rhat"].idxmax()
    for name, value in truth.items():
        mean, sd = t.loc[name, "mean"], t.loc[name, "sd"]
        assert abs(mean - value) <= 3 * sd, (name, value, mean, sd)


def test_hurdle_poisson_recovers_truth(hurdle_fit: mb.Fit) -> None:
    assert_recovers(hurdle_fit, HURDLE_TRUTH)


def test_hurdle_predictions_and_posterior_predictive(hurdle_fit: mb.Fit) -> None:
    """Mean predictions are (1 - hu)·mu/(1 - exp(-mu)) row by row; replicated data have the
    observed share of zeros; LOO is finite."""
    fit = hurdle_fit
    df = hurdle_data()
    hu = family_params(fit.posterior, fit.design, rows_of(fit.design, None))["hu"]
    mu = np.exp(fit.predict(df, kind="link").to_numpy())
    np.testing.assert_allclose(
        fit.predict(df, kind="mean").to_numpy(), (1 - hu) * mu / -np.expm1(-mu), rtol=1e-8
    )
    rep = fit.sample_posterior_predictive(seed=3)["posterior_predictive"]["y"].to_numpy()
    zeros = (rep == 0).mean(axis=-1).ravel()
    observed = float((df["y"] == 0).mean())
    assert np.quantile(zeros, 0.025) <= observed <= np.quantile(zeros, 0.975)
    assert rep.min() >= 0 and np.isfinite(fit.loo().elpd)


def test_salamander_shaped_zero_inflation_recovers_truth(salamander_fit: mb.Fit) -> None:
    assert_recovers(salamander_fit, SALAMANDER_TRUTH)
    # the species' fitted zero inflation (row-wise zi, averaged) ranks as the truth's
    df = salamander_data()
    post = salamander_fit.posterior
    zi = family_params(post, salamander_fit.design, rows_of(salamander_fit.design, None))["zi"]
    by_species = pd.Series(zi.mean(axis=(0, 1))).groupby(df["spp"].to_numpy()).mean()
    truth = [SALAMANDER_TRUTH.get(f"b_zi[spp[{s}]]", 0.0) for s in by_species.index]
    assert spearmanr(by_species.to_numpy(), truth).statistic > 0.75
