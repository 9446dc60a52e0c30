"""Simulation-based calibration: rank statistics, uniformity tests, plots, the batch path."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import frame_hash, theoph_subjects

import mixedbayes as mb
from mixedbayes.errors import DataError, SpecError
from mixedbayes.workflows.sbc import current_replicate
from mixedbayes.workflows.sbc.run import _prior_sampler
from mixedbayes.workflows.sbc.stats import (
    bin_counts,
    chi2_uniformity,
    default_bins,
    ecdf_band,
    ecdf_test,
)

# ----------------------------------------------------------------------------- fixtures


def tiny_lmm_data() -> pd.DataFrame:
    """8 groups × 5 rows, a covariate and a response (replaced by SBC)."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {"g": np.repeat([f"g{i}" for i in range(8)], 5), "x": np.tile(np.arange(5.0), 8)}
    )
    df["y"] = 2.0 + 0.5 * df["x"] + rng.normal(size=len(df))
    return df


TINY_SPEC = mb.LMM(
    "y ~ x + (1 | g)",
    priors=[
        {"class": "Intercept", "prior": "normal(0, 2)"},
        {"class": "b", "prior": "normal(0, 1)"},
        {"class": "sd", "prior": "normal(0, 1)"},
        {"class": "sigma", "prior": "normal(0, 1)"},
    ],
)


# ------------------------------------------------------------------- a fake, exact "posterior"


class FakeFit:
    """Quacks like a Fit: posterior draws and a summary."""

    def __init__(self, posterior: xr.Dataset, design: Any) -> None:
        self.posterior = posterior
        self.design = design
        self.idata = {"sample_stats": xr.Dataset()}
        self.timings: dict[str, float] = {}

    def summary(self, var_names: list[str]) -> pd.DataFrame:
        from mixedbayes.results.summary import summarise

        return summarise(self.posterior, self.design, var_names)


_CACHE: dict[str, Any] = {}


def prior_as_posterior(
    spec: Any, data: pd.DataFrame, *, draws: int, chains: int, seed: int, priors: Any, **kw: Any
) -> FakeFit:
    """Posterior draws that are independent prior draws, times ``shrink``.

    With ``shrink`` = 1 this is exactly calibrated: the truth and the draws come from one
    distribution, so every rank is uniform. ``shrink`` < 1 draws too narrow a "posterior".
    """
    from mixedbayes.kinds import compile_model
    from mixedbayes.results.summary import summary_variables

    shrink = float(kw.get("shrink", 1.0))
    key = spec.to_yaml()
    if key not in _CACHE:
        design = mb.design(spec, data)
        model = compile_model(design, priors).model
        present = {v.name for v in [*model.free_RVs, *model.deterministics]}
        names = summary_variables(design, present, False)  # type: ignore[arg-type]
        _CACHE[key] = (design, model, names, _prior_sampler(model, names))
    design, model, names, draw = _CACHE[key]
    rng = np.random.default_rng(seed)
    samples = [draw(int(rng.integers(2**31 - 1))) for _ in range(chains * draws)]
    data_vars = {}
    for k, name in enumerate(names):
        arr = np.stack([s[k] for s in samples]).reshape(chains, draws, *samples[0][k].shape)
        dims = ("chain", "draw", *model.named_vars_to_dims.get(name, ()))
        data_vars[name] = (dims, arr * shrink)
    coords = {d: list(v) for d, v in model.coords.items() if v is not None}
    post = xr.Dataset(data_vars)
    post = post.assign_coords({d: coords[d] for d in post.dims if d in coords})
    return FakeFit(post, design)


# ----------------------------------------------------------------------- uniformity statistics


