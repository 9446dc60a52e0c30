"""The default sampler: the ``auto`` policy, the JAX program stored across sessions, and the
NumPy after-sampling paths (log-likelihood, posterior predictive) that replace compiles."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import count_data

import mixedbayes as mb
from mixedbayes.inference import reuse
from mixedbayes.inference.samplers import (
    AUTO_JAX_MAX_VALUES,
    _evaluated,
    auto_order,
    observed_values,
)


def _simulated(n_groups: int, per_group: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.5, n_groups)[g] + rng.normal(0, 1.0, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"s{i}" for i in g]})


def test_auto_policy_prefers_jax_unless_many_rows_are_read_row_by_row(
    sleepstudy: pd.DataFrame,
) -> None:
    sleep = mb.compile(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    assert observed_values(sleep.sampling_model) == 0  # marginalised: per-level statistics
    assert observed_values(sleep.model) == len(sleepstudy)
    assert auto_order(sleep.sampling_model)[0] == "numpyro"
    assert auto_order(sleep.model)[0] == "numpyro"
    big = _simulated(AUTO_JAX_MAX_VALUES // 10 + 1, 10)
    plain = mb.compile(mb.LMM("y ~ x + (1 | g)"), big, marginalize=False)
    assert observed_values(plain.model) > AUTO_JAX_MAX_VALUES
    assert auto_order(plain.model)[0] == "nutpie"
    marginal = mb.compile(mb.LMM("y ~ x + (1 | g)"), big)
    assert auto_order(marginal.sampling_model)[0] == "numpyro"


def test_auto_prefers_nutpie_for_many_values_per_draw() -> None:
    """A model sampling more than AUTO_JAX_MAX_TRACED values per draw (a compositional
    residual per sample and taxon) runs on nutpie; the packed counts are counted too."""
    import pymc as pm

    from mixedbayes.inference.samplers import AUTO_JAX_MAX_TRACED, traced_values

    with pm.Model() as wide:
        pm.Normal("x", shape=AUTO_JAX_MAX_TRACED + 1)
    assert traced_values(wide) == AUTO_JAX_MAX_TRACED + 1
    assert auto_order(wide)[0] == "nutpie"
    sim = mb.simulate.compositional(n_subjects=4, n_times=2, n_taxa=5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = mb.compile(sim.spec, sim.data)
    assert observed_values(small.sampling_model) == 8 * 5  # samples × taxa, packed
    assert auto_order(small.sampling_model)[0] == "numpyro"


def test_structure_key_is_the_same_in_another_process(sleepstudy: pd.DataFrame) -> None:
    """The key names the stored program: it must not depend on object addresses."""
    code = (
        "import pandas as pd, mixedbayes as mb\n"
        "from mixedbayes.inference.reuse import structure_key\n"
        f"df = pd.read_csv({str(SLEEP_CSV)!r})\n"
        "c = mb.compile(mb.LMM('Reaction ~ Days + (Days | Subject)'), df)\n"
        "print('KEY', structure_key(c.sampling_model)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    other = next(line.split()[1] for line in out.splitlines() if line.startswith("KEY"))
    here = mb.compile(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    assert reuse.structure_key(here.sampling_model)[0] == other


SLEEP_CSV = Path(mb.datasets.__file__).resolve().parent / "data" / "sleepstudy.csv"


def test_stored_program_is_loaded_not_traced_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second session (empty in-process cache) loads the stored program: exporting again
    would fail here; the draws are those of the first session."""
    import jax.export

    from mixedbayes.inference import artifacts

    monkeypatch.setenv("MIXEDBAYES_CACHE_DIR", str(tmp_path))
    spec = mb.LMM("y ~ x + (1 | g)")
    data = _simulated(5, 6)
    kw = {"draws": 30, "tune": 40, "chains": 2, "seed": 4, "sampler": "numpyro", "check": False}
    import mixedbayes.inference.jax_nuts as jax_nuts

    monkeypatch.setattr(jax_nuts, "COMPILE_CACHE", reuse.CompileCache())
    first = mb.fit(spec, data, **kw)
    stored = list((tmp_path / "programs").glob("*.jaxexport"))
    assert len(stored) == 1 and stored[0].with_suffix(".json").is_file()

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the program was traced again")

    monkeypatch.setattr(jax.export, "export", no_export)
    fresh = reuse.CompileCache()
    monkeypatch.setattr(jax_nuts, "COMPILE_CACHE", fresh)
    second = mb.fit(spec, data, **kw)
    assert fresh.misses == 1
    np.testing.assert_array_equal(
        first.posterior["sigma"].to_numpy(), second.posterior["sigma"].to_numpy()
    )
    assert artifacts.cache_dir() == tmp_path


