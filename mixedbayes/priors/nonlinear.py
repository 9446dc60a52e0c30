"""Default priors of nonlinear models (one set of rows per structural parameter, by nlpar)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixedbayes.families import round_sig, sd_scale
from mixedbayes.priors.distributions import PriorDist
from mixedbayes.priors.regression import imputation_prior_rows
from mixedbayes.priors.table import PriorRow, PriorTable, group_prior_rows

if TYPE_CHECKING:
    from mixedbayes.design.nonlinear import NonlinearDesign

__all__ = ["ERROR_PARAMS", "default_nonlinear_priors"]

#: Residual-error parameters of each error model.
ERROR_PARAMS = {
    "additive": ("sigma",),
    "proportional": ("sigma_prop",),
    "combined": ("sigma", "sigma_prop"),
    "lognormal": ("sigma",),
}


def default_nonlinear_priors(design: NonlinearDesign) -> PriorTable:
    """Weakly informative defaults on each parameter's link scale.

    - ``b`` intercept of parameter p (nlpar p): Normal(0, 2.5) on its link scale — for a
      log-scale PK parameter, values from e^-5 to e^5 in its units; **set informative priors
      from pharmacological knowledge** (as brms requires for nonlinear models).
    - ``b`` covariate effects: Normal(0, 2.5/sd(x)).
    - ``sd`` of group terms: half-Student-t(3, 0, 1) (on a log scale, 1 ≈ 130 % CV).
    - ``cor``: LKJ(2), mildly favouring small correlations between parameters.
    - residual ``sigma`` (additive: half-Student-t(3, 0, sd(y)); log-normal: half-Student-t(3,
      0, 1)) and ``sigma_prop`` (proportional: half-Student-t(3, 0, 0.5)).
    - an imputed covariate's submodel (``missing.covariates``): the regression kinds' rows,
      ``nlpar`` the covariate.
    """
    rows: list[PriorRow] = []
    for p in design.params:
        for j, term in enumerate(p.terms):
            if term == "Intercept":
                rows.append(
                    PriorRow(
                        "b",
                        "Intercept",
                        "",
                        p.key,
                        PriorDist("normal", (0.0, 2.5)),
                        "default",
                        f"Normal(0, 2.5) on the {p.link.name} scale of {p.name}; "
                        "set an informative prior",
                    )
                )
            else:
                sx = sd_scale(p.X[:, j])
                rows.append(
                    PriorRow(
                        "b",
                        term,
                        "",
                        p.key,
                        PriorDist("normal", (0.0, round_sig(2.5 / sx))),
                        "default",
                        f"Normal(0, 2.5/sd(x)); sd({term})={sx:.4g}",
                    )
                )
    link_sd = PriorDist("student_t", (3.0, 0.0, 1.0))
    rows += group_prior_rows(
        design.groups,
        lambda g, k: (link_sd, "half-Student-t(3, 0, 1) on the parameter's link scale"),
        2.0,
        "LKJ(2)",
    )
    sd_y = sd_scale(design.y)
    for name in ERROR_PARAMS[design.spec.error]:
        if name == "sigma_prop":
            prior, text = PriorDist("student_t", (3.0, 0.0, 0.5)), "half-Student-t(3, 0, 0.5)"
        elif design.spec.error == "lognormal":
            prior, text = (
                PriorDist("student_t", (3.0, 0.0, 1.0)),
                "half-Student-t(3, 0, 1) on log(y)",
            )
        else:
            prior = PriorDist("student_t", (3.0, 0.0, round_sig(sd_y)))
            text = f"half-Student-t(3, 0, sd(y)); sd(y)={sd_y:.4g}"
        rows.append(PriorRow(name, "", "", "", prior, "default", text))
    rows += imputation_prior_rows(design)
    return PriorTable(tuple(rows))
