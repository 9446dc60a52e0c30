"""GLMM: trials, offsets, zero inflation, family checks; structural (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash

import mixedbayes as mb


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return mb.datasets.load("cbpp")


def counts_frame(seed: int = 0, n_groups: int = 8, per: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * per
    return pd.DataFrame(
        {
            "y": rng.poisson(3, n),
            "x": rng.normal(size=n),
            "exposure": rng.uniform(0.5, 2.0, n),
            "g": np.repeat([f"g{i}" for i in range(n_groups)], per),
        }
    )


def test_cbind_and_trials_give_the_same_design(cbpp: pd.DataFrame) -> None:
    a = mb.design(
        mb.GLMM("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"), cbpp
    )
    b = mb.design(mb.GLMM("incidence | trials(size) ~ period + (1 | herd)", "binomial"), cbpp)
    np.testing.assert_array_equal(a.trials, cbpp["size"].to_numpy())
    np.testing.assert_array_equal(a.trials, b.trials)
    np.testing.assert_array_equal(a.y, cbpp["incidence"].to_numpy())
    assert a.fixed_terms == ("Intercept", "period[2]", "period[3]", "period[4]")
    cm = mb.compile(a)
    assert "trials" in cm.model.named_vars and np.isfinite(cm.initial_logp())
    assert cm.priors.get("Intercept").prior.name == "student_t"


def test_binomial_needs_trials_and_poisson_takes_none(cbpp: pd.DataFrame) -> None:
    with pytest.raises(mb.SpecError, match="needs the number of trials"):
        mb.design(mb.GLMM("incidence ~ period + (1 | herd)", "binomial"), cbpp)
    with pytest.raises(mb.SpecError, match="takes none"):
        mb.design(mb.GLMM("cbind(incidence, size - incidence) ~ period", "poisson"), cbpp)


def test_binomial_successes_above_trials_name_the_rows(cbpp: pd.DataFrame) -> None:
    bad = cbpp.copy()
    bad.loc[4, "incidence"] = 99
    with pytest.raises(mb.DataError) as err:
        mb.design(mb.GLMM("incidence | trials(size) ~ period + (1 | herd)", "binomial"), bad)
    assert "4" in str(err.value) and "99" in str(err.value)


def test_negative_counts_name_the_values() -> None:
    df = counts_frame()
    df.loc[[3, 5], "y"] = [-1, -2]
    with pytest.raises(mb.DataError) as err:
        mb.design(mb.GLMM("y ~ x + (1 | g)", "poisson"), df)
    text = str(err.value)
    assert "3" in text and "-1" in text and "column 'y'" in " ".join(err.value.where)


def test_beta_response_outside_open_interval() -> None:
    df = counts_frame().assign(y=np.linspace(0.05, 0.95, 48))
    df.loc[7, "y"] = 1.0
    with pytest.raises(mb.DataError, match="7"):
        mb.design(mb.GLMM("y ~ x + (1 | g)", "beta"), df)


def test_invalid_family_link_pair() -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.GLMM("y ~ x", {"name": "poisson", "link": "logit"})
    assert "logit" in str(err.value) and "log" in str(err.value)


def test_offset_enters_the_linear_predictor() -> None:
    df = counts_frame()
    before = frame_hash(df)
    d = mb.design(mb.GLMM("y ~ x + offset(log(exposure)) + (1 | g)", "poisson"), df)
    np.testing.assert_allclose(d.offset, np.log(df["exposure"]))
    assert d.fixed_terms == ("Intercept", "x")
    cm = mb.compile(d)
    assert "offset" in cm.model.named_vars and np.isfinite(cm.initial_logp())
    assert frame_hash(df) == before
    df.loc[2, "exposure"] = 0.0
    with pytest.raises(mb.DataError, match="offset"):
        mb.design(mb.GLMM("y ~ x + offset(log(exposure)) + (1 | g)", "poisson"), df)


def test_zero_inflation_formula_and_priors() -> None:
    df = counts_frame().assign(trt=np.tile([0, 1], 24))
    spec = mb.GLMM(
        "y ~ x + (1 | g)",
        "zero_inflated_poisson",
        zi="~ trt",
        priors=[{"class": "b", "coef": "trt", "nlpar": "zi", "prior": "normal(0, 1)"}],
    )
    d = mb.design(spec, df)
    assert d.zi_terms == ("Intercept", "trt")
    cm = mb.compile(d)
    assert cm.model.named_vars_to_dims["b_zi"] == ("zi_term",)
    assert str(cm.priors.get("b", "trt", "", "zi").prior) == "normal(0, 1)"
    assert cm.priors.get("Intercept", "", "", "zi").source == "default"
    assert np.isfinite(cm.initial_logp())
    assert mb.load_spec(spec.to_yaml()) == spec
    with pytest.raises(mb.SpecError, match="families whose 'zi' does"):
        mb.GLMM("y ~ x", "poisson", zi="~ 1")
    # group effects in the zi formula: their own sd_<g>_zi, r_<g>_zi
    grouped = mb.compile(mb.GLMM("y ~ x", "zero_inflated_poisson", zi="~ (1 | g)"), df)
    assert grouped.model.named_vars_to_dims["r_g_zi"] == ("g", "g_zi_term")
    with pytest.raises(mb.SpecError, match="nlpar"):
        mb.get_priors(
            mb.GLMM(
                "y ~ x", "poisson", priors=[{"class": "b", "nlpar": "zi", "prior": "normal(0, 1)"}]
            ),
            df,
        )


def test_default_priors_per_family(cbpp: pd.DataFrame) -> None:
    df = counts_frame()
    table = mb.get_priors(mb.GLMM("y ~ x + (1 | g)", "poisson"), df)
    icpt = table.get("Intercept")
    assert icpt.prior.args[1] == pytest.approx(np.log(df["y"].mean()), abs=1e-3)
    assert icpt.prior.args[2] == pytest.approx(2.5)
    assert table.get("b", "x").prior.args[1] == pytest.approx(2.5 / df["x"].std(), rel=1e-3)
    nb = mb.get_priors(mb.GLMM("y ~ x + (1 | g)", "negbinomial"), df)
    assert nb.get("alpha").provenance


def test_every_family_builds_a_graph() -> None:
    from mixedbayes.families import FAMILIES

    rng = np.random.default_rng(3)
    base = counts_frame(seed=4)
    for name, family in FAMILIES.items():
        mu = 0.4 if family.default_link in ("logit", "probit", "cloglog") else 2.0
        params = {p.name: 0.2 if p.predictor else 5.0 for p in family.params}
        trials = np.full(len(base), 5) if family.needs_trials else None
        y = family.simulate(np.full(len(base), mu), params, rng, trials)
        df = base.assign(y=y, n=5)
        formula = "y | trials(n) ~ x + (1 | g)" if family.needs_trials else "y ~ x + (1 | g)"
        cm = mb.compile(mb.GLMM(formula, name), df)
        assert np.isfinite(cm.initial_logp()), name


def test_positive_prior_on_family_parameter() -> None:
    df = counts_frame()
    spec = mb.GLMM(
        "y ~ x + (1 | g)", "negbinomial", priors=[{"class": "alpha", "prior": "gamma(2, 0.1)"}]
    )
    assert str(mb.get_priors(spec, df).get("alpha").prior) == "gamma(2, 0.1)"
    with pytest.raises(mb.SpecError, match="positive support"):
        mb.get_priors(
            mb.GLMM("y ~ x", "poisson", priors=[{"class": "b", "prior": "gamma(2, 1)"}]), df
        )
