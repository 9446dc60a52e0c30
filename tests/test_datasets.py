"""Tests of the bundled example data sets (mixedbayes.datasets)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from mixedbayes import datasets
from mixedbayes.errors import DataError

ROWS = {
    "sleepstudy": 180,
    "cbpp": 56,
    "epilepsy": 236,
    "epil_mass": 236,
    "theoph": 132,
    "nhanes": 25,
    "nhanes2": 25,
    "pbcseq": 1945,
}

FILES = {
    "sleepstudy": "sleepstudy.csv",
    "cbpp": "cbpp.csv",
    "epilepsy": "epilepsy.csv",
    "epil_mass": "epil_MASS.csv",
    "theoph": "theoph.csv",
    "nhanes": "nhanes.csv",
    "nhanes2": "nhanes2.csv",
    "pbcseq": "pbcseq.csv",
}


def test_names_lists_every_bundled_data_set() -> None:
    assert datasets.names() == sorted(ROWS)


def test_data_folder_holds_exactly_the_registered_files() -> None:
    folder = datasets.path("sleepstudy").parent
    assert sorted(p.name for p in folder.glob("*.csv")) == sorted(FILES.values())
    for name, filename in FILES.items():
        assert datasets.path(name).name == filename
        assert datasets.path(name).is_file()
        assert datasets.info(name).filename == filename


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_data_set_loads_as_documented(name: str) -> None:
    df = datasets.load(name)
    meta = datasets.info(name)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == ROWS[name] == meta.n_rows
    assert list(df.columns) == list(meta.columns)
    assert meta.title and meta.description and meta.source
    assert "GPL" in meta.source
    for col in df.columns:
        if col in meta.categorical:
            assert isinstance(df[col].dtype, pd.CategoricalDtype), col
            assert list(df[col].cat.categories) == meta.categorical[col], col
            assert not df[col].cat.ordered
        else:
            assert pd.api.types.is_numeric_dtype(df[col]), col


@pytest.mark.parametrize("name", sorted(ROWS))
def test_categorical_columns_lose_no_values(name: str) -> None:
    raw = pd.read_csv(datasets.path(name), na_values=["NA"], keep_default_na=False, dtype=str)
    df = datasets.load(name)
    for col in datasets.info(name).categorical:
        assert df[col].isna().sum() == raw[col].isna().sum(), col
        observed = df[col].astype(object).where(df[col].notna(), None)
        expected = raw[col].astype(object).where(raw[col].notna(), None)
        assert observed.tolist() == expected.tolist(), col


@pytest.mark.parametrize(
    ("name", "column", "levels"),
    [
        ("cbpp", "period", ["1", "2", "3", "4"]),
        ("cbpp", "herd", [str(i) for i in range(1, 16)]),
        ("epilepsy", "Trt", ["0", "1"]),
        ("epilepsy", "visit", ["1", "2", "3", "4"]),
        ("epilepsy", "patient", [str(i) for i in range(1, 60)]),
        ("epil_mass", "trt", ["placebo", "progabide"]),
        ("theoph", "Subject", ["6", "7", "8", "11", "3", "2", "4", "9", "12", "10", "1", "5"]),
        ("nhanes2", "age", ["20-39", "40-59", "60-99"]),
        ("nhanes2", "hyp", ["no", "yes"]),
        ("pbcseq", "sex", ["m", "f"]),
    ],
)
def test_reference_levels_are_as_in_r(name: str, column: str, levels: list[str]) -> None:
    assert datasets.info(name).categorical[column] == levels
    assert list(datasets.load(name)[column].cat.categories) == levels
    assert datasets.info(name).reference_levels[column] == levels[0]


def test_sleepstudy_subjects_keep_their_string_names() -> None:
    df = datasets.load("sleepstudy")
    subjects = list(df["Subject"].cat.categories)
    assert len(subjects) == 18
    assert subjects[0] == "308"
    assert all(isinstance(s, str) for s in subjects)
    assert df["Subject"].iloc[0] == "308"
    assert df["Reaction"].iloc[0] == pytest.approx(249.56)
    assert df.groupby("Subject", observed=True).size().eq(10).all()
    assert sorted(df["Days"].unique()) == list(range(10))


def test_group_structure_of_the_longitudinal_sets() -> None:
    epilepsy = datasets.load("epilepsy")
    assert epilepsy.groupby("patient", observed=True).size().eq(4).all()
    assert epilepsy["obs"].nunique() == 236
    # zAge and zBase are standardised over all rows.
    for col in ("zAge", "zBase"):
        assert abs(epilepsy[col].mean()) < 1e-8
        assert epilepsy[col].std() == pytest.approx(1.0, abs=1e-6)
    theoph = datasets.load("Theoph")
    assert theoph.groupby("Subject", observed=True).size().eq(11).all()
    assert datasets.load("cbpp")["herd"].nunique() == 15
    assert datasets.load("pbcseq")["id"].nunique() == 312


@pytest.mark.parametrize("name", ["nhanes", "nhanes2"])
def test_nhanes_missing_values_are_nan(name: str) -> None:
    df = datasets.load(name)
    assert df.isna().sum().to_dict() == {"age": 0, "bmi": 9, "hyp": 8, "chl": 10}


def test_names_are_case_insensitive() -> None:
    pd.testing.assert_frame_equal(datasets.load("Theoph"), datasets.load("theoph"))
    assert datasets.info("epil_MASS").name == "epil_mass"


def test_load_returns_a_fresh_copy() -> None:
    first = datasets.load("sleepstudy")
    reference = datasets.load("sleepstudy")
    assert first is not reference
    assert not np.shares_memory(first["Reaction"].to_numpy(), reference["Reaction"].to_numpy())
    first.loc[0, "Reaction"] = -1.0
    first["Subject"] = first["Subject"].cat.rename_categories(lambda s: f"S{s}")
    del first["Days"]
    first["extra"] = 1
    again = datasets.load("sleepstudy")
    pd.testing.assert_frame_equal(again, reference)
    assert again.loc[0, "Reaction"] == pytest.approx(249.56)


def test_info_returns_a_copy() -> None:
    meta = datasets.info("cbpp")
    meta.categorical["period"].reverse()
    meta.columns.clear()
    assert datasets.info("cbpp").categorical["period"] == ["1", "2", "3", "4"]
    assert list(datasets.load("cbpp")["period"].cat.categories) == ["1", "2", "3", "4"]


@pytest.mark.parametrize("func", [datasets.load, datasets.info, datasets.path])
def test_unknown_name_raises_data_error_listing_the_names(func: Callable[[str], object]) -> None:
    with pytest.raises(DataError) as excinfo:
        func("no_such_data")
    message = str(excinfo.value)
    assert "no_such_data" in message
    for name in datasets.names():
        assert name in message
