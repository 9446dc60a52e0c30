"""The two tables of a joint model, checked: the survival rows (``Surv(...)`` parsed, the
event coded, the hazard's covariates), the subjects of both tables matched, the visits
within follow-up, and each outcome's spec (its family, the spec's contrasts of its columns).

Every problem is a named :class:`~mixedbayes.errors.DataError` or
:class:`~mixedbayes.errors.SpecError` (the table, column, rows); the user's tables are not
modified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.formulae import formula_predictors
from mixedbayes.errors import DataError, Problem, SpecError, format_rows

if TYPE_CHECKING:
    from mixedbayes.spec.joint import JointSpec

__all__ = [
    "TABLES",
    "column_problems",
    "merged_parametrization",
    "outcome_specs",
    "split_tables",
    "subject_problems",
    "survival_frame",
    "visit_problems",
]

#: The two tables a joint model is fitted to.
TABLES = ("longitudinal", "survival")


def _one_row_per_subject(spec: JointSpec, long: pd.DataFrame) -> pd.DataFrame:
    """The survival table of a single longitudinal table that carries each subject's
    survival columns on every row (as pbc2 and pbcseq do): its first row per subject, after
    checking that those columns are constant within subjects."""
    from mixedbayes.spec.joint import event_test, parse_surv

    start, stop, event, rhs = parse_surv(spec.survival.formula)
    columns = [spec.subject, stop, event_test(event)[0]] + ([start] if start else [])
    columns += sorted(formula_predictors(f"y ~ {rhs}"))
    DataError.collect(column_problems(long, "longitudinal", columns))
    varying = [
        c
        for c in dict.fromkeys(columns[1:])
        if (long.groupby(long[spec.subject].astype(str))[c].nunique(dropna=False) > 1).any()
    ]
    if varying:
        raise DataError(
            f"the survival columns {varying} vary within subjects, so one table cannot give "
            "the survival rows.",
            where="data",
            hint='pass {"longitudinal": visits, "survival": one row per subject (or per '
            "(start, stop] interval)}.",
        )
    return long.drop_duplicates(subset=[spec.subject])[list(dict.fromkeys(columns))]


def split_tables(data: Any, spec: JointSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The longitudinal and survival tables of ``data``: ``{"longitudinal": ...,
    "survival": ...}``, or one table carrying each subject's survival columns."""
    if isinstance(data, pd.DataFrame) and not data.empty and spec.subject in data.columns:
        return data, _one_row_per_subject(spec, data)
    from mixedbayes.design.data import named_tables

    long, surv = named_tables(
        data,
        TABLES,
        "joint",
        'pass {"longitudinal": visits, "survival": subjects} (pandas DataFrames), or one '
        "table with each subject's survival columns on every row.",
    )
    return long, surv


def column_problems(frame: pd.DataFrame, table: str, columns: list[str]) -> list[Problem]:
    """The columns of ``columns`` missing from ``frame``, named with their table."""
    from mixedbayes.design.data import missing_column_problems

    return [
        Problem(p.message, f"data.{table} {p.where}".strip(), p.hint)
        for p in missing_column_problems(set(columns), frame)
    ]


def _contrasts_for(spec: JointSpec, formula: str) -> dict[str, Any]:
    """The spec's contrasts of the columns ``formula`` uses as predictors."""
    used = formula_predictors(formula)
    return {col: c for col, c in spec.contrasts.items() if col in used}


def outcome_specs(spec: JointSpec) -> dict[str, Any]:
    """A ``GLMMSpec`` per outcome (its formula and family, the contrasts of its columns, the
    spec's parametrization): what the regression design of each outcome is made from."""
    from mixedbayes.spec.model import GLMMSpec

    return {
        name: GLMMSpec(
            formula=o.formula,
            family=o.family,
            contrasts=_contrasts_for(spec, o.formula),
            parametrization=spec.parametrization,
        )
        for name, o in spec.longitudinal.items()
    }


