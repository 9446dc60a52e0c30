"""The link functions: one class each, registered by name."""

from __future__ import annotations

from typing import Any

import numpy as np

from mixedbayes.families.base import Link, register_link

__all__ = ["Cloglog", "Identity", "Inverse", "Log", "Logit", "Probit", "Sqrt"]


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
