"""Families and links: one registry each, of objects.

A family knows its allowed links, its default link, its own parameters (with the prior class
and default prior of each), how to check a response for support, and how to add its
likelihood to a PyMC model. A link knows its inverse as a PyTensor expression and itself in
NumPy. New families and links are one class each, registered with a decorator, and picked up
by the registry-driven tests.

This module imports no PyMC at import time: specs validate family names without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mixedbayes.errors import Problem, SpecError, format_rows

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.priors.distributions import PriorDist

__all__ = [
    "FAMILIES",
    "LINKS",
    "Family",
    "FamilyParam",
    "Link",
    "get_family",
    "get_link",
    "register_family",
    "register_link",
]


# --------------------------------------------------------------------------- links
class Link:
    """A link function g with g(mu) = eta."""

    name: ClassVar[str]

    def inverse(self, eta: Any) -> Any:
        """mu = g^-1(eta) as a PyTensor expression."""
        raise NotImplementedError

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        """mu = g^-1(eta) in NumPy."""
        raise NotImplementedError

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        """eta = g(mu) in NumPy."""
        raise NotImplementedError


LINKS: dict[str, Link] = {}


def register_link(cls: type[Link]) -> type[Link]:
    """Class decorator adding a link to the registry under ``cls.name``."""
    LINKS[cls.name] = cls()
    return cls


def get_link(name: str) -> Link:
    """The registered link called ``name`` (``SpecError`` listing the known ones otherwise)."""
    try:
        return LINKS[name]
    except KeyError:
        raise SpecError(
            f"unknown link {name!r}.", where="family.link", hint=f"use one of {sorted(LINKS)}."
        ) from None


@register_link
class Identity(Link):
    name = "identity"

    def inverse(self, eta: Any) -> Any:
        return eta

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        return eta

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        return mu


@register_link
class Log(Link):
    name = "log"

    def inverse(self, eta: Any) -> Any:
        import pytensor.tensor as pt

        return pt.exp(eta)

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        return np.log(mu)


@register_link
class Logit(Link):
    name = "logit"

    def inverse(self, eta: Any) -> Any:
        import pytensor.tensor as pt

        return pt.sigmoid(eta)

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return np.asarray(expit(eta))

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        from scipy.special import logit

        return np.asarray(logit(mu))


@register_link
class Probit(Link):
    name = "probit"

    def inverse(self, eta: Any) -> Any:
        import pytensor.tensor as pt

        return 0.5 * (1.0 + pt.erf(eta / np.sqrt(2.0)))

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return np.asarray(norm.cdf(eta))

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return np.asarray(norm.ppf(mu))


@register_link
class Cloglog(Link):
    name = "cloglog"

    def inverse(self, eta: Any) -> Any:
        import pytensor.tensor as pt

        return 1.0 - pt.exp(-pt.exp(eta))

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(-np.exp(eta))

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        return np.log(-np.log1p(-mu))


@register_link
class Inverse(Link):
    name = "inverse"

    def inverse(self, eta: Any) -> Any:
        return 1.0 / eta

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        return 1.0 / eta

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / mu


@register_link
class Sqrt(Link):
    name = "sqrt"

    def inverse(self, eta: Any) -> Any:
        return eta**2

    def inverse_numpy(self, eta: np.ndarray) -> np.ndarray:
        return eta**2

    def link_numpy(self, mu: np.ndarray) -> np.ndarray:
        return np.sqrt(mu)


# --------------------------------------------------------------------------- families
@dataclass(frozen=True)
class FamilyParam:
    """A family's own parameter (``sigma`` for gaussian), its prior class and default prior.

    ``default_prior`` maps the response (a NumPy array) to ``(prior, provenance)``.
    """

    name: str
    default_prior: Callable[[np.ndarray], tuple[PriorDist, str]]
    positive: bool = True


class Family:
    """A response distribution with its links and parameters."""

    name: ClassVar[str]
    links: ClassVar[tuple[str, ...]]
    default_link: ClassVar[str]
    params: ClassVar[tuple[FamilyParam, ...]] = ()

    def response_problems(self, y: pd.Series, column: str) -> list[Problem]:
        """Problems with the (non-missing) response values for this family's support."""
        return []

    def likelihood(
        self, name: str, mu: Any, params: dict[str, Any], observed: Any, dims: str
    ) -> Any:
        """Add the observed variable to the model in context and return it."""
        raise NotImplementedError

    def mean_numpy(self, mu: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        """The expected response given the inverse-link mean (``mu`` for most families)."""
        return mu

    def simulate(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """Draw responses (for predictions of kind ``"response"`` and simulation)."""
        raise NotImplementedError


FAMILIES: dict[str, Family] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator adding a family to the registry under ``cls.name``."""
    FAMILIES[cls.name] = cls()
    return cls


def get_family(name: str) -> Family:
    """The registered family called ``name`` (``SpecError`` listing the known ones otherwise)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(
            f"unknown family {name!r}.", where="family", hint=f"use one of {sorted(FAMILIES)}."
        ) from None


def _sd_scale(y: np.ndarray) -> float:
    sd = float(np.std(y, ddof=1)) if y.size > 1 else 0.0
    return sd if np.isfinite(sd) and sd > 0 else 1.0


def _scale_prior(y: np.ndarray) -> tuple[PriorDist, str]:
    from mixedbayes.priors.distributions import PriorDist

    s = _sd_scale(y)
    return (
        PriorDist("student_t", (3.0, 0.0, round_sig(s))),
        f"half-Student-t(3, 0, sd(y)); sd(y)={s:.4g}",
    )


def round_sig(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (prior scales print and serialise cleanly)."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


@register_family
class Gaussian(Family):
    """Normal response: ``y ~ Normal(mu, sigma)``."""

    name = "gaussian"
    links = ("identity", "log", "inverse")
    default_link = "identity"
    params = (FamilyParam("sigma", _scale_prior),)

    def response_problems(self, y: pd.Series, column: str) -> list[Problem]:
        bad = y.index[~np.isfinite(y.to_numpy(dtype=float))]
        if len(bad):
            return [
                Problem(
                    f"the response holds non-finite values (inf) in rows {format_rows(list(bad))}.",
                    f"column '{column}'",
                    "replace them with finite numbers, or with NaN to treat them as missing.",
                )
            ]
        return []

    def likelihood(
        self, name: str, mu: Any, params: dict[str, Any], observed: Any, dims: str
    ) -> Any:
        import pymc as pm

        return pm.Normal(name, mu=mu, sigma=params["sigma"], observed=observed, dims=dims)

    def simulate(
        self, mu: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        return rng.normal(mu, params["sigma"])


def response_scale(family: Family, y: np.ndarray) -> tuple[float, float, str]:
    """Location and scale of the response on the linear-predictor scale, for default priors.

    For the identity link: ``median(y)`` and ``sd(y)``. Families may override
    ``Family.prior_reference`` to give their own.
    """
    ref = getattr(family, "prior_reference", None)
    if ref is not None:
        return ref(y)  # type: ignore[no-any-return]
    loc = float(np.median(y)) if y.size else 0.0
    s = _sd_scale(y)
    return round_sig(loc), round_sig(s), f"median(y)={loc:.4g}, sd(y)={s:.4g}"
