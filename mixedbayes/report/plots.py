"""Figures of the report that the results package does not draw: forest, trace and rank plots.

They are drawn with matplotlib from the tidy summary and the posterior, one panel per class
of parameter in the forest plot (fixed effects, group SDs, correlations and family
parameters live on different scales).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixedbayes.naming import Names, parse

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = ["draws_of", "forest_plot", "panel_of", "trace_rank_plot"]

SAMPLE_DIMS = ("chain", "draw")
_LABEL = re.compile(r"^(?P<var>[^\[]+)(?:\[(?P<coords>.*)\])?$")
PANEL_TITLES = {
    "b": "fixed effects",
    "sd": "group-level SDs",
    "cor": "group-level correlations",
    "other": "family / residual parameters",
}


def panel_of(cls: str) -> str:
    """The forest-plot panel of a summary ``class``: ``b``, ``sd``, ``cor`` or ``other``.

    Parameters
    ----------
    cls : str
        The ``class`` column of :meth:`Fit.summary` (``b``, ``b_log_CL``, ``sd``, ``sigma``).

    Returns
    -------
    str
    """
    fixed = Names().b
    if cls == fixed or cls.startswith(fixed + "_"):  # b_<part>: a part's fixed effects
        return "b"
    parsed = parse(cls)
    if parsed.class_ in ("sd", "cor"):
        return parsed.class_
    return "other"


def draws_of(posterior: xr.Dataset, label: str) -> np.ndarray:
    """The draws (chain × draw) of one summary row, e.g. ``sd_Subject[Days]``.

    Parameters
    ----------
    posterior : xarray.Dataset
    label : str
        A ``parameter`` of :meth:`Fit.summary`: the variable name, and the coordinate value
        of each non-sample dimension in brackets, comma-separated.

    Returns
    -------
    ndarray, shape (chain, draw)
    """
    match = _LABEL.match(label)
    if match is None or match["var"] not in posterior:
        raise KeyError(f"no variable for {label!r} in the posterior.")
    da = posterior[match["var"]]
    dims = [d for d in da.dims if d not in SAMPLE_DIMS]
    wanted = match["coords"].split(",") if match["coords"] else []
    if len(wanted) != len(dims):
        raise KeyError(f"{label!r} does not match the dims {dims} of {match['var']!r}.")
    index = {}
    for dim, value in zip(dims, wanted, strict=True):
        names = [str(v) for v in da[dim].to_numpy()]
        if value not in names:
            raise KeyError(f"{value!r} is not a coordinate of {dim!r} in {label!r}.")
        index[dim] = names.index(value)
    return np.asarray(da.isel(index).transpose(*SAMPLE_DIMS).to_numpy(), dtype=float)


def forest_plot(summary: pd.DataFrame, prob: float = 0.95) -> Figure:
    """Posterior means and central intervals, one panel per class of parameter.

    Parameters
    ----------
    summary : DataFrame
        :meth:`Fit.summary` (``parameter``, ``class``, ``mean``, ``lower``, ``upper``).
    prob : float
        The intervals' mass (for the axis label).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    panels = summary.assign(panel=summary["class"].map(panel_of))
    order = [p for p in PANEL_TITLES if p in set(panels["panel"])]
    heights = [max(1.2, 0.32 * int((panels["panel"] == p).sum()) + 0.6) for p in order]
    fig, axes = plt.subplots(
        len(order),
        1,
        figsize=(7.0, sum(heights) + 0.4),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, panel in zip(axes[:, 0], order, strict=True):
        rows = panels[panels["panel"] == panel].iloc[::-1]
        y = np.arange(len(rows))
        ax.hlines(y, rows["lower"], rows["upper"], color="#3182bd", lw=2)
        ax.plot(rows["mean"], y, "o", color="#08519c", ms=5)
        ax.set_yticks(y, [str(p) for p in rows["parameter"]], fontsize="small")
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(PANEL_TITLES[panel], fontsize="medium", loc="left")
        if panel in ("b", "cor"):
            ax.axvline(0.0, color="grey", lw=0.8, ls="--")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(f"posterior mean and central {100 * prob:g}% interval")
    fig.tight_layout()
    return fig


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (0 .. n-1) of all draws pooled over chains, ties broken by position."""
    flat = values.reshape(-1)
    ranks = np.empty(flat.size, dtype=float)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return ranks.reshape(values.shape)


def trace_rank_plot(posterior: xr.Dataset, labels: list[str], bins: int = 20) -> Figure:
    """For each parameter, its trace per chain (left) and its rank histogram per chain (right).

    Well-mixed chains give overlapping traces and flat rank histograms (Vehtari et al. 2021).

    Parameters
    ----------
    posterior : xarray.Dataset
    labels : list of str
        Summary labels (``b[Days]``) of the parameters to draw.
    bins : int
        Bins of the rank histograms.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, axes = plt.subplots(
        n, 2, figsize=(9.0, 1.6 * n + 0.5), squeeze=False, gridspec_kw={"width_ratios": [3, 2]}
    )
    for (trace_ax, rank_ax), label in zip(axes, labels, strict=True):
        values = draws_of(posterior, label)
        ranks = _ranks(values)
        edges = np.linspace(0, ranks.size, bins + 1)
        n_chains = values.shape[0]
        width = (edges[1] - edges[0]) / max(n_chains, 1)
        for c in range(n_chains):
            colour = f"C{c % 10}"
            trace_ax.plot(values[c], lw=0.6, color=colour, alpha=0.8)
            counts, _ = np.histogram(ranks[c], bins=edges)
            rank_ax.bar(edges[:-1] + c * width, counts, width=width, align="edge", color=colour)
        rank_ax.axhline(values.shape[1] / bins, color="black", lw=0.8, ls="--")
        trace_ax.set_ylabel(label, fontsize="small", rotation=0, ha="right", va="center")
        trace_ax.tick_params(labelsize="x-small")
        rank_ax.tick_params(labelsize="x-small")
        rank_ax.set_yticks([])
    axes[0, 0].set_title("trace (one colour per chain)", fontsize="small")
    axes[0, 1].set_title("rank histogram per chain (flat = well mixed)", fontsize="small")
    axes[-1, 0].set_xlabel("draw", fontsize="small")
    axes[-1, 1].set_xlabel("rank of the draw among all chains", fontsize="small")
    fig.tight_layout()
    return fig
