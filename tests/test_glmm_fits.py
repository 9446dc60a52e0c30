"""GLMM fits: references (lme4 cbpp, brms epilepsy), recovery for every family, workflow.

Tolerances (../shared/refdata/README.md): GLMM fixed effects within 0.5 SE of the lme4
estimate; SDs by posterior median within ±35 % (fewer than 20 groups) with the estimate in
the central 90 % interval; against a published brms posterior |mean − ref| ≤ 0.2·ref_sd plus
Monte Carlo error (3 MCSE) plus the rounding of the published two decimals (0.005).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit
from scipy.special import logit

import mixedbayes as mb
from mixedbayes.families import FAMILIES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def epilepsy() -> pd.DataFrame:
    return mb.datasets.load("epilepsy")


@pytest.fixture(scope="module")
def epi_poisson(epilepsy: pd.DataFrame) -> mb.Fit:
    spec = mb.GLMM("count ~ zAge + zBase * Trt + (1 | patient)", "poisson")
    return quiet_fit(spec, epilepsy, draws=1000, chains=4, seed=101)


@pytest.fixture(scope="module")
def epi_obs(epilepsy: pd.DataFrame) -> mb.Fit:
    return quiet_fit("models/epilepsy.yaml", epilepsy, draws=1000, chains=4, seed=102)


def table(fit: mb.Fit) -> pd.DataFrame:
    return fit.summary(prob=0.9).set_index("parameter")


def against_posterior(fit: mb.Fit, ref: dict[str, tuple[float, float]]) -> None:
    t = table(fit)
    for name, (mean, sd) in ref.items():
        tol = 0.2 * sd + 3 * t.loc[name, "mcse_mean"] + 0.005
        assert abs(t.loc[name, "mean"] - mean) <= tol, (name, t.loc[name, "mean"], mean, tol)


def test_cbpp_against_lme4() -> None:
    fit = quiet_fit("models/cbpp.yaml", None, draws=1000, chains=4, seed=103)
    t = table(fit)
    ref = {
        "b[Intercept]": (-1.399, 0.234),
        "b[period[2]]": (-0.991, 0.307),
        "b[period[3]]": (-1.128, 0.327),
        "b[period[4]]": (-1.580, 0.428),
    }
    for name, (est, se) in ref.items():
        assert abs(t.loc[name, "mean"] - est) <= 0.5 * se, (name, t.loc[name, "mean"], est)
    sd = t.loc["sd_herd[Intercept]"]
    assert abs(sd["median"] / 0.648 - 1) <= 0.35 and sd["lower"] <= 0.648 <= sd["upper"]


def test_epilepsy_poisson_against_brms(epi_poisson: mb.Fit) -> None:
    against_posterior(
        epi_poisson,
        {
            "b[Intercept]": (1.77, 0.11),
            "b[zAge]": (0.10, 0.09),
            "b[zBase]": (0.70, 0.12),
            "b[Trt[1]]": (-0.26, 0.16),
            "b[zBase:Trt[1]]": (0.06, 0.17),
            "sd_patient[Intercept]": (0.58, 0.07),
        },
    )


def test_epilepsy_observation_level_effect_against_brms(
    epi_obs: mb.Fit, epi_poisson: mb.Fit
) -> None:
    against_posterior(
        epi_obs,
        {
            "b[Intercept]": (1.72, 0.12),
            "sd_patient[Intercept]": (0.54, 0.08),
            "sd_obs[Intercept]": (0.37, 0.04),
        },
    )
    loo_obs, loo_plain = epi_obs.loo(), epi_poisson.loo()
    assert abs(loo_plain.elpd - (-670.0)) < 2 * 36.0
    assert abs(loo_obs.elpd - (-595.8)) < 2 * 14.0
    ranking = mb.compare({"obs": epi_obs, "poisson": epi_poisson})
    assert ranking.index[0] == "obs"


def test_count_workflow(epi_obs: mb.Fit, epilepsy: pd.DataFrame) -> None:
    root = epi_obs.rootogram(seed=1)
    assert root.table["observed"].sum() == len(epilepsy)
    assert root.plot() is not None
    new = epilepsy.iloc[:4]
    link = epi_obs.predict(new, kind="link").mean(("chain", "draw")).to_numpy()
    mean = epi_obs.predict(new, kind="mean").mean(("chain", "draw")).to_numpy()
    assert np.all(mean > 0) and np.all(link < np.log(mean) + 1e-9)  # Jensen: E[exp] > exp(E)
    resp = epi_obs.predict(new, kind="response", seed=2).to_numpy()
    assert np.all(resp >= 0) and np.all(resp == np.round(resp))
    s = epi_obs.shrinkage("patient")
    assert len(s.terms) == 1 and 0 < s.terms["shrinkage_pct"].iloc[0] < 100
    c = epi_obs.contrasts("Trt", ["0", "1"])
    assert len(c) == 1 and c.iloc[0]["estimate"] < 0
    assert len(epi_obs.slopes("zBase", by="Trt")) == 2


TRUE = {"sigma": 0.7, "alpha": 3.0, "phi": 8.0, "nu": 6.0, "zi": 0.25, "hu": 0.3}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_recovers_its_parameters(name: str) -> None:
    family = FAMILIES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    n_groups, per = 40, 10
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    u = rng.normal(0, 0.5, n_groups)
    b0 = {"logit": 0.3, "probit": 0.2, "cloglog": -0.3, "log": 1.0}.get(family.default_link, 2.0)
    from mixedbayes.families import get_link

    mu = get_link(family.default_link).inverse_numpy(b0 + 0.6 * x + u[g])
    params = {p.name: np.full(g.size, TRUE[p.name]) for p in family.params}
    trials = np.full(g.size, 8) if family.needs_trials else None
    y = family.simulate(mu, params, rng, trials)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g], "n": 8})
    formula = "y | trials(n) ~ x + (1 | g)" if family.needs_trials else "y ~ x + (1 | g)"
    fit = quiet_fit(mb.GLMM(formula, name), df, draws=500, chains=2, seed=7)
    t = fit.summary(prob=0.99).set_index("parameter")
    truth = {"b[Intercept]": b0, "b[x]": 0.6, "sd_g[Intercept]": 0.5}
    for p in family.params:
        if p.predictor:
            truth[f"b_{p.name}[Intercept]"] = float(logit(TRUE[p.name]))
        else:
            truth[p.name] = TRUE[p.name]
    for key, value in truth.items():
        assert t.loc[key, "lower"] <= value <= t.loc[key, "upper"], (name, key, value, t.loc[key])
    # the workflow works for every family
    traj = fit.trajectories(time="x", max_groups=3)
    assert np.isfinite(traj.individual["mean"]).all() and len(traj.levels) == 3
    shrink = fit.shrinkage()
    assert 0 < shrink.terms["shrinkage_pct"].iloc[0] < 100
    slope = fit.slopes("x").iloc[0]
    assert slope["estimate"] > 0 and slope["post_prob"] > 0.95


def test_logistic_regression_under_complete_separation() -> None:
    """The default priors keep a perfectly separated logistic model proper and finite."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=120)
    df = pd.DataFrame({"y": (x > 0).astype(int), "x": x, "g": np.repeat(np.arange(12), 10)})
    fit = quiet_fit(mb.GLMM("y ~ x + (1 | g)", "bernoulli"), df, draws=500, chains=2, seed=9)
    b = fit.posterior["b"].sel(term="x").to_numpy()
    prior_sd = fit.priors.get("b", "x").prior.args[1]
    assert np.isfinite(b).all() and 0 < np.median(b) < 4 * prior_sd
    assert fit.summary().set_index("parameter").loc["b[x]", "rhat"] < 1.05


def test_latent_scale_icc(epi_poisson: mb.Fit) -> None:
    from mixedbayes.workflows.naive import intraclass_correlation

    icc = intraclass_correlation(epi_poisson).iloc[0]
    sd = float(epi_poisson.posterior["sd_patient"].mean())
    resid = np.log1p(1 / epi_poisson.design.y.mean())
    assert icc["icc"] == pytest.approx(sd**2 / (sd**2 + resid), rel=0.1)
    assert "Nakagawa" in icc["residual_variance"]
