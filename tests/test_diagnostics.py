"""Diagnostics: convergence gates on synthetic draws; LOO, comparison and PPC on real fits."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mixedbayes as mb
from mixedbayes.diagnostics import (
    ConvergenceWarning,
    Diagnostics,
    Gate,
    LooReport,
    compare,
    diagnose,
    loo,
    plot_ppc,
    ppc_stats,
    warn_if_bad,
)
from mixedbayes.diagnostics.gates import ebfmi_values

matplotlib.use("Agg")

CHAINS, DRAWS = 4, 1000
TERMS = ["Intercept", "Days"]


@dataclass
class FakeFit:
    """What the gates read of a Fit: the DataTree and the design."""

    idata: xr.DataTree
    design: mb.Design

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()


@pytest.fixture(scope="module")
def sleep_design(sleepstudy: pd.DataFrame) -> mb.Design:
    return mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)


def ar1(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> np.ndarray:
    """AR(1) draws along axis 1 with unit marginal variance."""
    noise = rng.normal(size=(shape[0], shape[1], *shape[2:]))
    out = np.empty_like(noise)
    out[:, 0] = noise[:, 0]
    scale = np.sqrt(1 - rho**2)
    for t in range(1, shape[1]):
        out[:, t] = rho * out[:, t - 1] + scale * noise[:, t]
    return out


def make_tree(
    design: mb.Design,
    *,
    seed: int = 0,
    rho: float = 0.0,
    shift: dict[str, tuple[dict[str, Any], float]] | None = None,
    diverging: int = 0,
    treedepth_stat: str | None = "maxdepth_reached",
    treedepth_hits: int = 0,
    energy_walk: bool = False,
) -> FakeFit:
    """Synthetic posterior + sample_stats with the names of the sleepstudy model.

    ``shift`` maps a variable to (cell selection, amount) added to chain 0 only.
    """
    rng = np.random.default_rng(seed)
    subjects = [str(s) for s in design.groups[0].levels]
    n_sub = len(subjects)

    def draws(*cells: int) -> np.ndarray:
        return (
            ar1(rng, rho, (CHAINS, DRAWS, *cells))
            if rho
            else rng.normal(size=(CHAINS, DRAWS, *cells))
        )

    cor = np.empty((CHAINS, DRAWS, 2, 2))
    off = np.tanh(0.3 * draws())
    cor[..., 0, 0] = cor[..., 1, 1] = 1.0
    cor[..., 0, 1] = cor[..., 1, 0] = off
    post = xr.Dataset(
        {
            "b": (("chain", "draw", "term"), 250 + draws(2)),
            "sd_Subject": (("chain", "draw", "Subject_term"), np.exp(0.1 * draws(2))),
            "cor_Subject": (("chain", "draw", "Subject_term", "Subject_term2"), cor),
            "sigma": (("chain", "draw"), 25 + draws()),
            "r_Subject": (("chain", "draw", "Subject", "Subject_term"), draws(n_sub, 2)),
        },
        coords={
            "chain": np.arange(CHAINS),
            "draw": np.arange(DRAWS),
            "term": TERMS,
            "Subject_term": TERMS,
            "Subject_term2": TERMS,
            "Subject": subjects,
        },
    )
    for name, (sel, amount) in (shift or {}).items():
        post[name].loc[{"chain": 0, **sel}] += amount
    div = np.zeros(CHAINS * DRAWS, dtype=bool)
    div[rng.choice(div.size, size=diverging, replace=False)] = True
    hits = np.zeros(CHAINS * DRAWS, dtype=bool)
    hits[rng.choice(hits.size, size=treedepth_hits, replace=False)] = True
    energy = (
        np.cumsum(rng.normal(size=(CHAINS, DRAWS)), axis=1)
        if energy_walk
        else (rng.normal(size=(CHAINS, DRAWS)))
    )
    stats = {
        "diverging": (("chain", "draw"), div.reshape(CHAINS, DRAWS)),
        "energy": (("chain", "draw"), energy),
        "depth": (("chain", "draw"), np.full((CHAINS, DRAWS), 4)),
    }
    if treedepth_stat is not None:
        stats[treedepth_stat] = (("chain", "draw"), hits.reshape(CHAINS, DRAWS))
    sample_stats = xr.Dataset(stats, coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": sample_stats})
    return FakeFit(tree, design)


def statuses(d: Diagnostics) -> dict[str, str]:
    return {g.name: g.status for g in d.gates}


# -- convergence gates (no sampling) ---------------------------------------------------------


def test_good_chains_pass_every_gate(sleep_design: mb.Design) -> None:
    d = diagnose(make_tree(sleep_design))
    assert set(statuses(d)) == {
        "rhat",
        "rhat_all",
        "ess_bulk",
        "ess_tail",
        "divergences",
        "treedepth",
        "ebfmi",
    }
    assert d.ok, str(d)
    assert d.failed == () and d.warned == ()
    assert all(isinstance(g, Gate) for g in d.gates)
    # the constant diagonal of cor_Subject is not checked (its R-hat is NaN)
    assert np.isfinite(d["rhat"].value) and np.isfinite(d["rhat_all"].value)
    assert d["ess_bulk"].threshold == 100 * CHAINS
    assert "diag" not in d["rhat"].parameter
    frame = d.to_frame()
    assert list(frame.columns[:4]) == ["gate", "status", "value", "threshold"]
    assert {"message", "remedy"} <= set(frame.columns)
    assert (frame["status"] == "pass").all()
    assert "all 7 gates pass" in str(d)
    assert "<table>" in d._repr_html_()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert warn_if_bad(d) is False


def test_cor_diagonal_excluded(sleep_design: mb.Design) -> None:
    fit = make_tree(sleep_design)
    d = diagnose(fit, var_names=["cor_Subject"])
    assert d["rhat"].parameter in {"cor_Subject[Intercept,Days]"}
    assert d["ess_bulk"].parameter == "cor_Subject[Intercept,Days]"


def test_shifted_chain_fails_rhat_naming_parameter(sleep_design: mb.Design) -> None:
    fit = make_tree(sleep_design, shift={"sd_Subject": ({"Subject_term": "Days"}, 3.0)})
    d = diagnose(fit)
    gate = d["rhat"]
    assert gate.status == "fail"
    assert gate.value > 1.05
    assert gate.parameter == "sd_Subject[Days]"
    assert "sd_Subject[Days]" in gate.message
    assert "Subject" in gate.remedy and "noncentered" in gate.remedy
    assert not d.ok and gate in d.failed


def test_slightly_shifted_chain_warns_rhat(sleep_design: mb.Design) -> None:
    fit = make_tree(sleep_design, shift={"sigma": ({}, 0.5)})
    gate = diagnose(fit)["rhat"]
    assert 1.01 < gate.value <= 1.05
    assert gate.status == "warn"
    assert gate.parameter == "sigma"


def test_group_effects_checked_by_rhat_all_only(sleep_design: mb.Design) -> None:
    fit = make_tree(
        sleep_design, shift={"r_Subject": ({"Subject": "308", "Subject_term": "Days"}, 3.0)}
    )
    d = diagnose(fit)
    assert d["rhat"].status == "pass"
    assert d["rhat_all"].status == "fail"
    assert d["rhat_all"].parameter == "r_Subject[308,Days]"


def test_stuck_parameter_fails_rhat(sleep_design: mb.Design) -> None:
    fit = make_tree(sleep_design)
    fit.idata["posterior"]["sigma"][...] = 25.0
    fit.idata["posterior"]["b"].loc[{"term": "Days"}] = 10.0
    gate = diagnose(fit)["rhat"]
    assert gate.status == "fail" and gate.value == np.inf
    assert gate.parameter == "b[Days]"
    assert "b[Days], sigma constant" in gate.message


def test_autocorrelated_chains_warn_on_ess(sleep_design: mb.Design) -> None:
    d = diagnose(make_tree(sleep_design, rho=0.95))
    assert d["ess_bulk"].status == "warn"
    assert 0.1 * 400 <= d["ess_bulk"].value < 400
    assert d["ess_bulk"].parameter
    assert d["ess_tail"].status in {"warn", "fail"}
    assert not d.ok


def test_very_autocorrelated_chains_fail_ess(sleep_design: mb.Design) -> None:
    d = diagnose(make_tree(sleep_design, rho=0.999))
    assert d["ess_bulk"].status == "fail"
    assert d["ess_bulk"].value < 40
    assert "draws=" in d["ess_bulk"].remedy


def test_ess_threshold_override(sleep_design: mb.Design) -> None:
    d = diagnose(make_tree(sleep_design), ess_bulk_min=1e6, ess_tail_min=10)
    assert d["ess_bulk"].status == "fail" and d["ess_bulk"].threshold == 1e6
    assert d["ess_tail"].status == "pass"


def test_divergences_counted(sleep_design: mb.Design) -> None:
    d = diagnose(make_tree(sleep_design, diverging=3))
    gate = d["divergences"]
    assert gate.value == 3 and gate.status == "warn"
    assert "3 divergent" in gate.message and "0.07" in gate.message
    assert "target_accept" in gate.remedy
    # auto chose centred effects for Subject: the remedy names the group to non-centre
    assert "noncentered for group Subject" in gate.remedy
    many = diagnose(make_tree(sleep_design, diverging=100))["divergences"]
    assert many.value == 100 and many.status == "fail"
    assert diagnose(make_tree(sleep_design, diverging=3), max_divergences=5)["divergences"].passed


@pytest.mark.parametrize("stat", ["maxdepth_reached", "reached_max_treedepth"])
def test_treedepth_saturation(sleep_design: mb.Design, stat: str) -> None:
    gate = diagnose(make_tree(sleep_design, treedepth_stat=stat, treedepth_hits=200))["treedepth"]
    assert gate.status == "warn"
    assert gate.value == pytest.approx(200 / (CHAINS * DRAWS))
    assert "200 of 4000" in gate.message
    assert gate.remedy


def test_treedepth_missing_is_skipped(sleep_design: mb.Design) -> None:
    gate = diagnose(make_tree(sleep_design, treedepth_stat=None))["treedepth"]
    assert gate.status == "pass" and np.isnan(gate.value)
    assert "not recorded" in gate.message


def test_low_ebfmi_warns(sleep_design: mb.Design) -> None:
    fit = make_tree(sleep_design, energy_walk=True)
    gate = diagnose(fit)["ebfmi"]
    assert gate.status == "warn"
    assert gate.value < 0.3
    assert "chain(s) [0, 1, 2, 3]" in gate.message
    energy = fit.idata["sample_stats"]["energy"].to_numpy()
    assert gate.value == pytest.approx(float(ebfmi_values(energy).min()))


@pytest.mark.parametrize(
    ("shape", "shift", "seed"),
    [((4, 200, 6), 0.0, 1), ((4, 200, 6), 0.3, 2), ((3, 37, 5), 0.0, 3), ((2, 4, 2), 0.0, 4)],
)
@pytest.mark.parametrize("threads", [False, True])
def test_vectorised_rhat_equals_arviz(
    shape: tuple[int, ...], shift: float, seed: int, threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's rank-normalised split R-hat is arviz-stats' value for every element,
    with ties (rounded draws), a constant element, a missing draw and odd draw counts; with
    the bulk and tail rankings in one thread or two (large posteriors)."""
    import arviz_stats as azs

    from mixedbayes.diagnostics import rhat

    monkeypatch.setattr(rhat, "PARALLEL_VALUES", 0 if threads else 10**12)

    from mixedbayes.diagnostics.rhat import rank_rhat_dataset

    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, size=shape)
    x[1] += shift
    x[..., 0] = 1.0
    x[..., 1] = np.round(x[..., 1])
    if shape[1] % 2:
        x[0, 5, 2] = np.nan
    ds = xr.Dataset({"x": (("chain", "draw", "k"), x)}, coords={"k": np.arange(shape[2]) * 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = azs.rhat(ds)["x"].to_numpy()
        got = rank_rhat_dataset(ds)["x"]
    assert list(got["k"].to_numpy()) == list(ds["k"].to_numpy())
    np.testing.assert_array_equal(np.isnan(got.to_numpy()), np.isnan(expected))
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12)
    assert np.isfinite(expected).sum() >= shape[2] - 2


def test_ebfmi_definition() -> None:
    e = np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0]])
    # chain 0: diffs 1,1,1 -> 3; deviations +-0.5 -> 1. chain 1: 3 / 5
    np.testing.assert_allclose(ebfmi_values(e), [3.0, 0.6])


