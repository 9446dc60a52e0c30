"""The survival log-likelihood per row, by quadrature, and its NumPy/SciPy reference.

A row covers the interval ``(lower, stop]`` of one subject: ``lower`` is 0 for a subject
followed from the time origin, the entry time for a left-truncated one (delayed entry) and
the start of the interval for counting-process ``(start, stop]`` rows. Its log-likelihood is

``event · log h(stop) − ∫_lower^stop h(s) ds``,

so right censoring (``event == 0``) keeps only the cumulative hazard, and left truncation
and counting-process rows both integrate from the row's lower end (the likelihood is
conditional on being at risk there). The integral is a quadrature over the nodes of
:func:`mixedbayes.survival.quadrature.interval_nodes`.

This module imports no PyMC or pytensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mixedbayes.survival.baselines import Baseline

__all__ = ["log_likelihood_rows", "reference_log_likelihood"]


def log_likelihood_rows(
    log_h_stop: Any, log_h_nodes: Any, weights: Any, event: Any, xp: Any
) -> Any:
    """Per-row survival log-likelihood: ``event · log h(stop) − Σ_q w_q h(s_q)``.

    Handles right censoring (``event`` 0: no log-hazard term), counting-process
    ``(start, stop]`` rows and left truncation (delayed entry): the quadrature nodes and
    weights cover each row's interval from its lower end (start or entry time) to its stop
    time, so the cumulative hazard is the hazard accumulated while the row is at risk.

    Parameters
    ----------
    log_h_stop : array_like or tensor
        ``log h(stop)`` per row (baseline plus linear predictor), shape ``(rows,)``. Rows
        with ``event == 0`` never read it (a ``where``, so even ``±inf`` there is harmless
        to the value).
    log_h_nodes : array_like or tensor
        ``log h`` at the quadrature nodes, shape ``(rows, q)``.
    weights : array_like or tensor
        Quadrature weights (including the interval's half-length), shape ``(rows, q)``.
    event : array_like or tensor
        1 for an event at ``stop``, 0 for censoring, shape ``(rows,)``.
    xp : module
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    array_like or tensor
        Shape ``(rows,)``.
    """
    hazard_term = event * xp.where(event > 0, log_h_stop, 0.0)
    return hazard_term - xp.sum(weights * xp.exp(log_h_nodes), axis=1)


def reference_log_likelihood(
    baseline: Baseline,
    theta: Mapping[str, np.ndarray],
    start: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    lin_pred: np.ndarray,
) -> np.ndarray:
    """NumPy/SciPy reference of :func:`log_likelihood_rows` for ``h0(t) exp(lin_pred)``.

    With a time-constant linear predictor the cumulative hazard is
    ``exp(lin_pred) (H0(stop) − H0(start))``, from the baseline's own
    :meth:`~mixedbayes.survival.baselines.Baseline.cumulative_hazard` (closed form or
    adaptive quadrature), independent of the nodes the model uses.

    Parameters
    ----------
    baseline : Baseline
        A baseline (after ``setup`` where it needs one).
    theta : mapping of str to numpy.ndarray
        Its parameter values by name.
    start, stop, event, lin_pred : numpy.ndarray
        Per row, shape ``(rows,)``: interval start (0, entry or counting-process start),
        stop, event indicator and linear predictor.

    Returns
    -------
    numpy.ndarray
        ``event (log h0(stop) + lin_pred) − exp(lin_pred) (H0(stop) − H0(start))``.
    """
    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    event = np.asarray(event, dtype=float)
    lin_pred = np.asarray(lin_pred, dtype=float)
    log_h = np.asarray(baseline.log_hazard(stop, theta, np), dtype=float) + lin_pred
    hazard_term = event * np.where(event > 0, log_h, 0.0)
    increment = baseline.cumulative_hazard(stop, theta) - baseline.cumulative_hazard(start, theta)
    return hazard_term - np.exp(lin_pred) * increment
