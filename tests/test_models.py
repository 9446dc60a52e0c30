"""Every spec in models/ loads, round-trips, and is fitted by a smoke test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import quiet_fit

import mixedbayes as mb

SPECS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_loads_and_round_trips(path: Path) -> None:
    spec = mb.load_spec(path)
    assert mb.load_spec(spec.to_yaml()) == spec
    assert spec.data is not None, "a bundled model names its data"


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_fits(path: Path) -> None:
    fit = quiet_fit(path, None, draws=200, tune=300, chains=2, seed=7)
    table = fit.summary()
    assert np.isfinite(table["mean"]).all()
    assert fit.idata["posterior"].sizes["draw"] == 200
