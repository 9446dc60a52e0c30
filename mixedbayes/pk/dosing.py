"""Dosing events for pharmacokinetic models.

A :class:`DosingTable` holds every dose (:class:`DoseRecord`) of every subject. It is read
from a NONMEM-style event table (:func:`from_events`: EVID 0 rows are observations, EVID 1
rows are doses, with optional CMT, RATE, ADDL and II columns) or from single-dose data where
every row of a subject carries that subject's dose (:func:`from_dose_column`, like R's
``Theoph``). :func:`dose_matrices` lays the doses out against the observation times, one row
per observation and one column per dose, which is what the closed-form models of
:mod:`mixedbayes.pk.library` superpose.

Subject IDs are always compared as strings (``str(value)``), so ``1`` in an ``int`` column
and ``"1"`` in an object column name the same subject.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError, Problem, format_rows

__all__ = [
    "DoseMatrices",
    "DoseRecord",
    "DosingTable",
    "dose_matrices",
    "from_dose_column",
    "from_events",
]

#: Strings read as "missing" in numeric event-table columns (NONMEM writes ``.``).
_MISSING_STRINGS = frozenset({".", ""})


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class DoseRecord:
    """One dose given to one subject.

    Parameters
    ----------
    subject : str
        Subject ID (converted with ``str``).
    time : float
        Time the dose starts.
    amount : float
        Dose amount (> 0).
    rate : float, default 0.0
        0 for a bolus (or an oral dose); > 0 for a zero-order infusion of duration
        ``amount / rate``.
    cmt : int, default 1
        Compartment the dose enters (NONMEM's CMT).

    Raises
    ------
    DataError
        If the time is not finite, the amount is not a finite positive number, the rate is
        negative or not finite, or the compartment is < 1.
    """

    subject: str
    time: float
    amount: float
    rate: float = 0.0
    cmt: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", str(self.subject))
        object.__setattr__(self, "time", float(self.time))
        object.__setattr__(self, "amount", float(self.amount))
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "cmt", int(self.cmt))
        where = f"dose of subject {self.subject!r} at time {self.time:g}"
        checks = [
            (math.isfinite(self.time), "the dose time is not finite.", "give a finite time."),
            (
                math.isfinite(self.amount) and self.amount > 0,
                f"the dose amount {self.amount:g} is not a positive number.",
                "give an amount > 0.",
            ),
            (
                math.isfinite(self.rate) and self.rate >= 0,
                f"the infusion rate {self.rate:g} is negative or not finite.",
                "give 0 for a bolus or the infusion rate (amount per time unit).",
            ),
            (self.cmt >= 1, f"the compartment {self.cmt} is < 1.", "number them 1, 2, …"),
        ]
        problems = [Problem(message, where, hint) for ok, message, hint in checks if not ok]
        DataError.collect(problems)

    @property
    def duration(self) -> float:
        """Infusion length ``amount / rate`` (0 for a bolus)."""
        return self.amount / self.rate if self.rate > 0 else 0.0

    @property
    def is_infusion(self) -> bool:
        """Whether the dose is a zero-order infusion (``rate > 0``)."""
        return self.rate > 0


@dataclass(frozen=True)
class DosingTable:
    """Every dose of every subject.

    Parameters
    ----------
    records : tuple of DoseRecord
        The doses, in any order.
    """

    records: tuple[DoseRecord, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def subjects(self) -> tuple[str, ...]:
        """The IDs of the subjects with a dose, in order of first appearance."""
        return tuple(dict.fromkeys(r.subject for r in self.records))

    def for_subject(self, subject: object) -> list[DoseRecord]:
        """The doses of one subject, sorted by time (empty when it has none).

        Parameters
        ----------
        subject : object
            Subject ID (compared as ``str(subject)``).

        Returns
        -------
        list of DoseRecord
        """
        key = str(subject)
        return sorted((r for r in self.records if r.subject == key), key=lambda r: r.time)

    def to_frame(self) -> pd.DataFrame:
        """The doses as a DataFrame (subject, time, amount, rate, duration, cmt)."""
        return pd.DataFrame(
            {
                "subject": [r.subject for r in self.records],
                "time": [r.time for r in self.records],
                "amount": [r.amount for r in self.records],
                "rate": [r.rate for r in self.records],
                "duration": [r.duration for r in self.records],
                "cmt": [r.cmt for r in self.records],
            }
        )


# --------------------------------------------------------------------------- helpers
def _fmt(value: Any) -> str:
    """A value for a message: numbers compactly (``-1``, ``0.5``), anything else by repr."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "missing" if math.isnan(value) else f"{float(value):g}"
    return repr(value)


def _listing(
    index: pd.Index, mask: np.ndarray, column: str | None = None, values: Any = None
) -> str:
    """Row labels where ``mask`` holds, each with its value of ``column`` when given."""
    rows = list(index[mask])
    if column is None or values is None:
        return format_rows(rows)
    vals = np.asarray(values, dtype=object)[mask]
    return format_rows([f"{r} ({column}={_fmt(v)})" for r, v in zip(rows, vals, strict=True)])


def _blank(raw: pd.Series) -> np.ndarray:
    """Where a column holds a missing-value string (NONMEM's ``.`` or an empty string)."""
    return raw.map(lambda v: isinstance(v, str) and v.strip() in _MISSING_STRINGS).to_numpy(
        dtype=bool
    )


def _absent(df: pd.DataFrame, column: str) -> np.ndarray:
    """Where a column's value is missing (NaN, None, ``.`` or an empty string)."""
    return df[column].isna().to_numpy(dtype=bool) | _blank(df[column])


def _numeric(
    df: pd.DataFrame, column: str, problems: list[Problem], what: str = "numbers"
) -> np.ndarray:
    """Column as float (NaN where missing), with a problem naming the non-numeric rows."""
    raw = df[column]
    blank = _blank(raw)
    values = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=float)
    bad = raw.notna().to_numpy(dtype=bool) & ~blank & np.isnan(values)
    if bad.any():
        problems.append(
            Problem(
                f"non-numeric values at rows {_listing(df.index, bad, column, raw.to_numpy())}.",
                f"column {column!r}",
                f"the column must hold {what}; recode or drop these rows.",
            )
        )
    return values


