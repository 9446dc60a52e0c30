"""Correlated residuals within a subject (``residuals:`` of an ``lmm``; docs/residuals.md).

No-sampling checks: the compiled log-density of the response equals a dense
``scipy.stats.multivariate_normal`` per subject, built here from the structure's definition
(nlme's corAR1 with a gap, corCAR1 on irregular times, corCompSymm, mmrm's unstructured
covariance with missing visits, AR(1) beside a random intercept); the pointwise
log-likelihood and predictive draws of the results layer agree with the same dense
covariance; spec and data errors; names and dims. One small sampling test recovers a
simulated AR(1) correlation.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedbayes as mb
from mixedbayes._system import python_ops
from mixedbayes.design.residuals import (
    block_covariances,
    residual_design,
    residual_log_likelihood,
    simulate_residuals,
)
from mixedbayes.errors import DataError, SpecError


def _panel(seed: int = 1, n_subjects: int = 24, visits: int = 5) -> pd.DataFrame:
    """Subjects with a random subset (>= 2) of integer visits 1..visits (gaps), an arm, and
    an irregular continuous time."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        k = int(rng.integers(2, visits + 1))
        chosen = np.sort(rng.choice(np.arange(1, visits + 1), size=k, replace=False))
        for v in chosen:
            rows.append(
                {
                    "id": f"p{s:02d}",
                    "visit": int(v),
                    "t": float(v) + float(rng.uniform(-0.3, 0.3)),
                    "trt": ["placebo", "active"][s % 2],
                    "y": float(rng.normal(0.3 * v, 1.0)),
                }
            )
    return pd.DataFrame(rows)


def _point(model: Any, seed: int) -> dict[str, np.ndarray]:
    """A random point on the sampler's scale (initial point, jittered)."""
    rng = np.random.default_rng(seed)
    ip = model.initial_point()
    return {k: v + rng.normal(0.0, 0.4, size=np.shape(v)) for k, v in ip.items()}


