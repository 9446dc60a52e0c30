"""Recovery of a heteroscedastic LMM by simulation (``sigma: "~ trt"``; docs/distributional.md).

30 subjects × 6 visits, a between-subject treatment whose residual SD is exp(0.7) ≈ 2 times
the control arm's: the posterior of ``b_sigma[trt]`` (the log SD ratio) covers 0.7 and excludes
0; the summary and the predictions carry ``b_sigma``. The fit is marginalised (two classes of
rows, compile/marginal.py); the plain model's fit of the same data has the same posterior.
Two small fits (2 chains × 300 draws each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_posterior, assert_save_load_round_trip, quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow

#: The truth: log SD of the control arm, the treatment's log SD ratio.
LOG_SD, LOG_RATIO = np.log(0.8), 0.7


def simulate(seed: int = 20, n_subjects: int = 30, n_visits: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_subjects), n_visits)
    visit = np.tile(np.arange(n_visits), n_subjects).astype(float)
    trt = (subject % 2).astype(float)
    u = rng.normal(0.0, 1.0, n_subjects)[subject]
    sd = np.exp(LOG_SD + LOG_RATIO * trt)
    y = 10.0 + 0.5 * visit - 0.3 * trt * visit + u + rng.normal(0.0, sd)
    return pd.DataFrame({"y": y, "visit": visit, "trt": trt, "id": [f"s{i:02d}" for i in subject]})


SPEC = mb.LMM("y ~ visit * trt + (1 | id)", sigma="~ trt")


@pytest.fixture(scope="module")
def fit() -> mb.Fit:
    return quiet_fit(SPEC, simulate(), draws=300, tune=300, chains=2, seed=7)


def test_log_sd_ratio_recovered(fit: mb.Fit) -> None:
    table = fit.summary(prob=0.95).set_index("parameter")
    ratio = table.loc["b_sigma[trt]"]
    assert ratio["lower"] <= LOG_RATIO <= ratio["upper"], ratio
    assert ratio["lower"] > 0, ratio  # the arms' SDs differ
    base = table.loc["b_sigma[Intercept]"]
    assert base["lower"] <= LOG_SD <= base["upper"], base
    assert table.loc[["b_sigma[trt]", "b_sigma[Intercept]"], "rhat"].max() < 1.05
    assert "sigma" not in set(fit.posterior.data_vars)
    assert list(fit.posterior["b_sigma"].coords["sigma_term"].values) == ["Intercept", "trt"]
    assert fit.compiled.marginalization.startswith("integrated out: id")


def test_same_posterior_as_the_plain_model(fit: mb.Fit) -> None:
    plain = quiet_fit(SPEC, simulate(), draws=300, tune=300, chains=2, seed=8, marginalize=False)
    assert plain.compiled.marginalization.startswith("not integrated out")
    assert_same_posterior(fit, plain, sd_slack=0.1)
    ra = fit.posterior["r_id"].mean(("chain", "draw"))
    rb = plain.posterior["r_id"].mean(("chain", "draw"))
    scale = fit.posterior["r_id"].std(("chain", "draw"))
    assert float((abs(ra - rb) / scale).max()) < 0.3


def test_save_load(fit: mb.Fit, tmp_path: Path) -> None:
    assert_save_load_round_trip(fit, tmp_path / "fit")


def test_predictions_and_log_likelihood_use_each_rows_sd(fit: mb.Fit) -> None:
    df = simulate()
    mean = fit.predict(df, kind="mean").to_numpy()
    response = fit.predict(df, kind="response", seed=1).to_numpy()
    spread = (response - mean).std(axis=(0, 1))
    trt = df["trt"].to_numpy() == 1
    ratio = spread[trt].mean() / spread[~trt].mean()
    assert ratio == pytest.approx(np.exp(LOG_RATIO), rel=0.2)
    ll = fit.idata["log_likelihood"]["y"].to_numpy()
    assert ll.shape[-1] == len(df) and np.isfinite(ll).all()
    assert np.isfinite(fit.loo().elpd)
