"""Stage 2 for the ``nonlinear`` kind: parameter designs, merged group factors, doses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.design.contrasts import code_factors
from mixedbayes.design.data import (
    DataReport,
    grouping_problems,
    missing_column_problems,
    numeric_problems,
    single_level_problems,
)
from mixedbayes.design.formulae import (
    FORMULA_FUNCTIONS,
    common_names,
    formula_variables,
    function_problems,
)
from mixedbayes.design.groups import (
    GroupFactor,
    RowMap,
    factor_problems,
    frozen,
    group_factors,
    merge_factors,
)
from mixedbayes.design.imputation import (
    ImputationPlan,
    MissingPrep,
    affine_change,
    clean_with_missing,
    imputation_variables,
    imputed_covariate,
)
from mixedbayes.design.matrices import common_vars
from mixedbayes.errors import DataError, Problem, SpecError
from mixedbayes.families import Family, Link, get_family, get_link
from mixedbayes.naming import OBS_DIM, Names
from mixedbayes.spec.formula import split_formula
from mixedbayes.spec.nonlinear import NonlinearSpec, parameter_link

__all__ = ["NonlinearDesign", "ParamDesign", "make_nonlinear_design"]


@dataclass(frozen=True)
class ParamDesign:
    """One structural parameter: its key (``log_CL``), natural name (``CL``), link, fixed part."""

    key: str
    name: str
    link: Link
    X: np.ndarray
    terms: tuple[str, ...]
    matrices: Any

    @property
    def term_dim(self) -> str:
        """Dimension of ``b_<key>``: ``<key>_term``."""
        return self.names.term_dim

    @property
    def names(self) -> Names:
        """The names of the parameter's part of the model (``b_<key>``, ``X_<key>``)."""
        return Names(self.key)


@dataclass(frozen=True, eq=False)
class NonlinearDesign:
    """A nonlinear spec applied to data.

    Attributes
    ----------
    params : tuple of ParamDesign
    groups : tuple of GroupFactor
        One factor per grouping factor across all parameters; its terms are named
        ``<key>`` (the parameter's intercept) or ``<key>:<term>``.
    group_columns : dict
        ``(factor, key)`` → the factor's columns that belong to parameter ``key``.
    time, subjects : arrays per observation
    doses : DoseMatrices or None
        For PK library models.
    dosing : DosingTable or None
    covariates : dict of str to ndarray
        Data columns a user expression uses.
    data : DataFrame
        The observation rows used (for an event table: its EVID 0 rows).
    report : DataReport
    source : DataFrame
        The data as given (a copy of the user's frame; for an event table every dose and
        observation record), not to be modified: what :func:`make_nonlinear_design` turns
        into this design again, as a saved fit does.
    order : tuple of str
        Keys of the parameters whose intercepts are ordered, largest first (the spec's
        ``order``, else the library model's).
    imputation : ImputationPlan, optional
        What the spec's ``missing:`` imputes (:mod:`mixedbayes.design.imputation`): the
        observation rows with a missing response, kept out of the likelihood (dose records
        are never among them), and the covariates of parameter formulas sampled in the model
        (their missing cells hold the observed mean in ``data`` and every parameter's ``X``;
        :attr:`~mixedbayes.design.imputation.ImputedCovariate.parts_D` holds, by parameter
        key, the columns' change per unit of the covariate).
    """

    spec: NonlinearSpec
    family: Family
    link: Link
    response: str
    y: np.ndarray
    params: tuple[ParamDesign, ...]
    groups: tuple[GroupFactor, ...]
    group_columns: dict[tuple[str, str], tuple[int, ...]]
    time: np.ndarray | None
    subjects: tuple[str, ...]
    doses: Any
    dosing: Any
    covariates: dict[str, np.ndarray]
    data: pd.DataFrame
    report: DataReport
    source: pd.DataFrame = field(repr=False)
    order: tuple[str, ...] = ()
    imputation: ImputationPlan | None = None

    @property
    def n(self) -> int:
        """Number of observations."""
        return int(self.y.shape[0])

    @property
    def obs_index(self) -> pd.Index:
        """Original row labels of the observations."""
        return self.data.index

    def param(self, key: str) -> ParamDesign:
        """The parameter design of ``key``."""
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    def group(self, name: str) -> GroupFactor:
        """The grouping factor called ``name``."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of every dimension of the model."""
        coords: dict[str, list[Any]] = {OBS_DIM: list(self.obs_index)}
        for p in self.params:
            coords[p.term_dim] = list(p.terms)
        for g in self.groups:
            coords.update(g.coords())
        return coords


