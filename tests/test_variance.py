"""Heteroscedastic residuals and dispersion formulas (``sigma:``, ``phi:``, ``alpha:``,
``variance: {ident, power}``; docs/distributional.md), without sampling.

The compiled log-density of the response equals a SciPy computation with each row's SD
written out here from the definition (a sigma formula with group effects, nlme's varIdent
and varPower, varIdent beside AR(1) and power beside compound symmetry as one dense
multivariate normal per subject ``D R D``); the NumPy pointwise log-likelihood, the family
parameters of predictions and the predictive draws use the same SDs; every dispersion
formula of the families (gaussian, student, lognormal, beta, gamma, negative binomial)
against the family's SciPy log-density; spec and data errors; names, dims, prior rows.
The recovery fit is in ``test_variance_fits.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash
from scipy import stats
from test_distributional import _prior_as_posterior, pymc_pointwise_loglik
from test_residuals import _point

import mixedbayes as mb
from mixedbayes._system import python_ops
from mixedbayes.families import FAMILIES
from mixedbayes.results.loglik import regression_log_likelihood
from mixedbayes.results.predict import family_params, predict_draws, rows_of


def panel(seed: int = 1, n_subjects: int = 16, visits: int = 5) -> pd.DataFrame:
    """Subjects × integer visits (some missing), an arm, a positive response."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        keep = np.sort(
            rng.choice(np.arange(1, visits + 1), size=int(rng.integers(3, 6)), replace=False)
        )
        for v in keep:
            trt = s % 2
            sd = np.exp(0.2 + 0.5 * trt)
            rows.append(
                {
                    "id": f"p{s:02d}",
                    "visit": int(v),
                    "trt": float(trt),
                    "arm": ["placebo", "active"][trt],
                    "y": float(5.0 + 0.4 * v + rng.normal(0.0, sd)),
                }
            )
    return pd.DataFrame(rows)


