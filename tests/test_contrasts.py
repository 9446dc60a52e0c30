"""Contrasts a spec sets (reference level, level order, treatment or sum coding) and the term
names users type (lme4/brms spellings in hypotheses and prior coefs). No sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import frame_hash

import mixedbayes as mb
from mixedbayes import datasets


def people(seed: int = 0, n_groups: int = 8, per: int = 6) -> pd.DataFrame:
    """Text columns only (as a CSV gives them): Sex Female/Male, dose low/mid/high."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "age": rng.normal(size=n),
            "Sex": np.tile(["Male", "Female"], n // 2),
            "dose": np.tile(["low", "mid", "high"], n // 3),
            "Trt": np.tile([0, 1, 1], n // 3),
            "g": np.repeat([f"g{i}" for i in range(n_groups)], per),
        }
    )


# --- the spec ----------------------------------------------------------------------------


def test_contrasts_from_dict_yaml_and_python_are_one_spec() -> None:
    text = """
kind: lmm
formula: y ~ age * Sex + (1 | g)
contrasts:
  Sex: {reference: Male}
  dose: sum
  Trt: {levels: [0, 1], reference: 1}
"""
    from_yaml = mb.load_spec(text)
    from_python = mb.LMM(
        "y ~ age * Sex + (1 | g)",
        contrasts={
            "Sex": {"reference": "Male"},
            "dose": "sum",
            "Trt": {"levels": [0, 1], "reference": 1},
        },
    )
    assert from_yaml == from_python
    c = from_yaml.contrasts
    assert (c["Sex"].coding, c["Sex"].reference) == ("treatment", "Male")
    assert c["dose"].coding == "sum"
    assert c["Trt"].levels == ("0", "1") and c["Trt"].reference == "1"
    assert mb.load_spec(from_yaml.to_yaml()) == from_yaml
    assert (
        mb.GLMM("y ~ Sex", "poisson", contrasts={"Sex": "contr.sum"}).contrasts["Sex"].coding
        == "sum"
    )


def test_unknown_coding_names_it_and_the_codings() -> None:
    with pytest.raises(mb.SpecError, match=r"contrasts\.Sex.*'helmert'.*\['sum', 'treatment'\]"):
        mb.LMM("y ~ Sex + (1 | g)", contrasts={"Sex": "helmert"})
    with pytest.raises(mb.SpecError, match="reference 'c' is not among levels"):
        mb.LMM("y ~ Sex + (1 | g)", contrasts={"Sex": {"levels": ["a", "b"], "reference": "c"}})


# --- the design --------------------------------------------------------------------------


def test_treatment_reference_in_fixed_and_group_terms() -> None:
    df = people()
    before = frame_hash(df)
    default = mb.design(mb.LMM("y ~ age * Sex + (Sex | g)"), df)
    assert default.fixed_terms == ("Intercept", "age", "Sex[Male]", "age:Sex[Male]")
    spec = mb.LMM("y ~ age * Sex + (Sex | g)", contrasts={"Sex": {"reference": "Male"}})
    d = mb.design(spec, df)
    assert d.fixed_terms == ("Intercept", "age", "Sex[Female]", "age:Sex[Female]")
    assert d.groups[0].terms == ("Intercept", "Sex[Female]")
    female = (df["Sex"] == "Female").to_numpy(dtype=float)
    np.testing.assert_array_equal(d.X[:, 2], female)
    np.testing.assert_array_equal(d.X[:, 3], female * df["age"].to_numpy())
    np.testing.assert_array_equal(d.groups[0].Z[:, 1], female)
    assert frame_hash(df) == before  # the user's frame is not touched
    new = d.new_data(df.iloc[:4])
    np.testing.assert_array_equal(new.X, d.X[:4])


def test_sum_coding_from_yaml_columns_and_names() -> None:
    df = people()
    spec = mb.load_spec(
        "kind: lmm\nformula: y ~ age * Sex + dose + (Sex | g)\n"
        "contrasts:\n  Sex: sum\n  dose: {coding: sum, levels: [low, mid, high], reference: low}\n"
    )
    d = mb.design(spec, df)
    assert d.fixed_terms == (
        "Intercept",
        "age",
        "Sex[S.Female]",
        "age:Sex[S.Female]",
        "dose[S.mid]",
        "dose[S.high]",
    )
    assert d.groups[0].terms == ("Intercept", "Sex[S.Female]")
    sex = np.where(df["Sex"] == "Female", 1.0, -1.0)  # the last level (Male) is left out
    np.testing.assert_array_equal(d.X[:, d.fixed_terms.index("Sex[S.Female]")], sex)
    np.testing.assert_array_equal(d.groups[0].Z[:, 1], sex)
    coded = {"low": (-1.0, -1.0), "mid": (1.0, 0.0), "high": (0.0, 1.0)}
    expected = np.array([coded[v] for v in df["dose"]])
    np.testing.assert_array_equal(d.X[:, 4:6], expected)
    # every column of a sum-coded factor sums to zero over its levels
    assert np.array(list(coded.values())).sum(axis=0).tolist() == [0.0, 0.0]
    new = d.new_data(df.iloc[:6])
    np.testing.assert_array_equal(new.X, d.X[:6])
    np.testing.assert_array_equal(new.group_Z["g"], d.groups[0].Z[:6])


def test_levels_make_a_numeric_column_a_factor() -> None:
    df = people()
    spec = mb.LMM("y ~ Trt + (1 | g)", contrasts={"Trt": {"levels": [0, 1], "reference": 1}})
    d = mb.design(spec, df)
    assert d.fixed_terms == ("Intercept", "Trt[0]")
    np.testing.assert_array_equal(d.X[:, 1], (df["Trt"] == 0).to_numpy(dtype=float))
    np.testing.assert_array_equal(d.new_data(df.iloc[:3]).X, d.X[:3])


def test_glmm_zi_and_nonlinear_parameters_take_contrasts() -> None:
    df = people().assign(count=np.arange(48) % 5)
    glmm = mb.GLMM(
        "count ~ Sex + (1 | g)",
        family="zero_inflated_poisson",
        zi="~ dose",
        contrasts={"Sex": {"reference": "Male"}, "dose": "sum"},
    )
    d = mb.design(glmm, df)
    assert d.fixed_terms == ("Intercept", "Sex[Female]")
    assert d.zi_terms == ("Intercept", "dose[S.high]", "dose[S.low]")
    nl = mb.load_spec(
        {
            "kind": "nonlinear",
            "expression": "E0 + Emax * age",
            "response": "y",
            "parameters": {"E0": "1 + Sex + (1 | g)", "Emax": "1 + dose"},
            "contrasts": {"Sex": "sum", "dose": {"reference": "mid"}},
        }
    )
    nd = mb.design(nl, df)
    terms = {p.key: p.terms for p in nd.params}
    assert terms == {
        "E0": ("Intercept", "Sex[S.Female]"),
        "Emax": ("Intercept", "dose[high]", "dose[low]"),
    }


@pytest.mark.parametrize(
    ("contrasts", "where", "words"),
    [
        ({"sex": "sum"}, "contrasts.sex", ["'sex'", "not a predictor", "['Sex', 'age', 'dose']"]),
        ({"g": "sum"}, "contrasts.g", ["'g'", "grouping factor"]),
        (
            {"Sex": {"reference": "male"}},
            "contrasts.Sex.reference",
            ["'male'", "['Female', 'Male']"],
        ),
        ({"age": "sum"}, "contrasts.age", ["'age'", "numeric"]),
        (
            {"dose": {"levels": ["low", "mid", "hgh"]}},
            "contrasts.dose.levels",
            ["['hgh']", "['high']", "['high', 'low', 'mid']"],
        ),
    ],
)
def test_contrast_errors_name_the_column_or_level_and_the_choices(
    contrasts: dict[str, object], where: str, words: list[str]
) -> None:
    spec = mb.LMM("y ~ age + Sex + dose + (1 | g)", contrasts=contrasts)
    with pytest.raises(mb.SpecError) as info:
        mb.design(spec, people())
    (problem,) = info.value.problems
    assert problem.where == where
    text = str(info.value)
    for word in words:
        assert word in text


# --- bundled data sets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "formula", "column"),
    [
        ("nhanes2", "bmi ~ age + hyp", "age"),
        ("nhanes2", "bmi ~ age + hyp", "hyp"),
        ("pbcseq", "bili ~ day * sex + (1 | id)", "sex"),
        ("epil_mass", "y ~ trt + (1 | subject)", "trt"),
        ("epilepsy", "count ~ zBase * Trt + (1 | patient)", "Trt"),
        ("cbpp", "incidence ~ period + (1 | herd)", "period"),
    ],
)
def test_datasets_keep_their_documented_reference_levels(
    name: str, formula: str, column: str
) -> None:
    levels = datasets.info(name).categorical[column]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.DataWarning)  # nhanes2 has missing values
        d = mb.design(mb.LMM(formula), datasets.load(name))
    factor_terms = [t for t in d.fixed_terms if t.startswith(column + "[")]
    assert factor_terms == [f"{column}[{lv}]" for lv in levels[1:]]


