"""Distributional formulas of family parameters (``zi: "~ x + (1 | g)"``) and the
``zero_inflated_beta`` family: spec, design, priors, graph, predictions (no sampling).

The fits (ZIBR's ibd data against Chen & Li 2016, and recovery of simulated truth) are in
``test_distributional_fits.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash
from scipy.special import expit

import mixedbayes as mb
from mixedbayes.families import FAMILIES
from mixedbayes.spec.model import DPAR_KEYS, GLMMSpec

FORMULA = "Abundance ~ Treatment + (1 | Subject)"
ZI = "~ Treatment + (1 | Subject)"

#: ZIBR-like truth (logit scale): the abundance part, its precision, the zero part.
TRUTH = {
    "b[Intercept]": -1.2,
    "b[Treatment]": -0.5,
    "sd_Subject[Intercept]": 0.5,
    "phi": 8.0,
    "b_zi[Intercept]": -1.0,
    "b_zi[Treatment]": 1.0,
    "sd_Subject_zi[Intercept]": 1.2,
}


def zib_data(seed: int = 1, n_subjects: int = 59, n_times: int = 4) -> pd.DataFrame:
    """Simulated ZIBR data in ibd's layout (subjects × times, a between-subject treatment),
    drawn with the family's own ``simulate`` at :data:`TRUTH`."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_subjects), n_times)
    treated = (np.arange(n_subjects) % 2).astype(float)
    u = rng.normal(0.0, TRUTH["sd_Subject[Intercept]"], n_subjects)
    v = rng.normal(0.0, TRUTH["sd_Subject_zi[Intercept]"], n_subjects)
    mu = expit(TRUTH["b[Intercept]"] + TRUTH["b[Treatment]"] * treated[subject] + u[subject])
    zi = expit(TRUTH["b_zi[Intercept]"] + TRUTH["b_zi[Treatment]"] * treated[subject] + v[subject])
    family = FAMILIES["zero_inflated_beta"]
    y = family.simulate(mu, {"zi": zi, "phi": np.asarray(TRUTH["phi"])}, rng)
    return pd.DataFrame(
        {
            "Subject": [f"S{i:02d}" for i in subject],
            "Time": np.tile(np.arange(1, n_times + 1), n_subjects),
            "Treatment": treated[subject],
            "Abundance": y,
        }
    )


