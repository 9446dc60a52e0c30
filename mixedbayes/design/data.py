"""Checks and cleaning of the user's data before any design matrix is built.

Everything wrong is reported at once, naming the column, rows and values, with the fix.
The user's frame is never modified: cleaning works on a copy. Rows dropped for missing
values are counted, named and warned about, never dropped silently. A pandas Categorical
covariate keeps the category order the user set: its first (used) category is the
reference level, as in R and bambi; text columns are coded in sorted order.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, Problem, format_rows

__all__ = [
    "DataReport",
    "DataWarning",
    "Dropped",
    "Imputed",
    "clean_data",
    "keep_category_order",
    "named_tables",
    "single_level_problems",
]


class DataWarning(UserWarning):
    """Rows were dropped (or something else was done to the data) and the user should know."""


@dataclass(frozen=True)
class Dropped:
    """Rows left out of the fit, why, and for which column."""

    reason: str
    column: str
    rows: tuple[object, ...]

    @property
    def count(self) -> int:
        """How many rows."""
        return len(self.rows)


@dataclass(frozen=True)
class Imputed:
    """Cells of one column imputed (the spec's ``missing:``), and how.

    Attributes
    ----------
    column : str
    rows : tuple
        The row labels of the imputed cells.
    how : str
        ``"submodel chl ~ age (gaussian), sampled in the model"``, ``"posterior
        predictive"``, ...
    """

    column: str
    rows: tuple[object, ...]
    how: str

    @property
    def count(self) -> int:
        """How many cells."""
        return len(self.rows)


@dataclass(frozen=True)
class DataReport:
    """What happened to the data on the way into the model.

    ``rows_used`` are the rows of the likelihood; ``rows_predicted`` rows with a missing
    response kept aside and imputed from the posterior predictive (``missing: {response:
    impute}``); ``imputed`` lists every imputed column with its cells and how.
    """

    rows_in: int
    rows_used: int
    dropped: tuple[Dropped, ...] = field(default_factory=tuple)
    imputed: tuple[Imputed, ...] = field(default_factory=tuple)
    rows_predicted: int = 0

    @property
    def rows_dropped(self) -> int:
        """Rows left out, for any reason."""
        return self.rows_in - self.rows_used - self.rows_predicted

    def __str__(self) -> str:
        lines = [f"{self.rows_used} of {self.rows_in} rows used"]
        for d in self.dropped:
            lines.append(f"  {d.count} dropped: {d.reason} in '{d.column}'")
        for i in self.imputed:
            lines.append(f"  {i.count} imputed in '{i.column}': {i.how}")
        return "\n".join(lines)


def _closest(name: str, columns: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def missing_column_problems(
    needed: Iterable[str], data: pd.DataFrame, roles: dict[str, str] | None = None
) -> list[Problem]:
    """One problem per column the formula (or the spec key in ``roles``) names that the data
    lack; also one per needed column whose name the data hold twice."""
    columns = [str(c) for c in data.columns]
    roles = roles or {}
    problems = []
    for name in sorted(needed):
        if columns.count(name) > 1:
            problems.append(
                Problem(
                    f"the data have {columns.count(name)} columns named {name!r}.",
                    f"column '{name}'",
                    "rename or drop the duplicates (df.loc[:, ~df.columns.duplicated()]).",
                )
            )
        if name not in columns:
            user = roles.get(name, "the formula uses")
            problems.append(
                Problem(
                    f"{user} column {name!r}, which the data do not have."
                    + _closest(name, columns),
                    f"column '{name}'",
                    f"rename a column or fix the formula; the data's columns are {columns}.",
                )
            )
    return problems


def numeric_problems(data: pd.DataFrame, column: str, role: str = "the response") -> list[Problem]:
    """A problem if ``column`` (``role``: the response, the time column) holds values that
    are not numbers."""
    values = data[column]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return []
    coerced = pd.to_numeric(values, errors="coerce")
    bad = values.index[coerced.isna() & values.notna()]
    shown = ", ".join(repr(values[i]) for i in list(bad)[:5])
    return [
        Problem(
            f"{role} must be numeric, but rows {format_rows(list(bad))} hold {shown}.",
            f"column '{column}'",
            "convert it with pd.to_numeric (mark missing values as NaN, not text).",
        )
    ]


def mixed_type_problems(data: pd.DataFrame, columns: Sequence[str]) -> list[Problem]:
    """A problem per text column whose values mix Python types: a numeric covariate with a
    stray string, or a grouping column holding both 1 and '1' (which would be one level or
    two depending on how the file was read)."""
    problems = []
    for col in columns:
        values = data[col]
        if values.dtype != object:
            continue
        present = values.dropna()
        types = present.map(type)
        kinds = sorted({t.__name__ for t in types})
        if len(kinds) < 2:
            continue
        numeric = present.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))
        if numeric.mean() >= 0.5:
            bad = list(present.index[~numeric.to_numpy()])
            shown = ", ".join(repr(values[i]) for i in bad[:5])
            message = f"the column holds numbers and text: rows {format_rows(bad)} hold {shown}."
            hint = "convert it with pd.to_numeric (mark missing values as NaN, not text)."
        else:
            minority = types.value_counts().index[-1]
            bad = list(present.index[(types == minority).to_numpy()])
            message = (
                f"the column mixes value types ({', '.join(kinds)}); rows "
                f"{format_rows(bad)} hold {minority.__name__} values."
            )
            hint = f"make every value one type, e.g. df[{col!r}] = df[{col!r}].astype(str)."
        problems.append(Problem(message, f"column '{col}'", hint))
    return problems


def grouping_problems(data: pd.DataFrame, columns: Sequence[str]) -> list[Problem]:
    """A problem per grouping column with missing values (a row must belong to a group)."""
    problems = []
    for col in columns:
        missing = data.index[data[col].isna()]
        if len(missing):
            problems.append(
                Problem(
                    f"grouping column has missing values in rows {format_rows(list(missing))} "
                    f"({len(missing)} rows): a row must belong to a level of every grouping "
                    "factor.",
                    f"column '{col}'",
                    f"fill them with a level, or drop them (df.dropna(subset=[{col!r}])).",
                )
            )
    return problems


def single_level_problems(
    frame: pd.DataFrame, columns: Iterable[str], formulas: Iterable[str] = ()
) -> list[Problem]:
    """A problem per factor among ``columns`` that takes one level in ``frame`` (the rows
    used).

    A factor is a text, boolean or Categorical column, or a column a formula wraps in
    ``C(...)``. With one level it has nothing to contrast: formulae would drop it from the
    fixed effects without a word (or fail on an interaction with it).
    """
    import re

    wrapped = {m for f in formulas for m in re.findall(r"\bC\(\s*([A-Za-z_][\w.]*)", f)}
    problems = []
    for col in sorted(set(columns)):
        if col not in frame.columns:
            continue
        values = frame[col]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric and col not in wrapped:
            continue
        levels = values.dropna().unique()
        if len(levels) != 1:
            continue
        problems.append(
            Problem(
                f"the factor {col!r} has one level ({str(levels[0])!r}) in the {len(frame)} rows "
                "used: there is nothing to contrast it with, so its effect cannot be estimated.",
                f"column '{col}'",
                f"remove {col!r} from the formula, or fit data holding at least two of its levels.",
            )
        )
    return problems


def clean_data(
    data: pd.DataFrame, *, response: Sequence[str], covariates: Sequence[str], groups: Sequence[str]
) -> tuple[pd.DataFrame, DataReport]:
    """Copy ``data`` and drop rows with a missing response or covariate, reporting them.

    Categorical covariates keep their categories' order (see :func:`keep_category_order`).

    Parameters
    ----------
    data : DataFrame
        The user's data; not modified.
    response, covariates, groups : sequence of str
        Columns of the response, of the predictors, and of the grouping factors (already
        checked to exist, and groups to be complete).

    Returns
    -------
    (DataFrame, DataReport)
        The rows to model (a copy) and what was dropped.
    """
    frame = data.copy(deep=True)
    dropped: list[Dropped] = []
    keep = np.ones(len(frame), dtype=bool)
    for reason, cols in (("missing response", response), ("missing covariate", covariates)):
        for col in cols:
            miss = frame[col].isna().to_numpy() & keep
            if miss.any():
                rows = tuple(frame.index[miss])
                dropped.append(Dropped(reason, col, rows))
                keep &= ~miss
    if dropped:
        detail = "; ".join(
            f"{d.count} with {d.reason} '{d.column}' (rows {format_rows(list(d.rows), 5)})"
            for d in dropped
        )
        warnings.warn(
            f"dropped {int((~keep).sum())} of {len(frame)} rows: {detail}. "
            "They are listed in design.report.",
            DataWarning,
            stacklevel=3,
        )
    frame = frame.loc[keep]
    if frame.empty:
        raise DataError(
            "no rows are left once rows with missing values are dropped.",
            where=", ".join(sorted({d.column for d in dropped})),
            hint="check the columns above for missing values.",
        )
    return keep_category_order(frame, covariates), DataReport(len(data), len(frame), tuple(dropped))


def keep_category_order(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with each pandas Categorical among ``columns`` made ordered, in the order of
    its categories, and without the categories no row uses.

    formulae codes an *unordered* Categorical in sorted order of its values, which would
    make the reference level the alphabetically first one instead of the first category
    the user set (``categories=["Male", "Female"]`` must give ``Sex[Female]``). An ordered
    Categorical keeps its order. Unused categories are dropped so that no column of the
    design is all zeros (and a dropped first category hands the reference to the next).
    Text and numeric columns are left as they are.
    """
    changed = {
        col: frame[col].cat.remove_unused_categories().cat.as_ordered()
        for col in columns
        if isinstance(frame[col].dtype, pd.CategoricalDtype)
    }
    return frame.assign(**changed) if changed else frame


_NUMBERS = {2: "two", 3: "three", 4: "four"}


def named_tables(
    data: Any, names: Sequence[str], kind: str, hint: str, load: str = "pd.read_csv"
) -> tuple[pd.DataFrame, ...]:
    """The tables ``names`` of a model fitted to several tables (``{"counts": ...,
    "samples": ...}``), each a non-empty DataFrame; a ``DataError`` naming what is wrong
    otherwise (``kind``: the model, ``hint``: how to pass them, ``load``: how to read one)."""
    if not isinstance(data, Mapping) or set(data) != set(names):
        got = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise DataError(
            f"a {kind} model takes {_NUMBERS.get(len(names), len(names))} tables, not {got}.",
            where="data",
            hint=hint,
        )
    for key in names:
        if not isinstance(data[key], pd.DataFrame) or data[key].empty:
            raise DataError(
                f"the {key} table must be a non-empty pandas DataFrame.",
                where=f"data.{key}",
                hint=f"load it with {load}.",
            )
    return tuple(data[key] for key in names)
