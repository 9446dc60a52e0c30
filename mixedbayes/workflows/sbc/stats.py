"""Uniformity tests of SBC rank statistics.

Ranks take the integer values ``0, 1, ..., L`` (``L`` posterior draws per replicate); under a
correct model and sampler they are discrete-uniform (Talts et al. 2018).

- :func:`chi2_uniformity`: Pearson's chi-square on ranks binned into ``bins`` intervals
  (expected counts from the exact number of rank values per bin).
- :func:`ecdf_test`: the simultaneous ECDF test of Säilynoja, Bürkner and Vehtari (2022):
  at every threshold ``k`` the count of ranks ``<= k`` is Binomial(n, (k + 1) / (L + 1)); the
  statistic is the smallest two-sided pointwise tail probability over all thresholds, and
  its null distribution (from simulated uniform ranks) gives both the p-value and the
  simultaneous confidence band drawn by the ECDF-difference plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["EcdfBand", "chi2_uniformity", "default_bins", "ecdf_band", "ecdf_test"]

#: Simulated null data sets behind the ECDF test's p-value and band (seeded: deterministic).
N_SIMULATIONS = 4000


def default_bins(n: int, max_rank: int) -> int:
    """Bins for the chi-square test: about 5 or more expected ranks per bin, at most 20."""
    return int(max(2, min(20, n // 5, max_rank + 1)))


def _check(ranks: np.ndarray, max_rank: int) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError("ranks must be a non-empty 1-d array")
    if np.any(r < 0) or np.any(r > max_rank) or np.any(r != np.round(r)):
        raise ValueError(f"ranks must be integers in 0..{max_rank}")
    return r.astype(np.int64)


def bin_counts(ranks: np.ndarray, max_rank: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed and expected counts of ``ranks`` in ``bins`` intervals of ``0..max_rank``."""
    r = _check(ranks, max_rank)
    edges = np.linspace(0, max_rank + 1, bins + 1)
    which = np.minimum(np.searchsorted(edges, np.arange(max_rank + 1), side="right") - 1, bins - 1)
    per_bin = np.bincount(which, minlength=bins)  # rank values in each bin
    observed = np.bincount(which[r], minlength=bins).astype(float)
    expected = r.size * per_bin / (max_rank + 1)
    return observed, expected


def chi2_uniformity(
    ranks: np.ndarray, max_rank: int, bins: int | None = None
) -> tuple[float, int, float]:
    """Pearson's chi-square test of uniform ranks: (statistic, degrees of freedom, p-value)."""
    from scipy import stats

    r = _check(ranks, max_rank)
    k = bins or default_bins(r.size, max_rank)
    observed, expected = bin_counts(r, max_rank, k)
    keep = expected > 0
    stat = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    df = int(keep.sum() - 1)
    return stat, df, float(stats.chi2.sf(stat, df))


def _cumulative(ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """Counts of ranks ``<= k`` for k = 0..L-1; ranks of shape (..., n)."""
    counts = np.zeros((*ranks.shape[:-1], max_rank + 1), dtype=np.int64)
    np.add.at(counts, (*np.indices(ranks.shape)[:-1], ranks), 1)
    return np.cumsum(counts, axis=-1)[..., :-1]


def _tail(cum: np.ndarray, n: int, z: np.ndarray) -> np.ndarray:
    from scipy import stats

    lower = stats.binom.cdf(cum, n, z)
    upper = stats.binom.sf(cum - 1, n, z)
    return np.asarray(np.minimum(1.0, 2.0 * np.minimum(lower, upper)))


def _thresholds(max_rank: int) -> np.ndarray:
    return np.arange(1, max_rank + 1) / (max_rank + 1)


@lru_cache(maxsize=64)
def _null_statistics(n: int, max_rank: int, sims: int) -> np.ndarray:
    rng = np.random.default_rng(20180501 + 7919 * n + max_rank)
    sims_ranks = rng.integers(0, max_rank + 1, size=(sims, n))
    z = _thresholds(max_rank)
    out = np.empty(sims)
    step = 500
    for s in range(0, sims, step):
        cum = _cumulative(sims_ranks[s : s + step], max_rank)
        out[s : s + step] = _tail(cum, n, z).min(axis=-1)
    out.flags.writeable = False
    return out


def ecdf_test(ranks: np.ndarray, max_rank: int, sims: int = N_SIMULATIONS) -> tuple[float, float]:
    """Simultaneous ECDF test of uniform ranks: (statistic, p-value).

    The statistic is the smallest pointwise two-sided binomial tail probability of the rank
    ECDF over the thresholds ``0..L-1``; the p-value is the share of ``sims`` simulated
    uniform rank sets with a statistic at least as extreme.
    """
    r = _check(ranks, max_rank)
    if max_rank < 1:
        return 1.0, 1.0
    stat = float(_tail(_cumulative(r, max_rank), r.size, _thresholds(max_rank)).min())
    null = _null_statistics(r.size, max_rank, sims)
    p = (1.0 + float(np.sum(null <= stat))) / (1.0 + null.size)
    return stat, min(1.0, p)


@dataclass(frozen=True)
class EcdfBand:
    """A simultaneous band for the rank ECDF: at ``z``, ``lower <= F(z) <= upper``."""

    z: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float


def ecdf_band(n: int, max_rank: int, prob: float = 0.95, sims: int = N_SIMULATIONS) -> EcdfBand:
    """The simultaneous ``prob`` band of the ECDF of ``n`` uniform ranks in ``0..max_rank``."""
    from scipy import stats

    z = _thresholds(max_rank)
    null = _null_statistics(n, max_rank, sims)
    gamma = float(np.quantile(null, 1 - prob))
    lower = stats.binom.ppf(gamma / 2, n, z) / n
    upper = stats.binom.ppf(1 - gamma / 2, n, z) / n
    return EcdfBand(z, np.asarray(lower), np.asarray(upper), prob)
