"""The gaussian family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem, format_rows
from mixedbayes.families.base import (
    Family,
    FamilyParam,
    Link,
    log_scale_intercept,
    register_family,
    round_sig,
    scale_prior,
    sd_scale,
)

__all__ = ["Gaussian"]


@register_family
class Gaussian(Family):
    """Normal response: ``y ~ Normal(mu, sigma)``."""

    name = "gaussian"
    links = ("identity", "log", "inverse")
    default_link = "identity"
    #: ``sigma`` may take a formula (``sigma: "~ trt"``, log link; docs/distributional.md).
    params = (FamilyParam("sigma", scale_prior, link="log", intercept_prior=log_scale_intercept),)

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``median(y)`` and ``sd(y)`` (identity link), as brms and rstanarm scale."""
        loc = float(np.median(y)) if y.size else 0.0
        if link.name != "identity":
            return super().prior_reference(y, link)
        s = sd_scale(y)
        return round_sig(loc), round_sig(s), f"median(y)={loc:.4g}, sd(y)={s:.4g}"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        bad = y.index[np.isinf(y.to_numpy(dtype=float))]
        if len(bad):
            return [
                Problem(
                    f"the response holds non-finite values (inf) in rows {format_rows(list(bad))}.",
                    f"column '{column}'",
                    "replace them with finite numbers, or with NaN to treat them as missing.",
                )
            ]
        return []

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        import pymc as pm

        return pm.Normal.dist(mu=mu, sigma=params["sigma"])

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        from scipy import stats

        return np.asarray(stats.norm.logpdf(y, mu, params["sigma"]))

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        return rng.normal(mu, params["sigma"])
