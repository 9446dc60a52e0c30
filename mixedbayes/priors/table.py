"""The prior table: one row per (class, coef, group, nlpar), with its provenance.

Defaults are weakly informative and scaled from the data; each kind makes its own (the
rules are in ``mixedbayes/priors/regression.py``, ``priors/nonlinear.py`` and
``docs/priors.md``); a spec's ``priors`` override rows, the most specific match winning:
(class, group, coef) > (class, group) > (class, coef) > (class).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from mixedbayes.design.terms import resolve_term
from mixedbayes.errors import Problem, SpecError
from mixedbayes.priors.distributions import PriorDist, parse_prior

if TYPE_CHECKING:
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.spec.model import PriorSpec

__all__ = ["POSITIVE_CLASSES", "PriorRow", "PriorTable", "apply_overrides", "group_prior_rows"]

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


def group_prior_rows(
    groups: Sequence[GroupFactor],
    sd_prior: Callable[[GroupFactor, int], tuple[PriorDist, str]],
    cor_eta: float,
    cor_text: str,
    nlpar: str = "",
) -> list[PriorRow]:
    """The ``sd`` rows of every grouping factor's terms (``sd_prior(factor, k)`` gives the
    prior and provenance of term ``k``) and a ``cor`` row (LKJ(``cor_eta``)) per correlated
    factor: the group-level defaults every kind makes (``nlpar``: of the part they belong
    to, e.g. ``zi`` for the group terms of a ``zi`` formula)."""
    rows: list[PriorRow] = []
    for g in groups:
        for k, term in enumerate(g.terms):
            prior, text = sd_prior(g, k)
            rows.append(PriorRow("sd", term, g.name, nlpar, prior, "default", text))
        if g.correlated:
            lkj = PriorDist("lkj", (cor_eta,))
            rows.append(PriorRow("cor", "", g.name, nlpar, lkj, "default", cor_text))
    return rows


def _valid(table: PriorTable) -> dict[str, dict[str, set[str]]]:
    """class → group → coefs present in the table."""
    out: dict[str, dict[str, set[str]]] = {}
    for r in table:
        out.setdefault(r.class_, {}).setdefault(r.group, set()).add(r.coef)
    return out


def _nlpars(table: PriorTable) -> set[str]:
    return {r.nlpar for r in table if r.nlpar}


def _coefs(spec: PriorSpec, valid: dict[str, dict[str, set[str]]]) -> set[str]:
    """The coefficients the override's class (and group) has."""
    groups = valid.get(spec.class_, {})
    return set().union(
        *(groups[g] for g in ([spec.group] if spec.group else groups) if g in groups)
    )


def _user_coef(spec: PriorSpec, valid: dict[str, dict[str, set[str]]]) -> PriorSpec:
    """``spec`` with an lme4/brms spelling of its coefficient (``SexFemale``,
    ``(Intercept)``) replaced by the design's term (``Sex[Female]``)."""
    coefs = _coefs(spec, valid)
    if not spec.coef or spec.coef in coefs:
        return spec
    found = resolve_term(spec.coef, sorted(c for c in coefs if c))
    return spec if found is None else spec.model_copy(update={"coef": found})


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
    coefs = _coefs(spec, valid)
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
    if support == "positive" and cls not in positive:
        return [
            Problem(
                f"{prior} has positive support but class {cls!r} can be negative.",
                where + ".prior",
                "use a real-valued prior such as normal(0, 5).",
            )
        ]
    return []


def apply_overrides(
    table: PriorTable, overrides: Sequence[PriorSpec] = (), positive: tuple[str, ...] = ()
) -> PriorTable:
    """The default ``table`` with the spec's ``overrides`` applied (any kind).

    Parameters
    ----------
    table : PriorTable
        The kind's defaults.
    overrides : sequence of PriorSpec
        The spec's ``priors``; the most specific match wins.
    positive : tuple of str
        The kind's positive parameter classes besides ``sd`` (``sigma``, ``alpha``...).

    Raises
    ------
    SpecError
        For an override naming an unknown class, group or coefficient (listing the valid
        ones) or a prior whose support does not fit the class; every problem at once.
    """
    positive_params = positive
    nlpars = _nlpars(table)
    valid = _valid(PriorTable(tuple(r for r in table if not r.nlpar)))
    problems: list[Problem] = []
    parsed: list[tuple[int, PriorSpec, PriorDist]] = []
    for i, spec in enumerate(overrides):
        prior = parse_prior(spec.prior)
        own = (
            _valid(PriorTable(tuple(r for r in table if r.nlpar == spec.nlpar)))
            if spec.nlpar
            else valid
        )
        spec = _user_coef(spec, own)
        found = _check_override(i, spec, prior, own, nlpars, positive_params)
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
