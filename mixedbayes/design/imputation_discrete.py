"""Discrete covariates summed out of the model (``missing:``, families ``bernoulli`` and
``categorical``): their classes and, per class, the change of the design's columns.

A discrete covariate's missing cells hold one class in ``design.X`` (the *fill*: class 0 of
a binary covariate, the first level of a categorical one). For every class ``k`` the
model needs the columns of those rows with the covariate set to ``k``: ``X_fill + D_k``,
where ``D_k`` (:func:`class_changes`) is the change of every column from the fill's class
to class ``k`` (zero for the fill's own class). No affinity is needed: each class's columns
are evaluated directly, so any coding of the factor (treatment, sum, a reference moved by
``contrasts``) and any interaction with it works.

A categorical covariate (a pandas ``Categorical`` or a column of strings with K ≥ 2 levels)
has a multinomial-logit submodel (fixed effects only) whose baseline is the first level of
the main model's ordering (its reference level); see :mod:`mixedbayes.compile.imputation_discrete`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.design.matrices import fixed_part
from mixedbayes.errors import DataError, Problem

__all__ = [
    "categorical_codes",
    "categorical_covariate",
    "categorical_levels",
    "categorical_problem",
    "class_changes",
    "indicator_frame",
]


def categorical_levels(values: pd.Series) -> list[str]:
    """The levels of a factor column in the order the formula codes them: a
    ``Categorical``'s categories, else the sorted distinct values (as text)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    return sorted({str(v) for v in values.dropna()})


def categorical_problem(column: str, values: pd.Series) -> Problem | None:
    """Why ``values`` cannot be a categorical covariate summed out of the model (None when
    it can): it must be a ``Categorical`` or hold text, with at least two levels."""
    numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    if numeric and not isinstance(values.dtype, pd.CategoricalDtype):
        return Problem(
            "a categorical covariate summed out of the model (family categorical) must be a "
            "pandas Categorical or hold text (its levels), with missing values as NaN.",
            f"column '{column}'",
            f"convert it, e.g. df[{column!r}] = df[{column!r}].astype('category'); a 0/1 "
            "column takes family bernoulli.",
        )
    if len(categorical_levels(values)) < 2:
        return Problem(
            "a categorical covariate needs at least two levels.",
            f"column '{column}'",
            f"remove {column!r} from the formula, or check its values.",
        )
    return None


def categorical_codes(values: pd.Series, levels: Sequence[str], column: str) -> np.ndarray:
    """Each value's position among ``levels`` (-1 where missing); a ``DataError`` naming the
    values that are not among them (a level the formula's rows do not have)."""
    text = values.astype(object).where(values.notna(), None)
    position = {lv: i for i, lv in enumerate(levels)}
    unknown = sorted({str(v) for v in text.dropna() if str(v) not in position})
    if unknown:
        raise DataError(
            f"the column {column!r} holds the level(s) {unknown}, which are not among the "
            f"levels of the model's formula {list(levels)} (they appear only in rows the "
            "likelihood does not use).",
            where=f"column '{column}'",
            hint="recode those values to one of the formula's levels, or drop those rows.",
        )
    return np.array([-1 if v is None else position[str(v)] for v in text], dtype=np.int64)


def indicator_frame(frame: pd.DataFrame, column: str, levels: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the factor ``column`` replaced by 0/1 (not the first level; NaN where
    missing): what the submodel's design is built on (only its right side is used)."""
    codes = categorical_codes(frame[column], levels, column)
    indicator = np.where(codes < 0, np.nan, (codes > 0).astype(float))
    return frame.assign(**{column: indicator})


def class_changes(
    common: Any,
    frame: pd.DataFrame,
    column: str,
    classes: Sequence[Any],
    fill: Any,
    *,
    coded: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    n_columns: int = 0,
) -> np.ndarray:
    """The change of the columns of formulae's common design ``common`` at the rows
    ``frame`` from the class ``fill`` to each class of ``classes``, shape
    (len(classes), rows, columns) (zero at the fill's class)."""
    if common is None or frame.empty:
        return np.zeros((len(classes), len(frame), n_columns))
    categorical = isinstance(frame[column].dtype, pd.CategoricalDtype)

    def columns_at(value: Any) -> np.ndarray:
        if categorical:
            cats = frame[column].cat.categories
            value = cats[[str(c) for c in cats].index(str(value))]
            value = pd.Categorical([value] * len(frame), categories=cats)
        rows = frame.assign(**{column: value}).copy()
        if coded is not None:
            rows = coded(rows)
        with np.errstate(all="ignore"):
            _, X, _ = fixed_part(common.evaluate_new_data(rows), len(frame))
        return np.asarray(X, dtype=float)

    base = columns_at(fill)
    return np.stack([columns_at(c) - base for c in classes])


def categorical_covariate(
    design: Any,
    prep: Any,
    column: str,
    rows: np.ndarray,
    make: Callable[..., Any],
    build: Callable[..., Any],
) -> Any:
    """The ``ImputedCovariate`` of a categorical covariate: its levels (the main
    formula's order), the change of ``design.X`` from the fill's level to each at its
    missing cells, its submodel's design (fixed effects, on the "not the first level"
    indicator, which gives the default priors) and the level codes; ``build`` is
    :func:`~mixedbayes.design.imputation.imputed_covariate`."""
    levels = categorical_levels(design.data[column])
    class_D = class_changes(
        design._matrices.common,
        design.data.iloc[rows],
        column,
        levels,
        prep.fills[column],
        coded=design.coding.new_data,
        n_columns=len(design.fixed_terms),
    )
    mask, aside = prep.masks[column], prep.response_frame
    codes = [categorical_codes(design.data[column].where(~mask), levels, column)]
    if aside is not None and not aside.empty:
        observed = aside[column].where(~prep.response_masks[column])
        codes.append(categorical_codes(observed, levels, column))  # levels the formula knows
        aside = indicator_frame(aside, column, levels)
    sub = prep.spec.covariates[column]
    binary = prep.spec.model_copy(
        update={"covariates": {column: sub.model_copy(update={"family": "bernoulli"})}}
    )
    indicator = indicator_frame(design.data, column, levels)
    fake = dataclasses.replace(prep, spec=binary, response_frame=aside)
    cov = build(design.spec, indicator, design.groups, fake, column, class_D[0], make)
    return dataclasses.replace(
        cov,
        spec=sub,
        fill=prep.fills[column],
        levels=tuple(levels),
        class_D=class_D,
        codes=np.concatenate(codes)[: cov.sub.n],
    )
