"""The rows a nonlinear model predicts for: each parameter's design, the group levels, the
time, subjects, covariates and doses of each row (the fitted rows, new data, or a grid).

New data are read like the fit's data: an event table is split by the same reader into
observations and doses (its ``DV`` may be missing), a dose column gives each subject its
dose; the parameters' formulas are evaluated with the transforms learnt on the fit data
(formulae's ``evaluate_new_data``), and levels are matched to the fitted ones (``-1``: not
seen). NumPy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.data import missing_column_problems
from mixedbayes.design.formulae import formula_variables
from mixedbayes.design.groups import group_factors
from mixedbayes.design.matrices import factor_labels as _factor_labels
from mixedbayes.errors import DataError
from mixedbayes.spec.formula import split_formula

if TYPE_CHECKING:
    from mixedbayes.design.nonlinear import NonlinearDesign, ParamDesign
    from mixedbayes.pk.dosing import DosingTable

__all__ = ["NonlinearRows", "aside_rows", "fitted_rows", "new_rows"]


@dataclass(frozen=True)
class NonlinearRows:
    """Design arrays of the rows to predict for.

    Attributes
    ----------
    X : dict of str to ndarray
        By parameter key, the fixed-effect design ``(n, p_key)``.
    group_index : dict of str to ndarray
        By grouping factor, each row's level (a position in the factor's fitted levels;
        ``-1`` for a level the model has not seen).
    group_Z : dict of str to ndarray
        By grouping factor, ``(n, k)`` the value of each of its terms at each row.
    group_labels : dict of str to list of str
        By grouping factor, each row's level label.
    new_levels : dict of str to tuple of str
        By grouping factor, the levels the model has not seen.
    index : pandas.Index
        The rows' labels.
    time : ndarray or None
    subjects : tuple of str
        Each row's subject (empty without a ``subject`` column).
    covariates : dict of str to ndarray
        The data columns the structural expression reads.
    dosing : DosingTable or None
        The doses of the rows' subjects.
    fitted : bool
        Whether these are exactly the fitted rows (an ODE is then solved on the model's
        own grid).
    """

    X: dict[str, np.ndarray]
    group_index: dict[str, np.ndarray]
    group_Z: dict[str, np.ndarray]
    group_labels: dict[str, list[str]]
    new_levels: dict[str, tuple[str, ...]]
    index: pd.Index
    time: np.ndarray | None
    subjects: tuple[str, ...]
    covariates: dict[str, np.ndarray]
    dosing: DosingTable | None
    fitted: bool = False

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.index)

    def take(self, rows: np.ndarray) -> NonlinearRows:
        """The rows at positions ``rows`` (repeats allowed), labelled ``0..len(rows)-1``."""
        rows = np.asarray(rows, dtype=np.int64)
        labels = {g: [lab[i] for i in rows] for g, lab in self.group_labels.items()}
        return replace(
            self,
            X={k: v[rows] for k, v in self.X.items()},
            group_index={g: v[rows] for g, v in self.group_index.items()},
            group_Z={g: v[rows] for g, v in self.group_Z.items()},
            group_labels=labels,
            index=pd.RangeIndex(rows.size),
            time=None if self.time is None else self.time[rows],
            subjects=tuple(self.subjects[i] for i in rows) if self.subjects else (),
            covariates={c: v[rows] for c, v in self.covariates.items()},
            fitted=False,
        )

    def along(self, axis: str, values: np.ndarray, time: str | None) -> NonlinearRows:
        """The rows with the column ``axis`` set to ``values`` (the time column when it is
        ``time``, and the covariate of that name); the parameters' designs are unchanged."""
        values = np.asarray(values, dtype=float)
        covariates = dict(self.covariates)
        if axis in covariates:
            covariates[axis] = values
        return replace(
            self,
            time=values if axis == time else self.time,
            covariates=covariates,
            fitted=False,
        )


def fitted_rows(design: NonlinearDesign) -> NonlinearRows:
    """The rows the model was fitted to."""
    return NonlinearRows(
        X={p.key: p.X for p in design.params},
        group_index={g.name: g.index for g in design.groups},
        group_Z={g.name: g.Z for g in design.groups},
        group_labels={g.name: [g.levels[i] for i in g.index] for g in design.groups},
        new_levels={},
        index=design.obs_index,
        time=design.time,
        subjects=design.subjects,
        covariates=dict(design.covariates),
        dosing=design.dosing,
        fitted=True,
    )


