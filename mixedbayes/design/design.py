"""Stage 2: spec + DataFrame → :class:`Design` (arrays, groups, levels, remembered transforms)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.design.contrasts import FactorCoding, code_factors
from mixedbayes.design.data import (
    DataReport,
    clean_data,
    grouping_problems,
    missing_column_problems,
    mixed_type_problems,
    numeric_problems,
    single_level_problems,
)
from mixedbayes.design.formulae import (
    FORMULA_FUNCTIONS,
    common_names,
    formula_variables,
    function_problems,
)
from mixedbayes.design.glm import (
    auxiliary_variables,
    split_offsets,
    trials_array,
    working_response,
    zi_design,
)
from mixedbayes.design.groups import (
    GroupFactor,
    evaluate_factor,
    factor_problems,
    frozen,
    group_factors,
)
from mixedbayes.design.parametrization import choose_parametrization, one_centred_intercept
from mixedbayes.errors import DataError, Problem, SpecError, format_rows
from mixedbayes.families import Family, Link, get_family, get_link
from mixedbayes.naming import OBS_DIM
from mixedbayes.spec.formula import FormulaParts, fixed_formula, split_formula
from mixedbayes.spec.model import ModelSpec

__all__ = ["Design", "NewData", "make_regression_design"]


@dataclass(frozen=True)
class NewData:
    """Design arrays for new rows (predictions): fixed part and, per group, levels and Z.

    ``group_index[g]`` is -1 for a level the model has not seen.
    """

    X: np.ndarray
    group_index: dict[str, np.ndarray]
    group_Z: dict[str, np.ndarray]
    new_levels: dict[str, tuple[str, ...]]
    index: pd.Index
    group_labels: dict[str, list[str]]
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    zi_X: np.ndarray | None = None


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
    zi_X, zi_terms
        Zero-inflation design and its term names (zero-inflated families).
    coding : FactorCoding
        What the spec's ``contrasts`` did to the formula and the factor columns.
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
    zi_X: np.ndarray | None = None
    zi_terms: tuple[str, ...] = ()
    _zi_matrices: Any = None
    coding: FactorCoding = field(default_factory=FactorCoding)

    @property
    def n(self) -> int:
        """Number of rows used."""
        return int(self.y.shape[0])

    @property
    def has_intercept(self) -> bool:
        """Whether the fixed part has an intercept."""
        return "Intercept" in self.fixed_terms

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
        """The grouping factor called ``name``."""
        for g in self.groups:
            if g.name == name:
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
            If a column the fixed part or a grouping factor needs is missing.
        """
        needed = {v for v in _common_vars(self._matrices) if v}
        for g in self.groups:
            for t in g.formulae_terms:
                needed |= {v for v in self._matrices.group.terms[t].var_names if v}
        DataError.collect(missing_column_problems(needed - set(FORMULA_FUNCTIONS), data))
        frame = self.coding.new_data(data.copy())
        common = self._matrices.common
        _, X, offset = _fixed_part(
            None if common is None else common.evaluate_new_data(frame), len(frame)
        )
        trials = None
        if self.trials is not None:
            trials = _new_trials(self, frame)
        zi_X = None
        if self._zi_matrices is not None:
            zi_X = np.asarray(
                self._zi_matrices.common.evaluate_new_data(frame).design_matrix, dtype=float
            )
        idx: dict[str, np.ndarray] = {}
        Zs: dict[str, np.ndarray] = {}
        new: dict[str, tuple[str, ...]] = {}
        all_labels: dict[str, list[str]] = {}
        for g in self.groups:
            cols = []
            for t in g.formulae_terms:
                term = self._matrices.group.terms[t]
                x = np.asarray(term.expr.eval_new_data(frame), dtype=float)
                cols.append(x[:, None] if x.ndim == 1 else x)
            Zs[g.name] = np.column_stack(cols)
            labels = _factor_labels(frame, g.name)
            all_labels[g.name] = labels
            lookup = {lv: i for i, lv in enumerate(g.levels)}
            ix = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
            idx[g.name] = ix
            new[g.name] = tuple(sorted({labels[i] for i in np.flatnonzero(ix < 0)}))
        return NewData(X, idx, Zs, new, frame.index, all_labels, offset, trials, zi_X)


#: Names the model itself uses (variables and dimensions); a grouping factor may not take them.
RESERVED_NAMES = frozenset(
    {"b", "b_slope", "Intercept", "term", "slope", OBS_DIM, "X", "y_obs", "chain", "draw"}
)


def name_problems(factors: tuple[GroupFactor, ...], family: Family) -> list[Problem]:
    """Grouping factors whose names collide with the model's own variables or dimensions."""
    reserved = RESERVED_NAMES | {p.name for p in family.params}
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


