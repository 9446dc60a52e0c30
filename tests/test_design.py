"""Design: group structure, level names, data checks, the data are never mutated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash

import mixedbayes as mb


def small_frame(n_groups: int = 6, per: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * per
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "t": np.tile(np.arange(per), n_groups).astype(float),
            "g": np.repeat([f"g{i}" for i in range(n_groups)], per),
            "clinic": np.repeat([f"c{i // 2}" for i in range(n_groups)], per),
            "a": rng.choice(["a1", "a2", "a3"], size=n),
        }
    )


def test_sleepstudy_design(sleepstudy: pd.DataFrame) -> None:
    d = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    assert d.fixed_terms == ("Intercept", "Days")
    (g,) = d.groups
    assert g.name == "Subject" and g.terms == ("Intercept", "Days")
    assert g.levels[:3] == ("308", "309", "310") and g.n_levels == 18
    assert len(g.blocks) == 1 and g.blocks[0].correlated
    assert (g.counts == 10).all()
    np.testing.assert_array_equal(g.Z[:, 1], sleepstudy["Days"].to_numpy())
    assert d.y.shape == (180,) and not d.y.flags.writeable


def test_double_bar_gives_independent_blocks() -> None:
    d = mb.design(mb.LMM("y ~ t + (t || g)"), small_frame())
    (g,) = d.groups
    assert [b.correlated for b in g.blocks] == [False, False]
    assert not g.correlated


def test_nested_factors_have_joined_level_names() -> None:
    d = mb.design(mb.LMM("y ~ t + (1 | clinic/g)"), small_frame())
    names = [g.name for g in d.groups]
    assert names == ["clinic", "clinic:g"]
    nested = d.group("clinic:g")
    # only observed combinations are levels (formulae's product has 18)
    assert nested.n_levels == 6 and nested.levels[0] == "c0:g0"


def test_crossed_and_several_terms_per_group() -> None:
    d = mb.design(mb.LMM("y ~ x + (1 | g) + (0 + t | g) + (1 | a)"), small_frame())
    g = d.group("g")
    assert g.terms == ("Intercept", "t")
    assert [b.columns for b in g.blocks] == [(0,), (1,)]
    assert d.group("a").n_levels == 3


def test_repeated_group_term_is_a_spec_error() -> None:
    with pytest.raises(mb.SpecError, match="twice"):
        mb.design(mb.LMM("y ~ x + (1 | g) + (t | g)"), small_frame())


def test_auto_parametrization_follows_data_per_group() -> None:
    rng = np.random.default_rng(1)
    rich = pd.DataFrame({"g": np.repeat(np.arange(20), 50)})
    rich["y"] = rng.normal(0, 2, 20)[rich["g"]] + rng.normal(0, 1, len(rich))
    poor = pd.DataFrame({"g": np.repeat(np.arange(200), 2)})
    poor["y"] = rng.normal(0, 0.3, 200)[poor["g"]] + rng.normal(0, 1, len(poor))
    spec = mb.LMM("y ~ 1 + (1 | g)")
    assert mb.design(spec, rich).groups[0].blocks[0].parametrization == "centered"
    assert mb.design(spec, poor).groups[0].blocks[0].parametrization == "noncentered"
    forced = mb.LMM("y ~ 1 + (1 | g)", parametrization="noncentered")
    block = mb.design(forced, rich).groups[0].blocks[0]
    assert block.parametrization == "noncentered" and "spec" in block.reason


def test_missing_column_is_named_with_suggestion(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(mb.DataError) as err:
        mb.design(mb.LMM("Reaction ~ Day + (1 | Subject)"), sleepstudy)
    assert "column 'Day'" in err.value.where and "Did you mean 'Days'" in str(err.value)


def test_non_numeric_response_names_rows() -> None:
    df = small_frame()
    df["y"] = df["y"].astype(object)
    df.loc[3, "y"] = "n/a"
    with pytest.raises(mb.DataError) as err:
        mb.design(mb.LMM("y ~ x + (1 | g)"), df)
    assert (
        "column 'y'" in err.value.where and "rows 3" in str(err.value) and "'n/a'" in str(err.value)
    )


def test_nan_in_grouping_column_names_rows() -> None:
    df = small_frame()
    df.loc[[2, 7], "g"] = None
    with pytest.raises(mb.DataError) as err:
        mb.design(mb.LMM("y ~ x + (1 | g)"), df)
    assert "column 'g'" in err.value.where and "2, 7" in str(err.value)
    assert "dropna" in str(err.value)


def test_empty_data() -> None:
    with pytest.raises(mb.DataError, match="no rows"):
        mb.design(mb.LMM("y ~ x + (1 | g)"), small_frame().iloc[:0])


def test_not_a_dataframe() -> None:
    with pytest.raises(mb.DataError, match="DataFrame"):
        mb.design(mb.LMM("y ~ x"), [[1, 2]])  # type: ignore[arg-type]


def test_infinite_response_and_bad_transform() -> None:
    df = small_frame()
    df.loc[4, "y"] = np.inf
    df.loc[5, "x"] = -1.0
    with pytest.raises(mb.DataError) as err:
        mb.design(
            mb.LMM("y ~ log(x) + (1 | g)"), df.assign(x=df["x"].abs().where(df.index != 5, -1))
        )
    text = str(err.value)
    assert "rows 4" in text and "term 'log(x)'" in text and "rows 5" in text


def test_single_level_group_is_a_data_error() -> None:
    df = small_frame().assign(g="only")
    with pytest.raises(mb.DataError, match="single level"):
        mb.design(mb.LMM("y ~ x + (1 | g)"), df)


def test_missing_response_rows_are_counted_and_reported() -> None:
    df = small_frame()
    df.loc[[0, 5, 9], "y"] = np.nan
    df.loc[[11], "x"] = np.nan
    before = frame_hash(df)
    with pytest.warns(mb.DataWarning, match=r"dropped 4 of 30 rows") as rec:
        d = mb.design(mb.LMM("y ~ x + (1 | g)"), df)
    assert "missing response 'y'" in str(rec[0].message)
    assert d.report.rows_in == 30 and d.report.rows_used == 26 and d.report.rows_dropped == 4
    reasons = {(x.reason, x.column): x.rows for x in d.report.dropped}
    assert reasons[("missing response", "y")] == (0, 5, 9)
    assert reasons[("missing covariate", "x")] == (11,)
    assert 0 not in d.obs_index
    assert frame_hash(df) == before


@pytest.mark.parametrize(
    "formula",
    [
        "Reaction ~ Days + (Days | Subject)",
        "Reaction ~ Days + (Days || Subject)",
        "Reaction ~ log(Days + 1) + (1 | Subject)",
    ],
)
def test_design_never_mutates_data(sleepstudy: pd.DataFrame, formula: str) -> None:
    df = sleepstudy.copy()
    df.loc[3, "Reaction"] = np.nan
    before = frame_hash(df)
    with pytest.warns(mb.DataWarning):
        mb.design(mb.LMM(formula), df)
    assert frame_hash(df) == before


def test_new_data_maps_levels_and_flags_unknown(sleepstudy: pd.DataFrame) -> None:
    d = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    nd = d.new_data(pd.DataFrame({"Days": [1.0, 2.0], "Subject": [309, 1000]}))
    assert list(nd.group_index["Subject"]) == [1, -1]
    assert nd.new_levels["Subject"] == ("1000",)
    np.testing.assert_array_equal(nd.X, [[1.0, 1.0], [1.0, 2.0]])
    with pytest.raises(mb.DataError, match="column 'Subject'"):
        d.new_data(pd.DataFrame({"Days": [1.0]}))


def test_group_named_like_a_model_variable_is_a_spec_error() -> None:
    df = small_frame().rename(columns={"g": "b"})
    with pytest.raises(mb.SpecError) as err:
        mb.design(mb.LMM("y ~ x + (1 | b)"), df)
    assert "group 'b'" in err.value.where and "rename" in str(err.value)


def test_large_group_path_gives_the_same_design(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above DENSE_GROUP_CELLS the group structure is learnt on one row per level and
    evaluated on all rows without formulae's dense rows × levels matrices: same design."""
    import importlib

    design_module = importlib.import_module("mixedbayes.design.design")
    sim = mb.simulate.lmm(n_clinics=4, patients_per_clinic=6, n_times=5, seed=8).data
    sim["arm"] = np.where(np.arange(len(sim)) % 3 == 0, "A", "B")
    formula = "y ~ time * arm + (time || clinic/patient) + (0 + arm | patient)"
    small = mb.design(mb.LMM(formula), sim)
    monkeypatch.setattr(design_module, "DENSE_GROUP_CELLS", 10)
    large = mb.design(mb.LMM(formula), sim)
    assert type(large._matrices).__name__ == "_SplitMatrices"
    assert np.array_equal(small.X, large.X) and small.fixed_terms == large.fixed_terms
    assert [g.name for g in small.groups] == [g.name for g in large.groups]
    for a, b in zip(small.groups, large.groups, strict=True):
        assert a.levels == b.levels and a.terms == b.terms
        assert np.array_equal(a.index, b.index) and np.array_equal(a.Z, b.Z)
    new = sim.iloc[:12]
    for name, Z in small.new_data(new).group_Z.items():
        assert np.array_equal(Z, large.new_data(new).group_Z[name])


