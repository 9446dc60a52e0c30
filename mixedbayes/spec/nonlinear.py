"""The ``nonlinear`` kind: a structural model whose parameters have mixed-effects formulas."""

from __future__ import annotations

import re
from typing import ClassVar, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mixedbayes.spec.model import ModelSpec, _Strict, register_kind

__all__ = ["DosingSpec", "NonlinearSpec", "ODESpec", "order_problem", "parameter_link"]

#: Link prefixes of parameter keys: ``log_CL`` is CL on the log scale.
LINK_PREFIXES = {"log_": "log", "logit_": "logit"}


def parameter_link(key: str) -> tuple[str, str]:
    """Split a parameter key into (natural name, link): ``log_CL`` → (``CL``, ``log``)."""
    for prefix, link in LINK_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :], link
    return key, "identity"


class ODESpec(_Strict):
    """An ODE structural model: right-hand sides per state, what is observed, where doses go.

    Example::

        ode:
          rhs: {A_gut: "-KA * A_gut", A_c: "KA * A_gut - CL / V * A_c"}
          observe: "A_c / V"
          dose_state: A_gut
    """

    rhs: dict[str, str]
    observe: str
    dose_state: str
    substeps: int = Field(default=8, ge=1, le=200)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.dose_state not in self.rhs:
            raise ValueError(
                f"dose_state {self.dose_state!r} is not a state; states: {list(self.rhs)}"
            )
        return self


class DosingSpec(_Strict):
    """Where the doses are: a dose column (single dose per subject) or an event table.

    ``dose``: column with each subject's dose (given at ``dose_time``), as R's Theoph.
    ``events``: NONMEM-style columns, ``{id: ID, time: TIME, amt: AMT, evid: EVID, ...}``;
    the data are then the event table, observation rows have ``evid`` 0.
    """

    dose: str | None = None
    dose_time: float = 0.0
    events: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.dose is None) == (self.events is None):
            raise ValueError("give exactly one of 'dose' (a column) or 'events' (column names)")
        known = {"id", "time", "amt", "evid", "cmt", "rate", "addl", "ii", "dv"}
        unknown = set(self.events or {}) - known
        if unknown:
            raise ValueError(f"unknown event columns {sorted(unknown)}; known: {sorted(known)}")
        return self


