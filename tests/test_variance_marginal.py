"""The marginalised Gaussian LMM with a residual SD per class of rows (``sigma: "~ arm"``,
``variance: {ident: visit}``; compile/marginal.py, docs/distributional.md), without sampling.

The sampled model's potential equals the brute-force marginal likelihood
``Σ_j log N(y_j; X_j b, D_j² + Z_j Σ Z_jᵀ)`` (one factor, and patients nested in clinics:
``D² + Zo Σo Zoᵀ + blockdiag(Zi Σi Ziᵀ)``), the conditional draws of ``r`` have the exact
Gaussian conditional with weights ``1/σ_i²``, and the plain model is used (and says why) for
group terms in the sigma formula, a continuous covariate in it, and a power of the fitted
value. The fits (same posterior as the plain model) are in ``test_variance_fits.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_residuals import _point
from test_variance import evaluate, panel

import mixedbayes as mb
from mixedbayes.compile.marginal import (
    MAX_SIGMA_CLASSES,
    build_marginal,
    draw_group_effects,
    sufficient_statistics,
)
from mixedbayes.kinds import build_prior_table


def _nested(seed: int = 3) -> pd.DataFrame:
    sim = mb.simulate.lmm(n_clinics=4, patients_per_clinic=5, n_times=4, seed=seed).data
    sim = sim.iloc[np.random.default_rng(1).permutation(len(sim))[:-9]]  # unbalanced
    return sim.assign(time_f=lambda f: f["time"].astype(int).astype(str))


def _scale(values: dict[str, np.ndarray], g: str) -> np.ndarray:
    sd = values[f"sd_{g}"]
    return sd[:, None] * values.get(f"cor_chol_{g}", np.eye(len(sd)))


CASES = {
    "arm_random_slope": ("y ~ visit + (visit | id)", {"sigma": "~ arm"}, "panel"),
    "varIdent_random_intercept": (
        "y ~ arm * visit + (1 | id)",
        {"variance": {"ident": "visit"}},
        "panel",
    ),
    "nested_sigma_by_time_and_arm": (
        "y ~ trt * time + (1 + time | clinic) + (1 | clinic:patient)",
        {"sigma": "~ trt + time_f"},
        "nested",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [1, 2])
def test_marginal_logp_with_sigma_classes_equals_brute_force(case: str, seed: int) -> None:
    formula, extra, data = CASES[case]
    df = panel(seed=2) if data == "panel" else _nested()
    spec = mb.LMM(formula, **extra)  # type: ignore[arg-type]
    compiled = mb.compile(spec, df)
    assert compiled.marginalization.startswith("integrated out")
    d = compiled.design
    model, st = build_marginal(d, build_prior_table(d, d.spec.priors))
    assert st.heteroscedastic and "sigma" not in model.named_vars
    assert st.stats["sigma_U"].shape[0] == len(np.unique(d.dpar("sigma").X, axis=0))  # type: ignore[union-attr]
    names = ["b", "b_sigma"] + [
        f"{k}_{g.name}"
        for g in d.groups
        for k in ("sd", "cor_chol")
        if f"{k}_{g.name}" in model.named_vars
    ]
    point = _point(model, seed)
    value, *vals = evaluate(model, point, [model.potentials[0].name, *names])
    v = dict(zip(names, vals, strict=True))
    sd_rows = np.exp(d.dpar("sigma").X @ v["b_sigma"])  # type: ignore[union-attr]
    assert np.ptp(sd_rows) > 1e-3
    mean = d.X @ v["b"]
    groups = {g.name: g for g in d.groups}
    outer = groups.get("clinic")
    inner = groups["id"] if outer is None else groups["clinic:patient"]
    top = inner if outer is None else outer
    expected = 0.0
    for j in range(top.n_levels):
        rows = np.flatnonzero(top.index == j)
        V = np.diag(sd_rows[rows] ** 2)
        if outer is not None:
            Lo = _scale(v, outer.name)
            V += outer.Z[rows] @ Lo @ Lo.T @ outer.Z[rows].T
        Li = _scale(v, inner.name)
        for p in np.unique(inner.index[rows]):
            sub = np.flatnonzero(inner.index[rows] == p)
            Zi = inner.Z[rows[sub]]
            V[np.ix_(sub, sub)] += Zi @ Li @ Li.T @ Zi.T
        expected += stats.multivariate_normal(mean[rows], V).logpdf(d.y[rows])
    assert float(value) == pytest.approx(expected, rel=1e-8)


def test_conditional_draws_with_weights_match_the_exact_gaussian() -> None:
    """At one parameter value, the draws of r_j have mean (Σ⁻¹ + ZᵀWZ)⁻¹ ZᵀW(y − Xb) and
    covariance (Σ⁻¹ + ZᵀWZ)⁻¹ with W = diag(1/σ_i²), σ_i = exp(X_sigma b_sigma)."""
    import xarray as xr

    d = mb.design(mb.LMM("y ~ visit + (visit | id)", sigma="~ arm"), panel(seed=2))
    st = sufficient_statistics(d)
    S = 4000
    sd = np.array([1.5, 0.4])
    chol = np.array([[1.0, 0.0], [0.3, np.sqrt(1 - 0.09)]])
    b = np.array([5.0, 0.4])
    b_sigma = np.array([0.1, -0.6])
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), np.full((1, S), b[0] + b[1] * d.x_means[1])),
            "b_slope": (("chain", "draw", "slope"), np.full((1, S, 1), b[1])),
            "b_sigma": (("chain", "draw", "sigma_term"), np.tile(b_sigma, (1, S, 1))),
            "sd_id": (("chain", "draw", "id_term"), np.tile(sd, (1, S, 1))),
            "cor_chol_id": (("chain", "draw", "a", "c"), np.tile(chol, (1, S, 1, 1))),
        },
        coords={"chain": [0], "draw": np.arange(S)},
    )
    tree = draw_group_effects(xr.DataTree.from_dict({"posterior": post}), d, st, seed=5)
    r = tree["posterior"]["r_id"].to_numpy()[0]
    L = sd[:, None] * chol
    g = d.groups[0]
    w = np.exp(-2.0 * d.dpar("sigma").X @ b_sigma)  # type: ignore[union-attr]
    for j in (0, 3, 8):
        rows = g.index == j
        Z = g.Z[rows]
        cov = np.linalg.inv(np.linalg.inv(L @ L.T) + Z.T @ (w[rows, None] * Z))
        mean = cov @ Z.T @ (w[rows] * (d.y[rows] - d.X[rows] @ b))
        se = np.sqrt(np.diag(cov) / S)
        assert np.all(np.abs(r[:, j].mean(0) - mean) < 4 * se)
        assert np.allclose(np.cov(r[:, j].T), cov, rtol=0.1, atol=0.05 * np.sqrt(cov[0, 0]))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"sigma": "~ arm + (1 | id)"}, "group terms"),
        ({"sigma": "~ x"}, f"more than {MAX_SIGMA_CLASSES} distinct values"),
        ({"variance": {"power": "fitted"}}, "power of the fitted value"),
    ],
)
def test_plain_model_where_the_classes_do_not_apply(extra: dict[str, object], reason: str) -> None:
    df = panel(seed=2).assign(x=lambda f: np.linspace(0.0, 1.0, len(f)))
    compiled = mb.compile(mb.LMM("y ~ visit + (1 | id)", **extra), df)  # type: ignore[arg-type]
    assert compiled.marginal is None
    assert compiled.marginalization.startswith("not integrated out") and reason in (
        compiled.marginalization
    )