def _fixed_part(common: Any, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, matrix and offset of formulae's common part (none for ``y ~ 0 + (1 | g)``)."""
    if common is None:
        return [], np.zeros((n, 0)), np.zeros(n)
    X = np.asarray(common.design_matrix, dtype=float)
    names, X, offset = split_offsets(common_names(common), X)
    return list(names), X, offset


def _common_vars(matrices: Any) -> set[str]:
    out: set[str] = set()
    if matrices.common is None:
        return out
    for term in matrices.common.terms.values():
        out |= getattr(term, "var_names", set())
    return out


def _factor_labels(frame: pd.DataFrame, name: str) -> list[str]:
    """Level label of each row for a (possibly nested ``a:b``) grouping factor."""
    parts = name.split(":")
    labels = frame[parts[0]].astype(str)
    for part in parts[1:]:
        labels = labels + ":" + frame[part].astype(str)
    return labels.tolist()


#: Above this many cells (rows × levels of every grouping factor) the group structure is
#: learnt on one row per level rather than from formulae's dense rows × levels matrices.
DENSE_GROUP_CELLS = 20_000_000


@dataclass(frozen=True)
class _SplitMatrices:
    """formulae's matrices when the group part was learnt on a subset of rows."""

    response: Any
    common: Any
    group: Any


def _matrices(formula: str, frame: pd.DataFrame) -> Any:
    import formulae as fm

    return fm.design_matrices(formula, frame, na_action="error", extra_namespace=FORMULA_FUNCTIONS)


def _level_rows(frame: pd.DataFrame, groups: set[str], covariates: set[str]) -> Any:
    """Positions of a few rows (the first, and one per category of every non-numeric
    covariate) to learn the group terms on, when formulae's dense rows × levels group
    matrices would be too large; else None."""
    if not groups:
        return None
    cols = sorted(groups)
    n_levels = int(frame[cols].drop_duplicates().shape[0])
    if len(frame) * n_levels * len(cols) <= DENSE_GROUP_CELLS:
        return None
    keep = np.zeros(len(frame), dtype=bool)
    keep[0] = True
    for col in sorted(covariates):
        if col in frame and not pd.api.types.is_numeric_dtype(frame[col]):
            keep |= ~frame.duplicated(subset=[col]).to_numpy()
    return np.flatnonzero(keep)


def make_regression_design(
    spec: ModelSpec, data: pd.DataFrame, *, formula: str, zi: str | None = None
) -> Design:
    """Apply a regression spec (``lmm``, ``glmm``) to ``data``: validate, then build arrays.

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame
    formula : str
        The lme4 formula (the kind reads it from its spec).
    zi : str, optional
        The zero-inflation formula's right-hand side (``"~ 1 + x"``) of zero-inflated
        families.

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
    bad_calls = function_problems(formula, parts.formulae_formula)
    if zi:
        bad_calls += function_problems(zi, split_formula("zi " + zi).formulae_formula, "zi")
    SpecError.collect(bad_calls)
    family = get_family(spec.family.name)
    link = get_link(spec.family.link_name)
    response, covariates, groups = formula_variables(parts)
    response |= auxiliary_variables(parts)
    if zi:
        covariates |= formula_variables(split_formula("zi " + zi))[1]
    DataError.collect(missing_column_problems(response | covariates | groups, data))
    problems: list[Problem] = []
    for col in sorted(response):
        problems += numeric_problems(data, col)
    problems += mixed_type_problems(data, sorted(covariates | groups))
    problems += grouping_problems(data, sorted(groups))
    DataError.collect(problems)
    frame, report = clean_data(
        data, response=sorted(response), covariates=sorted(covariates), groups=sorted(groups)
    )
    frame, coding = code_factors(spec.contrasts, frame, covariates=covariates, groups=groups)
    formula = coding.rewrite(formula)
    zi = coding.rewrite(zi) if zi else zi
    parts = split_formula(formula)
    DataError.collect(single_level_problems(frame, covariates, [formula, zi or ""]))
    level_rows = _level_rows(frame, groups, covariates)
    try:
        if level_rows is None:
            dm = _matrices(parts.formulae_formula, frame)
        else:
            # formulae's group matrices are dense (rows × levels): learn the group terms on a
            # few rows, evaluate them and the levels on every row ourselves.
            lhs = parts.formulae_formula.split("~", 1)[0]
            full = _matrices(lhs + "~" + fixed_formula(formula).split("~", 1)[1], frame)
            grouped = _matrices(parts.formulae_formula, frame.iloc[level_rows])
            dm = _SplitMatrices(full.response, full.common, grouped.group)
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
    zi_X, zi_terms, zi_matrices = zi_design(zi, family, parts, frame, FORMULA_FUNCTIONS)
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
    factors = group_factors(dm.group, parts.bars, len(frame))
    if level_rows is not None:
        factors = tuple(
            evaluate_factor(f, dm.group, frame, _factor_labels(frame, f.name)) for f in factors
        )
    SpecError.collect(name_problems(factors, family))
    DataError.collect(factor_problems(factors, len(frame)))
    z = working_response(family, link, y, trials) - offset  # == Design.working_y()
    factors = tuple(
        choose_parametrization(f, z, X, spec.group_options(f.name).parametrization) for f in factors
    )
    factors = one_centred_intercept(
        factors, {f.name for f in factors if spec.group_options(f.name).parametrization == "auto"}
    )
    unknown = set(spec.group_effects) - {f.name for f in factors}
    if unknown:
        raise SpecError(
            f"group_effects names grouping factors the formula does not have: {sorted(unknown)}.",
            where="group_effects",
            hint=f"use the factors of the formula: {[f.name for f in factors]}.",
        )
    x_means = X.mean(axis=0)
    if "Intercept" in names:
        x_means[names.index("Intercept")] = 0.0
    else:
        x_means[:] = 0.0
    return Design(
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
        zi_X=None if zi_X is None else frozen(zi_X, float),
        zi_terms=zi_terms,
        _zi_matrices=zi_matrices,
        coding=coding,
    )