def _merge(
    per_param: dict[str, tuple[GroupFactor, ...]], correlation: str
) -> tuple[tuple[GroupFactor, ...], dict[tuple[str, str], tuple[int, ...]]]:
    """One factor per grouping factor over every parameter's terms (``log_CL``,
    ``log_CL:wt``); the parameters share the observations, so their row maps are joined."""
    structures, rows = merge_factors(
        per_param,
        correlation="block" if correlation == "block" else "diagonal",
        label=lambda key, term: key if term == "Intercept" else f"{key}:{term}",
        parametrization="noncentered",
        reason="nonlinear: non-centred",
    )
    factors = []
    columns: dict[tuple[str, str], tuple[int, ...]] = {}
    for s in structures:
        maps = [(key, rows[(key, s.name)]) for key in per_param if (key, s.name) in rows]
        first = maps[0][1]
        factors.append(
            GroupFactor(
                s,
                RowMap(
                    first.index,
                    frozen(np.column_stack([m.Z for _, m in maps]), float),
                    tuple(c for _, m in maps for c in m.columns),
                ),
            )
        )
        columns.update({(s.name, key): m.columns for key, m in maps})
    return tuple(factors), columns


def _expression_names(spec: NonlinearSpec) -> list[str]:
    from mixedbayes.nonlinear.expression import parse_expression

    if spec.expression is not None:
        return list(parse_expression(spec.expression, where="expression").names)
    return []