@register_kind
class NonlinearSpec(ModelSpec):
    """A nonlinear mixed-effects model (NLMEM).

    Attributes
    ----------
    model, expression, ode
        Exactly one: a library model, either a PK model (``"oral_1cmt"``, with doses) or a
        curve model of the ``time`` column (``"biexp"``, as nlme's ``SSbiexp``), a user
        expression (``"E0 + Emax * C / (EC50 + C)"``), or an ODE (:class:`ODESpec`).
    parameters : dict of str to str
        One mixed-effects formula (right-hand side) per parameter on its link scale:
        ``log_CL: "1 + wt + (1 | Subject)"``. The key's prefix gives the link (``log_``,
        ``logit_``; none: identity).
    response, time, subject : str
        Columns of the observations, the time (PK/ODE models) and the subject id (dosing).
    dosing : DosingSpec, optional
        Doses of PK and ODE models.
    error : {"additive", "proportional", "combined", "lognormal"}
        Residual error model.
    correlation : {"block", "diagonal"}
        Random effects of one grouping factor across parameters: one LKJ block, or independent.
    order : list of str, optional
        Parameters whose population values (their formulas' intercepts, on the link scale)
        are kept in this order, largest first: ``order: [lrc1, lrc2]`` means lrc1 > lrc2.
        Breaks the symmetry of a model that is unchanged when parameters swap (two
        exponential phases), which otherwise lets chains settle on different labellings.
        Default: the library model's own order (``biexp``: lrc1 > lrc2), else none; ``[]``
        turns a library model's order off.
    """

    kind: Literal["nonlinear"] = "nonlinear"
    model: str | None = None
    expression: str | None = None
    ode: ODESpec | None = None
    parameters: dict[str, str]
    response: str
    time: str | None = None
    subject: str | None = None
    dosing: DosingSpec | None = None
    error: Literal["additive", "proportional", "combined", "lognormal"] = "additive"
    correlation: Literal["block", "diagonal"] = "block"
    order: list[str] | None = None

    allowed_families: ClassVar[tuple[str, ...] | None] = ("gaussian",)
    #: ``missing:``: responses (observation rows) and continuous covariates of parameter
    #: formulas (``docs/missing-data.md``).
    takes_missing: ClassVar[bool] = True

    @field_validator("parameters")
    @classmethod
    def _formulas(cls, value: dict[str, str]) -> dict[str, str]:
        from mixedbayes.spec.formula import formula_problems

        if not value:
            raise ValueError("give at least one parameter formula, e.g. {log_CL: '1 + (1 | id)'}")
        for key, rhs in value.items():
            if not re.fullmatch(r"[A-Za-z_]\w*", key):
                raise ValueError(f"parameter name {key!r} must be an identifier")
            problems = formula_problems(f"y ~ {rhs}", f"parameters.{key}")
            if problems:
                raise ValueError(f"parameters.{key}: {problems[0].message}")
        return value

    @model_validator(mode="after")
    def _structure(self) -> Self:
        given = [k for k in ("model", "expression", "ode") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one structural model: 'model' (PK library), 'expression' or 'ode'"
                + (f"; got {given}" if given else "")
            )
        names = [parameter_link(k)[0] for k in self.parameters]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"parameters {dup} are given twice (with different link prefixes)")
        if self.model is not None:
            self._check_library(names)
        curve = self.curve_model is not None
        if ((self.model is not None and not curve) or self.ode is not None) and (
            self.dosing is None or self.time is None or self.subject is None
        ):
            raise ValueError("PK and ODE models need 'time', 'subject' and 'dosing'")
        if curve and self.time is None:
            raise ValueError(f"curve model {self.model!r} needs 'time' (its input column)")
        return self

    @field_validator("order")
    @classmethod
    def _order(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        parameters = info.data.get("parameters")
        if value is not None and parameters:
            order_problem(value, parameters)
        return value

    def _check_library(self, names: list[str]) -> None:
        from mixedbayes.nonlinear.library import CURVE_MODELS
        from mixedbayes.pk.library import PK_MODELS

        assert self.model is not None
        library: dict[str, tuple[str, ...]] = {k: m.params for k, m in PK_MODELS.items()}
        library.update({m.name: m.params for m in CURVE_MODELS})
        if self.model not in library:
            raise ValueError(
                f"unknown PK model {self.model!r} (nor a curve model); PK models: "
                f"{sorted(PK_MODELS)}; curve models: {CURVE_MODELS.names()}"
            )
        need = set(library[self.model])
        missing, extra = sorted(need - set(names)), sorted(set(names) - need)
        if missing or extra:
            what = "PK model" if self.model in PK_MODELS else "curve model"
            raise ValueError(
                f"{what} {self.model!r} has parameters {sorted(need)}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unknown {extra}" if extra else "")
            )

    @property
    def curve_model(self) -> str | None:
        """The name of the library curve model (``biexp``), or None for other models."""
        from mixedbayes.nonlinear.library import CURVE_MODELS

        return self.model if self.model in CURVE_MODELS else None

    def parameter_order(self) -> tuple[str, ...]:
        """The keys of the ordered parameters, largest first (the spec's ``order``, else the
        library model's)."""
        if self.order is not None:
            names = self.order
        elif self.curve_model is not None:
            from mixedbayes.nonlinear.library import get_curve_model

            names = list(get_curve_model(self.curve_model).order)
        else:
            names = []
        return tuple(_parameter_key(n, self.parameters) for n in names)


def _parameter_key(name: str, parameters: dict[str, str]) -> str:
    """The parameter key of ``name`` (a key such as ``log_k1`` or its natural name ``k1``)."""
    if name in parameters:
        return name
    return next(k for k in parameters if parameter_link(k)[0] == name)


def order_problem(order: list[str], parameters: dict[str, str]) -> None:
    """Check an ``order:`` list against the parameters; ``ValueError`` saying what is wrong."""
    known = {k for k in parameters} | {parameter_link(k)[0] for k in parameters}
    if not order:
        return
    unknown = [n for n in order if n not in known]
    if unknown:
        raise ValueError(
            f"order names {unknown}, which are not parameters; parameters: {list(parameters)}"
        )
    keys = [_parameter_key(n, parameters) for n in order]
    if len(order) < 2 or len(set(keys)) != len(keys):
        raise ValueError(
            f"order must name at least two different parameters, largest first "
            f"(e.g. order: [{', '.join(list(parameters)[:2])}]); got {order}"
        )
    links = {parameter_link(k)[1] for k in keys}
    if len(links) > 1:
        raise ValueError(
            f"the ordered parameters {keys} must share one link (they are compared on it); "
            "use the same prefix (log_, logit_ or none) for all of them"
        )
