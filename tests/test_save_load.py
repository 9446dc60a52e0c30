"""Save → load for every kind: the design is rebuilt from the data as given (design.source),
so a reloaded fit summarises and predicts exactly as the original; format 1 still loads."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import EVENT_SPEC, count_data, frame_hash, theoph_events

import mixedbayes as mb

# -- the design keeps the data as given (no sampling) -------------------------------------------


def test_design_keeps_the_data_as_given() -> None:
    df = count_data()
    before = frame_hash(df)
    spec = mb.GLMM("count ~ x + arm + (1 | g)", "poisson")
    with pytest.warns(mb.DataWarning):
        d = mb.design(spec, df)
    assert d.n == len(df) - 1 and len(d.source) == len(df)  # the dropped row is kept
    pd.testing.assert_frame_equal(d.source, df)
    with pytest.warns(mb.DataWarning):
        again = mb.design(spec, d.source)
    assert np.array_equal(again.X, d.X) and again.obs_index.equals(d.obs_index)
    assert again.report == d.report
    df.loc[0, "x"] = 99.0  # the user's frame changes later: the design's copy does not
    assert d.source.loc[0, "x"] != 99.0
    d.source.loc[1, "x"] = -99.0  # nor does changing the copy reach the user's frame
    assert df.loc[1, "x"] != -99.0
    df.loc[0, "x"] = d.source.loc[0, "x"]
    assert frame_hash(df) == before


def test_event_table_design_keeps_the_dose_records() -> None:
    events = theoph_events(2)
    d = mb.design(mb.load_spec(EVENT_SPEC), events)
    pd.testing.assert_frame_equal(d.source, events)
    assert (d.data["EVID"] == 0).all() and (d.source["EVID"] == 1).sum() == 2
    again = mb.design(d.spec, d.source)
    assert again.dosing == d.dosing and again.n == d.n
    np.testing.assert_array_equal(again.doses.amount, d.doses.amount)
    with pytest.raises(mb.DataError, match="no dose record"):  # why the rows used won't do
        mb.design(d.spec, d.data)


def test_load_refuses_a_newer_format(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(mb.DataError, match="format 99"):
        mb.load(tmp_path)


# -- every kind: save → load → same summary and predictions -------------------------------------


def _load_quietly(path: Path) -> mb.Fit:
    """Load, failing on any DataWarning (rows dropped were reported when the fit was made)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", mb.DataWarning)
        return mb.load(path)


def _check_saved(fit: mb.Fit, path: Path) -> mb.Fit:
    """Save ``fit``, check the directory (format 2, versions), load it and compare the
    summary and the design's report."""
    saved = fit.save(path)
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["format"] == 2
    assert meta["versions"]["mixedbayes"] == mb.__version__
    assert {"pymc", "arviz"} <= set(meta["versions"]) and meta["versions"]["pymc"]
    pd.testing.assert_frame_equal(pd.read_parquet(saved / "source.parquet"), fit.design.source)
    loaded = _load_quietly(saved)
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary())
    assert loaded.design.report == fit.design.report
    pd.testing.assert_frame_equal(loaded.design.source, fit.design.source)
    return loaded


def _same_predictions(a: mb.Fit, b: mb.Fit, rows: pd.DataFrame) -> None:
    for kind in ("mean", "response"):
        xr.testing.assert_identical(
            a.predict(rows, kind=kind, new_groups="sample", seed=2),  # type: ignore[arg-type]
            b.predict(rows, kind=kind, new_groups="sample", seed=2),  # type: ignore[arg-type]
        )


@pytest.mark.slow
def test_lmm_save_load(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    loaded = _check_saved(sleep_fit, tmp_path / "fit")
    rows = pd.DataFrame({"Days": [0.0, 5.0, 3.0], "Subject": ["308", "309", "new"]})
    _same_predictions(sleep_fit, loaded, rows)


@pytest.mark.slow
def test_glmm_save_load(count_small_fit: mb.Fit, tmp_path: Path) -> None:
    assert count_small_fit.design.report.rows_dropped == 1
    loaded = _check_saved(count_small_fit, tmp_path / "fit")
    rows = pd.DataFrame(
        {"x": [0.0, 1.0, -0.5], "arm": ["ctl", "trt", "trt"], "g": ["g0", "g3", "new"]}
    )
    _same_predictions(count_small_fit, loaded, rows)
    _same_predictions(count_small_fit, loaded, count_small_fit.design.data.iloc[:5])


@pytest.mark.slow
def test_event_table_nonlinear_save_load(event_table_fit: mb.Fit, tmp_path: Path) -> None:
    fit = event_table_fit
    assert (fit.design.source["EVID"] == 1).sum() == 4  # the dose records travel with the fit
    loaded = _check_saved(fit, tmp_path / "fit")
    assert loaded.design.dosing == fit.design.dosing
    np.testing.assert_array_equal(loaded.design.doses.amount, fit.design.doses.amount)
    pd.testing.assert_frame_equal(loaded.typical_values(), fit.typical_values())
    for a, b in zip(loaded.individual_parameters(), fit.individual_parameters(), strict=True):
        pd.testing.assert_frame_equal(a, b)
    times = [0.5, 2.0, 8.0, 24.0]
    a, b = loaded.concentration_curves(times=times), fit.concentration_curves(times=times)
    pd.testing.assert_frame_equal(a.curves, b.curves)
    pd.testing.assert_frame_equal(a.observed, b.observed)
    doses = mb.pk.regimen(4.0, 2, 12.0)
    for subject, seed in (("1", None), (None, 3)):
        pd.testing.assert_frame_equal(
            loaded.predict_regimen(doses, times, subject=subject, seed=seed),
            fit.predict_regimen(doses, times, subject=subject, seed=seed),
        )


@pytest.mark.slow
def test_format_1_still_loads(count_small_fit: mb.Fit, tmp_path: Path) -> None:
    """A fit saved in format 1 (the rows used in data.parquet, no versions) loads, with the
    coding of its time: an unordered Categorical in sorted order of its values."""
    fit = count_small_fit
    path = fit.save(tmp_path / "fit")
    (path / "source.parquet").unlink()
    old = fit.design.data.copy()  # as format 1 saved it, had the user given a Categorical
    old["arm"] = pd.Categorical(old["arm"], categories=["trt", "ctl"])
    old.to_parquet(path / "data.parquet")
    meta = json.loads((path / "meta.json").read_text())
    del meta["versions"]
    meta["format"] = 1
    (path / "meta.json").write_text(json.dumps(meta))
    loaded = _load_quietly(path)
    assert loaded.design.fixed_terms == fit.design.fixed_terms == ("Intercept", "x", "arm[trt]")
    assert loaded.design.report == fit.design.report
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary())
    _same_predictions(fit, loaded, fit.design.data.iloc[:5])
    again = _load_quietly(loaded.save(tmp_path / "again"))  # re-saved in format 2
    pd.testing.assert_frame_equal(again.summary(), fit.summary())
    shutil.rmtree(tmp_path / "again")
