"""Closed-form structural pharmacokinetic models (linear kinetics), one class each.

Every model gives the concentration after one unit dose, :meth:`PKModel.unit_response`, as
an expression in a namespace ``xp`` providing ``exp``, ``where``, ``sqrt``, ``maximum`` and
``minimum``: ``numpy`` for checks and simulation, ``pytensor.tensor`` inside a PyMC model.
Kinetics are linear, so a dosing history is the superposition of unit responses scaled by
the amounts (:func:`concentration`, on the layout of
:func:`mixedbayes.pk.dosing.dose_matrices`).

The formulas hold no Python ``if`` on values. Every division that an unused ``where`` branch
could make by zero is guarded, so neither branch produces NaN or inf: in pytensor a NaN in
the unused branch of a ``where`` still poisons the gradient. Two numerically delicate
factors have their own helpers: ``(1 - exp(-x)) / x`` (infusions; series near 0) and
``(exp(-a t) - exp(-b t)) / (b - a)`` (first-order absorption; exact when ``a == b``, e.g.
``KA == CL / V``, where the textbook formula is 0/0).

Each model also states its compartment ODE (:meth:`PKModel.reference_system`), which the
registry-driven tests integrate numerically and compare with the closed form.

This module imports no PyMC or pytensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from mixedbayes.errors import DataError, SpecError

__all__ = [
    "PK_MODELS",
    "CompartmentSystem",
    "IV1Cmt",
    "IV2Cmt",
    "Oral1Cmt",
    "Oral1CmtKe",
    "Oral1CmtLag",
    "Oral2Cmt",
    "PKModel",
    "concentration",
    "get_pk_model",
    "register_pk_model",
]

#: Below this, ``(1 - exp(-x)) / x`` is evaluated by its Taylor series.
_PHI_SERIES = 1e-3
#: Below this ``|b - a| t``, ``(exp(-a t) - exp(-b t)) / (b - a)`` uses its series.
_EXPDIFF_SERIES = 2e-3


class DoseLayout(Protocol):
    """What :func:`concentration` needs of a dose layout (e.g. ``DoseMatrices``)."""

    @property
    def dt(self) -> Any: ...

    @property
    def amount(self) -> Any: ...

    @property
    def duration(self) -> Any: ...


@dataclass(frozen=True)
class CompartmentSystem:
    """A linear compartment ODE, the reference a closed form is checked against.

    The state ``x`` (amounts per compartment) follows ``dx/dt = matrix @ x + u(t)``: a bolus
    or oral dose adds its amount to ``x[dose_state]`` at ``time + lag``; an infusion adds its
    rate to ``u[dose_state]`` while it runs. The concentration is ``output @ x``.

    Attributes
    ----------
    matrix : numpy.ndarray
        Rate matrix, shape ``(n_states, n_states)``.
    dose_state : int
        The state doses enter.
    output : numpy.ndarray
        Concentration weights, shape ``(n_states,)``.
    lag : float
        Absorption lag time (0 without one).
    """

    matrix: np.ndarray
    dose_state: int
    output: np.ndarray
    lag: float = 0.0


class PKModel:
    """A structural PK model: the concentration after one unit dose, in closed form.

    Attributes
    ----------
    name : str
        Registry key.
    params : tuple of str
        Natural-scale (positive) parameter names, e.g. ``("CL", "V", "KA")``.
    description : str
        One line for listings.
    route : {"iv", "oral"}
        ``"iv"``: doses enter the central compartment, as a bolus (duration 0) or a
        zero-order infusion (duration > 0). ``"oral"``: doses enter a depot absorbed by first
        order; infusion doses are refused by :func:`concentration`.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    route: ClassVar[Literal["iv", "oral"]]

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        """Concentration at ``dt`` after the start of a dose of amount 1.

        Parameters
        ----------
        dt : array_like or tensor
            Time since the dose started (>= 0), e.g. shape ``(n, D)``.
        duration : array_like or tensor
            Infusion length (> 0) or 0 for a bolus / oral dose; same shape as ``dt``.
        theta : mapping of str to array_like or tensor
            Parameter values broadcastable against ``dt`` (e.g. shape ``(n, 1)``).
        xp : module
            ``numpy`` or ``pytensor.tensor``.

        Returns
        -------
        array_like or tensor
            Concentration, the broadcast shape of ``dt`` and ``theta``.
        """
        raise NotImplementedError

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        """The compartment ODE this model solves, at scalar parameter values.

        Parameters
        ----------
        theta : mapping of str to float
            One value per parameter.

        Returns
        -------
        CompartmentSystem
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<PK model {self.name!r} ({', '.join(self.params)}; {self.route})>"


PK_MODELS: dict[str, PKModel] = {}


def register_pk_model(cls: type[PKModel]) -> type[PKModel]:
    """Class decorator adding a PK model to :data:`PK_MODELS` under ``cls.name``.

    Parameters
    ----------
    cls : type
        A :class:`PKModel` subclass with ``name``, ``params``, ``description`` and
        ``route``.

    Returns
    -------
    type
        ``cls``, unchanged.
    """
    if cls.route not in ("iv", "oral"):
        raise SpecError(
            f"PK model {cls.name!r} has route {cls.route!r}.",
            where="pk model",
            hint="use 'iv' or 'oral'.",
        )
    PK_MODELS[cls.name] = cls()
    return cls


def get_pk_model(name: str) -> PKModel:
    """The registered PK model called ``name``.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"oral_1cmt"``.

    Returns
    -------
    PKModel

    Raises
    ------
    SpecError
        Listing the registered names, if ``name`` is unknown.
    """
    try:
        return PK_MODELS[name]
    except KeyError:
        raise SpecError(
            f"unknown PK model {name!r}.",
            where="pk.model",
            hint=f"use one of {sorted(PK_MODELS)}.",
        ) from None


# --------------------------------------------------------------------------- building blocks
def _phi(x: Any, xp: Any) -> Any:
    """``(1 - exp(-x)) / x`` for ``x >= 0``, 1 at 0 (Taylor series below ``_PHI_SERIES``).

    Both branches see guarded inputs (the series only small ``x``, the quotient only large),
    so neither overflows or divides by zero, whatever the parameter values.
    """
    small = x < _PHI_SERIES
    safe = xp.where(small, 1.0, x)
    tiny = xp.where(small, x, 0.0)
    series = 1.0 - tiny / 2.0 + tiny * tiny / 6.0 - tiny * tiny * tiny / 24.0
    return xp.where(small, series, (1.0 - xp.exp(-safe)) / safe)


def _expdiff(a: Any, b: Any, t: Any, xp: Any) -> Any:
    """``(exp(-a t) - exp(-b t)) / (b - a)`` for rates ``a, b > 0`` and ``t >= 0``.

    Symmetric in ``a`` and ``b``, equal to ``t exp(-a t)`` at ``a == b``. Far from equality
    it is ``t exp(-min(a, b) t) (1 - exp(-y)) / y`` with ``y = |b - a| t`` (no overflow, no
    cancellation in the difference); near it, ``t exp(-(a + b) t / 2) sinh(x) / x`` with
    ``x = (b - a) t / 2`` by its series, which is smooth in ``a`` and ``b`` (exact gradients
    at ``a == b``).
    """
    d = b - a
    y = xp.maximum(d, -d) * t
    small = y < _EXPDIFF_SERIES
    half = xp.where(small, d * t / 2.0, 0.0)
    h2 = half * half
    near = t * xp.exp(-(a + b) * t / 2.0) * (1.0 + h2 / 6.0 + h2 * h2 / 120.0)
    safe = xp.where(small, 1.0, y)
    far = t * xp.exp(-xp.minimum(a, b) * t) * (1.0 - xp.exp(-safe)) / safe
    return xp.where(small, near, far)


def _iv_response(terms: list[tuple[Any, Any]], dt: Any, duration: Any, xp: Any) -> Any:
    """Unit response of ``h(t) = sum c exp(-lam t)`` to a bolus or an infusion.

    Bolus (``duration == 0``): ``h(t)``. Infusion of length ``T`` at rate ``1 / T``:
    ``sum c / (lam T) (1 - exp(-lam min(t, T))) exp(-lam max(t - T, 0))``, written as
    ``sum c (m / T) phi(lam m) exp(-lam max(t - T, 0))`` with ``m = min(t, T)``.
    """
    infusion = duration > 0
    length = xp.where(infusion, duration, 1.0)
    running = xp.minimum(dt, length)
    after = xp.maximum(dt - length, 0.0)
    bolus: Any = 0.0
    spread: Any = 0.0
    for coef, lam in terms:
        bolus = bolus + coef * xp.exp(-lam * dt)
        spread = spread + coef * _phi(lam * running, xp) * xp.exp(-lam * after)
    return xp.where(infusion, spread * running / length, bolus)


def _oral_response(terms: list[tuple[Any, Any]], ka: Any, t: Any, xp: Any) -> Any:
    """Unit response of ``h(t) = sum c exp(-lam t)`` to first-order absorption at ``ka``.

    The convolution ``ka exp(-ka t) * h(t)`` = ``ka sum c (exp(-lam t) - exp(-ka t)) /
    (ka - lam)``.
    """
    total: Any = 0.0
    for coef, lam in terms:
        total = total + coef * _expdiff(lam, ka, t, xp)
    return ka * total


def _two_cmt_terms(theta: Mapping[str, Any], xp: Any) -> list[tuple[Any, Any]]:
    """``[(A / V1, alpha), (B / V1, beta)]``: the bi-exponential unit bolus response.

    With ``k10 = CL/V1, k12 = Q/V1, k21 = Q/V2``, ``alpha, beta`` are the roots of
    ``s^2 - (k10 + k12 + k21) s + k10 k21``; their difference
    ``sqrt((k10 - k21)^2 + k12 (k12 + 2 (k10 + k21)))`` is a square root of a sum of
    positive terms (> 0, no cancellation), ``beta = k10 k21 / alpha``,
    ``A = (alpha - k21) / (alpha - beta)`` and ``B = (k21 - beta) / (alpha - beta)``.
    """
    cl, v1, q, v2 = theta["CL"], theta["V1"], theta["Q"], theta["V2"]
    k10 = cl / v1
    k12 = q / v1
    k21 = q / v2
    diff = xp.sqrt((k10 - k21) * (k10 - k21) + k12 * (k12 + 2.0 * (k10 + k21)))
    alpha = (k10 + k12 + k21 + diff) / 2.0
    beta = k10 * k21 / alpha
    return [((alpha - k21) / (diff * v1), alpha), ((k21 - beta) / (diff * v1), beta)]


def _two_cmt_matrix(theta: Mapping[str, float]) -> np.ndarray:
    k10 = theta["CL"] / theta["V1"]
    k12 = theta["Q"] / theta["V1"]
    k21 = theta["Q"] / theta["V2"]
    return np.array([[-(k10 + k12), k21], [k12, -k21]])


def _with_depot(matrix: np.ndarray, ka: float) -> np.ndarray:
    """Prepend a depot state absorbed into state 0 of ``matrix`` at rate ``ka``."""
    n = matrix.shape[0]
    out = np.zeros((n + 1, n + 1))
    out[1:, 1:] = matrix
    out[0, 0] = -ka
    out[1, 0] = ka
    return out


# --------------------------------------------------------------------------- models
@register_pk_model
class IV1Cmt(PKModel):
    """One compartment, IV bolus or infusion, linear elimination.

    ``k = CL / V``. Bolus: ``C = D / V exp(-k t)``. Infusion of length ``T`` (rate
    ``D / T``): ``C = (D / T) / CL (1 - exp(-k min(t, T))) exp(-k max(t - T, 0))``.
    """

    name = "iv_1cmt"
    params = ("CL", "V")
    description = "one compartment, IV bolus or zero-order infusion"
    route = "iv"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        v = theta["V"]
        return _iv_response([(1.0 / v, theta["CL"] / v)], dt, duration, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        k = theta["CL"] / theta["V"]
        return CompartmentSystem(np.array([[-k]]), 0, np.array([1.0 / theta["V"]]))


@register_pk_model
class Oral1Cmt(PKModel):
    """One compartment, first-order absorption, linear elimination.

    ``C = D KA / (V (KA - k)) (exp(-k t) - exp(-KA t))``, ``k = CL / V`` (exact at
    ``KA == k``, where it is ``D KA t exp(-k t) / V``).
    """

    name = "oral_1cmt"
    params = ("CL", "V", "KA")
    description = "one compartment, first-order absorption"
    route = "oral"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        v = theta["V"]
        return _oral_response([(1.0 / v, theta["CL"] / v)], theta["KA"], dt, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        k = theta["CL"] / theta["V"]
        return CompartmentSystem(
            _with_depot(np.array([[-k]]), theta["KA"]), 0, np.array([0.0, 1.0 / theta["V"]])
        )


@register_pk_model
class Oral1CmtLag(PKModel):
    """One compartment, first-order absorption after a lag time.

    As ``oral_1cmt`` at ``t - TLAG``, and 0 before ``TLAG``.
    """

    name = "oral_1cmt_lag"
    params = ("CL", "V", "KA", "TLAG")
    description = "one compartment, first-order absorption after a lag time"
    route = "oral"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        v = theta["V"]
        t = xp.maximum(dt - theta["TLAG"], 0.0)
        return _oral_response([(1.0 / v, theta["CL"] / v)], theta["KA"], t, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        k = theta["CL"] / theta["V"]
        return CompartmentSystem(
            _with_depot(np.array([[-k]]), theta["KA"]),
            0,
            np.array([0.0, 1.0 / theta["V"]]),
            lag=float(theta["TLAG"]),
        )


@register_pk_model
class Oral1CmtKe(PKModel):
    """One compartment, first-order absorption, parametrized by KE, KA and CL.

    The parametrization of ``SSfol`` (Pinheiro & Bates) used for R's ``Theoph``:
    ``C = D KE KA / (CL (KA - KE)) (exp(-KE t) - exp(-KA t))``, i.e. ``oral_1cmt`` with
    ``V = CL / KE``.
    """

    name = "oral_1cmt_ke"
    params = ("KE", "KA", "CL")
    description = "one compartment, first-order absorption (KE, KA, CL; SSfol / Theoph)"
    route = "oral"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        ke = theta["KE"]
        return _oral_response([(ke / theta["CL"], ke)], theta["KA"], dt, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        ke = theta["KE"]
        return CompartmentSystem(
            _with_depot(np.array([[-ke]]), theta["KA"]), 0, np.array([0.0, ke / theta["CL"]])
        )


@register_pk_model
class IV2Cmt(PKModel):
    """Two compartments, IV bolus or infusion into the central one, linear elimination.

    Bolus: ``C = D / V1 (A exp(-alpha t) + B exp(-beta t))``. Infusion of length ``T``:
    ``C = D / (T V1) sum_i c_i / lam_i (1 - exp(-lam_i min(t, T))) exp(-lam_i max(t - T,
    0))`` over ``(c, lam) = (A, alpha), (B, beta)``; see ``_two_cmt_terms`` for ``alpha``,
    ``beta``, ``A``, ``B``.
    """

    name = "iv_2cmt"
    params = ("CL", "V1", "Q", "V2")
    description = "two compartments, IV bolus or zero-order infusion"
    route = "iv"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        return _iv_response(_two_cmt_terms(theta, xp), dt, duration, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        return CompartmentSystem(_two_cmt_matrix(theta), 0, np.array([1.0 / theta["V1"], 0.0]))


@register_pk_model
class Oral2Cmt(PKModel):
    """Two compartments, first-order absorption into the central one.

    ``C = D KA / V1 sum_i c_i (exp(-lam_i t) - exp(-KA t)) / (KA - lam_i)`` over
    ``(c, lam) = (A, alpha), (B, beta)`` (tri-exponential; exact at ``KA == alpha`` or
    ``KA == beta``).
    """

    name = "oral_2cmt"
    params = ("CL", "V1", "Q", "V2", "KA")
    description = "two compartments, first-order absorption"
    route = "oral"

    def unit_response(self, dt: Any, duration: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        return _oral_response(_two_cmt_terms(theta, xp), theta["KA"], dt, xp)

    def reference_system(self, theta: Mapping[str, float]) -> CompartmentSystem:
        return CompartmentSystem(
            _with_depot(_two_cmt_matrix(theta), theta["KA"]),
            0,
            np.array([0.0, 1.0 / theta["V1"], 0.0]),
        )


# --------------------------------------------------------------------------- superposition
def _column(value: Any, xp: Any) -> Any:
    """A per-observation parameter ``(n,)`` as ``(n, 1)``; scalars and 2-D pass through."""
    if xp is np:
        value = np.asarray(value, dtype=float)
    return value[:, None] if getattr(value, "ndim", 0) == 1 else value


def concentration(
    model: PKModel | str, doses: DoseLayout, theta: Mapping[str, Any], xp: Any = np
) -> Any:
    """Concentration at each observation: the superposition of every dose's unit response.

    ``C[i] = sum_d amount[i, d] * unit_response(dt[i, d], duration[i, d], theta_i)``.

    Parameters
    ----------
    model : PKModel or str
        The structural model, or its registry name.
    doses : DoseMatrices or similar
        An object with ``dt``, ``amount`` and ``duration`` of shape ``(n, D)`` (NumPy arrays
        or tensors), e.g. from :func:`mixedbayes.pk.dosing.dose_matrices`.
    theta : mapping of str to array_like or tensor
        Each of the model's parameters, shape ``(n,)`` (one value per observation) or a
        scalar.
    xp : module, default numpy
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    array_like or tensor
        Shape ``(n,)``.

    Raises
    ------
    SpecError
        If ``theta`` lacks one of the model's parameters.
    DataError
        If an oral model is given infusion doses (a duration > 0).
    """
    pk = get_pk_model(model) if isinstance(model, str) else model
    missing = [p for p in pk.params if p not in theta]
    if missing:
        raise SpecError(
            f"no value for parameter(s) {', '.join(missing)} of PK model {pk.name!r}.",
            where="pk.theta",
            hint=f"give every parameter of the model: {', '.join(pk.params)}.",
        )
    dt, amount, duration = doses.dt, doses.amount, doses.duration
    if xp is np:
        dt, amount, duration = (np.asarray(x, dtype=float) for x in (dt, amount, duration))
    if pk.route == "oral" and isinstance(duration, np.ndarray) and bool(np.any(duration > 0)):
        raise DataError(
            f"PK model {pk.name!r} absorbs doses by first order but the doses include "
            "infusions (RATE > 0).",
            where="doses",
            hint="give oral doses as bolus doses (RATE 0), or use an IV model for infusions.",
        )
    cols = {p: _column(theta[p], xp) for p in pk.params}
    response = pk.unit_response(dt, duration, cols, xp)
    return (response * amount).sum(axis=1)
