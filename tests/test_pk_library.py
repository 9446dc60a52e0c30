"""Closed-form PK models against their compartment ODEs, NumPy against pytensor (fast)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from mixedbayes.errors import DataError, SpecError
from mixedbayes.pk import (
    PK_MODELS,
    CompartmentSystem,
    DoseMatrices,
    DoseRecord,
    DosingTable,
    PKModel,
    concentration,
    dose_matrices,
    get_pk_model,
)

#: Sampling ranges of the parameters (uniform); names not listed use ``DEFAULT_RANGE``.
PARAM_RANGES = {
    "CL": (0.5, 5.0),
    "V": (5.0, 50.0),
    "V1": (5.0, 30.0),
    "V2": (10.0, 80.0),
    "Q": (0.5, 8.0),
    "KA": (0.3, 3.0),
    "KE": (0.05, 0.5),
    "TLAG": (0.1, 1.5),
}
DEFAULT_RANGE = (0.2, 2.0)
SEEDS = (0, 1, 2)
INFUSION_LENGTH = 1.5
SINGLE_TIMES = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0])
MULTI_DOSE_TIMES = (2.0, 14.0, 26.0)
MULTI_TIMES = np.unique(np.concatenate([np.linspace(0.0, 50.0, 101), [3.5, 15.5, 27.5]]))

CASES = [
    pytest.param(name, mode, id=f"{name}-{mode}")
    for name, model in PK_MODELS.items()
    for mode in (("bolus", "infusion") if model.route == "iv" else ("bolus",))
]


def draw_theta(model: PKModel, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {p: float(rng.uniform(*PARAM_RANGES.get(p, DEFAULT_RANGE))) for p in model.params}


def make_records(times: Sequence[float], mode: str, subject: str = "s") -> list[DoseRecord]:
    amounts = [100.0, 60.0, 150.0]
    out = []
    for i, t in enumerate(times):
        infusion = mode == "infusion" or (mode == "mixed" and i == 1)
        rate = amounts[i] / INFUSION_LENGTH if infusion else 0.0
        out.append(DoseRecord(subject, t, amounts[i], rate=rate))
    return out


def ode_concentration(
    system: CompartmentSystem, records: Sequence[DoseRecord], times: np.ndarray
) -> np.ndarray:
    """Integrate the compartment ODE piecewise between dose events (solve_ivp)."""
    starts = [r.time + (0.0 if r.is_infusion else system.lag) for r in records]
    ends = [r.time + r.duration for r in records if r.is_infusion]
    breaks = sorted({0.0, *starts, *ends, float(times.max()) + 1.0})
    x = np.zeros(system.matrix.shape[0])
    out = np.full(times.shape, np.nan)
    for a, b in pairwise(breaks):
        u = np.zeros_like(x)
        for r, s in zip(records, starts, strict=True):
            if not r.is_infusion and s == a:
                x[system.dose_state] += r.amount
            if r.is_infusion and s <= a and r.time + r.duration >= b:
                u[system.dose_state] += r.rate
        inside = (times >= a) & (times <= b)
        t_eval = np.unique(np.concatenate([times[inside], [a, b]]))
        sol = solve_ivp(
            lambda _t, y, u=u: system.matrix @ y + u,
            (a, b),
            x,
            method="DOP853",
            t_eval=t_eval,
            rtol=1e-8,
            atol=1e-12,
        )
        assert sol.success, sol.message
        conc = system.output @ sol.y
        out[inside] = conc[np.searchsorted(t_eval, times[inside])]
        x = sol.y[:, -1].copy()
    return out


def closed_form(
    model: PKModel, records: Sequence[DoseRecord], times: np.ndarray, theta: dict[str, float]
) -> np.ndarray:
    doses = dose_matrices(DosingTable(tuple(records)), ["s"] * times.size, times)
    per_obs = {p: np.full(times.size, v) for p, v in theta.items()}
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        return np.asarray(concentration(model, doses, per_obs, np))


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-10 * scale)


# --------------------------------------------------------------------------- registry
def test_registry_entries_are_complete() -> None:
    assert {"iv_1cmt", "oral_1cmt", "oral_1cmt_lag", "oral_1cmt_ke", "iv_2cmt", "oral_2cmt"} <= (
        set(PK_MODELS)
    )
    for name, model in PK_MODELS.items():
        assert model.name == name
        assert model.params and len(set(model.params)) == len(model.params)
        assert model.route in ("iv", "oral")
        assert model.description
        assert get_pk_model(name) is model


def test_unknown_model_lists_registered_names() -> None:
    with pytest.raises(SpecError) as err:
        get_pk_model("oral_3cmt")
    for name in PK_MODELS:
        assert name in str(err.value)


def test_missing_parameter_is_named() -> None:
    doses = dose_matrices(DosingTable((DoseRecord("s", 0, 1),)), ["s"], np.array([1.0]))
    with pytest.raises(SpecError, match="KA"):
        concentration("oral_1cmt", doses, {"CL": np.ones(1), "V": np.ones(1)})


def test_oral_model_refuses_infusions() -> None:
    doses = dose_matrices(DosingTable((DoseRecord("s", 0, 10, rate=5),)), ["s"], np.array([1.0]))
    with pytest.raises(DataError, match="infusion"):
        concentration("oral_1cmt", doses, {p: np.ones(1) for p in ("CL", "V", "KA")})


# --------------------------------------------------------------------------- against the ODE
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "mode"), CASES)
def test_single_dose_matches_ode(name: str, mode: str, seed: int) -> None:
    model = PK_MODELS[name]
    theta = draw_theta(model, seed)
    records = make_records([0.0], mode)
    expected = ode_concentration(model.reference_system(theta), records, SINGLE_TIMES)
    assert_close(closed_form(model, records, SINGLE_TIMES, theta), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "mode"), CASES)
def test_three_doses_match_ode(name: str, mode: str, seed: int) -> None:
    model = PK_MODELS[name]
    theta = draw_theta(model, seed)
    records = make_records(MULTI_DOSE_TIMES, mode)
    expected = ode_concentration(model.reference_system(theta), records, MULTI_TIMES)
    actual = closed_form(model, records, MULTI_TIMES, theta)
    before_first = np.less(MULTI_TIMES, min(MULTI_DOSE_TIMES))
    assert np.all(actual[before_first] == 0.0)
    assert_close(actual, expected)


@pytest.mark.parametrize("name", [n for n, m in PK_MODELS.items() if m.route == "iv"])
def test_short_infusion_tends_to_bolus(name: str) -> None:
    model = PK_MODELS[name]
    theta = draw_theta(model, 0)
    t = np.array([[0.5, 1.0, 5.0]])
    cols = {p: np.array([[v]]) for p, v in theta.items()}
    bolus = model.unit_response(t, np.zeros_like(t), cols, np)
    short = model.unit_response(t, np.full_like(t, 1e-7), cols, np)
    np.testing.assert_allclose(short, bolus, rtol=1e-6)


# --------------------------------------------------------------------------- parametrizations
@pytest.mark.parametrize("seed", SEEDS)
def test_ke_parametrization_is_oral_1cmt(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ke, ka, cl = rng.uniform(0.05, 0.5), rng.uniform(0.3, 3.0), rng.uniform(0.5, 5.0)
    records = make_records(MULTI_DOSE_TIMES, "bolus")
    a = closed_form(PK_MODELS["oral_1cmt_ke"], records, MULTI_TIMES, {"KE": ke, "KA": ka, "CL": cl})
    b = closed_form(
        PK_MODELS["oral_1cmt"], records, MULTI_TIMES, {"CL": cl, "V": cl / ke, "KA": ka}
    )
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_oral_absorption_equal_to_elimination_is_finite_and_exact() -> None:
    cl, v = 2.0, 20.0
    k = cl / v
    t = np.array([0.0, 0.5, 1.0, 4.0, 24.0, 200.0])
    doses = DoseMatrices(t[:, None], np.ones((t.size, 1)), np.zeros((t.size, 1)), np.ones((6, 1)))
    theta = {"CL": np.full(6, cl), "V": np.full(6, v), "KA": np.full(6, k)}
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        c = concentration("oral_1cmt", doses, theta)
    np.testing.assert_allclose(c, k * t * np.exp(-k * t) / v, rtol=1e-12, atol=1e-300)
    near = dict(theta, KA=np.full(6, k * (1 + 1e-9)))
    np.testing.assert_allclose(concentration("oral_1cmt", doses, near), c, rtol=1e-7)


# --------------------------------------------------------------------------- pytensor
def mixed_layout(model: PKModel) -> tuple[DoseMatrices, np.ndarray]:
    """Two subjects: three doses (bolus, infusion, bolus for IV) and one dose (padding)."""
    mode = "mixed" if model.route == "iv" else "bolus"
    table = DosingTable(
        (*make_records(MULTI_DOSE_TIMES, mode, "a"), *make_records([1.0], mode, "b"))
    )
    times = np.concatenate([MULTI_TIMES, [0.0, 0.5, 1.0, 2.0, 3.0, 10.0]])
    subjects = ["a"] * MULTI_TIMES.size + ["b"] * 6
    return dose_matrices(table, subjects, times), times


@pytest.mark.parametrize("name", list(PK_MODELS))
def test_pytensor_matches_numpy_with_finite_gradient(name: str) -> None:
    import pytensor
    import pytensor.tensor as pt

    model = PK_MODELS[name]
    theta = draw_theta(model, 7)
    doses, times = mixed_layout(model)
    n = times.size
    scalars = {p: pt.dscalar(p) for p in model.params}
    symbolic = {p: s * pt.ones((n,)) for p, s in scalars.items()}
    conc = concentration(model, doses, symbolic, pt)
    values = {scalars[p]: theta[p] for p in model.params}
    expected = concentration(model, doses, {p: np.full(n, v) for p, v in theta.items()}, np)
    np.testing.assert_allclose(conc.eval(values), expected, rtol=1e-12, atol=1e-14)

    wrt = [scalars[p] for p in model.params]
    grad = pytensor.function(wrt, pt.grad(conc.sum(), wrt))(*(theta[p] for p in model.params))
    grad = np.asarray(grad, dtype=float)
    assert np.all(np.isfinite(grad))

    def total(p: str, value: float) -> float:
        params = {q: np.full(n, value if q == p else theta[q]) for q in model.params}
        return float(np.sum(concentration(model, doses, params, np)))

    for p, g in zip(model.params, grad, strict=True):
        h = 1e-6 * theta[p]
        fd = (total(p, theta[p] + h) - total(p, theta[p] - h)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8, err_msg=p)


def test_pytensor_gradient_at_equal_rates_is_exact() -> None:
    import pytensor
    import pytensor.tensor as pt

    cl, v = 2.0, 20.0
    t = np.array([0.5, 1.0, 4.0, 24.0])
    doses = DoseMatrices(t[:, None], np.ones((4, 1)), np.zeros((4, 1)), np.ones((4, 1)))
    ka = pt.dscalar("KA")
    conc = concentration(
        "oral_1cmt", doses, {"CL": np.full(4, cl), "V": np.full(4, v), "KA": ka * pt.ones((4,))}, pt
    )
    g = float(pytensor.function([ka], pt.grad(conc.sum(), ka))(cl / v))
    h = 1e-6

    def total(value: float) -> float:
        theta = {"CL": np.full(4, cl), "V": np.full(4, v), "KA": np.full(4, value)}
        return float(np.sum(concentration("oral_1cmt", doses, theta)))

    fd = (total(cl / v + h) - total(cl / v - h)) / (2 * h)
    assert np.isfinite(g)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
