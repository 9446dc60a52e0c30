"""Baseline hazards ``h0(t)`` of a proportional-hazards submodel, one class each.

A baseline states its parameters with default priors (:meth:`Baseline.params`), its log
hazard written once in a namespace ``xp`` (``numpy`` for checks, ``pytensor.tensor`` in a
PyMC model; no Python ``if`` on values) and a NumPy/SciPy reference cumulative hazard (closed
form, or adaptive quadrature). :meth:`Baseline.setup` returns a copy fitted to the data:
breaks and knots at quantiles of the event times, the follow-up ``[0, max(stop)]`` covered.
``log t`` is taken of ``max(t, 1e-30)``, so ``t == 0`` stays finite (values and gradients).
No PyMC or pytensor is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import numpy as np

from mixedbayes.errors import DataError, SpecError, format_rows
from mixedbayes.registry import Registry

__all__ = [
    "BASELINES",
    "BSplineBaseline",
    "Baseline",
    "BaselineParam",
    "GompertzBaseline",
    "PiecewiseBaseline",
    "WeibullBaseline",
    "check_times",
    "get_baseline",
    "register_baseline",
]

#: ``log t`` is evaluated at ``max(t, _T_FLOOR)``.
_T_FLOOR = 1e-30
#: Marks a dataclass field as fitted by ``setup`` (not an option users pass).
_FITTED = {"fitted": True}


@dataclass(frozen=True)
class BaselineParam:
    """One parameter of a baseline hazard, as the model builds it.

    Parameters
    ----------
    name : str
        The posterior variable's name.
    size, dim, labels : int, str or None, tuple of str
        0 for a scalar, else the vector's length, dim name and coordinate values.
    prior : str
        Default prior, e.g. ``"normal(0, 5)"``.
    positive : bool
        Whether the parameter is constrained positive.
    """

    name: str
    _: KW_ONLY
    size: int = 0
    dim: str | None = None
    prior: str
    positive: bool = False
    labels: tuple[str, ...] = ()
    #: Whether the parameter adds to ``log h0`` as a whole (an intercept, each piece's level,
    #: each coefficient of a B-spline basis that sums to 1): its prior is then centred on the
    #: log of the crude event rate, which makes the model's start independent of the time
    #: unit (days or years).
    level: bool = False


@dataclass(frozen=True)
class Baseline:
    """A baseline hazard. Options are the dataclass fields; fitted state is marked fitted.

    Attributes
    ----------
    name : str
        Registry key.
    description : str
        One line for listings.
    smooth_at_zero : bool
        Whether ``h0`` is smooth at ``t = 0``. Where it is not (Weibull: ``t^(shape-1)``),
        a Gauss–Legendre rule over an interval starting at or near 0 converges slowly: 15
        nodes on ``[0, t]`` are off by ~3% of the cumulative hazard at shape 0.5, ~5e-3 at
        0.7, ~1e-4 at 1.3 (0 at integer shapes). Intervals with ``start >= 0.1 (stop -
        start)`` keep ~1e-8 accuracy.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    smooth_at_zero: ClassVar[bool] = True

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options users may set (the dataclass fields not fitted by ``setup``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("fitted"))

    def setup(
        self, stop: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None
    ) -> Baseline:
        """A copy fitted to the data (breaks, knots); ``self`` when nothing is fitted. A
        ``DataError`` names the rows with a bad time or event indicator.

        Parameters
        ----------
        stop, event : numpy.ndarray
            Each row's stop time (> 0) and event indicator (1 event, 0 censored).
        entry : numpy.ndarray, optional
            Each row's entry/start time (``0 <= entry <= stop``); checked only.
        """
        check_times(stop, event, entry)
        return self

    def params(self) -> tuple[BaselineParam, ...]:
        """The parameters, with their default priors."""
        raise NotImplementedError

    def log_hazard(self, t: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        """``log h0(t)`` elementwise, of the shape of ``t`` (times >= 0, any shape).

        Parameters
        ----------
        t : array_like or tensor
        theta : mapping of str to array_like or tensor
            Parameter values by name: scalars, or 1-D vectors for vector parameters.
        xp : module
            ``numpy`` or ``pytensor.tensor``.
        """
        raise NotImplementedError

    def cumulative_hazard(self, t: np.ndarray, theta: Mapping[str, np.ndarray]) -> np.ndarray:
        """NumPy reference ``H0(t) = ∫_0^t h0(s) ds``, elementwise in ``t`` (>= 0)."""
        raise NotImplementedError

    def breakpoints(self) -> tuple[float, ...]:
        """Times where ``log h0`` is not smooth (a quadrature exact to rounding splits
        intervals there)."""
        return ()

    def quadrature_breaks(self) -> tuple[float, ...]:
        """The breakpoints the model's quadrature splits at: where ``h0`` jumps or bends
        (the pieces of ``piecewise``; a B-spline of degree < 2). A smooth-enough hazard is
        integrated over each interval whole (as JMbayes2 does): splitting a degree-2
        B-spline at its knots multiplies the nodes (and the sampling time) by the number of
        pieces for a gain far below the posterior's spread."""
        return self.breakpoints()

    def _require_setup(self, ready: bool) -> None:
        if not ready:
            raise RuntimeError(f"baseline {self.name!r} needs setup(stop, event) first.")

    def _check_int(self, option: str, value: object, low: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SpecError(
                f"option {option!r} of survival baseline {self.name!r} must be an integer "
                f">= {low}, not {value!r}.",
                where="survival.baseline",
                hint=f"set {option} to an integer >= {low}, or leave it out.",
            )


#: The baseline hazards by name (their classes; :func:`get_baseline` makes one).
BASELINES: Registry[type[Baseline]] = Registry("survival baseline", "survival.baseline")


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    """Class decorator adding a baseline (a frozen dataclass) to :data:`BASELINES`."""
    return BASELINES.add(cls.name, cls)


def get_baseline(name: str, **options: Any) -> Baseline:
    """The baseline ``name`` with ``options`` (not yet fitted: call ``setup``); a
    ``SpecError`` for an unknown name (naming the known ones), option or option value."""
    cls = BASELINES.get(name)
    known = cls.option_names()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SpecError(
            f"survival baseline {name!r} has no option {', '.join(map(repr, unknown))}.",
            where="survival.baseline",
            hint=f"use some of {list(known)}." if known else f"{name!r} takes no options.",
        )
    return cls(**options)


def check_times(stop: Any, event: Any, entry: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(stop, event)`` as float arrays, after checking them (``DataError`` naming rows)."""
    stop, event = np.asarray(stop, dtype=float), np.asarray(event, dtype=float)
    start = stop * 0.0 if entry is None else np.asarray(entry, dtype=float)
    if stop.ndim != 1 or not stop.shape == event.shape == start.shape or stop.size == 0:
        msg = "stop, event (and entry) must be non-empty 1-D arrays of one length."
        raise DataError(msg, where="survival.stop")
    problems = [
        (~np.isfinite(stop) | (stop <= 0), "survival.stop", "stop times must be finite and > 0"),
        (~np.isin(event, (0.0, 1.0)), "survival.event", "event indicators must be 0 or 1"),
        (~(start >= 0) | (start > stop), "survival.entry", "entry times need 0 <= entry <= stop"),
    ]
    for bad, where, what in problems:
        rows = np.flatnonzero(bad)
        if rows.size:
            raise DataError(f"{what}; rows {format_rows(rows.tolist())} are not.", where=where)
    return stop, event


def _event_quantiles(stop: np.ndarray, event: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Unique quantiles of the event times (all stop times if there is no event)."""
    times = stop[event > 0] if np.any(event > 0) else stop
    return np.unique(np.quantile(times, probs))


def _vector(name: str, dim: str, labels: tuple[str, ...]) -> tuple[BaselineParam, ...]:
    """One vector parameter with the default prior ``normal(0, 5)``, one element per label."""
    return (
        BaselineParam(
            name, size=len(labels), dim=dim, prior="normal(0, 5)", labels=labels, level=True
        ),
    )


def _labels(edges: np.ndarray) -> tuple[str, ...]:
    """``"[a,b)"`` per interval between consecutive edges (last open), unique."""
    for digits in range(3, 18):
        ends = [f"{e:.{digits}g}" for e in edges[1:]]
        labels = tuple(f"[{a},{b})" for a, b in zip(["0", *ends], [*ends, "inf"], strict=True))
        if len(set(labels)) == len(labels):
            break
    return labels


@register_baseline
@dataclass(frozen=True)
class WeibullBaseline(Baseline):
    """Weibull: ``log h0(t) = log_h0 + log(shape) + (shape - 1) log t``,
    ``H0(t) = exp(log_h0) t^shape``."""

    name = "weibull"
    description = "Weibull hazard exp(log_h0) shape t^(shape - 1)"
    smooth_at_zero = False

    def params(self) -> tuple[BaselineParam, ...]:
        return (
            BaselineParam("log_h0", prior="normal(0, 5)", level=True),
            BaselineParam("shape", prior="gamma(2, 1)", positive=True),
        )

    def log_hazard(self, t: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        shape = theta["shape"]
        log_t = xp.log(xp.maximum(t, _T_FLOOR))
        return theta["log_h0"] + xp.log(shape) + (shape - 1.0) * log_t

    def cumulative_hazard(self, t: np.ndarray, theta: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.exp(theta["log_h0"]) * np.asarray(t, dtype=float) ** theta["shape"]


@register_baseline
@dataclass(frozen=True)
class GompertzBaseline(Baseline):
    """Gompertz: ``log h0(t) = log_h0 + gompertz_rate t``,
    ``H0(t) = exp(log_h0) (exp(rate t) - 1) / rate`` (``exp(log_h0) t`` at rate 0)."""

    name = "gompertz"
    description = "Gompertz hazard exp(log_h0 + gompertz_rate t)"

    def params(self) -> tuple[BaselineParam, ...]:
        return (
            BaselineParam("log_h0", prior="normal(0, 5)", level=True),
            BaselineParam("gompertz_rate", prior="normal(0, 1)"),
        )

    def log_hazard(self, t: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        return theta["log_h0"] + theta["gompertz_rate"] * t

    def cumulative_hazard(self, t: np.ndarray, theta: Mapping[str, np.ndarray]) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        x = np.asarray(theta["gompertz_rate"], dtype=float) * t
        ratio = np.where(x == 0.0, 1.0, np.expm1(x) / np.where(x == 0.0, 1.0, x))
        return np.exp(theta["log_h0"]) * t * ratio


@register_baseline
@dataclass(frozen=True)
class PiecewiseBaseline(Baseline):
    """Piecewise-constant log hazard ``log_h0[j]`` on ``[b_j, b_{j+1})``: ``b_0 = 0``, the
    inner breaks at quantiles ``j / pieces`` of the event times, the last piece open to
    ``+inf`` (fewer pieces when quantiles tie)."""

    name = "piecewise"
    description = "piecewise-constant hazard, breaks at quantiles of the event times"

    pieces: int = 6
    breaks: tuple[float, ...] = field(default=(), metadata=_FITTED)

    def __post_init__(self) -> None:
        self._check_int("pieces", self.pieces, 1)

    def setup(
        self, stop: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None
    ) -> Baseline:
        stop, event = check_times(stop, event, entry)
        inner = _event_quantiles(stop, event, np.arange(1, self.pieces) / self.pieces)
        inner = inner[inner > 0]
        return dataclasses.replace(self, breaks=(0.0, *map(float, inner)))

    def params(self) -> tuple[BaselineParam, ...]:
        self._require_setup(bool(self.breaks))
        return _vector("log_h0", "h0_piece", _labels(np.asarray(self.breaks)))

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        self._require_setup(bool(self.breaks))
        return np.array(self.breaks), np.array([*self.breaks[1:], np.inf])

    def log_hazard(self, t: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        lo, hi = self._edges()
        t = xp.expand_dims(t, -1)
        return xp.sum(xp.where((t >= lo) & (t < hi), theta["log_h0"], 0.0), axis=-1)

    def cumulative_hazard(self, t: np.ndarray, theta: Mapping[str, np.ndarray]) -> np.ndarray:
        lo, hi = self._edges()
        span = np.clip(np.asarray(t, dtype=float)[..., None], lo, hi) - lo
        return np.sum(np.exp(np.asarray(theta["log_h0"], dtype=float)) * span, axis=-1)

    def breakpoints(self) -> tuple[float, ...]:
        return self.breaks[1:]


@register_baseline
@dataclass(frozen=True)
class BSplineBaseline(Baseline):
    """B-spline log hazard (JMbayes2's default): ``log h0(t) = Σ_j B_j(t) h0_coef[j]``.

    B-splines of ``degree`` with ``knots`` interior knots at quantiles ``k / (knots + 1)`` of
    the event times (fewer when quantiles tie) and boundary knots ``[0, max(stop)]``; ``t``
    is clamped into that range (constant log hazard beyond ``max(stop)``). The basis is the
    Cox–de Boor recursion written elementwise in ``xp``, so it is evaluated inside the
    graph at any tensor ``t``; :meth:`design_matrix` is SciPy's, for checks.
    """

    name = "bspline"
    description = "B-spline log hazard, knots at quantiles of the event times (JMbayes2)"

    degree: int = 2
    knots: int = 5
    interior: tuple[float, ...] = field(default=(), metadata=_FITTED)
    upper: float = field(default=0.0, metadata=_FITTED)

    def __post_init__(self) -> None:
        self._check_int("degree", self.degree, 1)
        self._check_int("knots", self.knots, 0)

    def setup(
        self, stop: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None
    ) -> Baseline:
        stop, event = check_times(stop, event, entry)
        upper = float(np.max(stop))
        probs = np.arange(1, self.knots + 1) / (self.knots + 1)
        inner = _event_quantiles(stop, event, probs)
        inner = inner[(inner > 0) & (inner < upper)]
        return dataclasses.replace(self, interior=tuple(map(float, inner)), upper=upper)

    def knot_vector(self) -> np.ndarray:
        """The full knot vector: ``degree + 1`` copies of each boundary, the interior."""
        self._require_setup(self.upper > 0)
        return np.r_[[0.0] * (self.degree + 1), self.interior, [self.upper] * (self.degree + 1)]

    def n_basis(self) -> int:
        """The number of basis functions (``len(interior) + degree + 1``)."""
        return len(self.interior) + self.degree + 1

    def params(self) -> tuple[BaselineParam, ...]:
        self._require_setup(self.upper > 0)
        return _vector("h0_coef", "h0_basis", tuple(f"B{j + 1}" for j in range(self.n_basis())))

    def basis(self, t: Any, xp: Any) -> Any:
        """The B-spline basis at ``t`` (clamped into ``[0, upper]``) by Cox–de Boor, shape
        ``t.shape + (n_basis(),)``, rows summing to 1. The recursion runs over a trailing
        basis axis; ``1 / 0`` knot differences (zero-length spans) are NumPy constants 0."""
        k = self.knot_vector()
        t = xp.expand_dims(xp.minimum(xp.maximum(t, 0.0), self.upper), -1)
        closed = np.arange(k.size - 1) == self.n_basis() - 1  # last span: closed on the right
        below = (t < k[1:]) | ((t <= k[1:]) & closed)
        level = xp.where((t >= k[:-1]) & below, 1.0, 0.0)
        for p in range(1, self.degree + 1):
            m = k.size - 1 - p
            left, right = k[p : p + m] - k[:m], k[p + 1 : p + 1 + m] - k[1 : 1 + m]
            inv_left = np.where(left > 0, 1.0 / np.where(left > 0, left, 1.0), 0.0)
            inv_right = np.where(right > 0, 1.0 / np.where(right > 0, right, 1.0), 0.0)
            up = (t - k[:m]) * inv_left * level[..., :m]
            level = up + (k[p + 1 : p + 1 + m] - t) * inv_right * level[..., 1 : 1 + m]
        return level

    def design_matrix(self, t: np.ndarray) -> np.ndarray:
        """SciPy's B-spline design matrix at ``t`` clamped into ``[0, upper]``, dense."""
        from scipy.interpolate import BSpline

        x = np.clip(np.asarray(t, dtype=float).ravel(), 0.0, self.upper)
        return BSpline.design_matrix(x, self.knot_vector(), self.degree).toarray()

    def log_hazard(self, t: Any, theta: Mapping[str, Any], xp: Any) -> Any:
        return xp.sum(self.basis(t, xp) * theta["h0_coef"], axis=-1)

    def cumulative_hazard(self, t: np.ndarray, theta: Mapping[str, np.ndarray]) -> np.ndarray:
        from scipy.integrate import quad

        def h0(s: float) -> float:
            return float(np.exp(self.log_hazard(np.float64(s), theta, np)))

        def integral(ti: float) -> float:
            inside = [c for c in self.breakpoints() if 0.0 < c < ti] or None
            return quad(h0, 0.0, ti, points=inside, limit=200, epsrel=1e-11)[0]

        return np.vectorize(integral, otypes=[float])(np.asarray(t, dtype=float))

    def breakpoints(self) -> tuple[float, ...]:
        self._require_setup(self.upper > 0)
        return (*self.interior, self.upper)

    def quadrature_breaks(self) -> tuple[float, ...]:
        # degree >= 2: h0 and its slope are continuous (the fit's intervals end by the upper
        # knot; beyond it the hazard is constant)
        return self.breakpoints() if self.degree < 2 else ()