def make_nonlinear_design(spec: NonlinearSpec, data: pd.DataFrame) -> NonlinearDesign:
    """Apply a nonlinear spec to data: validate, build parameter designs and doses.

    Raises
    ------
    DataError, SpecError
        Naming the columns, rows, levels or keys at fault.
    """
    import formulae as fm

    from mixedbayes.pk.dosing import dose_matrices, from_dose_column

    if not isinstance(data, pd.DataFrame) or data.empty:
        raise DataError("the data must be a non-empty DataFrame.", where="data")
    family = get_family(spec.family.name)
    link = get_link(spec.family.link_name)
    dosing_table = None
    frame_in = data
    if spec.dosing is not None and spec.dosing.events is not None:
        cols = {k.lower(): v for k, v in spec.dosing.events.items()}
        frame_in, dosing_table = _read_events(spec, data, cols)
    param_names = {parameter_link(k)[0] for k in spec.parameters}
    expr_names = _expression_names(spec)
    covariate_names = [n for n in expr_names if n not in param_names]
    unknown = [n for n in covariate_names if n not in frame_in.columns]
    if unknown:
        raise SpecError(
            f"the expression uses {unknown}, which are neither parameters nor data columns.",
            where="expression",
            hint=f"add them to 'parameters' or the data; parameters: {sorted(param_names)}.",
        )
    needed = {spec.response} | set(covariate_names)
    groups: set[str] = set()
    covs: set[str] = set(covariate_names)
    param_covs: set[str] = set()
    calls: list[Problem] = []
    for key, rhs in spec.parameters.items():
        rhs_parts = split_formula(f"{spec.response} ~ {rhs}")
        where = f"parameters.{key}"
        calls += function_problems(f"{key} ~ {rhs}", rhs_parts.formulae_formula, where)
        _, c, g = formula_variables(rhs_parts)
        covs |= c
        param_covs |= c
        groups |= g
    SpecError.collect(calls)
    extra = [c for c in (spec.time, spec.subject) if c]
    if spec.dosing is not None and spec.dosing.dose:
        extra.append(spec.dosing.dose)
    named = [(spec.time, "'time' names"), (spec.subject, "'subject' names")]
    if spec.dosing is not None:
        named.append((spec.dosing.dose, "'dosing.dose' names"))
    roles = {col: role for col, role in named if col}
    _imputation_problems(spec, covariate_names, extra)
    more_covs, more_groups = imputation_variables(spec, spec.response, param_covs - groups)
    roles |= {c: "missing.covariates names the" for c in more_covs - covs - groups}
    covs |= more_covs - groups
    groups |= more_groups
    DataError.collect(missing_column_problems(needed | covs | groups | set(extra), frame_in, roles))
    problems = numeric_problems(frame_in, spec.response)
    if spec.time:
        problems += numeric_problems(frame_in, spec.time, role="the time column")
    problems += grouping_problems(
        frame_in, sorted(groups | ({spec.subject} if spec.subject else set()))
    )
    DataError.collect(problems)
    frame, report, prep = clean_with_missing(
        spec,
        frame_in,
        response=[spec.response],
        covariates=sorted((covs | set(extra)) - groups - {spec.subject or ""}),
        groups=sorted(groups),
    )
    if spec.dosing is not None and spec.dosing.dose is not None:
        assert spec.subject is not None
        # the rows with a missing response (kept aside) have their doses too
        aside = None if prep is None else prep.response_frame
        dosed = frame if aside is None or aside.empty else pd.concat([frame, aside])
        dosing_table = from_dose_column(
            dosed, id=spec.subject, dose=spec.dosing.dose, dose_time=spec.dosing.dose_time
        )
    frame, coding = code_factors(spec.contrasts, frame, covariates=covs, groups=groups)
    rewritten = [coding.rewrite(f"{spec.response} ~ {rhs}") for rhs in spec.parameters.values()]
    DataError.collect(single_level_problems(frame, covs, rewritten))
    y = frame[spec.response].to_numpy(dtype=float)
    params = []
    per_param: dict[str, tuple[GroupFactor, ...]] = {}
    for key, rhs in spec.parameters.items():
        name, link_name = parameter_link(key)
        parts = split_formula(coding.rewrite(f"{spec.response} ~ {rhs}"))
        dm = fm.design_matrices(
            parts.formulae_formula, frame, na_action="error", extra_namespace=FORMULA_FUNCTIONS
        )
        X = np.asarray(dm.common.design_matrix, dtype=float)
        params.append(
            ParamDesign(
                key, name, get_link(link_name), frozen(X, float), tuple(common_names(dm.common)), dm
            )
        )
        per_param[key] = group_factors(dm.group, parts.bars, len(frame))
    merged, columns = _merge(per_param, spec.correlation)
    DataError.collect(factor_problems(merged, len(frame)))
    forced = {g.name: spec.group_options(g.name).parametrization for g in merged}
    merged = tuple(
        g
        if forced[g.name] == "auto"
        else g.with_blocks(
            tuple(
                replace(b, parametrization=forced[g.name], reason="set in the spec")  # type: ignore[arg-type]
                for b in g.blocks
            )
        )
        for g in merged
    )
    subjects = tuple(str(s) for s in frame[spec.subject]) if spec.subject else ()
    time = frame[spec.time].to_numpy(dtype=float) if spec.time else None
    doses = None
    if dosing_table is not None and time is not None and spec.model is not None:
        doses = dose_matrices(dosing_table, subjects, time)
    order = spec.parameter_order()
    no_intercept = [p.key for p in params if p.key in order and "Intercept" not in p.terms]
    if no_intercept:
        raise SpecError(
            f"the ordered parameters {no_intercept} have no intercept in their formulas; the "
            "order is kept between the intercepts (the population values).",
            where="order",
            hint="give each ordered parameter an intercept (e.g. '1 + (1 | Subject)'), or "
            "drop it from 'order'.",
        )
    design = NonlinearDesign(
        spec=spec,
        family=family,
        link=link,
        response=spec.response,
        y=frozen(y, float),
        params=tuple(params),
        groups=merged,
        group_columns=columns,
        time=None if time is None else frozen(time, float),
        subjects=subjects,
        doses=doses,
        dosing=dosing_table,
        covariates={c: frame[c].to_numpy(dtype=float) for c in covariate_names},
        data=frame,
        report=report,
        source=data.copy(),
        order=order,
    )
    return design if prep is None else _attach_imputation(design, prep)


