"""Continuous responses besides the gaussian: ``gamma``, ``beta``, ``student``, ``lognormal``.

``mu`` is the mean for ``gamma``, ``beta`` and ``student``, and the mean of ``log(y)`` for
``lognormal`` (whose mean is ``exp(mu + sigma²/2)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem
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
from mixedbayes.families.support import (
    bad_rows_problem,
    delta_reference,
    fixed_prior,
    present_values,
)

if TYPE_CHECKING:
    from mixedbayes.priors.distributions import PriorDist

__all__ = ["Beta", "Gamma", "LogNormal", "Student"]


def _positive_problems(y: pd.Series, column: str, family: str, hint: str) -> list[Problem]:
    v = present_values(y)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(v) & ~(np.isfinite(v) & (v > 0))
    return bad_rows_problem(
        y, bad, column, f"the {family} response must be positive and finite", hint
    )


def _finite_problems(y: pd.Series, column: str, family: str) -> list[Problem]:
    v = present_values(y)
    bad = ~np.isnan(v) & ~np.isfinite(v)
    return bad_rows_problem(
        y,
        bad,
        column,
        f"the {family} response must be finite",
        "replace them with finite numbers, or with NaN to treat them as missing.",
    )


# --------------------------------------------------------------------------- gamma
@register_family
class Gamma(Family):
    """Positive response: ``y ~ Gamma(shape=alpha, rate=alpha/mu)``, mean ``mu``.

    The variance is ``mu²/alpha`` (coefficient of variation ``1/sqrt(alpha)``).
    """

    name = "gamma"
    links = ("log", "inverse", "identity")
    default_link = "log"
    params = (
        FamilyParam(
            "alpha",
            fixed_prior(
                "gamma", (0.01, 0.01), "Gamma(0.01, 0.01), as brms's default prior on the shape"
            ),
            link="log",
        ),
    )

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``log(mean(y))`` and ``s = 1`` (log link); ``s = |g'(mean y)|·sd(y)`` otherwise."""
        return delta_reference(y, link) or super().prior_reference(y, link)

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows whose value is not positive and finite."""
        return _positive_problems(
            y,
            column,
            self.name,
            "the gamma family needs y > 0: for exact zeros use a hurdle model or model them "
            "separately; for responses that can be negative use gaussian or student.",
        )

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.Gamma.dist(alpha=alpha, beta=alpha/mu)``."""
        import pymc as pm

        alpha = params["alpha"]
        return pm.Gamma.dist(alpha=alpha, beta=alpha / mu)

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.gamma.logpdf(y, a=alpha, scale=mu/alpha)``."""
        from scipy import stats

        alpha = np.asarray(params["alpha"], dtype=float)
        return np.asarray(stats.gamma.logpdf(y, a=alpha, scale=np.asarray(mu) / alpha))

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw gamma responses with mean ``mu`` and shape ``alpha``."""
        alpha = np.asarray(params["alpha"], dtype=float)
        return rng.gamma(alpha, np.asarray(mu) / alpha)


