"""Imputation by sampling for the ``nonlinear`` kind (``missing:``; docs/missing-data.md).

Structural checks without sampling (design, graph, completed parameter designs, the
``imputed`` group from a posterior made by hand, bad input) and one small Theoph fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import EVENT_SPEC, quiet_fit, theoph_events, theoph_subjects

import mixedbayes as mb
from mixedbayes.naming import Names

PRIORS = [
    {"class": "b", "coef": "Intercept", "nlpar": "log_KE", "prior": "normal(-2.5, 1)"},
    {"class": "b", "coef": "Intercept", "nlpar": "log_KA", "prior": "normal(0.5, 1)"},
    {"class": "b", "coef": "Intercept", "nlpar": "log_CL", "prior": "normal(-3, 1)"},
    {"class": "sd", "group": "Subject", "prior": "normal(0, 0.5)"},
]

SPEC: dict[str, object] = {
    "kind": "nonlinear",
    "model": "oral_1cmt_ke",
    "parameters": {
        "log_KE": "1",
        "log_KA": "1 + (1 | Subject)",
        "log_CL": "1 + Wt + (1 | Subject)",
    },
    "response": "conc",
    "time": "Time",
    "subject": "Subject",
    "dosing": {"dose": "Dose"},
    "priors": PRIORS,
    "missing": {
        "response": "impute",
        "covariates": {"Wt": {"formula": "Wt ~ 1 + (1 | Subject)"}},
    },
}

#: Row labels (of the first 4 Theoph subjects) whose concentration / weight is removed;
#: row 30 misses both.
CONC_ROWS = [2, 15, 30]
WT_ROWS = [5, 6, 20, 30]


def holes(n: int = 4) -> pd.DataFrame:
    """The first ``n`` Theoph subjects, weight made time-varying (measured at each sample,
    ±1 kg), a few concentrations and weights removed."""
    df = theoph_subjects(n)
    df["Wt"] = df["Wt"] + np.random.default_rng(0).normal(0.0, 1.0, len(df))
    df.loc[CONC_ROWS, "conc"] = np.nan
    df.loc[WT_ROWS, "Wt"] = np.nan
    return df


def spec_with(**changes: object) -> dict[str, object]:
    return {**SPEC, **changes}


def test_nonlinear_takes_missing() -> None:
    from mixedbayes.spec.model import SPEC_KINDS

    assert SPEC_KINDS["nonlinear"].takes_missing
    spec = mb.load_spec(SPEC)
    assert spec.missing is not None and spec.missing.response == "impute"
    assert mb.load_spec(spec.to_yaml()) == spec


def test_design_keeps_missing_responses_aside() -> None:
    df = holes()
    before = df.copy()
    d = mb.design(SPEC, df)
    pd.testing.assert_frame_equal(df, before)
    plan = d.imputation
    assert plan is not None and plan.imputes_response
    assert list(plan.response_frame.index) == CONC_ROWS
    assert d.n == len(df) - 3 and not set(CONC_ROWS) & set(d.obs_index)
    assert d.report.rows_used == d.n and d.report.rows_predicted == 3
    assert d.report.rows_dropped == 0
    (cov,) = plan.covariates
    # row 30 misses both: its weight is drawn from the submodel's posterior predictive
    assert list(cov.labels) == [5, 6, 20]
    assert list(plan.response_frame.index[cov.predictive_rows]) == [30]
    assert set(cov.parts_D) == {"log_CL"}  # only log_CL's formula uses Wt
    np.testing.assert_allclose(cov.parts_D["log_CL"], [[0.0, 1.0]] * 3)
    # the fill (observed mean in the likelihood's rows) is in log_CL's X
    X = d.param("log_CL").X
    np.testing.assert_allclose(X[cov.rows, 1], cov.fill)
    assert "Wt" in str(d.report) and "conc" in str(d.report)


def test_event_table_dose_records_are_not_missing_responses() -> None:
    """Dose records (EVID 1) have no DV by design; only observation records (EVID 0)
    without a DV are missing responses."""
    events = theoph_events(3)
    obs = events.index[events["EVID"] == 0]
    events.loc[obs[[3, 17]], "DV"] = np.nan
    assert events.loc[events["EVID"] == 1, "DV"].isna().all()
    with pytest.raises(mb.DataError, match="missing DV"):
        mb.design(EVENT_SPEC, events)
    d = mb.design({**EVENT_SPEC, "missing": {"response": "impute"}}, events)
    plan = d.imputation
    assert plan is not None
    assert list(plan.response_frame.index) == list(obs[[3, 17]])
    assert d.n == len(obs) - 2
    assert len(d.dosing.records) == 3  # every dose kept, none taken for an observation
    assert np.isfinite(mb.compile(d).initial_logp())


def test_graph_names_dims_and_finite_logp() -> None:
    df = holes()
    compiled = mb.compile(SPEC, df)
    m = compiled.model
    names = Names("Wt")
    assert {"b_Wt", "sigma_Wt", "sd_Subject_Wt", "Wt_missing", "Wt", "conc"} <= set(m.named_vars)
    assert m.named_vars_to_dims[Names.missing_var("Wt")] == (Names.imputed_dim("Wt"),)
    assert list(m.coords["Wt_row"]) == [5, 6, 20]
    # the submodel's likelihood: every observed weight, rows with a missing response included
    assert m.named_vars_to_dims["Wt"] == (names.observed_dim,)
    assert len(m.coords[names.observed_dim]) == len(df) - len(WT_ROWS)
    assert len(m.coords["observation"]) == len(df) - len(CONC_ROWS)
    assert np.isfinite(compiled.initial_logp())
    table = mb.get_priors(SPEC, df).to_frame()
    assert "Wt" in set(table["nlpar"])
    kind = mb.kinds.kind_of(mb.load_spec(SPEC))
    assert {"b_Wt", "sigma_Wt", "sd_Subject_Wt"} <= set(
        kind.summary_variables(compiled.design, False)
    )


def test_completed_parameter_design_at_the_sampled_cells() -> None:
    """CL at every row, at a point with Wt_missing = v, equals exp(X b) with X the design
    of the data completed at v (the group effects at 0)."""
    import pytensor.graph

    from mixedbayes._system import python_ops
    from mixedbayes.compile.context import BuildContext, new_model
    from mixedbayes.compile.nonlinear import nonlinear_coords, parameter_predictors

    df = holes()
    d = mb.design(SPEC, df)
    priors = mb.get_priors(SPEC, df)
    ctx = BuildContext(new_model(nonlinear_coords(d)))
    theta = parameter_predictors(d, priors, ctx)
    m = ctx.model
    v = np.array([60.0, 75.0, 90.0])
    b = np.array([-3.2, 0.01])
    with python_ops():
        point = m.initial_point()
        point["Wt_missing"] = v
        point["b_log_CL"] = b
        expr = m.replace_rvs_by_values([theta["CL"]])[0]
        cl = m.compile_fn(expr, mode="FAST_COMPILE")
        used = {v.name for v in pytensor.graph.graph_inputs([expr])} & set(point)
        assert {"Wt_missing", "b_log_CL"} <= used
        got = cl({k: point[k] for k in used})
    completed = d.data["Wt"].copy()
    completed.loc[[5, 6, 20]] = v
    np.testing.assert_allclose(got, np.exp(b[0] + b[1] * completed.to_numpy()), rtol=1e-10)


def test_imputed_draws_from_a_fake_posterior() -> None:
    """The ``imputed`` group's structure without sampling: a posterior made by hand, residual
    error almost 0 — the response at the aside rows is then the structural prediction at
    those rows (the weight of row 30 at its submodel's draw)."""
    import xarray as xr

    from mixedbayes.results.imputation import add_imputed
    from mixedbayes.results.nonlinear_imputation import nonlinear_imputed_draws
    from mixedbayes.results.nonlinear_predict import nonlinear_predict_draws

    df = holes()
    d = mb.design(SPEC, df)
    c, n = 2, 3
    subjects = list(d.group("Subject").levels)
    terms = list(d.group("Subject").terms)
    rng = np.random.default_rng(2)
    post = xr.Dataset(
        {
            "b_log_KE": (("chain", "draw", "log_KE_term"), np.full((c, n, 1), -2.5)),
            "b_log_KA": (("chain", "draw", "log_KA_term"), np.full((c, n, 1), 0.5)),
            "b_log_CL": (("chain", "draw", "log_CL_term"), np.tile([-3.9, 0.01], (c, n, 1))),
            "r_Subject": (
                ("chain", "draw", "Subject", "Subject_term"),
                rng.normal(0, 0.1, (c, n, len(subjects), len(terms))),
            ),
            "sigma": (("chain", "draw"), np.full((c, n), 1e-9)),
            "b_Wt": (("chain", "draw", "Wt_term"), np.full((c, n, 1), 70.0)),
            "r_Subject_Wt": (
                ("chain", "draw", "Subject", "Subject_Wt_term"),
                np.zeros((c, n, len(subjects), 1)),
            ),
            "sd_Subject_Wt": (("chain", "draw", "Subject_Wt_term"), np.full((c, n, 1), 1.0)),
            "sigma_Wt": (("chain", "draw"), np.full((c, n), 1e-9)),
            "Wt_missing": (("chain", "draw", "Wt_row"), rng.normal(70, 5, (c, n, 3))),
        },
        coords={
            "chain": [0, 1],
            "draw": range(n),
            "Subject": subjects,
            "Subject_term": terms,
            "log_CL_term": ["Intercept", "Wt"],
        },
    )
    draws = nonlinear_imputed_draws(post, d, seed=1)
    assert set(draws) == {"Wt", "conc"}
    dim, labels, values = draws["Wt"]
    assert dim == "Wt_row" and list(labels) == WT_ROWS and values.shape == (c, n, 4)
    np.testing.assert_allclose(values[..., :3], post["Wt_missing"].to_numpy())
    np.testing.assert_allclose(values[..., 3], 70.0, atol=1e-6)  # noise-free submodel
    dim, labels, conc = draws["conc"]
    assert dim == "conc_row" and list(labels) == CONC_ROWS
    # the structural prediction at those rows, row 30's weight at 70
    new = df.loc[CONC_ROWS].assign(Wt=lambda f: f["Wt"].fillna(70.0))
    mean = nonlinear_predict_draws(post, d, new, kind="mean").to_numpy()
    np.testing.assert_allclose(conc, mean, rtol=1e-6)
    assert np.all(conc > 0)
    # through the kind (as mb.fit does)
    kind = mb.kinds.kind_of(mb.load_spec(SPEC))
    tree = add_imputed(xr.DataTree.from_dict({"posterior": post}), d, 1, kind.imputed_draws)
    imp = tree["imputed"].to_dataset()
    assert imp["conc"].dims == ("chain", "draw", "conc_row")
    assert list(imp["Wt_row"].to_numpy()) == WT_ROWS
    # fitted-row predictions use the sampled weights, not the fill
    fitted = nonlinear_predict_draws(post, d, None, kind="mean").to_numpy()
    at_fill = nonlinear_predict_draws(
        post.assign(Wt_missing=post["Wt_missing"] * 0 + d.imputation.covariates[0].fill),
        d,
        None,
        kind="mean",
    ).to_numpy()
    moved = np.flatnonzero(np.any(fitted != at_fill, axis=(0, 1)))
    assert list(d.obs_index[moved]) == [5, 6, 20]


@pytest.mark.parametrize(
    ("changes", "error", "text"),
    [
        (
            {"missing": {"covariates": {"Height": "Height ~ 1"}}},
            mb.SpecError,
            "Height",
        ),
        (
            {"missing": {"covariates": {"Wt": {"formula": "Wt ~ 1", "family": "bernoulli"}}}},
            mb.SpecError,
            "not supported yet",
        ),
        (
            {
                "parameters": {
                    "log_KE": "1",
                    "log_KA": "1 + (1 | Subject)",
                    "log_CL": "1 + log(Wt) + (1 | Subject)",
                }
            },
            mb.SpecError,
            "log\\(Wt\\)",
        ),
        (
            {
                "parameters": {
                    "log_KE": "1",
                    "log_KA": "1 + (1 | Subject)",
                    "log_CL": "1 + (Wt | Subject)",
                }
            },
            mb.SpecError,
            "group term",
        ),
        ({"missing": {"covariates": {"Time": "Time ~ 1"}}}, mb.SpecError, "Time"),
    ],
)
def test_bad_imputation_input(changes: dict[str, object], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        mb.design(spec_with(**changes), holes())


def test_expression_covariate_is_not_supported_yet() -> None:
    rng = np.random.default_rng(1)
    c = np.tile(np.array([0.0, 1, 3, 10, 30, 100]), 6)
    df = pd.DataFrame({"C": c, "id": np.repeat([f"s{i}" for i in range(6)], 6)})
    df["E"] = 5 + 20 * c / (8 + c) + rng.normal(0, 1, len(c))
    df.loc[[3, 9], "C"] = np.nan
    spec = {
        "kind": "nonlinear",
        "expression": "E0 + Emax * C / (EC50 + C)",
        "parameters": {"E0": "1 + (1 | id)", "log_Emax": "1", "log_EC50": "1"},
        "response": "E",
        "missing": {"covariates": {"C": "C ~ 1 + (1 | id)"}},
    }
    with pytest.raises(mb.SpecError, match=r"'C'.*not supported yet"):
        mb.design(spec, df)
    # the response of an expression model is imputed
    df2 = df.dropna().copy()
    df2.loc[[4, 10], "E"] = np.nan
    d = mb.design({**spec, "missing": {"response": "impute"}}, df2)
    assert d.imputation is not None and list(d.imputation.response_frame.index) == [4, 10]


def test_small_theoph_fit_imputes_concentrations_and_weights() -> None:
    df = holes(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = quiet_fit(SPEC, df, draws=200, tune=150, chains=2, seed=3, progressbar=False)
    imp = fit.idata["imputed"].to_dataset()
    assert set(imp.data_vars) == {"Wt", "conc"}
    assert imp["conc"].dims == ("chain", "draw", "conc_row")
    assert list(imp["conc_row"].to_numpy()) == CONC_ROWS
    assert list(imp["Wt_row"].to_numpy()) == WT_ROWS
    assert imp.sizes["chain"] == 2 and imp.sizes["draw"] == 200
    table = fit.imputed()
    wt = table[table["column"] == "Wt"].set_index("row")
    # each subject's weight varies by about 1 kg around its baseline
    full = theoph_subjects(4)
    for row in WT_ROWS:
        assert abs(wt.loc[row, "mean"] - full.loc[row, "Wt"]) < 5
    conc = table[table["column"] == "conc"].set_index("row")
    assert conc["mean"].between(0, 15).all()
    # the sample at 9 h of subject 3, and the others, near what was measured
    for row in CONC_ROWS:
        assert conc.loc[row, "lower"] - 2 < full.loc[row, "conc"] < conc.loc[row, "upper"] + 2
    assert fit.predict().shape[-1] == len(df) - len(CONC_ROWS)
