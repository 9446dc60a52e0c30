"""``mb.impute``: M completed data sets, from a fit's imputed values or from sets made elsewhere.

A spec with a ``missing:`` entry is fitted first (imputation by sampling, a short run unless
the draws are given) and the sets are drawn from that fit.

A fit that imputed missing cells by sampling (the spec's ``missing:`` key) holds a DataTree
group ``imputed`` with one variable per imputed column (named as the column), dims
``(chain, draw, "<column>_row")``, whose ``<column>_row`` coordinate values are the labels
of the user's rows whose cell was missing. ``impute`` writes M posterior draws of those cells
into copies of the data. Completed sets made by other software (mice, via CSV) are checked
against the data instead: same columns, same rows in the same order, observed cells
unchanged.

:func:`check_completed` is shared with :func:`mixedbayes.fit_multiple`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, Problem, SpecError, format_rows

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["DEFAULT_M", "SPEC_DRAWS", "check_completed", "impute"]

#: Completed data sets drawn from a fit when ``m`` is not given.
DEFAULT_M = 20
#: Draws and tuning steps per chain of the imputation fit made from a spec, unless given
#: (as arguments or in the spec's ``sampler:``): a short run suffices to draw M sets.
SPEC_DRAWS = 500
IMPUTED_GROUP = "imputed"


def _check_m(m: int, *, where: str = "m") -> None:
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 2:
        said = f"m = {m!r}" if where == "m" else f"{m!r} completed data set(s) given"
        raise SpecError(
            f"{said}: multiple imputation needs at least 2 completed data sets.",
            where=where,
            hint="use m >= 2 (20 or more is usual; the FMI says whether more are needed).",
        )


def _label(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first_differences(a: pd.Index, b: pd.Index, limit: int = 5) -> str:
    """The first positions where two row indexes differ, as text."""
    n = min(len(a), len(b))
    diffs = [i for i in range(n) if a[i] != b[i]][:limit]
    parts = [f"position {i}: row {_label(b[i])} instead of {_label(a[i])}" for i in diffs]
    if len(a) != len(b):
        parts.append(f"{len(b)} rows instead of {len(a)}")
    return "; ".join(parts)


def _same_values(ref: pd.Series, other: pd.Series) -> np.ndarray:
    """Whether each cell of ``other`` equals ``ref`` (numbers to 1e-9 relative)."""
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(other):
        a = ref.to_numpy(dtype=float, na_value=np.nan)
        b = other.to_numpy(dtype=float, na_value=np.nan)
        return np.asarray(np.isclose(a, b, rtol=1e-9, atol=0.0))
    return np.asarray(ref.astype(str).to_numpy() == other.astype(str).to_numpy())


def check_completed(
    data: pd.DataFrame,
    completed: Sequence[Any],
    *,
    what: str = "completed data set",
    observed: bool = True,
    first: int = 1,
    reference: str = "the data's",
) -> None:
    """Raise :class:`~mixedbayes.DataError` naming every way a completed set departs from ``data``.

    Parameters
    ----------
    data : DataFrame
        The data with holes (or the first completed set).
    completed : sequence of DataFrame
        The completed sets.
    what : str
        How the sets are called in messages (numbered from 1).
    observed : bool
        Also check that the cells observed in ``data`` are unchanged.
    first : int
        The number of the first set in messages.
    reference : str
        How ``data`` is called in messages.
    """
    problems: list[Problem] = []
    for i, frame in enumerate(completed, first):
        where = f"{what} {i}"
        if not isinstance(frame, pd.DataFrame):
            problems.append(
                Problem(
                    f"is a {type(frame).__name__}, not a DataFrame.",
                    where,
                    "pass pandas DataFrames (e.g. pd.read_csv of each completed set).",
                )
            )
            continue
        cols, ref_cols = [str(c) for c in frame.columns], [str(c) for c in data.columns]
        absent = [c for c in ref_cols if c not in cols]
        extra = [c for c in cols if c not in ref_cols]
        if absent or extra:
            bits = ([f"lacks columns {absent}"] if absent else []) + (
                [f"has extra columns {extra}"] if extra else []
            )
            problems.append(
                Problem(
                    f"its columns differ from {reference}: it {' and '.join(bits)}.",
                    where,
                    "give every completed set the data's columns (the same names).",
                )
            )
            continue
        if not frame.index.equals(data.index):
            problems.append(
                Problem(
                    f"its rows differ from {reference} (row labels, at "
                    + _first_differences(data.index, frame.index)
                    + ").",
                    where,
                    "give every completed set the data's rows in the data's order (mice "
                    "keeps them; read a CSV with index_col= or set completed.index = "
                    "data.index once the order is checked).",
                )
            )
            continue
        if not observed:
            continue
        for col in data.columns:
            seen = data[col].notna().to_numpy()
            changed = seen & ~_same_values(data[col], frame[col])
            if changed.any():
                rows = list(data.index[changed])
                problems.append(
                    Problem(
                        f"changes observed values of column {str(col)!r} in rows "
                        f"{format_rows(rows, 5)} ({len(rows)} cell(s)).",
                        where,
                        "a completed set may only fill the missing cells; check that it "
                        "was made from this data, in this row order.",
                    )
                )
    DataError.collect(problems)


def _pick_draws(n_chains: int, n_draws: int, m: int, seed: int | None) -> list[tuple[int, int]]:
    """``m`` distinct (chain, draw) pairs, dealt round the chains, without replacement."""
    if m > n_chains * n_draws:
        raise SpecError(
            f"m = {m} completed sets need {m} distinct posterior draws; the fit has "
            f"{n_chains} chains × {n_draws} draws.",
            where="m",
            hint="lower m or refit with more draws.",
        )
    rng = np.random.default_rng(seed)
    per_chain = math.ceil(m / n_chains)
    order = [rng.permutation(n_draws)[:per_chain] for _ in range(n_chains)]
    start = int(rng.integers(n_chains))
    return [
        ((start + k) % n_chains, int(order[(start + k) % n_chains][k // n_chains]))
        for k in range(m)
    ]


def _as_column(values: np.ndarray, column: pd.Series) -> Any:
    """Imputed values in the column's type (category codes → categories, 0/1 → bool)."""
    if isinstance(column.dtype, pd.CategoricalDtype) and np.issubdtype(values.dtype, np.integer):
        return column.cat.categories.take(values)
    if pd.api.types.is_bool_dtype(column.dtype):
        return values.astype(bool)
    return values