def _contrast_problems(spec: JointSpec, rhs: str) -> list[Problem]:
    used = formula_predictors(f"y ~ {rhs}")
    for o in spec.longitudinal.values():
        used |= formula_predictors(o.formula)
    return [
        Problem(
            f"contrasts names {col!r}, which no formula uses as a predictor.",
            f"contrasts.{col}",
            f"name a predictor of the longitudinal or survival formulas: {sorted(used)}.",
        )
        for col in spec.contrasts
        if col not in used
    ]


def survival_frame(spec: JointSpec, surv: pd.DataFrame) -> tuple[Any, ...]:
    """start, stop, event, subject labels, covariate matrix and terms of the survival table."""
    from mixedbayes.spec.joint import event_test, parse_surv

    start_col, stop_col, event_arg, rhs = parse_surv(spec.survival.formula)
    event_col, op, value = event_test(event_arg)
    needed = [spec.subject, stop_col, event_col] + ([start_col] if start_col else [])
    DataError.collect(column_problems(surv, "survival", needed))
    problems: list[Problem] = []
    for col in [c for c in (start_col, stop_col, event_col) if c]:
        if not pd.api.types.is_numeric_dtype(surv[col]) and not pd.api.types.is_bool_dtype(
            surv[col]
        ):
            problems.append(
                Problem(
                    f"Surv() needs a numeric column; {col!r} holds {surv[col].dtype}.",
                    f"data.survival column '{col}'",
                    "code the event as 1 (event) / 0 (censored), e.g. "
                    "(status == 'dead').astype(int).",
                )
            )
    DataError.collect(problems)
    stop = surv[stop_col].to_numpy(dtype=float)
    start = np.zeros_like(stop) if start_col is None else surv[start_col].to_numpy(dtype=float)
    event = surv[event_col].to_numpy(dtype=float)
    if op is not None and value is not None:  # Surv(time, status == 2)
        compare = {"==": np.equal, "!=": np.not_equal, ">": np.greater, ">=": np.greater_equal}
        compare |= {"<": np.less, "<=": np.less_equal}
        event = np.where(np.isnan(event), np.nan, compare[op](event, value).astype(float))
    bad_event = surv.index[~np.isin(event, (0.0, 1.0))]
    if len(bad_event):
        problems.append(
            Problem(
                f"the event indicator must be 0 or 1; rows {format_rows(list(bad_event))} are not.",
                f"data.survival column '{event_col}'",
                "code the event as 1 (event) / 0 (censored), or compare: Surv(time, status == 2).",
            )
        )
    bad = surv.index[~(np.isfinite(stop) & np.isfinite(start)) | (stop <= 0) | (start < 0)]
    if len(bad):
        problems.append(
            Problem(
                f"times must be finite, stop > 0 and start >= 0; rows {format_rows(list(bad))} "
                "are not.",
                f"data.survival column '{stop_col}'",
                "remove or correct those rows.",
            )
        )
    order = surv.index[(stop <= start) & np.isfinite(stop) & np.isfinite(start)]
    if len(order) and start_col is not None:
        problems.append(
            Problem(
                f"each interval needs start < stop; rows {format_rows(list(order))} do not.",
                f"data.survival column '{start_col}'",
                "check the (start, stop] columns.",
            )
        )
    DataError.collect(problems)
    from mixedbayes.design.contrasts import code_factors
    from mixedbayes.design.matrices import fixed_part as _fixed_part
    from mixedbayes.design.matrices import matrices as _matrices

    SpecError.collect(_contrast_problems(spec, rhs))
    covariates = formula_predictors(f"y ~ {rhs}")
    DataError.collect(column_problems(surv, "survival", sorted(covariates)))
    missing: Any = surv.index[surv[sorted(covariates)].isna().any(axis=1)] if covariates else []
    if len(missing):
        raise DataError(
            f"the hazard's covariates are missing in rows {format_rows(list(missing))}.",
            where="data.survival",
            hint="a joint model needs every subject's hazard covariates; impute or drop them.",
        )
    contrasts = {c: v for c, v in spec.contrasts.items() if c in covariates}
    frame, coding = code_factors(contrasts, surv.copy(), covariates=covariates)
    dm = _matrices(coding.rewrite(f"{stop_col} ~ {rhs}"), frame)
    labels, X, _ = _fixed_part(dm.common, len(frame))
    keep = [j for j, lab in enumerate(labels) if lab != "Intercept"]
    subject = surv[spec.subject].astype(str).to_numpy()
    terms = tuple(labels[j] for j in keep)
    return start, stop, event, subject, X[:, keep], terms, (dm.common, coding)