def test_csv_user_sets_the_reference_without_pandas(tmp_path: object) -> None:
    # read from the CSV, 'sex' is text sorted f < m; the docs' reference is m
    csv = datasets.path("pbcseq")
    text = f"kind: lmm\nformula: bili ~ sex + (1 | id)\ndata: {csv}\n"
    assert mb.design(text).fixed_terms == ("Intercept", "sex[m]")
    reference = datasets.info("pbcseq").reference_levels["sex"]
    chosen = mb.design(text + f"contrasts: {{sex: {{reference: {reference}}}}}\n")
    assert chosen.fixed_terms == ("Intercept", "sex[f]")


# --- names users type -------------------------------------------------------------------------


TERMS = ["Intercept", "age", "Sex[Female]", "age:Sex[Female]", "grp[40-59]", "dose[S.mid]"]


@pytest.mark.parametrize(
    ("typed", "term"),
    [
        ("age:Sex[Female]", "age:Sex[Female]"),
        ("age:SexFemale", "age:Sex[Female]"),
        ("SexFemale:age", "age:Sex[Female]"),
        ("b_age:SexFemale", "age:Sex[Female]"),
        ("SexFemale", "Sex[Female]"),
        ("(Intercept)", "Intercept"),
        ("b_Intercept", "Intercept"),
        ("grp40-59", "grp[40-59]"),
        ("grp40M59", "grp[40-59]"),
        ("dose[S.mid]", "dose[S.mid]"),
        ("doseS.mid", None),
        ("SexMale", None),
        ("agee", None),
    ],
)
def test_resolve_term(typed: str, term: str | None) -> None:
    from mixedbayes.design.terms import resolve_term

    assert resolve_term(typed, TERMS) == term


