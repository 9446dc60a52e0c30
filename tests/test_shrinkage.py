"""Shrinkage: no pooling, complete pooling, partial pooling, shrinkage factor and %."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import quiet_fit
from matplotlib.figure import Figure

import mixedbayes as mb
from mixedbayes.results.shrinkage import Shrinkage, shrinkage

plt.switch_backend("Agg")

CHAINS, DRAWS = 2, 40


def posterior_fit(
    design: mb.Design,
    b: np.ndarray,
    r: dict[str, np.ndarray],
    sd: dict[str, np.ndarray],
    family: dict[str, np.ndarray] | None = None,
) -> mb.Fit:
    """A Fit whose posterior holds the given draws (chain, draw, ...), no sampling.

    ``family`` holds draws (chain, draw) of the family's parameters (default: sigma = 1).
    """
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)}
    data = {
        "b": xr.DataArray(
            b, dims=("chain", "draw", "term"), coords={"term": list(design.fixed_terms)}
        ),
    }
    for name, values in (family or {"sigma": np.ones((CHAINS, DRAWS))}).items():
        data[name] = xr.DataArray(values, dims=("chain", "draw"))
    for g in design.groups:
        data[f"r_{g.name}"] = xr.DataArray(
            r[g.name],
            dims=("chain", "draw", g.dim, g.term_dim),
            coords={g.dim: list(g.levels), g.term_dim: list(g.terms)},
        )
        data[f"sd_{g.name}"] = xr.DataArray(
            sd[g.name], dims=("chain", "draw", g.term_dim), coords={g.term_dim: list(g.terms)}
        )
    post = xr.Dataset(data, coords=coords)
    return mb.Fit(xr.DataTree.from_dict({"posterior": post}), design.spec, design, None)  # type: ignore[arg-type]


def centred_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Noise whose mean over (chain, draw) is exactly 0."""
    e = rng.normal(size=(CHAINS, DRAWS, *shape))
    return e - e.mean(axis=(0, 1))


