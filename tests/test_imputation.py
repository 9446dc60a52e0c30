"""Imputation by sampling inside the model (``missing:``), structural: spec, design, graph.

No sampling here; the fits are in ``test_imputation_fits.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedbayes as mb
from mixedbayes.errors import SpecError
from mixedbayes.naming import Names

NHANES = {
    "kind": "lmm",
    "formula": "bmi ~ age * chl",
    "missing": {"response": "impute", "covariates": {"chl": {"formula": "chl ~ age"}}},
}


@pytest.fixture(scope="module")
def nhanes() -> pd.DataFrame:
    return mb.datasets.load("nhanes")


def _long(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_id, n_t = 12, 4
    ids = np.repeat(np.arange(n_id), n_t)
    t = np.tile(np.arange(n_t), n_id)
    x = 2 + rng.normal(0, 1, n_id)[ids] + 0.3 * t + rng.normal(0, 0.5, ids.size)
    y = 1 + 0.5 * t + x + rng.normal(0, 1, n_id)[ids] + rng.normal(0, 0.7, ids.size)
    df = pd.DataFrame({"y": y, "x": x, "t": t, "id": [f"s{i:02d}" for i in ids]})
    df.index = pd.Index([f"r{i}" for i in range(len(df))])
    df.loc[["r3", "r10", "r17"], "x"] = np.nan
    df.loc[["r5", "r30"], "y"] = np.nan
    return df


def _design(spec: dict, data: pd.DataFrame):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.design(spec, data)


def test_spec_round_trips_and_defaults() -> None:
    spec = mb.load_spec(NHANES)
    assert spec.missing is not None
    assert spec.missing.otherwise == "drop"
    assert spec.missing.covariates["chl"].family == "gaussian"
    assert mb.load_spec(spec.to_yaml()) == spec
    short = mb.load_spec({**NHANES, "missing": {"covariates": {"chl": "chl ~ age"}}})
    assert short.missing is not None and short.missing.covariates["chl"].formula == "chl ~ age"


@pytest.mark.parametrize("kind", ["joint", "compositional"])
def test_missing_is_refused_by_kinds_without_it(kind: str) -> None:
    from mixedbayes.spec.model import SPEC_KINDS

    assert not SPEC_KINDS[kind].takes_missing
    assert SPEC_KINDS["lmm"].takes_missing and SPEC_KINDS["glmm"].takes_missing


def test_design_counts_and_reports_every_cell(nhanes: pd.DataFrame) -> None:
    before = nhanes.copy()
    d = _design(NHANES, nhanes)
    pd.testing.assert_frame_equal(nhanes, before)  # never mutated
    assert d.n == 16  # rows with an observed bmi
    report = d.report
    assert report.rows_in == 25 and report.rows_predicted == 9 and report.rows_dropped == 0
    by = {(i.column, "predictive" in i.how): i.count for i in report.imputed}
    assert by == {("bmi", True): 9, ("chl", False): 3, ("chl", True): 7}
    assert "imputed in 'chl'" in str(report)
    plan = d.imputation
    cov = plan.covariate("chl")
    assert list(cov.labels) == [14, 19, 23]
    assert cov.fill == pytest.approx(nhanes.loc[d.obs_index, "chl"].mean())
    # age * chl: d(chl)/d(chl) = 1, d(age:chl)/d(chl) = age
    np.testing.assert_allclose(cov.D[:, 2], 1.0)
    np.testing.assert_allclose(cov.D[:, 3], nhanes.loc[cov.labels, "age"])
    np.testing.assert_allclose(cov.D[:, :2], 0.0)
    assert cov.sub.n == 25 and len(cov.sub_observed) == 15  # all rows inform chl ~ age
    assert len(plan.response_frame) == 9


def test_default_rows_are_still_dropped_without_missing(nhanes: pd.DataFrame) -> None:
    d = _design({"kind": "lmm", "formula": "bmi ~ age * chl"}, nhanes)
    assert d.imputation is None and d.n == 13 and d.report.rows_dropped == 12


def test_otherwise_drop_counts_unlisted_columns(nhanes: pd.DataFrame) -> None:
    spec = {**NHANES, "formula": "bmi ~ age * chl + hyp"}
    d = _design(spec, nhanes)
    dropped = {x.column: x.count for x in d.report.dropped}
    assert dropped == {"hyp": 8}  # a row without hyp can be neither fitted nor predicted
    assert d.report.rows_used + d.report.rows_dropped + d.report.rows_predicted == 25


@pytest.mark.parametrize("term", ["scale(chl)", "center(chl)", "age:chl"])
def test_affine_terms_are_accepted(nhanes: pd.DataFrame, term: str) -> None:
    d = _design({**NHANES, "formula": f"bmi ~ age + {term}"}, nhanes)
    assert np.any(d.imputation.covariate("chl").D != 0)


@pytest.mark.parametrize("term", ["log(chl)", "I(chl**2)"])
def test_non_affine_terms_are_named(nhanes: pd.DataFrame, term: str) -> None:
    with pytest.raises(SpecError, match="not linear") as err:
        _design({**NHANES, "formula": f"bmi ~ age + {term}"}, nhanes)
    assert "missing.covariates.chl" in err.value.where[0]


def test_graph_names_dims_and_finite_logp(nhanes: pd.DataFrame) -> None:
    compiled = mb.compile(NHANES, nhanes)
    m = compiled.model
    names = Names("chl")
    assert {"b_chl", "sigma_chl", "chl_missing", "b", "sigma"} <= set(m.named_vars)
    assert m.named_vars_to_dims[Names.missing_var("chl")] == (Names.imputed_dim("chl"),)
    assert list(m.coords["chl_row"]) == [14, 19, 23]
    assert m.named_vars_to_dims["chl"] == (names.observed_dim,)
    assert len(m.coords[names.observed_dim]) == 15
    assert np.isfinite(compiled.initial_logp())
    table = mb.get_priors(NHANES, nhanes).to_frame()
    assert {"chl"} == set(table.loc[table["nlpar"] != "", "nlpar"])


def test_graph_completes_X_with_the_sampled_cells(nhanes: pd.DataFrame) -> None:
    """The response's log-likelihood at a point with chl_missing = v equals the Gaussian
    log-density of the completed data at the same b and sigma (computed apart, in NumPy)."""
    from mixedbayes._system import python_ops

    compiled = mb.compile(NHANES, nhanes)
    m = compiled.model
    with python_ops():
        point = m.initial_point()
        v = np.array([150.0, 260.0, 205.0])
        point["chl_missing"] = v
        point["b_slope"] = np.array([0.5, 0.08, -0.02])
        logp_bmi = m.compile_logp(vars=[m["bmi"]], mode="FAST_COMPILE")(point)
        fn = m.compile_fn(m.replace_rvs_by_values([m["b"]])[0], mode="FAST_COMPILE")
        b = fn({k: point[k] for k in ("b_slope", "Intercept")})
        sigma = float(np.exp(point["sigma_log__"]))
    d = compiled.design
    completed = nhanes.loc[d.obs_index].copy()
    completed.loc[[14, 19, 23], "chl"] = v
    X = np.column_stack(
        [np.ones(16), completed["age"], completed["chl"], completed["age"] * completed["chl"]]
    )
    expected = stats.norm.logpdf(completed["bmi"], X @ b, sigma).sum()
    assert logp_bmi == pytest.approx(expected, rel=1e-8)


def test_submodel_with_group_effects_is_a_named_part() -> None:
    df = _long()
    spec = {
        "kind": "lmm",
        "formula": "y ~ t + x + (1 | id)",
        "missing": {"response": "impute", "covariates": {"x": "x ~ t + (1 | id)"}},
    }
    compiled = mb.compile(spec, df)
    m = compiled.model
    assert {"sd_id_x", "sd_id", "b_x", "sigma_x", "x_missing"} <= set(m.named_vars)
    assert list(m.coords["x_row"]) == ["r3", "r10", "r17"]
    assert "not integrated out: covariates imputed" in compiled.marginalization
    assert np.isfinite(compiled.initial_logp())
    kind_vars = mb.kinds.kind_of(compiled.design.spec).summary_variables(compiled.design, False)
    assert {"b_x", "sd_id_x", "sigma_x"} <= set(kind_vars)


def test_missing_response_only_keeps_the_marginalised_lmm() -> None:
    df = _long()
    spec = {"kind": "lmm", "formula": "y ~ t + (1 | id)", "missing": {"response": "impute"}}
    compiled = mb.compile(spec, df)
    assert compiled.marginalization.startswith("integrated out: id")
    assert compiled.design.n == len(df) - 2
    assert list(compiled.design.imputation.response_frame.index) == ["r5", "r30"]


def test_glmm_takes_missing() -> None:
    df = _long()
    df["k"] = (df["y"].fillna(0) > 3).astype(int)
    df.loc["r7", "k"] = np.nan
    spec = {
        "kind": "glmm",
        "family": "bernoulli",
        "formula": "k ~ t + x + (1 | id)",
        "missing": {"response": "impute", "covariates": {"x": "x ~ t"}},
    }
    compiled = mb.compile(spec, df)
    assert "x_missing" in compiled.model.named_vars
    assert np.isfinite(compiled.initial_logp())


def test_imputed_draws_from_a_fake_posterior(nhanes: pd.DataFrame) -> None:
    """The ``imputed`` group's structure without sampling: a posterior made by hand."""
    import xarray as xr

    from mixedbayes.results.imputation import add_imputed, imputed_table

    d = _design(NHANES, nhanes)
    c, n = 2, 5
    rng = np.random.default_rng(1)
    post = xr.Dataset(
        {
            "b": (("chain", "draw", "term"), np.tile([20.0, 0.0, 0.03, 0.0], (c, n, 1))),
            "sigma": (("chain", "draw"), np.full((c, n), 1e-6)),
            "b_chl": (("chain", "draw", "chl_term"), np.tile([150.0, 20.0], (c, n, 1))),
            "sigma_chl": (("chain", "draw"), np.full((c, n), 1e-6)),
            "chl_missing": (("chain", "draw", "chl_row"), rng.normal(200, 1, (c, n, 3))),
        },
        coords={"chain": [0, 1], "draw": range(n), "term": list(d.fixed_terms)},
    )
    tree = add_imputed(xr.DataTree.from_dict({"posterior": post}), d, seed=1)
    imp = tree["imputed"].to_dataset()
    assert set(imp.data_vars) == {"chl", "bmi"}
    assert imp["chl"].dims == ("chain", "draw", "chl_row") and imp.sizes["chl_row"] == 10
    assert list(imp["bmi_row"].to_numpy()) == [0, 2, 3, 5, 9, 10, 11, 15, 20]
    # noise-free submodel and response: chl = 150 + 20 age where drawn, bmi = 20 + 0.03 chl
    frame = d.imputation.response_frame
    chl_0 = float(imp["chl"].sel(chl_row=0)[0, 0])
    assert chl_0 == pytest.approx(150 + 20 * frame.loc[0, "age"], abs=1e-3)
    assert float(imp["bmi"].sel(bmi_row=0)[0, 0]) == pytest.approx(20 + 0.03 * chl_0, abs=1e-3)
    assert float(imp["bmi"].sel(bmi_row=2)[0, 0]) == pytest.approx(20 + 0.03 * 187, abs=1e-3)
    table = imputed_table(tree)
    assert list(table.columns) == [
        *("column", "row", "mean", "sd", "lower", "upper", "probability", "class")
    ]
    assert table["probability"].isna().all()  # only a summed-out binary column has one
    assert len(table) == 19


