"""Where the chains start: user initial values, a point fit, and a little jitter per chain.

By default a sampler starts each chain at the priors' centres plus uniform jitter of ±1 on
its unconstrained scale. A :class:`Start` replaces that: values for some variables (the
user's ``mb.fit(..., init={...})`` or a kind's self-start rule, e.g. curve peeling for
``biexp``), optionally refined by a point fit (the mode of the log-density on the sampler's
scale, by L-BFGS), and then jitter of ±``jitter`` around the given or fitted values (±1 around
the others), drawn separately for each chain.

Every sampler takes the start as a flat vector on its unconstrained scale
(:func:`chain_starts`) or as values on the variables' own scales (:func:`constrained`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from mixedbayes._system import python_ops
from mixedbayes.errors import SpecError

if TYPE_CHECKING:
    import pymc as pm

__all__ = [
    "Start",
    "StartRules",
    "chain_starts",
    "check_init",
    "constrained",
    "flat_start",
    "logp_dlogp",
    "maximize",
    "plan_start",
    "point_fit",
]

#: Largest number of L-BFGS iterations of a point fit.
POINT_FIT_ITERATIONS = 1000

#: Seed of the one perturbation of a point fit's start (:func:`start_vector`).
SYMMETRY_SEED = 20240601

LogpGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


class StartRules(Protocol):
    """What a kind says about where its chains start (:class:`~mixedbayes.kinds.Kind`)."""

    def point_fit(self, design: Any) -> bool: ...

    def initial_values(self, design: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Start:
    """Where the chains start.

    Attributes
    ----------
    values : mapping of str to ndarray
        Values of free variables on their own scales (``sd_Subject`` positive), by name.
    point_fit : bool
        Refine the start by a point fit (the mode on the sampler's scale) first.
    jitter : float
        Half-width of the uniform jitter, on the sampler's scale, around given or fitted
        values; the other variables get PyMC's ±1.
    user : frozenset of str
        The names the user gave (``init=``), for the record.
    """

    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    point_fit: bool = False
    jitter: float = 0.1
    user: frozenset[str] = frozenset()

    def describe(self) -> str:
        """How the chains started, in one line (recorded in the fit)."""
        given = sorted(self.user) if self.user else sorted(self.values)
        what = f"from values of {', '.join(given)}" if given else "from the priors' centres"
        fit = "a point fit (L-BFGS) " if self.point_fit else ""
        return f"{fit}{what}, jitter ±{self.jitter:g}".strip()


def _layout(model: pm.Model) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(rv name, value-variable name, value shape)`` per free variable, in sampler order."""
    with python_ops():
        point = model.initial_point()
    out = []
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv].name
        out.append((rv.name, value, tuple(np.shape(point[value]))))
    return out


def _element_names(model: pm.Model, name: str) -> list[str] | None:
    """The free element variables ``name[coef]`` of a vector built element by element."""
    from mixedbayes.naming import Names

    dims = model.named_vars_to_dims.get(name)
    if not dims or len(dims) != 1 or model.coords.get(dims[0]) is None:
        return None
    elements = [Names.element(name, str(c)) for c in model.coords[dims[0]]]
    free = {rv.name for rv in model.free_RVs}
    return elements if all(e in free for e in elements) else None


