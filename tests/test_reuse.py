"""Compile reuse: same structure → same key (data swapped in), other structure → other key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
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


def test_packed_model_has_the_same_log_density(sleepstudy: pd.DataFrame) -> None:
    """Packing the data containers (one vector per dtype, for a faster nutpie compile)
    changes neither the log-density nor its gradient, for the marginalised model (float
    statistics) and the plain one (integer group indices too)."""
    from mixedbayes.inference.reuse import PACK_PREFIX, pack_data

    for marginalize in (True, False):
        model = mb.compile(mb.load_spec(SPEC), sleepstudy, marginalize=marginalize).sampling_model
        _, data = structure_key(model)
        packed, packing = pack_data(model, data)
        containers = {n: v for n, v in data.items() if n in model.named_vars}
        assert {dtype for _, _, dtype in packing.sizes} == {
            str(v.dtype) for v in containers.values()
        }
        assert {slot[0] for slot in packing.slots} == set(containers)
        point = model.initial_point(0)
        fast = {"mode": "FAST_COMPILE"}  # no C compilation: this test only evaluates once
        assert np.isfinite(model.compile_logp(**fast)(point))
        np.testing.assert_allclose(
            packed.compile_logp(**fast)(point), model.compile_logp(**fast)(point)
        )
        same_order = [packed[rv.name] for rv in model.free_RVs]
        grad = model.compile_dlogp(**fast)(point)
        np.testing.assert_allclose(  # constant shapes reorder a few sums: rounding only
            packed.compile_dlogp(vars=same_order, **fast)(point),
            grad,
            rtol=1e-9,
            atol=1e-12 * abs(grad).max(),
        )
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.traversal import ancestors

        left = {v.name for v in ancestors([packed.logp()]) if isinstance(v, SharedVariable)}
        assert left == {name for name, _, _ in packing.sizes}
        assert all(name.startswith(PACK_PREFIX) for name in left)


def test_packing_lays_out_and_checks_new_data() -> None:
    from mixedbayes.inference.reuse import Packing

    packing = Packing(
        slots=(("a", "p_f", 0, (2, 2)), ("b", "p_f", 4, ()), ("i", "p_i", 0, (3,))),
        sizes=(("p_f", 5, "float64"), ("p_i", 3, "int64")),
    )
    out = packing.pack({"a": np.arange(4.0).reshape(2, 2), "b": np.float64(7), "i": [4, 5, 6]})
    np.testing.assert_array_equal(out["p_f"], [0, 1, 2, 3, 7])
    np.testing.assert_array_equal(out["p_i"], [4, 5, 6])
    assert out["p_i"].dtype == np.int64
    with pytest.raises(ValueError, match="'a' has shape"):
        packing.pack({"a": np.zeros(3), "b": 1.0, "i": [1, 2, 3]})
