"""Default priors of joint longitudinal–survival models."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.design.joint import EVENT
from mixedbayes.families import response_scale, round_sig, sd_scale
from mixedbayes.priors.distributions import PriorDist, parse_prior
from mixedbayes.priors.regression import default_regression_priors
from mixedbayes.priors.table import PriorRow, PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.joint import JointDesign

__all__ = ["crude_log_rate", "default_joint_priors", "joint_positive_classes"]


def default_joint_priors(design: JointDesign) -> PriorTable:
    """Each outcome's regression defaults (``nlpar`` = the outcome; group terms named
    ``<outcome>:<term>``), LKJ(1) per correlated factor, and for the hazard:

    - ``b`` (nlpar ``event``) of covariate x: Normal(0, 2.5/sd(x)) (a log hazard ratio);
    - ``alpha`` of an association: Normal(0, 2.5/s), s the outcome's scale on its
      linear-predictor scale (for ``slope`` s divided by the follow-up's length, for
      ``area`` multiplied by it): a change of one s in the outcome moves the log hazard by
      up to ±5;
    - the baseline's parameters: the baseline's own defaults (``mixedbayes.survival``), those
      that shift the whole log hazard centred on the log crude event rate (events / total
      follow-up), so that the time unit does not matter.
    """
    rows: list[PriorRow] = []
    for name, d in design.outcomes.items():
        for r in default_regression_priors(d):
            if r.class_ == "sd":
                rows.append(dataclasses.replace(r, coef=f"{name}:{r.coef}"))
            elif r.class_ != "cor":
                rows.append(dataclasses.replace(r, nlpar=name))
    for structure in design.structures:
        if structure.correlated:
            lkj = PriorDist("lkj", (1.0,))
            text = "LKJ(1) across outcomes"
            rows.append(PriorRow("cor", "", structure.name, "", lkj, "default", text))
    surv = design.survival
    for j, term in enumerate(surv.terms):
        sx = sd_scale(surv.X[:, j])
        rows.append(
            PriorRow(
                "b",
                term,
                "",
                EVENT,
                PriorDist("normal", (0.0, round_sig(2.5 / sx))),
                "default",
                f"Normal(0, 2.5/sd(x)) on the log hazard; sd({term})={sx:.4g}",
            )
        )
    span = float(np.max(surv.stop))
    for a in design.associations:
        d = design.outcomes[a.outcome]
        _, s, _ = response_scale(d.family, d.y, d.link)
        scale = {"slope": s / span, "area": s * span}.get(a.type, s)
        for label in a.labels:
            rows.append(
                PriorRow(
                    "alpha",
                    label,
                    "",
                    "",
                    PriorDist("normal", (0.0, round_sig(2.5 / scale))),
                    "default",
                    f"Normal(0, 2.5/s): s={scale:.4g}, the {a.type} of {a.outcome} on its "
                    "linear-predictor scale",
                )
            )
    log_rate = crude_log_rate(design)
    for p in design.baseline.params():
        prior = parse_prior(p.prior)
        text = f"{design.baseline.name} baseline hazard"
        if p.level and prior.name == "normal":
            prior = PriorDist("normal", (round_sig(log_rate), prior.args[1]))
            text += f"; centred on log(events / follow-up) = {log_rate:.3g}"
        for coef in p.labels if p.size else ("",):
            rows.append(PriorRow(p.name, coef, "", EVENT, prior, "default", text))
    return PriorTable(tuple(rows))


def crude_log_rate(design: JointDesign) -> float:
    """log(events / total follow-up) of the survival rows (half an event when none)."""
    surv = design.survival
    events = float(np.sum(surv.event))
    return float(np.log(max(events, 0.5) / float(np.sum(surv.stop - surv.start))))


def joint_positive_classes(design: JointDesign) -> tuple[str, ...]:
    """Every outcome family's positive parameters and the baseline's positive parameters."""
    out: list[str] = []
    for d in design.outcomes.values():
        out += [p.name for p in d.family.params if p.positive and not p.predictor]
    out += [p.name for p in design.baseline.params() if p.positive]
    return tuple(dict.fromkeys(out))