def evaluate(model: Any, point: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Values of model variables at ``point`` (random variables read through their value;
    inputs they do not read are ignored)."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    with python_ops():
        fn = model.compile_fn(
            outs, inputs=model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
        )
        return [np.asarray(v) for v in fn(point)]


def _observed_logp(compiled: Any, point: dict[str, np.ndarray]) -> float:
    model = compiled.model
    with python_ops():
        fn = model.compile_fn(
            model.logp(vars=model.observed_RVs),
            inputs=model.value_vars,
            mode="FAST_COMPILE",
            on_unused_input="ignore",
        )
        return float(fn(point))


def _values(compiled: Any, point: dict[str, np.ndarray], names: list[str]) -> dict[str, Any]:
    return dict(zip(names, evaluate(compiled.model, point, names), strict=True))


def _mean(compiled: Any, values: dict[str, Any]) -> np.ndarray:
    """``X b`` plus the response's random intercept, from the evaluated values."""
    design = compiled.design
    mu = design.X @ values["b"]
    for g in design.groups:
        mu = mu + values[f"r_{g.name}"][g.index, 0]
    return np.asarray(mu)


# --------------------------------------------------------------------------- spec
def test_spec_keys_round_trip_and_describe() -> None:
    text = 'kind: lmm\nformula: "y ~ visit + (1 | id)"\nsigma: "~ arm + (1 | id)"\n'
    spec = mb.load_spec(text)
    assert spec.dpar_formulas() == {"sigma": "~ arm + (1 | id)"}
    assert mb.load_spec(spec.to_yaml()) == spec
    ident = mb.LMM("y ~ visit + (1 | id)", variance={"ident": "visit", "power": "fitted"})
    assert ident.dpar_formulas() == {"sigma": "~ 1 + C(visit)"}
    assert mb.load_spec(ident.to_yaml()) == ident
    described = mb.kinds.kind_of(ident).describe(ident)
    assert described.endswith("variance ident(visit) * power(fitted)")
    beta = mb.GLMM("y ~ x", "beta", phi="~ x + (1 | g)")
    assert beta.dpar_formulas() == {"phi": "~ x + (1 | g)"}
    assert mb.GLMM("y ~ x", "gamma", alpha="~ x").dpar_formulas() == {"alpha": "~ x"}


UNSTRUCTURED = {
    "formula": "y ~ visit",
    "residuals": {"correlation": "unstructured", "time": "visit", "group": "id"},
}

BAD_SPECS = {
    "sigma_and_variance": (
        {"sigma": "~ arm", "variance": {"ident": "visit"}},
        "variance",
        "both set the residual SD",
    ),
    "power_of_a_covariate": ({"variance": {"power": "age"}}, "variance.power", "log(abs(x))"),
    "empty_variance": ({"variance": {}}, "variance", "ident: <column>"),
    "unknown_variance_key": ({"variance": {"exp": "visit"}}, "variance.exp", "unknown key"),
    "sigma_not_rhs": ({"sigma": "arm"}, "sigma", "starts with '~'"),
    "sigma_with_unstructured": ({**UNSTRUCTURED, "sigma": "~ arm"}, "sigma", "redundant"),
    "variance_with_unstructured": (
        {**UNSTRUCTURED, "variance": {"ident": "visit"}},
        "variance",
        "redundant",
    ),
    "power_with_imputed_covariates": (
        {
            "variance": {"power": "fitted"},
            "missing": {"covariates": {"visit": {"formula": "visit ~ arm"}}},
        },
        "variance",
        "not supported yet",
    ),
    "zi_on_an_lmm": ({"zi": "~ arm"}, "zi", "unknown key"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_spec_errors_name_the_key(case: str) -> None:
    extra, where, message = BAD_SPECS[case]
    spec = {"kind": "lmm", "formula": "y ~ visit + (1 | id)", **extra}
    with pytest.raises(mb.SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        mb.load_spec(spec)
    assert err.value.problems[0].where == where, err.value


@pytest.mark.parametrize(
    ("family", "key", "accepting"),
    [
        ("poisson", "sigma", "gaussian"),
        ("poisson", "phi", "beta"),
        ("beta", "alpha", "gamma"),
        ("bernoulli", "sigma", "student"),
    ],
)
def test_dispersion_formula_of_a_family_without_it(family: str, key: str, accepting: str) -> None:
    with pytest.raises(mb.SpecError, match=accepting) as err:
        mb.GLMM("y ~ x", family, **{key: "~ x"})  # type: ignore[arg-type]
    assert err.value.problems[0].where == key


def test_variance_is_for_the_gaussian_family() -> None:
    with pytest.raises(mb.SpecError, match="gaussian family") as err:
        mb.GLMM("y ~ x", "student", variance={"ident": "g"})
    assert err.value.problems[0].where == "variance"
    # a gaussian glmm takes it (same mechanism as the lmm)
    df = panel()
    design = mb.design(mb.GLMM("y ~ visit", "gaussian", variance={"ident": "visit"}), df)
    assert design.dpar("sigma") is not None


def test_data_errors_name_the_column() -> None:
    df = panel()
    with pytest.raises(mb.DataError, match="'dose'"):
        mb.design(mb.LMM("y ~ visit + (1 | id)", variance={"ident": "dose"}), df)
    with pytest.raises(mb.DataError, match="'age'"):
        mb.design(mb.LMM("y ~ visit + (1 | id)", sigma="~ age"), df)


# --------------------------------------------------------------------------- design, priors
def test_names_dims_terms_and_priors() -> None:
    df = panel()
    before = frame_hash(df)
    spec = mb.LMM("y ~ visit + (1 | id)", sigma="~ arm + (1 | id)")
    compiled = mb.compile(spec, df)
    assert frame_hash(df) == before
    dims = compiled.model.named_vars_to_dims
    assert dims["b_sigma"] == ("sigma_term",)
    assert dims["sd_id_sigma"] == ("id_sigma_term",)
    assert dims["r_id_sigma"] == ("id", "id_sigma_term")
    assert list(compiled.model.coords["sigma_term"]) == ["Intercept", "arm[placebo]"]
    assert "sigma" not in compiled.model.named_vars
    assert compiled.marginalization.startswith("not integrated out")
    kind = mb.kinds.kind_of(spec)
    assert {"b_sigma", "sd_id_sigma"} <= set(kind.family_variables(compiled.design))
    table = mb.get_priors(spec, df)
    sd_y = float(np.std(df["y"], ddof=1))
    intercept = table.get("Intercept", "", "", "sigma")
    assert intercept.prior.name == "student_t"
    assert intercept.prior.args == pytest.approx((3.0, np.log(sd_y), 2.5), rel=1e-3)
    assert "log(sd(y))" in intercept.provenance
    assert {(r.class_, r.coef, r.group) for r in table if r.nlpar == "sigma"} == {
        ("Intercept", "", ""),
        ("b", "arm[placebo]", ""),
        ("sd", "Intercept", "id"),
    }
    assert "sigma" not in {r.class_ for r in table}
    override = mb.LMM(
        "y ~ visit + (1 | id)",
        sigma="~ arm + (1 | id)",
        priors=[{"class": "b", "coef": "arm[placebo]", "nlpar": "sigma", "prior": "normal(0, 1)"}],
    )
    assert str(mb.get_priors(override, df).get("b", "arm[placebo]", "", "sigma").prior) == (
        "normal(0, 1)"
    )
    # varIdent: the factor's levels name the terms; varPower: delta_power
    ident = mb.compile(mb.LMM("y ~ visit + (1 | id)", variance={"ident": "visit"}), df)
    assert list(ident.model.coords["sigma_term"]) == [
        "Intercept",
        "visit[2]",
        "visit[3]",
        "visit[4]",
        "visit[5]",
    ]
    power_spec = mb.LMM("y ~ visit + (1 | id)", variance={"power": "fitted"})
    power = mb.compile(power_spec, df)
    assert {"sigma", "delta_power"} <= set(power.model.named_vars)
    assert "delta_power" in mb.kinds.kind_of(power_spec).family_variables(power.design)
    assert str(mb.get_priors(power_spec, df).get("delta_power").prior) == "normal(0, 1)"
    assert "power of the fitted value" in power.marginalization


# --------------------------------------------------------------------------- log-density
LATENT_CASES = {
    "sigma_formula_with_group_effects": {"sigma": "~ arm + (1 | id)"},
    "varIdent": {"variance": {"ident": "visit"}},
    "varPower": {"variance": {"power": "fitted"}},
    "varIdent_times_varPower": {"variance": {"ident": "visit", "power": "fitted"}},
}


def _row_sd(compiled: Any, values: dict[str, Any], mu: np.ndarray) -> np.ndarray:
    """Each row's SD from the definition: exp(X_sigma b_sigma + r_<g>_sigma), or sigma,
    times |mu|^delta_power."""
    design = compiled.design
    dpar = design.dpar("sigma")
    if dpar is None:
        sd = np.full(design.n, float(values["sigma"]))
    else:
        log_sd = dpar.X @ values["b_sigma"]
        for g in dpar.groups:
            log_sd = log_sd + values[f"r_{g.key}"][g.index, 0]
        sd = np.exp(log_sd)
    if "delta_power" in values:
        sd = sd * np.abs(mu) ** float(values["delta_power"])
    return np.asarray(sd)


@pytest.mark.parametrize("case", list(LATENT_CASES))
def test_log_density_with_each_rows_sd_equals_scipy(case: str) -> None:
    df = panel(seed=2)
    spec = mb.LMM("y ~ visit + (1 | id)", **LATENT_CASES[case])  # type: ignore[arg-type]
    compiled = mb.compile(spec, df)
    model = compiled.model
    names = ["b", "r_id"] + [
        n for n in ("sigma", "b_sigma", "r_id_sigma", "delta_power") if n in model.named_vars
    ]
    for seed in (3, 4):
        point = _point(model, seed)
        values = _values(compiled, point, names)
        mu = _mean(compiled, values)
        sd = _row_sd(compiled, values, mu)
        assert np.ptp(sd) > 1e-3  # the SDs do differ between rows
        expected = stats.norm(mu, sd).logpdf(compiled.design.y).sum()
        assert _observed_logp(compiled, point) == pytest.approx(expected, rel=1e-9)


RESIDUAL_CASES = {
    "ar1_varIdent": ("ar1", {"variance": {"ident": "visit"}}),
    "cs_varPower": ("cs", {"variance": {"power": "fitted"}}),
    "car1_sigma_formula": ("car1", {"sigma": "~ arm"}),
}


def _dense(correlation: str, times: np.ndarray, sd: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """``D R D`` of one subject from the structure's definition."""
    dt = np.abs(times[:, None] - times[None, :])
    R = np.where(dt == 0, 1.0, p["rho_cs"]) if correlation == "cs" else p["phi_ar"] ** dt
    return np.asarray(sd[:, None] * R * sd[None, :])


@pytest.mark.parametrize("case", list(RESIDUAL_CASES))
def test_correlated_residuals_with_each_rows_sd(case: str) -> None:
    """nlme's corAR1 + varIdent (and cs + varPower, car1 + a sigma formula): the compiled
    log-density is one dense multivariate normal N(mu, D R D) per subject; the pointwise
    log-likelihood is each row's conditional density under it; predictive draws scale."""
    from mixedbayes.results.residuals import (
        residual_pointwise_log_likelihood,
        residual_predictive,
    )

    correlation, extra = RESIDUAL_CASES[case]
    df = panel(seed=4)
    spec = mb.LMM(
        "y ~ visit",
        residuals={"correlation": correlation, "time": "visit", "group": "id"},
        **extra,  # type: ignore[arg-type]
    )
    compiled = mb.compile(spec, df)
    model = compiled.model
    corr = "rho_cs" if correlation == "cs" else "phi_ar"
    names = ["b", corr] + [n for n in ("sigma", "b_sigma", "delta_power") if n in model.named_vars]
    point = _point(model, 5)
    values = _values(compiled, point, names)
    design = compiled.design
    mu = np.asarray(design.X @ values["b"])
    sd = _row_sd(compiled, values, mu)
    times = design.data["visit"].to_numpy(dtype=float)
    ids = design.data["id"].to_numpy()
    expected = 0.0
    for subject in pd.unique(ids):
        rows = np.flatnonzero(ids == subject)
        cov = _dense(correlation, times[rows], sd[rows], {corr: float(values[corr])})
        expected += stats.multivariate_normal(mu[rows], cov).logpdf(design.y[rows])
    assert _observed_logp(compiled, point) == pytest.approx(expected, rel=1e-9)

    # NumPy results at prior draws: the conditional density of each row given its subject
    post = _prior_as_posterior(compiled, draws=2)
    ll = residual_pointwise_log_likelihood(post, design)
    sd_draws = family_params(
        post,
        design,
        rows_of(design, None),
        mu=predict_draws(post, design, None, kind="link").to_numpy(),
    )["sigma"]
    b = post["b"].to_numpy()
    c = post[corr].to_numpy()
    for draw in range(2):
        m = design.X @ b[0, draw]
        s = np.broadcast_to(sd_draws[0, draw], (design.n,))
        for i in (0, 7, design.n - 1):
            rows = np.flatnonzero(ids == ids[i])
            S = _dense(correlation, times[rows], s[rows], {corr: float(c[0, draw])})
            pos = list(rows).index(i)
            rest = [k for k in range(len(rows)) if k != pos]
            w = np.linalg.solve(S[np.ix_(rest, rest)], S[rest, pos])
            cm = m[i] + w @ (design.y[rows[rest]] - m[rows[rest]])
            cv = S[pos, pos] - S[pos, rest] @ w
            want = stats.norm(cm, np.sqrt(cv)).logpdf(design.y[i])
            assert ll[0, draw, i] == pytest.approx(want, rel=1e-8)
    # replicated responses: standardised residuals have unit SD in both arms
    m_draws = (design.X @ b[0].T).T[None]
    s_draws = np.broadcast_to(sd_draws, (1, 2, design.n))
    z = np.concatenate(
        [(residual_predictive(post, design, seed=k) - m_draws) / s_draws for k in range(300)],
        axis=1,
    )
    z = np.asarray(z).reshape(-1, design.n)
    for arm in (0.0, 1.0):
        cols = np.flatnonzero(design.data["trt"].to_numpy() == arm)
        assert z[:, cols].std() == pytest.approx(1.0, abs=0.06)


# --------------------------------------------------------------------------- families
def _family_data(family: str, seed: int = 3) -> pd.DataFrame:
    """Responses in the family's support, a binary x and 8 groups."""
    rng = np.random.default_rng(seed)
    n = 96
    x = np.tile([0.0, 1.0], n // 2)
    g = np.repeat([f"g{i}" for i in range(8)], n // 8)
    mean = {"beta": 0.4, "zero_inflated_beta": 0.4, "lognormal": 1.0}.get(family, 3.0)
    params = {
        "sigma": np.exp(-0.5 + 0.5 * x),
        "nu": np.asarray(6.0),
        "phi": np.exp(2.0 + 0.5 * x),
        "alpha": np.exp(1.0 + 0.5 * x),
        "zi": np.asarray(0.2),
        "hu": np.asarray(0.2),
    }
    fam = FAMILIES[family]
    y = fam.simulate(np.full(n, mean), {p.name: params[p.name] for p in fam.params}, rng)
    return pd.DataFrame({"y": np.asarray(y, dtype=float), "x": x, "g": g})


#: Every family with a dispersion that takes a formula (registry-driven): (family, key).
DISPERSION = sorted(
    (name, p.name)
    for name, family in FAMILIES.items()
    for p in family.formula_params()
    if p.name in ("sigma", "phi", "alpha") and not family.needs_trials
)


@pytest.mark.parametrize(("family", "key"), DISPERSION)
def test_dispersion_formula_log_likelihood_equals_scipy(family: str, key: str) -> None:
    """glmmTMB's dispformula: the parameter of every row is exp(X b + r); PyMC's pointwise
    log-density and the NumPy log-likelihood equal the family's SciPy density with it."""
    df = _family_data(family)
    spec = mb.GLMM("y ~ x + (1 | g)", family, **{key: "~ x + (1 | g)"})  # type: ignore[arg-type]
    compiled = mb.compile(spec, df)
    design = compiled.design
    dims = compiled.model.named_vars_to_dims
    assert dims[f"b_{key}"] == (f"{key}_term",) and dims[f"r_g_{key}"] == ("g", f"g_{key}_term")
    assert key not in compiled.model.named_vars
    post = _prior_as_posterior(compiled, draws=4)
    dpar = design.dpar(key)
    assert dpar is not None and dpar.link.name == "log"
    b = post[f"b_{key}"].to_numpy()
    r = post[f"r_g_{key}"].to_numpy()[..., 0]
    g_index = dpar.groups[0].index
    value = np.exp(b[..., :1] + b[..., 1:] * df["x"].to_numpy() + r[..., g_index])
    nd = rows_of(design, None)
    eta = predict_draws(post, design, None, kind="link").to_numpy()
    mu = design.link.inverse_numpy(eta)
    got = family_params(post, design, nd, mu=mu)
    np.testing.assert_allclose(got[key], value, rtol=1e-10)
    params = {**got, key: value}
    with np.errstate(all="ignore"):
        want = design.family.logp_reference(design.y, mu, params, None)
    numpy_ll = regression_log_likelihood(post, design)
    ok = np.isfinite(want)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(numpy_ll[ok], want[ok], rtol=1e-8)
    pymc_ll = pymc_pointwise_loglik(post, compiled, "y")
    # PyMC's graph (log1mexp of truncations, float rounding at extreme prior draws) within 1e-5
    np.testing.assert_allclose(pymc_ll[ok], want[ok], rtol=1e-5)


def test_predictions_use_each_rows_sd() -> None:
    """fit.predict's machinery: kind="response" draws have each row's SD (both arms), new
    data read the sigma formula's columns."""
    df = panel(seed=6, n_subjects=20)
    spec = mb.LMM("y ~ visit + (1 | id)", sigma="~ arm")
    compiled = mb.compile(spec, df)
    post = _prior_as_posterior(compiled, draws=6)
    design = compiled.design
    b_sigma = post["b_sigma"].to_numpy()
    placebo = (df["arm"] == "placebo").to_numpy(dtype=float)
    sd = np.exp(b_sigma[..., :1] + b_sigma[..., 1:] * placebo)
    mu = predict_draws(post, design, None, kind="mean").to_numpy()
    np.testing.assert_allclose(
        family_params(post, design, rows_of(design, None), mu=mu)["sigma"], sd
    )
    z = np.concatenate(
        [
            (predict_draws(post, design, None, kind="response", seed=k).to_numpy() - mu) / sd
            for k in range(40)
        ],
        axis=1,
    )
    for arm in (0.0, 1.0):
        assert z[..., placebo == arm].std() == pytest.approx(1.0, abs=0.06)
    new = pd.DataFrame({"visit": [1, 1], "id": ["p00", "p00"], "arm": ["placebo", "active"]})
    got = family_params(post, design, rows_of(design, new), mu=np.zeros((1, 6, 2)))["sigma"]
    np.testing.assert_allclose(got[..., 0], np.exp(b_sigma[..., 0] + b_sigma[..., 1]))
    np.testing.assert_allclose(got[..., 1], np.exp(b_sigma[..., 0]))
