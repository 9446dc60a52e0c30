"""Zero-truncated and hurdle counts: ``truncated_poisson``, ``truncated_negbinomial``,
``truncated_negbinomial1`` and ``hurdle_poisson``, ``hurdle_negbinomial``,
``hurdle_negbinomial1`` (brms's families of those names; glmmTMB's ``truncated_poisson``,
``truncated_nbinom2``, ``truncated_nbinom1``, whose hurdle models are these with a ``ziformula``).

A zero-truncated count takes values ``y >= 1``: ``P(y) = f(y)/(1 - f(0))``, ``f`` the count
distribution at ``mu`` (Poisson, NB2 or NB1), so ``mu`` is the mean of the *untruncated*
count and ``E[y] = mu/(1 - f(0))``. A hurdle count is ``y = 0`` with probability ``hu`` (every
zero comes from the hurdle), else a zero-truncated count: ``E[y] = (1 - hu)·mu/(1 - f(0))``.
``hu`` has its own linear predictor on the logit scale (the spec's ``hu`` formula, group
effects allowed; ``~ 1`` by default), and ``params["hu"]`` holds the probability.

The log-density is written out (``f(0)`` in closed form from the count distribution's own
log-density at 0); draws are exact, by the count distribution's inverse CDF above ``f(0)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem
from mixedbayes.families.base import FamilyParam, Link, register_family
from mixedbayes.families.counts import (
    NegBinomial,
    NegBinomial1,
    _Count,
    _NegBinomial,
    _NegBinomial1,
    _Poisson,
    with_zeros,
)
from mixedbayes.families.support import HURDLE, bad_rows_problem, present_values

__all__ = [
    "HurdleNegBinomial",
    "HurdleNegBinomial1",
    "HurdlePoisson",
    "TruncatedNegBinomial",
    "TruncatedNegBinomial1",
    "TruncatedPoisson",
]


#: Rounds of redrawing the zeros of a zero-truncated count before the inverse CDF takes the
#: rest (at mean 0.1, 0.9 of them are zeros again each round: 10 rounds leave a third).
REJECTION_ROUNDS = 10


class _Truncated(_Count):
    """A zero-truncated count family (``y >= 1``), built on a count family's
    ``count_dist`` / ``count_scipy``."""

    # ------------------------------------------------------------------ the positive part
    def positive_logp(self, value: Any, mu: Any, params: dict[str, Any]) -> Any:
        """``log f(y) - log(1 - f(0))`` as a PyTensor expression (finite at every count)."""
        import pymc as pm
        import pytensor.tensor as pt

        count = self.count_dist(mu, params)
        log_f0 = pm.logp(count, pt.zeros_like(value))
        return pm.logp(count, value) - pt.log1mexp(log_f0)

    def positive_mass(self, mu: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        """``1 - f(0)``, the probability of a non-zero count (NumPy)."""
        return np.asarray(-np.expm1(self.count_logp(np.asarray(0), np.asarray(mu), params)))

    # ------------------------------------------------------------------ the family
    def value_logp(self, value: Any, mu: Any, params: dict[str, Any]) -> Any:
        """The family's log-density of ``value`` (PyTensor): ``-inf`` at 0."""
        import pytensor.tensor as pt

        return pt.switch(pt.ge(value, 1), self.positive_logp(value, mu, params), -np.inf)

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows that are not counts, and rows holding 0 (outside a zero-truncated support)."""
        problems = super().response_problems(y, column, trials)
        if problems:
            return problems
        return bad_rows_problem(
            y,
            present_values(y) == 0,
            column,
            f"the {self.name} response must be a count >= 1 (zero-truncated)",
            f"use {self.name.removeprefix('truncated_')} to model counts with zeros, or "
            f"{self.name.replace('truncated_', 'hurdle_')} to model the zeros separately.",
        )

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """A ``pm.CustomDist`` of the family: its log-density :meth:`value_logp`, its draws
        :meth:`simulate` (NumPy)."""
        import pymc as pm

        names = [p.name for p in self.params]

        def logp(value: Any, mu: Any, *values: Any) -> Any:
            return self.value_logp(value, mu, dict(zip(names, values, strict=True)))

        def random(
            mu: np.ndarray, *values: np.ndarray, rng: np.random.Generator, size: Any = None
        ) -> np.ndarray:
            arrays = np.broadcast_arrays(mu, *values)
            if size is not None:
                arrays = tuple(np.broadcast_to(a, size) for a in arrays)
            return self.simulate(arrays[0], dict(zip(names, arrays[1:], strict=True)), rng)

        return pm.CustomDist.dist(
            mu,
            *(params[n] for n in names),
            logp=logp,
            random=random,
            dtype="int64",
            class_name=type(self).__name__,
        )

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``log f(y) - log(1 - f(0))`` (SciPy) at ``y >= 1``, ``-inf`` elsewhere."""
        y = np.asarray(y)
        mu = np.asarray(mu)
        with np.errstate(divide="ignore"):
            logp = self.count_logp(np.maximum(y, 1), mu, params) - np.log(
                self.positive_mass(mu, params)
            )
        return np.asarray(np.where(y >= 1, logp, -np.inf))

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = mu/(1 - f(0))``."""
        return np.asarray(np.asarray(mu) / self.positive_mass(mu, params))

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Exact zero-truncated draws (integers >= 1): counts drawn again where zero
        (rejection), for :data:`REJECTION_ROUNDS` rounds; the few left (means near 0) by the
        count's inverse CDF at ``u ~ U(f(0), 1)`` (exact at every mean, but ~4 µs a value)."""
        shape = np.broadcast_shapes(np.shape(mu), *(np.shape(v) for v in params.values()))
        flat = {
            k: np.broadcast_to(np.asarray(v, dtype=float), shape).ravel() for k, v in params.items()
        }
        m = np.broadcast_to(np.asarray(mu, dtype=float), shape).ravel()
        y = np.asarray(self.count_draws(m, flat, rng), dtype=np.int64)
        todo = np.flatnonzero(y == 0)
        for _ in range(REJECTION_ROUNDS):
            if not todo.size:
                break
            redrawn = self.count_draws(m[todo], {k: v[todo] for k, v in flat.items()}, rng)
            y[todo] = redrawn
            todo = todo[redrawn == 0]
        if todo.size:
            sub = {k: v[todo] for k, v in flat.items()}
            f0 = 1.0 - self.positive_mass(m[todo], sub)
            u = f0 + (1.0 - f0) * rng.random(todo.size)
            dist, args = self.count_scipy(m[todo], sub)
            y[todo] = np.maximum(dist.ppf(np.minimum(u, np.nextafter(1.0, 0.0)), *args), 1)
        return y.reshape(shape)