def per_subject_ols(data: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(intercept, slope) of Reaction on Days per subject, with numpy.polyfit."""
    out = {}
    for subject, rows in data.groupby("Subject", observed=True):
        slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
        out[str(subject)] = (float(intercept), float(slope))
    return out


@pytest.fixture(scope="module")
def sleep_design(sleepstudy: pd.DataFrame) -> mb.Design:
    return mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)


def test_estimates_and_factor_on_known_draws(
    sleep_design: mb.Design, sleepstudy: pd.DataFrame
) -> None:
    rng = np.random.default_rng(1)
    g = sleep_design.groups[0]
    ols = per_subject_ols(sleepstudy)
    slope, intercept = np.polyfit(sleepstudy["Days"], sleepstudy["Reaction"], 1)
    complete = np.array([intercept, slope])
    no_pool = np.array([ols[lv] for lv in g.levels])
    lam = np.linspace(0.1, 0.9, g.n_levels)[:, None]  # the shrinkage factor we build in
    b = complete + centred_noise(rng, (2,))
    r = (1 - lam) * (no_pool - complete) + centred_noise(rng, (g.n_levels, 2))
    sd = np.abs(rng.normal(20, 2, size=(CHAINS, DRAWS, 2)))
    fit = posterior_fit(sleep_design, b, {"Subject": r}, {"Subject": sd})

    s = shrinkage(fit, prob=0.9)
    assert isinstance(s, Shrinkage)
    lv = s.levels.set_index(["level", "term"])
    assert len(lv) == 36
    for j, level in enumerate(g.levels):
        for k, term in enumerate(("Intercept", "Days")):
            row = lv.loc[(level, term)]
            assert row["n_rows"] == 10
            assert row["no_pooling"] == pytest.approx(no_pool[j, k], rel=1e-9, abs=1e-9)
            assert row["complete_pooling"] == pytest.approx(complete[k], rel=1e-9)
            expected_mean = complete[k] + (1 - lam[j, 0]) * (no_pool[j, k] - complete[k])
            assert row["partial_mean"] == pytest.approx(expected_mean, rel=1e-9)
            # v / (v + tau^2): v the sampling variance of the level's OLS coefficient
            # (sigma = 1 in these draws), tau the posterior mean of the term's SD
            rows = sleepstudy[sleepstudy["Subject"] == level]
            Z = np.column_stack([np.ones(len(rows)), rows["Days"]])
            v = np.linalg.inv(Z.T @ Z)[k, k]
            expected_factor = v / (v + sd[..., k].mean() ** 2)
            assert row["shrinkage_factor"] == pytest.approx(expected_factor, rel=1e-4)
            assert row["no_pooling_se"] == pytest.approx(np.sqrt(v), rel=1e-4)
            assert row["no_pooling_fit"] == "mle"
            assert row["partial_lower"] < row["partial_mean"] < row["partial_upper"]
    # 90% interval of the draws b + r, computed directly
    draws = (b[:, :, 1] + r[:, :, 0, 1]).ravel()
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert lv.loc[(g.levels[0], "Days"), "partial_lower"] == pytest.approx(lo)
    assert lv.loc[(g.levels[0], "Days"), "partial_upper"] == pytest.approx(hi)

    terms = s.terms.set_index("term")
    for k, term in enumerate(("Intercept", "Days")):
        spread = np.std(r.mean(axis=(0, 1))[:, k], ddof=1)
        expected = 100 * (1 - spread / sd[..., k].mean())
        assert terms.loc[term, "shrinkage_pct"] == pytest.approx(expected)
        assert terms.loc[term, "n_levels"] == 18
    text = str(s)
    assert "Intercept" in text and "Days" in text and "Savic" in text


def test_term_without_fixed_counterpart_and_unidentifiable_level(
    sleepstudy: pd.DataFrame,
) -> None:
    rng = np.random.default_rng(2)
    short = sleepstudy[(sleepstudy["Subject"] != "309") | (sleepstudy["Days"] < 2)]
    design = mb.design(mb.LMM("Reaction ~ 1 + (1 + Days | Subject)"), short)
    g = design.groups[0]
    assert design.fixed_terms == ("Intercept",)
    b = 300 + rng.normal(size=(CHAINS, DRAWS, 1))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 2))
    sd = np.ones((CHAINS, DRAWS, 2))
    s = shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}))
    lv = s.levels.set_index(["level", "term"])
    # no fixed Days: complete pooling of the deviation is 0, partial pooling is r alone
    assert (lv.xs("Days", level="term")["complete_pooling"] == 0).all()
    days = g.terms.index("Days")
    assert lv.loc[("308", "Days"), "partial_mean"] == pytest.approx(
        r[:, :, g.levels.index("308"), days].mean()
    )
    assert lv.loc[("308", "Intercept"), "partial_mean"] == pytest.approx(
        (b[..., 0] + r[:, :, g.levels.index("308"), 0]).mean()
    )
    assert lv.loc[("308", "Intercept"), "complete_pooling"] == pytest.approx(
        short["Reaction"].mean()
    )
    # nothing is subtracted (the only fixed column is matched): no pooling is per-subject OLS
    ols = per_subject_ols(short)
    assert lv.loc[("308", "Intercept"), "no_pooling"] == pytest.approx(ols["308"][0])
    assert lv.loc[("308", "Days"), "no_pooling"] == pytest.approx(ols["308"][1])
    # 309 has 2 rows for 2 terms: no no-pooling estimate, no factor
    assert lv.loc[("309", "Intercept"), "n_rows"] == 2
    assert np.isnan(lv.loc[("309", "Intercept"), "no_pooling"])
    assert np.isnan(lv.loc[("309", "Days"), "shrinkage_factor"])
    assert lv.drop(index="309", level="level")["no_pooling"].notna().all()
    assert "without a no-pooling estimate" in str(s)


def test_no_pooling_subtracts_unmatched_fixed_columns(sleepstudy: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    design = mb.design(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    g = design.groups[0]
    b = np.array([250.0, 10.0]) + rng.normal(size=(CHAINS, DRAWS, 2))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 1))
    sd = np.ones((CHAINS, DRAWS, 1))
    s = shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), group="Subject")
    slope, intercept = np.polyfit(sleepstudy["Days"], sleepstudy["Reaction"], 1)
    rows = sleepstudy[sleepstudy["Subject"] == "335"]
    # Days is held at its posterior mean (what the partial-pooling estimate is conditional on)
    held = b[..., 1].mean()
    assert abs(held - slope) > 0.1
    expected = float((rows["Reaction"] - held * rows["Days"]).mean())
    row = s.levels.set_index("level").loc["335"]
    assert row["term"] == "Intercept"
    assert row["no_pooling"] == pytest.approx(expected)
    assert row["complete_pooling"] == pytest.approx(intercept)

    fig = s.plot()  # one term: a 1-D panel against rows per level
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(mb.SpecError, match="no grouping factor"):
        shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), group="Days")
    with pytest.raises(mb.SpecError, match="prob"):
        shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), prob=1.5)


def test_plots(sleep_design: mb.Design) -> None:
    rng = np.random.default_rng(4)
    g = sleep_design.groups[0]
    b = np.array([250.0, 10.0]) + rng.normal(size=(CHAINS, DRAWS, 2))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 2))
    sd = np.ones((CHAINS, DRAWS, 2))
    s = shrinkage(posterior_fit(sleep_design, b, {"Subject": r}, {"Subject": sd}))
    fig = s.plot()  # intercept and one slope: a single 2-D panel
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].get_xlabel().startswith("Intercept")
    assert fig.axes[0].get_ylabel().startswith("Days")
    assert len(fig.axes[0].texts) == 18  # one arrow per level
    plt.close(fig)
    fig, ax = plt.subplots()
    assert s.plot(term="Days", ax=ax) is fig
    assert ax.get_ylabel() == "Days"
    plt.close(fig)
    with pytest.raises(mb.SpecError, match="term"):
        s.plot(term="Age")


# ------------------------------------------------- GLMMs: the family's likelihood, link scale


def count_frame(seed: int, n_levels: int, rows: int) -> pd.DataFrame:
    """Counts with a covariate and an exposure; level g01 has only zeros."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_levels), rows)
    x = rng.normal(size=g.size)
    expo = rng.uniform(0.5, 3.0, g.size)
    eta = 1.0 + np.log(expo) + 0.5 * x + rng.normal(0.0, 0.7, n_levels)[g]
    mu = np.exp(eta)
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    y[g == 1] = 0.0
    return pd.DataFrame({"y": y, "x": x, "expo": expo, "g": [f"g{i:02d}" for i in g]})


def maximise(neg_loglik: object, k: int) -> np.ndarray:
    """A direct scipy.optimize minimum (BFGS from zero), independent of the Newton solver."""
    from scipy import optimize

    res = optimize.minimize(neg_loglik, np.zeros(k), method="BFGS", options={"gtol": 1e-10})  # type: ignore[call-overload]
    return np.asarray(res.x)


def glmm_fit(design: mb.Design, seed: int, family: dict[str, np.ndarray] | None) -> mb.Fit:
    """Fake draws around plausible values (the pooling estimates do not use them)."""
    rng = np.random.default_rng(seed)
    g = design.groups[0]
    k = len(g.terms)
    b = np.array([1.0, 0.5]) + 0.05 * rng.normal(size=(CHAINS, DRAWS, 2))
    r = 0.3 * rng.normal(size=(CHAINS, DRAWS, g.n_levels, k))
    sd = np.abs(rng.normal(0.6, 0.1, size=(CHAINS, DRAWS, k)))
    return posterior_fit(design, b, {"g": r}, {"g": sd}, family)


def test_poisson_pooling_is_the_glm_on_the_log_scale() -> None:
    from scipy import stats

    data = count_frame(11, 12, 6)
    design = mb.design(mb.GLMM("y ~ x + (1 | g)", "poisson"), data)
    fit = glmm_fit(design, 12, {})
    s = shrinkage(fit)
    y, x = data["y"].to_numpy(), data["x"].to_numpy()

    def pooled(beta: np.ndarray) -> float:
        return -float(stats.poisson.logpmf(y, np.exp(beta[0] + beta[1] * x)).sum())

    beta = maximise(pooled, 2)
    held = fit.posterior["b"].sel(term="x").mean().item()  # x at its posterior mean
    lv = s.levels.set_index("level")
    assert lv["complete_pooling"].to_numpy() == pytest.approx(beta[0], abs=1e-6)
    for level, rows in data.groupby("g"):
        yj, xj = rows["y"].to_numpy(), rows["x"].to_numpy()
        row = lv.loc[level]
        if level == "g01":
            continue
        # the level's own Poisson GLM, x held at its posterior mean
        theta = maximise(
            lambda t, yj=yj, xj=xj: -stats.poisson.logpmf(yj, np.exp(t[0] + held * xj)).sum(),
            1,
        )
        assert row["no_pooling"] == pytest.approx(theta[0], abs=1e-6)
        # sampling variance from the observed information sum(mu)
        mu = np.exp(theta[0] + held * xj)
        assert row["no_pooling_se"] == pytest.approx(1 / np.sqrt(mu.sum()), rel=1e-4)
        assert row["no_pooling_fit"] == "mle"
    f = lv["shrinkage_factor"]
    assert f.notna().all() and ((f >= 0) & (f <= 1)).all()
    tau = fit.posterior["sd_g"].mean().item()
    v = lv["no_pooling_se"] ** 2
    assert f.to_numpy() == pytest.approx((v / (v + tau**2)).to_numpy())

    # g01 has only zeros: no finite MLE, so the weakly penalised fit, flagged
    zero = lv.loc["g01"]
    assert zero["no_pooling_fit"] == "penalised"
    assert (lv["no_pooling_fit"] == "penalised").sum() == 1
    xj = data.loc[data["g"] == "g01", "x"].to_numpy()
    penalised = maximise(
        lambda t: np.exp(t[0] + held * xj).sum() + 0.5 * ((t[0] - beta[0]) / 2.5) ** 2, 1
    )
    assert zero["no_pooling"] == pytest.approx(penalised[0], abs=1e-6)
    assert zero["no_pooling"] < zero["complete_pooling"]
    assert 0 < zero["shrinkage_factor"] < 1
    text = " ".join(str(s).split())  # the definition is wrapped
    assert "log link scale" in text and "v_jk / (v_jk + tau_k^2)" in text
    assert "penalised fit: g01" in text
    # the posterior shrinks towards the mixed model's own population value, drawn too
    b0 = fit.posterior["b"].sel(term="Intercept").mean().item()
    assert s.terms["population_mean"].iloc[0] == pytest.approx(b0)
    fig = s.plot()
    assert fig.axes[0].get_ylabel() == "Intercept (log scale)"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "no pooling (penalised fallback)" in legend
    assert "population (posterior mean of b)" in legend
    plt.close(fig)


def test_negbinomial_slopes_and_offset_on_the_log_scale() -> None:
    from scipy import stats

    data = count_frame(13, 10, 9)
    spec = mb.GLMM("y ~ x + offset(log(expo)) + (1 + x | g)", "negbinomial")
    design = mb.design(spec, data)
    rng = np.random.default_rng(14)
    alpha_draws = 2.5 + 0.2 * rng.normal(size=(CHAINS, DRAWS))
    s = shrinkage(glmm_fit(design, 15, {"alpha": alpha_draws}))
    alpha = alpha_draws.mean()  # the family's parameter at its posterior mean
    y, x, off = data["y"].to_numpy(), data["x"].to_numpy(), np.log(data["expo"].to_numpy())

    def nll(yv: np.ndarray, eta: np.ndarray) -> float:
        mu = np.exp(eta)
        return -float(stats.nbinom.logpmf(yv, alpha, alpha / (alpha + mu)).sum())

    beta = maximise(lambda b: nll(y, off + b[0] + b[1] * x), 2)
    lv = s.levels.set_index(["level", "term"])
    assert lv.xs("Intercept", level="term")["complete_pooling"].iloc[0] == pytest.approx(
        beta[0], abs=1e-6
    )
    assert lv.xs("x", level="term")["complete_pooling"].iloc[0] == pytest.approx(beta[1], abs=1e-6)
    for level, rows in data.groupby("g"):
        if level == "g01":
            continue
        yj, xj = rows["y"].to_numpy(), rows["x"].to_numpy()
        oj = np.log(rows["expo"].to_numpy())
        theta = maximise(lambda t, yj=yj, xj=xj, oj=oj: nll(yj, oj + t[0] + t[1] * xj), 2)
        assert lv.loc[(level, "Intercept"), "no_pooling"] == pytest.approx(theta[0], abs=1e-5)
        assert lv.loc[(level, "x"), "no_pooling"] == pytest.approx(theta[1], abs=1e-5)
        # observed information of the NB log-link GLM: Z' diag((y + a) a mu / (mu + a)^2) Z
        mu = np.exp(oj + theta[0] + theta[1] * xj)
        w = (yj + alpha) * alpha * mu / (mu + alpha) ** 2
        Z = np.column_stack([np.ones_like(xj), xj])
        se = np.sqrt(np.diag(np.linalg.inv(Z.T @ (w[:, None] * Z))))
        assert lv.loc[(level, "Intercept"), "no_pooling_se"] == pytest.approx(se[0], rel=1e-4)
        assert lv.loc[(level, "x"), "no_pooling_se"] == pytest.approx(se[1], rel=1e-4)
    f = lv["shrinkage_factor"]
    assert f.notna().all() and ((f >= 0) & (f <= 1)).all()
    assert set(lv.xs("g01", level="level")["no_pooling_fit"]) == {"penalised"}
    assert set(lv.drop(index="g01", level="level")["no_pooling_fit"]) == {"mle"}
    assert s.scale == "log"


def test_balanced_intercept_and_slope_factors_in_unit_interval(
    sleep_design: mb.Design, sleepstudy: pd.DataFrame
) -> None:
    """sleepstudy is balanced (18 subjects x days 0-9). The partial-pooling draws are the
    exact normal-normal posterior means with correlated effects, which pull a subject's
    slope through its intercept: each term's factor is still v / (v + tau^2), in [0, 1]."""
    rng = np.random.default_rng(16)
    g = sleep_design.groups[0]
    ols = per_subject_ols(sleepstudy)
    slope, intercept = np.polyfit(sleepstudy["Days"], sleepstudy["Reaction"], 1)
    complete = np.array([intercept, slope])
    sigma, tau = 25.0, np.array([25.0, 6.0])
    Sigma = np.outer(tau, tau) * np.array([[1.0, 0.6], [0.6, 1.0]])
    days = np.arange(10.0)
    Z = np.column_stack([np.ones(10), days])
    V = sigma**2 * np.linalg.inv(Z.T @ Z)  # the same for every (balanced) subject
    B = V @ np.linalg.inv(V + Sigma)  # matrix shrinkage towards the population
    no_pool = np.array([ols[lv] for lv in g.levels])
    partial = complete + (no_pool - complete) @ (np.eye(2) - B).T
    b = complete + centred_noise(rng, (2,))
    r = (partial - complete) + centred_noise(rng, (g.n_levels, 2))
    sd = np.broadcast_to(tau, (CHAINS, DRAWS, 2)).copy()
    sigma_draws = np.full((CHAINS, DRAWS), sigma)
    s = shrinkage(
        posterior_fit(sleep_design, b, {"Subject": r}, {"Subject": sd}, {"sigma": sigma_draws})
    )
    lv = s.levels.set_index(["level", "term"])
    f = lv["shrinkage_factor"]
    assert f.notna().all() and ((f >= 0) & (f <= 1)).all()
    for k, term in enumerate(g.terms):
        expected = V[k, k] / (V[k, k] + tau[k] ** 2)
        assert lv.xs(term, level="term")["shrinkage_factor"].to_numpy() == pytest.approx(
            expected, rel=1e-4
        )
    assert lv["partial_mean"].to_numpy() == pytest.approx(partial.ravel(), rel=1e-9)

    # one term (intercept only): the factor is exactly the pull of the normal-normal model,
    # (no - partial) / (no - complete), the fraction of the way to the population value
    design = mb.design(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    v = sigma**2 / 10
    pull = v / (v + tau[0] ** 2)
    offset = sleepstudy["Reaction"] - slope * sleepstudy["Days"]
    own = offset.groupby(sleepstudy["Subject"], observed=True).mean()
    own = own.loc[list(g.levels)].to_numpy()
    b1 = np.array([intercept, slope]) + centred_noise(rng, (2,))
    r1 = ((1 - pull) * (own - intercept))[:, None] + centred_noise(rng, (g.n_levels, 1))
    s1 = shrinkage(
        posterior_fit(
            design,
            b1,
            {"Subject": r1},
            {"Subject": np.full((CHAINS, DRAWS, 1), tau[0])},
            {"sigma": sigma_draws},
        )
    )
    t = s1.levels
    ratio = (t["no_pooling"] - t["partial_mean"]) / (t["no_pooling"] - t["complete_pooling"])
    assert t["shrinkage_factor"].to_numpy() == pytest.approx(pull, rel=1e-4)
    assert ratio.to_numpy() == pytest.approx(pull, rel=1e-6)


def test_report_section_states_the_definition() -> None:
    from mixedbayes.report import Paragraph, Table, build_report

    data = count_frame(17, 8, 6)
    fit = glmm_fit(mb.design(mb.GLMM("y ~ x + (1 | g)", "poisson"), data), 18, {})
    report = build_report(fit, sections=["shrinkage"])
    section = report.section("shrinkage")
    assert section.unavailable == ""
    text = " ".join(b.text for b in section.blocks if isinstance(b, Paragraph))
    assert "log link scale" in text
    assert "v_jk / (v_jk + tau_k^2)" in text
    assert "family's own likelihood" in text and "penalised" in text
    (table,) = [b for b in section.blocks if isinstance(b, Table) and "no_pooling_fit" in b.columns]
    column = table.columns.index("no_pooling_fit")
    assert "penalised" in [row[column] for row in table.rows]


# --------------------------------------------------------------------------- fits


@pytest.fixture(scope="module")
def unbalanced_fit() -> tuple[mb.Fit, list[str], list[str]]:
    """y ~ 1 + (1 | g): 10 levels with 2 rows, 10 with 40; sd of effects 1, sigma 1."""
    rng = np.random.default_rng(2024)
    sizes = [2] * 10 + [40] * 10
    effects = rng.normal(0.0, 1.0, len(sizes))
    frames = [
        pd.DataFrame({"g": f"L{j:02d}", "y": 3.0 + effects[j] + rng.normal(0.0, 1.0, n)})
        for j, n in enumerate(sizes)
    ]
    data = pd.concat(frames, ignore_index=True)
    fit = quiet_fit(mb.LMM("y ~ 1 + (1 | g)"), data, draws=500, tune=500, chains=2, seed=5)
    small = [f"L{j:02d}" for j, n in enumerate(sizes) if n == 2]
    large = [f"L{j:02d}" for j, n in enumerate(sizes) if n == 40]
    return fit, small, large


@pytest.mark.slow
def test_few_rows_shrink_more(unbalanced_fit: tuple[mb.Fit, list[str], list[str]]) -> None:
    fit, small, large = unbalanced_fit
    s = shrinkage(fit)
    lv = s.levels.set_index("level")
    assert set(lv.loc[small, "n_rows"]) == {2}
    assert set(lv.loc[large, "n_rows"]) == {40}
    f = lv["shrinkage_factor"]
    assert f.notna().all()
    assert f.loc[small].mean() > f.loc[large].mean() + 0.1
    assert f.loc[small].median() > f.loc[large].max()
    assert ((f >= 0) & (f <= 1)).all()
    # a level with few rows has a wider posterior interval
    width = lv["partial_upper"] - lv["partial_lower"]
    assert width.loc[small].mean() > 2 * width.loc[large].mean()
    pct = float(s.terms["shrinkage_pct"].iloc[0])
    assert 0 < pct < 100


@pytest.mark.slow
def test_sleepstudy_shrinkage(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    s = shrinkage(sleep_fit)
    terms = s.terms.set_index("term")
    assert list(terms.index) == ["Intercept", "Days"]
    assert ((terms["shrinkage_pct"] > 0) & (terms["shrinkage_pct"] < 100)).all()
    assert (terms["n_levels"] == 18).all()
    intercept, slope = per_subject_ols(sleepstudy)["308"]
    lv = s.levels.set_index(["level", "term"])
    assert lv.loc[("308", "Intercept"), "no_pooling"] == pytest.approx(intercept, rel=1e-9)
    assert lv.loc[("308", "Days"), "no_pooling"] == pytest.approx(slope, rel=1e-9)
    assert (lv["partial_lower"] < lv["partial_mean"]).all()
    assert (lv["partial_mean"] < lv["partial_upper"]).all()
    fig = s.plot()
    assert isinstance(fig, Figure)
    plt.close(fig)
