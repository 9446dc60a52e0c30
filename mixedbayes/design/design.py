"""Stage 2: spec + DataFrame → :class:`Design` (arrays, groups, levels, remembered transforms)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.design.contrasts import FactorCoding, code_factors
from mixedbayes.design.data import (
    DataReport,
    grouping_problems,
    missing_column_problems,
    mixed_type_problems,
    numeric_problems,
    single_level_problems,
)
from mixedbayes.design.dpars import (
    DparDesign,
    dpar_formulas,
    dpar_function_problems,
    dpar_name_problems,
    dpar_variables,
    make_dpar,
)
from mixedbayes.design.formulae import (
    FORMULA_FUNCTIONS,
    formula_variables,
    function_problems,
)
from mixedbayes.design.glm import auxiliary_variables, trials_array, working_response
from mixedbayes.design.groups import GroupFactor, factor_problems, frozen
from mixedbayes.design.imputation import (
    ImputationPlan,
    attach_imputation,
    clean_with_missing,
    imputation_variables,
)
from mixedbayes.design.matrices import (
    DENSE_GROUP_CELLS,
    NewData,
    factors_of,
    formula_matrices,
    group_rows,
    level_rows,
)
from mixedbayes.design.matrices import common_vars as _common_vars
from mixedbayes.design.matrices import fixed_part as _fixed_part
from mixedbayes.design.parametrization import (
    choose_parametrization,
    noncentred_beside_residual_correlation,
    one_centred_intercept,
)
from mixedbayes.design.rank import warn_rank_deficient
from mixedbayes.errors import DataError, Problem, SpecError, format_rows
from mixedbayes.families import Family, Link, get_family, get_link
from mixedbayes.naming import OBS_DIM, Names
from mixedbayes.spec.formula import FormulaParts, split_formula
from mixedbayes.spec.model import ModelSpec
from mixedbayes.spec.residuals import residual_group

__all__ = ["DENSE_GROUP_CELLS", "Design", "NewData", "make_regression_design"]


@dataclass(frozen=True, eq=False)
class Design:
    """A spec applied to data: everything the compile stage needs, and no PyMC.

    Attributes
    ----------
    spec : ModelSpec
    family : Family
    link : Link
    response : str
        The response as written (``"Reaction"``, ``"log(y)"``).
    y : ndarray, shape (n,)
    X : ndarray, shape (n, p)
        Fixed-effects design matrix (uncentred, as formulae builds it).
    fixed_terms : tuple of str
        Column names of ``X`` (``"Intercept"``, ``"Days"``, ``"trt[B]:time"``).
    x_means : ndarray, shape (p,)
        Column means used to centre the non-intercept columns when sampling (0 for the
        intercept).
    groups : tuple of GroupFactor
    data : DataFrame
        The rows used (a copy of the user's rows, original index kept).
    report : DataReport
        Rows in, used, and dropped with reasons.
    source : DataFrame
        The data as given (a copy of the user's frame, every row and column, not to be
        modified): what :func:`make_design` turns into this design again, as a saved fit does.
    offset : ndarray, shape (n,)
        Sum of the formula's ``offset(...)`` terms (zeros when there are none).
    trials : ndarray, optional
        Trials per row (binomial).
    dpars : tuple of DparDesign
        The linear predictors of the family's parameters that have one (distributional
        formulas, in the family's parameter order): the ``zi`` of a zero-inflated family
        (``~ 1`` by default), any other parameter given a formula in the spec.
    coding : FactorCoding
        What the spec's ``contrasts`` did to the formula and the factor columns.
    imputation : ImputationPlan, optional
        What the spec's ``missing:`` imputes (:mod:`mixedbayes.design.imputation`): the
        covariates sampled in the model (their missing cells hold the observed mean in ``X``
        and ``data``) and the rows with a missing response, kept out of the likelihood.
    """

    spec: ModelSpec
    family: Family
    link: Link
    formula: FormulaParts
    response: str
    y: np.ndarray
    X: np.ndarray
    fixed_terms: tuple[str, ...]
    x_means: np.ndarray
    groups: tuple[GroupFactor, ...]
    data: pd.DataFrame
    report: DataReport
    source: pd.DataFrame = field(repr=False)
    _matrices: Any
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    dpars: tuple[DparDesign, ...] = ()
    coding: FactorCoding = field(default_factory=FactorCoding)
    imputation: ImputationPlan | None = None

    @property
    def n(self) -> int:
        """Number of rows used."""
        return int(self.y.shape[0])

    @property
    def has_intercept(self) -> bool:
        """Whether the fixed part has an intercept."""
        return "Intercept" in self.fixed_terms

    def dpar(self, name: str) -> DparDesign | None:
        """The design of the family parameter ``name``'s formula (None when it has none)."""
        return next((d for d in self.dpars if d.name == name), None)

    @property
    def zi_X(self) -> np.ndarray | None:
        """The zero-inflation design matrix (zero-inflated families), else None."""
        zi = self.dpar("zi")
        return None if zi is None else zi.X

    @property
    def zi_terms(self) -> tuple[str, ...]:
        """The zero-inflation formula's term names (zero-inflated families), else ``()``."""
        zi = self.dpar("zi")
        return () if zi is None else zi.terms

    @property
    def obs_index(self) -> pd.Index:
        """The original row labels of the rows used (the ``observation`` coordinate)."""
        return self.data.index

    def working_y(self) -> np.ndarray:
        """The response on the linear-predictor scale, less the offset (``y`` for an LMM).

        Used by least-squares summaries (the ``auto`` parametrization) and as the starting
        values of the shrinkage's pooled GLM fit.
        """
        z = working_response(self.family, self.link, self.y, self.trials)
        return z - self.offset if self.offset is not None else z

    def group(self, name: str) -> GroupFactor:
        """The grouping factor called ``name``; a distributional formula's factor by its key
        (``Subject_zi``)."""
        for g in self.groups:
            if g.name == name:
                return g
        for d in self.dpars:
            for g in d.groups:
                if g.key == name:
                    return g
        raise KeyError(f"no grouping factor {name!r}; factors: {[g.name for g in self.groups]}")

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of every dimension the model uses."""
        coords: dict[str, list[Any]] = {
            OBS_DIM: list(self.obs_index),
            "term": list(self.fixed_terms),
        }
        for g in self.groups:
            coords.update(g.coords())
        for d in self.dpars:
            coords[d.names.term_dim] = list(d.terms)
            for g in d.groups:
                coords.update(g.coords())
        return coords

    def response_values(self, data: pd.DataFrame) -> np.ndarray:
        """The response as the formula writes it (``log(serBilir)``) at new rows ``data``;
        NaN where it is missing."""
        DataError.collect(missing_column_problems(set(self.formula_response_columns()), data))
        frame = self.coding.new_data(data.copy())
        values = self._matrices.response.term.term.eval_new_data(frame)
        return np.asarray(values, dtype=float).reshape(len(frame), -1)[:, 0]

    def formula_response_columns(self) -> list[str]:
        """The data columns the response is computed from."""
        return sorted(v for v in self._matrices.response.term.var_names if v)

    def new_data(self, data: pd.DataFrame) -> NewData:
        """Evaluate the remembered transforms on new rows (for prediction).

        Raises
        ------
        DataError
            If a column the fixed part, a grouping factor or a distributional formula needs
            is missing.
        """
        needed = {v for v in _common_vars(self._matrices) if v}
        for g in self.groups:
            for t in g.formulae_terms:
                needed |= {v for v in self._matrices.group.terms[t].var_names if v}
        for d in self.dpars:
            needed |= d.needed_columns()
        DataError.collect(missing_column_problems(needed - set(FORMULA_FUNCTIONS), data))
        frame = self.coding.new_data(data.copy())
        common = self._matrices.common
        _, X, offset = _fixed_part(
            None if common is None else common.evaluate_new_data(frame), len(frame)
        )
        trials = None
        if self.trials is not None:
            trials = _new_trials(self, frame)
        idx, Zs, new, all_labels = group_rows(self._matrices, self.groups, frame)
        dpars = {d.name: d.new_data(frame) for d in self.dpars}
        return NewData(X, idx, Zs, new, frame.index, all_labels, offset, trials, dpars)


#: Names the model itself uses (variables and dimensions); a grouping factor may not take them.
RESERVED_NAMES = frozenset(
    {"b", "b_slope", "Intercept", "term", "slope", OBS_DIM, "X", "y_obs", "chain", "draw"}
)


def reserved_params(family: Family) -> set[str]:
    """The family's parameters and their formulas' names (``zi``, ``b_zi``, ``zi_term``)."""
    out = {p.name for p in family.params}
    for p in family.formula_params():
        names = Names(p.name)
        out |= {names.b, names.term_dim}
    return out


def name_problems(factors: tuple[GroupFactor, ...], family: Family) -> list[Problem]:
    """Grouping factors whose names collide with the model's own variables or dimensions."""
    reserved = RESERVED_NAMES | reserved_params(family)
    return [
        Problem(
            f"the grouping factor {f.name!r} has a name the model uses for its own "
            f"variables or dimensions ({sorted(reserved)}).",
            f"group '{f.name}'",
            f"rename the column (e.g. df.rename(columns={{{f.name!r}: {f.name + '_id'!r}}})).",
        )
        for f in factors
        if f.name in reserved
    ]


def _new_trials(design: Design, frame: pd.DataFrame) -> np.ndarray:
    parts = design.formula
    needed = auxiliary_variables(parts) | (
        {design.response} if parts.failures is not None else set()
    )
    missing = sorted(c for c in needed if c not in frame.columns)
    if missing:
        raise DataError(
            f"newdata lacks {missing}, needed for the number of trials.",
            where=", ".join(f"column '{c}'" for c in missing),
            hint="add the trials columns to newdata.",
        )
    if parts.trials is not None:
        return trials_array(parts, design.family, frame, np.zeros(len(frame)), FORMULA_FUNCTIONS)  # type: ignore[return-value]
    y = frame[design.response].to_numpy(dtype=float)
    return trials_array(parts, design.family, frame, y, FORMULA_FUNCTIONS)  # type: ignore[return-value]


def _text_function_argument(formula: str, frame: pd.DataFrame) -> tuple[str, str] | None:
    """``("log(Subject)", "Subject")`` when the formula applies a function other than ``C``
    to a column holding text."""
    import re

    for match in re.finditer(r"\b(\w+)\(\s*([A-Za-z_][\w.]*)\s*\)", formula):
        func, col = match.groups()
        if func in ("C", "cbind", "trials") or col not in frame.columns:
            continue
        if not pd.api.types.is_numeric_dtype(frame[col]):
            return match.group(0), col
    return None


def make_regression_design(
    spec: ModelSpec,
    data: pd.DataFrame,
    *,
    formula: str,
    dpars: Mapping[str, str] | None = None,
) -> Design:
    """Apply a regression spec (``lmm``, ``glmm``) to ``data``: validate, then build arrays.

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame
    formula : str
        The lme4 formula (the kind reads it from its spec).
    dpars : mapping of str to str, optional
        Distributional formulas by family parameter, right-hand sides with fixed and group
        effects (``{"zi": "~ trt + (1 | Subject)"}``); a parameter that always has a predictor
        (``zi``) gets ``~ 1`` when none is given.

    Notes
    -----
    ``data`` is not modified. Rows with a missing response or covariate are dropped with a
    :class:`~mixedbayes.design.data.DataWarning` and listed in ``design.report``.

    Returns
    -------
    Design

    Raises
    ------
    DataError
        Naming every problem at once: missing columns, a non-numeric response, missing
        values in a grouping column, empty data, non-finite values.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, not {type(data).__name__}.",
            where="data",
            hint="load it with pd.read_csv or mb.datasets.load.",
        )
    if data.empty:
        raise DataError(
            "the data have no rows.", where="data", hint="pass a DataFrame with observations."
        )
    parts = split_formula(formula)
    family = get_family(spec.family.name)
    link = get_link(spec.family.link_name)
    rhs = dpar_formulas(family, dpars)
    bad_calls = function_problems(formula, parts.formulae_formula)
    for key, text in rhs.items():
        bad_calls += dpar_function_problems(key, text)
    SpecError.collect(bad_calls)
    response, covariates, groups = formula_variables(parts)
    response |= auxiliary_variables(parts)
    for key, text in rhs.items():
        more_covariates, more_groups = dpar_variables(key, text, parts.response)
        covariates |= more_covariates
        groups |= more_groups
    more_covariates, more_groups = imputation_variables(spec, parts.response, covariates)
    roles = {c: "missing.covariates names the" for c in more_covariates - covariates - groups}
    covariates |= more_covariates - groups
    groups |= more_groups
    DataError.collect(missing_column_problems(response | covariates | groups, data, roles))
    problems: list[Problem] = []
    for col in sorted(response):
        problems += numeric_problems(data, col)
    problems += mixed_type_problems(data, sorted(covariates | groups))
    problems += grouping_problems(data, sorted(groups))
    DataError.collect(problems)
    frame, report, missing = clean_with_missing(
        spec, data, response=sorted(response), covariates=sorted(covariates), groups=sorted(groups)
    )
    frame, coding = code_factors(spec.contrasts, frame, covariates=covariates, groups=groups)
    formula = coding.rewrite(formula)
    rhs = {key: coding.rewrite(text) for key, text in rhs.items()}
    parts = split_formula(formula)
    DataError.collect(single_level_problems(frame, covariates, [formula, *rhs.values()]))
    # formulae's group matrices are dense (rows × levels): above DENSE_GROUP_CELLS the group
    # terms are learnt on a few rows and evaluated on every row by us
    rows = level_rows(frame, groups, covariates, DENSE_GROUP_CELLS)
    try:
        dm = formula_matrices(parts, frame, rows)
    except Exception as exc:  # formulae raises ValueError/KeyError/TypeError
        text_arg = _text_function_argument(formula, frame)
        if text_arg is not None:
            call, col = text_arg
            raise DataError(
                f"{call} applies a numeric function to the text column {col!r}.",
                where=f"column '{col}'",
                hint=f"use a numeric column, or convert {col!r} first (pd.to_numeric).",
            ) from None
        raise DataError(
            f"formulae could not build the design matrices: {exc}.",
            where="formula",
            hint="check that the formula's functions and columns apply to these data.",
        ) from None
    y = np.asarray(dm.response.design_matrix, dtype=float).reshape(len(frame), -1)
    if y.shape[1] != 1:
        raise SpecError(
            f"the response {parts.response!r} gives {y.shape[1]} columns; this kind takes one.",
            where="formula",
        )
    y = y[:, 0]
    names, X, offset = _fixed_part(dm.common, len(frame))
    trials = trials_array(parts, family, frame, y, FORMULA_FUNCTIONS)
    options = {g: spec.group_options(g).parametrization for g in groups | set(spec.group_effects)}
    dpar_designs = tuple(
        make_dpar(key, text, family, parts.response, frame, rows, options)
        for key, text in rhs.items()
    )
    problems = family.response_problems(pd.Series(y, index=frame.index), parts.response, trials)
    for j, name in enumerate(names):
        bad = frame.index[~np.isfinite(X[:, j])]
        if len(bad):
            problems.append(
                Problem(
                    f"the predictor is not finite in rows {format_rows(list(bad))}.",
                    f"term '{name}'",
                    "check the transformation (e.g. log of values <= 0) or the data.",
                )
            )
    bad_offset = frame.index[~np.isfinite(offset)]
    if len(bad_offset):
        problems.append(
            Problem(
                f"the offset is not finite in rows {format_rows(list(bad_offset))}.",
                "offset",
                "an offset(log(exposure)) needs exposure > 0.",
            )
        )
    DataError.collect(problems)
    warn_rank_deficient(X, names)
    factors = factors_of(dm, parts, frame, rows)
    SpecError.collect(
        name_problems(factors, family)
        + dpar_name_problems(factors, dpar_designs, set(RESERVED_NAMES) | reserved_params(family))
    )
    DataError.collect(
        factor_problems(factors + tuple(f for d in dpar_designs for f in d.groups), len(frame))
    )
    z = working_response(family, link, y, trials) - offset  # == Design.working_y()
    # the auto rule fits the rows that inform mu (not the structural zeros of a ZI beta)
    keep = family.mean_rows(y)
    factors = tuple(
        f.with_blocks(
            choose_parametrization(
                f.take_rows(keep), z[keep], X[keep], spec.group_options(f.name).parametrization
            ).blocks
        )
        for f in factors
    )
    auto = {f.name for f in factors if spec.group_options(f.name).parametrization == "auto"}
    factors = one_centred_intercept(factors, auto)
    residuals = getattr(spec, "residuals", None)
    if residuals is not None:
        factors = noncentred_beside_residual_correlation(
            factors, residual_group(formula, residuals), residuals.correlation, auto
        )
    known = [f.name for f in factors]
    known += [f.name for d in dpar_designs for f in d.groups if f.name not in known]
    unknown = set(spec.group_effects) - set(known)
    if unknown:
        raise SpecError(
            f"group_effects names grouping factors the formula does not have: {sorted(unknown)}.",
            where="group_effects",
            hint=f"use the factors of the formula: {known}.",
        )
    x_means = X.mean(axis=0)
    if "Intercept" in names:
        x_means[names.index("Intercept")] = 0.0
    else:
        x_means[:] = 0.0
    design = Design(
        spec=spec,
        family=family,
        link=link,
        formula=parts,
        response=parts.response,
        y=frozen(y, float),
        X=frozen(X, float),
        fixed_terms=tuple(names),
        x_means=frozen(x_means, float),
        groups=factors,
        data=frame,
        report=report,
        source=data.copy(),
        _matrices=dm,
        offset=frozen(offset, float),
        trials=None if trials is None else frozen(trials, float),
        dpars=dpar_designs,
        coding=coding,
    )
    imputed: Design = attach_imputation(design, missing, make_regression_design)
    return imputed