def _imputed_group(fit: FitLike) -> xr.Dataset:
    tree = fit.idata
    if IMPUTED_GROUP not in tree.children:
        raise SpecError(
            "the fit holds no imputed values (its DataTree has no 'imputed' group).",
            where="source",
            hint="fit with a missing: entry (missing: {response: impute, covariates: "
            "{...}}), or pass a list of completed data sets.",
        )
    return tree[IMPUTED_GROUP].to_dataset()


def _from_fit(data: pd.DataFrame, fit: FitLike, m: int, seed: int | None) -> list[pd.DataFrame]:
    group = _imputed_group(fit)
    problems: list[Problem] = []
    if not data.index.is_unique:
        dup = list(data.index[data.index.duplicated()])
        raise DataError(
            f"the data's row labels repeat ({format_rows(dup, 5)}): imputed cells are "
            "found by row label.",
            where="data.index",
            hint="pass the data the fit was made from, with its row labels.",
        )
    cells: dict[str, pd.Index] = {}
    for name in group.data_vars:
        col = str(name)
        row_dim = f"{col}_row"
        if col not in data.columns or row_dim not in group[name].dims:
            problems.append(
                Problem(
                    f"the fit imputed {col!r}, which is not a column of the data"
                    if col not in data.columns
                    else f"the imputed variable {col!r} has no dim {row_dim!r}",
                    f"imputed.{col}",
                    "pass the data the fit was made from.",
                )
            )
            continue
        labels = pd.Index(group[row_dim].to_numpy())
        unknown = [r for r in labels if r not in data.index]
        present = data[col].notna()
        observed = [r for r in labels if r in data.index and bool(present.at[r])]
        if unknown or observed:
            bad, why = (unknown, "are not rows of the data") if unknown else (observed, "")
            problems.append(
                Problem(
                    f"rows {format_rows(bad, 5)} of column {col!r} "
                    + (why or "are observed in the data, but the fit imputed them")
                    + ".",
                    f"imputed.{col}",
                    "pass the data the fit was made from (the same rows and labels).",
                )
            )
            continue
        cells[col] = labels
    DataError.collect(problems)
    n_chains, n_draws = int(group.sizes["chain"]), int(group.sizes["draw"])
    picks = _pick_draws(n_chains, n_draws, m, seed)
    out = []
    for chain, draw in picks:
        frame = data.copy(deep=True)
        for col, labels in cells.items():
            values = np.asarray(group[col].isel(chain=chain, draw=draw).to_numpy())
            if pd.api.types.is_integer_dtype(frame[col]):
                frame[col] = frame[col].astype(float)
            frame.loc[labels, col] = _as_column(values, frame[col])
        out.append(frame)
    return out


def _is_spec(source: object) -> bool:
    from mixedbayes.spec import ModelSpec

    return isinstance(source, ModelSpec | Mapping | str | os.PathLike)


def _imputation_spec(source: object) -> ModelSpec:
    """The spec ``source`` names, which must impute by sampling (a ``missing:`` entry)."""
    from mixedbayes.spec import load_spec

    spec = load_spec(source)  # type: ignore[arg-type]
    if spec.missing is None:
        raise SpecError(
            "the spec has no missing: entry, so a fit of it imputes nothing to draw the "
            "completed data sets from.",
            where="missing",
            hint="add one, e.g. missing: {response: impute, covariates: {chl: {formula: "
            "'chl ~ age + (1 | id)'}}} (docs/missing-data.md), or pass completed data sets.",
        )
    return spec


