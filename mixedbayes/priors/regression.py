"""Default priors of regression kinds (``lmm``, ``glmm``), scaled from the response."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.design.variance import power_of_fitted
from mixedbayes.families import response_scale, round_sig, sd_scale
from mixedbayes.naming import Names
from mixedbayes.priors.distributions import PriorDist
from mixedbayes.priors.table import PriorRow, PriorTable, group_prior_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mixedbayes.design import Design
    from mixedbayes.design.dpars import DparDesign
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.design.nonlinear import NonlinearDesign

__all__ = [
    "default_regression_priors",
    "dpar_prior_rows",
    "imputation_prior_rows",
    "regression_positive_classes",
]


def default_regression_priors(design: Design) -> PriorTable:
    """The default prior table of a design.

    Rules (``loc``, ``s`` from :func:`mixedbayes.families.response_scale`: for a gaussian
    response ``median(y)`` and ``sd(y)``):

    - ``Intercept`` (on centred predictors, as brms): Student-t(3, loc − mean(offset), 2.5·s),
      the offset taken off on the link scale (``log(mean(y)) − mean(log(exposure))``: a rate).
    - ``b`` for predictor ``x``: Normal(0, 2.5·s / sd(x)) (rstanarm's autoscaling).
    - ``sd`` of group term ``z``: half-Student-t(3, 0, s / sd(z)) (``sd(z)`` = 1 for the
      intercept).
    - ``cor``: LKJ(1), uniform over correlation matrices.
    - family parameters (``sigma``): the family's default, e.g. half-Student-t(3, 0, sd(y));
      a parameter with a formula (``zi``, ``sigma``) gets its formula's rows, ``nlpar`` the
      parameter (:func:`dpar_prior_rows`);
    - ``delta_power`` (``variance: {power: fitted}``): Normal(0, 1).
    """
    y = design.y
    loc, s, ytext = response_scale(design.family, y, design.link)
    rows: list[PriorRow] = []
    if design.has_intercept:
        # the linear predictor adds the offset: the intercept is what is left of link(y)
        # (a rate per unit of exposure for offset(log(exposure)) under a log link)
        offset = 0.0 if design.offset is None else float(np.mean(design.offset))
        where = f"; less mean(offset)={offset:.4g}" if offset else ""
        rows.append(
            PriorRow(
                "Intercept",
                "",
                "",
                "",
                PriorDist("student_t", (3.0, round_sig(loc - offset), round_sig(2.5 * s))),
                "default",
                f"Student-t(3, loc, 2.5·s) on centred predictors; {ytext}{where}",
            )
        )
    rows += _slope_rows(design.fixed_terms, design.X, 2.5 * s, "", f"2.5·s/sd(x)); {ytext}")
    sd_prior = _sd_prior(s, f"s/sd(z)); {ytext}")

    rows += group_prior_rows(
        design.groups, sd_prior, 1.0, "LKJ(1): uniform over correlation matrices"
    )
    dpars = {d.name: d for d in design.dpars}
    for param in design.family.params:
        dpar = dpars.get(param.name)
        if dpar is None:
            prior, text = param.default_prior(y)
            rows.append(PriorRow(param.name, "", "", "", prior, "default", text))
        else:
            rows += dpar_prior_rows(dpar, param.formula_intercept_prior(y))
    if power_of_fitted(design):
        rows.append(
            PriorRow(
                Names.DELTA_POWER,
                "",
                "",
                "",
                PriorDist("normal", (0.0, 1.0)),
                "default",
                "Normal(0, 1) on the power of |fitted| (0: a constant SD, 1: a constant "
                "coefficient of variation)",
            )
        )
    rows += imputation_prior_rows(design)
    return PriorTable(tuple(rows))


def imputation_prior_rows(design: Design | NonlinearDesign) -> list[PriorRow]:
    """The prior rows of each imputed covariate's submodel (``missing.covariates``): the
    same rules as a response's, scaled from the covariate's observed values, ``nlpar`` the
    covariate (``b`` of ``chl ~ age`` is class ``b``, coef ``age``, nlpar ``chl``)."""
    import dataclasses

    plan = design.imputation
    rows: list[PriorRow] = []
    for cov in () if plan is None else plan.covariates:
        sub = cov.sub
        observed = dataclasses.replace(sub, y=sub.y[cov.sub_observed])
        for row in default_regression_priors(observed).rows:
            rows.append(dataclasses.replace(row, nlpar=cov.column))
    return rows


def dpar_prior_rows(dpar: DparDesign, intercept: tuple[PriorDist, str]) -> list[PriorRow]:
    """The prior rows of a family parameter's formula, ``nlpar`` the parameter (``zi``).

    On its link scale (``logit(zi)``), as brms's defaults for distributional parameters:

    - ``Intercept``: the parameter's own (``zi``: Normal(-1, 1.5); ``sigma``: Student-t(3,
      log(sd(y)), 2.5)); else Student-t(3, 0, 2.5);
    - ``b`` for predictor ``x``: Normal(0, 2.5 / sd(x));
    - ``sd`` of group term ``z``: half-Student-t(3, 0, 2.5 / sd(z)) (brms's
      ``student_t(3, 0, 2.5)``, wider than the response's half-Student-t(3, 0, s): a
      parameter's levels may differ by several units on a logit scale, ZIBR's ibd data by an
      SD of 3.3);
    - ``cor``: LKJ(1).
    """
    scale = f"{dpar.link.name}({dpar.name})"
    prior, text = intercept
    rows: list[PriorRow] = []
    if "Intercept" in dpar.terms:
        rows.append(PriorRow("Intercept", "", "", dpar.name, prior, "default", text))
    rows += _slope_rows(dpar.terms, dpar.X, 2.5, dpar.name, f"2.5/sd(x)) on {scale}")
    sd_prior = _sd_prior(2.5, f"2.5/sd(z)) on {scale}, as brms's")

    rows += group_prior_rows(
        dpar.groups, sd_prior, 1.0, "LKJ(1): uniform over correlation matrices", dpar.name
    )
    return rows


def regression_positive_classes(design: Design) -> tuple[str, ...]:
    """The family's positive parameters (``sigma``, ``alpha``, ``phi``) without a formula:
    positive classes."""
    predicted = {d.name for d in design.dpars}
    return tuple(p.name for p in design.family.params if p.positive and p.name not in predicted)


def _slope_rows(
    terms: Sequence[str], X: np.ndarray, numerator: float, nlpar: str, what: str
) -> list[PriorRow]:
    """``b`` rows Normal(0, ``numerator``/sd(x)) of every term but the intercept (``what``:
    the provenance after "Normal(0, ")."""
    rows = []
    for j, term in enumerate(terms):
        if term == "Intercept":
            continue
        sx = sd_scale(X[:, j])
        prior = PriorDist("normal", (0.0, round_sig(numerator / sx)))
        text = f"Normal(0, {what}; sd({term})={sx:.4g}"
        rows.append(PriorRow("b", term, "", nlpar, prior, "default", text))
    return rows


def _sd_prior(numerator: float, what: str) -> Callable[[GroupFactor, int], tuple[PriorDist, str]]:
    """The ``sd`` prior of group term ``k``: half-Student-t(3, 0, ``numerator``/sd(z))
    (``what``: the provenance after "half-Student-t(3, 0, ")."""

    def sd_prior(g: GroupFactor, k: int) -> tuple[PriorDist, str]:
        term = g.terms[k]
        sz = 1.0 if term == "Intercept" else sd_scale(g.Z[:, k])
        text = f"half-Student-t(3, 0, {what}"
        text += "" if term == "Intercept" else f"; sd({term})={sz:.4g}"
        return PriorDist("student_t", (3.0, 0.0, round_sig(numerator / sz))), text

    return sd_prior
