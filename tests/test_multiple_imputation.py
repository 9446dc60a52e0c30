"""Multiple imputation: Rubin's rules, mb.impute, mb.fit_multiple and MultipleFit.

One small session fit (M = 3 completed sleepstudy sets, 2 chains × 100 draws) serves every
test that needs fits; Rubin's rules are checked on fixed numbers by hand and against
statsmodels' MICE pooling; mb.impute against a hand-built ``imputed`` group.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import frame_hash

import mixedbayes as mb
from mixedbayes.errors import DataError, SpecError
from mixedbayes.results.rubin import RUBIN_COLUMNS, barnard_rubin_df, rubin_rules

# ----------------------------------------------------------------------------- Rubin's rules


def test_rubin_rules_by_hand() -> None:
    """Three imputations of one scalar, every quantity worked out on paper."""
    q, u = [1.0, 1.2, 0.9], [0.04, 0.05, 0.03]
    out = rubin_rules(q, u, prob=0.9).iloc[0]
    # qbar = 3.1/3; ubar = 0.04; B = ((-1/30)^2 + (1/6)^2 + (-2/15)^2) / 2 = 7/300
    b = 7 / 300
    t = 0.04 + (4 / 3) * b  # = 64/900
    assert out["estimate"] == pytest.approx(3.1 / 3)
    assert out["within"] == pytest.approx(0.04)
    assert out["between"] == pytest.approx(b)
    assert out["total"] == pytest.approx(64 / 900)
    assert out["se"] == pytest.approx(np.sqrt(64 / 900))
    assert out["riv"] == pytest.approx(7 / 9)  # (28/900) / 0.04
    assert out["lambda"] == pytest.approx(28 / 64)  # (28/900) / (64/900)
    df = 2 / (28 / 64) ** 2  # (m - 1) / lambda^2, large sample: 8192 / 784
    assert out["df"] == pytest.approx(8192 / 784)
    assert out["fmi"] == pytest.approx((7 / 9 + 2 / (df + 3)) / (16 / 9))
    from scipy import stats

    half = stats.t.ppf(0.95, df) * np.sqrt(t)
    assert out["lower"] == pytest.approx(3.1 / 3 - half)
    assert out["upper"] == pytest.approx(3.1 / 3 + half)
    # Barnard-Rubin with 10 complete-data df: nu_obs = 11/13 * 10 * (1 - 28/64)
    small = rubin_rules(q, u, df_complete=10).iloc[0]
    nu_obs = 11 / 13 * 10 * (1 - 28 / 64)
    assert small["df"] == pytest.approx(df * nu_obs / (df + nu_obs))
    assert small["df"] < min(df, 10)


def test_barnard_rubin_limits() -> None:
    """No between variance: df is the observed-data df; df grows to Rubin's as nu_com grows."""
    df = barnard_rubin_df(5, np.array([0.0]), np.array([1.0]), 20.0)
    assert df[0] == pytest.approx(21 / 23 * 20)
    assert np.isinf(barnard_rubin_df(5, np.array([0.0]), np.array([1.0]))[0])
    old = barnard_rubin_df(5, np.array([0.3]), np.array([1.0]))[0]
    dfs = [barnard_rubin_df(5, np.array([0.3]), np.array([1.0]), n)[0] for n in (10, 1e3, 1e7)]
    assert dfs[0] < dfs[1] < dfs[2] < old
    assert dfs[2] == pytest.approx(old, rel=1e-3)


def test_rubin_rules_vectorised_and_checked() -> None:
    rng = np.random.default_rng(1)
    q, u = rng.normal(size=(6, 4)), rng.uniform(0.1, 1, size=(6, 4))
    table = rubin_rules(q, u, names=list("abcd"))
    assert tuple(table.columns) == RUBIN_COLUMNS
    for j, name in enumerate("abcd"):
        one = rubin_rules(q[:, j], u[:, j]).iloc[0]
        assert table.loc[name, "total"] == pytest.approx(one["total"])
    with pytest.raises(ValueError, match="at least 2"):
        rubin_rules([1.0], [0.1])
    with pytest.raises(ValueError, match="one shape"):
        rubin_rules(q, u[:, :2])


