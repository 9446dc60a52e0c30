"""Hanging rootograms (Kleiber & Zeileis 2016): a posterior predictive check for counts.

For each count value k, the observed frequency is compared with the expected frequency under
the posterior predictive distribution (the average over draws of how many replicated
responses equal k). On the square-root scale, bars of height sqrt(observed) hang from the
curve sqrt(expected): a bar that stops above zero means fewer observed k than expected, a
bar that crosses zero more. Excess zeros and overdispersion show at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import SpecError

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["Rootogram", "rootogram"]


@dataclass(frozen=True)
class Rootogram:
    """Observed and expected frequencies per count value.

    Attributes
    ----------
    table : DataFrame
        Columns ``count``, ``observed``, ``expected``, ``expected_lower``, ``expected_upper``
        (central 90 % of the replicated frequencies) and ``hanging`` =
        sqrt(expected) − sqrt(observed).
    """

    table: pd.DataFrame

    def plot(self, ax: Any = None) -> Any:
        """Draw the hanging rootogram; returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4))
        else:
            fig = ax.figure
        t = self.table
        top = np.sqrt(t["expected"].to_numpy())
        obs = np.sqrt(t["observed"].to_numpy())
        ax.bar(t["count"], obs, bottom=top - obs, width=0.8, color="#9ecae1", edgecolor="#3182bd")
        ax.plot(t["count"], top, color="#de2d26", marker="o", ms=3, label="sqrt(expected)")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("count")
        ax.set_ylabel("sqrt(frequency)")
        ax.set_title("Hanging rootogram")
        ax.legend(frameon=False)
        return fig


def rootogram(fit: FitLike, *, max_count: int | None = None, seed: int | None = None) -> Rootogram:
    """Observed vs posterior predictive frequencies of each count (count families only).

    Parameters
    ----------
    fit : Fit
    max_count : int, optional
        Largest count shown (default: the largest observed count).
    seed : int, optional
        Seed of the replicated responses.
    """
    family = fit.design.family
    if not family.discrete:
        raise SpecError(
            f"a rootogram is for count families; {family.name!r} is not one.",
            where="family",
            hint="use fit.plot_ppc() for continuous responses.",
        )
    y = fit.design.y.astype(int)
    top = int(max_count if max_count is not None else y.max())
    rep = fit.predict(kind="response", seed=seed).to_numpy()
    rep = rep.reshape(-1, rep.shape[-1]).astype(int)
    counts = np.arange(top + 1)
    freq = np.stack([(rep == k).sum(axis=1) for k in counts], axis=1)
    table = pd.DataFrame(
        {
            "count": counts,
            "observed": np.bincount(np.clip(y, 0, top + 1), minlength=top + 2)[: top + 1],
            "expected": freq.mean(axis=0),
            "expected_lower": np.quantile(freq, 0.05, axis=0),
            "expected_upper": np.quantile(freq, 0.95, axis=0),
        }
    )
    table["hanging"] = np.sqrt(table["expected"]) - np.sqrt(table["observed"])
    return Rootogram(table)
