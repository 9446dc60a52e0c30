"""The base data and the row type (:class:`Case`) of the bad-input matrix of
``test_bad_input.py``; the rows themselves are in ``bad_input_*_cases.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from conftest import theoph_subjects

from mixedbayes.errors import MixedBayesError

# ----------------------------------------------------------------------------- base data


def long_data() -> pd.DataFrame:
    """6 subjects × 4 days, with columns for every family used below."""
    rng = np.random.default_rng(0)
    n_sub, n_day = 6, 4
    df = pd.DataFrame(
        {
            "Subject": np.repeat([f"s{i}" for i in range(n_sub)], n_day),
            "Days": np.tile(np.arange(n_day), n_sub),
        }
    )
    n = len(df)
    df["y"] = 250 + 10 * df["Days"] + rng.normal(0, 20, n)
    df["count"] = rng.poisson(3, n)
    df["trials"] = 10
    df["k"] = rng.binomial(10, 0.3, n)
    df["hit"] = rng.binomial(1, 0.5, n)
    df["pos"] = rng.gamma(2.0, 1.0, n)
    df["prop"] = rng.uniform(0.05, 0.95, n)
    df["exposure"] = rng.uniform(0.5, 2.0, n)
    df["x"] = rng.normal(size=n)
    return df


def theoph() -> pd.DataFrame:
    return theoph_subjects(3)


PK = {
    "kind": "nonlinear",
    "model": "oral_1cmt",
    "parameters": {"log_CL": "1 + (1 | Subject)", "log_V": "1", "log_KA": "1"},
    "response": "conc",
    "time": "Time",
    "subject": "Subject",
    "dosing": {"dose": "Dose"},
}

LMM = "y ~ Days + (Days | Subject)"


def with_(df: pd.DataFrame, **changes: Any) -> pd.DataFrame:
    """A copy of ``df`` with cells set: ``col=(row, value)`` or ``col=list_of_values``."""
    out = df.copy()
    for col, change in changes.items():
        if isinstance(change, tuple):
            row, value = change
            if col in out and pd.api.types.is_numeric_dtype(out[col]):
                if isinstance(value, str):
                    out[col] = out[col].astype(object)
                elif isinstance(value, float):
                    out[col] = out[col].astype(float)
            out.loc[row, col] = value
        else:
            out[col] = change
    return out


# ----------------------------------------------------------------------------- the matrix


@dataclass
class Case:
    """One malformed input: what to run, the error, the names the message must contain."""

    id: str
    op: str  # spec | design | priors | compile | load_data | new_data | fit_no_data | load
    # | fit_method (a method of a cheap fit) | fit (mb.fit; the sampler is never reached)
    # | impute | fit_multiple (bad_input_mi_cases.py)
    spec: Any
    error: type[MixedBayesError]
    names: tuple[str, ...]
    where: str | None = None
    data: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    xfail: str = ""
    absent: tuple[str, ...] = ()  # wording the message must not use (it would mislead)


D = long_data()
T = theoph()