def test_chi2_and_ecdf_accept_uniform_and_reject_skewed_ranks() -> None:
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 100, size=400)
    assert chi2_uniformity(uniform, 99)[2] > 0.01
    assert ecdf_test(uniform, 99)[1] > 0.01
    skewed = np.minimum(99, (rng.beta(2, 1, size=400) * 100).astype(int))
    assert chi2_uniformity(skewed, 99)[2] < 1e-6
    assert ecdf_test(skewed, 99)[1] < 1e-3
    u_shaped = np.concatenate([rng.integers(0, 10, 150), rng.integers(90, 100, 150)])
    assert ecdf_test(u_shaped, 99)[1] < 1e-3


def test_uniformity_p_values_are_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(2)
    p_chi = [chi2_uniformity(rng.integers(0, 50, 60), 49)[2] for _ in range(300)]
    p_ecdf = [ecdf_test(rng.integers(0, 50, 60), 49)[1] for _ in range(300)]
    for p in (np.array(p_chi), np.array(p_ecdf)):
        assert 0.02 <= np.mean(p < 0.05) <= 0.09  # ~5 % rejections at the 5 % level
        assert 0.4 <= np.mean(p) <= 0.6


def test_ecdf_band_is_simultaneous() -> None:
    band = ecdf_band(40, 19, prob=0.95)
    rng = np.random.default_rng(3)
    inside = 0
    for _ in range(1000):
        r = rng.integers(0, 20, 40)
        ecdf = np.searchsorted(np.sort(r), np.arange(19), side="right") / 40
        inside += bool(np.all((ecdf >= band.lower) & (ecdf <= band.upper)))
    assert 0.92 <= inside / 1000 <= 0.985


def test_bin_counts_expected_from_rank_values_per_bin() -> None:
    obs, exp = bin_counts(np.array([0, 1, 2, 9, 9]), 9, 3)  # 10 values in 3 bins: 4, 3, 3
    assert obs.sum() == 5 and exp.sum() == pytest.approx(5)
    assert list(exp) == pytest.approx([5 * 4 / 10, 5 * 3 / 10, 5 * 3 / 10])
    assert default_bins(200, 99) == 20 and default_bins(20, 99) == 4
    with pytest.raises(ValueError, match=r"0\.\.9"):
        chi2_uniformity(np.array([0, 10]), 9)


# ------------------------------------------------------------------ sbc with an exact "posterior"


def test_sbc_exact_posterior_gives_uniform_ranks() -> None:
    df = tiny_lmm_data()
    before = frame_hash(df)
    res = mb.sbc(
        TINY_SPEC, df, n=120, draws=49, chains=1, max_rank=49, seed=5, fit_fn=prior_as_posterior
    )
    assert frame_hash(df) == before
    assert res.parameters == ["b[Intercept]", "b[x]", "sd_g[Intercept]", "sigma"]
    assert res.n == 120 and not res.failures
    assert res.ranks.to_numpy().min() >= 0 and res.ranks.to_numpy().max() <= 49
    table = res.test()
    assert (table["p_min_bonferroni"] > 0.01).all(), table
    # the true values are the prior draws: positive scales, plausible spread
    assert (res.true_values["sigma"] > 0).all() and (res.true_values["sd_g[Intercept]"] > 0).all()
    assert 0.5 < res.true_values["b[x]"].std() < 1.5  # prior normal(0, 1)
    assert res.posterior_means.shape == res.ranks.shape
    assert np.isfinite(res.posterior_means.to_numpy()).all()
    md = res.to_markdown()
    assert "| `b[x]` | 120 |" in md and "uniform" in md


def test_sbc_detects_too_narrow_posteriors() -> None:
    res = mb.sbc(
        TINY_SPEC,
        tiny_lmm_data(),
        n=120,
        draws=49,
        chains=1,
        max_rank=49,
        seed=6,
        fit_fn=prior_as_posterior,
        fit_kwargs={"shrink": 0.4},
    )
    table = res.test().set_index("parameter")
    assert (table["p_ecdf"] < 0.001).all(), table
    assert not table["uniform"].any()
    assert "**no**" in res.to_markdown()