def zib_spec(**options: object) -> GLMMSpec:
    return mb.GLMM(FORMULA, "zero_inflated_beta", zi=ZI, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- spec
def test_spec_syntax_yaml_and_round_trip() -> None:
    spec = mb.load_spec(
        f'kind: glmm\nformula: "{FORMULA}"\nfamily: zero_inflated_beta\nzi: "{ZI}"\n'
    )
    assert spec == zib_spec()
    assert spec.dpar_formulas() == {"zi": ZI}
    assert "zi: ~ Treatment + (1 | Subject)" in spec.to_yaml()
    assert mb.load_spec(spec.to_yaml()) == spec


def test_zi_formula_for_a_family_without_zi_names_the_key_and_the_families() -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.GLMM("y ~ x", "beta", zi="~ x + (1 | g)")
    (problem,) = err.value.problems
    assert problem.where == "zi"
    for family in ("zero_inflated_beta", "zero_inflated_negbinomial", "zero_inflated_poisson"):
        assert family in str(err.value)
    with pytest.raises(mb.SpecError, match="starts with '~'") as err:
        mb.GLMM("y ~ x", "zero_inflated_beta", zi="x + (1 | g)")
    assert err.value.problems[0].where == "zi"


def test_every_formula_parameter_is_a_spec_key() -> None:
    """Registry-driven: a family parameter declared formula-capable can be given a formula
    (its name is a top-level key of a glmm spec), and no key shadows another spec field."""
    declared = {p.name for f in FAMILIES.values() for p in f.formula_params()}
    assert declared <= set(DPAR_KEYS), declared - set(DPAR_KEYS)
    for key in DPAR_KEYS:
        assert key in GLMMSpec.model_fields
    assert FAMILIES["zero_inflated_beta"].param("zi").link == "logit"  # type: ignore[union-attr]
    assert [p.name for p in FAMILIES["beta"].formula_params()] == ["phi"]
    assert FAMILIES["beta"].param("phi").link == "log"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- design and priors
def test_design_of_the_zi_formula() -> None:
    df = zib_data()
    before = frame_hash(df)
    d = mb.design(zib_spec(), df)
    assert frame_hash(df) == before
    zi = d.dpar("zi")
    assert zi is not None and d.zi_terms == ("Intercept", "Treatment")
    (g,) = zi.groups
    assert (g.name, g.part, g.key, g.term_dim, g.dim) == (
        "Subject",
        "zi",
        "Subject_zi",
        "Subject_zi_term",
        "Subject",
    )
    assert g.levels == d.group("Subject").levels and d.group("Subject_zi") is g
    # auto leaves a distributional parameter's effects non-centred; the spec can centre them
    assert g.blocks[0].parametrization == "noncentered" and "auto" in g.blocks[0].reason
    centred = mb.design(zib_spec(group_effects={"Subject": {"parametrization": "centered"}}), df)
    assert {b.parametrization for b in centred.dpar("zi").groups[0].blocks} == {"centered"}  # type: ignore[union-attr]
    # new rows: X, levels (an unseen one is -1) and Z of the zi formula
    new = pd.DataFrame({"Subject": ["S03", "new"], "Treatment": [1.0, 0.0]})
    rows = d.new_data(new).dpars["zi"]
    np.testing.assert_array_equal(rows.X, [[1.0, 1.0], [1.0, 0.0]])
    assert list(rows.group_index["Subject"]) == [g.levels.index("S03"), -1]
    assert rows.new_levels["Subject"] == ("new",)
    with pytest.raises(mb.DataError, match="Treatment"):
        d.new_data(new.drop(columns="Treatment"))


def test_zi_only_factor_and_large_group_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A factor only the zi formula has gets its own level dim; above DENSE_GROUP_CELLS the zi
    factor is learnt on a few rows and evaluated on all, as the response's: same design."""
    import importlib

    df = zib_data()
    spec = mb.GLMM(FORMULA, "zero_inflated_beta", zi="~ (1 | Time) + (1 | Subject)")
    small = mb.design(spec, df)
    assert [g.key for g in small.dpar("zi").groups] == ["Time_zi", "Subject_zi"]  # type: ignore[union-attr]
    coords = mb.compile(small).model.coords
    assert list(coords["Time"]) == ["1", "2", "3", "4"]
    monkeypatch.setattr(
        importlib.import_module("mixedbayes.design.design"), "DENSE_GROUP_CELLS", 10
    )
    large = mb.design(spec, df)
    for a, b in zip(small.dpar("zi").groups, large.dpar("zi").groups, strict=True):  # type: ignore[union-attr]
        assert a.levels == b.levels and a.terms == b.terms
        assert np.array_equal(a.index, b.index) and np.array_equal(a.Z, b.Z)


def test_factor_names_that_would_clash_are_spec_errors() -> None:
    df = zib_data().assign(Subject_zi=lambda f: f["Subject"])
    spec = mb.GLMM("Abundance ~ (1 | Subject_zi)", "zero_inflated_beta", zi=ZI)
    with pytest.raises(mb.SpecError, match="sd_Subject_zi") as err:
        mb.design(spec, df)
    assert "Subject_zi" in err.value.problems[0].where


def test_response_outside_zero_one_is_a_data_error_naming_the_row() -> None:
    df = zib_data()
    for value, text in ((1.0, "exact ones"), (-0.1, "[0, 1)"), (1.3, "[0, 1)")):
        bad = df.copy()
        bad.loc[9, "Abundance"] = value
        with pytest.raises(mb.DataError) as err:
            mb.design(zib_spec(), bad)
        assert "rows 9 " in str(err.value) and text in str(err.value)
        assert err.value.problems[0].where == "column 'Abundance'"


def test_prior_rows_of_the_zi_formula_and_overrides() -> None:
    df = zib_data()
    table = mb.get_priors(zib_spec(), df)
    zi_rows = {(r.class_, r.coef, r.group) for r in table if r.nlpar == "zi"}
    assert zi_rows == {
        ("Intercept", "", ""),
        ("b", "Treatment", ""),
        ("sd", "Intercept", "Subject"),
    }
    assert str(table.get("sd", "Intercept", "Subject", "zi").prior) == "student_t(3, 0, 2.5)"
    assert str(table.get("sd", "Intercept", "Subject").prior) == "student_t(3, 0, 1)"
    assert "phi" in {r.class_ for r in table}
    spec = zib_spec(
        priors=[
            {"class": "sd", "group": "Subject", "nlpar": "zi", "prior": "normal(0, 3)"},
            {"class": "Intercept", "nlpar": "zi", "prior": "normal(-2, 2)"},
        ]
    )
    table = mb.get_priors(spec, df)
    assert str(table.get("sd", "Intercept", "Subject", "zi").prior) == "normal(0, 3)"
    assert str(table.get("sd", "Intercept", "Subject").prior) == "student_t(3, 0, 1)"
    assert table.get("Intercept", "", "", "zi").source == "user"
    with pytest.raises(mb.SpecError, match="Patient"):
        mb.get_priors(
            zib_spec(
                priors=[{"class": "sd", "group": "Patient", "nlpar": "zi", "prior": "normal(0, 1)"}]
            ),
            df,
        )


# --------------------------------------------------------------------------- graph
def test_graph_names_dims_and_initial_logp() -> None:
    cm = mb.compile(zib_spec(), zib_data())
    dims = cm.model.named_vars_to_dims
    assert dims["b_zi"] == ("zi_term",)
    assert dims["sd_Subject_zi"] == ("Subject_zi_term",)
    assert dims["r_Subject_zi"] == ("Subject", "Subject_zi_term")
    assert dims["z_Subject_zi"] == ("Subject", "Subject_zi_term")
    assert dims["X_zi"] == ("observation", "zi_term")
    assert dims["r_Subject"] == ("Subject", "Subject_term")
    assert "phi" in cm.model.named_vars and "zi" not in cm.model.named_vars
    assert list(cm.model.coords["zi_term"]) == ["Intercept", "Treatment"]
    assert list(cm.model.coords["Subject"])[:2] == ["S00", "S01"]
    assert np.isfinite(cm.initial_logp())


def test_no_formula_keeps_todays_models() -> None:
    """Without a formula: ``zi`` is ``b_zi[Intercept]`` (as before), ``phi`` a scalar, and no
    zi group effects; families without a formula parameter are untouched."""
    df = zib_data()
    zib = mb.compile(mb.GLMM(FORMULA, "zero_inflated_beta"), df).model
    assert list(zib.coords["zi_term"]) == ["Intercept"]
    zi_names = {v for v in zib.named_vars if "zi" in v and not v.startswith("prior_")}
    assert zi_names == {"b_zi", "X_zi"}
    beta = mb.compile(mb.GLMM(FORMULA, "beta"), df[df["Abundance"] > 0]).model
    assert beta.named_vars_to_dims.get("phi") is None and "b_zi" not in beta.named_vars
    counts = df.assign(count=np.rint(20 * df["Abundance"]))
    zip_model = mb.compile(
        mb.GLMM("count ~ Treatment + (1 | Subject)", "zero_inflated_poisson"), counts
    )
    zi_names = {v for v in zip_model.model.named_vars if "zi" in v and not v.startswith("prior_")}
    assert zi_names == {"b_zi", "X_zi"}


def _prior_as_posterior(cm: object, draws: int = 6) -> object:
    """Prior draws of every variable (deterministics included), shaped as a 1-chain
    posterior: predictions and log-likelihoods can be checked without sampling."""
    import pymc as pm

    tree = pm.sample_prior_predictive(
        draws=draws,
        model=cm.model,  # type: ignore[attr-defined]
        random_seed=3,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )
    return tree["prior"].to_dataset()


def pymc_pointwise_loglik(post: object, cm: object, name: str) -> np.ndarray:
    """PyMC's pointwise log-density of the observed variable ``name`` at every draw of
    ``post`` (chain, draw, rows): what the NumPy log-likelihood must equal."""
    import pymc as pm
    import xarray as xr

    loglik = pm.compute_log_likelihood(
        xr.DataTree.from_dict({"posterior": post}),
        model=cm.model,  # type: ignore[attr-defined]
        extend_inferencedata=False,
        progressbar=False,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )
    return np.asarray(loglik[name].transpose("chain", "draw", ...).to_numpy())


def test_rowwise_zi_in_predictions_and_log_likelihood() -> None:
    """The zi of every row (its formula's fixed and group effects) enters predictions,
    simulated responses and the pointwise log-likelihood, for fitted rows and new data; the
    NumPy log-likelihood equals PyMC's pointwise log-density of the observed variable."""
    from mixedbayes.results.loglik import regression_log_likelihood
    from mixedbayes.results.predict import family_params, predict_draws, rows_of

    df = zib_data()
    cm = mb.compile(zib_spec(), df)
    d = cm.design
    post = _prior_as_posterior(cm)
    b_zi = post["b_zi"].to_numpy()  # (chain, draw, term)
    r_zi = post["r_Subject_zi"].to_numpy()[..., 0]  # (chain, draw, level)
    g = d.dpar("zi").groups[0]
    expected = expit(
        b_zi[..., :1] + b_zi[..., 1:] * df["Treatment"].to_numpy() + r_zi[..., g.index]
    )
    got = family_params(post, d, rows_of(d, None))["zi"]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # new rows equal to the fitted ones predict the same; population level leaves r out
    mean_fitted = predict_draws(post, d, None, kind="mean").to_numpy()
    mean_new = predict_draws(post, d, df, kind="mean").to_numpy()
    np.testing.assert_allclose(mean_new, mean_fitted, rtol=1e-10)
    pop = family_params(post, d, rows_of(d, df), level="population")["zi"]
    np.testing.assert_allclose(
        pop, expit(b_zi[..., :1] + b_zi[..., 1:] * df["Treatment"].to_numpy())
    )
    # unseen subjects: an error naming them, or effects drawn from sd_Subject_zi
    new = pd.DataFrame({"Subject": ["new1", "new2"], "Treatment": [0.0, 1.0]})
    with pytest.raises(mb.DataError, match="new1"):
        predict_draws(post, d, new, kind="mean", level=["Subject"])
    drawn = predict_draws(post, d, new, kind="response", new_groups="sample", seed=1).to_numpy()
    assert drawn.shape == (1, 6, 2) and np.all((drawn >= 0) & (drawn < 1))
    # the NumPy pointwise log-likelihood is PyMC's, draw by draw
    pymc_ll = pymc_pointwise_loglik(post, cm, "Abundance")
    np.testing.assert_allclose(regression_log_likelihood(post, d), pymc_ll, rtol=1e-8)
