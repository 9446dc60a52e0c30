"""Rows of the bad-input matrix: missing data — imputation by sampling (``missing:``,
``IMPUTATION_CASES``) and multiple imputation (``mb.impute``, ``mb.fit_multiple``).

``op="impute"`` calls ``mb.impute(case.data, extra["source"], **extra["kwargs"])``;
``op="fit_multiple"`` calls ``mb.fit_multiple(case.spec, extra["datasets"], **extra["kwargs"])``
with the sampler replaced (reaching it fails the case).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr
from bad_input_base import LMM, Case, D, with_

from mixedbayes.errors import DataError, SpecError


def _holes() -> pd.DataFrame:
    out = D.copy()
    out.loc[[3, 7], "y"] = np.nan
    return out


H = _holes()


def _completed(shift: float = 0.0) -> pd.DataFrame:
    out = H.copy()
    out.loc[[3, 7], "y"] = [250.0 + shift, 260.0 + shift]
    return out


C1, C2 = _completed(), _completed(5.0)
RENAMED = C2.rename(columns={"x": "x_new"})
SHUFFLED = C2.iloc[[1, 0, *range(2, len(C2))]]
CHANGED = C2.copy()
CHANGED.loc[5, "Days"] = 99
STILL_MISSING = C2.copy()
STILL_MISSING.loc[7, "y"] = np.nan
NO_IMPUTED = SimpleNamespace(idata=xr.DataTree.from_dict({"posterior": xr.Dataset()}))

MI_CASES: list[Case] = [
    # ---------------------------------------------------------------- mb.impute
    Case(
        "impute-m-one",
        "impute",
        None,
        SpecError,
        ("at least 2", "m"),
        where="m",
        data=H,
        extra={"source": [C1, C2], "kwargs": {"m": 1}},
    ),
    Case(
        "impute-one-completed-set",
        "impute",
        None,
        SpecError,
        ("at least 2",),
        where="source",
        data=H,
        extra={"source": [C1]},
    ),
    Case(
        "impute-columns-differ",
        "impute",
        None,
        DataError,
        ("columns", "'x'", "'x_new'"),
        where="completed data set 2",
        data=H,
        extra={"source": [C1, RENAMED]},
    ),
    Case(
        "impute-rows-differ",
        "impute",
        None,
        DataError,
        ("rows differ", "position 0", "position 1"),
        where="completed data set 2",
        data=H,
        extra={"source": [C1, SHUFFLED]},
    ),
    Case(
        "impute-observed-cells-changed",
        "impute",
        None,
        DataError,
        ("observed values", "'Days'", "5"),
        where="completed data set 2",
        data=H,
        extra={"source": [C1, CHANGED]},
    ),
    Case(
        "impute-fit-without-imputed-values",
        "impute",
        None,
        SpecError,
        ("imputed", "missing:"),
        where="source",
        data=H,
        extra={"source": NO_IMPUTED},
    ),
    # ---------------------------------------------------------------- mb.fit_multiple
    Case(
        "fit-multiple-one-dataset",
        "fit_multiple",
        {"formula": LMM},
        SpecError,
        ("at least 2", "1 given"),
        where="datasets",
        data=C1,
        extra={"datasets": [C1]},
    ),
    Case(
        "fit-multiple-still-missing",
        "fit_multiple",
        {"formula": LMM},
        DataError,
        ("'y'", "7", "missing"),
        where="completed data set 2",
        data=STILL_MISSING,
        extra={"datasets": [C1, STILL_MISSING]},
    ),
    Case(
        "fit-multiple-columns-differ",
        "fit_multiple",
        {"formula": LMM},
        DataError,
        ("'x'", "'x_new'"),
        where="completed data set 2",
        data=RENAMED,
        extra={"datasets": [C1, RENAMED]},
    ),
    Case(
        "fit-multiple-rows-differ",
        "fit_multiple",
        {"formula": LMM},
        DataError,
        ("rows differ", "position 0"),
        where="completed data set 2",
        data=SHUFFLED,
        extra={"datasets": [C1, SHUFFLED]},
    ),
    Case(
        "fit-multiple-unknown-backend",
        "fit_multiple",
        {"formula": LMM},
        SpecError,
        ("slurm", "serial", "dask"),
        where="backend",
        data=C1,
        extra={"datasets": [C1, C2], "kwargs": {"backend": "slurm"}},
    ),
]

#: ``missing:`` entries of a spec (imputation by sampling), checked by the design.
IMPUTATION_CASES: list[Case] = [
    # ---------------------------------------------------------------- missing: (imputation)
    Case(
        "missing-entry-not-a-covariate",
        "design",
        {"formula": "y ~ Days + (1 | Subject)", "missing": {"covariates": {"chl": "chl ~ 1"}}},
        SpecError,
        ("'chl'", "not a covariate"),
        where="missing.covariates.chl",
        data=D,
    ),
    Case(
        "missing-submodel-column-absent",
        "design",
        {"formula": "y ~ x + Days", "missing": {"covariates": {"x": "x ~ age"}}},
        DataError,
        ("'age'", "missing.covariates"),
        where="column 'age'",
        data=with_(D, x=(3, np.nan)),
    ),
    Case(
        "missing-submodel-uses-response",
        "design",
        {"formula": "y ~ x + Days", "missing": {"covariates": {"x": "x ~ y + Days"}}},
        SpecError,
        ("circular", "'y'"),
        where="missing.covariates.x",
        data=with_(D, x=(3, np.nan)),
    ),
    Case(
        "missing-not-affine",
        "design",
        {"formula": "y ~ Days * I(x**2)", "missing": {"covariates": {"x": "x ~ Days"}}},
        SpecError,
        ("I(x ** 2)", "not linear"),
        where="missing.covariates.x",
        data=with_(D, x=(3, np.nan)),
    ),
    Case(
        "missing-otherwise-error",
        "design",
        {"formula": "y ~ x + Days", "missing": {"response": "impute", "otherwise": "error"}},
        DataError,
        ("'x': 2", "otherwise"),
        where="column 'x'",
        data=with_(with_(D, x=(3, np.nan)), x=(5, np.nan)),
    ),
]