def checked_prior_as_posterior(spec: Any, data: pd.DataFrame, **kw: Any) -> FakeFit:
    """prior_as_posterior, after checking the replicate's data (a failed check fails the
    replicate, which the test sees in ``res.failures``)."""
    template = kw.pop("template")
    response = kw.pop("response")
    integer = kw.pop("integer")
    assert list(data.columns) == list(template.columns)
    assert data.index.equals(pd.RangeIndex(len(template)))
    missing = template[response].isna().to_numpy()
    assert data[response].isna().to_numpy().tolist() == missing.tolist()
    simulated = data[response].to_numpy()[~missing]
    assert not np.allclose(simulated, template[response].to_numpy()[~missing])
    if integer:
        assert data[response].dtype.kind == "i" or missing.any()
    for col in template.columns:  # everything but the response is the template's
        if col != response:
            pd.testing.assert_series_equal(
                data[col].reset_index(drop=True), template[col].reset_index(drop=True)
            )
    return prior_as_posterior(spec, data, **kw)


def _poisson_case() -> tuple[Any, pd.DataFrame, str, bool]:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"id": np.repeat([f"g{i}" for i in range(6)], 4), "x": rng.normal(size=24)})
    df["count"] = rng.poisson(2, 24).astype(float)
    df.loc[[3, 17], "count"] = np.nan  # dropped: stays missing in every replicate
    df.index = pd.Index([f"r{i}" for i in range(24)])
    spec = mb.GLMM(
        "count ~ x + (1 | id)",
        family="poisson",
        priors=[
            {"class": "Intercept", "prior": "normal(1, 0.5)"},
            {"class": "b", "prior": "normal(0, 0.5)"},
            {"class": "sd", "prior": "normal(0, 0.5)"},
        ],
    )
    return spec, df, "count", False


def _pk_case() -> tuple[Any, pd.DataFrame, str, bool]:
    df = theoph_subjects(4)
    spec = mb.load_spec(
        {
            "kind": "nonlinear",
            "model": "oral_1cmt_ke",
            "parameters": {"log_KE": "1", "log_KA": "1", "log_CL": "1 + (1 | Subject)"},
            "response": "conc",
            "time": "Time",
            "subject": "Subject",
            "dosing": {"dose": "Dose"},
            "priors": [
                {"class": "b", "nlpar": "log_KE", "prior": "normal(-2.5, 0.3)"},
                {"class": "b", "nlpar": "log_KA", "prior": "normal(0.5, 0.3)"},
                {"class": "b", "nlpar": "log_CL", "prior": "normal(-3, 0.3)"},
                {"class": "sd", "group": "Subject", "prior": "normal(0, 0.4)"},
                {"class": "sigma", "prior": "normal(0, 0.7)"},
            ],
        }
    )
    return spec, df, "conc", False


@pytest.mark.parametrize("make", [_poisson_case, _pk_case], ids=["glmm-poisson", "nonlinear-pk"])
def test_sbc_other_kinds_replace_only_the_response(make: Callable[[], Any]) -> None:
    spec, df, response, _ = make()
    before = frame_hash(df)
    template = df.reset_index(drop=True)
    integer = spec.kind == "glmm"
    res = mb.sbc(
        spec,
        df,
        n=12,
        draws=19,
        chains=1,
        max_rank=19,
        fit_fn=checked_prior_as_posterior,
        fit_kwargs={"template": template, "response": response, "integer": integer},
    )
    assert frame_hash(df) == before
    assert not res.failures, res.failures
    assert res.n == 12
    assert res.ranks.to_numpy().min() >= 0 and res.ranks.to_numpy().max() <= 19
    if spec.kind == "nonlinear":
        assert res.parameters == [
            "b_log_KE[Intercept]",
            "b_log_KA[Intercept]",
            "b_log_CL[Intercept]",
            "sd_Subject[log_CL]",
            "sigma",
        ]
    else:
        assert res.parameters == ["b[Intercept]", "b[x]", "sd_id[Intercept]"]


