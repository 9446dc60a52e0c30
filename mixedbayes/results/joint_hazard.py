"""The hazard of a joint model in NumPy, at given parameter values: each survival row's
pointwise log-likelihood (for LOO and the ``log_likelihood`` group) and event times simulated
from it (for SBC's replicates).

The log hazard of row ``i`` at time ``t`` is the graph's (``compile/joint.py``):
``log h0(t) + x_i·γ + Σ_k α_k m_ik(t)``, each ``m_ik`` an association's reading of its outcome
(``X_t·b + Σ Z_t·r``; the random effects themselves for ``shared``). Nothing is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.naming import Names

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.joint import JointDesign, Reading

__all__ = [
    "hazard_variables",
    "log_hazard",
    "simulate_event_times",
    "survival_log_likelihood",
]

#: Cells of each row's follow-up over which an event time is found, and nodes per cell.
EVENT_CELLS = 100
CELL_NODES = 5


def _reads(values: Mapping[str, np.ndarray], outcome: str, reading: Reading) -> np.ndarray:
    """``X·b_<outcome> + Σ_g Σ_k Z[:, k] · r_g[index, columns[k]]`` at one draw."""
    out = reading.X @ np.asarray(values[Names(outcome).b], dtype=float)
    for g, rm in reading.maps:
        r = np.asarray(values[Names.r(g)], dtype=float)
        out = out + np.sum(rm.Z * r[rm.index][:, list(rm.columns)], axis=1)
    return out


def log_hazard(
    design: JointDesign,
    values: Mapping[str, np.ndarray],
    times: np.ndarray,
    readings: Sequence[Reading | None],
) -> np.ndarray:
    """``log h`` of every survival row at ``times`` (rows × m) under one draw ``values``.

    Parameters
    ----------
    design : JointDesign
    values : mapping of str to ndarray
        One draw of the model's variables by name (``b_<outcome>``, ``r_<group>``,
        ``alpha``, ``b_event``, the baseline's parameters).
    times : ndarray, shape (rows, m)
    readings : sequence of Reading or None
        Per association of ``design.associations``: its rows at ``times`` flattened row-major
        (None for ``shared``).
    """
    surv = design.survival
    n, m = times.shape
    theta = {p.name: np.asarray(values[p.name], dtype=float) for p in design.baseline.params()}
    out = np.asarray(design.baseline.log_hazard(times, theta, np), dtype=float)
    if surv.terms:
        out = out + (surv.X @ np.asarray(values[Names("event").b], dtype=float))[:, None]
    alpha = np.asarray(values["alpha"], dtype=float)
    j = 0
    for a, reading in zip(design.associations, readings, strict=True):
        if reading is None:
            r = np.asarray(values[Names.r(design.subject_factor)], dtype=float)
            k = len(a.columns)
            out = out + (r[surv.level][:, list(a.columns)] @ alpha[j : j + k])[:, None]
            j += k
            continue
        out = out + alpha[j] * _reads(values, a.outcome, reading).reshape(n, m)
        j += 1
    return out


def hazard_variables(design: JointDesign) -> list[str]:
    """The variables :func:`log_hazard` reads, sorted."""
    names = {Names(a.outcome).b for a in design.associations if a.at_stop is not None}
    for a in design.associations:
        for reading in (a.at_stop, a.at_nodes):
            if reading is not None:
                names.update(Names.r(g) for g, _ in reading.maps)
        if a.at_stop is None:
            names.add(Names.r(design.subject_factor))
    names.update(p.name for p in design.baseline.params())
    names.add("alpha")
    if design.survival.terms:
        names.add(Names("event").b)
    return sorted(names)


def survival_log_likelihood(posterior: xr.Dataset, design: JointDesign) -> np.ndarray:
    """Each survival row's log-likelihood under every draw, shape (chain, draw, rows): the
    graph's ``event_loglik`` term by term (same nodes, same weights).

    Parameters
    ----------
    posterior : xarray.Dataset
    design : JointDesign
    """
    from mixedbayes.survival import log_likelihood_rows

    surv = design.survival
    names = hazard_variables(design)
    arrays = {k: np.asarray(posterior[k].to_numpy(), dtype=float) for k in names}
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    out = np.empty((n_chain, n_draw, surv.n))
    at_stop = [a.at_stop for a in design.associations]
    at_nodes = [a.at_nodes for a in design.associations]
    for c in range(n_chain):
        for d in range(n_draw):
            values = {k: v[c, d] for k, v in arrays.items()}
            log_h_stop = log_hazard(design, values, surv.stop[:, None], at_stop)[:, 0]
            log_h_nodes = log_hazard(design, values, surv.nodes, at_nodes)
            with np.errstate(over="ignore"):
                out[c, d] = log_likelihood_rows(
                    log_h_stop, log_h_nodes, surv.weights, surv.event, np
                )
    return out


def simulate_event_times(
    design: JointDesign,
    values: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    cells: int = EVENT_CELLS,
) -> tuple[np.ndarray, np.ndarray]:
    """Event times of every survival row under one draw, censored at the row's stop time.

    The cumulative hazard over ``(start, stop]`` is accumulated over ``cells`` equal cells
    (Gauss–Legendre, :data:`CELL_NODES` nodes each, split at the baseline's breaks) and an
    ``Exp(1)`` draw is inverted by linear interpolation within the cell where it is crossed;
    a row whose cumulative hazard stays below its draw is censored at its stop time.

    Parameters
    ----------
    design : JointDesign
        One survival row per subject (its entry time, 0 or later, is kept: left truncation).
    values : mapping of str to ndarray
        One draw of the model's variables (see :func:`log_hazard`).
    rng : numpy.random.Generator
    cells : int

    Returns
    -------
    stop, event : ndarray
        Per row: the event or censoring time, and 1 for an event, 0 for censoring.
    """
    from mixedbayes.survival import interval_nodes

    surv = design.survival
    if len(np.unique(surv.subject)) != surv.n:
        raise SpecError(
            "simulating event times takes one survival row per subject, not (start, stop] "
            "rows with time-varying covariates.",
            where="survival.formula",
            hint="give one row per subject (its entry time, if any, as start).",
        )
    n = surv.n
    edges = surv.start[:, None] + (surv.stop - surv.start)[:, None] * np.linspace(0, 1, cells + 1)
    nodes, weights = interval_nodes(
        edges[:, :-1].ravel(),
        edges[:, 1:].ravel(),
        CELL_NODES,
        breaks=design.baseline.quadrature_breaks(),
    )
    per_row = nodes.reshape(n, -1)
    who = np.repeat(surv.subject, per_row.shape[1])
    readings = [
        None if a.at_stop is None else design.reading_at(a, per_row.ravel(), who)
        for a in design.associations
    ]
    with np.errstate(over="ignore"):
        h = np.exp(log_hazard(design, values, per_row, readings)).reshape(nodes.shape)
    in_cell = np.sum(weights * h, axis=1).reshape(n, cells)
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(in_cell, axis=1)], axis=1)
    target = rng.exponential(size=n)
    crossed = cumulative[:, -1] >= target
    k = np.minimum(np.argmax(cumulative >= target[:, None], axis=1), cells)  # first edge past
    k = np.maximum(k, 1)
    rows = np.arange(n)
    low, high = cumulative[rows, k - 1], cumulative[rows, k]
    share = np.clip((target - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)
    t_event = edges[rows, k - 1] + share * (edges[rows, k] - edges[rows, k - 1])
    floor = surv.start + 1e-6 * (surv.stop - surv.start)
    stop = np.where(crossed, np.maximum(t_event, floor), surv.stop)
    return stop, crossed.astype(np.int64)
