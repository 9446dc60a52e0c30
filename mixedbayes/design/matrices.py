"""formulae's design matrices of one formula, its grouping factors, and their rows in new data.

Shared by every linear predictor a regression design holds: the response's formula and the
distributional formulas of family parameters (``zi: "~ x + (1 | g)"``). formulae builds group
matrices densely (rows × levels); above :data:`DENSE_GROUP_CELLS` the group terms are learnt
on a few rows and evaluated on every row (:func:`~mixedbayes.design.groups.evaluate_factor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.design.formulae import FORMULA_FUNCTIONS, common_names
from mixedbayes.design.glm import split_offsets
from mixedbayes.design.groups import GroupFactor, evaluate_factor, group_factors
from mixedbayes.spec.formula import FormulaParts, fixed_formula

__all__ = [
    "DENSE_GROUP_CELLS",
    "FixedPredictors",
    "NewData",
    "factor_labels",
    "factors_of",
    "fixed_part",
    "fixed_predictors",
    "formula_matrices",
    "group_rows",
    "level_rows",
]


@dataclass(frozen=True)
class NewData:
    """Design arrays for new rows (predictions): fixed part and, per group, levels and Z.

    ``group_index[g]`` is -1 for a level the model has not seen. ``dpars`` holds, by family
    parameter, the same arrays of its distributional formula (``zi``).
    """

    X: np.ndarray
    group_index: dict[str, np.ndarray]
    group_Z: dict[str, np.ndarray]
    new_levels: dict[str, tuple[str, ...]]
    index: pd.Index
    group_labels: dict[str, list[str]]
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    dpars: dict[str, NewData] = field(default_factory=dict)


#: Above this many cells (rows × levels of every grouping factor) the group structure is
#: learnt on one row per level rather than from formulae's dense rows × levels matrices.
DENSE_GROUP_CELLS = 20_000_000


@dataclass(frozen=True)
class _SplitMatrices:
    """formulae's matrices when the group part was learnt on a subset of rows."""

    response: Any
    common: Any
    group: Any


def matrices(formula: str, frame: pd.DataFrame) -> Any:
    """formulae's design matrices of ``formula`` on ``frame`` (missing values are errors)."""
    import formulae as fm

    return fm.design_matrices(formula, frame, na_action="error", extra_namespace=FORMULA_FUNCTIONS)


def level_rows(
    frame: pd.DataFrame, groups: set[str], covariates: set[str], cells: int = DENSE_GROUP_CELLS
) -> Any:
    """Positions of a few rows (the first, and one per category of every non-numeric
    covariate) to learn the group terms on, when formulae's dense rows × levels group
    matrices would have more than ``cells`` cells; else None."""
    if not groups:
        return None
    cols = sorted(groups)
    n_levels = int(frame[cols].drop_duplicates().shape[0])
    if len(frame) * n_levels * len(cols) <= cells:
        return None
    keep = np.zeros(len(frame), dtype=bool)
    keep[0] = True
    for col in sorted(covariates):
        if col in frame and not pd.api.types.is_numeric_dtype(frame[col]):
            keep |= ~frame.duplicated(subset=[col]).to_numpy()
    return np.flatnonzero(keep)


def formula_matrices(parts: FormulaParts, frame: pd.DataFrame, rows: Any) -> Any:
    """formulae's matrices of a split formula on every row of ``frame``; with ``rows`` (from
    :func:`level_rows`) the group part is learnt on those rows only."""
    if rows is None:
        return matrices(parts.formulae_formula, frame)
    lhs = parts.formulae_formula.split("~", 1)[0]
    full = matrices(lhs + "~" + fixed_formula(parts.formula).split("~", 1)[1], frame)
    grouped = matrices(parts.formulae_formula, frame.iloc[rows])
    return _SplitMatrices(full.response, full.common, grouped.group)


def factors_of(
    dm: Any, parts: FormulaParts, frame: pd.DataFrame, rows: Any
) -> tuple[GroupFactor, ...]:
    """The grouping factors of a formula's matrices, evaluated on every row of ``frame``."""
    factors = group_factors(dm.group, parts.bars, len(frame))
    if rows is not None:
        factors = tuple(
            evaluate_factor(f, dm.group, frame, factor_labels(frame, f.name)) for f in factors
        )
    return factors


