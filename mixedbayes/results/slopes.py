"""Slopes and contrasts of the expected response, population level, on a reference grid.

The reference grid holds every predictor at a typical value (numeric at its mean, categorical
at its most frequent value) unless given in ``at``. ``by`` varies one predictor: each of its
values, or for a numeric one with more than 10 distinct values its 10/50/90 % quantiles (a
baseline covariate modifying a slope: a cross-level interaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError
from mixedbayes.results.hypothesis import summarise_draws

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = [
    "by_values",
    "contrasts",
    "ordered_values",
    "reference_grid",
    "slopes",
    "with_categories",
]


def _typical(series: pd.Series) -> Any:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return float(series.mean())
    return series.mode(dropna=True).iloc[0]


def reference_grid(fit: FitLike, at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row of typical predictor values (overridden by ``at``)."""
    data = fit.design.data
    row = {c: _typical(data[c]) for c in data.columns if data[c].notna().any()}
    for key, value in (at or {}).items():
        if key not in data.columns:
            raise DataError(
                f"'at' names column {key!r}, which the data do not have.",
                where=f"column '{key}'",
                hint=f"use columns of the data: {list(map(str, data.columns))}.",
            )
        row[key] = value
    return with_categories(pd.DataFrame([row]), data)


def with_categories(frame: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column that is a Categorical in ``data`` made one with its
    categories (in place; returned)."""
    for c in data.columns:
        if isinstance(data[c].dtype, pd.CategoricalDtype) and c in frame:
            frame[c] = pd.Categorical(frame[c], categories=data[c].cat.categories)
    return frame


def data_column(fit: FitLike, name: str, role: str) -> pd.Series:
    """Column ``name`` of the fit's data; ``DataError`` naming it and the columns if absent."""
    data = fit.design.data
    if name not in data.columns:
        raise DataError(
            f"{role} names column {name!r}, which the data do not have.",
            where=f"column '{name}'",
            hint=f"use one of {list(map(str, data.columns))}.",
        )
    return data[name]


def by_values(fit: FitLike, by: str | None, values: Sequence[Any] | None, role: str) -> list[Any]:
    """The values of column ``by`` a table is shown at: ``values`` when given, else its
    distinct values in table order, or its 10/50/90 % quantiles when it is numeric with more
    than 10 of them (``[None]`` without ``by``)."""
    if by is None:
        return [None]
    data = fit.design.data
    data_column(fit, by, role)
    if values is not None:
        return list(values)
    col = data[by]
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > 10:
        return [float(v) for v in np.quantile(col, [0.1, 0.5, 0.9])]
    return ordered_values(col)


def ordered_values(col: pd.Series) -> list[Any]:
    """The distinct values of ``col`` in the order a table shows them: numbers numerically
    (2 before 10), a Categorical in its categories' order (the reference level first), text
    alphabetically."""
    present = col.dropna()
    if isinstance(col.dtype, pd.CategoricalDtype):
        used = set(present.unique().tolist())
        return [c for c in col.cat.categories.tolist() if c in used]
    if pd.api.types.is_numeric_dtype(col):
        return sorted(present.unique().tolist())
    return sorted(present.unique().tolist(), key=str)


def _slope_draws(fit: FitLike, variable: str, grid: pd.DataFrame) -> np.ndarray:
    data = fit.design.data
    if variable not in data.columns or not pd.api.types.is_numeric_dtype(data[variable]):
        raise DataError(
            f"slopes need a numeric column; {variable!r} is not one.",
            where=f"column '{variable}'",
            hint="use contrasts() for categorical predictors.",
        )
    h = 1e-3 * float(np.std(data[variable])) or 1e-3
    lo, hi = grid.copy(), grid.copy()
    lo[variable] = grid[variable] - h / 2
    hi[variable] = grid[variable] + h / 2
    pair = pd.concat([lo, hi], ignore_index=True)
    mu = fit.predict(pair, level="population").to_numpy()
    mu = mu.reshape(-1, mu.shape[-1])
    n = len(grid)
    return (mu[:, n:] - mu[:, :n]) / h


def slopes(
    fit: FitLike,
    variable: str,
    *,
    by: str | None = None,
    values: Sequence[Any] | None = None,
    at: Mapping[str, Any] | None = None,
    prob: float = 0.95,
    rope: tuple[float, float] | None = None,
    compare: bool = False,
) -> pd.DataFrame:
    """Posterior of d E[y] / d ``variable`` at the population level, per value of ``by``.

    Parameters
    ----------
    fit : Fit
    variable : str
        A numeric predictor (e.g. ``"time"``).
    by : str, optional
        Predictor whose values the slope is shown at (a treatment arm, a baseline covariate).
    values : sequence, optional
        Values of ``by`` (default: its levels, or 10/50/90 % quantiles if numeric).
    at : mapping, optional
        Values of the other predictors (default: typical values).
    prob, rope
        Interval mass and region of practical equivalence.
    compare : bool
        Also give each value's slope minus the first value's ("are trajectories parallel?").

    Returns
    -------
    DataFrame
        Rows ``variable | by=value`` with estimate, sd, lower, upper, post_prob (P(> 0)),
        p_in_rope, excludes_zero.
    """
    levels = by_values(fit, by, values, role="'by'")
    base = reference_grid(fit, at)
    grid = pd.concat([base] * len(levels), ignore_index=True)
    if by is not None:
        grid[by] = levels
    draws = _slope_draws(fit, variable, grid)
    rows = []
    for j, value in enumerate(levels):
        label = f"d/d{variable}" + (f" | {by}={value}" if by is not None else "")
        rows.append(summarise_draws(label, draws[:, j], direction=">", prob=prob, rope=rope))
    if compare and len(levels) > 1:
        for j in range(1, len(levels)):
            label = f"d/d{variable}: {by}={levels[j]} − {by}={levels[0]}"
            rows.append(
                summarise_draws(
                    label, draws[:, j] - draws[:, 0], direction=">", prob=prob, rope=rope
                )
            )
    out = pd.DataFrame(rows)
    out.attrs["prob"] = prob
    return out


def contrasts(
    fit: FitLike,
    variable: str,
    values: Sequence[Any] | None = None,
    *,
    by: str | None = None,
    at: Mapping[str, Any] | None = None,
    prob: float = 0.95,
    rope: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Differences in E[y] between values of ``variable`` (each against the first), per ``by``.

    E.g. ``contrasts(fit, "trt", by="time", values=[0, 1])``: the treatment effect at each time.
    """
    levels = by_values(fit, variable, values, role="the variable")
    by_levels = by_values(fit, by, None, role="'by'")
    base = reference_grid(fit, at)
    rows = []
    for b in by_levels:
        grid = pd.concat([base] * len(levels), ignore_index=True)
        grid[variable] = levels
        if by is not None:
            grid[by] = b
        mu = fit.predict(grid, level="population").to_numpy()
        mu = mu.reshape(-1, mu.shape[-1])
        for j in range(1, len(levels)):
            label = f"{variable}={levels[j]} − {variable}={levels[0]}" + (
                f" | {by}={b}" if by is not None else ""
            )
            rows.append(
                summarise_draws(label, mu[:, j] - mu[:, 0], direction=">", prob=prob, rope=rope)
            )
    out = pd.DataFrame(rows)
    out.attrs["prob"] = prob
    return out