def _flag(
    problems: list[Problem],
    index: pd.Index,
    mask: np.ndarray,
    what: str,
    column: str,
    hint: str,
    values: Any = None,
) -> None:
    """Add a problem naming the rows where ``mask`` holds (with their values), if any."""
    if mask.any():
        rows = _listing(index, mask, column, values)
        problems.append(Problem(f"{what} at rows {rows}.", f"column {column!r}", hint))


def _optional(df: pd.DataFrame, column: str, default: float, problems: list[Problem]) -> np.ndarray:
    """An optional column as float, missing column or missing values -> ``default``."""
    if column not in df.columns:
        return np.full(len(df), default, dtype=float)
    values = _numeric(df, column, problems)
    return np.where(np.isnan(values), default, values)


# --------------------------------------------------------------------------- readers
def from_events(
    df: pd.DataFrame,
    *,
    id: str = "ID",
    time: str = "TIME",
    amt: str = "AMT",
    evid: str = "EVID",
    cmt: str = "CMT",
    rate: str = "RATE",
    addl: str = "ADDL",
    ii: str = "II",
    dv: str = "DV",
) -> tuple[pd.DataFrame, DosingTable]:
    """Split a NONMEM-style event table into observations and doses.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per event. EVID 0 rows are observations (DV is the measured concentration),
        EVID 1 rows are doses (AMT is the amount). ``df`` is never modified.
    id, time, amt, evid, dv : str
        Names of the required columns (subject ID, time, dose amount, event ID, observation).
    cmt, rate, addl, ii : str
        Names of the optional columns: dose compartment (default 1), infusion rate (default 0,
        a bolus), number of additional doses (default 0) and the interval between them
        (default 0). A missing column, or a missing value (NaN or NONMEM's ``.``), takes the
        default. ADDL = n with II = h adds n doses at ``TIME + h, TIME + 2h, …, TIME + n h``.

    Returns
    -------
    observations : pandas.DataFrame
        The EVID 0 rows, a copy with the original index and all columns.
    doses : DosingTable
        Every dose, with the ADDL doses expanded.

    Raises
    ------
    DataError
        One error listing every problem, each naming the rows and values at fault and the
        fix: missing required columns, non-numeric values, missing or negative times, EVID
        values other than 0 and 1, non-positive or missing doses (AMT on EVID 1 rows),
        negative RATE, negative or non-integer ADDL, ADDL > 0 without a positive II, bad CMT,
        observations of an ID with no dose, missing DV on observation rows.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(
            f"expected a pandas DataFrame of events, got {type(df).__name__}.",
            where="events",
            hint="pass the event table as a pandas.DataFrame.",
        )
    required = {"ID": id, "TIME": time, "AMT": amt, "EVID": evid, "DV": dv}
    missing = [
        f"{col!r}" + ("" if col == role else f" ({role})")
        for role, col in required.items()
        if col not in df.columns
    ]
    if missing:
        raise DataError(
            f"the event table has no column {', '.join(missing)}.",
            where="columns",
            hint=(
                f"add the column(s), or name them (e.g. from_events(df, id='Subject', "
                f"dv='conc')); the table has columns {[str(c) for c in df.columns]}."
            ),
        )

    problems: list[Problem] = []
    index = df.index

    def flag(mask: np.ndarray, what: str, column: str, hint: str, values: Any = None) -> None:
        _flag(problems, index, mask, what, column, hint, values)

    ids_raw = df[id]
    ids = np.array([str(v) for v in ids_raw], dtype=object)
    no_id = ids_raw.isna().to_numpy(dtype=bool)
    flag(no_id, "missing subject ID", id, "give every event a subject ID.")
    t = _numeric(df, time, problems)
    a = _numeric(df, amt, problems)
    e = _numeric(df, evid, problems, "event IDs (0 = observation, 1 = dose)")
    y = _numeric(df, dv, problems)
    r = _optional(df, rate, 0.0, problems)
    n_addl = _optional(df, addl, 0.0, problems)
    interval = _optional(df, ii, 0.0, problems)
    compartment = _optional(df, cmt, 1.0, problems)

    no_time = _absent(df, time) | np.isinf(t)
    flag(no_time, "missing or non-finite TIME", time, "give every event a finite time.", t)
    flag(
        np.isfinite(t) & (t < 0),
        "negative times",
        time,
        "times are measured from 0 (e.g. the first dose); shift them to be >= 0.",
        t,
    )
    flag(_absent(df, evid), "missing EVID", evid, "give 0 for an observation or 1 for a dose.")
    unknown = ~np.isnan(e) & ~np.isin(e, (0.0, 1.0))
    flag(
        unknown,
        f"unknown EVID value(s) {', '.join(_fmt(v) for v in sorted(set(e[unknown])))} "
        "(only 0 = observation and 1 = dose are supported)",
        evid,
        "NONMEM's EVID 2 (other event), 3 (reset) and 4 (reset and dose) are not supported: "
        "drop these rows or recode them as 0 or 1.",
        e,
    )
    is_dose = e == 1.0
    is_obs = e == 0.0
    flag(
        is_dose & ~(np.isfinite(a) & (a > 0)),
        "non-positive or missing doses (AMT <= 0) on dose rows (EVID 1)",
        amt,
        "give every dose an amount > 0, or mark the row as an observation (EVID 0).",
        a,
    )
    flag(
        is_dose & ~(np.isfinite(r) & (r >= 0)),
        "negative or non-finite RATE on dose rows",
        rate,
        "give 0 for a bolus or the infusion rate (amount per time unit); NONMEM's RATE -1/-2 "
        "(modelled rate or duration) are not supported.",
        r,
    )
    bad_addl = is_dose & ~(np.isfinite(n_addl) & (n_addl >= 0) & (n_addl == np.round(n_addl)))
    flag(bad_addl, "ADDL is not a whole number >= 0", addl, "ADDL counts extra doses.", n_addl)
    bad_ii = is_dose & ~bad_addl & (n_addl > 0) & ~(np.isfinite(interval) & (interval > 0))
    if bad_ii.any():
        pairs = [
            f"{row} (ADDL={_fmt(k)}, II={_fmt(h)})"
            for row, k, h in zip(index[bad_ii], n_addl[bad_ii], interval[bad_ii], strict=True)
        ]
        problems.append(
            Problem(
                f"ADDL > 0 with II <= 0 at rows {format_rows(pairs)}.",
                f"columns {addl!r}, {ii!r}",
                "give the interval between the additional doses in II (> 0), or set ADDL 0.",
            )
        )
    whole = np.isfinite(compartment) & (compartment == np.round(compartment))
    flag(
        is_dose & ~(whole & (compartment >= 1)),
        "CMT is not a whole number >= 1",
        cmt,
        "number the dose compartments 1, 2, … (1 = the default dosing compartment).",
        compartment,
    )
    flag(
        is_obs & np.isnan(y),
        "missing DV on observation rows (EVID 0)",
        dv,
        "drop the observation rows without a measurement or fill them in.",
    )
    orphan = is_obs & ~no_id & ~np.isin(ids, list(set(ids[is_dose & ~no_id])))
    orphan_ids = format_rows([repr(i) for i in dict.fromkeys(ids[orphan])])
    flag(
        orphan,
        f"observations of an unknown ID (no dose record, EVID 1): IDs {orphan_ids}",
        id,
        "add the dose rows of these subjects, or drop their observations; IDs are compared "
        "as strings.",
    )
    DataError.collect(problems)

    records: list[DoseRecord] = []
    for pos in np.flatnonzero(is_dose):
        for k in range(int(n_addl[pos]) + 1):
            records.append(
                DoseRecord(
                    subject=str(ids[pos]),
                    time=float(t[pos] + k * interval[pos]),
                    amount=float(a[pos]),
                    rate=float(r[pos]),
                    cmt=int(compartment[pos]),
                )
            )
    observations = df.loc[is_obs].copy()
    return observations, DosingTable(tuple(records))


def from_dose_column(
    df: pd.DataFrame, *, id: str, dose: str, dose_time: float = 0.0
) -> DosingTable:
    """One bolus (or oral) dose per subject, read from a column repeating the dose.

    For single-dose data such as R's ``Theoph``, where every row of a subject carries that
    subject's dose.

    Parameters
    ----------
    df : pandas.DataFrame
        The data; not modified.
    id : str
        Subject ID column (IDs are compared as strings).
    dose : str
        Dose column: the same positive amount on every row of a subject.
    dose_time : float, default 0.0
        Time of every subject's dose.

    Returns
    -------
    DosingTable
        One record per subject (in order of first appearance), at ``dose_time``, with rate 0
        and compartment 1.

    Raises
    ------
    DataError
        Naming the rows and values, if a column is missing, the dose is missing,
        non-numeric or <= 0, or it varies within a subject; or if ``dose_time`` is not
        finite.
    """
    missing = [c for c in (id, dose) if c not in df.columns]
    if missing:
        raise DataError(
            f"the data have no column {', '.join(repr(c) for c in missing)}.",
            where="columns",
            hint=f"name existing columns; the data have {[str(c) for c in df.columns]}.",
        )
    if not math.isfinite(float(dose_time)):
        raise DataError(
            f"dose_time {dose_time!r} is not finite.", where="dose_time", hint="give a number."
        )
    problems: list[Problem] = []
    index = df.index
    ids = np.array([str(v) for v in df[id]], dtype=object)
    no_id = df[id].isna().to_numpy(dtype=bool)
    _flag(problems, index, no_id, "missing subject ID", id, "give every row a subject ID.")
    amount = _numeric(df, dose, problems)
    hint = "every row of a subject must carry that subject's dose, a positive amount."
    _flag(problems, index, _absent(df, dose), "missing dose", dose, hint)
    bad = (np.isfinite(amount) & (amount <= 0)) | np.isinf(amount)
    _flag(problems, index, bad, "non-positive doses (<= 0)", dose, hint, amount)
    subjects = list(dict.fromkeys(ids[~no_id]))
    amounts: dict[str, float] = {}
    for subject in subjects:
        rows = (ids == subject) & ~no_id
        values = amount[rows & np.isfinite(amount)]
        distinct = sorted(set(values.tolist()))
        if len(distinct) > 1:
            problems.append(
                Problem(
                    f"the dose varies within subject {subject!r}: values "
                    f"{', '.join(_fmt(v) for v in distinct)} at rows "
                    f"{_listing(index, rows, dose, amount)}.",
                    f"column {dose!r}",
                    "single-dose data carry one dose per subject; for several doses per "
                    "subject use from_events with an event table.",
                )
            )
        elif distinct:
            amounts[subject] = distinct[0]
    DataError.collect(problems)
    records = tuple(
        DoseRecord(subject=s, time=float(dose_time), amount=amounts[s])
        for s in subjects
        if s in amounts
    )
    return DosingTable(records)


# --------------------------------------------------------------------------- matrices
@dataclass(frozen=True)
class DoseMatrices:
    """Doses laid out against observation times: one row per observation, one column per dose.

    All arrays have shape ``(n_obs, D)``, ``D`` the largest number of doses of an observed
    subject (at least 1); a subject's doses fill its columns in time order and the rest is
    padding.

    Attributes
    ----------
    dt : numpy.ndarray
        Observation time minus dose time where the dose has started (``amount > 0``), else 0.
    amount : numpy.ndarray
        The dose amount where the dose started at or before the observation (``dt >= 0``), 0
        for later doses and for padding.
    duration : numpy.ndarray
        Infusion length ``amount / rate`` (0 for a bolus or oral dose, and for padding).
    cmt : numpy.ndarray
        Dose compartment (integers; 0 for padding).
    """

    dt: np.ndarray
    amount: np.ndarray
    duration: np.ndarray
    cmt: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, D)``."""
        n, d = self.dt.shape
        return int(n), int(d)


