"""A spec's ``contrasts`` applied to the data and the formula, for formulae to code.

Treatment coding with a chosen reference or level order is a level order: the column of the
design's copy of the data becomes an ordered ``Categorical`` whose first category is the
reference (formulae's default treatment coding then drops it), so the terms keep their
usual names (``Sex[Female]``). Sum coding is formulae's ``Sum`` encoding: each bare
occurrence of the column in the formula becomes ``C(Sex, contr_sum)``, whose terms are
renamed back to ``Sex[S.Female]`` (:func:`display_label`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mixedbayes.errors import Problem, SpecError

__all__ = ["SUM_FUNCTION", "FactorCoding", "code_factors", "contr_sum", "display_label"]

#: The formula function that gives a factor sum-to-zero coding.
SUM_FUNCTION = "contr_sum"

#: Prefix of the level in a sum-coded term's name (``Sex[S.Female]``).
SUM_PREFIX = "S."

_SUM_CALL = re.compile(rf"C\(([^,()]+), {SUM_FUNCTION}(?:\(\d+\))?\)")


def contr_sum(omit: int | None = None) -> Any:
    """formulae's sum-to-zero encoding leaving out level number ``omit`` (default: the
    last, as R's ``contr.sum``), with the levels labelled ``S.<level>``."""
    from formulae.categorical import ContrastMatrix, Sum

    class SumToZero(Sum):  # type: ignore[misc]
        def _omit_index(self, levels: list[Any]) -> int:
            return len(levels) - 1 if omit is None else omit

        def code_without_intercept(self, levels: list[Any]) -> Any:
            coded = super().code_without_intercept(levels)
            return ContrastMatrix(coded.matrix, [SUM_PREFIX + str(lv) for lv in coded.labels])

    return SumToZero()


def display_label(label: str) -> str:
    """A formulae term label as users see it: ``C(Sex, contr_sum)[S.Female]`` →
    ``Sex[S.Female]``; other labels unchanged."""
    return _SUM_CALL.sub(r"\1", label)


@dataclass(frozen=True)
class FactorCoding:
    """What the spec's ``contrasts`` do to a design: columns recoded, columns sum-coded.

    Attributes
    ----------
    sum_omit : dict of str to int or None
        Sum-coded columns and the position of the level left out (None: the last).
    as_levels : dict of str to dict
        Columns whose values are mapped to level names (a numeric column made a factor by
        ``levels``): value → level, applied to new data too.
    """

    sum_omit: dict[str, int | None] = field(default_factory=dict)
    as_levels: dict[str, dict[Any, str]] = field(default_factory=dict)

    def rewrite(self, formula: str) -> str:
        """``formula`` with each bare sum-coded column wrapped in ``C(col, contr_sum)``
        (on the right of ``~`` only; not inside calls, braces or grouping factors)."""
        if not self.sum_omit or "~" not in formula:
            return formula
        lhs, rhs = formula.split("~", 1)
        return lhs + "~" + _wrap(rhs, self.sum_omit)

    def new_data(self, frame: pd.DataFrame) -> pd.DataFrame:
        """New rows with numeric factor columns mapped to their level names."""
        changed = {
            col: frame[col].map(lambda v, m=mapping: m.get(v, _level_text(v)))
            for col, mapping in self.as_levels.items()
            if col in frame
        }
        return frame.assign(**changed) if changed else frame


_TOKEN = re.compile(
    r"""(?P<str>'[^']*'|"[^"]*"|`[^`]*`)|(?P<name>[A-Za-z.][\w.]*)|(?P<sym>[(){}|])"""
)


def _wrap(rhs: str, omit: Mapping[str, int | None]) -> str:
    out: list[str] = []
    last = 0
    stack: list[str] = []  # "call", "group", "bar" (a group after its '|'), "brace"
    for m in _TOKEN.finditer(rhs):
        token, text = m.lastgroup, m.group(0)
        if token == "name":
            following = rhs[m.end() :].lstrip()[:1]
            bare = following not in ("(", "[") and not any(
                s in ("call", "bar", "brace") for s in stack
            )
            if bare and text in omit:
                k = omit[text]
                call = SUM_FUNCTION if k is None else f"{SUM_FUNCTION}({k})"
                out.append(rhs[last : m.start()] + f"C({text}, {call})")
                last = m.end()
            continue
        if text == "(":
            called = re.search(r"[\w.]$", rhs[: m.start()].rstrip()) is not None
            stack.append("call" if called else "group")
        elif text == "{":
            stack.append("brace")
        elif text in (")", "}") and stack:
            stack.pop()
        elif text == "|" and stack and stack[-1] == "group":
            stack[-1] = "bar"
    out.append(rhs[last:])
    return "".join(out)


