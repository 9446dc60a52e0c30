"""Shrinkage: no pooling, complete pooling, partial pooling, shrinkage factor and %."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import quiet_fit
from matplotlib.figure import Figure

import mixedbayes as mb
from mixedbayes.results.shrinkage import Shrinkage, shrinkage

plt.switch_backend("Agg")

CHAINS, DRAWS = 2, 40


def posterior_fit(
    design: mb.Design, b: np.ndarray, r: dict[str, np.ndarray], sd: dict[str, np.ndarray]
) -> mb.Fit:
    """A Fit whose posterior holds the given draws (chain, draw, ...), no sampling."""
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)}
    data = {
        "b": xr.DataArray(
            b, dims=("chain", "draw", "term"), coords={"term": list(design.fixed_terms)}
        ),
        "sigma": xr.DataArray(np.ones((CHAINS, DRAWS)), dims=("chain", "draw")),
    }
    for g in design.groups:
        data[f"r_{g.name}"] = xr.DataArray(
            r[g.name],
            dims=("chain", "draw", g.dim, g.term_dim),
            coords={g.dim: list(g.levels), g.term_dim: list(g.terms)},
        )
        data[f"sd_{g.name}"] = xr.DataArray(
            sd[g.name], dims=("chain", "draw", g.term_dim), coords={g.term_dim: list(g.terms)}
        )
    post = xr.Dataset(data, coords=coords)
    return mb.Fit(xr.DataTree.from_dict({"posterior": post}), design.spec, design, None)  # type: ignore[arg-type]


def centred_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Noise whose mean over (chain, draw) is exactly 0."""
    e = rng.normal(size=(CHAINS, DRAWS, *shape))
    return e - e.mean(axis=(0, 1))


