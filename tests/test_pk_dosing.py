"""Dosing events: NONMEM-style event tables, dose columns, dose matrices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixedbayes.errors import DataError
from mixedbayes.pk import (
    DoseRecord,
    DosingTable,
    dose_matrices,
    from_dose_column,
    from_events,
)

THEOPH = Path(__file__).resolve().parents[1] / "mixedbayes" / "datasets" / "data" / "theoph.csv"


def events() -> pd.DataFrame:
    """A valid event table; row labels 100… so that messages name distinctive rows."""
    return pd.DataFrame(
        {
            "ID": [1, 1, 1, 2, 2],
            "TIME": [0.0, 1.0, 4.0, 0.0, 2.0],
            "AMT": [100.0, 0.0, 0.0, 200.0, 0.0],
            "EVID": [1, 0, 0, 1, 0],
            "DV": [np.nan, 5.0, 3.0, np.nan, 8.0],
            "RATE": [0.0, 0.0, 0.0, 0.0, 0.0],
            "ADDL": [0, 0, 0, 0, 0],
            "II": [0.0, 0.0, 0.0, 0.0, 0.0],
            "CMT": [1, 1, 1, 1, 1],
        },
        index=[100, 101, 102, 103, 104],
    )


def digest(df: pd.DataFrame) -> list[np.ndarray]:
    return [
        pd.util.hash_pandas_object(df, index=True).to_numpy(),
        np.array([str(c) for c in df.columns]),
        np.array([str(d) for d in df.dtypes]),
    ]


def unchanged(before: list[np.ndarray], df: pd.DataFrame) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, digest(df), strict=True))


# --------------------------------------------------------------------------- from_events
def test_valid_events_split_into_observations_and_doses() -> None:
    df = events()
    obs, table = from_events(df)
    assert list(obs.index) == [101, 102, 104]
    assert list(obs.columns) == list(df.columns)
    assert table.subjects == ("1", "2")
    assert [(r.subject, r.time, r.amount, r.rate, r.cmt) for r in table.records] == [
        ("1", 0.0, 100.0, 0.0, 1),
        ("2", 0.0, 200.0, 0.0, 1),
    ]
    obs.loc[101, "DV"] = -1.0
    assert df.loc[101, "DV"] == 5.0


def test_addl_doses_are_expanded_every_ii() -> None:
    df = events()
    df.loc[100, ["ADDL", "II"]] = [2, 12.0]
    _, table = from_events(df)
    assert [r.time for r in table.for_subject(1)] == [0.0, 12.0, 24.0]
    assert [r.amount for r in table.for_subject("1")] == [100.0] * 3
    assert [r.time for r in table.for_subject("2")] == [0.0]
    assert len(table) == 4


def test_optional_columns_default_when_absent() -> None:
    df = events().drop(columns=["RATE", "ADDL", "II", "CMT"])
    _, table = from_events(df)
    assert all(r.rate == 0.0 and r.cmt == 1 and r.duration == 0.0 for r in table.records)


def test_nonmem_dot_in_optional_columns_means_default() -> None:
    df = events().astype({"RATE": object})
    df["RATE"] = pd.Series([".", ".", ".", 50.0, "."], index=df.index, dtype=object)
    _, table = from_events(df)
    assert table.for_subject("1")[0].rate == 0.0
    assert table.for_subject("2")[0].duration == pytest.approx(4.0)


def test_custom_column_names() -> None:
    df = events().rename(columns={"ID": "Subject", "DV": "conc"})
    obs, table = from_events(df, id="Subject", dv="conc")
    assert table.subjects == ("1", "2")
    assert len(obs) == 3


def test_input_dataframe_is_not_mutated() -> None:
    df = events()
    df.loc[100, ["ADDL", "II"]] = [1, 12.0]
    before = digest(df)
    from_events(df)
    assert unchanged(before, df)
    bad = events()
    bad.loc[101, "TIME"] = -1.0
    before = digest(bad)
    with pytest.raises(DataError):
        from_events(bad)
    assert unchanged(before, bad)


def _set(row: int, column: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        if isinstance(value, str):
            df = df.astype({column: object})
        df.loc[row, column] = value
        return df

    return change


def _unknown_id(df: pd.DataFrame) -> pd.DataFrame:
    extra = pd.DataFrame(
        {"ID": [3], "TIME": [1.0], "AMT": [0.0], "EVID": [0], "DV": [2.0]}, index=[105]
    )
    return pd.concat([df, extra])


def _addl_without_ii(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[103, "ADDL"] = 2
    return df


MALFORMED = [
    pytest.param(_set(102, "TIME", -1.0), ["negative times", "102", "TIME=-1"], id="negative-time"),
    pytest.param(_set(104, "EVID", 2), ["EVID", "2", "104", "0", "1"], id="evid-2"),
    pytest.param(_set(103, "AMT", 0.0), ["AMT <= 0", "103", "AMT=0"], id="amt-0"),
    pytest.param(_set(100, "RATE", -2.0), ["RATE", "100", "RATE=-2"], id="negative-rate"),
    pytest.param(_addl_without_ii, ["ADDL", "II", "103", "ADDL=2", "II=0"], id="addl-no-ii"),
    pytest.param(_unknown_id, ["unknown ID", "'3'", "105"], id="unknown-id"),
    pytest.param(lambda df: df.drop(columns=["DV"]), ["'DV'", "no column"], id="missing-dv-col"),
    pytest.param(
        lambda df: df.drop(columns=["EVID", "TIME"]), ["'EVID'", "'TIME'"], id="missing-columns"
    ),
    pytest.param(_set(101, "DV", np.nan), ["missing DV", "101"], id="missing-dv"),
    pytest.param(_set(102, "TIME", "soon"), ["non-numeric", "102", "'soon'"], id="text-time"),
]


@pytest.mark.parametrize(("change", "expected"), MALFORMED)
def test_malformed_events_raise_naming_rows_and_values(
    change: Callable[[pd.DataFrame], pd.DataFrame], expected: list[str]
) -> None:
    df = change(events())
    with pytest.raises(DataError) as err:
        from_events(df)
    message = str(err.value)
    for text in expected:
        assert text in message, (text, message)
    assert "Fix:" in message


def test_every_problem_is_reported_at_once() -> None:
    df = events()
    df.loc[102, "TIME"] = -1.0
    df.loc[104, "EVID"] = 3
    df.loc[103, "AMT"] = -5.0
    with pytest.raises(DataError) as err:
        from_events(df)
    assert len(err.value.problems) == 3
    message = str(err.value)
    assert "3 problems" in message
    for text in ("102", "104", "103", "EVID value(s) 3"):
        assert text in message


# --------------------------------------------------------------------------- records
def test_dose_record_validates_and_derives_duration() -> None:
    record = DoseRecord(7, 1.0, 100.0, rate=25.0, cmt=2)  # type: ignore[arg-type]
    assert record.subject == "7" and record.duration == 4.0 and record.is_infusion
    with pytest.raises(DataError, match="positive"):
        DoseRecord("a", 0.0, 0.0)
    with pytest.raises(DataError, match="rate"):
        DoseRecord("a", 0.0, 1.0, rate=-1.0)


def test_for_subject_sorts_by_time_and_unknown_is_empty() -> None:
    table = DosingTable((DoseRecord("a", 12, 1), DoseRecord("b", 0, 1), DoseRecord("a", 0, 2)))
    assert [r.time for r in table.for_subject("a")] == [0.0, 12.0]
    assert table.subjects == ("a", "b")
    assert table.for_subject("zzz") == []
    assert list(table.to_frame().columns) == [
        "subject",
        "time",
        "amount",
        "rate",
        "duration",
        "cmt",
    ]


# --------------------------------------------------------------------------- dose matrices
def test_dose_matrices_zero_doses_not_yet_given_and_pad() -> None:
    table = DosingTable(
        (
            DoseRecord("a", 12.0, 50.0, rate=25.0),
            DoseRecord("a", 0.0, 100.0),
            DoseRecord("b", 2.0, 80.0, cmt=2),
        )
    )
    subjects = ["a", "a", "a", "a", "b", "b", "c"]
    times = np.array([0.0, 6.0, 12.0, 15.0, 1.0, 5.0, 3.0])
    m = dose_matrices(table, subjects, times)
    assert m.shape == (7, 2)
    np.testing.assert_array_equal(m.dt, [[0, 0], [6, 0], [12, 0], [15, 3], [0, 0], [3, 0], [0, 0]])
    np.testing.assert_array_equal(
        m.amount, [[100, 0], [100, 0], [100, 50], [100, 50], [0, 0], [80, 0], [0, 0]]
    )
    np.testing.assert_array_equal(m.duration[:4], [[0, 2]] * 4)
    np.testing.assert_array_equal(m.duration[4:], [[0, 0]] * 3)
    np.testing.assert_array_equal(m.cmt, [[1, 1]] * 4 + [[2, 0]] * 2 + [[0, 0]])
    assert np.all(m.dt >= 0)


def test_dose_matrices_check_lengths_and_times() -> None:
    table = DosingTable((DoseRecord("a", 0.0, 1.0),))
    with pytest.raises(DataError, match="2 subject IDs but 1"):
        dose_matrices(table, ["a", "a"], np.array([1.0]))
    with pytest.raises(DataError, match="non-finite"):
        dose_matrices(table, ["a"], np.array([np.nan]))


def test_dose_matrices_from_events_with_addl_and_infusion() -> None:
    df = events()
    df.loc[100, ["ADDL", "II", "RATE"]] = [2, 12.0, 50.0]
    obs, table = from_events(df)
    m = dose_matrices(table, obs["ID"].tolist(), obs["TIME"].to_numpy())
    assert m.shape == (3, 3)
    np.testing.assert_array_equal(m.duration[:2], [[2.0, 2.0, 2.0]] * 2)
    np.testing.assert_array_equal(m.amount[:2], [[100.0, 0.0, 0.0]] * 2)
    np.testing.assert_array_equal(m.dt[2], [2.0, 0.0, 0.0])


# --------------------------------------------------------------------------- dose column
def test_from_dose_column_on_theoph() -> None:
    df = pd.read_csv(THEOPH)
    before = digest(df)
    table = from_dose_column(df, id="Subject", dose="Dose")
    assert unchanged(before, df)
    assert len(table) == 12 and len(table.subjects) == 12
    first = df.groupby("Subject", sort=False)["Dose"].first()
    for subject, dose in first.items():
        (record,) = table.for_subject(subject)
        assert record.time == 0.0 and record.amount == dose and record.rate == 0.0
    m = dose_matrices(table, df["Subject"].tolist(), df["Time"].to_numpy())
    assert m.shape == (len(df), 1)
    np.testing.assert_array_equal(m.dt[:, 0], df["Time"].to_numpy())
    np.testing.assert_array_equal(m.amount[:, 0], df["Dose"].to_numpy())


def test_from_dose_column_dose_time() -> None:
    df = pd.DataFrame({"id": ["x", "x", "y"], "dose": [5.0, 5.0, 3.0]})
    table = from_dose_column(df, id="id", dose="dose", dose_time=1.5)
    assert [(r.subject, r.time, r.amount) for r in table.records] == [
        ("x", 1.5, 5.0),
        ("y", 1.5, 3.0),
    ]


@pytest.mark.parametrize(
    ("dose", "expected"),
    [
        pytest.param([5.0, 6.0, 3.0], ["varies", "'x'", "5, 6", "10", "11"], id="varies"),
        pytest.param([5.0, np.nan, 3.0], ["missing dose", "11"], id="missing"),
        pytest.param([5.0, 5.0, 0.0], ["non-positive", "12 (dose=0)"], id="zero"),
        pytest.param([5.0, 5.0, -1.0], ["non-positive", "12 (dose=-1)"], id="negative"),
    ],
)
def test_from_dose_column_errors(dose: list[float], expected: list[str]) -> None:
    df = pd.DataFrame({"id": ["x", "x", "y"], "dose": dose}, index=[10, 11, 12])
    with pytest.raises(DataError) as err:
        from_dose_column(df, id="id", dose="dose")
    for text in expected:
        assert text in str(err.value), (text, str(err.value))


def test_from_dose_column_missing_column() -> None:
    with pytest.raises(DataError, match="'Dose'"):
        from_dose_column(pd.DataFrame({"Subject": [1]}), id="Subject", dose="Dose")
