"""Proportions with exact zeros: ``zero_inflated_beta`` (Ospina & Ferrari 2010; the ZIBR model
of Chen & Li 2016 with group effects in both parts).

``y = 0`` with probability ``zi`` (a structural zero, e.g. a taxon absent from a sample), else
``y ~ Beta(mu·phi, (1 - mu)·phi)``: ``mu`` is the mean of the non-zero part (inverse link of
the response's formula), ``phi`` its precision, and ``E[y] = (1 - zi)·mu``. The zero-inflation
probability has its own linear predictor on the logit scale (the spec's ``zi`` formula, group
effects allowed; ``~ 1`` by default), as brms's ``zero_inflated_beta``. Note the sign: ZIBR
reports the *presence* part, ``logit P(y > 0) = -logit(zi)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem
from mixedbayes.families.base import FamilyParam, Link, register_family, round_sig
from mixedbayes.families.continuous import Beta
from mixedbayes.families.support import ZERO_INFLATION, bad_rows_problem, present_values

__all__ = ["ZeroInflatedBeta"]

#: Beta draws are kept inside the open interval (0, 1): a draw rounded to exactly 0 would read
#: as a structural zero, one rounded to 1 would leave the support.
_TINY = float(np.finfo(float).tiny)
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _zib_draws(mu: Any, zi: Any, phi: Any, size: Any) -> Any:
    """The generative graph (PyTensor): a Bernoulli(zi) structural zero, else a beta draw."""
    import pymc as pm
    import pytensor.tensor as pt

    beta = pm.Beta.dist(alpha=mu * phi, beta=(1.0 - mu) * phi, size=size)
    zero = pm.Bernoulli.dist(p=zi, size=size)
    return pt.switch(pt.eq(zero, 1), pt.zeros_like(beta), beta)


def _zib_logp(value: Any, mu: Any, zi: Any, phi: Any) -> Any:
    """``log(zi)`` at 0, ``log(1 - zi) + log Beta(y | mu·phi, (1 - mu)·phi)`` in (0, 1),
    ``-inf`` elsewhere (the beta density is evaluated at a safe point off its support, so
    neither branch's gradient is NaN)."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import check_parameters

    inside = pt.and_(pt.gt(value, 0.0), pt.lt(value, 1.0))
    safe = pt.switch(inside, value, 0.5)
    beta = pm.logp(pm.Beta.dist(alpha=mu * phi, beta=(1.0 - mu) * phi), safe)
    logp = pt.switch(
        pt.eq(value, 0.0),
        pt.log(zi),
        pt.switch(inside, pt.log1p(-zi) + beta, -np.inf),
    )
    return check_parameters(
        logp,
        pt.ge(zi, 0.0),
        pt.le(zi, 1.0),
        msg="0 <= zi <= 1",
    )


@register_family
class ZeroInflatedBeta(Beta):
    """Proportions in [0, 1): ``y = 0`` with probability ``zi``, else
    ``y ~ Beta(mu·phi, (1 - mu)·phi)``; ``E[y] = (1 - zi)·mu``.

    The precision ``phi`` is brms's (variance of the non-zero part ``mu·(1 - mu)/(1 + phi)``);
    ``zi`` has a linear predictor of its own on the logit scale (the spec's ``zi`` formula).
    """

    name = "zero_inflated_beta"
    params: ClassVar[tuple[FamilyParam, ...]] = (*Beta.params, ZERO_INFLATION)

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``link(mean(y | y > 0))`` and ``s = 1``: ``mu`` is the mean of the non-zero part."""
        y = np.asarray(y, dtype=float)
        positive = y[np.isfinite(y) & (y > 0) & (y < 1)]
        if not positive.size:
            return super().prior_reference(y, link)
        m = float(np.mean(positive))
        with np.errstate(all="ignore"):
            loc = float(link.link_numpy(np.asarray([m]))[0])
        if not np.isfinite(loc):
            loc = 0.0
        return round_sig(loc), 1.0, f"link(mean(y | y > 0))={loc:.4g}, s=1 on the link scale"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows holding exactly 1, and rows outside [0, 1) (or not finite)."""
        v = present_values(y)
        one = v == 1
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(v) & ~one & ~(np.isfinite(v) & (v >= 0) & (v < 1))
        return bad_rows_problem(
            y,
            one,
            column,
            "the zero_inflated_beta response must lie in [0, 1): exact zeros are the zero "
            "inflation, exact ones are not in its support",
            "squeeze the ones below 1 (e.g. (y·(n - 1) + 0.5)/n, Smithson & Verkuilen, 2006), "
            "or model them separately.",
        ) + bad_rows_problem(
            y,
            outside,
            column,
            "the zero_inflated_beta response must lie in [0, 1)",
            "rescale the response into [0, 1), e.g. percentages divided by 100 or counts "
            "divided by the library size; for counts out of n trials use the binomial family.",
        )

    def mean_rows(self, y: np.ndarray) -> np.ndarray:
        """The non-zero rows: a structural zero says nothing about ``mu``."""
        return np.asarray(np.asarray(y) > 0)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """A ``pm.CustomDist`` ``ZeroInflatedBeta(mu, zi, phi)``: its log-density written out
        (:func:`_zib_logp`), its draws from the generative graph (:func:`_zib_draws`)."""
        import pymc as pm

        return pm.CustomDist.dist(
            mu,
            params["zi"],
            params["phi"],
            dist=_zib_draws,
            logp=_zib_logp,
            class_name="ZeroInflatedBeta",
        )

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``log(zi)`` at 0, else ``log(1 - zi) + scipy.stats.beta.logpdf(y, mu·phi,
        (1 - mu)·phi)``; ``-inf`` outside [0, 1)."""
        from scipy import stats

        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        zi = np.asarray(params["zi"], dtype=float)
        phi = np.asarray(params["phi"], dtype=float)
        inside = (y > 0) & (y < 1)
        beta = stats.beta.logpdf(np.where(inside, y, 0.5), mu * phi, (1.0 - mu) * phi)
        with np.errstate(divide="ignore"):
            out = np.where(y == 0, np.log(zi), np.where(inside, np.log1p(-zi) + beta, -np.inf))
        return np.asarray(out)

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = (1 - zi)·mu``."""
        return (1.0 - np.asarray(params["zi"], dtype=float)) * np.asarray(mu)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw from the mixture: 0 with probability ``zi``, else a beta draw in (0, 1)."""
        m, zi, phi = np.broadcast_arrays(
            np.asarray(mu, dtype=float),
            np.asarray(params["zi"], dtype=float),
            np.asarray(params["phi"], dtype=float),
        )
        beta = np.clip(rng.beta(m * phi, (1.0 - m) * phi), _TINY, _BELOW_ONE)
        structural = rng.random(np.shape(beta)) < zi
        return np.asarray(np.where(structural, 0.0, beta))
