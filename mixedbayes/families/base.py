"""Family and link base classes and their registries (one registry each, of objects).

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

from mixedbayes.errors import Problem, SpecError

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.priors.distributions import PriorDist

__all__ = [
    "FAMILIES",
    "LINKS",
    "Family",
    "FamilyParam",
    "Link",
    "families_with_formula",
    "get_family",
    "get_link",
    "log_scale_intercept",
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


# --------------------------------------------------------------------------- families
@dataclass(frozen=True)
class FamilyParam:
    """A family's own parameter (``sigma``, ``alpha``, ``phi``, ``nu``, ``zi``).

    A parameter may take a **distributional formula** of its own (brms's ``zi ~ x``,
    glmmTMB's ``ziformula``): a linear predictor, with fixed and group effects, on the scale
    of its ``link``. The family declares which of its parameters do by giving them a link;
    the spec's key of the same name (``zi: "~ trt + (1 | Subject)"``) sets the formula.

    Attributes
    ----------
    name : str
        The parameter's name, also its prior class (and the ``nlpar`` of its formula's
        priors, the part of its formula's names: ``b_zi``, ``sd_Subject_zi``).
    default_prior : callable
        Maps the response (a NumPy array) to ``(prior, provenance)``: the prior of the
        parameter when it has no formula, or, for a ``predictor`` parameter, of its
        formula's intercept.
    positive : bool
        Whether the parameter is constrained positive (half/truncated priors).
    predictor : bool
        Whether the parameter always has its own linear predictor (the zero-inflation
        probability ``zi``: ``~ 1`` when the spec gives no formula).
    link : str, optional
        The link of the parameter's formula (``"logit"`` for a probability, ``"log"`` for
        a scale or shape); None when the parameter takes no formula.
    intercept_prior : callable, optional
        ``y -> (prior, provenance)`` of the formula's intercept on the link scale, for a
        parameter that is not a ``predictor``; default Student-t(3, 0, 2.5) (brms's).
    """

    name: str
    default_prior: Callable[[np.ndarray], tuple[PriorDist, str]]
    positive: bool = True
    predictor: bool = False
    link: str | None = None
    intercept_prior: Callable[[np.ndarray], tuple[PriorDist, str]] | None = None

    def __post_init__(self) -> None:
        if self.predictor and self.link is None:
            raise TypeError(f"family parameter {self.name!r}: a predictor needs a link")

    @property
    def takes_formula(self) -> bool:
        """Whether the parameter may have a distributional formula (it has a link)."""
        return self.link is not None

    def formula_intercept_prior(self, y: np.ndarray) -> tuple[PriorDist, str]:
        """The default prior of the formula's intercept, on the link scale, and its text."""
        if self.predictor:
            return self.default_prior(y)
        if self.intercept_prior is not None:
            return self.intercept_prior(y)
        from mixedbayes.priors.distributions import PriorDist

        return (
            PriorDist("student_t", (3.0, 0.0, 2.5)),
            f"Student-t(3, 0, 2.5) on {self.link}({self.name}), as brms's default",
        )


class Family:
    """A response distribution with its links and parameters.

    ``mu`` below is always the inverse link of the linear predictor: the mean for most
    families, the success probability for bernoulli/binomial, the mean of the count part for
    zero-inflated families. ``params`` maps the family's parameter names to values (arrays
    broadcastable with ``mu``); ``trials`` is the number of trials (binomial only).
    """

    name: ClassVar[str]
    links: ClassVar[tuple[str, ...]]
    default_link: ClassVar[str]
    params: ClassVar[tuple[FamilyParam, ...]] = ()
    #: Integer-valued response (counts): rootograms, integer checks.
    discrete: ClassVar[bool] = False
    #: Needs a number of trials per row (``cbind(k, n - k)`` or ``k | trials(n)``).
    needs_trials: ClassVar[bool] = False

    def param(self, name: str) -> FamilyParam | None:
        """The family's parameter called ``name`` (None when it has none)."""
        return next((p for p in self.params if p.name == name), None)

    def formula_params(self) -> tuple[FamilyParam, ...]:
        """The parameters that may have a distributional formula (:attr:`FamilyParam.link`)."""
        return tuple(p for p in self.params if p.takes_formula)

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """Location (on the link scale) and scale ``s`` of the response, for default priors.

        Default (non-gaussian families): ``link(mean(y))`` when finite (else 0) and ``s = 1``,
        the scale of a linear predictor on a log or logit scale.
        """
        with np.errstate(all="ignore"):
            loc = float(link.link_numpy(np.asarray([np.mean(y)]))[0]) if y.size else 0.0
        if not np.isfinite(loc):
            loc = 0.0
        return round_sig(loc), 1.0, f"link(mean(y))={loc:.4g}, s=1 on the link scale"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Problems with the (non-missing) response values for this family's support."""
        return []

    def mean_rows(self, y: np.ndarray) -> np.ndarray:
        """The rows whose value informs ``mu`` (a boolean mask): every row, but the exact
        zeros of a zero-inflated continuous family (structural zeros say nothing about the
        mean of the non-zero part). The ``auto`` parametrization rule's per-level
        least-squares fits use only these."""
        return np.ones(np.shape(y), dtype=bool)

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """The response distribution at ``mu`` as an unnamed PyMC ``.dist(...)`` variable.

        The one definition of the family's likelihood: :meth:`likelihood` registers it as
        the observed variable, :meth:`logp` evaluates it (joint likelihoods, summing out
        discrete unknowns), and ``pm.draw`` simulates from it.
        """
        raise NotImplementedError

    def logp(self, y: Any, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """Pointwise log-density of ``y`` as a PyTensor expression (from :meth:`dist`)."""
        import pymc as pm

        return pm.logp(self.dist(mu, params, trials), y)

    def likelihood(
        self,
        model: Any,
        name: str,
        mu: Any,
        params: dict[str, Any],
        observed: Any,
        dims: str,
        trials: Any = None,
    ) -> Any:
        """Add the observed variable ``name`` (from :meth:`dist`) to ``model``; return it."""
        dist = self.dist(mu, params, trials)
        return model.register_rv(dist, name, observed=observed, dims=(dims,))

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Pointwise log-density with SciPy (the registry-driven tests compare PyMC to it)."""
        raise NotImplementedError

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """The expected response E[y] (``mu`` for most families)."""
        return mu

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw responses (for predictions of kind ``"response"`` and simulation)."""
        raise NotImplementedError


FAMILIES: dict[str, Family] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Class decorator adding a family to the registry under ``cls.name``."""
    FAMILIES[cls.name] = cls()
    return cls


def families_with_formula(param: str) -> list[str]:
    """The registered families whose parameter ``param`` takes a distributional formula."""
    return sorted(name for name, f in FAMILIES.items() if (p := f.param(param)) and p.takes_formula)


#: Family names of lme4/glmmTMB/brms/bambi/PyMC that differ from ours, for the error's hint.
PEER_FAMILY_NAMES: dict[str, str] = {
    "normal": "gaussian",
    "t": "student",
    "studentt": "student",
    "student_t": "student",
    "nbinom2": "negbinomial",
    "nbinom1": "negbinomial1",
    "negativebinomial": "negbinomial",
    "negative_binomial": "negbinomial",
    "truncated_nbinom2": "truncated_negbinomial",
    "truncated_nbinom1": "truncated_negbinomial1",
    "zero_inflated_negativebinomial": "zero_inflated_negbinomial",
    "hurdle_negativebinomial": "hurdle_negbinomial",
    "zeroinflatedpoisson": "zero_inflated_poisson",
    "zeroinflatednegativebinomial": "zero_inflated_negbinomial",
    "hurdlepoisson": "hurdle_poisson",
    "hurdlenegativebinomial": "hurdle_negbinomial",
    "beta_family": "beta",
    "bernoulli_logit": "bernoulli",
}


def unknown_family_message(name: str) -> str:
    """Why ``name`` is not a family, with our name for a peer's (glmmTMB's ``nbinom1`` is
    ``negbinomial1``) or a close match, and the known families."""
    import difflib

    key = name.lower().replace("-", "_").replace(" ", "_")
    said = f"unknown family {name!r}"
    peer = PEER_FAMILY_NAMES.get(key) or PEER_FAMILY_NAMES.get(key.replace("_", ""))
    close = difflib.get_close_matches(key, list(FAMILIES), n=1, cutoff=0.75)
    if peer is not None:
        said += f" (lme4/glmmTMB/brms/bambi's name); here it is family: {peer}"
    elif key in FAMILIES or close:
        said += f"; did you mean family: {key if key in FAMILIES else close[0]}"
    return f"{said}. Known families: {sorted(FAMILIES)}"


def get_family(name: str) -> Family:
    """The registered family called ``name`` (``SpecError`` listing the known ones otherwise)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(unknown_family_message(name), where="family") from None


def scale_prior(y: np.ndarray) -> tuple[PriorDist, str]:
    from mixedbayes.priors.distributions import PriorDist

    s = sd_scale(y)
    return (
        PriorDist("student_t", (3.0, 0.0, round_sig(s))),
        f"half-Student-t(3, 0, sd(y)); sd(y)={s:.4g}",
    )


def log_scale_intercept(
    y: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] | None = None, what: str = "y"
) -> tuple[PriorDist, str]:
    """Student-t(3, log(sd(y)), 2.5): the default intercept of a residual SD's formula
    (``sigma: "~ x"``) on the log scale, brms's Student-t(3, 0, 2.5) centred at the
    response's SD (``transform``: of ``y`` first, e.g. the log of a lognormal response)."""
    from mixedbayes.priors.distributions import PriorDist

    s = sd_scale(np.asarray(y, dtype=float) if transform is None else transform(y))
    loc = round_sig(float(np.log(s)))
    return (
        PriorDist("student_t", (3.0, loc, 2.5)),
        f"Student-t(3, log(sd({what})), 2.5) on log(sigma); sd({what})={s:.4g}",
    )


def round_sig(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (prior scales print and serialise cleanly)."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def response_scale(family: Family, y: np.ndarray, link: Link) -> tuple[float, float, str]:
    """Location and scale of the response on the linear-predictor scale, for default priors."""
    return family.prior_reference(y, link)


def sd_scale(y: np.ndarray) -> float:
    """sd(y), or 1 when it is 0 or undefined."""
    sd = float(np.std(y, ddof=1)) if y.size > 1 else 0.0
    return sd if np.isfinite(sd) and sd > 0 else 1.0
