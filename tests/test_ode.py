"""ODE right-hand sides as expressions, solved with RK4 inside the pytensor graph."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pytest

from mixedbayes.errors import DataError, SpecError
from mixedbayes.pk.ode import ODEGrid, ODESystem, observe, ode_grid, parse_ode, solve_ode

ORAL = {"A_gut": "-KA * A_gut", "A_c": "KA * A_gut - CL / V * A_c"}
KA, CL, V, DOSE = 1.3, 2.0, 20.0, 100.0
OBS = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 13.0, 18.0, 24.0, 30.0, 36.0, 48.0])


def closed_form(t: np.ndarray, dose_times: Sequence[float], ka: float = KA) -> np.ndarray:
    """One-compartment oral concentration, summed over the doses strictly before ``t``."""
    k = CL / V
    conc = np.zeros_like(t, dtype=float)
    for td in dose_times:
        dt = np.clip(t - td, 0.0, None)
        conc += np.where(
            t > td, DOSE * ka / (V * (ka - k)) * (np.exp(-k * dt) - np.exp(-ka * dt)), 0.0
        )
    return conc


def concentrations(
    grid: ODEGrid, theta: dict[str, object] | None = None, substeps: int = 16
) -> np.ndarray:
    import pytensor.tensor as pt

    system = parse_ode(ORAL)
    n = grid.n_subjects
    theta = theta or {
        p: pt.as_tensor(np.full(n, v)) for p, v in zip(("KA", "CL", "V"), (KA, CL, V), strict=True)
    }
    states = solve_ode(system, grid, theta, substeps=substeps)
    return np.asarray((observe(states, grid)[:, 1] / V).eval())


# --- parsing ------------------------------------------------------------------------------


def test_parse_ode_states_rhs_and_parameters() -> None:
    system = parse_ode({**ORAL, "AUC": "A_c / V + 0 * t"})
    assert isinstance(system, ODESystem)
    assert system.states == ("A_gut", "A_c", "AUC")
    assert system.parameters == ("KA", "CL", "V")
    assert system.rhs[1].where == "ode.rhs.A_c"
    assert system.state_index("A_c") == 1
    with pytest.raises(SpecError, match="unknown state 'B'"):
        system.state_index("B")


def test_empty_system() -> None:
    with pytest.raises(SpecError, match="empty"):
        parse_ode({})
    with pytest.raises(SpecError, match="mapping"):
        parse_ode(["-KA * A"])  # type: ignore[arg-type]


def test_parse_errors_name_the_state() -> None:
    with pytest.raises(SpecError) as err:
        parse_ode({"A_gut": "-KA * A_gut", "A_c": "KA * A_gut[0]", "B": "os.system('x')"})
    assert err.value.where == ["ode.rhs.A_c", "ode.rhs.B"]
    message = str(err.value)
    assert "state 'A_c'" in message and "subscript" in message
    assert "state 'B'" in message and "attribute access" in message


@pytest.mark.parametrize(
    ("state", "reason"),
    [("t", "time"), ("exp", "function"), ("2x", "not a valid name"), ("for", "not a valid")],
)
def test_bad_state_names(state: str, reason: str) -> None:
    with pytest.raises(SpecError, match=reason) as err:
        parse_ode({state: "-k * A"}, where="model.ode")
    assert err.value.where == [f"model.ode.{state}"]


def test_non_text_rhs_names_the_state() -> None:
    with pytest.raises(SpecError, match="state 'A'") as err:
        parse_ode({"A": ["-k * A"]})  # type: ignore[dict-item]
    assert err.value.where == ["ode.rhs.A"]
    assert parse_ode({"A": 0}).parameters == ()  # type: ignore[dict-item]


def test_missing_theta_names_parameters() -> None:
    grid = ode_grid(["a"], ["a"], np.array([1.0]), [("a", 0.0, 1.0)], 0, 2)
    with pytest.raises(SpecError, match="'CL', 'V'"):
        solve_ode(parse_ode(ORAL), grid, {"KA": 1.0})


# --- the grid -----------------------------------------------------------------------------


def test_grid_union_padding_doses_and_positions() -> None:
    grid = ode_grid(
        ["a", "b"],
        ["a", "a", "b", "a"],
        np.array([2.0, 12.0, 1.0, 12.0]),
        [("a", 0.0, 100.0), ("a", 12.0, 50.0), ("a", 12.0, 25.0), ("b", 0.5, 10.0)],
        dose_state=0,
        n_states=2,
    )
    np.testing.assert_array_equal(grid.times, [[0, 2, 12], [0, 0.5, 1]])
    np.testing.assert_array_equal(grid.n_points, [3, 3])
    assert grid.dose_amount.shape == (2, 3, 2)
    np.testing.assert_array_equal(grid.dose_amount[..., 0], [[100, 0, 75], [0, 10, 0]])
    assert not grid.dose_amount[..., 1].any()
    np.testing.assert_array_equal(grid.obs_subject, [0, 0, 1, 0])
    np.testing.assert_array_equal(grid.obs_position, [1, 2, 2, 2])

    short = ode_grid(["a", "b"], ["a", "a", "a"], np.array([1.0, 2.0, 3.0]), [], 0, 1)
    np.testing.assert_array_equal(short.times, [[0, 1, 2, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(short.n_points, [4, 1])


def test_grid_data_errors() -> None:
    with pytest.raises(DataError) as err:
        ode_grid(
            ["a"],
            ["a", "z"],
            np.array([1.0, -1.0]),
            [("q", 0.0, 1.0), ("a", np.nan, 1.0)],
            0,
            2,
        )
    assert {"obs_subjects", "obs_times", "doses[0]", "doses[1]"} <= set(err.value.where)
    with pytest.raises(ValueError, match="dose_state"):
        ode_grid(["a"], ["a"], np.array([1.0]), [], 2, 2)


# --- the solution -------------------------------------------------------------------------


def test_single_dose_matches_closed_form() -> None:
    grid = ode_grid(["a", "b"], ["a"] * OBS.size, OBS, [("a", 0.0, DOSE), ("b", 0.0, DOSE)], 0, 2)
    conc = concentrations(grid)
    np.testing.assert_allclose(conc, closed_form(OBS, [0.0]), rtol=1e-4)


def test_three_doses_every_12h_match_closed_form() -> None:
    doses = [("a", t, DOSE) for t in (0.0, 12.0, 24.0)]
    grid = ode_grid(["a"], ["a"] * OBS.size, OBS, doses, 0, 2)
    conc = concentrations(grid)
    np.testing.assert_allclose(conc, closed_form(OBS, [0.0, 12.0, 24.0]), rtol=1e-4)


def test_subjects_differ_and_have_their_own_grids() -> None:
    import pytensor.tensor as pt

    obs_a = np.array([1.0, 5.0, 10.0])
    obs_b = np.array([0.5, 2.0, 7.0, 20.0, 26.0])
    grid = ode_grid(
        ["a", "b"],
        ["a"] * 3 + ["b"] * 5,
        np.r_[obs_a, obs_b],
        [("a", 0.0, DOSE), ("b", 0.0, DOSE), ("b", 24.0, DOSE)],
        0,
        2,
    )
    ka = np.array([0.8, 2.5])
    theta = {"KA": pt.as_tensor(ka), "CL": CL, "V": V}
    conc = concentrations(grid, theta)
    np.testing.assert_allclose(conc[:3], closed_form(obs_a, [0.0], ka=0.8), rtol=1e-4)
    np.testing.assert_allclose(conc[3:], closed_form(obs_b, [0.0, 24.0], ka=2.5), rtol=1e-4)


def test_observation_at_dose_time_sees_pre_dose_state() -> None:
    import pytensor.tensor as pt

    obs = np.array([0.0, 12.0, 12.5])
    grid = ode_grid(["a"], ["a"] * 3, obs, [("a", 0.0, DOSE), ("a", 12.0, DOSE)], 0, 2)
    theta = {"KA": pt.as_tensor([KA]), "CL": pt.as_tensor([CL]), "V": pt.as_tensor([V])}
    states = observe(solve_ode(parse_ode(ORAL), grid, theta, substeps=16), grid).eval()
    np.testing.assert_array_equal(states[0], [0.0, 0.0])  # the dose at 0 is not seen at 0
    assert states[1, 0] < 1e-3  # pre-dose: the gut is empty, not holding the second dose
    np.testing.assert_allclose(states[1, 1] / V, closed_form(obs[1:2], [0.0]), rtol=1e-4)
    np.testing.assert_allclose(states[2, 0], DOSE * np.exp(-KA * 0.5), rtol=1e-4)
    np.testing.assert_allclose(states[2, 1] / V, closed_form(obs[2:], [0.0, 12.0]), rtol=1e-4)


def test_gradients_wrt_theta_are_finite() -> None:
    import pytensor
    import pytensor.tensor as pt

    grid = ode_grid(["a", "b"], ["a", "a", "b"], np.array([1.0, 4.0, 2.0]), [("a", 0, DOSE)], 0, 2)
    ka, cl, v = pt.dvector("KA"), pt.dvector("CL"), pt.dscalar("V")
    states = solve_ode(parse_ode(ORAL), grid, {"KA": ka, "CL": cl, "V": v}, substeps=16)
    total = (observe(states, grid)[:, 1] / v).sum()
    f = pytensor.function([ka, cl, v], [total, *pytensor.grad(total, [ka, cl, v])])
    point = (np.array([KA, 1.0]), np.array([CL, 1.0]), V)
    _, g_ka, g_cl, g_v = f(*point)
    assert np.all(np.isfinite(g_ka)) and np.all(np.isfinite(g_cl)) and np.isfinite(g_v)
    # Subject b has no dose: its parameters do not matter.
    assert g_ka[1] == 0.0 and g_cl[1] == 0.0
    eps = 1e-6
    up = f(np.array([KA + eps, 1.0]), point[1], V)[0]
    down = f(np.array([KA - eps, 1.0]), point[1], V)[0]
    np.testing.assert_allclose(g_ka[0], (up - down) / (2 * eps), rtol=1e-5)


def test_time_dependent_rhs_and_constant_rhs() -> None:
    # dA/dt = t (A = t^2 / 2); dB/dt = 1 (B = t).
    grid = ode_grid(["a"], ["a", "a"], np.array([1.0, 3.0]), [], 0, 2)
    states = observe(solve_ode(parse_ode({"A": "t", "B": "1"}), grid, {}, substeps=2), grid)
    np.testing.assert_allclose(states.eval(), [[0.5, 1.0], [4.5, 3.0]], rtol=1e-12)


def test_grid_with_only_time_zero() -> None:
    grid = ode_grid(["a"], ["a"], np.array([0.0]), [("a", 0.0, 1.0)], 0, 1)
    states = solve_ode(parse_ode({"A": "-k * A"}), grid, {"k": 1.0})
    assert states.eval().shape == (1, 1, 1)


@pytest.mark.slow
def test_ode_model_compiles_and_samples_with_nutpie() -> None:
    import nutpie
    import pymc as pm
    import pytensor.tensor as pt

    obs_t = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    times = np.r_[obs_t, obs_t]
    grid = ode_grid(
        ["a", "b"], ["a"] * 5 + ["b"] * 5, times, [("a", 0.0, DOSE), ("b", 0.0, DOSE)], 0, 2
    )
    rng = np.random.default_rng(1)
    y = closed_form(times, [0.0]) * np.exp(rng.normal(0.0, 0.1, times.size))
    with pm.Model() as model:
        log_ka = pm.Normal("log_ka", 0.0, 1.0)
        log_cl = pm.Normal("log_cl", 0.5, 1.0)
        log_v = pm.Normal("log_v", 3.0, 1.0)
        eta = pm.Normal("eta", 0.0, 0.3, shape=2)
        sigma = pm.HalfNormal("sigma", 0.5)
        vol = pt.exp(log_v) * pt.ones(2)
        theta = {"KA": pt.exp(log_ka) * pt.ones(2), "CL": pt.exp(log_cl + eta), "V": vol}
        states = solve_ode(parse_ode(ORAL), grid, theta, substeps=8)
        conc = observe(states, grid)[:, 1] / vol[grid.obs_subject]
        pm.LogNormal("y", pt.log(conc), sigma, observed=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        compiled = nutpie.compile_pymc_model(model)
        trace = nutpie.sample(compiled, draws=50, tune=50, chains=1, seed=1, progress_bar=False)
    assert trace.posterior["log_cl"].shape == (1, 50)
    assert np.all(np.isfinite(trace.posterior["log_ka"].values))
