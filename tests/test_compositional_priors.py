"""The compositional kind's pooling priors, structurally (no sampling): the regularised
horseshoe across taxa (``pooling: horseshoe``) and the per-taxon group SDs (``group_sd:
taxon``): prior rows, names and dims, the effects the graph computes from its free
variables, zero-sum effects, finite log-density; and the new-level effects drawn for
prediction against the model's covariance."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import mixedbayes as mb
from mixedbayes.compositional import pivot_basis
from mixedbayes.kinds import kind_of
from mixedbayes.priors import parse_prior


@pytest.fixture(scope="module")
def sim() -> Any:
    return mb.simulate.compositional(
        n_subjects=8, n_times=3, n_taxa=10, share_changed=0.2, effect=1.0, seed=4
    )


def _compile(spec: dict[str, Any], data: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.compile(spec, data)


def _values(model: Any, names: list[str], seed: int) -> list[np.ndarray]:
    """``names`` evaluated at a random point of the model's free (transformed) values."""
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in model.initial_point().items()}
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    return list(fn(point))


def _rows(spec: dict[str, Any], data: Any, cls: str) -> Any:
    table = mb.get_priors(spec, data).to_frame()
    return table[table["class"] == cls]


# -- pooling: horseshoe -----------------------------------------------------------------------


@pytest.mark.parametrize("parametrization", ["noncentered", "centered"])
def test_horseshoe_pooling_scales_each_taxon_and_stays_zero_sum(
    sim: Any, parametrization: str
) -> None:
    """``pooling: horseshoe``: ``b = v − mean(v)``, ``v = tau·λ̃·w`` with the regularised
    local scale ``λ̃² = c²λ²/(c² + tau²λ²)``; its priors are rows of the prior table."""
    spec = {**sim.spec, "pooling": "horseshoe", "parametrization": parametrization}
    model = (cm := _compile(spec, sim.data)).model
    slopes = ["group[diet]", "time", "group[diet]:time"]
    dims = model.named_vars_to_dims
    assert dims["lambda_b"] == ("slope", "taxon") and dims["tau_b"] == ("slope",)
    assert "sd_b" not in model.named_vars and "slab_b" in model.named_vars
    raw = "b_slope_raw" if parametrization == "centered" else "z_b_slope"
    b, tau, slab, lam, w = _values(model, ["b", "tau_b", "slab_b", "lambda_b", raw], 5)
    scale = np.sqrt(
        slab[:, None] * (tau[:, None] * lam) ** 2 / (slab[:, None] + (tau[:, None] * lam) ** 2)
    )
    v = w if parametrization == "centered" else scale * w
    np.testing.assert_allclose(b[1:], v - v.mean(axis=1, keepdims=True), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b.sum(axis=1), 0.0, atol=1e-9)
    assert np.isfinite(cm.initial_logp())
    assert list(_rows(spec, sim.data, "tau_b")["coef"]) == slopes


def test_horseshoe_prior_rows_follow_the_expected_share_of_changed_taxa(sim: Any) -> None:
    """The global scale is half-Student-t(3, τ0), τ0 = p0/(J − p0)/sd(x) with p0 a tenth of
    the J taxa (at least one); the slab variance InvGamma(2, 2/sd(x)²), a Student-t(4,
    1/sd(x)) slab; a user's prior for ``tau_b`` replaces the default."""
    from mixedbayes.priors.compositional import EXPECTED_SHARE, GLOBAL_DF, SLAB_DF

    spec = {**sim.spec, "pooling": "horseshoe"}
    d = _compile(spec, sim.data).design
    J = len(d.taxa)
    p0 = max(1.0, EXPECTED_SHARE * J)
    tau = _rows(spec, sim.data, "tau_b").set_index("coef")
    slab = _rows(spec, sim.data, "slab_b").set_index("coef")
    terms = list(d.samples.fixed_terms)
    for term in ["group[diet]", "time", "group[diet]:time"]:
        sx = float(np.std(d.samples.X[:, terms.index(term)], ddof=1))
        dist = parse_prior(tau.loc[term, "prior"])
        assert dist.name == "student_t" and dist.args[0] == GLOBAL_DF and dist.args[1] == 0
        np.testing.assert_allclose(dist.args[2], p0 / (J - p0) / sx, rtol=1e-3)
        s = parse_prior(slab.loc[term, "prior"])
        assert s.name == "inv_gamma" and s.args[0] == SLAB_DF / 2
        np.testing.assert_allclose(s.args[1], SLAB_DF / 2 / sx**2, rtol=1e-3)
    mine = {**spec, "priors": [{"class": "tau_b", "prior": "half_normal(0.1)"}]}
    assert set(_rows(mine, sim.data, "tau_b")["prior"]) == {"half_normal(0.1)"}


