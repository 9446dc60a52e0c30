"""Predictions of nonlinear fits from the posterior draws, in NumPy (no recompilation).

Each draw's parameters at each row are the inverse link of the parameter's fixed part plus
the group effects the prediction includes (``level``, ``new_groups`` as for regressions:
:mod:`mixedbayes.results.group_draws`); the structural model is then evaluated with NumPy:

* a PK library model by its closed form (:func:`mixedbayes.pk.library.concentration`),
  superposing the doses of the rows' subjects (:func:`mixedbayes.pk.dosing.dose_matrices`);
* a user expression by the same parser the model uses, evaluated with NumPy;
* an ODE by :func:`mixedbayes.pk.ode.solve_ode_numpy`: the model's fixed-step RK4 (its
  ``substeps`` per interval between observation and dose times), so that the prediction at
  a fitted row is the model's own mean to rounding, not another solver's answer. New rows
  (new data, curves, regimens) get a grid as fine as the fit's: after each of their doses,
  the times after a dose at which the fit's subjects were observed, and no interval longer
  than the fit's longest; so a sparse set of new times or a dose followed by a long gap is
  solved as accurately as the fitted rows were (a fixed step as long as that gap could be
  unstable). SciPy's adaptive solvers would differ from the model's mean by the RK4 error,
  and compiling the model's scan again would cost a compile per prediction.

``kind="mean"`` is the structural prediction (the mean of the response for the additive,
proportional and combined error models; its median for the log-normal one);
``kind="response"`` adds the residual error model's noise (the posterior predictive).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.naming import OBS_DIM, Names
from mixedbayes.results.group_draws import (
    Level,
    NewGroups,
    check_new_groups,
    effect_draws,
    included_groups,
)

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.design.nonlinear import NonlinearDesign
    from mixedbayes.design.nonlinear_rows import NonlinearRows

__all__ = [
    "fitted_eta_shift",
    "imputed_eta_shift",
    "nonlinear_predict_draws",
    "parameter_draws",
    "residual_draws",
    "structural_draws",
]

#: Most times after a dose that a new row's ODE grid copies from the fit's grid.
MAX_OFFSETS = 64

#: Most values (draws × rows × doses, or draws × grid points × states) evaluated at once.
CHUNK_VALUES = 4_000_000


def parameter_draws(
    posterior: xr.Dataset,
    design: NonlinearDesign,
    rows: NonlinearRows,
    *,
    level: Level = None,
    new_groups: NewGroups = "error",
    rng: np.random.Generator | None = None,
    eta_shift: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each parameter (natural scale, by name: ``CL``) at each row, shape (chain, draw, rows).

    A new level draws all its terms (every parameter's) jointly, once per posterior draw.
    ``eta_shift`` adds, by parameter key, to the linear predictor (chain, draw, rows): what
    imputed covariates' drawn values change (:func:`imputed_eta_shift`).
    """
    check_new_groups(new_groups)
    groups = included_groups(design, level)
    check_new_groups(new_groups, groups, rows.new_levels)
    rng = rng if rng is not None else np.random.default_rng()
    effects = {
        g.name: effect_draws(
            posterior, g, rows.group_index[g.name], rows.group_labels[g.name], new_groups, rng
        )
        for g in groups
    }
    out = {}
    for p in design.params:
        b = posterior[Names(p.key).b].transpose("chain", "draw", p.term_dim).to_numpy()
        eta = np.einsum("cdp,np->cdn", b, rows.X[p.key])
        for g in groups:
            cols = list(design.group_columns.get((g.name, p.key), ()))
            if cols:
                Z = rows.group_Z[g.name][:, cols]
                eta = eta + np.einsum("cdnk,nk->cdn", effects[g.name][..., cols], Z)
        if eta_shift is not None and p.key in eta_shift:
            eta = eta + eta_shift[p.key]
        out[p.name] = p.link.inverse_numpy(eta)
    return out


def imputed_eta_shift(
    posterior: xr.Dataset,
    design: NonlinearDesign,
    n: int,
    cells: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
) -> dict[str, np.ndarray]:
    """By parameter key, what imputed covariates add to its linear predictor at ``n`` rows
    whose designs hold each covariate's fill: ``cells`` gives, by column, the rows of its
    drawn cells, their draws (chain, draw, cells) and by key the change of the parameter's
    columns per unit (cells × terms); ``(x − fill) · (D @ b_<key>)``."""
    plan = design.imputation
    out: dict[str, np.ndarray] = {}
    if plan is None:
        return out
    for cov in plan.covariates:
        if cov.column not in cells:
            continue
        rows, x, parts_D = cells[cov.column]
        for key, D in parts_D.items():
            if not len(rows) or not np.any(D):
                continue
            p = design.param(key)
            b = posterior[p.names.b].transpose("chain", "draw", p.term_dim).to_numpy()
            shift = out.setdefault(key, np.zeros((*b.shape[:2], n)))
            shift[:, :, rows] += (x - cov.fill) * np.einsum("cdp,kp->cdk", b, D)
    return out


