"""ODE right-hand sides written as expressions, solved inside the pytensor graph.

A system is written as one expression per state, e.g. one-compartment oral absorption::

    A_gut: "-KA * A_gut"
    A_c:   "KA * A_gut - CL / V * A_c"

Free names of the right-hand sides that are neither states nor the time ``t`` are the
parameters, given one value per subject. :func:`solve_ode` integrates the system with a
fixed-step classical Runge-Kutta (RK4) scheme inside :func:`pytensor.scan`, so the sampler
differentiates through the solution. The time grid of every subject (:func:`ode_grid`) is the
sorted union of its observation and dose times, starting at 0; bolus doses are added to the
dose state *after* the state at their grid point is recorded, so that an observation at a dose
time sees the pre-dose state, as in NONMEM.

Scan and the numba backend
--------------------------
pytensor 3.3 has a numba implementation of ``Scan`` (``pytensor.link.numba.dispatch.scan``),
used for both the forward loop and the reverse-mode gradient loop that ``pytensor.grad``
builds from it; nutpie's default numba backend compiles such models without changes (no
object-mode fallback). The cost is compile time, almost all of it numba typing and LLVM
work on the few hundred small functions of the two loops (pytensor rewriting takes a few
seconds); numba's on-disk cache makes later compiles of the same graph much faster. Measured
on one small model (2 CPUs, cache off): RK4 substeps unrolled inside a scan over the
``G - 1`` intervals took 46 s to compile with 1 substep and 264 s with 8 (the step graph
grows with ``substeps``); a nested scan over the substeps took about 85 s whatever their
number. The layout used here, one flat scan over all ``(G - 1) * substeps`` RK4 steps with
each state a separate ``(S,)`` loop output (no stacking or indexing inside the loop), took
25 s independently of ``substeps`` and sampled fastest. The grid-point states are every
``substeps``-th output of the loop.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mixedbayes.errors import DataError, Problem, SpecError
from mixedbayes.nonlinear.expression import FUNCTIONS, Expression, parse_expression

if TYPE_CHECKING:
    from pytensor.tensor.variable import TensorVariable

__all__ = [
    "ODEGrid",
    "ODESystem",
    "observe",
    "ode_grid",
    "parse_ode",
    "rk4_step",
    "solve_ode",
    "solve_ode_numpy",
    "subject_grid",
]

#: The name of time in a right-hand side.
TIME = "t"


@dataclass(frozen=True)
class ODESystem:
    """A system of ordinary differential equations ``dy/dt = f(t, y; theta)``.

    Parameters
    ----------
    states : tuple of str
        State names, in order (the last axis of the solution).
    rhs : tuple of Expression
        Right-hand side of each state, aligned with ``states``.
    parameters : tuple of str
        Free names of the right-hand sides that are neither states nor ``t``, in order of
        first appearance.
    """

    states: tuple[str, ...]
    rhs: tuple[Expression, ...]
    parameters: tuple[str, ...]

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.states)

    def state_index(self, name: str) -> int:
        """Position of a state by name (``SpecError`` naming the states when unknown)."""
        if name not in self.states:
            raise SpecError(
                f"unknown state {name!r}; the states are {', '.join(self.states)}",
                where="ode",
                hint="name one of the states on the left of the right-hand sides",
            )
        return self.states.index(name)


def parse_ode(rhs: Mapping[str, str], *, where: str = "ode.rhs") -> ODESystem:
    """Parse the right-hand sides of an ODE system, one expression per state.

    Parameters
    ----------
    rhs : mapping of str to str
        ``state -> expression`` of its derivative, e.g. ``{"A_gut": "-KA * A_gut"}``. The
        order of the mapping is the order of the states.
    where : str, optional
        Key path of the mapping in the spec; each expression is named ``f"{where}.{state}"``.

    Returns
    -------
    ODESystem

    Raises
    ------
    SpecError
        For an empty system, a state name that is not a valid name (or is ``t`` or a
        function name), or an invalid expression; every problem is reported, each naming
        its state.
    """
    if not isinstance(rhs, Mapping):
        raise SpecError(
            f"the ODE right-hand sides must be a mapping state -> expression, "
            f"got {type(rhs).__name__}",
            where=where,
            hint="write e.g. {A_gut: '-KA * A_gut', A_c: 'KA * A_gut - CL / V * A_c'}",
        )
    if not rhs:
        raise SpecError(
            "the ODE system is empty",
            where=where,
            hint="give one right-hand side per state, e.g. {A_c: '-CL / V * A_c'}",
        )
    problems: list[Problem] = []
    states: list[str] = []
    exprs: list[Expression] = []
    for state, text in rhs.items():
        key = f"{where}.{state}"
        bad = _bad_state_name(state)
        if bad:
            problems.append(Problem(bad, key, "name states like A_gut or A_c"))
            continue
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            problems.append(
                Problem(
                    f"the right-hand side of state {state!r} must be an expression, "
                    f"got {type(text).__name__}",
                    key,
                    "write it as text, e.g. '-KA * A_gut'",
                )
            )
            continue
        try:
            expr = parse_expression(str(text), where=key)
        except SpecError as err:
            problems.extend(
                Problem(f"state {state!r}: {p.message}", p.where or key, p.hint)
                for p in err.problems
            )
            continue
        states.append(state)
        exprs.append(expr)
    SpecError.collect(problems)
    parameters: dict[str, None] = {}
    for expr in exprs:
        for name in expr.names:
            if name not in rhs and name != TIME:
                parameters.setdefault(name, None)
    return ODESystem(tuple(states), tuple(exprs), tuple(parameters))


def _bad_state_name(state: object) -> str:
    if not isinstance(state, str) or not state.isidentifier() or keyword.iskeyword(state):
        return f"state {state!r} is not a valid name"
    if state == TIME:
        return f"state {state!r}: 't' is time and cannot be a state"
    if state in FUNCTIONS:
        return f"state {state!r} is the name of a function"
    if state.startswith("__"):
        return f"state {state!r}: names must not start with '__'"
    return ""


@dataclass(frozen=True)
class ODEGrid:
    """Per-subject time grids on which an ODE system is solved.

    Parameters
    ----------
    subjects : tuple of str
        Subject labels, in the order of the first axis.
    times : numpy.ndarray
        ``(S, G)`` grid times per subject: the sorted union of 0, the observation and the
        dose times, padded to a common length ``G`` by repeating the last time.
    n_points : numpy.ndarray
        ``(S,)`` number of distinct grid times of each subject (before padding).
    dose_amount : numpy.ndarray
        ``(S, G, n_states)`` amounts added to the states at each grid point, after the state
        there is recorded.
    obs_subject : numpy.ndarray
        ``(n_obs,)`` subject index of each observation.
    obs_position : numpy.ndarray
        ``(n_obs,)`` grid position of each observation.
    """

    subjects: tuple[str, ...]
    times: np.ndarray
    n_points: np.ndarray
    dose_amount: np.ndarray
    obs_subject: np.ndarray
    obs_position: np.ndarray

    @property
    def n_subjects(self) -> int:
        """Number of subjects ``S``."""
        return int(self.times.shape[0])

    @property
    def n_grid(self) -> int:
        """Common grid length ``G``."""
        return int(self.times.shape[1])

    @property
    def n_states(self) -> int:
        """Number of states."""
        return int(self.dose_amount.shape[2])


def ode_grid(
    subjects: Sequence[str],
    obs_subjects: Sequence[str],
    obs_times: np.ndarray,
    doses: Sequence[tuple[str, float, float]],
    dose_state: int,
    n_states: int,
    extra_times: Mapping[str, np.ndarray] | None = None,
) -> ODEGrid:
    """Build the per-subject time grids for :func:`solve_ode`.

    Parameters
    ----------
    subjects : sequence of str
        Subject labels (unique), in the order wanted for the first axis.
    obs_subjects : sequence of str
        Subject of each observation.
    obs_times : numpy.ndarray
        ``(n_obs,)`` time of each observation (>= 0).
    doses : sequence of (str, float, float)
        Bolus doses as ``(subject, time, amount)``; doses at the same time add up.
    dose_state : int
        Index of the state that receives the doses.
    n_states : int
        Number of states of the system.
    extra_times : mapping of str to numpy.ndarray, optional
        By subject, more grid times (>= 0) that no observation reads: finer steps for the
        RK4 solver. By default the grid points are 0 and the observation and dose times.

    Returns
    -------
    ODEGrid

    Raises
    ------
    DataError
        For an unknown subject, a negative or non-finite time or amount (every problem).
    ValueError
        For a ``dose_state`` outside ``range(n_states)`` or duplicated subjects.
    """
    labels = [str(s) for s in subjects]
    if not labels:
        raise DataError("there are no subjects", where="subjects")
    if len(set(labels)) != len(labels):
        raise ValueError("subjects must be unique")
    if not 0 <= dose_state < n_states:
        raise ValueError(f"dose_state {dose_state} is outside 0..{n_states - 1}")
    index = {s: i for i, s in enumerate(labels)}
    t_obs = np.asarray(obs_times, dtype=float).reshape(-1)
    obs_labels = [str(s) for s in obs_subjects]
    if len(obs_labels) != t_obs.size:
        raise ValueError(
            f"obs_subjects has {len(obs_labels)} entries but obs_times has {t_obs.size}"
        )
    problems: list[Problem] = []
    unknown = sorted({s for s in obs_labels if s not in index})
    if unknown:
        problems.append(Problem(f"observations of unknown subjects {unknown}", "obs_subjects"))
    bad = np.flatnonzero(~np.isfinite(t_obs) | (t_obs < 0))
    if bad.size:
        problems.append(
            Problem(
                f"observation times must be finite and >= 0; rows {bad[:8].tolist()}",
                "obs_times",
            )
        )
    for k, (subject, time, amount) in enumerate(doses):
        if str(subject) not in index:
            problems.append(Problem(f"dose of unknown subject {subject!r}", f"doses[{k}]"))
        if not (np.isfinite(time) and time >= 0):
            problems.append(
                Problem(f"dose time must be finite and >= 0, got {time}", f"doses[{k}]")
            )
        if not np.isfinite(amount):
            problems.append(Problem(f"dose amount must be finite, got {amount}", f"doses[{k}]"))
    DataError.collect(problems)

    n_subjects = len(labels)
    obs_subject = np.array([index[s] for s in obs_labels], dtype=np.int64)
    grids: list[np.ndarray] = []
    for i in range(n_subjects):
        own_doses = [float(t) for s, t, _ in doses if index[str(s)] == i]
        more = (extra_times or {}).get(labels[i], np.zeros(0))
        grids.append(np.unique(np.concatenate([[0.0], t_obs[obs_subject == i], own_doses, more])))
    n_points = np.array([g.size for g in grids], dtype=np.int64)
    n_grid = int(n_points.max())
    times = np.empty((n_subjects, n_grid))
    for i, g in enumerate(grids):
        times[i, : g.size] = g
        times[i, g.size :] = g[-1]
    dose_amount = np.zeros((n_subjects, n_grid, n_states))
    for subject, time, amount in doses:
        i = index[str(subject)]
        dose_amount[i, int(np.searchsorted(grids[i], float(time))), dose_state] += float(amount)
    obs_position = np.array(
        [np.searchsorted(grids[i], t) for i, t in zip(obs_subject, t_obs, strict=True)],
        dtype=np.int64,
    )
    return ODEGrid(
        subjects=tuple(labels),
        times=times,
        n_points=n_points,
        dose_amount=dose_amount,
        obs_subject=obs_subject,
        obs_position=obs_position,
    )


def _check_parameters(system: ODESystem, theta: Mapping[str, Any]) -> None:
    """``SpecError`` naming the parameters of ``system`` that ``theta`` lacks."""
    missing = [p for p in system.parameters if p not in theta]
    if missing:
        raise SpecError(
            f"the ODE needs values for the parameters {', '.join(map(repr, missing))}",
            where="ode",
            hint="define them as model parameters (one value per subject)",
        )


def solve_ode(
    system: ODESystem, grid: ODEGrid, theta: Mapping[str, Any], *, substeps: int = 8
) -> TensorVariable:
    """Solve an ODE system on every subject's grid with fixed-step RK4 in ``pytensor.scan``.

    The states start at zero at time 0. Each grid interval is integrated with ``substeps``
    RK4 steps of equal size, vectorised over subjects; the doses at a grid point are added
    after the state there is recorded. Padded grid points are zero-length steps.

    Parameters
    ----------
    system : ODESystem
        The right-hand sides.
    grid : ODEGrid
        Time grids, doses and observation positions (from :func:`ode_grid`).
    theta : mapping of str to tensor or array-like
        A value for every parameter of ``system``: ``(S,)`` (one per subject, in the order of
        ``grid.subjects``) or a scalar shared by all subjects.
    substeps : int, optional
        RK4 steps per grid interval (unrolled in the graph).

    Returns
    -------
    pytensor.tensor.TensorVariable
        ``(S, G, n_states)`` states at every grid point, before the doses there.

    Raises
    ------
    SpecError
        When ``theta`` lacks parameters of the system (all are named).
    ValueError
        When the grid's number of states does not match the system, or ``substeps < 1``.
    """
    import pytensor
    import pytensor.tensor as pt

    if grid.n_states != system.n_states:
        raise ValueError(
            f"the grid has {grid.n_states} states but the system has {system.n_states}"
        )
    if int(substeps) < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    substeps = int(substeps)
    _check_parameters(system, theta)
    names = system.parameters
    n_subjects, n_states = grid.n_subjects, system.n_states
    floatx = pytensor.config.floatX
    params = []
    for p in names:
        value = pt.as_tensor_variable(theta[p])
        if value.ndim > 1:
            raise ValueError(f"parameter {p!r} must be a scalar or (S,) vector, got {value.ndim}-d")
        params.append(value.astype(floatx))
    y0 = pt.zeros((n_subjects, n_states), dtype=floatx)
    if grid.n_grid == 1:
        return pt.shape_padaxis(y0, 1)  # type: ignore[no-any-return]

    # One scan step per RK4 substep over all intervals (N = (G - 1) * substeps steps).
    times = np.asarray(grid.times, dtype=float)
    h_np = np.repeat(np.diff(times, axis=1).T / substeps, substeps, axis=0)  # (N, S)
    k_np = np.tile(np.arange(substeps), grid.n_grid - 1)[:, None]
    t_np = np.repeat(times[:, :-1].T, substeps, axis=0) + k_np * h_np  # (N, S)
    dose_np = np.zeros((h_np.shape[0], n_subjects, n_states))
    dose_np[::substeps] = grid.dose_amount[:, :-1, :].transpose(1, 0, 2)
    dosed = [k for k in range(n_states) if np.any(dose_np[:, :, k] != 0)]
    sequences = [pt.as_tensor_variable(a.astype(floatx)) for a in (t_np, h_np)]
    sequences += [pt.as_tensor_variable(dose_np[:, :, k].astype(floatx)) for k in dosed]
    zero = pt.zeros((n_subjects,), dtype=floatx)
    n_dosed = len(dosed)

    def step(t: Any, h: Any, *rest: Any) -> list[Any]:
        doses = dict(zip(dosed, rest[:n_dosed], strict=True))
        y = [
            a + doses[k] if k in doses else a
            for k, a in enumerate(rest[n_dosed : n_dosed + n_states])
        ]
        values = dict(zip(names, rest[n_dosed + n_states :], strict=True))
        return rk4_step(_rhs(system, values, zero, "pytensor"), t, h, y)

    path = pytensor.scan(
        step,
        sequences=sequences,
        outputs_info=[zero] * n_states,
        non_sequences=params,
        name="ode_rk4",
        return_list=True,
        return_updates=False,
    )  # n_states x (N, S)
    ends = pt.stack(path, axis=-1)[substeps - 1 :: substeps]  # (G - 1, S, n_states)
    states = pt.concatenate([y0[None], ends], axis=0)  # (G, S, n_states)
    return states.transpose(1, 0, 2)  # type: ignore[no-any-return]


def _rhs(
    system: ODESystem, values: Mapping[str, Any], zero: Any, xp: Literal["numpy", "pytensor"]
) -> Callable[[Any, Sequence[Any]], list[Any]]:
    """The right-hand sides as a function of time and the states, for parameter ``values``;
    adding ``zero`` broadcasts a constant (or shared scalar) right-hand side to its shape."""

    def f(t: Any, y: Sequence[Any]) -> list[Any]:
        env: dict[str, Any] = dict(values)
        env.update(zip(system.states, y, strict=True))
        env[TIME] = t
        return [zero + expr.evaluate(env, xp=xp) for expr in system.rhs]

    return f


def rk4_step(
    f: Callable[[Any, Sequence[Any]], list[Any]], t: Any, h: Any, y: Sequence[Any]
) -> list[Any]:
    """One classical Runge-Kutta step of size ``h`` from ``(t, y)`` (NumPy arrays or tensors;
    ``y`` one entry per state): the step :func:`solve_ode` and :func:`solve_ode_numpy` share."""
    k1 = f(t, y)
    k2 = f(t + h / 2, [a + h / 2 * b for a, b in zip(y, k1, strict=True)])
    k3 = f(t + h / 2, [a + h / 2 * b for a, b in zip(y, k2, strict=True)])
    k4 = f(t + h, [a + h * b for a, b in zip(y, k3, strict=True)])
    return [
        a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
        for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)
    ]


def solve_ode_numpy(
    system: ODESystem, grid: ODEGrid, theta: Mapping[str, Any], *, substeps: int = 8
) -> np.ndarray:
    """:func:`solve_ode` in NumPy, for many parameter sets at once (no compilation).

    The same fixed-step RK4 on the same grid, with the doses added at the same points, so
    that it reproduces the model's solution to rounding: predictions from posterior draws
    use it instead of compiling the scan again.

    Parameters
    ----------
    system, grid, substeps
        As for :func:`solve_ode`.
    theta : mapping of str to array_like
        A value for every parameter: shape ``(..., S)`` (a leading batch, e.g. the draws,
        and one value per subject) or a scalar.

    Returns
    -------
    numpy.ndarray
        ``(..., S, G, n_states)`` states at every grid point, before the doses there.
    """
    _check_parameters(system, theta)
    if int(substeps) < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    values = {p: np.asarray(theta[p], dtype=float) for p in system.parameters}
    batch = np.broadcast_shapes((grid.n_subjects,), *(v.shape for v in values.values()))
    zero = np.zeros(batch)
    out = np.zeros((*batch, grid.n_grid, system.n_states))
    f = _rhs(system, values, zero, "numpy")
    y = [zero.copy() for _ in system.states]
    times = np.asarray(grid.times, dtype=float)
    for j in range(grid.n_grid - 1):
        y = [a + grid.dose_amount[:, j, k] for k, a in enumerate(y)]
        h = (times[:, j + 1] - times[:, j]) / substeps
        for k in range(int(substeps)):
            y = rk4_step(f, times[:, j] + k * h, h, y)
        out[..., j + 1, :] = np.stack(y, axis=-1)
    return out


def subject_grid(
    system: ODESystem,
    dose_state: str,
    obs_subjects: Sequence[str],
    obs_times: np.ndarray,
    doses: Sequence[tuple[str, float, float]],
    extra_times: Mapping[str, np.ndarray] | None = None,
) -> tuple[ODEGrid, np.ndarray]:
    """The grid of each observed subject (in order of first observation) and the position
    of each subject's first observation, whose parameter values the subject's ODE uses.

    Doses of subjects without observations are left out; ``extra_times`` as for
    :func:`ode_grid`.
    """
    subjects = list(dict.fromkeys(str(s) for s in obs_subjects))
    labels = [str(s) for s in obs_subjects]
    first = np.array([labels.index(s) for s in subjects], dtype=np.int64)
    known = set(subjects)
    own = [d for d in doses if str(d[0]) in known]
    grid = ode_grid(
        subjects,
        labels,
        obs_times,
        own,
        system.state_index(dose_state),
        system.n_states,
        extra_times,
    )
    return grid, first


def observe(states: Any, grid: ODEGrid) -> TensorVariable:
    """Gather the states at the observations.

    Parameters
    ----------
    states : pytensor.tensor.TensorVariable
        ``(S, G, n_states)`` solution from :func:`solve_ode`.
    grid : ODEGrid
        The grid the states were solved on.

    Returns
    -------
    pytensor.tensor.TensorVariable
        ``(n_obs, n_states)`` the states at each observation (before any dose at that time).
    """
    import pytensor.tensor as pt

    states = pt.as_tensor_variable(states)
    return states[grid.obs_subject, grid.obs_position]  # type: ignore[no-any-return]