def _fit_spec(
    data: pd.DataFrame,
    spec: ModelSpec,
    m: int,
    seed: int | None,
    options: Mapping[str, Any],
) -> FitLike:
    """Fit the imputation model: a short run unless draws are given (then at least ``m``
    draws in all)."""
    from mixedbayes import api

    given = spec.sampler.model_fields_set
    kwargs = dict(options)
    chains = int(kwargs.get("chains") or spec.sampler.chains)
    for name in ("draws", "tune"):
        if kwargs.get(name) is None and name not in given:
            kwargs[name] = SPEC_DRAWS
    if "draws" not in options and "draws" not in given:
        kwargs["draws"] = max(SPEC_DRAWS, math.ceil(m / chains))
    return api.fit(spec, data, seed=seed, **kwargs)


def impute(
    data: pd.DataFrame,
    source: FitLike
    | Sequence[pd.DataFrame]
    | ModelSpec
    | Mapping[str, Any]
    | str
    | os.PathLike[str],
    m: int | None = None,
    *,
    seed: int | None = None,
    **fit_options: Any,
) -> list[pd.DataFrame]:
    """M completed copies of ``data``, for :func:`mixedbayes.fit_multiple`.

    Parameters
    ----------
    data : DataFrame
        The data with missing cells; never modified.
    source : Fit, spec, or sequence of DataFrame
        A fit whose posterior imputed the missing cells (a spec with ``missing:``; its
        ``imputed`` group); a spec with a ``missing:`` entry (ModelSpec, dict, YAML path or
        text), which is fitted to ``data`` first; or completed data sets made elsewhere
        (e.g. by mice and read from CSV), which are checked against ``data``: the same
        columns, the same rows in the same order (row labels compared), and the observed
        cells unchanged.
    m : int, optional
        Completed sets to return (at least 2). Default: 20 from a fit or a spec; every set
        of a list (a smaller ``m`` takes the first ``m``).
    seed : int, optional
        From a fit: which posterior draws are used. ``m`` distinct draws are taken, dealt
        round the chains (imputation k from chain ``(start + k) mod chains``), without
        replacement within a chain. From a spec: also the seed of its fit.
    **fit_options
        From a spec only: arguments of :func:`mixedbayes.fit` (``draws``, ``tune``,
        ``chains``, ``sampler``, ...). Draws and tuning steps default to
        :data:`SPEC_DRAWS` (500) per chain unless the spec's ``sampler:`` sets them, and
        the draws are raised to at least ``m / chains``.

    Returns
    -------
    list of DataFrame
        Copies of ``data`` with the missing cells filled; same index and columns.

    Raises
    ------
    SpecError
        ``m < 2``, more sets asked for than given or than the fit has draws, a fit
        without imputed values, a spec without a ``missing:`` entry, or fit options with
        a source that is not a spec.
    DataError
        A completed set whose columns or rows differ from the data's (naming them), or
        that changes observed cells.

    Examples
    --------
    >>> sets = mb.impute(df, [pd.read_csv(f"imp{i}.csv") for i in range(5)])  # doctest: +SKIP
    >>> sets = mb.impute(df, fit_with_missing, m=20, seed=1)  # doctest: +SKIP
    >>> sets = mb.impute(df, "spec_with_missing.yaml", m=20, seed=1)  # doctest: +SKIP
    >>> mi = mb.fit_multiple(spec, sets, backend="dask")  # doctest: +SKIP
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a DataFrame, not {type(data).__name__}.",
            where="data",
            hint="pass the data with missing cells as a pandas DataFrame.",
        )
    if _is_spec(source):
        spec = _imputation_spec(source)
        count = DEFAULT_M if m is None else m
        _check_m(count)
        fitted = _fit_spec(data, spec, count, seed, fit_options)
        return _from_fit(data, fitted, count, seed)
    if fit_options:
        raise SpecError(
            f"fit options {sorted(fit_options)} apply only when source is a spec.",
            where="source",
            hint="pass a spec with a missing: entry, or drop the options.",
        )
    if hasattr(source, "idata"):
        count = DEFAULT_M if m is None else m
        _check_m(count)
        return _from_fit(data, source, count, seed)  # type: ignore[arg-type]
    if isinstance(source, pd.DataFrame) or not isinstance(source, Sequence):
        raise SpecError(
            f"source must be a fit, a spec or a list of completed DataFrames, not "
            f"{type(source).__name__}.",
            where="source",
            hint="pass [df1, df2, ...] (e.g. read from mice's CSV files), a Fit, or a spec "
            "with a missing: entry.",
        )
    sets: list[pd.DataFrame] = list(source)  # type: ignore[arg-type]
    count = len(sets) if m is None else m
    _check_m(count, where="m" if m is not None else "source")
    if count > len(sets):
        raise SpecError(
            f"m = {count}, but {len(sets)} completed data sets were given.",
            where="m",
            hint=f"use m <= {len(sets)}, or give more completed sets.",
        )
    sets = sets[:count]
    check_completed(data, sets)
    return [frame.copy(deep=True) for frame in sets]
