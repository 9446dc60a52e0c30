"""Individual and population trajectories from a fit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

import mixedbayes as mb
from mixedbayes.results.trajectories import Trajectories, trajectories

plt.switch_backend("Agg")

CHAINS, DRAWS = 2, 30


def random_posterior_fit(design: mb.Design, seed: int) -> mb.Fit:
    """A Fit with made-up draws of every variable predictions use (no sampling)."""
    rng = np.random.default_rng(seed)
    p = len(design.fixed_terms)
    data = {
        "b": xr.DataArray(
            rng.normal(1.0, 1.0, (CHAINS, DRAWS, p)),
            dims=("chain", "draw", "term"),
            coords={"term": list(design.fixed_terms)},
        ),
        "sigma": xr.DataArray(np.ones((CHAINS, DRAWS)), dims=("chain", "draw")),
    }
    for g in design.groups:
        k = len(g.terms)
        data[f"r_{g.name}"] = xr.DataArray(
            rng.normal(0.0, 1.0, (CHAINS, DRAWS, g.n_levels, k)),
            dims=("chain", "draw", g.dim, g.term_dim),
            coords={g.dim: list(g.levels), g.term_dim: list(g.terms)},
        )
        data[f"sd_{g.name}"] = xr.DataArray(
            np.ones((CHAINS, DRAWS, k)), dims=("chain", "draw", g.term_dim)
        )
    post = xr.Dataset(data, coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)})
    tree = xr.DataTree.from_dict({"posterior": post})
    return mb.Fit(tree, design.spec, design, None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sleep_fake(sleepstudy: pd.DataFrame) -> mb.Fit:
    design = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    return random_posterior_fit(design, seed=1)


def test_curves_match_the_draws(sleep_fake: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    tr = trajectories(sleep_fake, ["335", "308"], prob=0.8)
    assert isinstance(tr, Trajectories)
    assert (tr.group, tr.time, tr.response) == ("Subject", "Days", "Reaction")
    assert tr.levels == ["335", "308"]
    days = np.arange(10.0)
    ind = tr.individual
    assert list(ind.columns) == ["level", "time", "mean", "lower", "upper", "population_mean"]
    assert len(ind) == 20
    post = sleep_fake.posterior
    b = post["b"].transpose("chain", "draw", "term").to_numpy().reshape(-1, 2)
    for level in ("335", "308"):
        cur = ind[ind["level"] == level]
        np.testing.assert_array_equal(cur["time"], days)
        r = post["r_Subject"].sel(Subject=level).transpose("chain", "draw", ...).to_numpy()
        r = r.reshape(-1, 2)
        curve = (b[:, [0]] + r[:, [0]]) + (b[:, [1]] + r[:, [1]]) * days  # draws x days
        np.testing.assert_allclose(cur["mean"], curve.mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(cur["lower"], np.quantile(curve, 0.1, axis=0), rtol=1e-10)
        np.testing.assert_allclose(cur["upper"], np.quantile(curve, 0.9, axis=0), rtol=1e-10)
        pop = (b[:, [0]] + b[:, [1]] * days).mean(axis=0)
        np.testing.assert_allclose(cur["population_mean"], pop, rtol=1e-10)
        assert (cur["lower"] <= cur["mean"]).all() and (cur["mean"] <= cur["upper"]).all()
    np.testing.assert_array_equal(tr.population["time"], days)
    np.testing.assert_allclose(
        tr.population["mean"], (b[:, [0]] + b[:, [1]] * days).mean(axis=0), rtol=1e-10
    )
    obs = tr.observed
    assert list(obs["level"].unique()) == ["335", "308"]
    mine = sleepstudy[sleepstudy["Subject"] == "308"].sort_values("Days")
    got = obs[obs["level"] == "308"].sort_values("time")
    np.testing.assert_allclose(got["y"], mine["Reaction"])
    np.testing.assert_allclose(got["time"], mine["Days"])


def test_default_levels_grid_and_plot(sleep_fake: mb.Fit) -> None:
    tr = trajectories(sleep_fake, max_groups=5)
    g = sleep_fake.design.groups[0]
    assert tr.levels == list(g.levels[:5])
    tr2 = trajectories(sleep_fake, ["309"], at=[0.5, 20.0])
    np.testing.assert_array_equal(tr2.individual["time"], [0.5, 20.0])
    fig = tr.plot(ncols=2)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    assert fig.axes[0].get_title().endswith(g.levels[0])
    plt.close(fig)


def test_unknown_levels_and_bad_arguments(sleep_fake: mb.Fit) -> None:
    with pytest.raises(mb.DataError, match=r"999.*\n?.*308") as info:
        trajectories(sleep_fake, ["308", "999", "abc"])
    assert "abc" in str(info.value)
    with pytest.raises(mb.SpecError, match="no grouping factor"):
        trajectories(sleep_fake, group="Patient")
    with pytest.raises(mb.DataError, match="time column"):
        trajectories(sleep_fake, time="Hours")
    with pytest.raises(mb.SpecError, match="prob"):
        trajectories(sleep_fake, prob=0.0)


def test_no_time_column_asks_for_time() -> None:
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"y": rng.normal(size=30), "g": np.repeat(["a", "b", "c"], 10)})
    fit = random_posterior_fit(mb.design(mb.LMM("y ~ 1 + (1 | g)"), data), seed=2)
    with pytest.raises(mb.SpecError, match="time="):
        trajectories(fit)


def test_continuous_times_give_a_25_point_grid() -> None:
    rng = np.random.default_rng(6)
    data = pd.DataFrame(
        {"t": rng.uniform(1, 5, size=60), "g": np.repeat([f"s{i}" for i in range(6)], 10)}
    )
    data["y"] = 2 * data["t"] + rng.normal(size=60)
    fit = random_posterior_fit(mb.design(mb.LMM("y ~ t + (1 | g)"), data), seed=3)
    tr = trajectories(fit)
    assert tr.time == "t"
    grid = tr.population["time"].to_numpy()
    assert grid.size == 25
    assert grid[0] == pytest.approx(data["t"].min()) and grid[-1] == pytest.approx(data["t"].max())
    assert len(tr.individual) == 6 * 25


def test_nested_factor_keeps_the_parent_level() -> None:
    sim = mb.simulate.lmm(n_clinics=3, patients_per_clinic=4, n_times=5, seed=1)
    design = mb.design(mb.LMM(sim.formula), sim.data)
    fit = random_posterior_fit(design, seed=4)
    tr = trajectories(fit, max_groups=3)
    assert (tr.group, tr.time) == ("clinic:patient", "time")
    assert tr.levels == ["c01:c01p01", "c01:c01p02", "c01:c01p03"]
    post = fit.posterior
    t = np.arange(5.0)
    for level in tr.levels:
        clinic = level.split(":")[0]
        rc = post["r_clinic"].sel(clinic=clinic).to_numpy()[..., 0].reshape(-1, 1)
        rp = post["r_clinic:patient"].sel({"clinic:patient": level})
        rp = rp.transpose("chain", "draw", ...).to_numpy().reshape(-1, 2)
        effect = (rc + rp[:, [0]] + rp[:, [1]] * t).mean(axis=0)
        cur = tr.individual[tr.individual["level"] == level]
        np.testing.assert_allclose(cur["mean"] - cur["population_mean"], effect, atol=1e-9)
    # the overall population curve is at the covariate means
    draws = post["b"].transpose("chain", "draw", "term").to_numpy().reshape(-1, 7)
    b = pd.DataFrame(draws, columns=list(design.fixed_terms))
    trt, age, dose = (sim.data[c].mean() for c in ("trt", "age", "dose"))
    x = {
        "Intercept": np.ones(5),
        "trt": np.full(5, trt),
        "time": t,
        "trt:time": trt * t,
        "age": np.full(5, age),
        "age:time": age * t,
        "dose": np.full(5, dose),
    }
    expected = sum(np.outer(b[name], x[name]) for name in design.fixed_terms).mean(axis=0)
    np.testing.assert_allclose(tr.population["mean"], expected, rtol=1e-10)


# --------------------------------------------------------------------------- real fit


@pytest.mark.slow
def test_sleepstudy_trajectories(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    tr = trajectories(sleep_fit, max_groups=18)
    assert len(tr.levels) == 18
    assert len(tr.individual) == 18 * 10
    assert (tr.individual.groupby("level").size() == 10).all()
    ind = tr.individual
    assert (ind["lower"] <= ind["mean"]).all() and (ind["mean"] <= ind["upper"]).all()
    assert (ind["lower"] < ind["upper"]).all()
    fitted = sleep_fit.predict().mean(("chain", "draw")).to_numpy()
    data = sleep_fit.design.data.assign(fitted=fitted)
    merged = ind.merge(
        data.assign(level=data["Subject"].astype(str), time=data["Days"].astype(float)),
        on=["level", "time"],
    )
    assert len(merged) == 180
    np.testing.assert_allclose(merged["mean"], merged["fitted"], rtol=1e-8)
    # individual curves differ from the population curve; the population curve is one line
    assert (ind["mean"] - ind["population_mean"]).abs().max() > 10
    assert len(tr.population) == 10
    assert len(tr.observed) == 180
    fig = tr.plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 18
    plt.close(fig)
    with pytest.raises(mb.DataError, match="9999"):
        trajectories(sleep_fit, ["9999"])