# ----------------------------------------------------------------------------- binary, summed out
BINARY_PRIORS = [
    {"class": "b", "prior": "normal(0, 5)"},
    {"class": "b", "nlpar": "s", "prior": "normal(0, 2)"},
    {"class": "Intercept", "nlpar": "s", "prior": "normal(0, 2)"},
]
BINARY = {
    "kind": "lmm",
    "formula": "y ~ 0 + s + z",  # no intercept: no centring, one point on every model's scale
    "priors": BINARY_PRIORS,
    "missing": {"covariates": {"s": {"formula": "s ~ z", "family": "bernoulli"}}},
}


def _binary(n: int = 40, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    s = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.2 * z)))).astype(float)
    y = 1 + 1.5 * s + 0.5 * z + rng.normal(0, 0.6, n)
    return pd.DataFrame({"y": y, "s": s, "z": z})


def _logp(spec: dict, data: pd.DataFrame, point: dict) -> float:
    from mixedbayes._system import python_ops

    m = mb.compile(spec, data, marginalize=False).model
    with python_ops():
        fn = m.compile_logp(mode="FAST_COMPILE")
        return float(fn({k: point[k] for k in m.initial_point()}))


def test_binary_covariate_is_summed_out_exactly() -> None:
    """log p(data with s[7] missing) = logsumexp over c of log p(data with s[7] = c)."""
    from mixedbayes._system import python_ops

    full = _binary()
    holed = full.copy()
    holed.loc[7, "s"] = np.nan
    compiled = mb.compile(BINARY, holed)
    m = compiled.model
    assert Names.marginal_var("s") in m.named_vars
    assert "s_missing" not in m.named_vars  # nothing discrete is sampled
    with python_ops():
        point = m.initial_point()
    point.update(b_slope=np.array([1.2, 0.4]), b_slope_s=np.array([0.9]), Intercept_s=np.array(0.2))
    completed = []
    for c in (0.0, 1.0):
        data = full.copy()
        data.loc[7, "s"] = c
        completed.append(_logp(BINARY, data, point))
    from scipy.special import logsumexp

    assert _logp(BINARY, holed, point) == pytest.approx(logsumexp(completed), rel=1e-10)


