"""Marginalised Gaussian LMM: the log-density against a brute-force marginal likelihood, the
exact conditional draws of r, when it applies, and the same posterior as the plain model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_posterior, quiet_fit
from scipy import stats

import mixedbayes as mb
from mixedbayes.compile.marginal import (
    build_marginal,
    draw_group_effects,
    marginal_applies,
    sufficient_statistics,
)
from mixedbayes.kinds import build_prior_table


def _random_point(model: object, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    point = model.initial_point()  # type: ignore[attr-defined]
    return {k: np.asarray(v + rng.normal(0, 0.4, size=np.shape(v))) for k, v in point.items()}


FORMULAS = [
    "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days || Subject)",
    "Reaction ~ Days + (1 | Subject)",
    "Reaction ~ 0 + Days + (1 | Subject)",
]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("seed", [1, 2])
def test_marginal_logp_equals_brute_force(
    sleepstudy: pd.DataFrame, formula: str, seed: int
) -> None:
    """sum_j log N(y_j; X_j b, σ²I + Z_j Σ Z_jᵀ) with dense matrices, at random points."""
    d = mb.design(mb.LMM(formula), sleepstudy)
    model, _ = build_marginal(d, build_prior_table(d, d.spec.priors))
    outs = [model.potentials[0], model["sigma"], model["sd_Subject"], model["b"]]
    has_cor = "cor_chol_Subject" in model.named_vars
    if has_cor:
        outs.append(model["cor_chol_Subject"])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    value, sigma, sd, b, *chol = fn(_random_point(model, seed))
    L = sd[:, None] * (chol[0] if has_cor else np.eye(len(sd)))
    g = d.groups[0]
    expected = 0.0
    for j in range(g.n_levels):
        rows = g.index == j
        V = sigma**2 * np.eye(rows.sum()) + g.Z[rows] @ L @ L.T @ g.Z[rows].T
        expected += stats.multivariate_normal(d.X[rows] @ b, V).logpdf(d.y[rows])
    assert value == pytest.approx(expected, rel=1e-7)


def test_cost_is_per_group_not_per_row() -> None:
    """The sampled model holds group statistics only: no container grows with the rows."""
    sim = mb.simulate.lmm(n_clinics=1, patients_per_clinic=40, n_times=25, seed=3).data
    cm = mb.compile(mb.LMM("y ~ time + (time | patient)"), sim)
    assert cm.marginal is not None
    shapes = [np.shape(v.get_value()) for v in cm.sampling_model.data_vars]
    assert max(max(s, default=1) for s in shapes) <= 40 < len(sim)
    assert cm.sampling_model.observed_RVs == []
    assert "r_patient" in cm.model.named_vars and "r_patient" not in cm.sampling_model.named_vars


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("y ~ time + (1 | patient) + (1 | rater)", "crossed"),
        ("y ~ time + (1 | clinic/patient) + (1 | rater)", "3 grouping factors"),
        ("y ~ time", "no group effects"),
    ],
)
def test_falls_back_and_says_why(formula: str, reason: str) -> None:
    sim = mb.simulate.lmm(n_clinics=3, patients_per_clinic=4, n_times=3, crossed=3, seed=2).data
    cm = mb.compile(mb.LMM(formula), sim)
    assert cm.marginal is None and cm.sampling_model is cm.model
    assert reason in cm.marginalization and cm.marginalization.startswith("not integrated")


NESTED = [
    "y ~ time + (1 | clinic/patient)",
    "y ~ trt * time + (1 + time | clinic) + (1 + time | clinic:patient)",
    "y ~ time + (1 | clinic) + (time || clinic:patient)",
]


def _nested_data() -> pd.DataFrame:
    sim = mb.simulate.lmm(n_clinics=4, patients_per_clinic=5, n_times=4, seed=6).data
    return sim.iloc[np.random.default_rng(1).permutation(len(sim))[:-9]]  # unbalanced


def _scale(out: dict[str, np.ndarray], g: str, q: int) -> np.ndarray:
    sd = out[f"sd_{g}"]
    chol = out.get(f"cor_chol_{g}", np.eye(q))
    return sd[:, None] * chol


@pytest.mark.parametrize("formula", NESTED)
def test_nested_marginal_logp_equals_brute_force(formula: str) -> None:
    """Patients nested in clinics: per clinic, y ~ N(Xb, σ²I + Zo Σo Zoᵀ + blockdiag(Zi Σi Ziᵀ))."""
    data = _nested_data()
    d = mb.design(mb.LMM(formula), data)
    model, stats = build_marginal(d, build_prior_table(d, d.spec.priors))
    assert stats.outer == "clinic" and stats.inner == "clinic:patient"
    names = ["sigma", "b"] + [
        f"{k}_{g.name}" for g in d.groups for k in ("sd", "cor_chol")
        if f"{k}_{g.name}" in model.named_vars
    ]  # fmt: skip
    fn = model.compile_fn(
        [model.potentials[0], *[model[n] for n in names]],
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    value, *vals = fn(_random_point(model, 4))
    out = dict(zip(names, vals, strict=True))
    outer, inner = (g for g in d.groups if g.name == "clinic"), None
    outer = next(g for g in d.groups if g.name == "clinic")
    inner = next(g for g in d.groups if g.name == "clinic:patient")
    Lo = _scale(out, "clinic", len(outer.terms))
    Li = _scale(out, "clinic:patient", len(inner.terms))
    expected = 0.0
    for c in range(outer.n_levels):
        rows = np.flatnonzero(outer.index == c)
        V = out["sigma"] ** 2 * np.eye(rows.size) + outer.Z[rows] @ Lo @ Lo.T @ outer.Z[rows].T
        for p in np.unique(inner.index[rows]):
            sub = np.flatnonzero(inner.index[rows] == p)
            Zi = inner.Z[rows[sub]]
            V[np.ix_(sub, sub)] += Zi @ Li @ Li.T @ Zi.T
        expected += stats_logpdf(d.y[rows], d.X[rows] @ out["b"], V)
    assert value == pytest.approx(expected, rel=1e-7)


def stats_logpdf(y: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    return float(stats.multivariate_normal(mean, cov).logpdf(y))


def test_nested_conditional_draws_match_the_exact_gaussian() -> None:
    """Clinic and patient effects drawn in turn have the joint conditional of one clinic's
    effects: precision blockdiag(Σo, Σi, ...)⁻¹ + ZᵀZ/σ², mean cov·Zᵀ(y − Xb)/σ²."""
    import xarray as xr

    d = mb.design(mb.LMM("y ~ time + (1 + time | clinic) + (1 | clinic:patient)"), _nested_data())
    st = sufficient_statistics(d)
    S = 6000
    sd_o, sd_i, sigma = np.array([1.2, 0.4]), np.array([0.9]), 0.8
    chol = np.array([[1.0, 0.0], [-0.4, np.sqrt(1 - 0.16)]])
    b = np.array([d.y.mean(), 0.3])
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), np.full((1, S), b[0] + b[1] * d.x_means[1])),
            "b_slope": (("chain", "draw", "slope"), np.full((1, S, 1), b[1])),
            "sigma": (("chain", "draw"), np.full((1, S), sigma)),
            "sd_clinic": (("chain", "draw", "t1"), np.tile(sd_o, (1, S, 1))),
            "cor_chol_clinic": (("chain", "draw", "a", "c"), np.tile(chol, (1, S, 1, 1))),
            "sd_clinic:patient": (("chain", "draw", "t2"), np.tile(sd_i, (1, S, 1))),
        },
        coords={"chain": [0], "draw": np.arange(S)},
    )
    tree = draw_group_effects(xr.DataTree.from_dict({"posterior": post}), d, st, seed=3)
    r_o = tree["posterior"]["r_clinic"].to_numpy()[0]
    r_i = tree["posterior"]["r_clinic:patient"].to_numpy()[0]
    outer = next(g for g in d.groups if g.name == "clinic")
    inner = next(g for g in d.groups if g.name == "clinic:patient")
    Lo = sd_o[:, None] * chol
    c = 1
    rows = np.flatnonzero(outer.index == c)
    patients = np.unique(inner.index[rows])
    Z = np.zeros((rows.size, 2 + patients.size))
    Z[:, :2] = outer.Z[rows]
    for k, p in enumerate(patients):
        Z[inner.index[rows] == p, 2 + k] = 1.0
    prior = np.diag(np.r_[0, 0, np.full(patients.size, sd_i[0] ** 2)])
    prior[:2, :2] = Lo @ Lo.T
    cov = np.linalg.inv(np.linalg.inv(prior) + Z.T @ Z / sigma**2)
    mean = cov @ Z.T @ (d.y[rows] - d.X[rows] @ b) / sigma**2
    draws = np.concatenate([r_o[:, c], r_i[:, patients, 0]], axis=1)
    se = np.sqrt(np.diag(cov) / S)
    assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se)
    assert np.allclose(np.cov(draws.T), cov, atol=0.08 * np.sqrt(np.diag(cov)).max() ** 2)


def test_glmm_and_switch_off_are_not_marginalised(sleepstudy: pd.DataFrame) -> None:
    d = mb.design(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    assert marginal_applies(d) == ""
    off = mb.compile(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy, marginalize=False)
    assert off.marginal is None and "marginalize=False" in off.marginalization
    counts = pd.DataFrame({"y": [0, 1, 3, 2, 5, 1], "g": list("aabbcc"), "x": range(6)})
    glmm = mb.design(mb.GLMM("y ~ x + (1 | g)", family="poisson"), counts)
    assert "poisson" in marginal_applies(glmm)


def test_conditional_draws_match_the_exact_gaussian(sleepstudy: pd.DataFrame) -> None:
    """At one fixed parameter value, many draws of r_j have the closed-form conditional mean
    (Σ⁻¹ + ZᵀZ/σ²)⁻¹ Zᵀ(y − Xb)/σ² and covariance (Σ⁻¹ + ZᵀZ/σ²)⁻¹."""
    import xarray as xr

    d = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    st = sufficient_statistics(d)
    S = 4000
    sd = np.array([25.0, 6.0])
    chol = np.array([[1.0, 0.0], [0.3, np.sqrt(1 - 0.09)]])
    b = np.array([251.0, 10.5])
    slope_mean = d.x_means[1]
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), np.full((1, S), b[0] + b[1] * slope_mean)),
            "b_slope": (("chain", "draw", "slope"), np.full((1, S, 1), b[1])),
            "sigma": (("chain", "draw"), np.full((1, S), 25.0)),
            "sd_Subject": (("chain", "draw", "Subject_term"), np.tile(sd, (1, S, 1))),
            "cor_chol_Subject": (("chain", "draw", "a", "c"), np.tile(chol, (1, S, 1, 1))),
        },
        coords={"chain": [0], "draw": np.arange(S)},
    )
    tree = xr.DataTree.from_dict({"posterior": post})
    r = draw_group_effects(tree, d, st, seed=5)["posterior"]["r_Subject"].to_numpy()[0]
    L = sd[:, None] * chol
    g = d.groups[0]
    for j in (0, 7):
        rows = g.index == j
        Z = g.Z[rows]
        prec = np.linalg.inv(L @ L.T) + Z.T @ Z / 25.0**2
        cov = np.linalg.inv(prec)
        mean = cov @ Z.T @ (d.y[rows] - d.X[rows] @ b) / 25.0**2
        se = np.sqrt(np.diag(cov) / S)
        assert np.all(np.abs(r[:, j].mean(0) - mean) < 4 * se)
        assert np.allclose(np.cov(r[:, j].T), cov, rtol=0.1, atol=0.05 * np.sqrt(cov[0, 0]))


@pytest.mark.slow
def test_same_posterior_as_plain_model_on_simulated_data() -> None:
    """Random intercept and slope, unequal group sizes: marginalised vs plain fits agree."""
    sim = mb.simulate.lmm(n_clinics=1, patients_per_clinic=30, n_times=6, seed=12).data
    sim = sim.iloc[np.random.default_rng(0).permutation(len(sim))[: len(sim) - 25]]
    spec = mb.LMM("y ~ trt * time + (time | patient)")
    marg = quiet_fit(spec, sim, draws=800, tune=600, chains=2, seed=1)
    plain = quiet_fit(spec, sim, draws=800, tune=600, chains=2, seed=2, marginalize=False)
    assert marg.idata["posterior"].attrs["marginalization"].startswith("integrated out")
    assert plain.idata["posterior"].attrs["marginalization"].startswith("not integrated")
    assert_same_posterior(marg, plain)
    for name in ("r_patient", "sd_patient", "sigma"):
        a, b = marg.posterior[name], plain.posterior[name]
        ratio = (a.std(("chain", "draw")) / b.std(("chain", "draw"))).to_numpy()
        assert np.all(np.abs(ratio - 1) < 0.2), (name, ratio)
    ra = marg.posterior["r_patient"].mean(("chain", "draw"))
    rb = plain.posterior["r_patient"].mean(("chain", "draw"))
    scale = marg.posterior["r_patient"].std(("chain", "draw"))
    assert float((abs(ra - rb) / scale).max()) < 0.25
    assert "log_likelihood" in marg.idata.children