# --------------------------------------------------------------------------- beta
@register_family
class Beta(Family):
    """Proportions in (0, 1): ``y ~ Beta(mu·phi, (1 - mu)·phi)``, mean ``mu``.

    The precision ``phi`` gives the variance ``mu·(1 - mu)/(1 + phi)``.
    """

    name = "beta"
    links = ("logit", "probit", "cloglog")
    default_link = "logit"
    params: ClassVar[tuple[FamilyParam, ...]] = (
        FamilyParam(
            "phi",
            fixed_prior(
                "gamma",
                (0.01, 0.01),
                "Gamma(0.01, 0.01), as brms's default prior on the beta precision phi",
            ),
            link="log",
        ),
    )

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows holding exactly 0 or 1, and rows outside [0, 1] (or not finite)."""
        v = present_values(y)
        boundary = (v == 0) | (v == 1)
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(v) & ~boundary & ~(np.isfinite(v) & (v > 0) & (v < 1))
        return bad_rows_problem(
            y,
            boundary,
            column,
            "the beta response must lie strictly between 0 and 1, not at exactly 0 or 1",
            "use a zero/one-inflated beta model for true zeros and ones, or squeeze the "
            "values into (0, 1) with (y·(n - 1) + 0.5)/n (Smithson & Verkuilen, 2006).",
        ) + bad_rows_problem(
            y,
            outside,
            column,
            "the beta response must lie strictly between 0 and 1",
            "rescale the response into (0, 1), e.g. percentages divided by 100; for counts "
            "out of n trials use the binomial family.",
        )

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.Beta.dist(alpha=mu·phi, beta=(1 - mu)·phi)``."""
        import pymc as pm

        phi = params["phi"]
        return pm.Beta.dist(alpha=mu * phi, beta=(1.0 - mu) * phi)

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.beta.logpdf(y, mu·phi, (1 - mu)·phi)``."""
        from scipy import stats

        mu = np.asarray(mu, dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        return np.asarray(stats.beta.logpdf(y, mu * phi, (1.0 - mu) * phi))

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw beta responses with mean ``mu`` and precision ``phi``."""
        mu = np.asarray(mu, dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        return rng.beta(mu * phi, (1.0 - mu) * phi)


# --------------------------------------------------------------------------- student
@register_family
class Student(Family):
    """Heavy-tailed response: ``y ~ StudentT(nu, mu, sigma)``.

    The mean is ``mu`` when ``nu > 1`` (undefined otherwise).
    """

    name = "student"
    links = ("identity", "log", "inverse")
    default_link = "identity"
    params = (
        FamilyParam("sigma", scale_prior, link="log", intercept_prior=log_scale_intercept),
        FamilyParam(
            "nu",
            fixed_prior(
                "gamma",
                (2.0, 0.1),
                "Gamma(2, 0.1), as brms's default prior on the degrees of freedom",
            ),
        ),
    )

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``median(y)`` and ``sd(y)`` (identity link), as the gaussian family."""
        if link.name != "identity":
            return super().prior_reference(y, link)
        loc = float(np.median(y)) if y.size else 0.0
        s = sd_scale(y)
        return round_sig(loc), round_sig(s), f"median(y)={loc:.4g}, sd(y)={s:.4g}"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows holding non-finite values (inf)."""
        return _finite_problems(y, column, self.name)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma)``."""
        import pymc as pm

        return pm.StudentT.dist(
            nu=params["nu"],
            mu=mu,
            sigma=params["sigma"],
        )

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.t.logpdf(y, nu, mu, sigma)``."""
        from scipy import stats

        return np.asarray(stats.t.logpdf(y, params["nu"], mu, params["sigma"]))

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw ``mu + sigma·t(nu)``."""
        m, sigma, nu = np.broadcast_arrays(
            np.asarray(mu, dtype=float),
            np.asarray(params["sigma"], dtype=float),
            np.asarray(params["nu"], dtype=float),
        )
        return m + sigma * rng.standard_t(nu)


# --------------------------------------------------------------------------- lognormal
def _log_positive(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return np.log(y[np.isfinite(y) & (y > 0)])


def _log_sigma_intercept(y: np.ndarray) -> tuple[PriorDist, str]:
    return log_scale_intercept(y, _log_positive, "log y")


def _log_scale_prior(y: np.ndarray) -> tuple[PriorDist, str]:
    from mixedbayes.priors.distributions import PriorDist

    s = sd_scale(_log_positive(y))
    return (
        PriorDist("student_t", (3.0, 0.0, round_sig(s))),
        f"half-Student-t(3, 0, sd(log y)); sd(log y)={s:.4g}",
    )


@register_family
class LogNormal(Family):
    """Positive, right-skewed response: ``log(y) ~ Normal(mu, sigma)``.

    ``mu`` is the mean (and median) of ``log(y)``; ``E[y] = exp(mu + sigma²/2)``.
    """

    name = "lognormal"
    links = ("identity",)
    default_link = "identity"
    params = (
        FamilyParam("sigma", _log_scale_prior, link="log", intercept_prior=_log_sigma_intercept),
    )

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``median(log y)`` and ``sd(log y)``: ``mu`` is on the scale of ``log(y)``."""
        ly = _log_positive(y)
        loc = float(np.median(ly)) if ly.size else 0.0
        s = sd_scale(ly)
        return round_sig(loc), round_sig(s), f"median(log y)={loc:.4g}, sd(log y)={s:.4g}"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows whose value is not positive and finite."""
        return _positive_problems(
            y,
            column,
            self.name,
            "the lognormal family needs y > 0: for exact zeros use a hurdle model or model "
            "them separately; for responses that can be negative use gaussian or student.",
        )

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.LogNormal.dist(mu=mu, sigma=sigma)``."""
        import pymc as pm

        return pm.LogNormal.dist(mu=mu, sigma=params["sigma"])

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.lognorm.logpdf(y, s=sigma, scale=exp(mu))``."""
        from scipy import stats

        return np.asarray(stats.lognorm.logpdf(y, s=params["sigma"], scale=np.exp(mu)))

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = exp(mu + sigma²/2)``."""
        sigma = np.asarray(params["sigma"], dtype=float)
        return np.exp(np.asarray(mu) + 0.5 * sigma**2)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw ``exp(Normal(mu, sigma))``."""
        return rng.lognormal(np.asarray(mu, dtype=float), params["sigma"])
