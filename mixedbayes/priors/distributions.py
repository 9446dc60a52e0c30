"""Prior distributions: how a prior is written (``"normal(0, 10)"``), checked and built.

A prior is written as a call with numeric arguments, parsed with :mod:`ast` (never
evaluated). Each distribution is one class in the registry. For a parameter constrained to be
positive (``sd``, ``sigma``), a real-valued distribution centred at 0 becomes its half
version and one centred elsewhere is truncated at 0, as in brms.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from mixedbayes.naming import Names

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "PriorDist",
    "build_prior",
    "parse_prior",
    "register_distribution",
]

Support = Literal["real", "positive", "correlation"]


@dataclass(frozen=True)
class PriorDist:
    """A prior: a registered distribution name and its numeric arguments.

    Examples
    --------
    >>> str(PriorDist("normal", (0.0, 10.0)))
    'normal(0, 10)'
    """

    name: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(_fmt(a) for a in self.args)})"

    @property
    def distribution(self) -> Distribution:
        """The registered :class:`Distribution` of this prior."""
        return DISTRIBUTIONS[self.name]


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return str(x)
    return f"{x:.4g}" if x != int(x) or abs(x) >= 1e5 else str(int(x))


class Distribution:
    """A registered prior distribution."""

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]]
    support: ClassVar[Support] = "real"
    positive_params: ClassVar[tuple[str, ...]] = ()
    location: ClassVar[str | None] = None

    def check(self, args: tuple[float, ...]) -> str:
        """Empty when the arguments are valid, else what is wrong."""
        for p, a in zip(self.params, args, strict=True):
            if not np.isfinite(a):
                return f"{self.name}: {p} must be a finite number, got {_fmt(a)}"
            if p in self.positive_params and not a > 0:
                return f"{self.name}: {p} must be > 0, got {_fmt(a)}"
        return ""

    def build(self, name: str, args: np.ndarray, *, dims: Any, positive: bool) -> Any:
        """Add the variable to the model in context; ``args`` has one row per parameter."""
        import pymc as pm

        kwargs = self.kwargs(args)
        if positive and self.support == "real":
            loc = kwargs.get(self.location) if self.location else None
            if loc is not None and np.all(np.asarray(loc) == 0):
                return self.half(name, _as_data(name, kwargs, skip=self.location), dims)
            return pm.Truncated(name, self.dist(_as_data(name, kwargs)), lower=0.0, dims=dims)
        return self.rv(name, _as_data(name, kwargs), dims)

    def truncated(self, name: str, args: np.ndarray, *, dims: Any, lower: Any) -> Any:
        """The prior truncated below at ``lower`` (a tensor: e.g. another variable)."""
        import pymc as pm

        return pm.Truncated(
            name, self.dist(_as_data(name, self.kwargs(args))), lower=lower, dims=dims
        )

    def kwargs(self, args: np.ndarray) -> dict[str, Any]:
        return {
            p: np.squeeze(a) if np.ndim(a) else a for p, a in zip(self.params, args, strict=True)
        }

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        raise NotImplementedError

    def dist(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def half(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        raise NotImplementedError


def _as_data(name: str, kwargs: dict[str, Any], skip: str | None = None) -> dict[str, Any]:
    """The prior's arguments as data containers ``prior_<variable>_<parameter>``: default
    priors depend on the data (the response's scale), and as containers they can change
    without recompiling the model (compile reuse)."""
    import pymc as pm

    return {
        p: pm.Data(Names.prior_data(name, p), np.asarray(v, dtype=float)) if p != skip else v
        for p, v in kwargs.items()
    }


DISTRIBUTIONS: dict[str, Distribution] = {}


def register_distribution(cls: type[Distribution]) -> type[Distribution]:
    """Class decorator adding a prior distribution to the registry under ``cls.name``."""
    DISTRIBUTIONS[cls.name] = cls()
    return cls


@register_distribution
class Normal(Distribution):
    name = "normal"
    params = ("mu", "sigma")
    positive_params = ("sigma",)
    location = "mu"

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.Normal(name, **kwargs, dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return pm.Normal.dist(**kwargs)

    def half(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.HalfNormal(name, sigma=kwargs["sigma"], dims=dims)


@register_distribution
class StudentT(Distribution):
    name = "student_t"
    params = ("nu", "mu", "sigma")
    positive_params = ("nu", "sigma")
    location = "mu"

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.StudentT(name, **kwargs, dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return pm.StudentT.dist(**kwargs)

    def half(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.HalfStudentT(name, nu=kwargs["nu"], sigma=kwargs["sigma"], dims=dims)


@register_distribution
class Cauchy(Distribution):
    name = "cauchy"
    params = ("alpha", "beta")
    positive_params = ("beta",)
    location = "alpha"

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.Cauchy(name, **kwargs, dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return pm.Cauchy.dist(**kwargs)

    def half(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.HalfCauchy(name, beta=kwargs["beta"], dims=dims)


@register_distribution
class Logistic(Distribution):
    """Logistic(mu, s): on the logit scale, Logistic(0, 1) is uniform on the probability
    (brms's default intercept of ``zi`` and ``hu`` formulas)."""

    name = "logistic"
    params = ("mu", "s")
    positive_params = ("s",)
    location = "mu"

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.Logistic(name, **kwargs, dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return pm.Logistic.dist(**kwargs)

    def half(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return pm.Truncated(name, pm.Logistic.dist(mu=0.0, s=kwargs["s"]), lower=0.0, dims=dims)


class _Positive(Distribution):
    """A distribution whose support is already positive."""

    support = "positive"
    pm_name: ClassVar[str]

    def rv(self, name: str, kwargs: dict[str, Any], dims: Any) -> Any:
        import pymc as pm

        return getattr(pm, self.pm_name)(name, **kwargs, dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return getattr(pm, self.pm_name).dist(**kwargs)


@register_distribution
class HalfNormal(_Positive):
    name = "half_normal"
    params = ("sigma",)
    positive_params = ("sigma",)
    pm_name = "HalfNormal"


@register_distribution
class HalfStudentT(_Positive):
    name = "half_student_t"
    params = ("nu", "sigma")
    positive_params = ("nu", "sigma")
    pm_name = "HalfStudentT"


@register_distribution
class HalfCauchy(_Positive):
    name = "half_cauchy"
    params = ("beta",)
    positive_params = ("beta",)
    pm_name = "HalfCauchy"


@register_distribution
class Exponential(_Positive):
    name = "exponential"
    params = ("lam",)
    positive_params = ("lam",)
    pm_name = "Exponential"


@register_distribution
class Gamma(_Positive):
    name = "gamma"
    params = ("alpha", "beta")
    positive_params = ("alpha", "beta")
    pm_name = "Gamma"


@register_distribution
class InverseGamma(_Positive):
    name = "inv_gamma"
    params = ("alpha", "beta")
    positive_params = ("alpha", "beta")
    pm_name = "InverseGamma"


@register_distribution
class LogNormal(_Positive):
    name = "lognormal"
    params = ("mu", "sigma")
    positive_params = ("sigma",)
    pm_name = "LogNormal"


@register_distribution
class Uniform(Distribution):
    name = "uniform"
    params = ("lower", "upper")

    def check(self, args: tuple[float, ...]) -> str:
        return "" if args[0] < args[1] else "uniform: lower must be below upper"

    def build(self, name: str, args: np.ndarray, *, dims: Any, positive: bool) -> Any:
        import pymc as pm

        return pm.Uniform(name, **self.kwargs(args), dims=dims)

    def dist(self, kwargs: dict[str, Any]) -> Any:
        import pymc as pm

        return pm.Uniform.dist(**kwargs)


@register_distribution
class LKJ(Distribution):
    """LKJ prior on a correlation matrix, as the Cholesky factor (used by class ``cor``)."""

    name = "lkj"
    params = ("eta",)
    support = "correlation"
    positive_params = ("eta",)

    def build(self, name: str, args: np.ndarray, *, dims: Any, positive: bool) -> Any:
        raise TypeError("an LKJ prior is built by the group-effect core, not as a vector")


def parse_prior(text: str) -> PriorDist:
    """Parse ``"normal(0, 10)"`` or ``"student_t(nu=3, mu=0, sigma=2.5)"``.

    Parameters
    ----------
    text : str
        A registered distribution name called with numeric literal arguments.

    Returns
    -------
    PriorDist

    Raises
    ------
    ValueError
        Naming what is wrong and listing the known distributions.
    """
    known = ", ".join(sorted(DISTRIBUTIONS))
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"cannot read prior {text!r}; write it like 'normal(0, 10)'") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"prior {text!r} must be a call like 'normal(0, 10)'")
    name = node.func.id
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown prior distribution {name!r}; known: {known}")
    dist = DISTRIBUTIONS[name]
    values: dict[str, float] = {}
    for i, arg in enumerate(node.args):
        if i >= len(dist.params):
            raise ValueError(f"{name} takes {len(dist.params)} arguments {dist.params}")
        values[dist.params[i]] = _number(arg, text)
    for kw in node.keywords:
        if kw.arg not in dist.params:
            raise ValueError(f"{name} has no argument {kw.arg!r}; its arguments: {dist.params}")
        values[kw.arg] = _number(kw.value, text)
    missing = [p for p in dist.params if p not in values]
    if missing:
        raise ValueError(f"{name} needs the arguments {dist.params}; missing {missing}")
    args = tuple(values[p] for p in dist.params)
    problem = dist.check(args)
    if problem:
        raise ValueError(problem)
    return PriorDist(name, args)


def _number(node: ast.expr, text: str) -> float:
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ValueError(f"prior {text!r}: arguments must be numbers")
        return sign * float(node.value)
    raise ValueError(f"prior {text!r}: arguments must be numbers, not expressions")


def build_prior(
    name: str,
    priors: Sequence[PriorDist],
    *,
    model: Any,
    dims: Any = None,
    positive: bool = False,
    lower: Any = None,
) -> Any:
    """Build one variable of ``model`` for priors of one distribution family.

    With a single prior and ``dims=None`` it is a scalar; otherwise one element per prior, the
    arguments stacked into vectors. ``lower`` (a tensor, e.g. another variable) truncates
    the prior below (ordered parameters).
    """
    dist = priors[0].distribution
    if any(p.name != dist.name for p in priors):
        raise ValueError("build_prior takes priors of one distribution family")
    with model:
        if lower is not None:
            args = np.asarray([p.args for p in priors], dtype=float).T
            if len(priors) == 1:
                args = args[:, 0]
            return dist.truncated(name, args, dims=dims, lower=lower)
        if dims is None and len(priors) == 1:
            return dist.build(
                name, np.asarray(priors[0].args, dtype=float), dims=None, positive=positive
            )
        args = np.asarray([p.args for p in priors], dtype=float).T
        if np.all(args == args[:, :1]):
            import pytensor.tensor as pt

            stacked = dist.build(name, args[:, 0], dims=dims, positive=positive)
            return pt.as_tensor(stacked)
        return dist.build(name, args, dims=dims, positive=positive)