def subject_problems(spec: JointSpec, long: pd.DataFrame, subject: np.ndarray) -> list[Problem]:
    """Subjects with visits but no survival row, or a survival row but no visits."""
    in_long = set(long[spec.subject].astype(str))
    in_surv = set(subject)
    problems = []
    only_long = sorted(in_long - in_surv)
    if only_long:
        problems.append(
            Problem(
                f"subjects {format_rows(only_long)} have visits but no survival row.",
                f"data.survival column '{spec.subject}'",
                "give every subject a row (time to event or censoring) in the survival table.",
            )
        )
    only_surv = sorted(in_surv - in_long)
    if only_surv:
        problems.append(
            Problem(
                f"subjects {format_rows(only_surv)} have a survival row but no visits.",
                f"data.longitudinal column '{spec.subject}'",
                "drop them from the survival table or add their measurements.",
            )
        )
    return problems


def visit_problems(
    spec: JointSpec, long: pd.DataFrame, subject: np.ndarray, stop: np.ndarray, start: np.ndarray
) -> list[Problem]:
    """Visits after the subject's last stop time (an event before the last visit, unless the
    spec keeps them), and negative or missing visit times."""
    last_stop = pd.Series(stop, index=subject).groupby(level=0).max()
    t = long[spec.time].to_numpy(dtype=float)
    who = long[spec.subject].astype(str).to_numpy()
    ends = last_stop.reindex(who).to_numpy()
    late = long.index[t > ends + 1e-9]
    problems = []
    if len(late) and spec.visits_after_event == "error":
        problems.append(
            Problem(
                f"visits in rows {format_rows(list(late))} come after their subject's event or "
                "censoring time.",
                f"data.longitudinal column '{spec.time}'",
                "drop measurements after the end of follow-up, check the survival times, or "
                "set visits_after_event: keep for an event after which measurement goes on.",
            )
        )
    neg = long.index[~np.isfinite(t) | (t < 0)]
    if len(neg):
        problems.append(
            Problem(
                f"visit times must be finite and >= 0; rows {format_rows(list(neg))} are not.",
                f"data.longitudinal column '{spec.time}'",
                "measure time from the start of follow-up.",
            )
        )
    return problems


def merged_parametrization(
    outcomes: dict[str, Any], spec: JointSpec
) -> tuple[dict[str, Any], dict[str, str]]:
    """By grouping factor, the parametrization of its block across outcomes, and why.

    ``auto``: each outcome's design chose per block (centred where its data pin the effects
    down, ``mixedbayes.design.parametrization``); the merged block is centred when every
    outcome's blocks of the factor are, else non-centred. A parametrization set in the spec
    applies to every block.
    """
    choices: dict[str, list[tuple[str, str, str]]] = {}
    for name, d in outcomes.items():
        for g in d.groups:
            for b in g.blocks:
                choices.setdefault(g.name, []).append((name, b.parametrization, b.reason))
    if spec.parametrization != "auto":
        why = f"{spec.parametrization} (set in the spec)"
        return dict.fromkeys(choices, spec.parametrization), dict.fromkeys(choices, why)
    param, reason = {}, {}
    for factor, found in choices.items():
        centred = all(p == "centered" for _, p, _ in found)
        param[factor] = "centered" if centred else "noncentered"
        detail = "; ".join(f"{o}: {r}" for o, _, r in found)
        rule = "every outcome's block is centred" if centred else "not every outcome's block is"
        reason[factor] = f"auto across outcomes ({rule}): {detail}"
    return param, reason
