"""Conditional effects: the expected response over a grid of one predictor (as brms's
``conditional_effects``).

The grid varies one predictor (``effect="Days"``) or two (``effect="x:arm"``: a line per
value of the second), holding the other predictors at reference values: numeric ones at
their mean, categorical ones at their reference level (the first category of a pandas
``Categorical``, else the first in sorted order: the level the treatment contrasts leave
out), as brms does. ``conditions`` fixes other predictors at chosen values, one panel per
condition. Predictions are population-level by default (brms's ``re_formula = NA``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError
from mixedbayes.results.slopes import by_values, data_column, reference_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mixedbayes.results.predict import Level
    from mixedbayes.results.protocols import FitLike

__all__ = ["ConditionalEffects", "conditional_effects", "reference_levels"]

#: Column of :attr:`ConditionalEffects.data` naming the condition (panel) of each row.
CONDITION = "condition"


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _levels(series: pd.Series) -> list[Any]:
    """The levels of a categorical predictor, reference level first."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        return [c for c in series.cat.categories if c in present]
    return sorted(series.dropna().unique().tolist(), key=str)


def reference_levels(data: pd.DataFrame) -> dict[str, Any]:
    """The reference level of every non-numeric column of ``data``."""
    return {
        str(c): _levels(data[c])[0]
        for c in data.columns
        if not _is_numeric(data[c]) and data[c].notna().any()
    }


@dataclass(frozen=True, eq=False)
class ConditionalEffects:
    """The expected response over a grid of ``effect``, with credible bands.

    Attributes
    ----------
    effect : str
        ``"x"`` or ``"x:z"``.
    data : DataFrame
        One row per grid point and condition: the predictors' values, ``estimate``
        (posterior mean of E[y]), ``lower``, ``upper`` and ``condition`` (the condition's
        label, ``""`` without conditions).
    prob : float
        Mass of the bands.
    response : str
        The response's name (the plot's y label).
    """

    effect: str
    data: pd.DataFrame
    prob: float
    response: str

    @property
    def variables(self) -> list[str]:
        """The predictor varied and, for an interaction, the one drawn as separate lines."""
        return self.effect.split(":")

    def plot(self) -> Figure:
        """Line and band (numeric effect) or points and error bars (categorical), one
        colour per value of an interaction's second variable, one panel per condition."""
        import matplotlib.pyplot as plt

        x_name, *rest = self.variables
        panels = list(dict.fromkeys(self.data[CONDITION]))
        fig, axes = plt.subplots(
            1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False, sharey=True
        )
        numeric = _is_numeric(self.data[x_name])
        for ax, panel in zip(axes[0], panels, strict=True):
            sub = self.data[self.data[CONDITION] == panel]
            lines = [(None, sub)] if not rest else list(sub.groupby(rest[0], sort=False))
            for j, (value, part) in enumerate(lines):
                label = None if value is None else f"{rest[0]} = {value}"
                color = f"C{j}"
                if numeric:
                    ax.plot(part[x_name], part["estimate"], color=color, label=label)
                    ax.fill_between(
                        part[x_name], part["lower"], part["upper"], color=color, alpha=0.25
                    )
                else:
                    xs = np.arange(len(part)) + (j - (len(lines) - 1) / 2) * 0.1
                    ax.errorbar(
                        xs,
                        part["estimate"],
                        yerr=[part["estimate"] - part["lower"], part["upper"] - part["estimate"]],
                        fmt="o",
                        color=color,
                        capsize=3,
                        label=label,
                    )
                    ax.set_xticks(np.arange(len(part)), [str(v) for v in part[x_name]])
            ax.set_xlabel(x_name)
            if panel:
                ax.set_title(str(panel), fontsize=9)
            if rest:
                ax.legend(fontsize=8)
        axes[0][0].set_ylabel(f"E[{self.response}] ({100 * self.prob:g}% band)")
        fig.tight_layout()
        return fig


def _effect_values(fit: FitLike, name: str, resolution: int, first: bool) -> list[Any]:
    col = data_column(fit, name, "conditional effect")
    if not _is_numeric(col):
        return _levels(col)
    if first:
        return [float(v) for v in np.linspace(col.min(), col.max(), resolution)]
    return by_values(fit, name, None, role="the effect")


def _conditions(conditions: Mapping[str, Any] | pd.DataFrame | None) -> list[dict[str, Any]]:
    if conditions is None:
        return [{}]
    if isinstance(conditions, pd.DataFrame):
        return [{str(k): v for k, v in row.items()} for _, row in conditions.iterrows()]
    return [dict(conditions)]


def conditional_effects(
    fit: FitLike,
    effect: str,
    conditions: Mapping[str, Any] | pd.DataFrame | None = None,
    *,
    prob: float = 0.95,
    resolution: int = 100,
    level: Level = "population",
    kind: Literal["link", "mean"] = "mean",
) -> ConditionalEffects:
    """The expected response over a grid of ``effect``, other predictors at reference values.

    Parameters
    ----------
    fit : Fit
    effect : str
        A predictor (``"Days"``) or two joined by ``":"`` (``"x:arm"``): the first is the
        x axis (``resolution`` points from its minimum to its maximum if numeric, its levels
        if categorical), the second gives one line per level (a numeric one at its 10/50/90 %
        quantiles, or its values when it has at most 10).
    conditions : mapping or DataFrame, optional
        Values of other predictors: one condition (a mapping) or one per row (a DataFrame),
        each drawn as its own panel.
    prob : float
        Mass of the credible bands.
    resolution : int
        Grid points of a numeric effect.
    level : None, "population", str or list of str
        Group effects included, as in :meth:`Fit.predict` (default: none).
    kind : {"mean", "link"}
        The expected response or the linear predictor.

    Returns
    -------
    ConditionalEffects
        ``.data`` (a DataFrame) and ``.plot()``.

    Raises
    ------
    DataError
        If ``effect`` or a condition names a column the data do not have.
    """
    names = effect.split(":")
    if len(names) > 2 or not all(names):
        raise DataError(
            f"effect {effect!r} is not a predictor or an interaction of two.",
            where="effect",
            hint="use e.g. 'Days' or 'x:arm'.",
        )
    values = [_effect_values(fit, n, resolution, first=i == 0) for i, n in enumerate(names)]
    index = pd.MultiIndex.from_product(values, names=names)
    frames = []
    refs = reference_levels(fit.design.data)
    for cond in _conditions(conditions):
        base = reference_grid(fit, {**refs, **cond})
        grid = pd.concat([base] * len(index), ignore_index=True)
        for n in names:
            grid[n] = index.get_level_values(n)
        label = ", ".join(f"{k} = {v}" for k, v in cond.items())
        grid[CONDITION] = label
        frames.append(grid)
    grid = pd.concat(frames, ignore_index=True)
    for c in fit.design.data.columns:
        data_col = fit.design.data[c]
        if isinstance(data_col.dtype, pd.CategoricalDtype):
            grid[c] = pd.Categorical(grid[c], categories=data_col.cat.categories)
    draws = fit.predict(grid, kind=kind, level=level).to_numpy()
    draws = draws.reshape(-1, draws.shape[-1])
    q = (1 - prob) / 2
    out = grid[[*names, *[c for c in grid.columns if c not in names]]].copy()
    out["estimate"] = draws.mean(axis=0)
    out["lower"] = np.quantile(draws, q, axis=0)
    out["upper"] = np.quantile(draws, 1 - q, axis=0)
    out.attrs["prob"] = prob
    return ConditionalEffects(effect, out, prob, fit.design.response)