def test_warn_if_bad_lists_every_gate(sleep_design: mb.Design) -> None:
    fit = make_tree(
        sleep_design,
        shift={"sigma": ({}, 3.0)},
        diverging=2,
        treedepth_hits=1,
    )
    d = diagnose(fit)
    with pytest.warns(ConvergenceWarning) as record:
        assert warn_if_bad(d) is True
    assert len(record) == 1
    text = str(record[0].message)
    for name in ("rhat", "divergences", "treedepth"):
        assert f"- {name} [" in text
    assert "sigma" in text and "target_accept" in text
    assert "ebfmi [" not in text


def test_unknown_var_names_raise(sleep_design: mb.Design) -> None:
    with pytest.raises(KeyError, match="nope"):
        diagnose(make_tree(sleep_design), var_names=["nope"])


# -- real fits (slow) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intercept_fit(sleepstudy: pd.DataFrame) -> mb.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return mb.fit(
            mb.LMM("Reaction ~ Days + (1 | Subject)"), sleepstudy, draws=500, chains=2, seed=3
        )


def copy_fit(fit: mb.Fit) -> mb.Fit:
    """The fit on a shallow copy of its tree (adding groups leaves the shared fixture alone)."""
    return dataclasses.replace(fit, idata=fit.idata.copy())