def test_auto_keeps_one_centred_intercept() -> None:
    """Two data-rich factors: under auto only the one with fewer levels keeps a centred
    intercept (it is centred hierarchically); a spec that asks for centred keeps both."""
    rng = np.random.default_rng(4)
    clinic = np.repeat(np.arange(6), 80)
    patient = np.repeat(np.arange(24), 20)
    y = rng.normal(0, 2, 6)[clinic] + rng.normal(0, 2, 24)[patient] + rng.normal(0, 0.2, 480)
    data = pd.DataFrame({"y": y, "clinic": clinic, "patient": patient})
    formula = "y ~ 1 + (1 | clinic) + (1 | patient)"
    params = {g.name: g.blocks[0] for g in mb.design(mb.LMM(formula), data).groups}
    assert params["clinic"].parametrization == "centered"
    assert params["patient"].parametrization == "noncentered"
    assert "clinic" in params["patient"].reason
    forced = mb.design(mb.LMM(formula, parametrization="centered"), data).groups
    assert all(g.blocks[0].parametrization == "centered" for g in forced)


def _sexed(categories: list[str] | None) -> pd.DataFrame:
    """``small_frame`` with a Sex column: a Categorical in the order ``categories``, or text."""
    df = small_frame()
    sex = np.tile(["Male", "Female", "Male"], len(df) // 3)
    df["count"] = np.arange(len(df)) % 4
    df["Sex"] = sex if categories is None else pd.Categorical(sex, categories=categories)
    return df


@pytest.mark.parametrize(
    ("categories", "coded"),
    [
        (["Male", "Female"], "Female"),
        (["Female", "Male"], "Male"),
        (["Other", "Male", "Female"], "Female"),  # an unused first category is not a level
        (None, "Male"),  # text: sorted, as before
    ],
)
@pytest.mark.parametrize("kind", ["lmm", "glmm"])
def test_categorical_reference_is_its_first_category(
    kind: str, categories: list[str] | None, coded: str
) -> None:
    df = _sexed(categories)
    before = frame_hash(df)
    spec = (
        mb.LMM("y ~ Sex + (Sex | g)")
        if kind == "lmm"
        else mb.GLMM("count ~ Sex + (Sex | g)", "zero_inflated_poisson", zi="~ Sex")
    )
    d = mb.design(spec, df)
    assert d.fixed_terms == ("Intercept", f"Sex[{coded}]")
    assert d.group("g").terms == ("Intercept", f"Sex[{coded}]")
    np.testing.assert_array_equal(d.X[:, 1], (df["Sex"] == coded).to_numpy(dtype=float))
    if kind == "glmm":
        assert d.zi_terms == ("Intercept", f"Sex[{coded}]")
    # new rows (text or either Categorical order) are coded the same way
    new = pd.DataFrame({"Sex": ["Female", "Male"], "g": ["g0", "g1"]})
    expected = [float(coded == "Female"), float(coded == "Male")]
    for rows in (new, new.assign(Sex=pd.Categorical(new["Sex"], categories=["Male", "Female"]))):
        np.testing.assert_array_equal(d.new_data(rows).X[:, 1], expected)
    assert frame_hash(df) == before


@pytest.mark.parametrize(
    ("categories", "coded"), [(["Male", "Female"], "Female"), (["Female", "Male"], "Male")]
)
def test_categorical_reference_in_nonlinear_parameters(categories: list[str], coded: str) -> None:
    df = _sexed(categories).assign(x=lambda d: d["t"] + 1.0)
    spec = mb.load_spec(
        {
            "kind": "nonlinear",
            "expression": "A * x / (B + x)",
            "parameters": {"log_A": "1 + Sex + (1 | g)", "log_B": "1 + Sex"},
            "response": "y",
        }
    )
    d = mb.design(spec, df)
    assert d.param("log_A").terms == ("Intercept", f"Sex[{coded}]")
    assert d.param("log_B").terms == ("Intercept", f"Sex[{coded}]")
