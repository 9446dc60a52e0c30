"""What brms users reach for after a fit: bayes_r2, conditional_effects, kfold, update.

Hand computations on hand-made posteriors (no sampling), the session fits of conftest.py,
and one small real K-fold run on ``sleep_fit`` (2 chains x 100 draws per fold) that must
reuse the compiled model across folds.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import count_data
from scipy import stats
from test_shrinkage import CHAINS, DRAWS, posterior_fit

import mixedbayes as mb
from mixedbayes.errors import DataError, SpecError
from mixedbayes.results.kfold import grouped_folds, heldout_log_density, random_folds
from mixedbayes.workflows.update import updated_formula, updated_spec

plt.switch_backend("Agg")


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(CHAINS * DRAWS, *a.shape[2:])


def _set(fit: mb.Fit, name: str, values: np.ndarray) -> None:
    post = fit.idata["posterior"].to_dataset()
    fit.idata["posterior"] = xr.DataTree(post.assign({name: (("chain", "draw"), values)}))


@pytest.fixture(scope="module")
def fake_sleep(sleepstudy: pd.DataFrame) -> tuple[mb.Fit, np.ndarray, np.ndarray, np.ndarray]:
    """Intercept and slope per subject, hand-made draws; sigma varies by draw."""
    design = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    rng = np.random.default_rng(4)
    g = design.groups[0]
    b = np.array([250.0, 10.0]) + rng.normal(0, 2, (CHAINS, DRAWS, 2))
    r = rng.normal(0, [25.0, 6.0], (CHAINS, DRAWS, g.n_levels, 2))
    sd = np.abs(rng.normal([25.0, 6.0], 2, (CHAINS, DRAWS, 2)))
    fit = posterior_fit(design, b, {"Subject": r}, {"Subject": sd})
    sigma = np.abs(rng.normal(25, 2, (CHAINS, DRAWS)))
    _set(fit, "sigma", sigma)
    return fit, b, r, sd


# --------------------------------------------------------------------------- bayes_r2


def test_bayes_r2_gelman_by_hand(fake_sleep: tuple) -> None:
    fit, b, r, _ = fake_sleep
    d = fit.design
    g = d.groups[0]
    fixed = _flat(b) @ d.X.T
    cond = fixed + np.einsum("snk,nk->sn", _flat(r)[:, g.index, :], g.Z)
    s2 = fit.posterior["sigma"].to_numpy().ravel() ** 2
    total = cond.var(axis=1) + s2
    table = fit.bayes_r2(prob=0.9).set_index("r2")
    assert table.loc["conditional", "method"].startswith("Gelman")
    for key, draws in {
        "marginal": fixed.var(axis=1) / total,
        "conditional": cond.var(1) / total,
    }.items():
        assert table.loc[key, "estimate"] == pytest.approx(draws.mean(), rel=1e-10)
        assert table.loc[key, "sd"] == pytest.approx(draws.std(ddof=1), rel=1e-10)
        assert table.loc[key, "lower"] == pytest.approx(np.quantile(draws, 0.05), rel=1e-10)


def test_bayes_r2_nakagawa_random_slopes_by_hand(fake_sleep: tuple) -> None:
    fit, b, _, sd = fake_sleep
    d = fit.design
    var_f = (_flat(b) @ d.X.T).var(axis=1)
    days = d.data["Days"].to_numpy()
    # Johnson (2014): mean over rows of z Σ zᵀ, here Σ diagonal (no cor_ in the posterior)
    var_r = (_flat(sd)[:, [0]] ** 2 + _flat(sd)[:, [1]] ** 2 * days**2).mean(axis=1)
    s2 = fit.posterior["sigma"].to_numpy().ravel() ** 2
    table = fit.bayes_r2(method="nakagawa").set_index("r2")
    total = var_f + var_r + s2
    assert table.loc["marginal", "estimate"] == pytest.approx((var_f / total).mean())
    assert table.loc["conditional", "estimate"] == pytest.approx(((var_f + var_r) / total).mean())
    with pytest.raises(SpecError, match="method"):
        fit.bayes_r2(method="bogus")  # type: ignore[arg-type]


def test_bayes_r2_poisson_lognormal_approximation(count_small_fit: mb.Fit) -> None:
    post = count_small_fit.posterior
    d = count_small_fit.design
    b = post["b"].transpose("chain", "draw", "term").to_numpy().reshape(-1, d.X.shape[1])
    eta = b @ d.X.T
    sd2 = post["sd_g"].to_numpy().reshape(-1) ** 2
    lam = np.exp(eta + sd2[:, None] / 2).mean(axis=1)
    resid = np.log1p(1 / lam)
    var_f = eta.var(axis=1)
    table = count_small_fit.bayes_r2().set_index("r2")
    assert "lognormal" in table.loc["marginal", "residual_variance"]
    total = var_f + sd2 + resid
    assert table.loc["marginal", "estimate"] == pytest.approx((var_f / total).mean())
    assert table.loc["conditional", "estimate"] == pytest.approx(((var_f + sd2) / total).mean())


def test_bayes_r2_sleep_fit_agrees_with_variance_decomposition(sleep_fit: mb.Fit) -> None:
    gelman = sleep_fit.bayes_r2().set_index("r2")
    decomposition = sleep_fit.bayes_r2(method="nakagawa").set_index("r2")
    for key in ("marginal", "conditional"):
        assert 0 < gelman.loc[key, "lower"] < gelman.loc[key, "upper"] < 1
        assert gelman.loc[key, "estimate"] == pytest.approx(
            decomposition.loc[key, "estimate"], abs=0.05
        )
    assert gelman.loc["marginal", "upper"] < gelman.loc["conditional", "lower"]
    # lme4 + MuMIn::r.squaredGLMM on the same model: R2m 0.28, R2c 0.80 (Nakagawa)
    assert decomposition.loc["marginal", "estimate"] == pytest.approx(0.28, abs=0.06)
    assert decomposition.loc["conditional", "estimate"] == pytest.approx(0.80, abs=0.06)


# --------------------------------------------------------------------------- conditional effects


def test_conditional_effects_equal_population_predictions(sleep_fit: mb.Fit) -> None:
    ce = sleep_fit.conditional_effects("Days", resolution=7, prob=0.9)
    grid = ce.data
    assert list(grid["Days"]) == pytest.approx(np.linspace(0, 9, 7))
    mu = sleep_fit.predict(grid[["Days", "Subject"]], level="population").to_numpy()
    mu = mu.reshape(-1, len(grid))
    assert grid["estimate"].to_numpy() == pytest.approx(mu.mean(axis=0))
    assert grid["upper"].to_numpy() == pytest.approx(np.quantile(mu, 0.95, axis=0))
    fig = ce.plot()
    ax = fig.axes[0]
    assert len(ax.lines) == 1 and len(ax.collections) == 1  # the line and its band
    assert ax.get_xlabel() == "Days"
    plt.close(fig)


def test_conditional_effects_interaction_and_reference_values(count_small_fit: mb.Fit) -> None:
    data = count_data().dropna()
    ce = count_small_fit.conditional_effects("x:arm", resolution=5)
    grid = ce.data
    assert len(grid) == 10 and set(grid["arm"]) == {"ctl", "trt"}
    mu = count_small_fit.predict(grid[["x", "arm", "g"]], level="population").to_numpy()
    assert grid["estimate"].to_numpy() == pytest.approx(mu.reshape(-1, 10).mean(axis=0))
    fig = ce.plot()
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_legend() is not None
    plt.close(fig)
    # a factor effect: other numeric covariates at their mean; a condition fixes a value
    by_arm = count_small_fit.conditional_effects("arm").data
    assert list(by_arm["arm"]) == ["ctl", "trt"]
    assert by_arm["x"].to_numpy() == pytest.approx(data["x"].mean())
    at_trt = count_small_fit.conditional_effects("x", {"arm": "trt"}, resolution=3).data
    assert set(at_trt["arm"]) == {"trt"} and set(at_trt["condition"]) == {"arm = trt"}
    # factors not varied sit at their reference level (brms)
    assert set(count_small_fit.conditional_effects("x", resolution=3).data["arm"]) == {"ctl"}
    with pytest.raises(DataError, match="'nope'"):
        count_small_fit.conditional_effects("x:nope")


def test_emmeans_of_a_glmm_fit_from_the_draws_of_b(count_small_fit: mb.Fit) -> None:
    """LS-means of the sampled Poisson GLMM: exp(b0 + b_x·mean(x) + b_trt) per draw."""
    b = count_small_fit.posterior["b"].transpose("chain", "draw", "term")
    term = {str(t): b.sel(term=t).to_numpy().ravel() for t in b["term"].to_numpy()}
    x = count_data().dropna()["x"].mean()
    em = count_small_fit.emmeans("arm")
    ctl = term["Intercept"] + x * term["x"]
    np.testing.assert_allclose(em.draws, np.exp(np.column_stack([ctl, ctl + term["arm[trt]"]])))
    assert list(em.means["arm"]) == ["ctl", "trt"] and list(em.means["n"]) == [24, 23]
    pair = em.pairs().iloc[0]
    assert pair["contrast"] == "trt − ctl"
    assert pair["estimate"] == pytest.approx(np.mean(em.draws[:, 1] - em.draws[:, 0]))


# --------------------------------------------------------------------------- kfold


def test_grouped_folds_hold_out_every_level_once() -> None:
    labels = np.repeat([f"s{i}" for i in range(11)], [3, 1, 4, 2, 5, 3, 2, 2, 6, 1, 3])
    folds = grouped_folds(labels, 4, seed=1)
    assert folds.shape == labels.shape and set(folds) == {1, 2, 3, 4}
    per_level = pd.Series(folds).groupby(labels).nunique()
    assert (per_level == 1).all()  # a level never spans two folds
    levels_per_fold = pd.Series(labels).groupby(folds).nunique()
    assert levels_per_fold.max() - levels_per_fold.min() <= 1
    assert (grouped_folds(labels, 4, seed=1) == folds).all()
    assert not (grouped_folds(labels, 4, seed=2) == folds).all()
    rows = random_folds(10, 3, seed=0)
    assert sorted(np.bincount(rows)[1:]) == [3, 3, 4]
    with pytest.raises(SpecError, match="k must be"):
        grouped_folds(labels, 12)


def test_heldout_density_integrates_new_levels(sleepstudy: pd.DataFrame) -> None:
    """Intercept-only new levels: y ~ N(Xb, sigma² + sd²) per draw, integrated analytically."""
    design = mb.design(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    g = design.groups[0]
    rng = np.random.default_rng(2)
    b = np.array([250.0, 10.0]) + rng.normal(0, 1, (CHAINS, DRAWS, 2))
    r = np.zeros((CHAINS, DRAWS, g.n_levels, 1))
    sd = np.abs(rng.normal(20, 1, (CHAINS, DRAWS, 1)))
    fit = posterior_fit(design, b, {"Subject": r}, {"Subject": sd})
    sigma = np.abs(rng.normal(25, 1, (CHAINS, DRAWS)))
    _set(fit, "sigma", sigma)
    new = pd.DataFrame({"Days": [0.0, 5.0, 9.0], "Subject": ["n1", "n1", "n2"]})
    y = np.array([300.0, 250.0, 420.0])
    got = heldout_log_density(fit.posterior, design, new, y, group_draws=400, seed=3)
    mean = _flat(b) @ np.column_stack([np.ones(3), new["Days"]]).T
    scale = np.sqrt(sigma.ravel() ** 2 + _flat(sd)[:, 0] ** 2)[:, None]
    want = np.log(stats.norm.pdf(y, mean, scale).mean(axis=0))
    assert got == pytest.approx(want, abs=0.03)


def test_kfold_grouped_refits_reuse_the_compiled_model(sleep_fit: mb.Fit) -> None:
    """The one real K-fold run: 3 folds of 6 subjects, 2 chains x 100 draws per refit."""
    kf = sleep_fit.kfold(3, group="Subject", draws=100, tune=150, chains=2, seed=5)
    pw = kf.pointwise
    assert len(pw) == 180 and np.isfinite(pw["elpd"]).all()
    assert (pw.groupby("group")["fold"].nunique() == 1).all()
    assert kf.elpd_kfold == pytest.approx(pw["elpd"].sum()) and kf.se > 0
    assert list(kf.folds["n_train"]) == [120, 120, 120]
    assert kf.folds["compile_reused"].iloc[1:].all()  # folds of one structure: one compile
    # new subjects are harder to predict than new days of known ones
    assert kf.elpd_kfold < sleep_fit.loo().elpd
    assert "3-fold" in str(kf)


# --------------------------------------------------------------------------- update


def test_updated_formula_and_spec() -> None:
    assert updated_formula("y ~ x + (1 | g)", ". ~ . + z") == "y ~ x + (1 | g) + z"
    assert updated_formula("y ~ x + (1 | g)", "log(y) ~ x") == "log(y) ~ x"
    spec = mb.GLMM("y ~ x + (1 | g)", "poisson", priors=[{"class": "b", "prior": "normal(0, 5)"}])
    new = updated_spec(spec, ". ~ . + z", family="negbinomial")
    assert new.formula == "y ~ x + (1 | g) + z"  # type: ignore[attr-defined]
    assert new.priors == spec.priors and new.family.name == "negbinomial"
    with pytest.raises(SpecError):
        updated_spec(spec, None, not_a_key=1)


def test_update_keeps_priors_and_sampler_settings(
    sleep_fit: mb.Fit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without sampling: the refit's arguments, from a stub of mb.fit."""
    from mixedbayes import api

    calls: list[tuple] = []
    monkeypatch.setattr(api, "fit", lambda *a, **kw: calls.append((a, kw)) or "refit")
    new_data = sleep_fit.design.source.head(60)
    assert sleep_fit.update(". ~ . - Days", data=new_data) == "refit"
    (spec, data), kw = calls[0]
    assert spec.formula == "Reaction ~ Days + (Days | Subject) - Days"
    assert spec.priors == sleep_fit.spec.priors and spec.sampler == sleep_fit.spec.sampler
    assert data is new_data
    # the backend that drew the fit (the auto policy resolved it)
    assert kw == {"draws": 1000, "tune": 1000, "chains": 4, "seed": 11, "sampler": "numpyro"}
