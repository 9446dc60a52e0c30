"""Default priors of correlated residuals (``residuals:`` of an ``lmm``; docs/priors.md).

- ``phi_ar`` (``ar1``): Uniform(−1, 1), nlme's ``corAR1`` range (a negative lag-one
  correlation is allowed, as nlme and mmrm's ``ar1`` allow);
- ``phi_ar`` (``car1``): Uniform(0, 1), nlme's ``corCAR1`` range (``φ^|Δt|`` needs φ > 0);
- ``rho_cs`` (``cs``): Uniform(−1/(n − 1), 1) with ``n`` the largest block, the range in
  which every block's covariance is positive definite (nlme's ``corCompSymm``);
- ``sd`` of each visit (``unstructured``, group = the visit column, coef = the level): the
  Gaussian ``sigma``'s default, half-Student-t(3, 0, sd(y)); ``cor`` (group = the visit
  column): LKJ(1); the unstructured covariance has no ``sigma`` row;
- ``sigma_ar`` (a ``glmm``'s latent process, on the link scale): half-Student-t(3, 0, s),
  the rule of the group-level SDs (``s`` = 1 on a log or logit scale).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixedbayes.families import response_scale, round_sig
from mixedbayes.naming import Names
from mixedbayes.priors.distributions import PriorDist
from mixedbayes.priors.table import PriorRow, PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.design import Design
    from mixedbayes.design.residuals import ResidualDesign

__all__ = ["residual_priors"]


def residual_priors(table: PriorTable, design: Design, rd: ResidualDesign) -> PriorTable:
    """``table`` (a regression design's defaults) with the residual structure's rows."""
    rows = list(table.rows)
    if rd.correlation == "unstructured":
        sigma = table.get("sigma")
        rows = [r for r in rows if r.class_ != "sigma"]
        for level in rd.visit_levels:
            text = f"the residual SD's default at each visit: {sigma.provenance}"
            rows.append(PriorRow("sd", str(level), rd.time, "", sigma.prior, "default", text))
        lkj = PriorDist("lkj", (1.0,))
        text = "LKJ(1): uniform over the visits' correlation matrices"
        rows.append(PriorRow("cor", "", rd.time, "", lkj, "default", text))
        return PriorTable(tuple(rows))
    if rd.correlation == "cs":
        n = rd.max_block
        lower = -1.0 / (n - 1) if n > 1 else -1.0
        text = f"Uniform(-1/(n-1), 1), positive-definite blocks; largest block n={n}"
        dist = PriorDist("uniform", (round(lower, 6), 1.0))
        rows.append(PriorRow(Names.RHO_CS, "", "", "", dist, "default", text))
        return PriorTable(tuple(rows))
    if rd.correlation == "ar1":
        dist = PriorDist("uniform", (-1.0, 1.0))
        text = "Uniform(-1, 1): nlme's corAR1 range"
    else:
        dist = PriorDist("uniform", (0.0, 1.0))
        text = "Uniform(0, 1): nlme's corCAR1 range"
    rows.append(PriorRow(Names.PHI_AR, "", "", "", dist, "default", text))
    if rd.latent:
        _, scale, ytext = response_scale(design.family, design.y, design.link)
        prior = PriorDist("student_t", (3.0, 0.0, round_sig(scale)))
        text = f"half-Student-t(3, 0, s) as the group-level SDs, on the link scale; {ytext}"
        rows.append(PriorRow(Names.SIGMA_AR, "", "", "", prior, "default", text))
    return PriorTable(tuple(rows))