def dose_matrices(
    table: DosingTable, subjects: Sequence[Hashable], times: np.ndarray | Sequence[float]
) -> DoseMatrices:
    """Lay out each observation's doses for superposition.

    Parameters
    ----------
    table : DosingTable
        The doses.
    subjects : sequence
        Subject ID of each observation (compared as ``str``).
    times : array_like
        Time of each observation, same length as ``subjects``.

    Returns
    -------
    DoseMatrices
        One row per observation; a subject with no doses gets all-zero rows.

    Raises
    ------
    DataError
        If ``subjects`` and ``times`` differ in length or a time is not finite.
    """
    subj = np.array([str(s) for s in subjects], dtype=object)
    t = np.asarray(times, dtype=float).reshape(-1)
    if subj.size != t.size:
        raise DataError(
            f"{subj.size} subject IDs but {t.size} observation times.",
            where="dose_matrices",
            hint="give one subject ID per observation time.",
        )
    bad = ~np.isfinite(t)
    if bad.any():
        raise DataError(
            f"missing or non-finite observation times at positions "
            f"{format_rows(np.flatnonzero(bad).tolist())}.",
            where="dose_matrices",
            hint="drop the observations without a time.",
        )
    unique = list(dict.fromkeys(subj.tolist()))
    per_subject = {s: table.for_subject(s) for s in unique}
    width = max([1, *(len(v) for v in per_subject.values())])
    n = t.size
    start = np.zeros((n, width))
    amount = np.zeros((n, width))
    duration = np.zeros((n, width))
    cmt = np.zeros((n, width), dtype=int)
    present = np.zeros((n, width), dtype=bool)
    for subject, recs in per_subject.items():
        rows = np.flatnonzero(subj == subject)
        for j, rec in enumerate(recs):
            start[rows, j] = rec.time
            amount[rows, j] = rec.amount
            duration[rows, j] = rec.duration
            cmt[rows, j] = rec.cmt
            present[rows, j] = True
    dt = t[:, None] - start
    active = present & (dt >= 0)
    return DoseMatrices(
        dt=np.where(active, dt, 0.0),
        amount=np.where(active, amount, 0.0),
        duration=duration,
        cmt=cmt,
    )