def test_resolve_term_refuses_an_ambiguous_spelling() -> None:
    from mixedbayes.design.terms import resolve_term

    # 'ab' + 'c' and 'a' + 'bc' are both 'abc' in lme4's spelling
    assert resolve_term("abc", ["ab[c]", "a[bc]"]) is None
    assert resolve_term("ab[c]", ["ab[c]", "a[bc]"]) == "ab[c]"


def fake_fit(design: mb.Design) -> mb.Fit:
    """A Fit whose b draws are 10 * (term position) + tiny noise, no sampling."""
    chains, draws, p = 2, 50, len(design.fixed_terms)
    rng = np.random.default_rng(3)
    b = 10.0 * np.arange(p) + rng.normal(scale=1e-3, size=(chains, draws, p))
    g = design.groups[0]
    post = xr.Dataset(
        {
            "b": xr.DataArray(
                b, dims=("chain", "draw", "term"), coords={"term": list(design.fixed_terms)}
            ),
            "sigma": xr.DataArray(np.ones((chains, draws)), dims=("chain", "draw")),
            f"sd_{g.name}": xr.DataArray(
                np.full((chains, draws, len(g.terms)), 2.0),
                dims=("chain", "draw", g.term_dim),
                coords={g.term_dim: list(g.terms)},
            ),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    return mb.Fit(xr.DataTree.from_dict({"posterior": post}), design.spec, design, None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sex_fit() -> mb.Fit:
    df = people()
    df["Sex"] = pd.Categorical(df["Sex"], categories=["Male", "Female"])
    return fake_fit(mb.design(mb.LMM("y ~ age * Sex + (1 | g)"), df))


@pytest.mark.parametrize(
    ("hypothesis", "estimate"),
    [
        ("age:SexFemale < 0", 30.0),
        ("SexFemale:age = 30", 0.0),
        ("b_age:SexFemale - age > 0", 20.0),
        ("(Intercept) + SexFemale > 0", 20.0),
        ("`age:SexFemale` > 1e-3", 30.0),
        ("sd_g__Intercept > 1", 1.0),
    ],
)
def test_hypothesis_takes_lme4_and_brms_names(
    sex_fit: mb.Fit, hypothesis: str, estimate: float
) -> None:
    row = sex_fit.hypothesis(hypothesis).iloc[0]
    assert row["estimate"] == pytest.approx(estimate, abs=0.01)


def test_hypothesis_unknown_name_lists_the_fixed_effects(sex_fit: mb.Fit) -> None:
    with pytest.raises(mb.SpecError) as info:
        sex_fit.hypothesis("age:SexMale < 0")  # Male is the reference: no such term
    text = str(info.value)
    assert "'age:SexMale'" in text
    for term in sex_fit.design.fixed_terms:
        assert repr(term) in text


def test_prior_coef_takes_lme4_names() -> None:
    spec = mb.LMM(
        "y ~ age * Sex + (1 | g)",
        contrasts={"Sex": {"reference": "Male"}},
        priors=[{"class": "b", "coef": "SexFemale:age", "prior": "normal(0, 3)"}],
    )
    table = mb.get_priors(spec, people())
    row = table.get("b", "age:Sex[Female]")
    assert row.source == "user" and str(row.prior) == "normal(0, 3)"
