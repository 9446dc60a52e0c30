"""Gauss–Legendre quadrature of a hazard over each row's follow-up interval.

The cumulative hazard of a row, ``∫_lower^upper h(s) ds``, has no closed form once the
hazard reads a time-varying predictor (a longitudinal trajectory), so it is a weighted sum
of the hazard at fixed node times: :func:`interval_nodes` gives, per row, the nodes and the
weights (which include the half-length ``(upper - lower) / 2`` of the interval). The nodes
are data, computed once in NumPy; the hazard at them is evaluated in the model's graph.

An ``n``-node rule is exact for polynomials of degree ``2 n - 1`` and converges fast for
smooth integrands. A hazard with kinks (piecewise-constant or spline baselines) is smooth
between its breakpoints only: pass them as ``breaks`` and every interval is split there, so
that each sub-interval gets its own ``n`` nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mixedbayes.errors import DataError, SpecError, format_rows

__all__ = ["gauss_legendre", "interval_nodes"]


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point Gauss–Legendre rule on ``[-1, 1]``.

    Parameters
    ----------
    n : int
        Number of nodes, at least 1.

    Returns
    -------
    nodes, weights : numpy.ndarray
        Both of shape ``(n,)``; ``sum(weights * f(nodes))`` integrates ``f`` over
        ``[-1, 1]``, exactly for polynomials of degree ``<= 2 n - 1``.

    Raises
    ------
    SpecError
        If ``n`` is not an integer >= 1.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SpecError(
            f"the number of quadrature nodes must be an integer >= 1, not {n!r}.",
            where="quadrature",
            hint="use e.g. 15 nodes per interval (as JMbayes2).",
        )
    nodes, weights = np.polynomial.legendre.leggauss(int(n))
    return nodes, weights


def interval_nodes(
    lower: np.ndarray, upper: np.ndarray, n: int, *, breaks: Sequence[float] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights over each row's interval ``[lower, upper]``.

    Parameters
    ----------
    lower, upper : numpy.ndarray
        Interval ends, shape ``(rows,)``, finite, ``upper >= lower`` (a row's entry or start
        time and its stop time).
    n : int
        Gauss–Legendre nodes per interval (per sub-interval when ``breaks`` are given).
    breaks : sequence of float, optional
        Times where the integrand is not smooth (e.g. :meth:`Baseline.breakpoints`). Every
        interval is split at each of them (a break outside a row's interval gives that row
        a zero-length piece with zero weights), so the output has ``n * (len(unique
        breaks) + 1)`` columns for every row.

    Returns
    -------
    nodes, weights : numpy.ndarray
        Shape ``(rows, n)`` without breaks: ``sum(weights * f(nodes), axis=1)``
        approximates ``∫_lower^upper f(s) ds`` row by row. Rows with ``upper == lower``
        have zero weights (their nodes all equal ``lower``).

    Raises
    ------
    DataError
        If the ends are not finite 1-D arrays of one shape, or ``upper < lower`` in a row.
    """
    x, w = gauss_legendre(n)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise DataError(
            f"interval ends must be 1-D arrays of one shape, not {lo.shape} and {hi.shape}.",
            where="quadrature",
            hint="pass one lower and one upper time per row.",
        )
    bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)) | (hi < lo))
    if bad.size:
        raise DataError(
            f"rows {format_rows(bad.tolist())} have a non-finite interval or stop < start.",
            where="quadrature",
            hint="every row needs finite times with start <= stop.",
        )
    cuts = np.unique(np.asarray(breaks, dtype=float))
    inner = np.clip(cuts[None, :], lo[:, None], hi[:, None])
    edges = np.concatenate([lo[:, None], inner, hi[:, None]], axis=1)
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    nodes = mid[..., None] + half[..., None] * x
    weights = half[..., None] * w
    rows = lo.shape[0]
    return nodes.reshape(rows, -1), weights.reshape(rows, -1)


#: Fewest Gauss–Legendre nodes in one piece of a split interval (exact for polynomials of
#: degree 9; the hazard within a piece is smooth).
MIN_PER_PIECE = 5


def hazard_nodes(
    lower: np.ndarray, upper: np.ndarray, n: int, breaks: Sequence[float] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The model's quadrature of the cumulative hazard: ``n`` nodes over each interval, or,
    split at ``breaks`` (where the hazard jumps), ``max(MIN_PER_PIECE, ceil(n / pieces))``
    nodes per piece — about ``n`` in all, not ``n`` per piece (6 pieces × 15 nodes made the
    aids fit 3× slower for no accuracy the posterior could see).

    See :func:`interval_nodes` for the arguments and the result's layout.
    """
    cuts = np.unique(np.asarray(breaks, dtype=float))
    per = int(n) if cuts.size == 0 else max(MIN_PER_PIECE, -(-int(n) // (cuts.size + 1)))
    return interval_nodes(lower, upper, per, breaks=tuple(cuts.tolist()))
