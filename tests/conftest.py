"""Shared fixtures: data, and fits shared across tests (compilation dominates small fits)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import mixedbayes as mb

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "refdata"
READ_ONLY = SHARED / "read-only"


def frame_hash(df: pd.DataFrame) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Content, columns and dtypes of a frame (to show it was not mutated)."""
    content = int(pd.util.hash_pandas_object(df, index=True).sum())
    return content, tuple(map(str, df.columns)), tuple(map(str, df.dtypes))


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return mb.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    path = READ_ONLY / "radon_HLMdiag.csv"
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    return pd.read_csv(path)


def quiet_fit(spec: object, data: pd.DataFrame, **kwargs: object) -> mb.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return mb.fit(spec, data, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sleep_fit(sleepstudy: pd.DataFrame) -> mb.Fit:
    """sleepstudy, correlated intercept and slope, 4 chains x 1000 (reference tolerances)."""
    spec = mb.load_spec(Path(__file__).resolve().parents[1] / "models" / "sleepstudy.yaml")
    return quiet_fit(spec, sleepstudy, draws=1000, tune=1000, chains=4, seed=11)