JOINT_SPEC: dict[str, Any] = {
    "kind": "joint",
    "subject": "id",
    "time": "time",
    "longitudinal": {"y": "y ~ time + (time | id)"},
    "survival": {"formula": "Surv(stop, status == 2) ~ trt", "baseline": "weibull"},
    "priors": [
        {"class": "Intercept", "nlpar": "y", "prior": "normal(1, 0.5)"},
        {"class": "b", "nlpar": "y", "prior": "normal(0.2, 0.2)"},
        {"class": "sd", "group": "id", "prior": "normal(0, 0.5)"},
        {"class": "sigma", "nlpar": "y", "prior": "normal(0, 1)"},
        {"class": "b", "nlpar": "event", "prior": "normal(0, 0.5)"},
        {"class": "alpha", "prior": "normal(0.5, 0.5)"},
        {"class": "log_h0", "nlpar": "event", "prior": "normal(-2.5, 0.5)"},
        {"class": "shape", "nlpar": "event", "prior": "gamma(20, 20)"},
    ],
}


def joint_template(n: int = 16, visits: int = 4) -> dict[str, pd.DataFrame]:
    """Visits at 0..visits-1, follow-up to ``visits`` (status 0: censored), half treated."""
    ids = [f"p{i:02d}" for i in range(n)]
    trt = np.arange(n) % 2
    long = pd.DataFrame(
        {
            "id": np.repeat(ids, visits),
            "time": np.tile(np.arange(visits, dtype=float), n),
            "trt": np.repeat(trt, visits),
            "y": np.linspace(0, 1, n * visits),
        }
    )
    surv = pd.DataFrame({"id": ids, "stop": float(visits), "status": 0, "trt": trt})
    return {"longitudinal": long, "survival": surv}


def checked_joint_fit(spec: Any, data: dict[str, pd.DataFrame], **kw: Any) -> FakeFit:
    """prior_as_posterior, after checking a joint replicate: every visit kept with a new
    response, event times within follow-up, events coded 2 (``status == 2``)."""
    template = kw.pop("template")
    long, surv = data["longitudinal"], data["survival"]
    assert long.shape == template["longitudinal"].shape
    assert not np.allclose(long["y"], template["longitudinal"]["y"])
    pd.testing.assert_series_equal(long["time"], template["longitudinal"]["time"])
    assert (surv["stop"] <= template["survival"]["stop"]).all() and (surv["stop"] > 0).all()
    assert set(surv["status"]) <= {0, 2}
    ended = surv["status"] == 2
    assert (surv.loc[~ended, "stop"] == template["survival"].loc[~ended, "stop"]).all()
    assert spec.visits_after_event == "keep"
    return prior_as_posterior(spec, data, **kw)


def test_sbc_joint_draws_event_times_from_the_hazard() -> None:
    template = joint_template()
    before = {k: frame_hash(v) for k, v in template.items()}
    res = mb.sbc(
        JOINT_SPEC,
        template,
        n=60,
        draws=19,
        chains=1,
        max_rank=19,
        seed=2,
        fit_fn=checked_joint_fit,
        fit_kwargs={"template": template},
    )
    assert {k: frame_hash(v) for k, v in template.items()} == before
    assert not res.failures, res.failures
    assert "alpha[y:value]" in res.parameters and "shape" in res.parameters
    assert (res.test()["p_min_bonferroni"] > 0.01).all()
    assert res.settings["kind"] == "joint" and "visits_after_event: keep" in res.settings["spec"]