def _observations(
    design: NonlinearDesign, data: pd.DataFrame
) -> tuple[pd.DataFrame, DosingTable | None]:
    """The observation rows of ``data`` and their doses, read as the fit's data were; a
    ``DataError`` names the columns they lack."""
    from mixedbayes.pk.dosing import from_dose_column, from_events

    spec = design.spec
    needed, roles = _needed_columns(design)
    frame = data.copy()
    table = None
    if spec.dosing is not None and spec.dosing.events is not None:
        cols = {k.lower(): v for k, v in spec.dosing.events.items()}
        dv = cols.get("dv", "DV")
        # predictions need no observed values: a missing DV is no error here
        frame[dv] = frame[dv].fillna(0.0) if dv in frame.columns else 0.0
        frame, table = from_events(frame, **cols)
    elif spec.dosing is not None and spec.dosing.dose is not None:
        needed.add(spec.dosing.dose)
        roles[spec.dosing.dose] = "'dosing.dose' names"
    DataError.collect(missing_column_problems(needed, frame, roles))
    if spec.dosing is not None and spec.dosing.dose is not None and spec.subject is not None:
        table = from_dose_column(
            frame, id=spec.subject, dose=spec.dosing.dose, dose_time=spec.dosing.dose_time
        )
    return frame, table


def _needed_columns(design: NonlinearDesign) -> tuple[set[str], dict[str, str]]:
    spec = design.spec
    needed = set(design.covariates)
    for rhs in spec.parameters.values():
        _, covs, groups = formula_variables(split_formula(f"{spec.response} ~ {rhs}"))
        needed |= covs | groups
    roles = {}
    for col, role in ((spec.time, "'time' names"), (spec.subject, "'subject' names")):
        if col:
            needed.add(col)
            roles[col] = role
    return needed, roles


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = frame.index[~np.isfinite(values)]
    if len(bad):
        raise DataError(
            f"newdata has missing or non-numeric values in rows {list(bad)[:8]}.",
            where=f"column '{column}'",
            hint="give every row to predict for a number there (or drop the rows).",
        )
    return values


def _param_group_Z(p: ParamDesign, design: NonlinearDesign, frame: pd.DataFrame) -> dict:
    """By grouping factor, the values of parameter ``p``'s terms of it at the new rows."""
    parts = split_formula(f"{design.spec.response} ~ {design.spec.parameters[p.key]}")
    out = {}
    for f in group_factors(p.matrices.group, parts.bars, design.n):
        cols = []
        for t in f.formulae_terms:
            x = np.asarray(p.matrices.group.terms[t].expr.eval_new_data(frame), dtype=float)
            cols.append(x[:, None] if x.ndim == 1 else x)
        out[f.name] = np.column_stack(cols)
    return out


def new_rows(design: NonlinearDesign, data: pd.DataFrame) -> NonlinearRows:
    """Design arrays of new rows (``data`` is not modified).

    Raises
    ------
    DataError
        Naming the columns the rows lack (the parameters' covariates, the grouping
        factors, time, subject, the expression's covariates, the dose column or the event
        table's columns) or holding values that are not numbers.
    """
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise DataError("newdata must be a non-empty DataFrame.", where="newdata")
    frame, dosing = _observations(design, data)
    return _rows(design, frame, dosing)


def aside_rows(design: NonlinearDesign, frame: pd.DataFrame) -> NonlinearRows:
    """Design arrays of observation rows of the fit's data kept out of the likelihood
    (``missing: {response: impute}``: ``design.imputation.response_frame``), with the fit's
    doses (an event table's dose records are never among these rows)."""
    return _rows(design, frame, design.dosing)


def _rows(design: NonlinearDesign, frame: pd.DataFrame, dosing: Any) -> NonlinearRows:
    """Design arrays of the observation rows ``frame`` with the doses ``dosing``."""
    spec = design.spec
    n = len(frame)
    X: dict[str, np.ndarray] = {}
    per_group: dict[str, np.ndarray] = {g.name: np.zeros((n, len(g.terms))) for g in design.groups}
    for p in design.params:
        common: Any = p.matrices.common
        X[p.key] = (
            np.zeros((n, 0))
            if common is None
            else np.asarray(common.evaluate_new_data(frame).design_matrix, dtype=float)
        )
        for name, Z in _param_group_Z(p, design, frame).items():
            per_group[name][:, list(design.group_columns[(name, p.key)])] = Z
    index: dict[str, np.ndarray] = {}
    labels: dict[str, list[str]] = {}
    new: dict[str, tuple[str, ...]] = {}
    for g in design.groups:
        labels[g.name] = _factor_labels(frame, g.name)
        lookup = {lv: i for i, lv in enumerate(g.levels)}
        index[g.name] = np.array([lookup.get(lab, -1) for lab in labels[g.name]], dtype=np.int64)
        unseen = np.flatnonzero(index[g.name] < 0)
        new[g.name] = tuple(sorted({labels[g.name][i] for i in unseen}))
    return NonlinearRows(
        X=X,
        group_index=index,
        group_Z=per_group,
        group_labels=labels,
        new_levels=new,
        index=frame.index,
        time=_numeric(frame, spec.time) if spec.time else None,
        subjects=tuple(str(s) for s in frame[spec.subject]) if spec.subject else (),
        covariates={c: _numeric(frame, c) for c in design.covariates},
        dosing=dosing,
    )
