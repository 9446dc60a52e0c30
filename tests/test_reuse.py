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


def test_other_number_of_levels_other_key(sleepstudy: pd.DataFrame) -> None:
    """A factor's level count sizes the group effects through a scalar dim-length container:
    the same rows over fewer levels is another structure (a reused program would return
    effects of the old length)."""
    spec = mb.LMM("Reaction ~ Days + (1 | Subject)", parametrization="noncentered")
    fewer = sleepstudy.copy()
    fewer["Subject"] = fewer["Subject"].astype(str).replace({"309": "308"})  # 18 -> 17 levels
    a = mb.compile(spec, sleepstudy, marginalize=False).sampling_model
    b = mb.compile(spec, fewer, marginalize=False).sampling_model
    assert structure_key(a)[0] != structure_key(b)[0]


def _tiny(shift: float, labels: str) -> pd.DataFrame:
    """4 groups x 6 rows of ``y = shift + x + group effect + noise``, groups named
    ``<labels>0`` .. ``<labels>3``."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(4), 6)
    x = np.tile(np.linspace(-1.0, 1.0, 6), 4)
    y = shift + x + rng.normal(0, 0.5, 4)[g] + rng.normal(0, 0.3, len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"{labels}{i}" for i in g]})


def test_refit_reuses_the_compiled_model() -> None:
    """Refitting a spec on new data of the same structure (other responses, other level
    names) takes the compiled model from the cache, and the posterior follows the new data
    (a stale data swap would keep the old intercept or the old level names)."""
    spec = mb.LMM("y ~ x + (1 | g)")
    draws = {"draws": 50, "tune": 100, "chains": 1, "seed": 3}
    first = quiet_fit(spec, _tiny(0.0, "a"), **draws)
    hits, misses = COMPILE_CACHE.hits, COMPILE_CACHE.misses
    refit = quiet_fit(spec, _tiny(40.0, "b"), **draws)
    assert (COMPILE_CACHE.hits, COMPILE_CACHE.misses) == (hits + 1, misses)
    assert list(refit.posterior["g"].to_numpy()) == ["b0", "b1", "b2", "b3"]
    assert list(first.posterior["g"].to_numpy()) == ["a0", "a1", "a2", "a3"]
    old = first.summary().set_index("parameter").loc["b[Intercept]", "mean"]
    new = refit.summary().set_index("parameter").loc["b[Intercept]", "mean"]
    assert abs(new - old - 40.0) < 3.0, (old, new)


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


def test_imputed_covariate_other_missing_cells_same_key() -> None:
    """The rows of an imputed covariate's missing cells are data: as many cells missing in
    other rows is the same structure (a simulation study compiles once)."""
    rng = np.random.default_rng(3)
    n = 40
    base = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "s": (rng.random(n) < 0.5).astype(float),
            "t": np.tile(np.arange(4.0), n // 4),
            "id": np.repeat([f"g{i}" for i in range(n // 4)], 4),
        }
    )
    spec = mb.LMM(
        "y ~ x + s + t + (1 | id)",
        parametrization="noncentered",
        missing={
            "covariates": {
                "x": {"formula": "x ~ t + (1 | id)"},
                "s": {"formula": "s ~ t", "family": "bernoulli"},
            }
        },
    )
    keys = []
    for rows in ([1, 5, 9, 20], [2, 7, 30, 39]):
        data = base.copy()
        data.loc[rows, "x"] = np.nan
        data.loc[[r + 1 for r in rows[:2]], "s"] = np.nan
        keys.append(structure_key(mb.compile(spec, data).sampling_model)[0])
    assert keys[0] == keys[1]
