"""The rows of an ``lmm`` with correlated residuals, grouped into covariance blocks.

:func:`residual_design` reads the spec's ``residuals:`` (:mod:`mixedbayes.spec.residuals`)
against a regression design's rows: each subject's rows (ordered by time) are one block of
the residual covariance. Subjects are grouped by their number of rows (one batch per size),
and within a size by their *pattern*, what their block's covariance depends on: the lags
``|t_i - t_k|`` (``ar1``, ``car1``), the visit levels (``unstructured``) or nothing
(``cs``). The compile stage computes one covariance and one Cholesky factor per pattern, a
batched ``(patterns, k, k)`` tensor per size, and every subject of the pattern reads it.
No PyMC here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, SpecError, format_rows
from mixedbayes.spec.residuals import ResidualSpec, residual_group

if TYPE_CHECKING:
    from mixedbayes.design.design import Design

__all__ = [
    "ResidualBatch",
    "ResidualDesign",
    "block_covariances",
    "latent_residuals",
    "observation_residuals",
    "padded_batch",
    "residual_design",
    "residual_log_likelihood",
    "residual_spec",
    "simulate_residuals",
]


@dataclass(frozen=True, eq=False)
class ResidualBatch:
    """The subjects with ``k`` rows each.

    Attributes
    ----------
    rows : ndarray of int, shape (m, k)
        Per subject, its design rows (positions in ``design.y``) in time order.
    pattern : ndarray of int, shape (m,)
        Per subject, its pattern (an index into ``lags`` / ``visits``).
    lags : ndarray, shape (u, k, k)
        Per pattern, ``|t_i - t_k|`` (``ar1``, ``car1``; zeros otherwise).
    visits : ndarray of int, shape (u, k)
        Per pattern, the visit level of each position (``unstructured``; zeros otherwise).
    valid : ndarray of bool, shape (u, k), optional
        Of a padded batch (:func:`padded_batch`), per pattern the positions that are rows
        (the first ones); the others are padding (``rows`` -1).
    """

    rows: np.ndarray
    pattern: np.ndarray
    lags: np.ndarray
    visits: np.ndarray
    valid: np.ndarray | None = None

    @property
    def k(self) -> int:
        """Rows per subject."""
        return int(self.rows.shape[1])

    @property
    def n_patterns(self) -> int:
        """Distinct covariance blocks of the batch."""
        return int(self.lags.shape[0])


@dataclass(frozen=True, eq=False)
class ResidualDesign:
    """The residual covariance blocks of a design.

    Attributes
    ----------
    correlation : str
        ``ar1``, ``car1``, ``cs`` or ``unstructured``.
    time, group : str
        The time (visit) and subject columns.
    subjects : list
        The subjects' labels, in order of first appearance.
    subject : ndarray of int, shape (n,)
        Per design row, its subject.
    times : ndarray, shape (n,)
        Per design row, its time (``ar1``, ``car1``) or its visit level's position
        (``cs``, ``unstructured``).
    visit_levels : list
        The visit levels (``unstructured``, ``cs``): categorical order, else sorted.
    batches : tuple of ResidualBatch
        One per block size, smallest first.
    latent : bool
        The residuals are a latent process on the linear predictor (a ``glmm``'s ``ar1`` /
        ``car1``: its SD is ``sigma_ar``), not the response's.
    """

    correlation: str
    time: str
    group: str
    subjects: list[Any]
    subject: np.ndarray
    times: np.ndarray
    visit_levels: list[Any]
    batches: tuple[ResidualBatch, ...]
    latent: bool = False

    def digest(self) -> str:
        """A hash of the blocks (which rows, which pattern, the lags and visits): the compiled
        log-density holds them as constants of one opaque node, so the compile cache's
        structure key must see them (two data sets of one shape, other blocks)."""
        import hashlib

        h = hashlib.sha256(self.correlation.encode())
        for b in self.batches:
            for a in (b.rows, b.pattern, b.lags, b.visits):
                h.update(f"{a.dtype}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    @property
    def max_block(self) -> int:
        """The largest number of rows of one subject."""
        return max(b.k for b in self.batches)


def residual_spec(design: Any) -> ResidualSpec | None:
    """The spec's ``residuals:`` of a design (None when it has none)."""
    return getattr(design.spec, "residuals", None)


def latent_residuals(design: Any) -> bool:
    """Whether the design has ``residuals:`` as a latent process on the linear predictor (a
    ``glmm``'s ``ar1`` / ``car1``), whose draws the linear predictor adds."""
    return residual_spec(design) is not None and bool(
        getattr(design.spec, "latent_residuals", False)
    )


def observation_residuals(design: Any) -> bool:
    """Whether the design has ``residuals:`` on the response (the Gaussian ``lmm``)."""
    return residual_spec(design) is not None and not latent_residuals(design)


def _levels(column: pd.Series) -> list[Any]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        used = set(column.dropna().unique())
        return [v for v in column.cat.categories if v in used]
    return sorted(column.dropna().unique().tolist())