def per_subject_ols(data: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(intercept, slope) of Reaction on Days per subject, with numpy.polyfit."""
    out = {}
    for subject, rows in data.groupby("Subject", observed=True):
        slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
        out[str(subject)] = (float(intercept), float(slope))
    return out


@pytest.fixture(scope="module")
def sleep_design(sleepstudy: pd.DataFrame) -> mb.Design:
    return mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)


def test_estimates_and_factor_on_known_draws(
    sleep_design: mb.Design, sleepstudy: pd.DataFrame
) -> None:
    rng = np.random.default_rng(1)
    g = sleep_design.groups[0]
    ols = per_subject_ols(sleepstudy)
    slope, intercept = np.polyfit(sleepstudy["Days"], sleepstudy["Reaction"], 1)
    complete = np.array([intercept, slope])
    no_pool = np.array([ols[lv] for lv in g.levels])
    lam = np.linspace(0.1, 0.9, g.n_levels)[:, None]  # the shrinkage factor we build in
    b = complete + centred_noise(rng, (2,))
    r = (1 - lam) * (no_pool - complete) + centred_noise(rng, (g.n_levels, 2))
    sd = np.abs(rng.normal(20, 2, size=(CHAINS, DRAWS, 2)))
    fit = posterior_fit(sleep_design, b, {"Subject": r}, {"Subject": sd})

    s = shrinkage(fit, prob=0.9)
    assert isinstance(s, Shrinkage)
    lv = s.levels.set_index(["level", "term"])
    assert len(lv) == 36
    for j, level in enumerate(g.levels):
        for k, term in enumerate(("Intercept", "Days")):
            row = lv.loc[(level, term)]
            assert row["n_rows"] == 10
            assert row["no_pooling"] == pytest.approx(no_pool[j, k], rel=1e-9, abs=1e-9)
            assert row["complete_pooling"] == pytest.approx(complete[k], rel=1e-9)
            expected_mean = complete[k] + (1 - lam[j, 0]) * (no_pool[j, k] - complete[k])
            assert row["partial_mean"] == pytest.approx(expected_mean, rel=1e-9)
            assert row["shrinkage_factor"] == pytest.approx(lam[j, 0], abs=1e-8)
            assert row["partial_lower"] < row["partial_mean"] < row["partial_upper"]
    # 90% interval of the draws b + r, computed directly
    draws = (b[:, :, 1] + r[:, :, 0, 1]).ravel()
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert lv.loc[(g.levels[0], "Days"), "partial_lower"] == pytest.approx(lo)
    assert lv.loc[(g.levels[0], "Days"), "partial_upper"] == pytest.approx(hi)

    terms = s.terms.set_index("term")
    for k, term in enumerate(("Intercept", "Days")):
        spread = np.std(r.mean(axis=(0, 1))[:, k], ddof=1)
        expected = 100 * (1 - spread / sd[..., k].mean())
        assert terms.loc[term, "shrinkage_pct"] == pytest.approx(expected)
        assert terms.loc[term, "n_levels"] == 18
    text = str(s)
    assert "Intercept" in text and "Days" in text and "Savic" in text


def test_term_without_fixed_counterpart_and_unidentifiable_level(
    sleepstudy: pd.DataFrame,
) -> None:
    rng = np.random.default_rng(2)
    short = sleepstudy[(sleepstudy["Subject"] != "309") | (sleepstudy["Days"] < 2)]
    design = mb.design(mb.LMM("Reaction ~ 1 + (1 + Days | Subject)"), short)
    g = design.groups[0]
    assert design.fixed_terms == ("Intercept",)
    b = 300 + rng.normal(size=(CHAINS, DRAWS, 1))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 2))
    sd = np.ones((CHAINS, DRAWS, 2))
    s = shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}))
    lv = s.levels.set_index(["level", "term"])
    # no fixed Days: complete pooling of the deviation is 0, partial pooling is r alone
    assert (lv.xs("Days", level="term")["complete_pooling"] == 0).all()
    days = g.terms.index("Days")
    assert lv.loc[("308", "Days"), "partial_mean"] == pytest.approx(
        r[:, :, g.levels.index("308"), days].mean()
    )
    assert lv.loc[("308", "Intercept"), "partial_mean"] == pytest.approx(
        (b[..., 0] + r[:, :, g.levels.index("308"), 0]).mean()
    )
    assert lv.loc[("308", "Intercept"), "complete_pooling"] == pytest.approx(
        short["Reaction"].mean()
    )
    # nothing is subtracted (the only fixed column is matched): no pooling is per-subject OLS
    ols = per_subject_ols(short)
    assert lv.loc[("308", "Intercept"), "no_pooling"] == pytest.approx(ols["308"][0])
    assert lv.loc[("308", "Days"), "no_pooling"] == pytest.approx(ols["308"][1])
    # 309 has 2 rows for 2 terms: no no-pooling estimate, no factor
    assert lv.loc[("309", "Intercept"), "n_rows"] == 2
    assert np.isnan(lv.loc[("309", "Intercept"), "no_pooling"])
    assert np.isnan(lv.loc[("309", "Days"), "shrinkage_factor"])
    assert lv.drop(index="309", level="level")["no_pooling"].notna().all()
    assert "without a no-pooling estimate" in str(s)


def test_no_pooling_subtracts_unmatched_fixed_columns(sleepstudy: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    design = mb.design(mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    g = design.groups[0]
    b = np.array([250.0, 10.0]) + rng.normal(size=(CHAINS, DRAWS, 2))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 1))
    sd = np.ones((CHAINS, DRAWS, 1))
    s = shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), group="Subject")
    slope, intercept = np.polyfit(sleepstudy["Days"], sleepstudy["Reaction"], 1)
    rows = sleepstudy[sleepstudy["Subject"] == "335"]
    expected = float((rows["Reaction"] - slope * rows["Days"]).mean())
    row = s.levels.set_index("level").loc["335"]
    assert row["term"] == "Intercept"
    assert row["no_pooling"] == pytest.approx(expected)
    assert row["complete_pooling"] == pytest.approx(intercept)

    fig = s.plot()  # one term: a 1-D panel against rows per level
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(mb.SpecError, match="no grouping factor"):
        shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), group="Days")
    with pytest.raises(mb.SpecError, match="prob"):
        shrinkage(posterior_fit(design, b, {"Subject": r}, {"Subject": sd}), prob=1.5)


def test_plots(sleep_design: mb.Design) -> None:
    rng = np.random.default_rng(4)
    g = sleep_design.groups[0]
    b = np.array([250.0, 10.0]) + rng.normal(size=(CHAINS, DRAWS, 2))
    r = rng.normal(size=(CHAINS, DRAWS, g.n_levels, 2))
    sd = np.ones((CHAINS, DRAWS, 2))
    s = shrinkage(posterior_fit(sleep_design, b, {"Subject": r}, {"Subject": sd}))
    fig = s.plot()  # intercept and one slope: a single 2-D panel
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].get_xlabel().startswith("Intercept")
    assert fig.axes[0].get_ylabel().startswith("Days")
    assert len(fig.axes[0].texts) == 18  # one arrow per level
    plt.close(fig)
    fig, ax = plt.subplots()
    assert s.plot(term="Days", ax=ax) is fig
    assert ax.get_ylabel() == "Days"
    plt.close(fig)
    with pytest.raises(mb.SpecError, match="term"):
        s.plot(term="Age")


# --------------------------------------------------------------------------- fits


@pytest.fixture(scope="module")
def unbalanced_fit() -> tuple[mb.Fit, list[str], list[str]]:
    """y ~ 1 + (1 | g): 10 levels with 2 rows, 10 with 40; sd of effects 1, sigma 1."""
    rng = np.random.default_rng(2024)
    sizes = [2] * 10 + [40] * 10
    effects = rng.normal(0.0, 1.0, len(sizes))
    frames = [
        pd.DataFrame({"g": f"L{j:02d}", "y": 3.0 + effects[j] + rng.normal(0.0, 1.0, n)})
        for j, n in enumerate(sizes)
    ]
    data = pd.concat(frames, ignore_index=True)
    fit = quiet_fit(mb.LMM("y ~ 1 + (1 | g)"), data, draws=500, tune=500, chains=2, seed=5)
    small = [f"L{j:02d}" for j, n in enumerate(sizes) if n == 2]
    large = [f"L{j:02d}" for j, n in enumerate(sizes) if n == 40]
    return fit, small, large


@pytest.mark.slow
def test_few_rows_shrink_more(unbalanced_fit: tuple[mb.Fit, list[str], list[str]]) -> None:
    fit, small, large = unbalanced_fit
    s = shrinkage(fit)
    lv = s.levels.set_index("level")
    assert set(lv.loc[small, "n_rows"]) == {2}
    assert set(lv.loc[large, "n_rows"]) == {40}
    f = lv["shrinkage_factor"]
    assert f.notna().all()
    assert f.loc[small].mean() > f.loc[large].mean() + 0.1
    assert f.loc[small].median() > f.loc[large].max()
    assert ((f >= 0) & (f <= 1)).mean() >= 0.8
    # a level with few rows has a wider posterior interval
    width = lv["partial_upper"] - lv["partial_lower"]
    assert width.loc[small].mean() > 2 * width.loc[large].mean()
    pct = float(s.terms["shrinkage_pct"].iloc[0])
    assert 0 < pct < 100


@pytest.mark.slow
def test_sleepstudy_shrinkage(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    s = shrinkage(sleep_fit)
    terms = s.terms.set_index("term")
    assert list(terms.index) == ["Intercept", "Days"]
    assert ((terms["shrinkage_pct"] > 0) & (terms["shrinkage_pct"] < 100)).all()
    assert (terms["n_levels"] == 18).all()
    intercept, slope = per_subject_ols(sleepstudy)["308"]
    lv = s.levels.set_index(["level", "term"])
    assert lv.loc[("308", "Intercept"), "no_pooling"] == pytest.approx(intercept, rel=1e-9)
    assert lv.loc[("308", "Days"), "no_pooling"] == pytest.approx(slope, rel=1e-9)
    assert (lv["partial_lower"] < lv["partial_mean"]).all()
    assert (lv["partial_mean"] < lv["partial_upper"]).all()
    fig = s.plot()
    assert isinstance(fig, Figure)
    plt.close(fig)
