"""How a categorical predictor is coded: its level order, its reference level and its coding.

A spec's ``contrasts`` maps a column to a :class:`ContrastSpec`::

    contrasts:
      Sex: {reference: Male}            # treatment coding, Male is the reference
      Trt: sum                          # sum-to-zero (deviation) coding
      dose: {levels: [low, mid, high]}  # level order; the first is the reference

The codings are those of R's ``contr.treatment`` and ``contr.sum`` (brms, lme4), built by
formulae's ``Treatment`` and ``Sum`` encodings. Which levels exist is checked against the data
when the design is built (:mod:`mixedbayes.design.contrasts`).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["CODINGS", "ContrastSpec"]

Coding = Literal["treatment", "sum"]

#: The codings, and the other names users type for them (R, bambi/formulae, textbooks).
CODINGS: dict[str, Coding] = {
    "treatment": "treatment",
    "contr.treatment": "treatment",
    "dummy": "treatment",
    "sum": "sum",
    "contr.sum": "sum",
    "deviation": "sum",
    "effect": "sum",
}


def _level_text(value: Any) -> Any:
    """A level written as a YAML number (``reference: 1``) is the level ``"1"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


class ContrastSpec(BaseModel):
    """The coding of one categorical predictor (a value of a spec's ``contrasts``).

    A bare string is the coding: ``Sex: sum`` is ``Sex: {coding: sum}``.

    Attributes
    ----------
    coding : {"treatment", "sum"}
        ``treatment`` (the default; R's ``contr.treatment``): one coefficient per level but
        the reference, each the difference from the reference level; terms are named
        ``Sex[Female]``. ``sum`` (R's ``contr.sum``; also written ``deviation``, ``effect``):
        one coefficient per level but one, each the level's deviation from the mean of the
        level means (the intercept); terms are named ``Sex[S.Female]``, and the level left
        out has minus the sum of the others. ``contr.treatment``/``contr.sum`` are accepted.
    reference : str, optional
        The level without a coefficient of its own: the reference level of treatment
        coding (default: the first level), the level left out of sum coding (default: the
        last level, as in R).
    levels : list of str, optional
        The order of the levels (every level in the data, each once). Without it a pandas
        ``Categorical`` keeps its categories' order and other columns are sorted. Giving
        ``levels`` also makes a numeric column (0/1, 1-4) a factor.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    coding: Coding = "treatment"
    reference: str | None = None
    levels: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"coding": value} if isinstance(value, str) else value

    @field_validator("coding", mode="before")
    @classmethod
    def _coding(cls, value: Any) -> Any:
        key = value.lower().strip() if isinstance(value, str) else value
        if key not in CODINGS:
            raise ValueError(
                f"unknown coding {value!r}; use one of {sorted(set(CODINGS.values()))}"
            )
        return CODINGS[key]

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_text(cls, value: Any) -> Any:
        return _level_text(value)

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_text(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [_level_text(v) for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.levels is not None:
            repeated = sorted({lv for lv in self.levels if self.levels.count(lv) > 1})
            if repeated:
                raise ValueError(f"levels {repeated} are listed twice")
            if len(self.levels) < 2:
                raise ValueError("levels needs at least two levels")
            if self.reference is not None and self.reference not in self.levels:
                raise ValueError(
                    f"reference {self.reference!r} is not among levels {list(self.levels)}"
                )
        return self