def _read_events(
    spec: NonlinearSpec, data: pd.DataFrame, cols: dict[str, str]
) -> tuple[pd.DataFrame, Any]:
    """The observation rows of an event table and its doses (``from_events``). With
    ``missing: {response: impute}`` an observation record (EVID 0) without a DV is kept with
    a missing response (to be imputed) instead of being an error; dose records (EVID 1) are
    doses whatever their DV."""
    from mixedbayes.pk.dosing import from_events

    evid, dv = cols.get("evid", "EVID"), cols.get("dv", "DV")
    impute = spec.missing is not None and spec.missing.response == "impute"
    if not impute or evid not in data.columns or dv not in data.columns:
        return from_events(data, **cols)
    unseen = (
        (pd.to_numeric(data[evid], errors="coerce") == 0)
        & pd.to_numeric(data[dv], errors="coerce").isna()
    ).to_numpy()
    if not unseen.any():
        return from_events(data, **cols)
    filled = data.copy()
    filled.loc[unseen, dv] = 0.0
    frame, table = from_events(filled, **cols)
    frame[dv] = pd.to_numeric(frame[dv], errors="coerce")
    frame.loc[data.index[unseen], dv] = np.nan
    return frame, table


def _imputation_problems(
    spec: NonlinearSpec, expression_columns: list[str], roles: list[str]
) -> None:
    """``SpecError`` for what ``missing.covariates`` cannot impute in a nonlinear model (yet):
    a data column of the structural expression, the time, subject or dose column, a binary
    covariate (summed out)."""
    if spec.missing is None:
        return
    problems = []
    for key, sub in spec.missing.covariates.items():
        where = f"missing.covariates.{key}"
        if key in expression_columns:
            problems.append(
                Problem(
                    f"{key!r} is used by the structural expression itself (not through a "
                    "parameter formula); imputing a covariate of the expression is not "
                    "supported yet.",
                    where,
                    f"use {key!r} in a parameter formula (e.g. 'log_CL: 1 + {key}'), drop "
                    "its missing rows, or impute it first (multiple imputation).",
                )
            )
        elif key in roles:
            problems.append(
                Problem(
                    f"{key!r} is the time, subject or dose column; imputing it is not "
                    "supported yet.",
                    where,
                    "drop the rows where it is missing, or fill it in.",
                )
            )
        elif sub.discrete:
            problems.append(
                Problem(
                    f"summing a discrete covariate ({key!r}, family {sub.family}) out of a "
                    "nonlinear model is not supported yet (kinds lmm and glmm only).",
                    where,
                    "give it a continuous family, drop its missing rows, or impute it first "
                    "(multiple imputation).",
                )
            )
    SpecError.collect(problems)


def _attach_imputation(design: NonlinearDesign, prep: MissingPrep) -> NonlinearDesign:
    """``design`` with its :class:`ImputationPlan`: each imputed covariate's submodel, and its
    change of the design matrix of every parameter whose formula uses it (checked affine)."""
    from mixedbayes.design.design import make_regression_design

    problems = []
    for column in prep.spec.covariates:
        in_groups = [
            p.key
            for p in design.params
            if p.matrices.group is not None
            and any(
                column in {v for v in t.var_names if v} for t in p.matrices.group.terms.values()
            )
        ]
        if in_groups:
            problems.append(
                Problem(
                    f"{column!r} is read by a group term of {in_groups} (a varying slope or a "
                    "grouping factor); imputing it there is not supported yet.",
                    f"missing.covariates.{column}",
                    "use it in the fixed effects of the parameter formulas only, or drop its "
                    "missing rows.",
                )
            )
    SpecError.collect(problems)
    covariates = []
    for column in prep.spec.covariates:
        rows = np.flatnonzero(prep.masks[column])
        cells = design.data.iloc[rows]
        parts_D = {
            p.key: affine_change(p.matrices.common, p.terms, cells, column, where=f" of {p.key}")
            for p in design.params
            if column in common_vars(p.matrices)
        }
        empty = np.zeros((len(rows), 0))
        covariates.append(
            imputed_covariate(
                design.spec,
                design.data,
                design.groups,
                prep,
                column,
                empty,
                make_regression_design,
                parts_D,
            )
        )
    plan = ImputationPlan(prep.spec, tuple(covariates), prep.response_frame, prep.response_masks)
    return replace(design, imputation=plan)