def test_binary_covariate_must_be_coded_0_1() -> None:
    df = _binary()
    df["s"] = df["s"].map({0.0: "no", 1.0: "yes"})
    df.loc[3, "s"] = np.nan
    with pytest.raises(mb.errors.DataError, match="0 and 1") as err:
        _design(BINARY, df)
    assert "column 's'" in err.value.where[0]


def test_binary_class_probabilities_from_a_fake_posterior() -> None:
    """At known parameters the class-1 probability of a cell is its exact conditional."""
    import xarray as xr

    from mixedbayes.results.imputation import add_imputed

    df = _binary()
    df.loc[[5, 7], "s"] = np.nan
    d = _design(BINARY, df)
    c, n = 1, 2
    post = xr.Dataset(
        {
            "b": (("chain", "draw", "term"), np.tile([1.5, 0.5], (c, n, 1))),
            "sigma": (("chain", "draw"), np.full((c, n), 0.6)),
            "b_s": (("chain", "draw", "s_term"), np.tile([0.3, 1.2], (c, n, 1))),
        },
        coords={"chain": [0], "draw": [0, 1], "term": ["s", "z"], "s_term": ["Intercept", "z"]},
    )
    imp = add_imputed(xr.DataTree.from_dict({"posterior": post}), d, seed=0)["imputed"]
    prob = imp["s_prob"].to_numpy()[0, 0]
    for j, row in enumerate([5, 7]):
        y, z = df.loc[row, "y"], df.loc[row, "z"]
        prior1 = 1 / (1 + np.exp(-(0.3 + 1.2 * z)))
        l1 = prior1 * stats.norm.pdf(y, 1.5 + 0.5 * z, 0.6)
        l0 = (1 - prior1) * stats.norm.pdf(y, 0.5 * z, 0.6)
        assert prob[j] == pytest.approx(l1 / (l0 + l1), rel=1e-8)
    assert set(np.unique(imp["s"].to_numpy())) <= {0.0, 1.0}
    assert imp["s"].dims == imp["s_prob"].dims == ("chain", "draw", "s_row")


