"""Design of the ``joint`` kind: each longitudinal outcome's regression design, the survival
rows, and what the hazard reads of the outcomes at the event times and quadrature nodes.

An association of type ``value`` (``slope``, ``area``) is the outcome's linear predictor
(its time derivative, its integral from 0) at a time t. The predictor is linear in the
fixed effects and the group effects, so at a set of times it is ``X_t·b + Σ Z_t·r``: the
design evaluates the outcome's formula at new rows — the subject's covariates at their last
visit before t (the first visit before it), the time column set to t — and keeps ``X_t``
and ``Z_t``. ``slope`` uses a central difference of those rows, ``area`` a Gauss–Legendre
rule over [0, t]. ``shared`` reads the subject's random effects of the outcome directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.groups import GroupFactor, GroupStructure, RowMap, frozen, merge_factors
from mixedbayes.design.joint_tables import (
    column_problems,
    merged_parametrization,
    outcome_specs,
    split_tables,
    subject_problems,
    survival_frame,
    visit_problems,
)
from mixedbayes.errors import DataError, SpecError, format_rows

if TYPE_CHECKING:
    from mixedbayes.design.data import DataReport
    from mixedbayes.design.design import Design
    from mixedbayes.families import Family, Link
    from mixedbayes.spec.joint import JointSpec
    from mixedbayes.survival import Baseline

__all__ = [
    "ASSOCIATION_DIM",
    "EVENT",
    "Association",
    "JointDesign",
    "Reading",
    "SurvivalRows",
    "make_joint_design",
    "rows_at",
]

#: The part (``nlpar``, names) of the hazard: ``b_event``, the baseline's parameters.
EVENT = "event"

#: Dimension of the association coefficients ``alpha``.
ASSOCIATION_DIM = "association"


@dataclass(frozen=True)
class SurvivalRows:
    """The survival table as the hazard reads it (one row per subject, or per ``(start,
    stop]`` interval).

    Attributes
    ----------
    index : pandas.Index
        The rows' labels in the survival table.
    subject : ndarray of str
    level : ndarray of int
        Each row's subject as a level of the subject factor.
    start, stop, event : ndarray
        Interval (entry time; 0 without left truncation), its end and the event indicator.
    X : ndarray, shape (rows, p)
        The hazard's covariates (no intercept: the baseline holds the level).
    terms : tuple of str
    nodes, weights : ndarray, shape (rows, q)
        Gauss–Legendre nodes and weights of each row's interval (split at the baseline's
        breakpoints).
    """

    index: pd.Index
    subject: np.ndarray
    level: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray
    X: np.ndarray
    terms: tuple[str, ...]
    nodes: np.ndarray
    weights: np.ndarray

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.stop.shape[0])


@dataclass(frozen=True)
class Reading:
    """What an association reads of its outcome at a set of times: ``X·b_<outcome>`` plus,
    per grouping factor, the effects a :class:`RowMap` reads (``Z·r[index, columns]``)."""

    X: np.ndarray
    maps: tuple[tuple[str, RowMap], ...]


@dataclass(frozen=True)
class Association:
    """One term of the hazard's linear predictor read from a longitudinal outcome.

    Attributes
    ----------
    outcome, type : str
    labels : tuple of str
        The ``association`` coordinate of its coefficients (``log_bili:value``; one per
        random-effect term for ``shared``: ``log_bili:shared:Intercept``).
    at_stop, at_nodes : Reading or None
        At each row's stop time and at its quadrature nodes (row-major, rows × q); None for
        ``shared``.
    columns : tuple of int
        For ``shared``: the subject factor's terms of the outcome.
    """

    outcome: str
    type: str
    labels: tuple[str, ...]
    at_stop: Reading | None = None
    at_nodes: Reading | None = None
    columns: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class JointDesign:
    """A joint spec applied to its two tables.

    The :class:`~mixedbayes.design.base.ModelDesign` attributes that name one response
    (``family``, ``response``, ``y``, ``data``) are the first outcome's; ``outcomes`` has
    them all.
    """

    spec: JointSpec
    outcomes: dict[str, Design]
    structures: tuple[GroupStructure, ...]
    rows: dict[tuple[str, str], RowMap]
    subject_factor: str
    survival: SurvivalRows
    baseline: Baseline
    associations: tuple[Association, ...]
    source_tables: dict[str, pd.DataFrame] = field(repr=False)
    hazard_matrices: Any = field(default=None, repr=False)

    def reading_at(self, association: Association, times: np.ndarray, who: np.ndarray) -> Reading:
        """What ``association`` reads of its outcome at ``times`` of subjects ``who`` (the
        spec's lag applied), as the design read it at the stop times and nodes."""
        if association.at_stop is None:
            raise ValueError(f"the association {association.labels} reads no rows")
        position = {s.name: {lv: i for i, lv in enumerate(s.levels)} for s in self.structures}
        return _association_reading(
            self.spec,
            self.source_tables["longitudinal"],
            self.outcomes[association.outcome],
            association,
            position,
            self.rows,
            np.asarray(times, dtype=float),
            np.asarray(who),
            float(np.max(self.survival.stop)),
        )

    def hazard_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """The hazard's covariate rows (``survival.terms``) of new rows ``frame``."""
        common, coding = self.hazard_matrices
        if common is None:
            return np.zeros((len(frame), 0))
        new = coding.new_data(frame.copy())
        X = np.asarray(common.evaluate_new_data(new).design_matrix, dtype=float)
        from mixedbayes.design.formulae import common_names

        names = common_names(common)
        return X[:, [names.index(t) for t in self.survival.terms]]

    @property
    def first(self) -> Design:
        """The first outcome's design."""
        return next(iter(self.outcomes.values()))

    @property
    def family(self) -> Family:
        """The first outcome's family."""
        return self.first.family

    @property
    def link(self) -> Link:
        """The first outcome's link."""
        return self.first.link

    @property
    def response(self) -> str:
        """The first outcome's response."""
        return self.first.response

    @property
    def y(self) -> np.ndarray:
        """The first outcome's response values."""
        return self.first.y

    @property
    def data(self) -> pd.DataFrame:
        """The first outcome's rows."""
        return self.first.data

    @property
    def source(self) -> pd.DataFrame:
        """The longitudinal table as given (``source_tables`` holds both)."""
        return self.source_tables["longitudinal"]

    @property
    def report(self) -> DataReport:
        """Rows in, used and dropped of the first outcome (each outcome's in ``outcomes``)."""
        return self.first.report

    @property
    def n(self) -> int:
        """Longitudinal rows used, over all outcomes."""
        return sum(d.n for d in self.outcomes.values())

    @property
    def obs_index(self) -> pd.Index:
        """The first outcome's row labels."""
        return self.first.obs_index

    @property
    def groups(self) -> tuple[GroupFactor, ...]:
        """The merged grouping factors, each read once per level (their row maps are in
        ``rows``: each outcome reads them over its own rows)."""
        out = []
        for s in self.structures:
            k = len(s.terms)
            rows = RowMap(
                frozen(np.arange(s.n_levels)), frozen(np.ones((s.n_levels, k))), tuple(range(k))
            )
            out.append(GroupFactor(s, rows))
        return tuple(out)

    def group(self, name: str) -> GroupFactor:
        """The merged grouping factor ``name``."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no grouping factor {name!r}; factors: {[s.name for s in self.structures]}")

    def structure(self, name: str) -> GroupStructure:
        """The merged structure of factor ``name``."""
        return next(s for s in self.structures if s.name == name)

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of every dimension of the model (see the compile stage)."""
        from mixedbayes.naming import Names

        coords: dict[str, list[Any]] = {}
        for name, d in self.outcomes.items():
            names = Names(name)
            coords[names.obs_dim] = list(d.obs_index)
            coords[names.term_dim] = list(d.fixed_terms)
            coords[names.slope_dim] = [t for t in d.fixed_terms if t != "Intercept"]
        for s in self.structures:
            coords.update(s.coords())
            if s.correlated:
                coords[Names.cor_dim(s.name)] = list(s.terms)
        event = Names(EVENT)
        coords[event.obs_dim] = list(self.survival.index)
        if self.survival.terms:
            coords[event.term_dim] = list(self.survival.terms)
        coords[ASSOCIATION_DIM] = [label for a in self.associations for label in a.labels]
        for p in self.baseline.params():
            if p.size and p.dim:
                coords[p.dim] = list(p.labels)
        return coords


# -- what the hazard reads at given times -----------------------------------------------------


def rows_at(
    long: pd.DataFrame, spec: JointSpec, subject: np.ndarray, times: np.ndarray
) -> pd.DataFrame:
    """For each (subject, time) a row of the subject's covariates at their last visit at or
    before that time (their first visit for earlier times), with the time column set."""
    frame = long.reset_index(drop=True)
    t = frame[spec.time].to_numpy(dtype=float)
    who = frame[spec.subject].astype(str).to_numpy()
    order = np.lexsort((t, who))
    who_sorted, t_sorted = who[order], t[order]
    pick = np.empty(len(subject), dtype=np.int64)
    for s in np.unique(subject):
        lo, hi = np.searchsorted(who_sorted, s, "left"), np.searchsorted(who_sorted, s, "right")
        rows = np.flatnonzero(subject == s)
        k = np.searchsorted(t_sorted[lo:hi], times[rows], side="right") - 1
        pick[rows] = order[lo + np.clip(k, 0, hi - lo - 1)]
    out = frame.iloc[pick].reset_index(drop=True)
    out[spec.time] = times
    return out


def _read(
    design: Design,
    name: str,
    frame: pd.DataFrame,
    position: dict[str, dict[str, int]],
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Fixed rows and, per factor, (merged level index, Z) of ``design`` at ``frame``."""
    nd = design.new_data(frame)
    maps = {}
    for g in design.groups:
        idx = nd.group_index[g.name]
        if (idx < 0).any():
            raise DataError(
                f"outcome {name!r}: the levels {list(nd.new_levels[g.name])[:5]} of {g.name!r} "
                "have no measurements of this outcome.",
                where=f"longitudinal.{name}",
                hint="every subject needs at least one measurement of every outcome.",
            )
        merged = np.array([position[g.name][g.levels[i]] for i in idx], dtype=np.int64)
        maps[g.name] = (merged, nd.group_Z[g.name])
    return nd.X, maps


def _reading(
    X: np.ndarray,
    maps: dict[str, tuple[np.ndarray, np.ndarray]],
    name: str,
    rows: dict[tuple[str, str], RowMap],
) -> Reading:
    return Reading(
        frozen(X, float),
        tuple(
            (g, RowMap(frozen(ix), frozen(Z, float), rows[(name, g)].columns))
            for g, (ix, Z) in maps.items()
        ),
    )


def _association_reading(
    spec: JointSpec,
    long: pd.DataFrame,
    d: Design,
    a: Association,
    position: dict[str, dict[str, int]],
    rows: dict[tuple[str, str], RowMap],
    times: np.ndarray,
    who: np.ndarray,
    scale: float,
) -> Reading:
    """The rows association ``a`` reads of outcome design ``d`` at ``times − lag`` (at 0
    before the lag)."""
    from mixedbayes.survival import ASSOCIATIONS

    def at(t: np.ndarray, w: np.ndarray) -> Any:
        return _read(d, a.outcome, rows_at(long, spec, w, t), position)

    lagged = np.maximum(times - spec.lag, 0.0) if spec.lag else times
    found = ASSOCIATIONS.get(a.type).rows(at, lagged, who, scale, spec.quadrature)
    assert found is not None
    return _reading(*found, a.outcome, rows)


def make_joint_design(spec: JointSpec, data: Any) -> JointDesign:
    """Apply a joint spec to ``{"longitudinal": visits, "survival": subjects}``.

    Raises
    ------
    DataError, SpecError
        Naming every problem: a missing table or column, a subject in one table and not the
        other, visits after the end of follow-up, negative times, a non-numeric ``Surv``
        column, a non-binary event.
    """
    from mixedbayes.design.design import make_regression_design
    from mixedbayes.survival import ASSOCIATIONS, get_baseline, hazard_nodes

    long, surv = split_tables(data, spec)
    DataError.collect(column_problems(long, "longitudinal", [spec.subject, spec.time]))
    if not pd.api.types.is_numeric_dtype(long[spec.time]):
        raise DataError(
            f"the visit time {spec.time!r} must be numeric, not {long[spec.time].dtype}.",
            where=f"data.longitudinal column '{spec.time}'",
            hint="use the time since the start of follow-up, on the survival times' scale.",
        )
    start, stop, event, subject, X, terms, hazard_matrices = survival_frame(spec, surv)
    DataError.collect(
        subject_problems(spec, long, subject) + visit_problems(spec, long, subject, stop, start)
    )
    outcomes = {
        name: make_regression_design(o, long, formula=o.formula)
        for name, o in outcome_specs(spec).items()
    }
    correlation = spec.correlation
    param, why = merged_parametrization(outcomes, spec)
    parts = correlation == "parts"  # then each outcome's blocks keep their own choice
    structures, rows = merge_factors(
        {name: d.groups for name, d in outcomes.items()},
        correlation=correlation,
        parametrization=None if parts else param,
        reason="" if parts else why,
    )
    subject_factor = _subject_factor(spec, structures)
    position = {s.name: {lv: i for i, lv in enumerate(s.levels)} for s in structures}
    sub = next(s for s in structures if s.name == subject_factor)
    # a nested subject factor (``centre:id``) labels its levels with the outer factors too
    from mixedbayes.design.matrices import factor_labels as _factor_labels

    label_of = dict(
        zip(long[spec.subject].astype(str), _factor_labels(long, subject_factor), strict=True)
    )
    missing = sorted(s for s in set(subject) if label_of.get(s) not in set(sub.levels))
    if missing:
        raise DataError(
            f"subjects {format_rows(missing)} have no usable measurements (rows with missing "
            "values are dropped).",
            where="data.longitudinal",
            hint="every subject of the survival table needs at least one complete visit.",
        )
    level = np.array([position[subject_factor][label_of[s]] for s in subject], dtype=np.int64)
    baseline = get_baseline(spec.survival.baseline, **spec.survival.options).setup(
        stop, event, start
    )
    nodes, weights = hazard_nodes(start, stop, spec.quadrature, breaks=baseline.quadrature_breaks())
    survival = SurvivalRows(
        surv.index,
        subject,
        frozen(level),
        frozen(start, float),
        frozen(stop, float),
        frozen(event, float),
        frozen(X, float),
        terms,
        frozen(nodes, float),
        frozen(weights, float),
    )
    scale = float(np.max(stop))
    q = nodes.shape[1]
    assoc = []
    for name, how in spec.associations():
        d = outcomes[name]
        kind = ASSOCIATIONS.get(how)
        if kind.reads_effects:
            cols = rows[(name, subject_factor)].columns
            labels = tuple(f"{name}:{how}:{sub.terms[c].split(':', 1)[1]}" for c in cols)
            assoc.append(Association(name, how, labels, columns=cols))
            continue

        plain = Association(name, how, (f"{name}:{how}",))
        at_stop, at_nodes = (
            _association_reading(spec, long, d, plain, position, rows, times, who, scale)
            for times, who in ((stop, subject), (nodes.ravel(), np.repeat(subject, q)))
        )
        assoc.append(Association(name, how, plain.labels, at_stop, at_nodes))
    return JointDesign(
        spec=spec,
        outcomes=outcomes,
        structures=structures,
        rows=rows,
        subject_factor=subject_factor,
        survival=survival,
        baseline=baseline,
        associations=tuple(assoc),
        source_tables={"longitudinal": long.copy(), "survival": surv.copy()},
        hazard_matrices=hazard_matrices,
    )


def _subject_factor(spec: JointSpec, structures: tuple[GroupStructure, ...]) -> str:
    """The merged factor of the subject: the factor ``subject``, or a nested ``a:subject``."""
    for s in structures:
        if s.name == spec.subject or s.name.split(":")[-1] == spec.subject:
            return s.name
    raise SpecError(
        f"no grouping factor of the subject {spec.subject!r} in the longitudinal formulas.",
        where="subject",
        hint=f"add '(1 | {spec.subject})' to each outcome's formula.",
    )