def fitted_eta_shift(posterior: xr.Dataset, design: NonlinearDesign) -> dict[str, np.ndarray]:
    """:func:`imputed_eta_shift` at the fitted rows: the sampled ``<column>_missing``."""
    plan = design.imputation
    if plan is None:
        return {}
    cells = {
        cov.column: (
            cov.rows,
            posterior[Names.missing_var(cov.column)].transpose("chain", "draw", ...).to_numpy(),
            cov.parts_D,
        )
        for cov in plan.covariates
        if Names.missing_var(cov.column) in posterior
    }
    return imputed_eta_shift(posterior, design, design.n, cells)


#: The structural model for a batch of parameter draws, and the values it holds per draw.
Mean = tuple[Callable[[dict[str, np.ndarray]], np.ndarray], int]


def _pk_mean(design: NonlinearDesign, rows: NonlinearRows) -> Mean:
    """Closed-form concentrations for parameter draws (S, n)."""
    from mixedbayes.pk.dosing import dose_matrices
    from mixedbayes.pk.library import concentration, get_pk_model

    assert design.spec.model is not None
    if rows.dosing is None or rows.time is None:
        raise SpecError("PK predictions need the time and the doses.", where="dosing")
    model = get_pk_model(design.spec.model)
    doses = dose_matrices(rows.dosing, rows.subjects, rows.time)

    def mean(theta: dict[str, np.ndarray]) -> np.ndarray:
        S, n = next(iter(theta.values())).shape

        class _Tiled:
            dt = np.tile(doses.dt, (S, 1))
            amount = np.tile(doses.amount, (S, 1))
            duration = np.tile(doses.duration, (S, 1))

        flat = {k: v.reshape(-1) for k, v in theta.items()}
        return np.asarray(concentration(model, _Tiled, flat, np)).reshape(S, n)

    return mean, doses.dt.size


def _expression_mean(design: NonlinearDesign, rows: NonlinearRows) -> Mean:
    from mixedbayes.nonlinear.expression import parse_expression

    assert design.spec.expression is not None
    expression = parse_expression(design.spec.expression)

    def mean(theta: dict[str, np.ndarray]) -> np.ndarray:
        value = expression.evaluate({**rows.covariates, **theta}, xp="numpy")
        return np.broadcast_to(value, next(iter(theta.values())).shape)

    return mean, rows.n


def _bolus(rows: NonlinearRows | NonlinearDesign) -> list[tuple[str, float, float]]:
    assert rows.dosing is not None
    return [(r.subject, r.time, r.amount) for r in rows.dosing.records]


def _fit_resolution(design: NonlinearDesign) -> tuple[np.ndarray, float]:
    """The fit's ODE grid resolution: the times after a dose at which the fit's subjects
    were observed (at most :data:`MAX_OFFSETS`, by quantile) and its longest interval."""
    from mixedbayes.pk.ode import parse_ode, subject_grid

    assert design.spec.ode is not None and design.time is not None
    doses = _bolus(design)
    system = parse_ode(design.spec.ode.rhs)
    grid, _ = subject_grid(system, design.spec.ode.dose_state, design.subjects, design.time, doses)
    longest = float(np.diff(grid.times, axis=1).max(initial=0.0))
    offsets = []
    for s, t in zip(design.subjects, design.time, strict=True):
        before = [t - td for subject, td, _ in doses if subject == s and td <= t]
        offsets += [min(before)] if before else []
    positive = np.unique([o for o in offsets if o > 0])
    if positive.size > MAX_OFFSETS:
        positive = np.unique(np.quantile(positive, np.linspace(0, 1, MAX_OFFSETS)))
    return positive, longest


def _extra_times(design: NonlinearDesign, rows: NonlinearRows) -> dict[str, np.ndarray]:
    """By subject of ``rows``, grid times that make its grid as fine as the fit's: the fit's
    times after a dose after each of its doses, and no interval longer than the fit's
    longest (for new rows; the fitted rows are solved on exactly the model's grid)."""
    assert rows.time is not None
    offsets, longest = _fit_resolution(design)
    doses = _bolus(rows)
    out = {}
    for s in dict.fromkeys(rows.subjects):
        own = np.array([td for subject, td, _ in doses if subject == s])
        obs = rows.time[np.asarray(rows.subjects) == s]
        points = np.unique(np.concatenate([[0.0], obs, own, (own[:, None] + offsets).ravel()]))
        if longest > 0:
            gaps = np.maximum(1, np.ceil(np.diff(points) / longest - 1e-9)).astype(int)
            points = np.concatenate(
                [points[:1]]
                + [
                    np.linspace(a, b, k + 1)[1:]
                    for a, b, k in zip(points[:-1], points[1:], gaps, strict=True)
                ]
            )
        out[s] = points
    return out


