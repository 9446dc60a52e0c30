"""Priors: distributions (parsed from text), the prior table, defaults with provenance."""

from mixedbayes.priors.distributions import DISTRIBUTIONS, PriorDist, parse_prior
from mixedbayes.priors.table import PriorRow, PriorTable, build_prior_table, default_priors

__all__ = [
    "DISTRIBUTIONS",
    "PriorDist",
    "PriorRow",
    "PriorTable",
    "build_prior_table",
    "default_priors",
    "parse_prior",
]
