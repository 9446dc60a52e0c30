"""Self-starting curve models: library mean functions of one input (as nlme's ``SS*`` models).

A curve model is a closed-form mean ``f(x; theta)`` of one input column (the spec's
``time``), with no doses: ``model: biexp`` in a nonlinear spec. Each model states

* its parameters, on the scale nlme uses (``biexp``: ``A1``, ``lrc1``, ``A2``, ``lrc2``, the
  ``lrc`` being log rate constants),
* which parameters' population values are ordered (:attr:`CurveModel.order`, largest
  first): the model is unchanged when two exponential phases swap, so without an order the
  chains of a sampler may each settle on a different labelling (label switching),
* a self-start rule (:meth:`CurveModel.self_start`): population values from the pooled data,
  e.g. curve peeling for ``biexp``, where the sampler's chains start.

This module imports no PyMC or pytensor: :meth:`CurveModel.mean` takes a namespace ``xp``
(``numpy`` or ``pytensor.tensor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.registry import Registry

__all__ = ["CURVE_MODELS", "Biexp", "CurveModel", "get_curve_model", "register_curve_model"]


class CurveModel:
    """A closed-form mean function of one input, with a self-start rule.

    Attributes
    ----------
    name : str
        Registry key (``model:`` in the spec).
    params : tuple of str
        Parameter names, on the model's own scale.
    description : str
        One line for listings.
    order : tuple of str
        Parameters whose population values are kept in this order, largest first (empty:
        none); the spec's ``order:`` replaces it.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    order: ClassVar[tuple[str, ...]] = ()

    def mean(self, x: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        """The curve at inputs ``x`` (``xp``: ``numpy`` or ``pytensor.tensor``)."""
        raise NotImplementedError

    def self_start(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Population values of the parameters from the pooled data (empty if none found)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<curve model {self.name!r} ({', '.join(self.params)})>"


#: The curve models by name (``model:`` in a nonlinear spec).
CURVE_MODELS: Registry[CurveModel] = Registry("curve model", "model")


def register_curve_model(cls: type[CurveModel]) -> type[CurveModel]:
    """Class decorator adding a curve model to :data:`CURVE_MODELS` under ``cls.name``."""
    unknown = [p for p in cls.order if p not in cls.params]
    if unknown:
        raise SpecError(
            f"curve model {cls.name!r} orders unknown parameters {unknown}.",
            where="curve model",
            hint=f"order some of {list(cls.params)}.",
        )
    CURVE_MODELS.add(cls.name, cls())
    return cls


def get_curve_model(name: str) -> CurveModel:
    """The registered curve model ``name``; ``SpecError`` naming close matches and the known
    ones otherwise."""
    return CURVE_MODELS.get(name)


def _loglinear(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """``(log amplitude, rate)`` of ``y = A exp(-k x)`` by least squares on ``log y`` (y > 0)."""
    keep = y > 0
    if keep.sum() < 2 or np.ptp(x[keep]) == 0:
        return None
    slope, intercept = np.polyfit(x[keep], np.log(y[keep]), 1)
    return float(intercept), float(-slope)


@register_curve_model
class Biexp(CurveModel):
    """Bi-exponential decay, as nlme's ``SSbiexp``:
    ``A1 exp(-exp(lrc1) x) + A2 exp(-exp(lrc2) x)``.

    The rates are ordered (``lrc1 > lrc2`` for the population values): the first phase is
    the fast one, so the two phases cannot swap labels between chains.
    """

    name = "biexp"
    params = ("A1", "lrc1", "A2", "lrc2")
    description = "bi-exponential decay A1 exp(-exp(lrc1) t) + A2 exp(-exp(lrc2) t) (SSbiexp)"
    order = ("lrc1", "lrc2")

    def mean(self, x: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        fast = theta["A1"] * xp.exp(-xp.exp(theta["lrc1"]) * x)
        return fast + theta["A2"] * xp.exp(-xp.exp(theta["lrc2"]) * x)

    def self_start(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Curve peeling (as ``SSbiexp``), then least squares on the pooled data.

        The slow phase is the log-linear fit to the later half of the inputs; the fast one
        the log-linear fit to what it leaves in the earlier half. Nonlinear least squares
        (with ``lrc1 = lrc2 + exp(d)``, so the order holds) refines the four values.
        """
        from scipy.optimize import least_squares

        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if len(np.unique(x)) < 4:
            return {}
        late = x >= np.median(x)
        slow = _loglinear(x[late], y[late])
        if slow is None or slow[1] <= 0:
            slow = (float(np.log(max(np.mean(y), 1e-8))), 1.0 / max(float(np.ptp(x)), 1e-8))
        log_a2, k2 = slow
        rest = y - np.exp(log_a2 - k2 * x)
        fast = _loglinear(x[~late], rest[~late])
        if fast is None or fast[1] <= k2:
            fast = (log_a2, 4.0 * k2)
        log_a1, k1 = fast

        def residuals(p: np.ndarray) -> np.ndarray:
            theta = {"A1": p[0], "lrc1": p[3] + np.exp(p[1]), "A2": p[2], "lrc2": p[3]}
            return np.asarray(self.mean(x, theta, np), dtype=float) - y

        start = np.array([np.exp(log_a1), np.log(np.log(k1) - np.log(k2)), np.exp(log_a2)])
        p0 = np.append(start, np.log(k2))
        try:
            p = least_squares(residuals, p0, method="lm", max_nfev=2000).x
        except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - fall back to peeling
            p = p0
        if not np.all(np.isfinite(p)):  # pragma: no cover
            p = p0
        return {
            "A1": float(p[0]),
            "lrc1": float(p[3] + np.exp(p[1])),
            "A2": float(p[2]),
            "lrc2": float(p[3]),
        }