class _Hurdle(_Truncated):
    """A hurdle count family: ``y = 0`` with probability ``hu``, else a zero-truncated count."""

    def value_logp(self, value: Any, mu: Any, params: dict[str, Any]) -> Any:
        """``log(hu)`` at 0, ``log(1 - hu) + log f(y) - log(1 - f(0))`` at ``y >= 1``."""
        import pytensor.tensor as pt
        from pymc.distributions.dist_math import check_parameters

        hu = params["hu"]
        positive = pt.log1p(-hu) + self.positive_logp(value, mu, params)
        logp = pt.switch(pt.eq(value, 0), pt.log(hu), pt.switch(pt.ge(value, 1), positive, -np.inf))
        return check_parameters(logp, pt.ge(hu, 0.0), pt.le(hu, 1.0), msg="0 <= hu <= 1")

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows whose value is not a non-negative integer (zeros are the hurdle's)."""
        return _Count.response_problems(self, y, column, trials)

    def mean_rows(self, y: np.ndarray) -> np.ndarray:
        """The non-zero rows: a zero says nothing about ``mu`` (it is the hurdle's)."""
        return np.asarray(np.asarray(y) > 0)

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """The count families' reference from the non-zero rows (``mu`` is their count's)."""
        y = np.asarray(y, dtype=float)
        positive = y[np.isfinite(y) & (y > 0)]
        loc, s, text = super().prior_reference(positive if positive.size else y, link)
        return loc, s, f"{text} (of y > 0)"

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``log(hu)`` at 0, ``log(1 - hu)`` plus the zero-truncated SciPy one elsewhere."""
        y = np.asarray(y)
        hu = np.asarray(params["hu"], dtype=float)
        with np.errstate(divide="ignore"):
            positive = np.log1p(-hu) + super().logp_reference(y, mu, params)
            return np.asarray(np.where(y == 0, np.log(hu), positive))

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = (1 - hu)·mu/(1 - f(0))``."""
        return (1.0 - np.asarray(params["hu"], dtype=float)) * super().mean_numpy(mu, params)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw from the hurdle: 0 with probability ``hu``, else a zero-truncated count."""
        positive = super().simulate(mu, params, rng)
        return with_zeros(positive, np.asarray(params["hu"], dtype=float), rng)


# --------------------------------------------------------------------------- zero-truncated
@register_family
class TruncatedPoisson(_Truncated, _Poisson):
    """``y >= 1``: a Poisson(``mu``) count truncated at 0."""

    name = "truncated_poisson"


@register_family
class TruncatedNegBinomial(_Truncated, _NegBinomial):
    """``y >= 1``: a negative binomial (``mu``, shape ``alpha``; NB2) truncated at 0."""

    name = "truncated_negbinomial"
    params: ClassVar[tuple[FamilyParam, ...]] = NegBinomial.params


@register_family
class TruncatedNegBinomial1(_Truncated, _NegBinomial1):
    """``y >= 1``: a ``negbinomial1`` (``var = mu·(1 + phi)``; NB1) count truncated at 0."""

    name = "truncated_negbinomial1"
    params: ClassVar[tuple[FamilyParam, ...]] = NegBinomial1.params


# --------------------------------------------------------------------------- hurdle
@register_family
class HurdlePoisson(_Hurdle, _Poisson):
    """``y = 0`` with probability ``hu``, else a zero-truncated Poisson(``mu``) count."""

    name = "hurdle_poisson"
    params: ClassVar[tuple[FamilyParam, ...]] = (HURDLE,)


@register_family
class HurdleNegBinomial(_Hurdle, _NegBinomial):
    """``y = 0`` with probability ``hu``, else a zero-truncated negative binomial (NB2)."""

    name = "hurdle_negbinomial"
    params: ClassVar[tuple[FamilyParam, ...]] = (*NegBinomial.params, HURDLE)


@register_family
class HurdleNegBinomial1(_Hurdle, _NegBinomial1):
    """``y = 0`` with probability ``hu``, else a zero-truncated ``negbinomial1`` (NB1)."""

    name = "hurdle_negbinomial1"
    params: ClassVar[tuple[FamilyParam, ...]] = (*NegBinomial1.params, HURDLE)