def test_numpy_log_likelihood_equals_the_models_own(count_small_fit: mb.Fit) -> None:
    """The family's SciPy log-density at each draw's linear predictor (what ``mb.fit`` stores)
    equals the PyMC model's pointwise log-density at the same draws."""
    post = count_small_fit.idata["posterior"].to_dataset().isel(draw=slice(0, 20))
    stored = count_small_fit.idata["log_likelihood"].to_dataset().isel(draw=slice(0, 20))
    (own,) = _evaluated(count_small_fit.model, post)
    name = next(iter(stored.data_vars))
    np.testing.assert_allclose(stored[name].to_numpy(), own, rtol=1e-8, atol=1e-10)
    assert np.isfinite(own).all()


def test_posterior_predictive_is_simulated_like_the_observed_response(
    count_small_fit: mb.Fit,
) -> None:
    fit = count_small_fit
    tree = fit.sample_posterior_predictive(seed=2)
    name = next(iter(tree["observed_data"].data_vars))
    rep = tree["posterior_predictive"][name]
    obs = tree["observed_data"][name]
    assert rep.dims[2:] == obs.dims and rep.shape[2:] == obs.shape
    values = rep.to_numpy()
    assert (values >= 0).all() and np.array_equal(values, np.round(values))
    # the replicated counts follow the fitted means (Poisson: sd of a mean of 100 draws)
    mean = fit.predict(kind="mean").mean(("chain", "draw")).to_numpy()
    sim = values.mean(axis=(0, 1))
    assert np.all(np.abs(sim - mean) < 5 * np.sqrt(mean / values.shape[1]) + 0.5)
    again = fit.sample_posterior_predictive(seed=2)["posterior_predictive"][name].to_numpy()
    np.testing.assert_array_equal(values, again)
    assert len(count_data()) - 1 == obs.size  # the dropped row is not replicated


def test_fit_records_each_stage_and_names_them_in_order(count_small_fit: mb.Fit) -> None:
    from mixedbayes.results.summary import timing_text

    t = count_small_fit.timings
    stages = ["design", "build", "compile", "sample", "post", "check"]
    assert all(t[f"{s}_seconds"] >= 0 for s in stages)
    line = timing_text(t)
    labels = ["design", "model", "compiled", "sampled", "after", "checks"]
    positions = [line.index(f"{label} ") for label in labels]
    assert positions == sorted(positions)
    assert timing_text({}) == "not recorded"


def test_posterior_predictive_falls_back_to_pymc_only_when_numpy_cannot_simulate(
    count_small_fit: mb.Fit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A family without a NumPy simulator (or a kind without predictions) has PyMC draw the
    replicates; a NumPy simulation of the wrong shape is a bug and is raised, not hidden."""
    from mixedbayes.kinds.base import Kind
    from mixedbayes.results import ppc

    kind = type(count_small_fit.kind)
    calls: list[int | None] = []
    monkeypatch.setattr(ppc, "_with_pymc", lambda fit, seed: calls.append(seed) or "pymc")

    def no_simulator(self: object, design: object, posterior: object, seed: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(kind, "simulate", no_simulator)
    assert ppc.posterior_predictive(count_small_fit, 3) == "pymc" and calls == [3]
    monkeypatch.setattr(kind, "simulate", lambda self, d, p, s: None)
    assert ppc.posterior_predictive(count_small_fit, 4) == "pymc" and calls == [3, 4]
    monkeypatch.setattr(kind, "simulate", lambda self, d, p, s: np.zeros((1, 100, 3)))
    with pytest.raises(RuntimeError, match="bug"):
        ppc.posterior_predictive(count_small_fit, 5)

    class NoPredictions(Kind):
        name = "no-predictions"

    post = count_small_fit.idata["posterior"].to_dataset()
    assert NoPredictions().simulate(count_small_fit.design, post, 1) is None
