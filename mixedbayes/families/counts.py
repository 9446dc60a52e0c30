"""Count responses: ``poisson``, ``negbinomial``, ``negbinomial1`` and their zero-inflated
versions (zero-truncated and hurdle ones build on them in :mod:`.hurdle`).

``mu`` is the mean of the count distribution (for a zero-inflated family, of its count part;
``E[y] = (1 - zi)·mu``). The negative-binomial shape ``alpha`` is PyMC's: ``var = mu +
mu²/alpha`` (brms's ``shape``, glmmTMB's ``nbinom2``); ``negbinomial1`` is glmmTMB's
``nbinom1``, ``var = mu·(1 + phi)`` (the shape ``alpha = mu/phi``). The zero-inflation
parameter ``zi`` is the probability of a structural zero; it has its own linear predictor on
the logit scale, and ``params["zi"]`` holds the probability (its inverse logit),
broadcastable with ``mu``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem
from mixedbayes.families.base import Family, FamilyParam, Link, register_family, round_sig
from mixedbayes.families.support import (
    ZERO_INFLATION,
    count_problems,
    delta_reference,
    fixed_prior,
)

if TYPE_CHECKING:
    from mixedbayes.priors.distributions import PriorDist

__all__ = [
    "NB1_DISPERSION",
    "NegBinomial",
    "NegBinomial1",
    "Poisson",
    "ZeroInflatedNegBinomial",
    "ZeroInflatedNegBinomial1",
    "ZeroInflatedPoisson",
    "with_zeros",
]

_SHAPE = FamilyParam(
    "alpha",
    fixed_prior(
        "gamma",
        (0.01, 0.01),
        "Gamma(0.01, 0.01), as brms's default prior on the negative-binomial shape",
    ),
    link="log",
)


def _dispersion_prior(y: np.ndarray) -> tuple[PriorDist, str]:
    """Half-Student-t(3, 0, s) on the NB1 dispersion, ``s = var(y)/mean(y) - 1`` (at least
    1): the response's raw overdispersion, an upper scale for ``phi`` (covariates and group
    effects explain part of it)."""
    from mixedbayes.priors.distributions import PriorDist

    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    m = float(np.mean(y)) if y.size > 1 else 0.0
    raw = float(np.var(y, ddof=1)) / m - 1.0 if m > 0 else 0.0
    s = round_sig(max(raw, 1.0))
    return (
        PriorDist("student_t", (3.0, 0.0, s)),
        f"half-Student-t(3, 0, max(var(y)/mean(y) - 1, 1)); var(y)/mean(y) - 1={raw:.4g}",
    )


#: The dispersion of ``negbinomial1`` (glmmTMB's ``nbinom1``): ``var = mu·(1 + phi)``; it may
#: take a formula (``phi: "~ x"``, log link), as the other dispersions.
NB1_DISPERSION = FamilyParam("phi", _dispersion_prior, link="log")
_ZI = ZERO_INFLATION


class _Count(Family):
    """Shared parts of the count families: support, links, data-scaled reference, and the
    count distribution itself (PyMC, SciPy, NumPy draws), which zero-inflated, truncated and
    hurdle families build on."""

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

    def count_dist(self, mu: Any, params: dict[str, Any]) -> Any:
        """The count distribution at ``mu`` as an unnamed PyMC ``.dist(...)`` variable."""
        raise NotImplementedError

    def count_scipy(
        self, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> tuple[Any, tuple[np.ndarray, ...]]:
        """The count distribution at ``mu``: a SciPy distribution and its shape arguments
        (not frozen: freezing costs a millisecond a call, draw by draw in ``pm.draw``)."""
        raise NotImplementedError

    def count_logp(
        self, y: np.ndarray, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Log-probability of the count distribution (SciPy)."""
        dist, args = self.count_scipy(mu, params)
        return np.asarray(dist.logpmf(y, *args))

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """Draws of the count distribution (NumPy)."""
        raise NotImplementedError

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """The count distribution (:meth:`count_dist`)."""
        return self.count_dist(mu, params)

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
    def count_dist(self, mu: Any, params: dict[str, Any]) -> Any:
        """``pm.Poisson.dist(mu=mu)``."""
        import pymc as pm

        return pm.Poisson.dist(mu=mu)

    def count_scipy(
        self, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> tuple[Any, tuple[np.ndarray, ...]]:
        from scipy import stats

        return stats.poisson, (np.asarray(mu),)

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        return rng.poisson(mu)


class _NegBinomial(_Count):
    """The negative binomial in PyMC's ``(mu, alpha)``: ``var = mu + mu²/alpha``."""

    def nb_alpha(self, mu: Any, params: dict[str, Any]) -> Any:
        """PyMC's shape ``alpha`` (NumPy or PyTensor): the parameter ``alpha`` (NB2)."""
        return params["alpha"]

    def count_dist(self, mu: Any, params: dict[str, Any]) -> Any:
        """``pm.NegativeBinomial.dist(mu=mu, alpha=alpha)``."""
        import pymc as pm

        return pm.NegativeBinomial.dist(mu=mu, alpha=self.nb_alpha(mu, params))

    def count_scipy(
        self, mu: np.ndarray, params: dict[str, np.ndarray]
    ) -> tuple[Any, tuple[np.ndarray, ...]]:
        from scipy import stats

        alpha = np.asarray(self.nb_alpha(mu, params), dtype=float)
        return stats.nbinom, (alpha, alpha / (alpha + mu))

    def count_draws(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        m, alpha = np.broadcast_arrays(mu, np.asarray(self.nb_alpha(mu, params), dtype=float))
        return rng.negative_binomial(alpha, alpha / (alpha + m))


class _NegBinomial1(_NegBinomial):
    """glmmTMB's ``nbinom1``: ``var = mu·(1 + phi)``, the NB with ``alpha = mu/phi``."""

    def nb_alpha(self, mu: Any, params: dict[str, Any]) -> Any:
        """``alpha = mu/phi`` (NumPy or PyTensor)."""
        return mu / params["phi"]


@register_family
class Poisson(_Poisson):
    """Counts: ``y ~ Poisson(mu)``."""

    name = "poisson"


@register_family
class NegBinomial(_NegBinomial):
    """Overdispersed counts: ``y ~ NegativeBinomial(mu, alpha)``, ``var = mu + mu²/alpha``
    (glmmTMB's ``nbinom2``, brms's ``negbinomial``)."""

    name = "negbinomial"
    params = (_SHAPE,)


@register_family
class NegBinomial1(_NegBinomial1):
    """Overdispersed counts, variance linear in the mean: ``var = mu·(1 + phi)`` (glmmTMB's
    ``nbinom1``); the negative binomial with shape ``alpha = mu/phi``."""

    name = "negbinomial1"
    params = (NB1_DISPERSION,)


def with_zeros(values: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with each set to 0 with probability ``p`` (a zero-inflation or hurdle draw).

    Parameters
    ----------
    values : numpy.ndarray
        Draws of the non-zero process.
    p : numpy.ndarray
        Probability of a zero, broadcastable with ``values``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        Shaped like ``values``.
    """
    return np.asarray(np.where(rng.random(np.shape(values)) < p, 0, values))


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
        return with_zeros(self.count_draws(m, params, rng), zi, rng)


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
            alpha=self.nb_alpha(mu, params),
        )


@register_family
class ZeroInflatedNegBinomial1(ZeroInflatedNegBinomial, _NegBinomial1):
    """``y = 0`` with probability ``zi``, else ``y`` from the ``negbinomial1`` (glmmTMB's
    ``nbinom1`` with ``ziformula``): ``var`` of the count part ``mu·(1 + phi)``."""

    name = "zero_inflated_negbinomial1"
    params = (NB1_DISPERSION, _ZI)
