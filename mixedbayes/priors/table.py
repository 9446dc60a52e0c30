"""The prior table: one row per (class, coef, group, nlpar), with its provenance.

Defaults are weakly informative and scaled from the data (the rule is in
:func:`default_priors` and ``docs/priors.md``); a spec's ``priors`` override rows, the most
specific match winning: (class, group, coef) > (class, group) > (class, coef) > (class).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem, SpecError
from mixedbayes.families import response_scale, round_sig
from mixedbayes.priors.distributions import PriorDist, parse_prior

if TYPE_CHECKING:
    from mixedbayes.design import Design
    from mixedbayes.spec.model import PriorSpec

__all__ = ["PriorRow", "PriorTable", "build_prior_table", "default_priors"]

POSITIVE_CLASSES = ("sd", "sigma")


@dataclass(frozen=True)
class PriorRow:
    """One prior: which parameter(s), which distribution, and where it came from."""

    class_: str
    coef: str
    group: str
    nlpar: str
    prior: PriorDist
    source: str
    provenance: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(class, coef, group, nlpar)."""
        return (self.class_, self.coef, self.group, self.nlpar)


@dataclass(frozen=True)
class PriorTable:
    """Every prior of a model, printable like brms's ``prior_summary``."""

    rows: tuple[PriorRow, ...]

    def __iter__(self) -> Iterator[PriorRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, class_: str, coef: str = "", group: str = "", nlpar: str = "") -> PriorRow:
        """The row for one parameter (``KeyError`` if there is none)."""
        for row in self.rows:
            if row.key == (class_, coef, group, nlpar):
                return row
        raise KeyError((class_, coef, group, nlpar))

    def select(self, class_: str, group: str = "") -> list[PriorRow]:
        """Rows of one class (and group), in table order."""
        return [r for r in self.rows if r.class_ == class_ and r.group == group]

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (columns class, coef, group, nlpar, prior, source)."""
        return pd.DataFrame(
            [
                {
                    "class": r.class_,
                    "coef": r.coef,
                    "group": r.group,
                    "nlpar": r.nlpar,
                    "prior": str(r.prior),
                    "source": r.source,
                    "provenance": r.provenance,
                }
                for r in self.rows
            ]
        )

    def __str__(self) -> str:
        frame = self.to_frame().drop(columns=["nlpar"] if not any(r.nlpar for r in self) else [])
        return frame.to_string(index=False)

    def _repr_html_(self) -> str:
        return str(self.to_frame().to_html(index=False))


def _sd(x: np.ndarray) -> float:
    s = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    return s if np.isfinite(s) and s > 0 else 1.0


def default_priors(design: Design) -> PriorTable:
    """The default prior table of a design.

    Rules (``loc``, ``s`` from :func:`mixedbayes.families.response_scale`: for a gaussian
    response ``median(y)`` and ``sd(y)``):

    - ``Intercept`` (on centred predictors, as brms): Student-t(3, loc, 2.5·s).
    - ``b`` for predictor ``x``: Normal(0, 2.5·s / sd(x)) (rstanarm's autoscaling).
    - ``sd`` of group term ``z``: half-Student-t(3, 0, s / sd(z)) (``sd(z)`` = 1 for the
      intercept).
    - ``cor``: LKJ(1), uniform over correlation matrices.
    - family parameters (``sigma``): the family's default, e.g. half-Student-t(3, 0, sd(y)).
    """
    y = design.y
    loc, s, ytext = response_scale(design.family, y, design.link)
    rows: list[PriorRow] = []
    if design.has_intercept:
        rows.append(
            PriorRow(
                "Intercept",
                "",
                "",
                "",
                PriorDist("student_t", (3.0, loc, round_sig(2.5 * s))),
                "default",
                f"Student-t(3, loc, 2.5·s) on centred predictors; {ytext}",
            )
        )
    for j, term in enumerate(design.fixed_terms):
        if term == "Intercept":
            continue
        sx = _sd(design.X[:, j])
        rows.append(
            PriorRow(
                "b",
                term,
                "",
                "",
                PriorDist("normal", (0.0, round_sig(2.5 * s / sx))),
                "default",
                f"Normal(0, 2.5·s/sd(x)); {ytext}, sd({term})={sx:.4g}",
            )
        )
    for g in design.groups:
        for k, term in enumerate(g.terms):
            sz = 1.0 if term == "Intercept" else _sd(g.Z[:, k])
            rows.append(
                PriorRow(
                    "sd",
                    term,
                    g.name,
                    "",
                    PriorDist("student_t", (3.0, 0.0, round_sig(s / sz))),
                    "default",
                    f"half-Student-t(3, 0, s/sd(z)); {ytext}"
                    + ("" if term == "Intercept" else f", sd({term})={sz:.4g}"),
                )
            )
        if g.correlated:
            rows.append(
                PriorRow(
                    "cor",
                    "",
                    g.name,
                    "",
                    PriorDist("lkj", (1.0,)),
                    "default",
                    "LKJ(1): uniform over correlation matrices",
                )
            )
    for param in design.family.params:
        prior, text = param.default_prior(y)
        if not param.predictor:
            rows.append(PriorRow(param.name, "", "", "", prior, "default", text))
            continue
        for j, term in enumerate(design.zi_terms):
            if term == "Intercept":
                rows.append(PriorRow("Intercept", "", "", param.name, prior, "default", text))
                continue
            sx = _sd(design.zi_X[:, j]) if design.zi_X is not None else 1.0
            rows.append(
                PriorRow(
                    "b",
                    term,
                    "",
                    param.name,
                    PriorDist("normal", (0.0, round_sig(2.5 / sx))),
                    "default",
                    f"Normal(0, 2.5/sd(x)) on logit({param.name}); sd({term})={sx:.4g}",
                )
            )
    return PriorTable(tuple(rows))


def _valid(table: PriorTable) -> dict[str, dict[str, set[str]]]:
    """class → group → coefs present in the table."""
    out: dict[str, dict[str, set[str]]] = {}
    for r in table:
        out.setdefault(r.class_, {}).setdefault(r.group, set()).add(r.coef)
    return out


def _nlpars(table: PriorTable) -> set[str]:
    return {r.nlpar for r in table if r.nlpar}


def _check_override(
    i: int,
    spec: PriorSpec,
    prior: PriorDist,
    valid: dict[str, dict[str, set[str]]],
    nlpars: set[str],
    family_positive: tuple[str, ...] = (),
) -> list[Problem]:
    where = f"priors[{i}]"
    cls = spec.class_
    if spec.nlpar and spec.nlpar not in nlpars:
        hint = f"use one of {sorted(nlpars)}." if nlpars else "remove it."
        return [Problem(f"this model has no nlpar {spec.nlpar!r}.", where + ".nlpar", hint)]
    if cls not in valid:
        return [
            Problem(
                f"this model has no parameter class {cls!r}.",
                where + ".class",
                f"use one of {sorted(valid)}.",
            )
        ]
    groups = valid[cls]
    if spec.group and spec.group not in groups:
        choices = sorted(g for g in groups if g)
        hint = f"use one of {choices}." if choices else f"class {cls!r} takes no group."
        return [Problem(f"class {cls!r} has no group {spec.group!r}.", where + ".group", hint)]
    coefs = set().union(*(groups[g] for g in ([spec.group] if spec.group else groups)))
    if spec.coef and spec.coef not in coefs:
        choices = sorted(c for c in coefs if c)
        hint = f"valid coefs: {choices}." if choices else f"class {cls!r} takes no coef."
        return [
            Problem(f"unknown coefficient {spec.coef!r} for class {cls!r}.", where + ".coef", hint)
        ]
    support = prior.distribution.support
    positive = set(POSITIVE_CLASSES) | set(family_positive)
    if (cls == "cor") != (support == "correlation"):
        need = "an lkj(eta) prior" if cls == "cor" else "a prior other than lkj"
        return [Problem(f"class {cls!r} takes {need}, not {prior}.", where + ".prior")]
    if support == "positive" and (cls not in positive or spec.nlpar):
        return [
            Problem(
                f"{prior} has positive support but class {cls!r} can be negative.",
                where + ".prior",
                "use a real-valued prior such as normal(0, 5).",
            )
        ]
    return []


def build_prior_table(design: Design, overrides: Sequence[PriorSpec] = ()) -> PriorTable:
    """The default table with ``overrides`` applied.

    Raises
    ------
    SpecError
        For an override naming an unknown class, group or coefficient (listing the valid
        ones) or a prior whose support does not fit the class; every problem at once.
    """
    if getattr(design.spec, "kind", "") == "nonlinear":
        from mixedbayes.priors.nonlinear import ERROR_PARAMS, default_nonlinear_priors

        table = default_nonlinear_priors(design)  # type: ignore[arg-type]
        positive_params: tuple[str, ...] = ERROR_PARAMS[design.spec.error]  # type: ignore[attr-defined]
    else:
        table = default_priors(design)
        positive_params = tuple(
            p.name for p in design.family.params if p.positive and not p.predictor
        )
    nlpars = _nlpars(table)
    valid = _valid(PriorTable(tuple(r for r in table if not r.nlpar)))
    problems: list[Problem] = []
    parsed: list[tuple[int, PriorSpec, PriorDist]] = []
    for i, spec in enumerate(overrides):
        prior = parse_prior(spec.prior)
        found = _check_override(
            i,
            spec,
            prior,
            _valid(PriorTable(tuple(r for r in table if r.nlpar == spec.nlpar)))
            if spec.nlpar
            else valid,
            nlpars,
            positive_params,
        )
        problems += found
        if not found:
            parsed.append((i, spec, prior))
    SpecError.collect(problems)

    def rank(spec: PriorSpec) -> int:
        return 2 * bool(spec.group) + bool(spec.coef)

    rows = list(table.rows)
    for i, spec, prior in sorted(parsed, key=lambda t: rank(t[1])):
        for j, row in enumerate(rows):
            if row.class_ != spec.class_ or row.nlpar != spec.nlpar:
                continue
            if spec.group and row.group != spec.group:
                continue
            if spec.coef and row.coef != spec.coef:
                continue
            rows[j] = replace(row, prior=prior, source="user", provenance=f"spec priors[{i}]")
    return PriorTable(tuple(rows))
