"""Compile stage: graph builds, names and dims, logp finite at the initial point (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return mb.simulate.lmm(n_clinics=4, patients_per_clinic=5, n_times=4, crossed=3, seed=2).data


def test_sleepstudy_graph(sleepstudy: pd.DataFrame) -> None:
    cm = mb.compile(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    m = cm.model
    names = set(m.named_vars)
    assert {"b", "sd_Subject", "cor_Subject", "r_Subject", "sigma", "Reaction"} <= names
    assert m.named_vars_to_dims["r_Subject"] == ("Subject", "Subject_term")
    assert m.named_vars_to_dims["b"] == ("term",)
    assert list(m.coords["Subject"])[:2] == ["308", "309"]
    assert list(m.coords["term"]) == ["Intercept", "Days"]
    assert np.isfinite(cm.initial_logp())


@pytest.mark.parametrize(
    ("formula", "present", "absent"),
    [
        ("y ~ time + (time || patient)", {"sd_patient", "r_patient"}, {"cor_patient"}),
        ("y ~ trt * time + (1 | clinic/patient)", {"r_clinic", "r_clinic:patient"}, set()),
        ("y ~ time + (1 | patient) + (1 | rater)", {"sd_patient", "sd_rater"}, set()),
        ("y ~ time + (1 + time | patient) + (0 + dose | patient)", {"cor_patient"}, set()),
        ("y ~ 0 + time + (1 | clinic)", {"b"}, {"Intercept"}),
        (
            "y ~ trt * time + age * time + dose + (1 | clinic) + (1 + time | clinic:patient)",
            {"cor_clinic:patient", "r_clinic:patient"},
            {"cor_clinic"},
        ),
    ],
)
def test_graph_variants(
    sim: pd.DataFrame, formula: str, present: set[str], absent: set[str]
) -> None:
    cm = mb.compile(mb.LMM(formula), sim)
    names = set(cm.model.named_vars)
    assert present <= names, names
    assert not (absent & names)
    assert np.isfinite(cm.initial_logp())


@pytest.mark.parametrize("param", ["centered", "noncentered"])
def test_parametrizations_build(sleepstudy: pd.DataFrame, param: str) -> None:
    spec = mb.LMM("Reaction ~ Days + (Days | Subject)", parametrization=param)
    cm = mb.compile(spec, sleepstudy, marginalize=False)
    free = {v.name for v in cm.model.free_RVs}
    if param == "centered":  # hierarchically centred on the population intercept
        assert "beta_Subject" in free and "z_Subject" not in free
        assert "r_Subject" in cm.model.named_vars
    else:
        assert "z_Subject" in free and "r_Subject" not in free
    assert np.isfinite(cm.initial_logp())


def test_hierarchical_centring_absorbs_slope_interactions(sim: pd.DataFrame) -> None:
    """``y ~ time * trt + (time | patient)``, centred: the slope of ``time`` is centred on
    ``b[time] + b[trt:time] · trt`` (trt constant within patients), the intercept on
    ``Intercept + b[trt] · trt``; so with the level coefficients fixed, the likelihood does
    not move when those fixed effects do (the ridge between them and the levels is gone)."""
    from mixedbayes.compile.regression import hierarchical_centring

    spec = mb.LMM("y ~ time * trt + (time | patient)", parametrization="centered")
    cm = mb.compile(spec, sim, marginalize=False)
    design, model = cm.design, cm.model
    centring = hierarchical_centring(design)
    assert centring is not None and centring.factor == "patient"
    slopes = [t for t in design.fixed_terms if t != "Intercept"]
    cols, values = centring.interactions["time"]
    assert [slopes[j] for j in cols] == ["time:trt"]
    g = design.group("patient")
    trt = sim.loc[design.obs_index, "trt"].to_numpy(dtype=float)
    first = [int(np.flatnonzero(g.index == j)[0]) for j in range(g.n_levels)]
    np.testing.assert_allclose(values[:, 0], trt[first])
    assert [slopes[j] for j in centring.between] == ["trt"]
    y = model.observed_RVs[0]
    loglik = model.compile_fn(
        model.logp(vars=[y], sum=True), inputs=model.value_vars, on_unused_input="ignore"
    )
    point = model.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in point.items()}
    moved = dict(point)
    moved["b_slope"] = point["b_slope"] + rng.normal(0, 0.5, point["b_slope"].shape)
    moved["Intercept"] = point["Intercept"] + 0.7
    np.testing.assert_allclose(loglik(moved), loglik(point), rtol=1e-10)


def test_mixed_blocks_cor_is_block_diagonal(sim: pd.DataFrame) -> None:
    cm = mb.compile(mb.LMM("y ~ time + (1 + time | patient) + (0 + dose | patient)"), sim)
    import pymc as pm

    draw = pm.draw(cm.model["cor_patient"], random_seed=1)
    assert draw.shape == (3, 3)
    assert draw[0, 2] == 0 and draw[1, 2] == 0 and np.allclose(np.diag(draw), 1)
    # each block's variable has named dims: the levels and that block's terms
    dims = cm.model.named_vars_to_dims
    blocks = [n for n in ("r_patient_0", "z_patient_0", "r_patient_1", "z_patient_1") if n in dims]
    assert len(blocks) == 2
    for name in blocks:
        b = int(name[-1])
        assert dims[name] == ("patient", f"patient_term_{b}")
    assert cm.model.coords["patient_term_0"] == ("Intercept", "time")
    assert cm.model.coords["patient_term_1"] == ("dose",)


def test_user_prior_reaches_the_graph(sleepstudy: pd.DataFrame) -> None:
    spec = mb.LMM(
        "Reaction ~ Days + (1 | Subject)",
        priors=[{"class": "b", "coef": "Days", "prior": "normal(100, 0.001)"}],
    )
    cm = mb.compile(spec, sleepstudy)
    import pymc as pm

    draws = pm.draw(cm.model["b"], draws=200, random_seed=2)
    assert np.allclose(draws[:, 1], 100, atol=0.01)