def test_sbc_joint_needs_one_survival_row_per_subject() -> None:
    template = joint_template(6)
    surv = template["survival"]
    rows = pd.concat([surv.assign(start=0.0, stop=2.0), surv.assign(start=2.0)])
    spec = {
        **JOINT_SPEC,
        "survival": {"formula": "Surv(start, stop, status) ~ trt", "baseline": "weibull"},
    }
    with pytest.raises(SpecError, match="one survival row per subject"):
        mb.sbc(
            spec,
            {"longitudinal": template["longitudinal"], "survival": rows},
            n=2,
            draws=19,
            chains=1,
            max_rank=19,
            fit_fn=prior_as_posterior,
        )


def test_sbc_compositional_replaces_the_counts_of_the_taxa_kept() -> None:
    sim = mb.simulate.compositional(n_subjects=6, n_times=2, n_taxa=5, seed=3)
    counts = sim.data["counts"].assign(ghost=0)  # dropped (no reads): kept as it is
    template = {"counts": counts, "samples": sim.data["samples"]}
    before = {k: frame_hash(v) for k, v in template.items()}
    seen: list[dict[str, pd.DataFrame]] = []

    def fit_fn(spec: Any, data: dict[str, pd.DataFrame], **kw: Any) -> FakeFit:
        seen.append(data)
        return prior_as_posterior(spec, data, **kw)

    spec = {**sim.spec, "formula": "~ group + (1 | subject)"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mb.sbc(spec, template, n=40, draws=19, chains=1, max_rank=19, seed=4, fit_fn=fit_fn)
    assert {k: frame_hash(v) for k, v in template.items()} == before
    assert not res.failures and "b[group[diet],taxon001]" in res.parameters
    assert (res.test()["p_min_bonferroni"] > 0.01).all()
    first = seen[0]["counts"]
    assert first.shape == counts.shape and (first["ghost"] == 0).all()
    assert not first.drop(columns="ghost").equals(counts.drop(columns="ghost"))
    assert first.index.equals(counts.index) and (first.to_numpy() >= 0).all()
    with pytest.raises(SpecError, match="logratio_normal"):
        mb.sbc(
            {**spec, "likelihood": "logratio_normal"},
            template,
            n=2,
            draws=19,
            chains=1,
            max_rank=19,
            fit_fn=prior_as_posterior,
        )


def test_sbc_plots() -> None:
    import matplotlib.pyplot as plt

    res = mb.sbc(
        TINY_SPEC, tiny_lmm_data(), n=30, draws=19, chains=1, max_rank=19, fit_fn=prior_as_posterior
    )
    for fig in (res.plot_ranks(), res.plot_ecdf_diff()):
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert [ax.get_title() for ax in visible] == res.parameters
        plt.close(fig)


def test_sbc_reproducible_and_var_names() -> None:
    kw: dict[str, Any] = {"n": 15, "draws": 19, "chains": 1, "max_rank": 19, "seed": 3}
    a = mb.sbc(TINY_SPEC, tiny_lmm_data(), fit_fn=prior_as_posterior, **kw)
    b = mb.sbc(TINY_SPEC, tiny_lmm_data(), fit_fn=prior_as_posterior, **kw)
    pd.testing.assert_frame_equal(a.ranks, b.ranks)
    pd.testing.assert_frame_equal(a.true_values, b.true_values)
    c = mb.sbc(TINY_SPEC, tiny_lmm_data(), fit_fn=prior_as_posterior, var_names=["sigma"], **kw)
    assert c.parameters == ["sigma"]
    pd.testing.assert_series_equal(c.true_values["sigma"], a.true_values["sigma"])


@pytest.mark.parametrize(
    ("kwargs", "error", "where"),
    [
        ({"n": 0}, SpecError, "n"),
        ({"max_rank": 1000}, SpecError, "max_rank"),
        ({"var_names": ["nope"]}, SpecError, "var_names"),
        ({"backend": "threads"}, SpecError, "backend"),
    ],
)
def test_sbc_bad_arguments(kwargs: dict[str, Any], error: type, where: str) -> None:
    with pytest.raises(error) as err:
        mb.sbc(TINY_SPEC, tiny_lmm_data(), fit_fn=prior_as_posterior, **kwargs)
    assert err.value.where == [where]


def test_sbc_needs_a_plain_response_column() -> None:
    df = tiny_lmm_data().assign(y=lambda d: d["y"].abs() + 1)
    with pytest.raises(SpecError, match="log") as err:
        mb.sbc(mb.LMM("log(y) ~ x + (1 | g)"), df, n=2, fit_fn=prior_as_posterior)
    assert err.value.where == ["formula"]
    with pytest.raises(DataError):
        mb.sbc(TINY_SPEC, df.to_dict(), n=2)  # type: ignore[arg-type]


# ------------------------------------------------------------- the real path: NUTS on Dask


def flaky_fit(spec: Any, data: pd.DataFrame, **kwargs: Any) -> Any:
    """mb.fit, except that replicate 3 fails its first attempt and replicate 5 always fails."""
    where = current_replicate()
    assert where is not None
    rep, attempt = where
    if rep == 3 and attempt == 1:
        raise RuntimeError("injected failure (first attempt of replicate 3)")
    if rep == 5:
        raise RuntimeError("injected failure (replicate 5, every attempt)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.fit(spec, data, **kwargs)


@pytest.mark.slow
def test_sbc_on_local_cluster_with_failures_and_resume(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    df = tiny_lmm_data()
    before = frame_hash(df)
    kw: dict[str, Any] = {
        "draws": 200,
        "tune": 200,
        "chains": 1,
        "max_rank": 99,
        "seed": 11,
        "backend": "dask",
        "out_dir": tmp_path,
        "retries": 1,
        "fit_fn": flaky_fit,
    }
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        first = mb.sbc(TINY_SPEC, df, n=10, client=client, **kw)
        files = sorted((tmp_path / "tasks").glob("rep-*.ok.pkl"))
        mtimes = {p.name: p.stat().st_mtime_ns for p in files}
        second = mb.sbc(TINY_SPEC, df, n=20, client=client, **kw)
    assert frame_hash(df) == before
    # every replicate is recorded: ok or failed, none lost
    assert list(first.replicates.index) == list(range(10))
    assert list(second.replicates.index) == list(range(20))
    assert set(second.failures) == {5}
    assert "injected failure (replicate 5" in second.failures[5]
    assert second.replicates.loc[5, "status"] == "failed"
    assert second.replicates.loc[5, "attempts"] == 4  # 2 per run, both runs kept
    assert first.replicates.loc[3, "attempts"] == 2 and first.replicates.loc[3, "status"] == "ok"
    assert (tmp_path / "tasks" / "rep-00005.failed.txt").exists()
    # resume: the 9 good replicates of the first run were reused, not refitted
    assert len(files) == 9
    reused = set(second.batch.reused)  # type: ignore[union-attr]
    assert reused == {f"rep-{i:05d}" for i in range(10) if i != 5}
    for p in files:
        assert p.stat().st_mtime_ns == mtimes[p.name]
    pd.testing.assert_frame_equal(first.ranks, second.ranks.loc[first.ranks.index])
    # ranks in range, one per parameter and successful replicate
    assert second.parameters == ["b[Intercept]", "b[x]", "sd_g[Intercept]", "sigma"]
    assert second.ranks.shape == (19, 4)
    assert second.ranks.to_numpy().min() >= 0 and second.ranks.to_numpy().max() <= 99
    ok = second.replicates[second.replicates["status"] == "ok"]
    # refit diagnostics are recorded for every replicate (their level is not the point here)
    assert (ok["ess_bulk_min"] > 0).all() and ok["seconds"].notna().all()
    # not a calibration check at n = 19, only that nothing is grossly wrong
    assert (second.test()["p_min_bonferroni"] > 0.001).all()
    assert second.settings["backend"] == "dask" and second.settings["workers"] == 2
