"""Compile reuse: same structure → same key (data swapped in), other structure → other key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from conftest import quiet_fit

import mixedbayes as mb
from mixedbayes.inference import COMPILE_CACHE
from mixedbayes.inference.reuse import structure_key

SPEC = Path(__file__).resolve().parents[1] / "models" / "sleepstudy.yaml"


def _noisy(data: pd.DataFrame, seed: int) -> pd.DataFrame:
    out = data.copy()
    out["Reaction"] = out["Reaction"] + np.random.default_rng(seed).normal(0, 20, len(out))
    return out


def test_new_data_same_structure_same_key(sleepstudy: pd.DataFrame) -> None:
    """New responses change the default priors and the statistics, which are data
    containers: the key is the same and the container values differ."""
    spec = mb.load_spec(SPEC)
    for marginalize in (True, False):
        a = mb.compile(spec, sleepstudy, marginalize=marginalize).sampling_model
        b = mb.compile(spec, _noisy(sleepstudy, 1), marginalize=marginalize).sampling_model
        (ka, da), (kb, db) = structure_key(a), structure_key(b)
        assert ka == kb
        assert any(not np.array_equal(da[k], db[k]) for k in da)
        assert any(k.startswith("prior_") for k in da)


def test_other_structure_or_prior_other_key(sleepstudy: pd.DataFrame) -> None:
    base = structure_key(mb.compile(mb.load_spec(SPEC), sleepstudy).sampling_model)[0]
    other_formula = mb.compile(mb.LMM("Reaction ~ Days + (Days || Subject)"), sleepstudy)
    assert structure_key(other_formula.sampling_model)[0] != base
    fewer_rows = mb.compile(mb.load_spec(SPEC), sleepstudy.iloc[:-10], marginalize=False)
    full = mb.compile(mb.load_spec(SPEC), sleepstudy, marginalize=False)
    assert structure_key(fewer_rows.model)[0] != structure_key(full.model)[0]
    lkj = mb.LMM("Reaction ~ Days + (Days | Subject)", priors=[{"class": "cor", "prior": "lkj(4)"}])
    assert structure_key(mb.compile(lkj, sleepstudy).sampling_model)[0] != base


def test_refit_reuses_the_compiled_model(sleep_fit: mb.Fit, sleepstudy: pd.DataFrame) -> None:
    """Refitting the sleepstudy spec on new responses takes the compiled model from the cache
    (no compilation) and its posterior follows the new data."""
    hits = COMPILE_CACHE.hits
    refit = quiet_fit(mb.load_spec(SPEC), _noisy(sleepstudy, 2), draws=500, chains=2, seed=3)
    assert COMPILE_CACHE.hits == hits + 1
    assert list(refit.posterior["Subject"].to_numpy()) == list(sleep_fit.design.groups[0].levels)
    sigma_new = float(refit.posterior["sigma"].mean())
    sigma_old = float(sleep_fit.posterior["sigma"].mean())
    assert sigma_new > sigma_old + 3  # sqrt(25.6² + 20²) ≈ 32.5
