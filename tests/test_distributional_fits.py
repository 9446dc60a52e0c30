"""Fits of the zero-inflated beta GLMM with a ``zi`` formula: ZIBR's ibd data against the
published estimates (Chen & Li 2016), and recovery of simulated truth.

Two fits, one per module fixture; both have ibd's structure (59 subjects × 4 times, the same
spec), so the second reuses the first's compiled sampler (``inference/reuse.py``).

Tolerances (``../shared/refdata/README.md``; no SEs are published, so the posterior SD
stands for the SE): fixed effects within 0.5 posterior SD of the ML estimate; variance
components (the SDs and the precision φ) by posterior median within ±20 % and the ML value
inside the central 90 % interval. ZIBR reports the presence part, logit P(y > 0): brms-style
``zi`` is P(y = 0), so the zi coefficients are compared with the published ones negated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import READ_ONLY, assert_save_load_round_trip, quiet_fit
from scipy.special import expit
from test_distributional import FORMULA, TRUTH, ZI, zib_data

import mixedbayes as mb
from mixedbayes.results.predict import family_params, rows_of

pytestmark = pytest.mark.slow

#: The abundance part's subject effects are sampled non-centred: measured on ibd (4 chains),
#: the auto rule's choice (centred, median data weight 2.9) gave bulk ESS ~100 for
#: sd_Subject and R-hat 1.03 for phi, non-centred ~300+ and 1.00. Same posterior.
SPEC = mb.GLMM(
    FORMULA,
    "zero_inflated_beta",
    zi=ZI,
    group_effects={"Subject": {"parametrization": "noncentered"}},
)
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}

#: Chen & Li (2016), ZIBR on ibd, ML: (estimate, sign to compare with the zi part).
IBD_FIXED = {
    "b[Intercept]": -2.786,
    "b[Treatment]": -0.323,
    "b_zi[Intercept]": -2.697,  # presence intercept 2.697, negated
    "b_zi[Treatment]": -0.200,  # presence treatment 0.200, negated
}
IBD_SCALES = {
    "sd_Subject[Intercept]": 0.539,
    "phi": 7.622,
    "sd_Subject_zi[Intercept]": 3.279,
}


@pytest.fixture(scope="module")
def ibd() -> pd.DataFrame:
    path = READ_ONLY / "ibd.csv"
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def ibd_fit(ibd: pd.DataFrame) -> mb.Fit:
    return quiet_fit(SPEC, ibd, seed=2016, **SAMPLING)


@pytest.fixture(scope="module")
def recovery_fit() -> mb.Fit:
    return quiet_fit(SPEC, zib_data(), seed=7, **SAMPLING)


def table(fit: mb.Fit) -> pd.DataFrame:
    return fit.summary(prob=0.9).set_index("parameter")


def test_ibd_against_zibr(ibd_fit: mb.Fit) -> None:
    t = table(ibd_fit)
    assert t["rhat"].max() < 1.01 and t["ess_bulk"].min() > 400, t[["rhat", "ess_bulk"]]
    for name, ml in IBD_FIXED.items():
        mean, sd = t.loc[name, "mean"], t.loc[name, "sd"]
        assert abs(mean - ml) <= 0.5 * sd, (name, mean, ml, sd)
    for name, ml in IBD_SCALES.items():
        row = t.loc[name]
        assert abs(row["median"] / ml - 1) <= 0.20, (name, row["median"], ml)
        assert row["lower"] <= ml <= row["upper"], (name, row["lower"], ml, row["upper"])


def test_recovery_of_simulated_truth(recovery_fit: mb.Fit) -> None:
    t = recovery_fit.summary(prob=0.99).set_index("parameter")
    assert t["rhat"].max() < 1.01
    for name, value in TRUTH.items():
        assert t.loc[name, "lower"] <= value <= t.loc[name, "upper"], (name, value, t.loc[name])


def test_predictions_posterior_predictive_and_loo(recovery_fit: mb.Fit) -> None:
    """Row-wise zi in predictions (fitted rows and new data), the replicated responses'
    zeros, pointwise log-likelihood and LOO, shrinkage of the abundance part."""
    fit = recovery_fit
    df = zib_data()
    post = fit.posterior
    zi = family_params(post, fit.design, rows_of(fit.design, None))["zi"]
    mean = fit.predict(df, kind="mean").to_numpy()
    mu = expit(fit.predict(df, kind="link").to_numpy())
    np.testing.assert_allclose(mean, (1 - zi) * mu, rtol=1e-10)
    # subjects with more zeros have a larger fitted zi
    observed_zeros = (df["Abundance"] == 0).groupby(df["Subject"]).mean()
    fitted_zi = pd.Series(zi.mean(axis=(0, 1)), index=df.index).groupby(df["Subject"]).mean()
    assert np.corrcoef(observed_zeros, fitted_zi)[0, 1] > 0.6
    idata = fit.sample_posterior_predictive(seed=3)
    rep = idata["posterior_predictive"]["Abundance"].to_numpy()
    zeros = (rep == 0).mean(axis=-1).ravel()
    observed = float((df["Abundance"] == 0).mean())
    assert np.quantile(zeros, 0.025) <= observed <= np.quantile(zeros, 0.975)
    assert np.all((rep >= 0) & (rep < 1))
    assert np.isfinite(fit.loo().elpd)
    shrink = fit.shrinkage("Subject")
    assert 0 < shrink.terms["shrinkage_pct"].iloc[0] < 100
    new = pd.DataFrame({"Subject": ["new"], "Treatment": [1.0]})
    drawn = fit.predict(new, kind="mean", new_groups="sample", seed=1).to_numpy()
    assert drawn.shape == (4, 1000, 1) and np.all((drawn > 0) & (drawn < 1))


def test_report_and_save_load(recovery_fit: mb.Fit, tmp_path: Path) -> None:
    from mixedbayes.report.builder import build_report

    report = build_report(recovery_fit, n_groups=3, seed=1)
    # every section but the trajectories (the model has no time covariate) is made
    assert [s.key for s in report.sections if s.unavailable] == ["trajectories"]
    assert "zi ~ Treatment + (1 | Subject)" in report.subtitle
    assert_save_load_round_trip(recovery_fit, tmp_path / "fit")
