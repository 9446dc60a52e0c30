"""Imputation by sampling inside the model: the design side of a spec's ``missing:``.

The rows of the likelihood are the rows with an observed response (and every covariate that
is not imputed). What ``missing:`` adds (:class:`ImputationPlan`, ``design.imputation``):

- ``response: impute``: the rows with a missing response are kept aside
  (``plan.response_frame``); their responses are drawn after sampling from the posterior
  predictive (they inform no parameter, so this is the same as making them parameters).
- a continuous covariate under ``covariates:``: its missing cells in the likelihood's rows are
  filled with its observed mean in ``design.X`` and ``design.data`` (the centring of the
  predictors and the ``auto`` rule see that value); in the model each cell is a parameter
  (``<column>_missing``) whose prior is the covariate's own mixed-effects submodel
  (:attr:`ImputedCovariate.sub`, the part ``<column>``: ``b_<column>``, ``sigma_<column>``),
  and every column of ``X`` that depends on the covariate is rebuilt in the graph as
  ``X_fill + (x − fill) · D`` (:attr:`ImputedCovariate.D`: the columns' change per unit of
  the covariate). That needs the columns to be affine in the covariate (``age * chl``,
  ``scale(chl)``), which :func:`affine_columns` checks by a third evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.design.data import DataReport, Imputed, clean_data
from mixedbayes.design.formulae import formula_variables
from mixedbayes.design.imputation_discrete import (
    categorical_covariate,
    categorical_levels,
    categorical_problem,
)
from mixedbayes.design.matrices import fixed_part
from mixedbayes.errors import DataError, Problem, SpecError, format_rows
from mixedbayes.spec.formula import split_formula
from mixedbayes.spec.missing import CovariateImputation, MissingSpec

if TYPE_CHECKING:
    from mixedbayes.spec.model import ModelSpec

#: A regression design (:class:`mixedbayes.design.design.Design`; this module sits under
#: it, so it is not imported here).
RegressionDesign = Any

__all__ = [
    "ImputationPlan",
    "ImputedCovariate",
    "MissingPrep",
    "affine_change",
    "affine_columns",
    "attach_imputation",
    "clean_with_missing",
    "imputation_variables",
    "imputed_covariate",
]


@dataclass(frozen=True, eq=False)
class ImputedCovariate:
    """One covariate imputed by sampling inside the model.

    Attributes
    ----------
    column : str
    spec : CovariateImputation
        Its submodel as the spec gives it.
    fill : float
        The value its missing cells hold in ``design.X`` and ``design.data`` (its observed
        mean in the likelihood's rows).
    rows : ndarray of int
        Positions of its missing cells among the design's rows.
    labels : pandas.Index
        Their row labels (the coordinate of ``<column>_row``).
    D : ndarray, shape (len(rows), p)
        For those rows, the change of every column of ``design.X`` per unit of the covariate
        (zero for the columns that do not depend on it).
    sub : Design
        The submodel's design (part ``column``; its factors have ``part`` = ``column``) over
        the likelihood's rows followed, when possible, by the rows with a missing response.
    sub_observed : ndarray of int
        Positions of the sub-design's rows where the covariate is observed.
    sub_missing : ndarray of int
        Positions of the sub-design's rows of :attr:`rows`.
    predictive_rows : ndarray of int
        Positions, among ``plan.response_frame``'s rows, of its missing cells there (drawn
        from the submodel's posterior predictive after sampling).
    note : str
        What was done that the user should know (empty when nothing).
    parts_D : dict of str to ndarray
        For a model with one design matrix per part (a nonlinear model's parameters, by
        key): each part's change of its columns per unit of the covariate at :attr:`rows`
        (only the parts whose formulas use it); :attr:`D` is then empty.
    levels : tuple of str
        A categorical covariate's levels in the main formula's order (the first is the
        submodel's baseline); empty otherwise.
    class_D : ndarray, optional
        A categorical covariate's change of every column of ``design.X`` at :attr:`rows`
        from the fill's level to each level, shape (levels, len(rows), p).
    codes : ndarray, optional
        A categorical covariate's level (position in :attr:`levels`, -1 where missing) at
        each row of the sub-design (whose ``y`` is only "not the first level").
    """

    column: str
    spec: CovariateImputation
    fill: float
    rows: np.ndarray
    labels: pd.Index
    D: np.ndarray
    sub: RegressionDesign
    sub_observed: np.ndarray
    sub_missing: np.ndarray
    predictive_rows: np.ndarray
    note: str = ""
    parts_D: dict[str, np.ndarray] = field(default_factory=dict)
    levels: tuple[str, ...] = ()
    class_D: np.ndarray | None = None
    codes: np.ndarray | None = None

    @property
    def categorical(self) -> bool:
        """Whether the covariate is categorical (a multinomial-logit submodel)."""
        return self.spec.family == "categorical"

    def class_changes(self) -> tuple[np.ndarray, int]:
        """A discrete covariate's change of ``design.X``'s columns at :attr:`rows` from
        the fill's class to each class, (classes, len(rows), p), and the fill's class."""
        if self.class_D is not None:
            return self.class_D, self.levels.index(str(self.fill))
        return np.stack([np.zeros_like(self.D), self.D]), 0

    @property
    def how(self) -> str:
        """How its cells are imputed, in words (the report's)."""
        what = "summed out of the model" if self.spec.discrete else "sampled in the model"
        return f"submodel {self.spec.formula} ({self.spec.family}), {what}"


@dataclass(frozen=True, eq=False)
class ImputationPlan:
    """What the spec's ``missing:`` does to a design (``design.imputation``).

    Attributes
    ----------
    spec : MissingSpec
    covariates : tuple of ImputedCovariate
    response_frame : DataFrame, optional
        The rows with a missing response (``response: impute``; a copy, imputed covariates
        filled with :attr:`ImputedCovariate.fill`), else None.
    response_masks : dict of str to ndarray
        By imputed covariate, its missing cells among ``response_frame``'s rows.
    """

    spec: MissingSpec
    covariates: tuple[ImputedCovariate, ...] = ()
    response_frame: pd.DataFrame | None = None
    response_masks: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def imputes_response(self) -> bool:
        """Whether there are rows with a missing response to impute."""
        return self.response_frame is not None and len(self.response_frame) > 0

    def covariate(self, column: str) -> ImputedCovariate:
        """The imputed covariate ``column``."""
        return next(c for c in self.covariates if c.column == column)


@dataclass(frozen=True, eq=False)
class MissingPrep:
    """What :func:`clean_with_missing` hands to :func:`attach_imputation`."""

    spec: MissingSpec
    masks: dict[str, np.ndarray]
    fills: dict[str, Any]
    response_frame: pd.DataFrame | None
    response_masks: dict[str, np.ndarray]


def imputation_variables(
    spec: ModelSpec, response: str, covariates: set[str]
) -> tuple[set[str], set[str]]:
    """The covariate and grouping columns the imputation submodels read (their own columns
    included); ``SpecError`` for a key the formula does not use as a covariate, a submodel
    using the response (circular) or another imputed column, a discrete covariate."""
    missing = spec.missing
    if missing is None:
        return set(), set()
    more_cov: set[str] = set()
    more_groups: set[str] = set()
    problems: list[Problem] = []
    for key, sub in missing.covariates.items():
        where = f"missing.covariates.{key}"
        _, cov, groups = formula_variables(split_formula(sub.formula))
        if key == response:
            problems.append(
                Problem(
                    f"missing.covariates names the response {key!r}.",
                    where,
                    "impute the response with missing: {response: impute} instead.",
                )
            )
            continue
        if key not in covariates:
            problems.append(
                Problem(
                    f"{key!r} is not a covariate of the model's formulas ({sorted(covariates)}).",
                    where,
                    "name a covariate the formula uses, or remove the entry.",
                )
            )
        if response in cov | groups:
            problems.append(
                Problem(
                    f"the imputation formula {sub.formula!r} uses the model's response "
                    f"{response!r}: that is circular (the response would inform the covariate "
                    "that predicts it).",
                    where,
                    f"remove {response!r} from the imputation formula.",
                )
            )
        chained = sorted((cov | groups) & (set(missing.covariates) - {key}))
        if chained:
            problems.append(
                Problem(
                    f"the imputation formula {sub.formula!r} uses the imputed column(s) "
                    f"{chained}: chained submodels are not supported yet.",
                    where,
                    "use observed columns in imputation formulas.",
                )
            )
        if sub.family == "categorical" and groups:
            problems.append(
                Problem(
                    f"the categorical submodel {sub.formula!r} has group terms: group effects "
                    "in a categorical covariate's submodel are not supported yet.",
                    where,
                    "use fixed effects only in its formula.",
                )
            )
        more_cov |= cov | {key}
        more_groups |= groups
    SpecError.collect(problems)
    return more_cov, more_groups


def clean_with_missing(
    spec: ModelSpec,
    data: pd.DataFrame,
    *,
    response: Sequence[str],
    covariates: Sequence[str],
    groups: Sequence[str],
) -> tuple[pd.DataFrame, DataReport, MissingPrep | None]:
    """:func:`~mixedbayes.design.data.clean_data` as the spec's ``missing:`` says.

    Returns the likelihood's rows (a copy; imputed cells filled with the column's observed
    mean), the report (dropped and imputed cells) and what :func:`attach_imputation` needs
    (None without ``missing:``).
    """
    missing = spec.missing
    if missing is None:
        return (*clean_data(data, response=response, covariates=covariates, groups=groups), None)
    imputed = [c for c in missing.covariates if c in data.columns]
    impute_response = missing.response == "impute"
    kept = [c for c in covariates if c not in imputed]
    if missing.otherwise == "error":
        checked = kept + ([] if impute_response else list(response))
        counts = {c: int(data[c].isna().sum()) for c in checked if data[c].isna().any()}
        if counts:
            detail = ", ".join(f"{c!r}: {n}" for c, n in counts.items())
            raise DataError(
                f"columns with missing values that missing: does not impute ({detail}), "
                "and missing.otherwise is 'error'.",
                where=", ".join(f"column '{c}'" for c in counts),
                hint="impute them (missing.covariates, missing.response: impute), fill them, "
                "or set missing.otherwise: drop.",
            )
    frame, report = clean_data(
        data, response=[] if impute_response else response, covariates=kept, groups=groups
    )
    problems = []
    for col in imputed:
        values = frame[col]
        if missing.covariates[col].family == "categorical":
            problem = categorical_problem(col, values)
            if problem is not None:
                problems.append(problem)
            continue
        if missing.covariates[col].discrete:
            numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
                values
            )
            if not numeric or not values.dropna().isin([0, 1]).all():
                problems.append(
                    Problem(
                        "a binary covariate summed out of the model (family bernoulli) must "
                        "hold 0 and 1 (missing values as NaN).",
                        f"column '{col}'",
                        f"recode it, e.g. df[{col!r}] = (df[{col!r}] == 'yes').astype(float) "
                        "keeping NaN where it is missing.",
                    )
                )
            continue
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            problems.append(
                Problem(
                    "a covariate imputed by a continuous submodel must be numeric.",
                    f"column '{col}'",
                    "convert it with pd.to_numeric (missing values as NaN).",
                )
            )
    DataError.collect(problems)
    resp_missing = (
        frame[list(response)].isna().any(axis=1).to_numpy()
        if impute_response
        else np.zeros(len(frame), dtype=bool)
    )
    main, aside = frame.loc[~resp_missing], frame.loc[resp_missing]
    if main.empty:
        raise DataError(
            "no row has an observed response.",
            where=", ".join(f"column '{c}'" for c in response),
            hint="check the response column for missing values.",
        )
    fills: dict[str, Any] = {}
    masks, response_masks = {}, {}
    entries: list[Imputed] = []
    for col in imputed:
        observed = main[col].dropna()
        if observed.empty:
            raise DataError(
                f"{col!r} is missing in every row with an observed response: nothing to "
                "learn its submodel from.",
                where=f"column '{col}'",
                hint=f"remove {col!r} from the formula.",
            )
        # a summed-out binary covariate's cells hold class 0 (the model adds class 1's
        # change); a continuous one's its observed mean
        if missing.covariates[col].family == "categorical":
            fills[col] = categorical_levels(observed)[0]  # its first level
        else:
            fills[col] = 0.0 if missing.covariates[col].discrete else float(observed.mean())
        masks[col] = main[col].isna().to_numpy()
        response_masks[col] = aside[col].isna().to_numpy()
        sub = missing.covariates[col]
        how = f"submodel {sub.formula} ({sub.family}), " + (
            "summed out of the model; classes drawn afterwards"
            if sub.discrete
            else "sampled in the model"
        )
        if masks[col].any():
            entries.append(Imputed(col, tuple(main.index[masks[col]]), how))
        if response_masks[col].any():
            entries.append(
                Imputed(
                    col,
                    tuple(aside.index[response_masks[col]]),
                    f"submodel {sub.formula} ({sub.family}), posterior predictive (rows with "
                    "a missing response)",
                )
            )
    if len(aside):
        entries.insert(
            0,
            Imputed(
                ",".join(response),
                tuple(aside.index),
                "posterior predictive of the model (rows kept out of the likelihood)",
            ),
        )
    main = main.assign(**{c: main[c].fillna(fills[c]) for c in imputed})
    aside = aside.assign(**{c: aside[c].fillna(fills[c]) for c in imputed})
    report = DataReport(len(data), len(main), report.dropped, tuple(entries), len(aside))
    prep = MissingPrep(missing, masks, fills, aside if impute_response else None, response_masks)
    return main, report, prep


def affine_columns(
    design: RegressionDesign, frame: pd.DataFrame, column: str, check: bool = True
) -> np.ndarray:
    """The change of every column of the fixed design per unit of ``column`` at the rows
    ``frame`` (uncoded data), shape (rows, p).

    The columns are evaluated with ``column`` at 0, 1 and 2; a column that does not change
    by the same amount from 1 to 2 as from 0 to 1 is not affine in it (``I(chl**2)``,
    ``log(chl)``, splines): a ``SpecError`` naming the terms. ``check=False`` (a binary
    covariate: two values, any function of it is affine in them) skips the check.
    """
    return affine_change(
        design._matrices.common,
        design.fixed_terms,
        frame,
        column,
        check=check,
        coded=design.coding.new_data,
    )


def affine_change(
    common: Any,
    terms: Sequence[str],
    frame: pd.DataFrame,
    column: str,
    *,
    check: bool = True,
    coded: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    where: str = "",
) -> np.ndarray:
    """The change of the columns ``terms`` of formulae's common design ``common`` per unit
    of ``column`` at the rows ``frame``, shape (rows, len(terms)) (see
    :func:`affine_columns`; ``coded`` codes the rows' factors first, ``where`` names the
    formula in the error)."""
    if common is None or frame.empty:
        return np.zeros((len(frame), len(terms)))
    at = []
    for value in (0.0, 1.0, 2.0):
        rows = frame.assign(**{column: value}).copy()
        if coded is not None:
            rows = coded(rows)
        with np.errstate(all="ignore"):
            _, X, offset = fixed_part(common.evaluate_new_data(rows), len(frame))
        at.append((X, offset))
    (X0, o0), (X1, o1), (X2, o2) = at
    D = X1 - X0
    bad = [
        t
        for j, t in enumerate(terms)
        if check and not np.allclose(X2[:, j] - X1[:, j], D[:, j], equal_nan=False)
    ]
    if not (np.allclose(o1, o0) and (np.allclose(o2, o0) or not check)):
        bad.append("offset(...)")
    if bad:
        raise SpecError(
            f"the term(s) {bad}{where} are not linear in the imputed covariate {column!r}: "
            "imputing it inside the model rebuilds the columns that depend on it as a + x·b.",
            where=f"missing.covariates.{column}",
            hint=f"use {column!r} linearly (main effect, interactions such as 'age * {column}', "
            f"center()/scale()); for I({column}**2), log({column}) or splines add the "
            "transformed column to the data and impute that column instead.",
        )
    return D


def _sub_design(
    make: Callable[..., RegressionDesign],
    spec: ModelSpec,
    column: str,
    sub: CovariateImputation,
    frame: pd.DataFrame,
) -> RegressionDesign:
    from mixedbayes.spec.model import FamilySpec, GLMMSpec

    sub_spec = GLMMSpec(
        formula=sub.formula,
        family=FamilySpec(name=sub.family),
        contrasts={k: v for k, v in spec.contrasts.items() if k in frame.columns},
        parametrization=spec.parametrization,
    )
    d = make(sub_spec, frame, formula=sub.formula)
    return dataclasses.replace(d, groups=tuple(g.with_part(column) for g in d.groups))


def attach_imputation(
    design: RegressionDesign, prep: MissingPrep | None, make: Callable[..., RegressionDesign]
) -> RegressionDesign:
    """``design`` with its :class:`ImputationPlan` (``design.imputation``); checks that the
    imputed covariates enter the fixed effects affinely and nothing else. ``make`` designs a
    submodel (:func:`~mixedbayes.design.design.make_regression_design`)."""
    if prep is None:
        return design
    spec = design.spec
    covariates = []
    group_vars = {
        v
        for g in design.groups
        for t in g.formulae_terms
        for v in design._matrices.group.terms[t].var_names
        if v
    }
    problems = []
    for column in prep.spec.covariates:
        where = f"missing.covariates.{column}"
        if column in group_vars:
            problems.append(
                Problem(
                    f"{column!r} is read by a group term (a varying slope or a grouping "
                    "factor); imputing it there is not supported yet.",
                    where,
                    "use it in the fixed effects only, or drop its missing rows.",
                )
            )
        for dp in design.dpars:
            if column in dp.needed_columns():
                problems.append(
                    Problem(
                        f"the {dp.name} formula uses {column!r}; imputing a covariate of a "
                        "distributional formula is not supported yet.",
                        where,
                        f"remove {column!r} from the {dp.name} formula.",
                    )
                )
    SpecError.collect(problems)
    for column, sub in prep.spec.covariates.items():
        rows = np.flatnonzero(prep.masks[column])
        if sub.family == "categorical":
            cov = categorical_covariate(design, prep, column, rows, make, imputed_covariate)
        else:
            D = affine_columns(design, design.data.iloc[rows], column, check=not sub.discrete)
            cov = imputed_covariate(spec, design.data, design.groups, prep, column, D, make)
        covariates.append(cov)
    plan = ImputationPlan(prep.spec, tuple(covariates), prep.response_frame, prep.response_masks)
    return dataclasses.replace(design, imputation=plan)


def imputed_covariate(
    spec: ModelSpec,
    data: pd.DataFrame,
    groups: Sequence[Any],
    prep: MissingPrep,
    column: str,
    D: np.ndarray,
    make: Callable[..., RegressionDesign],
    parts_D: dict[str, np.ndarray] | None = None,
) -> ImputedCovariate:
    """The :class:`ImputedCovariate` of ``column`` for a design of the rows ``data`` with the
    grouping factors ``groups`` (any kind's design): its submodel designed over those rows
    followed, when the factors allow, by the rows with a missing response; ``D`` (or
    ``parts_D``, by part) the change of the design's columns per unit of it at its cells."""
    sub = prep.spec.covariates[column]
    mask = prep.masks[column]
    rows = np.flatnonzero(mask)
    aside = prep.response_frame
    n = len(data)
    both = data if aside is None or aside.empty else pd.concat([data, aside])
    observed_all = np.concatenate(
        [~mask, ~prep.response_masks.get(column, np.zeros(len(both) - n, dtype=bool))]
    )
    sub_design = _sub_design(make, spec, column, sub, both)
    note = ""
    main_levels = {g.name: g.levels for g in groups}
    if len(both) > n and any(
        g.name in main_levels and g.levels != main_levels[g.name] for g in sub_design.groups
    ):
        note = (
            f"the submodel of {column!r} was fitted to the rows with an observed response "
            "only (the other rows hold levels the response's factors do not have)"
        )
        sub_design = _sub_design(make, spec, column, sub, data)
        observed_all = observed_all[:n]
    return ImputedCovariate(
        column=column,
        spec=sub,
        fill=prep.fills[column],
        rows=rows,
        labels=data.index[rows],
        D=D,
        sub=sub_design,
        sub_observed=np.flatnonzero(observed_all),
        sub_missing=rows,
        predictive_rows=np.flatnonzero(prep.response_masks.get(column, np.zeros(0, bool))),
        note=note,
        parts_D=dict(parts_D or {}),
    )


def imputed_cells_text(report: DataReport) -> str:
    """One line per imputed column (for ``repr`` and warnings)."""
    return "; ".join(
        f"{i.count} of '{i.column}' ({i.how}; rows {format_rows(list(i.rows), 5)})"
        for i in report.imputed
    )