def fixed_part(common: Any, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, matrix and offset of formulae's common part (none for ``y ~ 0 + (1 | g)``)."""
    if common is None:
        return [], np.zeros((n, 0)), np.zeros(n)
    X = np.asarray(common.design_matrix, dtype=float)
    names, X, offset = split_offsets(common_names(common), X)
    return list(names), X, offset


def common_vars(dm: Any) -> set[str]:
    """The data columns the fixed part of formulae's matrices reads."""
    out: set[str] = set()
    if dm.common is None:
        return out
    for term in dm.common.terms.values():
        out |= getattr(term, "var_names", set())
    return out


@dataclass(frozen=True)
class FixedPredictors:
    """The data columns the fixed part of a formula reads.

    Attributes
    ----------
    categorical : tuple of str
        Columns read as factors (text, Categorical, or wrapped in ``C(...)``).
    numeric : tuple of str
        Columns read only as numbers (``age``, ``np.log(dose)``'s ``dose``; formulae reads
        a boolean column as 0/1).
    terms : tuple of frozenset of str
        The columns of each term (``trt:visit`` → ``{"trt", "visit"}``): which interact.
    """

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    terms: tuple[frozenset[str], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column, factors first."""
        return self.categorical + self.numeric


def fixed_predictors(dm: Any) -> FixedPredictors:
    """The columns formulae's fixed part reads, as factors or as numbers (each in formula
    order), and the columns of each term."""
    categorical: dict[str, None] = {}
    numeric: dict[str, None] = {}
    terms: list[frozenset[str]] = []
    for term in [] if dm.common is None else dm.common.terms.values():
        columns: set[str] = set()
        for component in getattr(term, "components", ()):
            names = [v for v in sorted(getattr(component, "var_names", ())) if v]
            columns.update(names)
            # formulae gives a categoric component its levels; a numeric one has None
            target = numeric if getattr(component, "levels", None) is None else categorical
            target.update(dict.fromkeys(names))
        if columns:
            terms.append(frozenset(columns))
    return FixedPredictors(
        tuple(categorical), tuple(c for c in numeric if c not in categorical), tuple(terms)
    )


def group_vars(dm: Any, groups: tuple[GroupFactor, ...]) -> set[str]:
    """The data columns the group terms of ``groups`` read (their factors included)."""
    out: set[str] = set()
    for g in groups:
        for t in g.formulae_terms:
            out |= {v for v in dm.group.terms[t].var_names if v}
    return out


def factor_labels(frame: pd.DataFrame, name: str) -> list[str]:
    """Level label of each row for a (possibly nested ``a:b``) grouping factor."""
    parts = name.split(":")
    labels = frame[parts[0]].astype(str)
    for part in parts[1:]:
        labels = labels + ":" + frame[part].astype(str)
    return labels.tolist()


def group_rows(
    dm: Any, groups: tuple[GroupFactor, ...], frame: pd.DataFrame
) -> tuple[
    dict[str, np.ndarray], dict[str, np.ndarray], dict[str, tuple[str, ...]], dict[str, list[str]]
]:
    """How new rows read each factor: the level index (-1 for an unseen level), ``Z``, the
    unseen levels and every row's label, by factor name."""
    idx: dict[str, np.ndarray] = {}
    Zs: dict[str, np.ndarray] = {}
    new: dict[str, tuple[str, ...]] = {}
    labels_of: dict[str, list[str]] = {}
    for g in groups:
        cols = []
        for t in g.formulae_terms:
            x = np.asarray(dm.group.terms[t].expr.eval_new_data(frame), dtype=float)
            cols.append(x[:, None] if x.ndim == 1 else x)
        Zs[g.name] = np.column_stack(cols)
        labels = factor_labels(frame, g.name)
        labels_of[g.name] = labels
        lookup = {lv: i for i, lv in enumerate(g.levels)}
        ix = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
        idx[g.name] = ix
        new[g.name] = tuple(sorted({labels[i] for i in np.flatnonzero(ix < 0)}))
    return idx, Zs, new, labels_of