def residual_design(design: Design, data: pd.DataFrame | None = None) -> ResidualDesign:
    """The residual blocks of ``design`` (whose spec has ``residuals:``), of its rows or of
    the rows of ``data`` (new data to predict for: the same time and subject columns; the
    visit levels, of ``cs`` and ``unstructured``, must be the fitted ones).

    Raises
    ------
    SpecError
        ``missing:`` beside ``residuals:`` (not supported yet).
    DataError
        A missing time or subject column, missing values in them at the rows used, a
        non-numeric time (``ar1``, ``car1``), a non-integer visit (``ar1``), or a subject
        with two rows at one time; every problem at once, rows named.
    """
    spec = residual_spec(design)
    if spec is None:
        raise ValueError("the design's spec has no residuals:")
    if design.imputation is not None:
        raise SpecError(
            "missing: (imputation) and residuals: cannot be combined yet.",
            where="residuals",
            hint="remove missing: (rows with missing values are then dropped and reported), "
            "or impute first and fit each completed data set.",
        )
    formula = str(getattr(design.spec, "formula", ""))
    group = residual_group(formula, spec)
    frame = design.data if data is None else data
    problems = []
    for what, col in (("time", spec.time), ("group", group)):
        if col not in frame.columns:
            close = [c for c in frame.columns if str(c).lower() == col.lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"residuals.{what}: the data have no column {col!r}{hint}")
    if problems:
        raise DataError("; ".join(problems) + ".", where="residuals")
    t_col, g_col = frame[spec.time], frame[group]
    for col, series in ((spec.time, t_col), (group, g_col)):
        bad = list(frame.index[series.isna().to_numpy()])
        if bad:
            problems.append(f"{col!r} is missing at the rows {format_rows(bad)}")
    visit_levels: list[Any] = []
    if spec.correlation in ("ar1", "car1"):
        numeric = pd.to_numeric(t_col, errors="coerce")
        bad = list(frame.index[(numeric.isna() & t_col.notna()).to_numpy()])
        if bad:
            problems.append(
                f"residuals.time {spec.time!r} must be numeric for {spec.correlation}; "
                f"not at the rows {format_rows(bad)}"
            )
        times = numeric.to_numpy(dtype=float)
        if spec.correlation == "ar1" and not bad:
            off = ~np.isclose(times, np.round(times)) & ~np.isnan(times)
            if off.any():
                problems.append(
                    f"ar1 needs integer visits in {spec.time!r} (nlme's corAR1); "
                    f"not at the rows {format_rows(list(frame.index[off]))}. Fix: use "
                    "correlation: car1 for continuous times"
                )
    else:
        visit_levels = _levels(design.data[spec.time] if data is not None else t_col)
        position = {v: i for i, v in enumerate(visit_levels)}
        times = np.array([position.get(v, -1) for v in t_col], dtype=float)
        unseen = list(frame.index[(times < 0) & t_col.notna().to_numpy()])
        if unseen:
            problems.append(
                f"{spec.time!r} has levels the fit did not see at the rows "
                f"{format_rows(unseen)}; the fitted levels: {visit_levels}"
            )
    subjects = list(pd.unique(g_col.dropna()))
    code = {s: i for i, s in enumerate(subjects)}
    subject = np.array([code.get(s, -1) for s in g_col], dtype=np.int64)
    dup = pd.DataFrame({"s": subject, "t": times}).duplicated(keep=False).to_numpy()
    if dup.any() and not problems:
        problems.append(
            f"a subject has two rows at one {spec.time!r} (rows "
            f"{format_rows(list(frame.index[dup]))}): each subject's times must differ "
            f"within {group!r}"
        )
    if problems:
        raise DataError("; ".join(problems) + ".", where="residuals")
    return ResidualDesign(
        correlation=spec.correlation,
        time=spec.time,
        group=group,
        subjects=subjects,
        subject=subject,
        times=times,
        visit_levels=visit_levels,
        batches=_batches(subject, times, len(subjects), spec.correlation),
        latent=latent_residuals(design),
    )


def _batches(
    subject: np.ndarray, times: np.ndarray, n_subjects: int, correlation: str
) -> tuple[ResidualBatch, ...]:
    order = np.lexsort((times, subject))
    counts = np.bincount(subject, minlength=n_subjects)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    batches = []
    for k in sorted(set(counts.tolist())):
        members = np.flatnonzero(counts == k)
        rows = np.stack([order[starts[s] : starts[s] + k] for s in members])
        t = times[rows]
        if correlation in ("ar1", "car1"):
            key = t - t[:, :1]  # lags depend on the differences only
        elif correlation == "unstructured":
            key = t
        else:
            key = np.zeros((len(members), 0))
        unique, pattern = np.unique(key, axis=0, return_inverse=True)
        pattern = np.asarray(pattern).reshape(-1)
        lags = np.zeros((len(unique), k, k))
        visits = np.zeros((len(unique), k), dtype=np.int64)
        if correlation in ("ar1", "car1"):
            lags = np.abs(unique[:, :, None] - unique[:, None, :])
        elif correlation == "unstructured":
            visits = unique.astype(np.int64)
        batches.append(ResidualBatch(rows, pattern.astype(np.int64), lags, visits))
    return tuple(batches)


