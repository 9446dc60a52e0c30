"""The ``joint`` kind: longitudinal mixed submodels and a hazard submodel sharing the
subject's random effects (JMbayes2's joint models, fitted with NUTS)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mixedbayes.spec.model import FamilySpec, ModelSpec, _Strict, checked_formula, register_kind

__all__ = [
    "JointSpec",
    "OutcomeSpec",
    "SurvivalSpec",
    "event_test",
    "parse_surv",
]


_SURV = re.compile(r"^\s*Surv\s*\((?P<args>[^()]*)\)\s*~(?P<rhs>.*)$", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_.][\w.]*")
#: An event given as a comparison of a column with a number (R's ``status == 2``).
_TEST = re.compile(
    r"^(?P<col>[A-Za-z_.][\w.]*)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>-?\d+(\.\d+)?)$"
)


def event_test(event: str) -> tuple[str, str | None, float | None]:
    """The event argument of ``Surv``: (column, None, None) for a 0/1 column, or (column,
    operator, number) for a comparison such as ``status == 2``."""
    m = _TEST.match(event.strip())
    if m is None:
        return event.strip(), None, None
    return m.group("col"), m.group("op"), float(m.group("value"))


def parse_surv(formula: str) -> tuple[str | None, str, str, str]:
    """Split ``Surv(stop, event) ~ rhs`` or ``Surv(start, stop, event) ~ rhs`` into
    (start or None, stop, event, rhs); ``ValueError`` saying what is wrong otherwise.

    Each argument is a column name: ``start`` is the entry time (left truncation) or the start
    of a ``(start, stop]`` row with time-varying covariates; ``event`` is 1 for an event at
    ``stop`` and 0 for a censored row.
    """
    m = _SURV.match(formula)
    if m is None:
        raise ValueError(
            f"the survival formula must read 'Surv(time, event) ~ x + ...' or "
            f"'Surv(start, stop, event) ~ ...', not {formula!r}"
        )
    args = [a.strip() for a in m.group("args").split(",")]
    if (
        len(args) not in (2, 3)
        or not all(_NAME.fullmatch(a) for a in args[:-1])
        or not (_NAME.fullmatch(args[-1]) or _TEST.match(args[-1]))
    ):
        raise ValueError(
            f"Surv() takes two or three columns (time, event) or (start, stop, event), the "
            f"event a 0/1 column or a comparison such as 'status == 2', not "
            f"{m.group('args').strip()!r}"
        )
    rhs = m.group("rhs").strip() or "1"
    if "|" in rhs:
        raise ValueError(
            "the survival formula takes fixed effects only: the hazard reads the subject's "
            "random effects through 'association', not through '(... | group)' terms"
        )
    start = args[0] if len(args) == 3 else None
    return start, args[-2], args[-1], rhs


class OutcomeSpec(_Strict):
    """One longitudinal submodel: an lme4 formula and its family (default gaussian).

    A bare string is accepted and means the formula of a Gaussian outcome.
    """

    formula: str
    family: FamilySpec = FamilySpec()

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"formula": value} if isinstance(value, str) else value

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str) -> str:
        return checked_formula(value)


class SurvivalSpec(_Strict):
    """The hazard submodel: ``Surv(...) ~ covariates`` and the baseline hazard.

    Attributes
    ----------
    formula : str
        ``Surv(time, event) ~ sex + drug``; ``Surv(start, stop, event)`` for left truncation
        or ``(start, stop]`` rows with time-varying covariates.
    baseline : str
        A registered baseline (``mixedbayes.survival.BASELINES``): ``bspline`` (JMbayes2's
        default), ``weibull``, ``gompertz``, ``piecewise``.
    options : dict
        The baseline's options (``bspline``: ``degree``, ``knots``; ``piecewise``: ``pieces``).
    """

    formula: str
    baseline: str = "bspline"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_surv(value)
        return value

    @model_validator(mode="after")
    def _baseline(self) -> Self:
        from mixedbayes.errors import SpecError
        from mixedbayes.survival import get_baseline

        try:
            get_baseline(self.baseline, **self.options)
        except SpecError as exc:
            raise ValueError(str(exc.problems[0].message)) from None
        return self


@register_kind
class JointSpec(ModelSpec):
    """A joint longitudinal–survival model.

    Attributes
    ----------
    subject : str
        The subject column of both tables (the grouping factor whose effects the hazard
        reads).
    time : str
        The visit-time column of the longitudinal table (on the survival times' scale).
    longitudinal : dict of str to OutcomeSpec
        One mixed submodel per outcome, keyed by the outcome's name (``log_bili``).
    survival : SurvivalSpec
    association : dict of str to list of str
        By outcome, how the hazard reads it (``mixedbayes.survival.ASSOCIATIONS``: ``value``,
        ``slope``, ``area``, ``shared``); default: the current value of every outcome.
    quadrature : int
        Gauss–Legendre nodes per interval of the cumulative hazard (split at the baseline's
        knots or breaks).
    correlation : {"block", "diagonal", "parts"}
        The subject's random effects across outcomes: one correlated (LKJ) block, all
        independent, or each outcome's own blocks.
    lag : float
        The hazard at time t reads the outcomes at ``max(t − lag, 0)`` (``value``, ``slope``,
        ``area``; ``shared`` has no time), as rstanarm's ``lag_assoc``. Default 0.
    visits_after_event : {"error", "keep"}
        Measurements after a subject's event or censoring time are an error (default: they
        usually mean wrong survival times), or are kept, for a non-terminal event after which
        measurement continues; the longitudinal likelihood then uses every visit. SBC keeps
        the template's visit schedule this way.

    Data: ``mb.fit(spec, {"longitudinal": visits, "survival": subjects})``.
    """

    kind: Literal["joint"] = "joint"  # type: ignore[assignment]
    subject: str
    time: str
    longitudinal: dict[str, OutcomeSpec]
    survival: SurvivalSpec
    association: dict[str, list[str]] = Field(default_factory=dict)
    quadrature: int = Field(default=15, ge=1, le=100)
    correlation: Literal["block", "diagonal", "parts"] = "block"
    lag: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    visits_after_event: Literal["error", "keep"] = "error"

    allowed_families: ClassVar[tuple[str, ...] | None] = None

    @field_validator("longitudinal")
    @classmethod
    def _outcomes(
        cls, value: dict[str, OutcomeSpec], info: ValidationInfo
    ) -> dict[str, OutcomeSpec]:
        from mixedbayes.spec.formula import split_formula

        if not value:
            raise ValueError(
                "give at least one longitudinal outcome, e.g. {log_bili: 'log(serBilir) ~ "
                "year + (year | id)'}"
            )
        subject = info.data.get("subject")
        for name, outcome in value.items():
            if not re.fullmatch(r"[A-Za-z_]\w*", name) or name == "event":
                raise ValueError(
                    f"outcome name {name!r} must be an identifier other than 'event' (it names "
                    "the outcome's variables: b_<name>, sigma_<name>)"
                )
            bars = split_formula(outcome.formula).bars
            factors = {b.factor.split("/")[-1].split(":")[-1].strip() for b in bars}
            if subject is not None and subject not in factors:
                raise ValueError(
                    f"{name}: the formula has no random effects by the subject {subject!r}, "
                    f"which the hazard reads; add e.g. '(1 | {subject})'"
                )
        return value

    @field_validator("association")
    @classmethod
    def _associations(
        cls, value: dict[str, list[str]], info: ValidationInfo
    ) -> dict[str, list[str]]:
        from mixedbayes.survival import ASSOCIATIONS

        known = list(ASSOCIATIONS.names())
        outcomes = list(info.data.get("longitudinal") or {})
        for name, kinds in value.items():
            if outcomes and name not in outcomes:
                raise ValueError(
                    f"association names the outcome {name!r}, which is not one of the "
                    f"longitudinal outcomes {outcomes}"
                )
            unknown = [k for k in kinds if k not in known]
            if unknown or not kinds:
                raise ValueError(
                    f"{name}: {unknown or 'an empty list'} — use one or more of "
                    f"{known} (mixedbayes.survival.ASSOCIATIONS)"
                )
            if len(set(kinds)) != len(kinds):
                raise ValueError(f"{name} lists a type twice: {kinds}")
        return value

    def associations(self) -> list[tuple[str, str]]:
        """(outcome, type) pairs in order; the current value of every outcome by default."""
        given = self.association or {name: ["value"] for name in self.longitudinal}
        return [(name, kind) for name, kinds in given.items() for kind in kinds]