# ------------------------------------------------------------------------ categorical, summed out
LEVELS = ("current", "former", "never")  # a string column's levels: sorted, "current" first
CATEGORICAL = {
    "kind": "lmm",
    "formula": "y ~ 0 + s + z",
    "priors": BINARY_PRIORS,
    "missing": {"covariates": {"s": {"formula": "s ~ z", "family": "categorical"}}},
}


def _categorical(n: int = 40, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    s = np.array(LEVELS)[rng.integers(0, 3, n)]
    y = 1 + 0.5 * z + np.select([s == "former", s == "never"], [0.8, 1.6], 0.0)
    return pd.DataFrame({"y": y + rng.normal(0, 0.6, n), "s": s, "z": z})


def test_categorical_covariate_is_summed_out_exactly() -> None:
    """log p(data with s[7] missing) = logsumexp over the 3 levels of log p(data with s[7]
    set to that level)."""
    from scipy.special import logsumexp

    from mixedbayes._system import python_ops

    full = _categorical()
    holed = full.copy()
    holed.loc[7, "s"] = np.nan
    compiled = mb.compile(CATEGORICAL, holed)
    m = compiled.model
    cov = compiled.design.imputation.covariate("s")
    assert cov.levels == LEVELS and cov.fill == "current"
    assert cov.class_D.shape == (3, 1, 4)  # levels x missing rows x columns of X
    assert Names.marginal_var("s") in m.named_vars and "s_missing" not in m.named_vars
    assert m.named_vars_to_dims["b_s"] == ("s_term", "s_class")
    assert list(m.coords["s_class"]) == list(LEVELS)
    with python_ops():
        point = m.initial_point()
    assert {"b_s[former]", "b_s[never]"} <= set(point)  # the baseline has no coefficients
    point.update(
        {
            "b_slope": np.array([0.3, 1.1, -0.4, 0.5]),
            "b_s[former]": np.array([0.2, -0.7]),
            "b_s[never]": np.array([-0.3, 0.9]),
        }
    )
    completed = []
    for level in LEVELS:
        data = full.copy()
        data.loc[7, "s"] = level
        completed.append(_logp(CATEGORICAL, data, point))
    assert _logp(CATEGORICAL, holed, point) == pytest.approx(logsumexp(completed), rel=1e-10)


def test_categorical_class_probabilities_from_a_fake_posterior() -> None:
    """At known parameters each level's probability of a cell is its exact conditional; a
    cell in a row with a missing response is drawn from the submodel alone."""
    import xarray as xr
    from scipy.special import softmax

    from mixedbayes.results.imputation import add_imputed, imputed_table

    df = _categorical()
    df.loc[[5, 7, 9], "s"] = np.nan
    df.loc[9, "y"] = np.nan
    spec = {**CATEGORICAL, "missing": {**CATEGORICAL["missing"], "response": "impute"}}
    d = _design(spec, df)
    b = np.array([0.0, 0.8, 1.6, 0.5])  # s[current] s[former] s[never] z
    B = np.array([[0.0, 0.2, -0.3], [0.0, -0.7, 0.9]])  # (term, level)
    post = xr.Dataset(
        {
            "b": (("chain", "draw", "term"), np.tile(b, (1, 2, 1))),
            "sigma": (("chain", "draw"), np.full((1, 2), 0.6)),
            "b_s": (("chain", "draw", "s_term", "s_class"), np.tile(B, (1, 2, 1, 1))),
        },
        coords={"chain": [0], "draw": [0, 1], "term": list(d.fixed_terms)},
    )
    tree = add_imputed(xr.DataTree.from_dict({"posterior": post}), d, seed=0)
    imp = tree["imputed"]
    assert imp["s_prob"].dims == ("chain", "draw", "s_row", "s_class")
    assert list(imp["s_class"].to_numpy()) == list(LEVELS)
    prob = imp["s_prob"].to_numpy()[0, 0]
    for j, row in enumerate([5, 7, 9]):
        z = df.loc[row, "z"]
        prior = softmax(B.T @ np.array([1.0, z]))
        like = stats.norm.pdf(df.loc[row, "y"], b[:3] + 0.5 * z, 0.6) if row != 9 else 1.0
        np.testing.assert_allclose(prob[j], prior * like / np.sum(prior * like), rtol=1e-8)
    assert set(np.unique(imp["s"].to_numpy())) <= set(LEVELS)
    table = imputed_table(tree).set_index(["column", "row"])
    k = int(np.argmax(prob[0]))
    assert table.loc[("s", 5), "class"] == LEVELS[k]
    assert table.loc[("s", 5), "probability"] == pytest.approx(prob[0, k])
    assert np.isfinite(imp["y"].to_numpy()).all()  # the response drawn at its drawn level


def test_categorical_level_unknown_to_the_formula() -> None:
    """A level seen only in a row the likelihood does not use is not among the formula's."""
    df = _categorical()
    df.loc[[5, 7], "s"] = np.nan
    df.loc[9, ["s", "y"]] = ["ex-smoker", np.nan]
    spec = {**CATEGORICAL, "missing": {**CATEGORICAL["missing"], "response": "impute"}}
    with pytest.raises(mb.errors.DataError, match="ex-smoker") as err:
        _design(spec, df)
    assert "column 's'" in err.value.where[0]


def test_categorical_submodel_refuses_group_terms_and_numbers() -> None:
    df = _categorical()
    df["g"] = np.arange(len(df)) % 4
    df.loc[5, "s"] = np.nan
    sub = {"formula": "s ~ z + (1 | g)", "family": "categorical"}
    with pytest.raises(SpecError, match="not supported yet"):
        _design({**CATEGORICAL, "missing": {"covariates": {"s": sub}}}, df)
    df["s"] = df["s"].map({lv: float(i) for i, lv in enumerate(LEVELS)})
    with pytest.raises(mb.errors.DataError, match="Categorical"):
        _design(CATEGORICAL, df)
