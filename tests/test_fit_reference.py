"""Reference fits against published lme4 estimates (../shared/refdata/README.md).

Tolerances from the refdata README: fixed effects within 0.3 SE of the REML estimate;
variance components (SD scale) by posterior median within ±20 % (±35 % with fewer than 20
groups) with the REML value inside the central 90 % interval. 4 chains × 1000 draws, fixed
seeds.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow


def row(fit: mb.Fit, parameter: str, prob: float = 0.9) -> pd.Series:
    table = fit.summary(prob=prob).set_index("parameter")
    return table.loc[parameter]


def check_fixed(fit: mb.Fit, parameter: str, estimate: float, se: float) -> None:
    r = row(fit, parameter)
    assert abs(r["mean"] - estimate) <= 0.3 * se, (parameter, r["mean"], estimate)


def check_component(fit: mb.Fit, parameter: str, estimate: float, rel: float) -> None:
    r = row(fit, parameter)
    assert abs(r["median"] / estimate - 1) <= rel, (parameter, r["median"], estimate)
    assert r["lower"] <= estimate <= r["upper"], (parameter, r["lower"], r["upper"], estimate)


def test_sleepstudy_correlated(sleep_fit: mb.Fit) -> None:
    """Bates et al. (2015): Reaction ~ Days + (Days | Subject), REML."""
    check_fixed(sleep_fit, "b[Intercept]", 251.405, 6.825)
    check_fixed(sleep_fit, "b[Days]", 10.467, 1.546)
    check_component(sleep_fit, "sd_Subject[Intercept]", 24.741, 0.35)
    check_component(sleep_fit, "sd_Subject[Days]", 5.922, 0.35)
    check_component(sleep_fit, "sigma", 25.592, 0.20)
    r = row(sleep_fit, "cor_Subject[Intercept,Days]")
    assert r["lower"] <= 0.066 <= r["upper"]
    assert (sleep_fit.summary()["rhat"] < 1.01).all()


def test_sleepstudy_independent(sleepstudy: pd.DataFrame) -> None:
    """(Days || Subject): SDs 25.05 / 5.99, sigma 25.57; no correlation parameter."""
    fit = quiet_fit(mb.LMM("Reaction ~ Days + (Days || Subject)"), sleepstudy, seed=12)
    assert "cor_Subject" not in fit.posterior
    check_fixed(fit, "b[Days]", 10.467, 1.546)
    check_component(fit, "sd_Subject[Intercept]", 25.05, 0.35)
    check_component(fit, "sd_Subject[Days]", 5.99, 0.35)
    check_component(fit, "sigma", 25.57, 0.20)


def test_radon_random_intercept(radon: pd.DataFrame) -> None:
    """Gelman & Hill (2007) ch. 12: log.radon ~ basement + (1 | county), 85 counties."""
    fit = quiet_fit(mb.LMM("log.radon ~ basement + (1 | county)"), radon, seed=13)
    check_fixed(fit, "b[Intercept]", 1.46, 0.05)
    check_fixed(fit, "b[basement]", -0.69, 0.07)
    check_component(fit, "sd_county[Intercept]", 0.33, 0.20)
    check_component(fit, "sigma", 0.76, 0.20)
    assert fit.posterior["r_county"].sizes["county"] == 85