def test_horseshoe_global_scale_has_light_enough_tails_in_prior_draws(sim: Any) -> None:
    """Prior draws of the global scale: rarely far above τ0 (a half-Cauchy puts 6 % of its
    mass above 10·τ0, where every taxon sits in the slab and the data cannot tell tau's
    size; a half-t(3) about 0.2 %)."""
    import pymc as pm

    model = _compile({**sim.spec, "pooling": "horseshoe"}, sim.data).model
    tau0 = float(
        parse_prior(
            _rows({**sim.spec, "pooling": "horseshoe"}, sim.data, "tau_b")["prior"].iloc[0]
        ).args[2]
    )
    draws = np.asarray(pm.draw(model["tau_b"], draws=20_000, random_seed=3))[:, 0]
    assert np.mean(draws > 10 * tau0) < 0.01
    assert 0.5 < np.median(draws) / tau0 < 1.0  # the half-t(3)'s median is 0.765·τ0


# -- group_sd: taxon --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "parametrization"),
    [
        ("~ group * time + (1 | subject)", "noncentered"),
        ("~ group * time + (1 | subject)", "centered"),
        ("~ group * time + (time | subject)", "noncentered"),
        ("~ group * time + (time | subject)", "centered"),
    ],
)
def test_per_taxon_group_sds_rescale_the_shared_effects_and_stay_zero_sum(
    sim: Any, formula: str, parametrization: str
) -> None:
    """``group_sd: taxon``: ``r = C(ρ ⊙ r₀)`` with ``r₀`` the shared-SD zero-sum effects,
    ``ρ = exp(tau_sd·ζ)``, ``taxon_sd = sd·ρ``; ``tau_sd`` per factor and term in the prior
    table (half-Normal(0, 0.5)); the log-density is finite."""
    spec = {**sim.spec, "formula": formula, "group_sd": "taxon", "parametrization": parametrization}
    cm = _compile(spec, sim.data)
    model, design = cm.model, cm.design
    terms = list(design.group("subject").terms)
    dims = model.named_vars_to_dims
    assert dims["tau_sd_subject"] == ("subject_term",)
    assert dims["taxon_sd_subject"] == ("subject_term", "taxon")
    assert dims["z_taxon_sd_subject"] == ("subject_term", "taxon")
    assert dims["r_subject"] == ("subject", "subject_term", "taxon")
    rows = _rows(spec, sim.data, "tau_sd")
    assert list(rows["coef"]) == terms and set(rows["group"]) == {"subject"}
    assert set(rows["prior"]) == {"normal(0, 0.5)"}
    assert np.isfinite(cm.initial_logp())
    names = ["r_subject", "sd_subject", "tau_sd_subject", "z_taxon_sd_subject", "taxon_sd_subject"]
    correlated = "time |" in formula
    if correlated:
        names.append("cor_subject")
    if parametrization == "centered":
        names.append("r_subject_basis" if correlated else "r_subject_raw")
    else:
        names.append("z_subject")
    r, sd, tau, zeta, taxon_sd, *rest = _values(model, names, 7)
    rho = np.exp(tau[:, None] * zeta)
    np.testing.assert_allclose(taxon_sd, sd[:, None] * rho, rtol=1e-10)
    H = pivot_basis(len(design.taxa))
    if parametrization == "centered":
        raw = rest[-1]
        shared = np.einsum("lbk,jb->lkj", raw, H) if correlated else raw
    else:
        z = rest[-1]
        if correlated:
            L = np.diag(sd) @ np.linalg.cholesky(rest[0])
            shared = np.einsum("km,lmb,jb->lkj", L, z, H)
        else:
            shared = sd[None, :, None] * np.einsum("lkb,jb->lkj", z, H)
    expected = shared * rho[None]
    expected -= expected.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(r, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r.sum(axis=-1), 0.0, atol=1e-9)
    kind = kind_of(cm.design.spec)
    assert "tau_sd_subject" in kind.family_variables(design)


def test_new_level_effects_follow_the_models_per_taxon_covariance() -> None:
    """Effects drawn for unseen levels (``new_groups="sample"``) have the model's covariance
    across taxa, ``sd² C R C R C`` with ``C`` the centring matrix and ``R = diag(ρ)`` (``C``
    times ``sd²`` with shared SDs)."""
    from mixedbayes.results.compositional import _new_level_effects

    J, sd = 5, 0.8
    rho = np.array([1.0, 3.0, 0.5, 1.0, 1.5])
    chol = np.full((1, 1, 1), sd)
    rng = np.random.default_rng(11)
    C = np.eye(J) - 1.0 / J
    for scales, R in ((None, np.eye(J)), (rho[None, None, :], np.diag(rho))):
        x = _new_level_effects(chol, 40_000, J, rng, scales)[0, :, 0, :]
        np.testing.assert_allclose(x.sum(axis=-1), 0.0, atol=1e-9)
        expected = sd**2 * C @ R @ C @ R @ C
        np.testing.assert_allclose(np.cov(x.T), expected, atol=0.05 * expected.max())
