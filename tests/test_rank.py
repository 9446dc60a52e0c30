"""Rank-deficient fixed effects are kept but named, with what they equal."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb
from mixedbayes.design.data import DataWarning
from mixedbayes.design.rank import dependent_columns


def test_full_rank_says_nothing() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(20), rng.normal(size=(20, 3))])
    assert dependent_columns(X, ["Intercept", "a", "b", "c"]) == []


def test_dependent_columns_name_the_combination() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 30))
    X = np.column_stack([np.ones(30), a, b, a - 3 * b, np.zeros(30), 5 * np.ones(30)])
    lines = dependent_columns(X, ["Intercept", "a", "b", "d", "z", "c"])
    assert lines[0] == "'z' is zero in every row"
    assert lines[1] == "'d' = 1·'a' + -3·'b'"
    assert lines[2] == "'c' = 5·'Intercept'"
    assert len(lines) == 3


def _trial(empty_cell: bool) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(8), 3).astype(str),
            "visit": np.tile(["v1", "v2", "v3"], 8),
            "arm": np.repeat(["a", "b"], 12),
            "y": rng.normal(size=24),
        }
    )
    if empty_cell:  # arm b never has visit v3
        frame = frame[~((frame.arm == "b") & (frame.visit == "v3"))]
    return frame


def test_design_warns_about_an_empty_interaction_cell() -> None:
    data = _trial(empty_cell=True)
    before = data.copy()
    with pytest.warns(DataWarning, match=r"rank deficient: 'arm\[b\]:visit\[v3\]' is zero"):
        mb.design(mb.LMM("y ~ arm * visit + (1 | id)"), data)
    pd.testing.assert_frame_equal(data, before)


def test_design_of_a_full_rank_model_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        mb.design(mb.LMM("y ~ arm * visit + (1 | id)"), _trial(empty_cell=False))