def _expand(model: pm.Model, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with vectors built element by element split into their elements."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        elements = _element_names(model, name)
        if elements is None:
            out[name] = value
        else:
            flat = np.broadcast_to(np.asarray(value, dtype=float), (len(elements),))
            out.update({e: flat[i] for i, e in enumerate(elements)})
    return out


def check_init(
    model: pm.Model, init: Mapping[str, Any], *, plain: pm.Model | None = None
) -> dict[str, np.ndarray]:
    """Validate user initial values against ``model``'s free variables.

    Parameters
    ----------
    model : pymc.Model
        The model the sampler draws from.
    init : mapping of str to array_like
        Values by variable name, on the variable's own scale (broadcast to its shape).
    plain : pymc.Model, optional
        The plain model when ``model`` is a marginalised stand-in (its integrated-out
        variables are named as such).

    Returns
    -------
    dict of str to ndarray
        The values, broadcast to the variables' shapes.

    Raises
    ------
    SpecError
        Naming unknown variables (and listing the known ones), values of the wrong shape or
        not numbers, and values outside a variable's support.
    """
    if not isinstance(init, Mapping):
        raise SpecError(
            f"init must be a dict of variable name -> value, got {type(init).__name__}.",
            where="init",
            hint="e.g. init={'b_lrc1': [1.0], 'sigma': 0.1}.",
        )
    free = [rv.name for rv in model.free_RVs]
    vectors = [n for n in model.named_vars if n not in free and _element_names(model, n)]
    known = free + vectors
    unknown = [str(k) for k in init if k not in known]
    if unknown:
        plain_free = {rv.name for rv in plain.free_RVs} if plain is not None else set()
        integrated = [k for k in unknown if k in plain_free]
        derived = [
            k
            for k in unknown
            if k not in integrated
            and (k in model.named_vars or (plain is not None and k in plain.named_vars))
        ]
        notes = []
        if integrated:
            notes.append(
                f"{integrated} are integrated out of the sampled model; pass "
                "marginalize=False to set them, or leave them out"
            )
        if derived:
            notes.append(f"{derived} are computed from other variables; set those instead")
        raise SpecError(
            f"init names unknown variables {unknown}.",
            where="init",
            hint="; ".join([*notes, f"known variables: {known}."]),
        )
    values = _expand(model, init)
    shapes = model.eval_rv_shapes()
    out: dict[str, np.ndarray] = {}
    for name, value in values.items():
        shape = tuple(int(s) for s in shapes[name])
        try:
            out[name] = np.array(
                np.broadcast_to(np.asarray(value, dtype=float), shape), dtype=float
            )
        except (TypeError, ValueError):
            dims = model.named_vars_to_dims.get(name.split("[", 1)[0]) or ()
            raise SpecError(
                f"init value of {name!r} is not a number or an array of shape {shape}"
                + (f" (dims {list(dims)})" if dims else "")
                + f": {value!r}.",
                where=f"init.{name}",
                hint="give a number (used for every element) or an array of that shape.",
            ) from None
    x, _ = flat_start(model, out)
    bad = _non_finite(model, x)
    if bad:
        raise SpecError(
            f"init values of {bad} are outside the support of their priors "
            "(e.g. a negative sd, or an order constraint broken).",
            where="init",
            hint="give positive values for sd_*, sigma and other positive parameters, and "
            "ordered values for ordered parameters.",
        )
    return out


def _non_finite(model: pm.Model, x: np.ndarray) -> list[str]:
    bad = []
    cursor = 0
    for rv, _, shape in _layout(model):
        n = int(np.prod(shape))
        if not np.all(np.isfinite(x[cursor : cursor + n])):
            bad.append(rv)
        cursor += n
    return bad


def flat_start(model: pm.Model, values: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The start as one vector on the sampler's scale, and the mask of its given entries.

    Variables without a value take their initial value (the prior's centre); the order is
    that of ``model.free_RVs``, each raveled (as nutpie and :func:`logp_dlogp` lay it out).
    """
    from pymc.initial_point import make_initial_point_fn

    values = _expand(model, values)
    with np.errstate(all="ignore"), python_ops():
        point = make_initial_point_fn(
            model=model, overrides=dict(values), jitter_rvs=set(), return_transformed=True
        )(0)
    parts, mask = [], []
    for rv, value, shape in _layout(model):
        parts.append(np.asarray(point[value], dtype=float).reshape(-1))
        mask.append(np.full(int(np.prod(shape)), rv in values))
    if not parts:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate(parts), np.concatenate(mask)


def logp_dlogp(model: pm.Model, mode: str | None = None) -> LogpGrad:
    """The log-density on the sampler's scale (Jacobians included) and its gradient, as a
    function of the flat vector of :func:`flat_start`."""
    import pytensor.tensor as pt
    from pymc.pytensorf import compile as compile_fn
    from pymc.pytensorf import join_nonshared_inputs

    inputs = model.value_vars
    logp = model.logp()
    grads = cast(list[Any], pt.grad(logp, inputs))
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in grads])
    with python_ops():
        point = model.initial_point()
    (logp_j, grad_j), joined = join_nonshared_inputs(point, [logp, grad], inputs)
    fn = compile_fn([joined], [logp_j, grad_j], mode=mode)

    def value(x: np.ndarray) -> tuple[float, np.ndarray]:
        lp, g = fn(np.asarray(x, dtype=float))
        return float(lp), np.asarray(g, dtype=float)

    return value


def maximize(fn: LogpGrad, x0: np.ndarray, maxiter: int = POINT_FIT_ITERATIONS) -> np.ndarray:
    """The point of highest ``fn`` found by L-BFGS from ``x0`` (``x0`` itself if none is
    better; non-finite values count as worst)."""
    from scipy.optimize import minimize

    best_x = [np.asarray(x0, dtype=float)]
    best_lp = [-np.inf]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        lp, g = fn(x)
        if not np.isfinite(lp) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros_like(x)
        if lp > best_lp[0]:
            best_x[0], best_lp[0] = np.array(x), lp
        return -lp, -g

    if x0.size:
        with contextlib.suppress(ValueError, FloatingPointError):  # keep the best so far
            minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return best_x[0]


def start_vector(
    model: pm.Model, start: Start, fn: Callable[[], LogpGrad] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The centre of the chains' starts on the sampler's scale, and the mask of the entries
    that get the small jitter: the given values, refined by a point fit when asked (``fn``
    makes the log-density; :func:`logp_dlogp` by default).

    The point fit starts from one jittered copy of the start (the same for every chain, a
    fixed seed): from the priors' centres a model symmetric in some parameters (two
    exponential phases with equal priors) has an exactly symmetric gradient, which would
    keep the search on the symmetric saddle; perturbed, it reaches one labelling, and every
    chain starts near it.
    """
    x, mask = flat_start(model, start.values)
    if start.point_fit:
        x0 = chain_starts(x, mask, start.jitter)(SYMMETRY_SEED)
        x = maximize((fn or (lambda: logp_dlogp(model)))(), x0)
        mask = np.ones_like(mask)
    return x, mask


def chain_starts(x: np.ndarray, mask: np.ndarray, jitter: float) -> Callable[[Any], np.ndarray]:
    """A function of a seed giving one chain's start: ``x`` plus uniform jitter, ±``jitter``
    on the ``mask`` entries and ±1 on the others."""
    half = np.where(mask, jitter, 1.0)

    def draw(seed: Any = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.asarray(x + rng.uniform(-half, half), dtype=np.float64)

    return draw


def constrained(model: pm.Model, xs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Flat vectors on the sampler's scale as values of the free variables on their own
    scales, by name (what ``pm.sample(initvals=...)`` takes)."""
    rvs = model.free_RVs
    with python_ops():
        fn = model.compile_fn(
            outs=model.replace_rvs_by_values(rvs),
            inputs=model.value_vars,
            mode="FAST_COMPILE",
            point_fn=False,
            on_unused_input="ignore",
        )
    layout = _layout(model)
    out = []
    for x in xs:
        args, cursor = [], 0
        for _, _, shape in layout:
            n = int(np.prod(shape))
            args.append(np.asarray(x[cursor : cursor + n]).reshape(shape))
            cursor += n
        out.append({rv.name: np.asarray(v) for rv, v in zip(rvs, fn(*args), strict=True)})
    return out


def point_fit(
    model: pm.Model, values: Mapping[str, Any] | None = None, *, mode: str | None = None
) -> dict[str, np.ndarray]:
    """The mode of ``model``'s log-density on the sampler's scale, by L-BFGS.

    Parameters
    ----------
    model : pymc.Model
    values : mapping of str to array_like, optional
        Where the search starts (others: their initial values).
    mode : str, optional
        PyTensor compile mode of the log-density (``"FAST_COMPILE"`` compiles quickest).

    Returns
    -------
    dict of str to ndarray
        The free variables at the mode, on their own scales.
    """
    x, _ = flat_start(model, values or {})
    x = maximize(logp_dlogp(model, mode), x)
    return constrained(model, [x])[0]


def plan_start(
    kind: StartRules,
    design: Any,
    model: pm.Model,
    *,
    plain: pm.Model | None = None,
    init: Mapping[str, Any] | None = None,
    point_fit: bool | None = None,
) -> Start | None:
    """Where a fit's chains start: the user's ``init`` (checked), else the kind's initial
    values (a library model's self-start rule); a point fit by the kind's default
    (:meth:`~mixedbayes.kinds.Kind.point_fit`) unless the user gave ``init``. None: the
    sampler's own default."""
    if init is not None:
        values = check_init(model, init, plain=plain)
        return Start(values, point_fit=bool(point_fit), user=frozenset(init))
    values = _supported(model, kind.initial_values(design))
    fit = kind.point_fit(design) if point_fit is None else point_fit
    if not values and not fit:
        return None
    return Start(values, point_fit=fit)


def _supported(model: pm.Model, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of free variables of ``model`` (or their vectors) inside their supports;
    all of them dropped if together they are not."""
    free = {rv.name for rv in model.free_RVs}
    kept = {k: v for k, v in values.items() if k in free or _element_names(model, k)}
    if kept and _non_finite(model, flat_start(model, kept)[0]):
        return {}
    return kept