@pytest.mark.slow
def test_sleep_fit_passes_every_gate(sleep_fit: mb.Fit) -> None:
    d = diagnose(sleep_fit)
    assert d.ok, str(d)
    assert d.n_chains == 4 and d.n_draws == 1000
    assert d["rhat"].value < 1.01 and d["ess_bulk"].value >= 400


@pytest.mark.slow
def test_loo_of_sleep_fit(sleep_fit: mb.Fit) -> None:
    report = loo(sleep_fit, pointwise=True)
    assert isinstance(report, LooReport)
    assert np.isfinite(report.elpd) and report.se > 0 and report.p_loo > 0
    assert report.looic == pytest.approx(-2 * report.elpd)
    assert report.n_obs == 180 and report.n_samples == 4000
    assert list(report.pareto_k.index) == ["good", "bad", "very bad"]
    assert int(report.pareto_k["count"].sum()) == 180
    assert report.pareto_k["pct"].sum() == pytest.approx(100)
    assert report.pointwise is not None and len(report.pointwise) == 180
    high = report.pointwise.loc[report.pointwise["pareto_k"] > report.good_k, "obs"]
    assert list(high) == list(report.high_k)
    assert (report.warning == "") == (not report.high_k)
    assert "elpd_loo" in str(report)


@pytest.mark.slow
def test_compare_ranks_random_slopes_first(sleep_fit: mb.Fit, intercept_fit: mb.Fit) -> None:
    table = compare({"slopes": sleep_fit, "intercepts": intercept_fit})
    assert list(table.index) == ["slopes", "intercepts"]
    assert list(table["rank"]) == [0, 1]
    assert table.loc["intercepts", "elpd_diff"] < 0
    assert table["weight"].sum() == pytest.approx(1, abs=1e-6)
    for col in ("elpd_loo", "p_loo", "elpd_diff", "dse", "weight", "warning"):
        assert col in table.columns
    by_list = compare([intercept_fit, sleep_fit], names=["a", "b"])
    assert list(by_list.index) == ["b", "a"]