def test_rubin_rules_match_statsmodels_mice() -> None:
    """statsmodels' MICE pools OLS fits by Rubin's rules: same estimate, total variance and
    proportion of variance due to missingness (its ``frac_miss_info`` is lambda)."""
    import statsmodels.api as sm
    from statsmodels.imputation.mice import MICE, MICEData

    rng = np.random.default_rng(0)
    n = 60
    x1 = rng.normal(size=n)
    x2 = 0.5 * x1 + rng.normal(size=n)
    df = pd.DataFrame({"y": 1 + 2 * x1 - x2 + rng.normal(size=n), "x1": x1, "x2": x2})
    df.loc[rng.choice(n, 15, replace=False), "x2"] = np.nan
    np.random.seed(3)  # statsmodels' MICEData draws from NumPy's global generator
    mice = MICE("y ~ x1 + x2", sm.OLS, MICEData(df))
    pooled = mice.fit(n_burnin=3, n_imputations=6)
    q = np.array([np.asarray(r.params) for r in mice.results_list])
    u = np.array([np.asarray(r.bse) ** 2 for r in mice.results_list])
    ours = rubin_rules(q, u)
    np.testing.assert_allclose(ours["estimate"], np.asarray(pooled.params), rtol=1e-10)
    np.testing.assert_allclose(ours["total"], np.diag(pooled.cov_params()), rtol=1e-10)
    np.testing.assert_allclose(ours["lambda"], pooled.frac_miss_info, rtol=1e-10)


# ----------------------------------------------------------------------------- mb.impute


def _holes(df: pd.DataFrame, n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = df.copy()
    out.loc[out.index[rng.choice(len(out), n, replace=False)], "Reaction"] = np.nan
    return out


def hot_deck(data: pd.DataFrame, m: int, seed: int) -> list[pd.DataFrame]:
    """Completed sets by random hot-deck draws of the observed responses."""
    rng = np.random.default_rng(seed)
    donors = data["Reaction"].dropna().to_numpy()
    out = []
    for _ in range(m):
        frame = data.copy()
        miss = frame["Reaction"].isna()
        frame.loc[miss, "Reaction"] = rng.choice(donors, int(miss.sum()))
        out.append(frame)
    return out


def test_impute_from_completed_sets(sleepstudy: pd.DataFrame) -> None:
    data = _holes(sleepstudy)
    before = frame_hash(data)
    sets = hot_deck(data, 4, seed=1)
    out = mb.impute(data, sets)
    assert len(out) == 4
    assert frame_hash(data) == before
    for given, got in zip(sets, out, strict=True):
        assert got is not given
        pd.testing.assert_frame_equal(got, given)
        assert got.index.equals(data.index) and list(got.columns) == list(data.columns)
    assert len(mb.impute(data, sets, m=2)) == 2


def _fake_fit(data: pd.DataFrame, chains: int = 3, draws: int = 8) -> SimpleNamespace:
    """An object with an ``imputed`` group in the agreed shape: value = 1000·chain + draw + a
    per-row offset, so each imputed cell says which draw it came from."""
    rows = data.index[data["Reaction"].isna()]
    offset = np.arange(len(rows)) / 1000
    values = (
        1000 * np.arange(chains)[:, None, None]
        + np.arange(draws)[None, :, None]
        + offset[None, None, :]
    )
    imputed = xr.Dataset(
        {"Reaction": (("chain", "draw", "Reaction_row"), values)},
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "Reaction_row": rows},
    )
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(), "imputed": imputed})
    return SimpleNamespace(idata=tree)


