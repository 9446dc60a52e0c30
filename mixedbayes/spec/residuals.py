"""The ``residuals:`` key of an ``lmm`` spec: correlated residuals within a subject.

.. code-block:: yaml

    residuals:
      correlation: ar1        # ar1 | car1 | cs | unstructured
      time: visit             # the time (ar1, car1) or visit (cs, unstructured) column
      group: id               # the subject column; default: the formula's grouping factor

Semantics follow nlme and mmrm (``docs/residuals.md``): ``ar1`` is ``corAR1(form = ~ visit |
id)`` on integer visits with gaps (correlation ``phi_ar^|Δvisit|``), ``car1`` is
``corCAR1`` on continuous times (``phi_ar^|Δt|``), ``cs`` is ``corCompSymm`` (``rho_cs``),
and ``unstructured`` is mmrm's ``us(visit | id)`` (one SD per visit level, ``sd_<visit>``,
and an LKJ correlation, ``cor_<visit>``; subjects may miss visits). A ``glmm`` takes
``ar1`` and ``car1`` as a latent process on the linear predictor (brms's ``ar()`` on a
non-Gaussian family, glmmTMB's ``ar1()``; ``sigma_ar``); its ``cs`` and ``unstructured`` are
random-effect structures, and :func:`residual_problem` names the formula. No PyMC here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CORRELATIONS",
    "ResidualSpec",
    "formula_factors",
    "residual_group",
    "residual_problem",
]

#: The residual correlation structures, in the order the docs list them.
CORRELATIONS: tuple[str, ...] = ("ar1", "car1", "cs", "unstructured")


class ResidualSpec(BaseModel):
    """Correlated residuals within a subject: of the Gaussian ``lmm``'s response, or a
    latent process on a ``glmm``'s linear predictor (``ar1``, ``car1``).

    Attributes
    ----------
    correlation : {"ar1", "car1", "cs", "unstructured"}
        ``ar1``: nlme's ``corAR1`` on integer visits (gaps allowed), correlation
        ``phi_ar^|Δvisit|``, ``phi_ar`` in (-1, 1); ``car1``: nlme's ``corCAR1`` on
        continuous times, ``phi_ar^|Δt|``, ``phi_ar`` in (0, 1); ``cs``: compound symmetry
        (nlme's ``corCompSymm``), one correlation ``rho_cs``; ``unstructured``: a full
        covariance over the levels of the visit column (mmrm's ``us(visit | id)``, brms's
        ``unstr()``), ``sd_<visit>`` and ``cor_<visit>``; the residual ``sigma`` is then
        not a parameter.
    time : str
        The column holding the time (``car1``), the integer visit (``ar1``) or the visit
        whose levels index the covariance (``cs``: only for ordering; ``unstructured``: the
        levels). A subject may not have two rows at one time.
    group : str, optional
        The subject column; rows of one subject share a covariance block. Default: the
        formula's grouping factor when it has exactly one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    correlation: Literal["ar1", "car1", "cs", "unstructured"]
    time: str
    group: str | None = None


def formula_factors(formula: str) -> list[str]:
    """The grouping factors of an lme4 formula, in order (``clinic:patient`` for a nested
    one), without repeats."""
    from mixedbayes.spec.formula import split_formula

    out: list[str] = []
    for bar in split_formula(formula).bars:
        for term in bar.term_names:
            factor = term.split("|", 1)[1].strip()
            if factor not in out:
                out.append(factor)
    return out


def residual_group(formula: str, residuals: ResidualSpec) -> str:
    """The subject column of ``residuals``: its ``group``, else the formula's only
    grouping factor (call :func:`residual_problem` first)."""
    if residuals.group is not None:
        return residuals.group
    return formula_factors(formula)[0]


def residual_problem(formula: str, residuals: ResidualSpec, latent: bool = False) -> str | None:
    """What is wrong with ``residuals`` for a model with ``formula`` (None when nothing):
    an ambiguous or missing subject column, or a structure not identified beside the
    formula's group effects on the same factor. ``latent``: the residuals are a process on
    the linear predictor (a ``glmm``), which takes ``ar1`` and ``car1`` only."""
    from mixedbayes.spec.formula import split_formula

    if latent and residuals.correlation in ("cs", "unstructured"):
        return _latent_structure_problem(formula, residuals)
    factors = formula_factors(formula)
    if residuals.group is None:
        if not factors:
            return (
                "residuals.group is required: the formula has no grouping factor to take it "
                "from. Fix: name the subject column, e.g. residuals: {correlation: "
                f"{residuals.correlation}, time: {residuals.time}, group: id}}"
            )
        if len(factors) > 1:
            return (
                f"residuals.group is ambiguous: the formula has the grouping factors "
                f"{factors}. Fix: name the subject column, group: {factors[-1]!r} or "
                f"group: {factors[0]!r}"
            )
        if ":" in factors[0]:
            return (
                f"residuals.group cannot be taken from the nested factor {factors[0]!r}. "
                "Fix: name a subject column whose values identify a subject"
            )
    if residuals.time == residuals.group:
        return "residuals.time and residuals.group name the same column; they must differ"
    group = residual_group(formula, residuals)
    if residuals.correlation not in ("unstructured", "cs"):
        return None
    for bar in split_formula(formula).bars:
        for term in bar.term_names:
            lhs, factor = (s.strip() for s in term.split("|", 1))
            if factor != group:
                continue
            if residuals.correlation == "unstructured":
                return (
                    f"an unstructured residual covariance and the group effect {bar.text} on "
                    f"{group!r} are not identified together: the unstructured covariance "
                    "already spans every within-subject covariance Z G Zᵀ adds (mmrm fits no "
                    f"random effects). Fix: remove {bar.text} (the MMRM), or use "
                    "correlation: ar1 / car1 beside the random effects"
                )
            if lhs == "1":
                return (
                    f"compound symmetry and the random intercept {bar.text} on {group!r} are "
                    "not identified together: both make every pair of a subject's rows "
                    f"equally correlated. Fix: remove {bar.text} (correlation: cs alone is "
                    "the random-intercept model with a correlation that may be negative), or "
                    "use correlation: ar1 / car1 beside it"
                )
    return None


def _latent_structure_problem(formula: str, residuals: ResidualSpec) -> str:
    """Why a GLMM's ``cs`` / ``unstructured`` is a formula, and the formula (glmmTMB's
    ``cs()`` and ``us()`` are random-effect structures too)."""
    lhs, rhs = (s.strip() for s in formula.split("~", 1))
    group = residuals.group or (formula_factors(formula) or ["id"])[0]
    if residuals.correlation == "cs":
        extra = f"(1 | {group})"
        what = (
            "compound symmetry on the linear predictor is a random intercept per subject "
            "(glmmTMB's cs() is a random-effect structure)"
        )
    else:
        extra = f"(0 + C({residuals.time}) | {group})"
        what = (
            "an unstructured covariance on the linear predictor is a correlated effect of "
            f"each {residuals.time!r} level per subject (glmmTMB's us(0 + {residuals.time} | "
            f"{group}))"
        )
    return (
        f"residuals: {{correlation: {residuals.correlation}}} is not a latent process of a "
        f"glmm: {what}. Fix: remove residuals: and write it in the formula, "
        f'"{lhs} ~ {rhs} + {extra}"; or use correlation: ar1 / car1 (a latent serial '
        "process, brms's ar() on a non-Gaussian family)"
    )
