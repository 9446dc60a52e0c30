"""Distributional formulas: a linear predictor for a family parameter.

brms's ``zi ~ trt + (1 | subject)``, glmmTMB's ``ziformula``: a family parameter that the
family declares formula-capable (:attr:`~mixedbayes.families.FamilyParam.link`) gets a design
of its own over the response's rows: a fixed-effects matrix and grouping factors. Its group
effects have a covariance of their own (the factors' ``part`` is the parameter, so their
variables are ``sd_<g>_<param>``, ``r_<g>_<param>``), built by the same group-effect core as
the response's. A parameter that must always have a predictor (``zi``) gets ``~ 1`` when the
spec gives none; one that need not (``phi``, ``sigma``) stays a scalar without a formula.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from mixedbayes.design.formulae import formula_variables, function_problems
from mixedbayes.design.groups import GroupFactor, Param, frozen
from mixedbayes.design.matrices import (
    NewData,
    common_vars,
    factors_of,
    fixed_part,
    formula_matrices,
    group_rows,
    group_vars,
)
from mixedbayes.errors import DataError, Problem, SpecError
from mixedbayes.families import Family, Link, get_link
from mixedbayes.naming import Names
from mixedbayes.spec.formula import FormulaParts, split_formula

__all__ = ["DparDesign", "dpar_formulas", "dpar_name_problems", "dpar_variables", "make_dpar"]

#: Why the ``auto`` rule leaves a distributional parameter's effects non-centred.
AUTO_REASON = (
    "auto: non-centred (a family parameter's levels are seen only through the response's "
    "distribution, weakly; set group_effects: {<group>: {parametrization: centered}} to "
    "change it)"
)


@dataclass(frozen=True, eq=False)
class DparDesign:
    """The linear predictor of one family parameter over the design's rows.

    Attributes
    ----------
    name : str
        The family parameter (``"zi"``): the part of its names (``b_zi``, ``zi_term``,
        ``X_zi``, ``sd_Subject_zi``) and the ``nlpar`` of its priors.
    link : Link
        The parameter's link (``logit`` for ``zi``).
    formula : str
        The right-hand side as used (after the spec's contrasts), e.g. ``"~ Trt + (1 | s)"``.
    X : ndarray, shape (n, p)
        Fixed-effects matrix (uncentred, as formulae builds it).
    terms : tuple of str
        Column names of ``X``.
    groups : tuple of GroupFactor
        Its grouping factors, with ``part`` = ``name``.
    """

    name: str
    link: Link
    formula: str
    X: np.ndarray
    terms: tuple[str, ...]
    groups: tuple[GroupFactor, ...]
    _matrices: Any = field(repr=False)

    @property
    def names(self) -> Names:
        """The part's names (of the plain model: ``Names("zi")``)."""
        return Names(self.name)

    def needed_columns(self) -> set[str]:
        """The data columns its fixed part and group terms read."""
        return common_vars(self._matrices) | group_vars(self._matrices, self.groups)

    def rows(self) -> NewData:
        """Its arrays at the fitted rows (as :meth:`new_data` gives them for new rows)."""
        return NewData(
            X=self.X,
            group_index={g.name: g.index for g in self.groups},
            group_Z={g.name: g.Z for g in self.groups},
            new_levels={},
            index=pd.RangeIndex(self.X.shape[0]),
            group_labels={},
        )

    def new_data(self, frame: pd.DataFrame) -> NewData:
        """Its arrays at new rows ``frame`` (already coded as the design's data)."""
        common = self._matrices.common
        _, X, _ = fixed_part(
            None if common is None else common.evaluate_new_data(frame), len(frame)
        )
        idx, Zs, new, labels = group_rows(self._matrices, self.groups, frame)
        return NewData(X, idx, Zs, new, frame.index, labels)


def dpar_formulas(family: Family, given: Mapping[str, str] | None) -> dict[str, str]:
    """The distributional formulas of a design, in the family's parameter order: those
    ``given`` and ``~ 1`` for a parameter that is always a predictor (``zi``).

    Raises
    ------
    SpecError
        For a formula of a parameter the family has not, or that takes none (the spec's
        validation says so first; a direct call of the design stage too).
    """
    given = dict(given or {})
    problems = []
    for key in sorted(given):
        param = family.param(key)
        if param is None or not param.takes_formula:
            from mixedbayes.families import families_with_formula

            problems.append(
                Problem(
                    f"the family {family.name!r} has no parameter {key!r} that takes a formula.",
                    key,
                    f"families whose {key!r} does: {families_with_formula(key)}.",
                )
            )
    SpecError.collect(problems)
    out = {}
    for p in family.formula_params():
        if p.name in given:
            out[p.name] = given[p.name]
        elif p.predictor:
            out[p.name] = "~ 1"
    return out


def split_dpar(key: str, rhs: str, response: str) -> FormulaParts:
    """A distributional formula split as formulae reads it (with the response on its left:
    formulae needs one; it is not used)."""
    return split_formula(f"{response} {rhs.strip()}")


def dpar_variables(key: str, rhs: str, response: str) -> tuple[set[str], set[str]]:
    """The covariate and grouping columns of a distributional formula."""
    _, covariates, groups = formula_variables(split_dpar(key, rhs, response))
    return covariates, groups


def dpar_function_problems(key: str, rhs: str) -> list[Problem]:
    """Calls no formula can make in the formula of ``key``."""
    return function_problems(rhs, split_formula(f"{key} {rhs}").formulae_formula, key)


def make_dpar(
    key: str,
    rhs: str,
    family: Family,
    response: str,
    frame: pd.DataFrame,
    rows: Any,
    parametrization: Mapping[str, str],
) -> DparDesign:
    """The design of the family parameter ``key``'s formula ``rhs`` on ``frame``.

    Parameters
    ----------
    key, rhs : str
        The parameter and its right-hand side (contrasts already applied).
    family : Family
    response : str
        The response as formulae reads it (only to complete the formula for formulae).
    frame : DataFrame
        The design's rows.
    rows : array or None
        :func:`~mixedbayes.design.matrices.level_rows` of the design.
    parametrization : mapping of str to str
        By grouping factor, the spec's parametrization (``auto`` leaves them non-centred).
    """
    param = family.param(key)
    assert param is not None and param.link is not None
    parts = split_dpar(key, rhs, response)
    try:
        dm = formula_matrices(parts, frame, rows)
    except Exception as exc:  # formulae raises ValueError/KeyError/TypeError
        raise DataError(
            f"formulae could not build the {key} design: {exc}.",
            where=key,
            hint=f"check the {key} formula's columns.",
        ) from None
    names, X, offset = fixed_part(dm.common, len(frame))
    if np.any(offset != 0):
        raise SpecError(
            f"the {key} formula has an offset(); distributional formulas take none.",
            where=key,
            hint="remove the offset() term from it.",
        )
    problems = [
        Problem(
            f"the predictor is not finite in rows {list(frame.index[~np.isfinite(X[:, j])])[:8]}.",
            f"{key} term '{name}'",
            "check the transformation (e.g. log of values <= 0) or the data.",
        )
        for j, name in enumerate(names)
        if not np.all(np.isfinite(X[:, j]))
    ]
    DataError.collect(problems)
    factors = tuple(
        _parametrized(f.with_part(key), parametrization.get(f.name, "auto"))
        for f in factors_of(dm, parts, frame, rows)
    )
    return DparDesign(
        name=key,
        link=get_link(param.link),
        formula=rhs,
        X=frozen(X, float),
        terms=tuple(names),
        groups=factors,
        _matrices=dm,
    )


def _parametrized(factor: GroupFactor, requested: str) -> GroupFactor:
    """The spec's parametrization, or non-centred for ``auto`` (:data:`AUTO_REASON`)."""
    choice = cast(Param, "noncentered" if requested == "auto" else requested)
    reason = AUTO_REASON if requested == "auto" else f"{requested} (set in the spec)"
    return factor.with_blocks(
        tuple(dataclasses.replace(b, parametrization=choice, reason=reason) for b in factor.blocks)
    )


def dpar_name_problems(
    main: tuple[GroupFactor, ...], dpars: tuple[DparDesign, ...], reserved: set[str]
) -> list[Problem]:
    """Names the distributional parts' factors would clash on: a key (``Subject_zi``) that is
    also a factor of the response's formula, or a factor named like a model variable."""
    names = {f.name for f in main}
    levels = {f.name: f.levels for f in main}
    problems = []
    for d in dpars:
        for f in d.groups:
            if f.key in names:
                problems.append(
                    Problem(
                        f"the {d.name} formula's factor {f.name!r} would name its effects "
                        f"{Names.sd(f.key)!r}, like those of the response's factor {f.key!r}.",
                        f"group '{f.key}'",
                        f"rename the column {f.key!r}.",
                    )
                )
            if f.name in reserved:
                problems.append(
                    Problem(
                        f"the grouping factor {f.name!r} has a name the model uses for its "
                        f"own variables or dimensions ({sorted(reserved)}).",
                        f"group '{f.name}'",
                        f"rename the column (e.g. {f.name + '_id'!r}).",
                    )
                )
            if f.name in levels and levels[f.name] != f.levels:  # same rows, same levels
                raise RuntimeError(
                    f"the levels of {f.name!r} differ between the formula and the {d.name} "
                    "formula: please report this as a bug."
                )
    return problems