def padded_batch(rd: ResidualDesign) -> ResidualBatch:
    """Every subject in one batch of the largest block size: a smaller block is padded with
    positions of residual 0 and covariance 1 (independent of the rest), which change
    neither the log-density nor its gradient. The compiled model uses it: one batched
    Cholesky for all the subjects instead of one per block size (the graph, and its
    compile time, stay those of one batch)."""
    k = rd.max_block
    rows, pattern, lags, visits, valid = [], [], [], [], []
    offset = 0
    for b in rd.batches:
        pad = k - b.k
        rows.append(np.pad(b.rows, ((0, 0), (0, pad)), constant_values=-1))
        pattern.append(b.pattern + offset)
        lags.append(np.pad(b.lags, ((0, 0), (0, pad), (0, pad))))
        visits.append(np.pad(b.visits, ((0, 0), (0, pad))))
        valid.append(np.arange(k)[None, :].repeat(b.n_patterns, 0) < b.k)
        offset += b.n_patterns
    return ResidualBatch(
        rows=np.concatenate(rows),
        pattern=np.concatenate(pattern),
        lags=np.concatenate(lags),
        visits=np.concatenate(visits),
        valid=np.concatenate(valid),
    )


def block_covariances(
    rd: ResidualDesign, batch: ResidualBatch, values: dict[str, np.ndarray]
) -> np.ndarray:
    """The batch's covariance per pattern for ``d`` parameter draws, shape (d, u, k, k).

    ``values``: by role, the draws of the structure's parameters, leading dim ``d``:
    ``sigma`` and ``phi`` (``ar1``, ``car1``), ``sigma`` and ``rho`` (``cs``), ``sd``
    (d, K) and ``cor`` (d, K, K) (``unstructured``). The NumPy twin of the compiled
    covariance (predictive draws, the pointwise log-likelihood).
    """
    k = batch.k
    if rd.correlation == "unstructured":
        sd, cor = np.asarray(values["sd"]), np.asarray(values["cor"])
        full = sd[:, :, None] * sd[:, None, :] * cor
        v = batch.visits
        return np.asarray(full[:, v[:, :, None], v[:, None, :]])
    s2 = np.asarray(values["sigma"], dtype=float) ** 2
    if rd.correlation == "cs":
        rho = np.asarray(values["rho"], dtype=float)[:, None, None, None]
        block = rho + (1.0 - rho) * np.eye(k)[None, None]
        return np.asarray(
            s2[:, None, None, None] * np.broadcast_to(block, (len(s2), batch.n_patterns, k, k))
        )
    phi = np.asarray(values["phi"], dtype=float)[:, None, None, None]
    with np.errstate(all="ignore"):
        return np.asarray(s2[:, None, None, None] * phi ** batch.lags[None])


def simulate_residuals(
    rd: ResidualDesign, values: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Residuals drawn from the blocks, one set per parameter draw: shape (d, n)."""
    d = len(next(iter(values.values())))
    out = np.zeros((d, len(rd.subject)))
    for batch in rd.batches:
        L = np.linalg.cholesky(block_covariances(rd, batch, values))  # d, u, k, k
        z = rng.standard_normal((d, *batch.rows.shape))  # d, m, k
        e = np.einsum("dmij,dmj->dmi", L[:, batch.pattern], z)
        out[:, batch.rows] = e
    return out


def residual_log_likelihood(
    rd: ResidualDesign, resid: np.ndarray, values: dict[str, np.ndarray]
) -> np.ndarray:
    """Pointwise log-likelihood of correlated residuals, shape (d, n): each row's density
    given the other rows of its subject, ``log p(e_i | e_-i)`` (Bürkner, Gabry & Vehtari
    2020, the leave-one-out form brms uses for non-factorised normal models): with
    ``P = R⁻¹``, ``g = P e``, it is ``−½ log 2π + ½ log P_ii − ½ g_i² / P_ii``. The rows of
    a subject do not sum to its joint density; use them for LOO, not as a total.

    ``resid``: (d, n) residuals; ``values``: as :func:`block_covariances`.
    """
    out = np.empty(resid.shape)
    for batch in rd.batches:
        P = np.linalg.inv(block_covariances(rd, batch, values))[:, batch.pattern]  # d,m,k,k
        E = resid[:, batch.rows]  # d, m, k
        g = np.einsum("dmij,dmj->dmi", P, E)
        p_ii = np.diagonal(P, axis1=-2, axis2=-1)
        out[:, batch.rows] = -0.5 * _LOG_2PI + 0.5 * np.log(p_ii) - 0.5 * g**2 / p_ii
    return out


_LOG_2PI = float(np.log(2.0 * np.pi))
