"""Individual and population trajectories over time from a fitted longitudinal model.

For each chosen level of a grouping factor (an individual, e.g. a patient), the level's first
observed row (all its columns: baseline covariates and every grouping column, so a nested
factor keeps its parent level) is repeated over a time grid with the time column replaced.
The posterior of the expected response on these rows gives the individual trajectory (all
group effects) and the level's population-level curve (same covariates, no group effects).
One overall population curve is drawn at typical covariates: numeric columns at their means,
other columns at their most frequent value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixedbayes.design.groups import find_factor
from mixedbayes.errors import DataError, SpecError
from mixedbayes.naming import OBS_DIM
from mixedbayes.results.summary import check_prob

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from mixedbayes.design import Design, GroupFactor
    from mixedbayes.results.protocols import FitLike

__all__ = ["Trajectories", "trajectories"]

#: At most this many distinct observed times are used as the grid as they are.
MAX_OBSERVED_TIMES = 30
#: Points of the grid spanning the observed range otherwise.
GRID_POINTS = 25


@dataclass(frozen=True)
class Trajectories:
    """Posterior trajectories of chosen levels and of the population.

    Attributes
    ----------
    individual : DataFrame
        ``level``, ``time``, ``mean``, ``lower``, ``upper`` (the level's expected response
        with all group effects) and ``population_mean`` (same covariates, no group effects).
    population : DataFrame
        ``time``, ``mean``, ``lower``, ``upper``: the population curve at typical covariates
        (numeric columns at their means, others at their most frequent value).
    observed : DataFrame
        ``level``, ``time``, ``y``: the observations of the chosen levels (``y`` as modelled,
        i.e. after any transformation in the formula).
    group : str
        The grouping factor whose levels are drawn.
    time : str
        The time column.
    response : str
        The response as written in the formula.
    prob : float
        Mass of the central intervals.
    """

    individual: pd.DataFrame
    population: pd.DataFrame
    observed: pd.DataFrame
    group: str
    time: str
    response: str
    prob: float = 0.95

    @property
    def levels(self) -> list[str]:
        """The levels shown, in order."""
        return list(dict.fromkeys(self.individual["level"]))

    def plot(self, ncols: int = 4) -> Figure:
        """One panel per level: observations, posterior mean and band, population curve.

        Parameters
        ----------
        ncols : int
            Panels per row.

        Returns
        -------
        matplotlib.figure.Figure
            The individual posterior mean (solid) with its central interval (band), the
            observations (points), and the population-level curve at the level's covariates
            (dashed).
        """
        import matplotlib.pyplot as plt

        levels = self.levels
        n = len(levels)
        ncols = max(1, min(int(ncols), n))
        nrows = math.ceil(n / ncols)
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(3.2 * ncols, 2.6 * nrows),
            sharex=True,
            sharey=True,
            squeeze=False,
        )
        flat = list(axes.ravel())
        pct = f"{100 * self.prob:g}%"
        for i, (ax, lv) in enumerate(zip(flat, levels, strict=False)):
            cur = self.individual[self.individual["level"] == lv]
            obs = self.observed[self.observed["level"] == lv]
            ax.fill_between(cur["time"], cur["lower"], cur["upper"], color="C0", alpha=0.25, lw=0)
            ax.plot(cur["time"], cur["mean"], color="C0", label=f"individual (mean, {pct})")
            ax.plot(cur["time"], cur["population_mean"], "k--", lw=1, label="population")
            ax.scatter(obs["time"], obs["y"], s=12, color="C3", zorder=3, label="observed")
            ax.set_title(f"{self.group} {lv}", fontsize="small")
            if i == 0:
                ax.legend(fontsize="x-small")
        for ax in flat[n:]:
            fig.delaxes(ax)
        fig.supxlabel(self.time)
        fig.supylabel(self.response)
        fig.tight_layout()
        return fig


def _factor(design: Design, group: str | None) -> GroupFactor:
    names = [g.name for g in design.groups]
    if not names:
        raise SpecError(
            "the model has no grouping factors, so there are no individual trajectories.",
            where="group",
            hint="fit a model with group effects, e.g. 'y ~ time + (time | patient)'.",
        )
    if group is None:
        # the kind's individuals: the factor with the most levels among those with repeated
        # rows (clinic:patient rather than clinic; never an observation-level (1 | obs))
        from mixedbayes.kinds import kind_of

        factor = kind_of(design.spec).subject_factor(design)
        assert factor is not None
        return factor
    return find_factor(design.groups, group)


def _is_numeric(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def _time_column(design: Design, g: GroupFactor, time: str | None) -> str:
    data = design.data
    if time is not None:
        if time not in data.columns:
            raise DataError(
                f"the time column {time!r} is not a column of the fitted data.",
                where="time",
                hint=f"use one of {[str(c) for c in data.columns]}.",
            )
        if not _is_numeric(data[time]):
            raise DataError(
                f"the time column {time!r} is not numeric (dtype {data[time].dtype}).",
                where=f"column '{time}'",
                hint="pass a numeric column as time=.",
            )
        return time
    for t in g.terms:
        if t != "Intercept" and t in data.columns and _is_numeric(data[t]):
            return t
    for t in design.fixed_terms:
        if t != "Intercept" and t in data.columns and _is_numeric(data[t]):
            return t
    raise SpecError(
        f"cannot tell which column is time: {g.name!r} has no varying slope on a data column "
        "and no fixed effect is a numeric column.",
        where="time",
        hint="pass time='<column>' (the column holding the measurement times).",
    )


def _levels(g: GroupFactor, groups: Sequence[str] | None, max_groups: int) -> list[int]:
    if groups is None:
        if max_groups < 1:
            raise SpecError(f"max_groups must be at least 1, not {max_groups}.", where="max_groups")
        return list(range(min(max_groups, g.n_levels)))
    if isinstance(groups, str):
        groups = [groups]
    wanted = list(dict.fromkeys(str(v) for v in groups))
    if not wanted:
        raise DataError("groups is empty.", where="groups", hint="name at least one level.")
    lookup = {lv: j for j, lv in enumerate(g.levels)}
    unknown = [v for v in wanted if v not in lookup]
    if unknown:
        some = list(g.levels[:8]) + (["..."] if g.n_levels > 8 else [])
        raise DataError(
            f"the grouping factor {g.name!r} has no levels {unknown}.",
            where=f"group '{g.name}'",
            hint=f"use levels the model was fitted with, e.g. {some}.",
        )
    return [lookup[v] for v in wanted]


def _grid(design: Design, time: str, at: Sequence[float] | None) -> np.ndarray:
    if at is not None:
        grid = np.asarray(at, dtype=float).ravel()
        if grid.size == 0 or not np.isfinite(grid).all():
            raise DataError(
                "at must hold at least one finite time.", where="at", hint="e.g. at=[0, 1, 2]."
            )
        return grid
    observed = np.unique(design.data[time].to_numpy(dtype=float))
    if observed.size <= MAX_OBSERVED_TIMES:
        return observed
    return np.linspace(observed[0], observed[-1], GRID_POINTS)


def _typical_row(design: Design) -> pd.DataFrame:
    """One row: numeric columns at their means, others at their most frequent value."""
    data = design.data
    grouping = {part for f in design.groups for part in f.name.split(":")}
    row = data.iloc[[0]].copy()
    for col in data.columns:
        s = data[col]
        if _is_numeric(s) and col not in grouping:
            row[col] = float(s.mean())
        else:
            mode = s.mode(dropna=True)
            if len(mode):
                row.loc[row.index[0], col] = mode.iloc[0]
    return row


def _repeat(rows: pd.DataFrame, time: str, grid: np.ndarray) -> pd.DataFrame:
    out = rows.loc[rows.index.repeat(grid.size)].reset_index(drop=True)
    out[time] = np.tile(grid, len(rows))
    return out


def _summarise(draws: xr.DataArray, prob: float) -> tuple[np.ndarray, ...]:
    values = draws.transpose("chain", "draw", OBS_DIM).to_numpy()
    flat = values.reshape(-1, values.shape[-1])
    alpha = (1.0 - prob) / 2.0
    lower, upper = np.quantile(flat, [alpha, 1.0 - alpha], axis=0)
    return flat.mean(axis=0), lower, upper


def trajectories(
    fit: FitLike,
    groups: Sequence[str] | None = None,
    at: Sequence[float] | None = None,
    *,
    time: str | None = None,
    group: str | None = None,
    prob: float = 0.95,
    max_groups: int = 12,
    seed: int | None = None,
) -> Trajectories:
    """Posterior trajectories of individuals and of the population over a time grid.

    Parameters
    ----------
    fit : Fit
        A fitted model with at least one grouping factor.
    groups : sequence of str, optional
        Levels of ``group`` to draw (default: its first ``max_groups`` levels).
    at : sequence of float, optional
        The time grid (default: the sorted distinct observed times if there are at most 30,
        else 25 points spanning the observed range).
    time : str, optional
        The time column (default: the factor's first varying slope that is a data column,
        else the first fixed effect that is a numeric data column).
    group : str, optional
        The grouping factor whose levels are the individuals (default: the factor with the
        most levels, i.e. the innermost, such as ``clinic:patient``).
    prob : float
        Mass of the central intervals.
    max_groups : int
        How many levels to draw when ``groups`` is not given.
    seed : int, optional
        Passed to :meth:`Fit.predict`.

    Returns
    -------
    Trajectories
        ``.individual``, ``.population``, ``.observed`` and ``.plot()``.

    Raises
    ------
    DataError
        If ``groups`` names levels the model has not seen (they are named, with some valid
        ones), or ``time`` is not a numeric column of the data.
    SpecError
        If the model has no grouping factor, ``group`` names none of them, or no time column
        can be found (pass ``time=``).

    Notes
    -----
    Each level's rows are its first observed row repeated over the grid with the time column
    replaced, so time-varying covariates stay at their first value. Individual curves include
    every grouping factor's effects (for ``clinic:patient`` also the clinic's); the dashed
    ``population_mean`` uses the same covariates without group effects.

    Examples
    --------
    >>> tr = mb.trajectories(fit, max_groups=6)  # doctest: +SKIP
    >>> tr.plot(ncols=3)  # doctest: +SKIP
    """
    check_prob(prob)
    design = fit.design
    g = _factor(design, group)
    chosen = _levels(g, groups, max_groups)
    time = _time_column(design, g, time)
    grid = _grid(design, time, at)

    first = [int(np.flatnonzero(g.index == j)[0]) for j in chosen]
    rows = _repeat(design.data.iloc[first], time, grid)
    names = [g.levels[j] for j in chosen]
    mean, lower, upper = _summarise(fit.predict(rows, kind="mean", seed=seed), prob)
    pop_mean, _, _ = _summarise(fit.predict(rows, kind="mean", level="population", seed=seed), prob)
    individual = pd.DataFrame(
        {
            "level": np.repeat(np.asarray(names, dtype=object), grid.size),
            "time": np.tile(grid, len(names)),
            "mean": mean,
            "lower": lower,
            "upper": upper,
            "population_mean": pop_mean,
        }
    )

    typical = _repeat(_typical_row(design), time, grid)
    p_mean, p_lower, p_upper = _summarise(
        fit.predict(typical, kind="mean", level="population", seed=seed), prob
    )
    population = pd.DataFrame(
        {"time": grid.copy(), "mean": p_mean, "lower": p_lower, "upper": p_upper}
    )

    mask = np.isin(g.index, chosen)
    level_of = np.asarray(g.levels, dtype=object)[g.index[mask]]
    observed = pd.DataFrame(
        {
            "level": level_of,
            "time": design.data[time].to_numpy(dtype=float)[mask],
            "y": design.y[mask],
        }
    )
    order = {name: i for i, name in enumerate(names)}
    observed = observed.sort_values("level", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )
    return Trajectories(
        individual=individual,
        population=population,
        observed=observed,
        group=g.name,
        time=time,
        response=design.response,
        prob=prob,
    )