def test_impute_from_a_fit_draws_distinct_draws_spread_over_chains(
    sleepstudy: pd.DataFrame,
) -> None:
    data = _holes(sleepstudy).set_axis([f"r{i}" for i in range(len(sleepstudy))])
    before = frame_hash(data)
    fit = _fake_fit(data)
    out = mb.impute(data, fit, m=7, seed=5)  # type: ignore[arg-type]
    assert frame_hash(data) == before
    missing = data["Reaction"].isna()
    picks = []
    for frame in out:
        assert frame.index.equals(data.index) and list(frame.columns) == list(data.columns)
        assert not frame["Reaction"].isna().any()
        pd.testing.assert_frame_equal(frame[~missing], data[~missing])
        filled = frame.loc[missing, "Reaction"].to_numpy()
        code = np.floor(filled[0])
        # every cell of one set from one draw, each row its own value
        np.testing.assert_allclose(filled - code, np.arange(missing.sum()) / 1000, atol=1e-9)
        picks.append((int(code // 1000), int(code % 1000)))
    assert len(set(picks)) == 7  # without replacement
    per_chain = np.bincount([c for c, _ in picks], minlength=3)
    assert per_chain.max() - per_chain.min() <= 1  # spread across chains
    again = mb.impute(data, fit, m=7, seed=5)  # type: ignore[arg-type]
    assert all(a.equals(b) for a, b in zip(out, again, strict=True))
    other = mb.impute(data, fit, m=7, seed=6)  # type: ignore[arg-type]
    assert not all(a.equals(b) for a, b in zip(out, other, strict=True))
    assert len(mb.impute(data, fit, seed=1)) == 20  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="distinct posterior draws"):
        mb.impute(data, fit, m=25)  # type: ignore[arg-type]


def test_impute_from_a_fit_checks_the_rows(sleepstudy: pd.DataFrame) -> None:
    data = _holes(sleepstudy)
    fit = _fake_fit(data)
    filled = data.fillna(0.0)
    with pytest.raises(DataError, match="observed in the data"):
        mb.impute(filled, fit, m=2)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not rows of the data"):
        mb.impute(data.iloc[10:], fit, m=2)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fit_multiple

SPEC = {"formula": "Reaction ~ Days + (1 | Subject)"}
M, CHAINS, DRAWS = 3, 2, 100


@pytest.fixture(scope="session")
def mi_data(sleepstudy: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    data = _holes(sleepstudy)
    return data, mb.impute(data, hot_deck(data, M, seed=2))


@pytest.fixture(scope="session")
def mi_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mi")


@pytest.fixture(scope="session")
def mi_fit(mi_data: tuple[pd.DataFrame, list[pd.DataFrame]], mi_out: Path) -> mb.MultipleFit:
    before = [frame_hash(f) for f in mi_data[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mb.fit_multiple(
            SPEC, mi_data[1], draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=7, out_dir=mi_out
        )
    assert [frame_hash(f) for f in mi_data[1]] == before  # the sets are never changed
    return fit


def test_every_fit_is_kept_with_one_prior_table(
    mi_fit: mb.MultipleFit, mi_data: tuple[pd.DataFrame, list[pd.DataFrame]]
) -> None:
    assert mi_fit.m == M and len(mi_fit.fits) == M
    assert len(set(mi_fit.seeds)) == M
    for fit, frame in zip(mi_fit.fits, mi_data[1], strict=True):
        assert isinstance(fit, mb.Fit)
        assert fit.posterior.sizes["chain"] == CHAINS and fit.posterior.sizes["draw"] == DRAWS
        # the fit is of its own completed set
        np.testing.assert_allclose(fit.design.y, frame["Reaction"].to_numpy())
        assert str(fit.priors) == str(mi_fit.fits[0].priors)
    assert "3 imputations" in repr(mi_fit)


def test_pooled_table_identities(mi_fit: mb.MultipleFit) -> None:
    table = mi_fit.pooled()
    for col in ("parameter", "estimate", "within", "between", "total", "riv", "fmi", "df"):
        assert col in table.columns
    assert {"lower", "upper"} <= set(table.columns)
    assert list(table["parameter"]) == list(mi_fit.fits[0].summary()["parameter"])
    m = mi_fit.m
    np.testing.assert_allclose(table["total"], table["within"] + (1 + 1 / m) * table["between"])
    np.testing.assert_allclose(table["riv"], (1 + 1 / m) * table["between"] / table["within"])
    assert ((table["fmi"] >= 0) & (table["fmi"] <= 1)).all()
    assert (table["df"] > 0).all()
    assert (table["lower"] < table["estimate"]).all() and (table["estimate"] < table["upper"]).all()
    # estimate and within from the draws themselves, not from the summaries
    means = np.array([float(f.posterior["b"].sel(term="Days").mean()) for f in mi_fit.fits])
    var = np.array([float(f.posterior["b"].sel(term="Days").var(ddof=1)) for f in mi_fit.fits])
    row = table.set_index("parameter").loc["b[Days]"]
    assert row["estimate"] == pytest.approx(means.mean())
    assert row["within"] == pytest.approx(var.mean())
    assert row["between"] == pytest.approx(means.var(ddof=1))
    # the hot-deck response is noisier than the truth: sigma's imputations disagree most
    assert table.set_index("parameter").loc["sigma", "between"] > 0


def test_pooled_df_and_prob(mi_fit: mb.MultipleFit) -> None:
    n = mi_fit.fits[0].design.n
    assert mi_fit.df_complete == n - 2  # b[Intercept], b[Days]
    default = mi_fit.pooled()
    assert default.attrs["df_complete"] == n - 2 and default.attrs["prob"] == 0.95
    large = mi_fit.pooled(df_complete=float("inf"))
    assert (large["df"] >= default["df"]).all()
    narrow = mi_fit.pooled(0.5)
    assert ((narrow["upper"] - narrow["lower"]) < (default["upper"] - default["lower"])).all()
    with pytest.raises(SpecError, match="prob"):
        mi_fit.pooled(1.5)


def test_diagnostics_per_imputation(mi_fit: mb.MultipleFit) -> None:
    from mixedbayes.diagnostics import diagnose

    diag = mi_fit.diagnostics()
    assert list(diag["imputation"]) == [1, 2, 3]
    for col in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "ok", "seconds"):
        assert col in diag.columns
    second = diagnose(mi_fit.fits[1])
    assert diag.loc[1, "rhat_max"] == pytest.approx(second["rhat"].value)
    assert diag.loc[1, "ess_bulk_min"] == pytest.approx(second["ess_bulk"].value)
    assert diag.loc[1, "divergences"] == second["divergences"].value
    assert list(diag["seed"]) == list(mi_fit.seeds)


def test_mixed_posterior(mi_fit: mb.MultipleFit) -> None:
    post = mi_fit.posterior["posterior"].to_dataset()
    assert post.sizes["chain"] == M * CHAINS and post.sizes["draw"] == DRAWS
    assert list(post["imputation"].to_numpy()) == [1, 1, 2, 2, 3, 3]
    second = mi_fit.fits[1].posterior["sigma"].to_numpy()
    np.testing.assert_array_equal(post["sigma"].sel(chain=[2, 3]).to_numpy(), second)
    assert "sample_stats" in mi_fit.posterior.children
    summary = mi_fit.summary()
    row = summary.set_index("parameter").loc["sigma"]
    assert row["mean"] == pytest.approx(float(post["sigma"].mean()))
    # the mixed draws' mean is the pooled estimate (equal draws per fit)
    pooled = mi_fit.pooled().set_index("parameter")
    assert row["mean"] == pytest.approx(pooled.loc["sigma", "estimate"])


def test_pooled_loo(mi_fit: mb.MultipleFit) -> None:
    result = mi_fit.loo()
    assert list(result.table["imputation"]) == [1, 2, 3]
    one = mi_fit.fits[2].loo()
    assert result.table.loc[2, "elpd_loo"] == pytest.approx(one.elpd)
    assert result.elpd == pytest.approx(result.table["elpd_loo"].mean())
    assert result.between_sd == pytest.approx(result.table["elpd_loo"].std(ddof=1))
    assert "3 imputations" in str(result)


def test_to_markdown(mi_fit: mb.MultipleFit) -> None:
    text = mi_fit.to_markdown()
    for name in mi_fit.pooled()["parameter"]:
        assert f"`{name}`" in text
    assert "| fmi |" in text and "max R-hat" in text
    assert text.count("\n| ") >= len(mi_fit.pooled()) + M + 2  # both tables' rows


def test_resume_reads_the_fits_back(
    mi_fit: mb.MultipleFit, mi_data: tuple[pd.DataFrame, list[pd.DataFrame]], mi_out: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = mb.fit_multiple(
            SPEC, mi_data[1], draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=7, out_dir=mi_out
        )
    assert again.runs["reused"].all()
    pd.testing.assert_frame_equal(again.pooled(), mi_fit.pooled())


# ----------------------------------------------------------------------------- the MI report


def test_report_of_the_multiple_imputation(mi_fit: mb.MultipleFit, tmp_path: Path) -> None:
    from mixedbayes.report.blocks import Figure, Table
    from mixedbayes.report.multiple import build_multiple_report

    report = build_multiple_report(mi_fit)
    assert report.keys == ["model", "pooled", "forest", "imputations"]
    assert all(not s.unavailable for s in report.sections)
    pooled = mi_fit.pooled()
    table = next(b for b in report.section("pooled").blocks if isinstance(b, Table))
    for col in ("estimate", "within", "between", "total", "riv", "fmi", "df", "lower", "upper"):
        assert col in table.columns
    assert [r[0] for r in table.rows] == list(pooled["parameter"])
    fmi = table.columns.index("fmi")
    assert [float(r[fmi]) for r in table.rows] == pytest.approx(list(pooled["fmi"]), rel=1e-3)
    diag = next(b for b in report.section("imputations").blocks if isinstance(b, Table))
    assert [r[0] for r in diag.rows] == ["1", "2", "3"]
    for col in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "status"):
        assert col in diag.columns
    assert any(isinstance(b, Figure) for b in report.section("forest").blocks)
    assert report.section("imputations").status in ("pass", "warn")
    assert ("imputations", "3") in report.facts

    html = mi_fit.report(tmp_path / "mi.html")
    text = html.read_text(encoding="utf-8")
    assert "Rubin" in text and "<table>" in text and "data:image/png;base64," in text
    assert "fmi" in text and "rhat_max" in text
    md = mi_fit.report(tmp_path / "mi.md")
    body = md.read_text(encoding="utf-8")
    assert "| parameter | estimate |" in body and "mi_files/" in body
    assert list((tmp_path / "mi_files").glob("*.png"))
    with pytest.raises(SpecError, match="formats"):
        mi_fit.report(tmp_path / "mi.pdf")


# ----------------------------------------------------------------------------- impute from a spec

NHANES_IMPUTE = {
    "kind": "lmm",
    "formula": "bmi ~ age + chl",
    "missing": {"response": "impute", "covariates": {"chl": {"formula": "chl ~ age"}}},
}


def test_impute_from_a_spec_without_missing_says_to_add_one() -> None:
    data = mb.datasets.load("nhanes")
    with pytest.raises(SpecError, match="no missing: entry") as info:
        mb.impute(data, {"kind": "lmm", "formula": "bmi ~ age + chl"}, m=3, seed=1)
    assert "add one" in str(info.value)
    with pytest.raises(SpecError, match="only when source is a spec"):
        mb.impute(data, [data, data], draws=5)


@pytest.mark.slow
def test_impute_from_a_spec_fits_it_then_draws_the_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """One short fit (imputation by sampling); the sets are those ``impute`` draws from it."""
    from mixedbayes import api
    from mixedbayes.workflows.impute import SPEC_DRAWS

    data = mb.datasets.load("nhanes")
    before = frame_hash(data)
    made: list[tuple[mb.Fit, dict[str, object]]] = []
    real_fit = api.fit

    def spy(spec: object, frame: pd.DataFrame, **kwargs: object) -> mb.Fit:
        fit = real_fit(spec, frame, **kwargs)  # type: ignore[arg-type]
        made.append((fit, kwargs))
        return fit

    monkeypatch.setattr(api, "fit", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = mb.impute(data, NHANES_IMPUTE, m=4, seed=3, chains=2, tune=200)
    assert frame_hash(data) == before
    ((fit, kwargs),) = made
    assert kwargs["draws"] == SPEC_DRAWS and kwargs["tune"] == 200 and kwargs["seed"] == 3
    assert "imputed" in fit.idata.children
    assert len(sets) == 4
    for frame in sets:
        assert frame.index.equals(data.index) and list(frame.columns) == list(data.columns)
        assert not frame[["bmi", "chl"]].isna().any().any()
        seen = data["chl"].notna()
        pd.testing.assert_series_equal(frame.loc[seen, "chl"], data.loc[seen, "chl"])
        assert frame["hyp"].isna().sum() == data["hyp"].isna().sum()  # not in the model
    assert len({tuple(f["chl"].round(6)) for f in sets}) == 4  # distinct draws
    again = mb.impute(data, fit, m=4, seed=3)
    assert all(a.equals(b) for a, b in zip(sets, again, strict=True))