def _ode_mean(design: NonlinearDesign, rows: NonlinearRows) -> Mean:
    from mixedbayes.nonlinear.expression import parse_expression
    from mixedbayes.pk.ode import parse_ode, solve_ode_numpy, subject_grid

    ode = design.spec.ode
    assert ode is not None
    if rows.dosing is None or rows.time is None or not rows.subjects:
        raise SpecError("ODE predictions need the time, the subjects and the doses.", where="ode")
    system = parse_ode(ode.rhs)
    observe = parse_expression(ode.observe, where="ode.observe")
    extra = None if rows.fitted else _extra_times(design, rows)
    grid, first = subject_grid(
        system, ode.dose_state, rows.subjects, rows.time, _bolus(rows), extra
    )

    def mean(theta: dict[str, np.ndarray]) -> np.ndarray:
        per_subject = {name: value[:, first] for name, value in theta.items()}
        states = solve_ode_numpy(system, grid, per_subject, substeps=ode.substeps)
        at_obs = states[:, grid.obs_subject, grid.obs_position, :]
        env = {**theta, **{s: at_obs[..., i] for i, s in enumerate(system.states)}}
        return np.broadcast_to(observe.evaluate(env, xp="numpy"), at_obs.shape[:2])

    return mean, grid.times.size * system.n_states + rows.n


def _curve_mean(design: NonlinearDesign, rows: NonlinearRows) -> Mean:
    from mixedbayes.nonlinear.library import get_curve_model

    assert design.spec.curve_model is not None
    if rows.time is None:
        raise SpecError(
            f"curve model {design.spec.curve_model!r} predicts at the spec's time column, "
            "which is not set.",
            where="time",
            hint="set `time:` to the column of the curve's input (e.g. time: t).",
        )
    model = get_curve_model(design.spec.curve_model)
    time = np.asarray(rows.time, dtype=float)

    def mean(theta: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(model.mean(time, theta, np))

    return mean, rows.n


def structural_draws(
    design: NonlinearDesign, rows: NonlinearRows, theta: dict[str, np.ndarray]
) -> np.ndarray:
    """The structural model at each row for parameter draws (..., rows): same shape."""
    spec = design.spec
    if spec.curve_model is not None:
        mean = _curve_mean
    elif spec.model is not None:
        mean = _pk_mean
    elif spec.expression is not None:
        mean = _expression_mean
    else:
        mean = _ode_mean
    shape = next(iter(theta.values())).shape
    flat = {k: v.reshape(-1, shape[-1]) for k, v in theta.items()}
    S = next(iter(flat.values())).shape[0]
    evaluate, width = mean(design, rows)
    step = max(1, CHUNK_VALUES // max(1, width))
    parts = [evaluate({k: v[i : i + step] for k, v in flat.items()}) for i in range(0, S, step)]
    return np.concatenate(parts, axis=0).reshape(shape)


def residual_draws(
    posterior: xr.Dataset, error: str, mu: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """New responses around the structural prediction ``mu`` (chain, draw, rows) from the
    residual error model ``error`` with each draw's ``sigma`` / ``sigma_prop``: NumPy
    counterparts of the model's likelihoods (``compile/nonlinear.py``)."""

    def scale(name: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw").to_numpy()[..., None]

    z = rng.standard_normal(mu.shape)
    if error == "lognormal":
        return np.exp(np.log(np.maximum(mu, 1e-12)) + scale("sigma") * z)
    if error == "additive":
        sd = scale("sigma")
    elif error == "proportional":
        sd = scale("sigma_prop") * np.abs(mu) + 1e-8
    else:  # combined
        sd = np.sqrt(scale("sigma") ** 2 + (scale("sigma_prop") * mu) ** 2)
    return mu + sd * z


def nonlinear_predict_draws(
    posterior: xr.Dataset,
    design: NonlinearDesign,
    newdata: pd.DataFrame | None,
    *,
    kind: Literal["link", "mean", "response"] = "mean",
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> xr.DataArray:
    """Predictive draws (chain, draw, obs) of a nonlinear fit: the structural prediction or
    new responses (see :meth:`mixedbayes.Fit.predict`)."""
    import xarray as xr

    from mixedbayes.design.nonlinear_rows import fitted_rows, new_rows

    if kind not in ("mean", "response"):
        raise SpecError(
            f"kind {kind!r} is not available for a nonlinear fit"
            + (" (its parameters each have their own link)." if kind == "link" else "."),
            where="kind",
            hint="use 'mean' (the structural prediction) or 'response' (with residual error).",
        )
    rng = np.random.default_rng(seed)
    group_seed, noise_seed = rng.integers(0, 2**31 - 1, size=2)
    check_new_groups(new_groups)
    rows = fitted_rows(design) if newdata is None else new_rows(design, newdata)
    theta = parameter_draws(
        posterior,
        design,
        rows,
        level=level,
        new_groups=new_groups,
        rng=np.random.default_rng(int(group_seed)),
        # the fitted rows' imputed covariates at their sampled values, not the design's fill
        eta_shift=fitted_eta_shift(posterior, design) if newdata is None else None,
    )
    values = structural_draws(design, rows, theta)
    if kind == "response":
        values = residual_draws(
            posterior, design.spec.error, values, np.random.default_rng(int(noise_seed))
        )
    return xr.DataArray(
        values,
        dims=("chain", "draw", OBS_DIM),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            OBS_DIM: list(rows.index),
        },
        name=kind,
    )