@pytest.mark.slow
def test_ppc_stats_and_plot(sleep_fit: mb.Fit) -> None:
    fit = copy_fit(sleep_fit)
    stats = ppc_stats(fit, seed=5)
    assert "posterior_predictive" in fit.idata.children
    assert "posterior_predictive" not in sleep_fit.idata.children
    assert list(stats["statistic"]) == ["mean", "sd", "min", "max"]
    assert ((stats["p_value"] > 0) & (stats["p_value"] < 1)).all(), stats
    pc = plot_ppc(fit, num_draws=20)
    assert pc is not None and pc.viz is not None


@pytest.mark.slow
def test_loo_moment_matching(intercept_fit: mb.Fit) -> None:
    plain = loo(intercept_fit)
    matched = loo(intercept_fit, moment_match=True)
    assert np.isfinite(matched.elpd)
    assert len(matched.high_k) <= len(plain.high_k)
    assert abs(matched.elpd - plain.elpd) < plain.se


@pytest.mark.slow
def test_fit_wiring_and_convergence_warning(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    """fit.ok / fit.diagnose() on a good fit; a starved fit warns with numbers and remedies."""
    assert sleep_fit.ok
    assert sleep_fit.diagnose()["rhat"].status == "pass"
    assert np.isfinite(sleep_fit.loo().elpd)
    with pytest.warns(mb.ConvergenceWarning) as rec:
        mb.fit(
            mb.LMM("Reaction ~ Days + (Days | Subject)"),
            sleepstudy,
            draws=30,
            tune=30,
            chains=2,
            seed=5,
        )
    text = str(rec[0].message)
    assert "ess_bulk" in text and "draws" in text


def test_rhat_all_samples_the_cells_of_a_huge_variable() -> None:
    """A variable with more values per draw than RHAT_MAX_CELLS (a compositional residual:
    samples × taxa) is checked on a fixed random sample of its cells, labelled by their
    coordinates; smaller variables are untouched."""
    from mixedbayes.diagnostics.gates import RHAT_MAX_CELLS, _cell_sample

    rng = np.random.default_rng(0)
    big = rng.normal(size=(2, 5, 300, 100))
    ds = xr.Dataset(
        {
            "z": (("chain", "draw", "sample", "taxon"), big),
            "b": (("chain", "draw", "term"), rng.normal(size=(2, 5, 3))),
        },
        coords={"sample": [f"s{i}" for i in range(300)], "taxon": [f"t{j}" for j in range(100)]},
    )
    out, notes = _cell_sample(ds)
    assert out["z"].shape == (2, 5, RHAT_MAX_CELLS) and out["b"].equals(ds["b"])
    assert notes == [f"{RHAT_MAX_CELLS:,} of 30,000 values of z"]
    label = str(out["z"]["z_cell"].values[7])
    i, j = label.split(",")
    np.testing.assert_array_equal(out["z"].values[:, :, 7], ds["z"].sel(sample=i, taxon=j).values)