def _level_text(value: Any) -> str:
    """A value as a level name: ``1.0`` → ``"1"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def code_factors(
    contrasts: Mapping[str, Any],
    frame: pd.DataFrame,
    *,
    covariates: Set[str],
    groups: Set[str] = frozenset(),
) -> tuple[pd.DataFrame, FactorCoding]:
    """Apply the spec's ``contrasts`` to the rows to model (a copy the design owns).

    Parameters
    ----------
    contrasts : dict of str to ContrastSpec
    frame : DataFrame
        The cleaned rows (categoricals already ordered by :func:`keep_category_order`).
    covariates, groups : set of str
        The formula's predictor columns and grouping columns.

    Returns
    -------
    (DataFrame, FactorCoding)
        The rows with every named column an ordered ``Categorical`` in the level order the
        coding needs, and what the formula and new data need.

    Raises
    ------
    SpecError
        Naming every column that is not a predictor of the formula, a numeric column
        without ``levels``, and every level the data do not have (with the valid ones).
    """
    problems: list[Problem] = []
    changed: dict[str, pd.Categorical] = {}
    sum_omit: dict[str, int | None] = {}
    as_levels: dict[str, dict[Any, str]] = {}
    predictors = sorted(covariates - set(groups))
    for col, spec in contrasts.items():
        where = f"contrasts.{col}"
        if col not in predictors:
            role = (
                "a grouping factor (it gets group effects, not contrasts)"
                if col in groups
                else ("not a predictor of the formula")
            )
            problems.append(
                Problem(
                    f"contrasts names {col!r}, which is {role}.",
                    where,
                    f"name one of the formula's predictors: {predictors}.",
                )
            )
            continue
        values = frame[col]
        mapping: dict[Any, str] | None = None
        if isinstance(values.dtype, pd.CategoricalDtype):
            present = [str(c) for c in values.cat.categories]
            text = values.astype(str)
        elif pd.api.types.is_numeric_dtype(values):
            if spec.levels is None:
                distinct = sorted(values.unique())
                hint = (
                    f"to make it a factor list its levels: {{{col}: {{levels: "
                    f"{[_level_text(v) for v in distinct]}}}}}."
                    if len(distinct) <= 12
                    else "remove it from contrasts (a numeric predictor takes none)."
                )
                problems.append(
                    Problem(
                        f"column {col!r} is numeric, so it is a slope, not a factor.", where, hint
                    )
                )
                continue
            mapping = {v: _level_text(v) for v in values.unique()}
            text = values.map(mapping)
            present = sorted(set(mapping.values()))
        else:
            text = values.astype(str)
            present = sorted(set(text))
        order = list(spec.levels) if spec.levels is not None else present
        unknown = [lv for lv in order if lv not in present]
        missing = [lv for lv in present if lv not in order]
        if unknown or missing:
            what = f"levels {unknown} are not in the data" if unknown else ""
            what += ("; " if unknown and missing else "") + (
                f"the data's levels {missing} are not listed" if missing else ""
            )
            problems.append(
                Problem(f"column {col!r}: {what}.", where + ".levels", f"its levels: {present}.")
            )
            continue
        if spec.reference is not None and spec.reference not in order:
            problems.append(
                Problem(
                    f"column {col!r} has no level {spec.reference!r}.",
                    where + ".reference",
                    f"use one of its levels: {order}.",
                )
            )
            continue
        if spec.coding == "sum":
            sum_omit[col] = None if spec.reference is None else order.index(spec.reference)
        elif spec.reference is not None:
            order.remove(spec.reference)
            order.insert(0, spec.reference)
        changed[col] = pd.Categorical(text, categories=order, ordered=True)
        if mapping is not None:
            as_levels[col] = mapping
    SpecError.collect(problems)
    out = frame.assign(**{c: pd.Series(v, index=frame.index) for c, v in changed.items()})
    return out, FactorCoding(sum_omit, as_levels)