def _evaluate(model: Any, point: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Values of model variables at ``point`` (random variables read through their value)."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    with python_ops():
        fn = model.compile_fn(outs, inputs=model.value_vars, mode="FAST_COMPILE")
        return [np.asarray(v) for v in fn(point)]


def _observed_logp(compiled: Any, point: dict[str, np.ndarray]) -> float:
    model = compiled.model
    with python_ops():
        fn = model.compile_fn(
            model.logp(vars=model.observed_RVs), inputs=model.value_vars, mode="FAST_COMPILE"
        )
        return float(fn(point))


def _dense_cov(correlation: str, times: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """The structure's covariance of one subject, written from its definition."""
    dt = np.abs(times[:, None] - times[None, :])
    if correlation in ("ar1", "car1"):
        return p["sigma"] ** 2 * p["phi"] ** dt
    if correlation == "cs":
        return p["sigma"] ** 2 * np.where(dt == 0, 1.0, p["rho"])
    idx = times.astype(int)
    full = np.outer(p["sd"], p["sd"]) * p["cor"]
    return full[np.ix_(idx, idx)]


CASES = {
    "ar1_gaps": ("y ~ trt + visit", "ar1", "visit"),
    "car1_irregular": ("y ~ trt + t", "car1", "t"),
    "cs": ("y ~ trt + visit", "cs", "visit"),
    "unstructured_missing_visits": ("y ~ trt * C(visit)", "unstructured", "visit"),
    "ar1_random_intercept": ("y ~ trt + visit + (1 | id)", "ar1", "visit"),
}


@pytest.mark.parametrize("route", ["padded", "by_size", "gather"])
@pytest.mark.parametrize("case", list(CASES))
def test_log_density_equals_dense_multivariate_normal(
    case: str, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Padded to one batch (the default), one batch per block size, and with each subject
    reading its pattern's factor (no pattern indicator) alike."""
    module = importlib.import_module("mixedbayes.compile.residuals")
    if route == "by_size":
        monkeypatch.setattr(module, "PAD_LIMIT", 0)
    if route == "gather":
        monkeypatch.setattr(module, "ONE_HOT_LIMIT", 0)
    formula, correlation, time = CASES[case]
    df = _panel()
    spec = mb.LMM(formula, residuals={"correlation": correlation, "time": time, "group": "id"})
    compiled = mb.compile(spec, df)
    assert compiled.marginalization.startswith("not integrated out: correlated residuals")
    model = compiled.model
    point = _point(model, seed=3)
    names = ["b"]
    if correlation == "unstructured":
        names += ["sd_visit", "cor_visit"]
    else:
        names += ["sigma", "rho_cs" if correlation == "cs" else "phi_ar"]
    if "(1 | id)" in formula:
        names.append("r_id")
    values = dict(zip(names, _evaluate(model, point, names), strict=True))
    design = compiled.design
    mu = design.X @ values["b"]
    levels = list(design.groups[0].levels) if design.groups else []
    if "r_id" in values:
        mu = mu + values["r_id"][:, 0][[levels.index(s) for s in design.data["id"]]]
    p = {
        "sigma": values.get("sigma"),
        "phi": values.get("phi_ar"),
        "rho": values.get("rho_cs"),
        "sd": values.get("sd_visit"),
        "cor": values.get("cor_visit"),
    }
    if correlation == "ar1":
        assert p["phi"] is not None and -1 < p["phi"] < 1
    times = design.data[time].to_numpy(dtype=float)
    if correlation == "unstructured":
        times = times - 1.0  # visit levels 1..5 at positions 0..4
    expected = 0.0
    for subject in pd.unique(design.data["id"]):
        rows = np.flatnonzero(design.data["id"].to_numpy() == subject)
        cov = _dense_cov(correlation, times[rows], p)
        expected += stats.multivariate_normal(mu[rows], cov).logpdf(design.y[rows])
    got = _observed_logp(compiled, point)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-8)


def test_ar1_negative_phi_and_patterns_share_one_factor() -> None:
    """Subjects with the same gaps share a pattern; a negative phi is exact (powers table)."""
    df = _panel(seed=5, n_subjects=40)
    spec = mb.LMM("y ~ visit", residuals={"correlation": "ar1", "time": "visit", "group": "id"})
    design = mb.design(spec, df)
    rd = residual_design(design)
    assert sum(b.rows.shape[0] for b in rd.batches) == 40
    assert sum(b.n_patterns for b in rd.batches) < 40
    values = {"sigma": np.array([1.3]), "phi": np.array([-0.55])}
    for batch in rd.batches:
        cov = block_covariances(rd, batch, values)[0]
        for j, rows in enumerate(batch.rows):
            t = design.data["visit"].to_numpy(dtype=float)[rows]
            dense = _dense_cov("ar1", t, {"sigma": 1.3, "phi": -0.55})
            np.testing.assert_allclose(cov[batch.pattern[j]], dense)


def test_pointwise_log_likelihood_and_predictive_draws() -> None:
    """Each row's log-density given its subject's other rows is the dense conditional
    normal; simulated residuals have the block covariance."""
    df = _panel(seed=7, n_subjects=12)
    spec = mb.LMM(
        "y ~ trt * C(visit)",
        residuals={"correlation": "unstructured", "time": "visit", "group": "id"},
    )
    design = mb.design(spec, df)
    rd = residual_design(design)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov_full = a @ a.T + 5 * np.eye(5)
    sd = np.sqrt(np.diag(cov_full))
    values = {"sd": sd[None], "cor": (cov_full / np.outer(sd, sd))[None]}
    resid = rng.normal(size=(1, design.n))
    ll = residual_log_likelihood(rd, resid, values)[0]
    visits = design.data["visit"].to_numpy(dtype=int) - 1
    ids = design.data["id"].to_numpy()
    for i in range(design.n):
        rows = np.flatnonzero(ids == ids[i])
        others = rows[rows != i]
        S = cov_full[np.ix_(visits[rows], visits[rows])]
        pos = list(rows).index(i)
        rest = [list(rows).index(o) for o in others]
        w = np.linalg.solve(S[np.ix_(rest, rest)], S[rest, pos])
        m = w @ resid[0, others]
        v = S[pos, pos] - S[pos, rest] @ w
        assert ll[i] == pytest.approx(stats.norm(m, np.sqrt(v)).logpdf(resid[0, i]), rel=1e-9)
    draws = simulate_residuals(rd, {k: np.repeat(v, 4000, axis=0) for k, v in values.items()}, rng)
    subject = rd.batches[-1].rows[0]
    emp = np.cov(draws[:, subject].T)
    want = cov_full[np.ix_(visits[subject], visits[subject])]
    np.testing.assert_allclose(emp, want, atol=0.25 * np.max(np.diag(want)))


def test_names_dims_and_priors() -> None:
    df = _panel()
    us = mb.LMM(
        "y ~ trt * C(visit)",
        residuals={"correlation": "unstructured", "time": "visit", "group": "id"},
    )
    model = mb.compile(us, df).model
    assert "sigma" not in model.named_vars
    assert model.named_vars_to_dims["sd_visit"] == ("visit",)
    assert model.named_vars_to_dims["cor_visit"] == ("visit", "visit2")
    assert list(model.coords["visit"]) == ["1", "2", "3", "4", "5"]
    table = mb.get_priors(us, df).to_frame()
    assert set(table.loc[table["class"] == "sd", "coef"]) == {"1", "2", "3", "4", "5"}
    assert "sigma" not in set(table["class"])
    ar1 = mb.LMM("y ~ visit + (1 | id)", residuals={"correlation": "ar1", "time": "visit"})
    model = mb.compile(ar1, df).model
    assert {"phi_ar", "sigma", "r_id"} <= set(model.named_vars)
    priors = mb.get_priors(ar1, df)
    assert str(priors.get("phi_ar").prior) == "uniform(-1, 1)"
    car1 = mb.LMM("y ~ t", residuals={"correlation": "car1", "time": "t", "group": "id"})
    assert str(mb.get_priors(car1, df).get("phi_ar").prior) == "uniform(0, 1)"
    cs = mb.LMM("y ~ visit", residuals={"correlation": "cs", "time": "visit", "group": "id"})
    assert mb.get_priors(cs, df).get("rho_cs").prior.args == (-0.25, 1.0)
    # the prior table is overridable like any other row
    tight = mb.LMM(
        "y ~ visit",
        residuals={"correlation": "ar1", "time": "visit", "group": "id"},
        priors=[{"class": "phi_ar", "prior": "uniform(0, 1)"}],
    )
    assert str(mb.get_priors(tight, df).get("phi_ar").prior) == "uniform(0, 1)"


@pytest.mark.parametrize(
    ("formula", "residuals", "message"),
    [
        ("y ~ visit", {"correlation": "ar1", "time": "visit"}, "residuals.group is required"),
        (
            "y ~ visit + (1 | id) + (1 | site)",
            {"correlation": "ar1", "time": "visit"},
            "ambiguous",
        ),
        (
            "y ~ visit + (1 | id)",
            {"correlation": "unstructured", "time": "visit"},
            "not identified",
        ),
        (
            "y ~ visit + (1 + visit | id)",
            {"correlation": "cs", "time": "visit", "group": "id"},
            "not identified",
        ),
        ("y ~ visit", {"correlation": "ar2", "time": "visit", "group": "id"}, "ar1"),
    ],
)
def test_spec_errors(formula: str, residuals: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        mb.LMM(formula, residuals=residuals)


def test_glmm_takes_latent_ar1_not_cs() -> None:
    """A glmm's ar1/car1 is a latent process (tests/test_latent_residuals.py); its cs is a
    random intercept, and the error says so."""
    spec = mb.GLMM("y ~ x + (1 | id)", "poisson", residuals={"correlation": "ar1", "time": "v"})
    assert spec.residuals is not None and spec.latent_residuals
    with pytest.raises(SpecError, match="random intercept per subject"):
        mb.GLMM("y ~ x", "poisson", residuals={"correlation": "cs", "time": "v", "group": "id"})


def test_data_errors() -> None:
    df = _panel()
    spec = mb.LMM("y ~ trt", residuals={"correlation": "ar1", "time": "t", "group": "id"})
    with pytest.raises(DataError, match="integer visits"):
        mb.design(spec, df)
    spec = mb.LMM("y ~ trt", residuals={"correlation": "ar1", "time": "week", "group": "id"})
    with pytest.raises(DataError, match="no column 'week'"):
        mb.design(spec, df)
    dup = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    spec = mb.LMM("y ~ trt", residuals={"correlation": "ar1", "time": "visit", "group": "id"})
    with pytest.raises(DataError, match="two rows at one"):
        mb.design(spec, dup)


def test_ar1_recovered_by_simulation() -> None:
    """AR(1) with phi = 0.6 (6 visits × 80 subjects, gaps): the posterior mean of phi_ar
    within 0.1 of the truth and the 95% interval covers it; sigma within 15%."""
    rng = np.random.default_rng(11)
    phi, sigma, n_subj, n_vis = 0.6, 1.5, 80, 6
    cov = sigma**2 * phi ** np.abs(np.subtract.outer(np.arange(n_vis), np.arange(n_vis)))
    rows = []
    for s in range(n_subj):
        e = rng.multivariate_normal(np.zeros(n_vis), cov)
        keep = np.sort(rng.choice(n_vis, size=int(rng.integers(4, n_vis + 1)), replace=False))
        trt = s % 2
        for v in keep:
            rows.append({"id": s, "visit": v, "trt": trt, "y": 2.0 + 0.5 * trt * v + e[v]})
    df = pd.DataFrame(rows)
    spec = mb.LMM(
        "y ~ trt * visit", residuals={"correlation": "ar1", "time": "visit", "group": "id"}
    )
    fit = mb.fit(spec, df, draws=300, tune=300, chains=2, seed=5)
    draws = fit.posterior["phi_ar"].to_numpy().ravel()
    assert abs(draws.mean() - phi) < 0.1
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert lo < phi < hi
    assert fit.posterior["sigma"].mean().item() == pytest.approx(sigma, rel=0.15)
    cov_hat = fit.residual_covariance([0, 1, 2])
    assert cov_hat.shape == (3, 3)
    assert cov_hat.iloc[0, 1] / cov_hat.iloc[0, 0] == pytest.approx(phi, abs=0.1)
    table = fit.summary()
    assert "phi_ar" in set(table["parameter"])
    ll = fit.idata["log_likelihood"]
    assert ll[next(iter(ll.data_vars))].shape[-1] == len(df)


def test_response_predictions_carry_the_correlation() -> None:
    """``predict(kind="response")`` on new rows of one subject draws its residuals jointly
    from the unstructured covariance (no sampling: a hand-made posterior)."""
    import xarray as xr

    from mixedbayes.results.predict import predict_draws

    df = _panel(seed=3, n_subjects=10)
    spec = mb.LMM(
        "y ~ C(visit)", residuals={"correlation": "unstructured", "time": "visit", "group": "id"}
    )
    design = mb.design(spec, df)
    cov = 0.5 * np.ones((5, 5)) + 0.5 * np.eye(5)
    sd = np.sqrt(np.diag(cov))
    n = 4000
    terms = list(design.fixed_terms)
    posterior = xr.Dataset(
        {
            "b": (("chain", "draw", "term"), np.zeros((1, n, len(terms)))),
            "sd_visit": (("chain", "draw", "visit"), np.broadcast_to(sd, (1, n, 5)).copy()),
            "cor_visit": (
                ("chain", "draw", "visit", "visit2"),
                np.broadcast_to(cov / np.outer(sd, sd), (1, n, 5, 5)).copy(),
            ),
        },
        coords={"chain": [0], "draw": np.arange(n), "term": terms},
    )
    new = pd.DataFrame({"id": ["new"] * 3, "visit": [1, 3, 5], "y": [0.0] * 3})
    draws = predict_draws(posterior, design, new, kind="response", seed=1).to_numpy()[0]
    emp = np.cov(draws.T)
    np.testing.assert_allclose(emp, cov[np.ix_([0, 2, 4], [0, 2, 4])], atol=0.08)
    with pytest.raises(DataError, match="levels the fit did not see"):
        residual_design(design, new.assign(visit=[1, 3, 9]))


def test_compile_cache_key_sees_the_blocks() -> None:
    """Two data sets of one shape whose subjects differ must not share a compiled model
    (the blocks are constants inside one opaque node; its name carries their hash)."""
    from mixedbayes.inference.reuse import structure_key

    df = _panel(seed=2)
    other = df.iloc[::-1].reset_index(drop=True)  # the same rows, other blocks
    spec = mb.LMM("y ~ visit", residuals={"correlation": "ar1", "time": "visit", "group": "id"})
    same = structure_key(mb.compile(spec, df.assign(y=df["y"] + 1.0)).model)[0]
    first = structure_key(mb.compile(spec, df).model)[0]
    second = structure_key(mb.compile(spec, other).model)[0]
    assert first == same
    assert first != second


def test_report_section() -> None:
    """``residual_covariance`` and the report's section (table and heatmap) of an AR(1) fit,
    from a hand-made posterior (sigma 2, phi 0.5)."""
    import dataclasses
    import types

    import xarray as xr

    from mixedbayes.report.registry import get_section
    from mixedbayes.results.residual_covariance import residual_covariance

    df = _panel(seed=4, n_subjects=8)
    spec = mb.LMM("y ~ visit", residuals={"correlation": "ar1", "time": "visit", "group": "id"})
    design = mb.design(spec, df)
    posterior = xr.Dataset(
        {
            "sigma": (("chain", "draw"), np.full((1, 10), 2.0)),
            "phi_ar": (("chain", "draw"), np.full((1, 10), 0.5)),
        },
        coords={"chain": [0], "draw": np.arange(10)},
    )

    @dataclasses.dataclass
    class FakeFit:
        design: Any
        posterior: Any

    fit: Any = FakeFit(design, posterior)
    cov = residual_covariance(fit, [1, 2, 4])
    np.testing.assert_allclose(cov.to_numpy()[0], [4.0, 2.0, 0.5])
    cor = residual_covariance(fit, correlation=True)
    assert list(cor.index) == ["1", "2", "3", "4", "5"]
    section = get_section("residual_covariance")
    assert section.applies(fit)
    blocks = section.build(types.SimpleNamespace(fit=fit))  # type: ignore[arg-type]
    assert len(blocks) == 3


def test_auto_parametrization_is_noncentred_beside_correlated_residuals() -> None:
    """Subject intercepts the rows pin down (the rule's data weight > 1) are centred with
    independent residuals but non-centred beside AR(1) residuals within the subject, where
    the rule's weight overstates the information (docs/residuals.md)."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {"id": np.repeat([f"s{i:02d}" for i in range(30)], 8), "visit": np.tile(np.arange(8), 30)}
    )
    df["y"] = np.repeat(rng.normal(0, 3.0, 30), 8) + rng.normal(0, 0.5, len(df))
    plain = mb.design(mb.LMM("y ~ visit + (1 | id)"), df)
    assert plain.groups[0].blocks[0].parametrization == "centered"
    spec = mb.LMM(
        "y ~ visit + (1 | id)", residuals={"correlation": "ar1", "time": "visit", "group": "id"}
    )
    block = mb.design(spec, df).groups[0].blocks[0]
    assert block.parametrization == "noncentered"
    assert "ar1" in block.reason and "data weight" in block.reason
    fixed = mb.LMM(
        "y ~ visit + (1 | id)",
        residuals={"correlation": "ar1", "time": "visit", "group": "id"},
        group_effects={"id": {"parametrization": "centered"}},
    )
    assert mb.design(fixed, df).groups[0].blocks[0].parametrization == "centered"
