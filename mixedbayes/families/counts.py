"""Count responses: ``poisson``, ``negbinomial`` and their zero-inflated versions.

``mu`` is the mean of the count distribution (for a zero-inflated family, of its count part;
``E[y] = (1 - zi)·mu``). The negative-binomial shape ``alpha`` is PyMC's: ``var = mu +
mu²/alpha`` (brms's ``shape``). The zero-inflation parameter ``zi`` is the probability of a
structural zero; it has its own linear predictor on the logit scale, and ``params["zi"]``
holds the probability (its inverse logit), broadcastable with ``mu``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem
from mixedbayes.families.base import Family, FamilyParam, Link, register_family
from mixedbayes.families.support import (
    ZERO_INFLATION,
    count_problems,
    delta_reference,
    fixed_prior,
)

__all__ = ["NegBinomial", "Poisson", "ZeroInflatedNegBinomial", "ZeroInflatedPoisson"]

_SHAPE = FamilyParam(
    "alpha",
    fixed_prior(
        "gamma",
        (0.01, 0.01),
        "Gamma(0.01, 0.01), as brms's default prior on the negative-binomial shape",
    ),
    link="log",
)
_ZI = ZERO_INFLATION


class _Count(Family):
    """Shared parts of the count families: support, links, data-scaled reference."""

    links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    default_link: ClassVar[str] = "log"
    discrete: ClassVar[bool] = True

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``log(mean(y))`` and ``s = 1`` (log link); ``s = |g'(mean y)|·sd(y)`` otherwise."""
        return delta_reference(y, link) or super().prior_reference(y, link)

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows whose value is not a non-negative integer (named with their values)."""
        return count_problems(y, column, self.name)

    def count_logp(
        self, y: np.ndarray, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Log-probability of the count distribution (SciPy)."""
        raise NotImplementedError

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """Draws of the count distribution (NumPy)."""
        raise NotImplementedError

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Pointwise log-probability with SciPy."""
        return self.count_logp(np.asarray(y), np.asarray(mu), params)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw counts (integers), shaped like ``mu`` broadcast with the parameters."""
        return self.count_draws(np.asarray(mu, dtype=float), params, rng)


class _Poisson(_Count):
    def count_logp(
        self, y: np.ndarray, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> np.ndarray:
        from scipy import stats

        return np.asarray(stats.poisson.logpmf(y, mu))

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        return rng.poisson(mu)


class _NegBinomial(_Count):
    def count_logp(
        self, y: np.ndarray, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> np.ndarray:
        from scipy import stats

        alpha = np.asarray(params["alpha"], dtype=float)
        return np.asarray(stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu)))

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        m, alpha = np.broadcast_arrays(mu, np.asarray(params["alpha"], dtype=float))
        return rng.negative_binomial(alpha, alpha / (alpha + m))


@register_family
class Poisson(_Poisson):
    """Counts: ``y ~ Poisson(mu)``."""

    name = "poisson"

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.Poisson.dist(mu=mu)``."""
        import pymc as pm

        return pm.Poisson.dist(mu=mu)


@register_family
class NegBinomial(_NegBinomial):
    """Overdispersed counts: ``y ~ NegativeBinomial(mu, alpha)``, ``var = mu + mu²/alpha``."""

    name = "negbinomial"
    params = (_SHAPE,)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.NegativeBinomial.dist(mu=mu, alpha=alpha)``."""
        import pymc as pm

        return pm.NegativeBinomial.dist(mu=mu, alpha=params["alpha"])


def _zi_logp(y: np.ndarray, zi: np.ndarray, count_logp: np.ndarray) -> np.ndarray:
    """``log(zi + (1 - zi)·f(0))`` at ``y = 0``, ``log(1 - zi) + log f(y)`` elsewhere."""
    with np.errstate(divide="ignore"):
        log_count = np.log1p(-zi) + count_logp
        zero = np.logaddexp(np.log(zi), log_count)
    return np.asarray(np.where(y == 0, zero, log_count))


class _ZeroInflated(_Count):
    """A zero-inflated count family: a structural zero with probability ``zi``."""

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """The mixture's log-probability, by hand from the count part's SciPy one."""
        y = np.asarray(y)
        zi = np.asarray(params["zi"], dtype=float)
        return _zi_logp(y, zi, self.count_logp(y, np.asarray(mu), params))

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
        """Draw from the mixture: a structural zero with probability ``zi``, else a count."""
        m, zi = np.broadcast_arrays(
            np.asarray(mu, dtype=float), np.asarray(params["zi"], dtype=float)
        )
        counts = self.count_draws(m, params, rng)
        structural = rng.random(np.shape(counts)) < zi
        return np.where(structural, 0, counts)


@register_family
class ZeroInflatedPoisson(_ZeroInflated, _Poisson):
    """``y = 0`` with probability ``zi``, else ``y ~ Poisson(mu)``."""

    name = "zero_inflated_poisson"
    params = (_ZI,)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.ZeroInflatedPoisson.dist(psi=1 - zi, mu=mu)``.

        PyMC's ``psi`` is the probability of the Poisson process, not of a structural zero.
        """
        import pymc as pm

        return pm.ZeroInflatedPoisson.dist(psi=1.0 - params["zi"], mu=mu)


@register_family
class ZeroInflatedNegBinomial(_ZeroInflated, _NegBinomial):
    """``y = 0`` with probability ``zi``, else ``y ~ NegativeBinomial(mu, alpha)``."""

    name = "zero_inflated_negbinomial"
    params = (_SHAPE, _ZI)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.ZeroInflatedNegativeBinomial.dist(psi=1 - zi, mu, alpha)``.

        PyMC's ``psi`` is the probability of the negative-binomial process, not of a
        structural zero.
        """
        import pymc as pm

        return pm.ZeroInflatedNegativeBinomial.dist(
            psi=1.0 - params["zi"],
            mu=mu,
            alpha=params["alpha"],
        )
