"""Reproducibility: a seed fixes the draws (the default JAX program and pymc) and the
predictions; save → load loses nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import quiet_fit

import mixedbayes as mb

pytestmark = pytest.mark.slow  # every test here needs a fit

SLEEP_SPEC = Path(__file__).resolve().parents[1] / "models" / "sleepstudy.yaml"

#: sample_stats of pm.sample that are clock readings, not functions of the seed
CLOCK_STATS = ("perf_counter_diff", "perf_counter_start", "process_time_diff")
#: attributes that record when or how long, not what
CLOCK_ATTRS = ("created_at", "sampling_time")


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def assert_same_draws(a: xr.DataTree, b: xr.DataTree, groups: tuple[str, ...]) -> None:
    """Bitwise identical variables (names, dims, dtypes, values) in ``groups``."""
    for group in groups:
        da, db = a[group].to_dataset(), b[group].to_dataset()
        names = sorted(v for v in da.data_vars if v not in CLOCK_STATS)
        assert names == sorted(v for v in db.data_vars if v not in CLOCK_STATS), group
        assert names, group
        for v in names:
            assert da[v].dims == db[v].dims, (group, v)
            assert da[v].dtype == db[v].dtype, (group, v)
            assert _equal(da[v].to_numpy(), db[v].to_numpy()), (group, v)


def test_same_seed_same_draws_default(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    # the same settings as the session fit; the compiled model is reused, the draws must not
    # depend on that
    again = quiet_fit(
        mb.load_spec(SLEEP_SPEC), sleepstudy, draws=1000, tune=1000, chains=4, seed=11
    )
    assert again.idata["posterior"].attrs["sampler"] == "numpyro"  # the auto policy's pick
    assert_same_draws(sleep_fit.idata, again.idata, ("posterior", "sample_stats"))
    other = quiet_fit(
        mb.load_spec(SLEEP_SPEC), sleepstudy, draws=1000, tune=1000, chains=4, seed=12
    )
    assert not np.array_equal(
        sleep_fit.posterior["sigma"].to_numpy(), other.posterior["sigma"].to_numpy()
    )


def test_same_seed_same_draws_pymc(sleepstudy: pd.DataFrame) -> None:
    spec = mb.load_spec(SLEEP_SPEC)
    kw: dict[str, Any] = {"draws": 150, "tune": 150, "chains": 2, "sampler": "pymc"}
    a = quiet_fit(spec, sleepstudy, seed=21, **kw)
    b = quiet_fit(spec, sleepstudy, seed=21, **kw)
    assert a.idata["posterior"].attrs["sampler"] == "pymc"
    assert_same_draws(a.idata, b.idata, ("posterior", "sample_stats"))
    c = quiet_fit(spec, sleepstudy, seed=22, **kw)
    assert not np.array_equal(a.posterior["b"].to_numpy(), c.posterior["b"].to_numpy())


def _newdata() -> pd.DataFrame:
    return pd.DataFrame({"Days": [0, 4, 9, 2], "Subject": ["308", "308", "new1", "new2"]})


@pytest.mark.parametrize("kind", ["response", "mean"])
def test_same_seed_same_predictions(sleep_fit: mb.Fit, kind: str) -> None:
    new = _newdata()
    first = sleep_fit.predict(new, kind=kind, new_groups="sample", seed=7)  # type: ignore[arg-type]
    second = sleep_fit.predict(new, kind=kind, new_groups="sample", seed=7)  # type: ignore[arg-type]
    xr.testing.assert_identical(first, second)
    other = sleep_fit.predict(new, kind=kind, new_groups="sample", seed=8)  # type: ignore[arg-type]
    assert not np.array_equal(first.to_numpy(), other.to_numpy())
    # and on the fitted rows (no new levels, only the response noise is random)
    fitted = sleep_fit.predict(kind=kind, seed=3)  # type: ignore[arg-type]
    xr.testing.assert_identical(fitted, sleep_fit.predict(kind=kind, seed=3))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- save → load


def _attrs_equal(a: dict[str, Any], b: dict[str, Any], where: str) -> None:
    assert sorted(a) == sorted(b), where
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert np.array_equal(np.asarray(x), np.asarray(y)), (where, key)
        else:
            assert x == y and type(x) is type(y), (where, key, x, y)


def assert_same_tree(a: xr.DataTree, b: xr.DataTree, *, skip_object: bool = False) -> None:
    """Every group, variable, coord (values, dtype, dims) and attribute identical."""
    assert sorted(n.path for n in a.subtree) == sorted(n.path for n in b.subtree)
    for node in a.subtree:
        other = b[node.path] if node.path != "/" else b
        da, db = node.to_dataset(), other.to_dataset()
        _attrs_equal(dict(da.attrs), dict(db.attrs), node.path)
        assert sorted(da.coords) == sorted(db.coords), node.path
        for c in da.coords:
            assert da[c].dims == db[c].dims and da[c].dtype == db[c].dtype, (node.path, c)
            assert _equal(da[c].to_numpy(), db[c].to_numpy()), (node.path, c)
            _attrs_equal(dict(da[c].attrs), dict(db[c].attrs), f"{node.path}:{c}")
        assert sorted(da.data_vars) == sorted(db.data_vars), node.path
        for v in da.data_vars:
            if skip_object and da[v].dtype == object:
                continue
            assert da[v].dims == db[v].dims, (node.path, v)
            assert da[v].dtype == db[v].dtype, (node.path, v, da[v].dtype, db[v].dtype)
            assert _equal(da[v].to_numpy(), db[v].to_numpy()), (node.path, v)
            _attrs_equal(dict(da[v].attrs), dict(db[v].attrs), f"{node.path}:{v}")


def test_save_load_round_trip(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    path = sleep_fit.save(tmp_path / "fit")
    loaded = mb.load(path)
    assert_same_tree(sleep_fit.idata, loaded.idata, skip_object=True)
    assert loaded.spec == sleep_fit.spec
    assert str(loaded.priors) == str(sleep_fit.priors)
    assert loaded.timings == sleep_fit.timings
    d0, d1 = sleep_fit.design, loaded.design
    assert np.array_equal(d0.y, d1.y) and np.array_equal(d0.X, d1.X)
    assert d0.fixed_terms == d1.fixed_terms
    assert [g.levels for g in d0.groups] == [g.levels for g in d1.groups]
    assert str(d0.report) == str(d1.report)
    pd.testing.assert_frame_equal(d0.data, d1.data)
    # the reloaded fit predicts exactly as the original
    new = _newdata()
    xr.testing.assert_identical(
        sleep_fit.predict(new, kind="response", new_groups="sample", seed=5),
        loaded.predict(new, kind="response", new_groups="sample", seed=5),
    )
    pd.testing.assert_frame_equal(sleep_fit.summary(), loaded.summary())


def test_save_load_twice_is_stable(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    once = mb.load(sleep_fit.save(tmp_path / "a"))
    twice = mb.load(once.save(tmp_path / "b"))
    assert_same_tree(once.idata, twice.idata)


def test_save_load_keeps_object_variables(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    loaded = mb.load(sleep_fit.save(tmp_path / "fit"))
    assert_same_tree(sleep_fit.idata, loaded.idata)


def test_save_load_keeps_a_given_prior_table(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    from mixedbayes.priors.distributions import PriorDist

    rows = tuple(
        dataclasses.replace(r, prior=PriorDist("normal", (0.0, 7.0)), source="user")
        if r.class_ == "b"
        else r
        for r in sleep_fit.priors.rows
    )
    custom = dataclasses.replace(sleep_fit.priors, rows=rows)
    fit = dataclasses.replace(sleep_fit, priors=custom)
    loaded = mb.load(fit.save(tmp_path / "fit"))
    assert str(loaded.priors) == str(custom)
