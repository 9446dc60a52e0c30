"""The ``compositional`` kind: log-ratio transforms (property-based), zero handling, spec
and data errors, the graph (zero-sum effects, the Dirichlet-multinomial against SciPy), and
one small fit: recovery of taxon effects, lfsr calls, expected proportions."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mixedbayes as mb
from mixedbayes.compositional import get_transform, pivot_basis, replace_zeros
from mixedbayes.design.data import DataWarning
from mixedbayes.errors import DataError, SpecError

# -- transforms -------------------------------------------------------------------------------

compositions = st.integers(min_value=2, max_value=9).flatmap(
    lambda j: arrays(
        float, (3, j), elements=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
    )
)


@settings(max_examples=60, deadline=None)
@given(compositions)
def test_clr_rows_sum_to_zero_and_round_trip(x: np.ndarray) -> None:
    taxa = [f"t{j}" for j in range(x.shape[1])]
    clr = get_transform("clr").setup(taxa)
    z = clr.forward(x)
    np.testing.assert_allclose(z.sum(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(clr.inverse(z), x / x.sum(axis=1, keepdims=True), rtol=1e-8)
    # scale invariance: a composition's total does not matter
    np.testing.assert_allclose(clr.forward(7.0 * x), z, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(compositions)
def test_ilr_basis_is_orthonormal_and_round_trips(x: np.ndarray) -> None:
    J = x.shape[1]
    ilr = get_transform("ilr").setup([f"t{j}" for j in range(J)])
    V = ilr.matrix()
    np.testing.assert_allclose(V.T @ V, np.eye(J - 1), atol=1e-12)
    np.testing.assert_allclose(V.sum(axis=0), 0.0, atol=1e-12)
    z = ilr.forward(x)
    assert z.shape == (3, J - 1) and len(ilr.coordinates()) == J - 1
    np.testing.assert_allclose(ilr.inverse(z), x / x.sum(axis=1, keepdims=True), rtol=1e-8)
    # an isometry: ILR distances are CLR (Aitchison) distances
    clr = get_transform("clr").setup([f"t{j}" for j in range(J)]).forward(x)
    np.testing.assert_allclose(
        np.linalg.norm(z[0] - z[1]), np.linalg.norm(clr[0] - clr[1]), rtol=1e-8, atol=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(compositions, st.data())
def test_alr_drops_the_reference_and_round_trips(x: np.ndarray, data: st.DataObject) -> None:
    J = x.shape[1]
    taxa = [f"t{j}" for j in range(J)]
    ref = data.draw(st.sampled_from(taxa))
    alr = get_transform("alr", reference=ref).setup(taxa)
    assert ref not in alr.coordinates() and len(alr.coordinates()) == J - 1
    z = alr.forward(x)
    j = taxa.index(ref)
    others = [k for k in range(J) if k != j]
    np.testing.assert_allclose(z, np.log(x[:, others] / x[:, [j]]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(alr.inverse(z), x / x.sum(axis=1, keepdims=True), rtol=1e-8)


def test_alr_default_reference_is_the_most_prevalent_taxon() -> None:
    counts = np.array([[0, 5, 1], [3, 9, 0], [0, 1, 4]])
    alr = get_transform("alr").setup(["a", "b", "c"], counts)
    assert alr.reference == "b"  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match="not one of the taxa") as err:
        get_transform("alr", reference="z").setup(["a", "b", "c"], counts)
    assert err.value.where == ["reference"]
    with pytest.raises(SpecError, match="orthonormal"):
        get_transform("ilr", basis=((1.0, 0.0), (0.0, 1.0), (0.0, 0.0))).setup(["a", "b", "c"])
    assert pivot_basis(2).shape == (2, 1)


@settings(max_examples=40, deadline=None)
@given(arrays(float, (4, 5), elements=st.integers(0, 50).map(float)))
def test_zero_replacement_gives_positive_closed_compositions(counts: np.ndarray) -> None:
    counts = counts.copy()
    counts[:, 0] += 1  # every sample has reads
    for how, value in (("pseudocount", 0.5), ("multiplicative", 0.65)):
        p = replace_zeros(counts, how, value)
        assert (p > 0).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # multiplicative replacement keeps the ratios of the non-zero parts
    p = replace_zeros(counts, "multiplicative", 0.65)
    for i, row in enumerate(counts):
        nz = np.flatnonzero(row)
        np.testing.assert_allclose(p[i, nz] / p[i, nz[0]], row[nz] / row[nz[0]], rtol=1e-9)


# -- spec and data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Any:
    return mb.simulate.compositional(
        n_subjects=16, n_times=3, n_taxa=12, share_changed=0.34, effect=1.0, seed=4
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"formula": "y ~ group"}, "right-hand side"),
        ({"family": "poisson"}, "likelihood"),
        ({"likelihood": "logratio_normal", "zeros": "model"}, "need zeros replaced"),
        ({"reference": "taxon001"}, "transform: alr"),
        ({"transform": "plr"}, "unknown transform"),
        ({"taxa": {"min_prevalence": 2}}, "less than or equal"),
    ],
)
def test_bad_specs_are_named(options: dict[str, Any], match: str) -> None:
    spec = {"kind": "compositional", "formula": "~ group", **options}
    with pytest.raises(SpecError, match=match):
        mb.load_spec(spec)


def test_spec_round_trips_and_builds_in_python() -> None:
    spec = mb.Compositional("~ group * time + (1 | subject)", transform="alr", reference="t1")
    assert mb.load_spec(spec.to_yaml()) == spec
    assert spec.zeros == "model" and spec.likelihood == "multinomial"
    assert (
        mb.load_spec(
            {"kind": "compositional", "formula": "~ 1", "likelihood": "logratio_normal"}
        ).zeros
        == "pseudocount"
    )


def _data(
    sim: Any, counts: pd.DataFrame | None = None, samples: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    return {
        "counts": sim.data["counts"] if counts is None else counts,
        "samples": sim.data["samples"] if samples is None else samples,
    }


@pytest.mark.parametrize(
    ("change", "where", "match"),
    [
        ("extra_count_row", "data.samples", "in the counts but not in the metadata"),
        ("missing_count_row", "data.counts", "in the metadata but not in the counts"),
        ("negative", "data.counts", "negative counts"),
        ("fraction", "data.counts", "integer counts"),
        ("unknown_taxa", "taxa", "not columns of the counts"),
        ("proportions", "data.counts", "sum to 1"),
        ("one_table", "data", "two tables"),
    ],
)
def test_bad_data_is_named_and_not_mutated(sim: Any, change: str, where: str, match: str) -> None:
    counts = sim.data["counts"].copy()
    samples = sim.data["samples"].copy()
    spec: dict[str, Any] = dict(sim.spec)
    data: Any
    if change == "extra_count_row":
        counts.loc["S9999"] = counts.iloc[0]
    elif change == "missing_count_row":
        counts = counts.iloc[1:]
    elif change == "negative":
        counts.iloc[2, 3] = -1
    elif change == "fraction":
        counts = counts.astype(float)
        counts.iloc[1, 1] = 2.5
    elif change == "unknown_taxa":
        spec["taxa"] = ["taxon001", "nope"]
    elif change == "proportions":
        counts = counts.div(counts.sum(axis=1), axis=0) * 0.9
        spec["likelihood"] = "logratio_normal"
    before = frame_hash(counts), frame_hash(samples)
    data = counts if change == "one_table" else _data(sim, counts, samples)
    with pytest.raises(DataError, match=match) as err:
        mb.design(spec, data)
    assert any(where in w for w in err.value.where), err.value.where
    assert (frame_hash(counts), frame_hash(samples)) == before


def test_all_zero_taxa_are_dropped_with_a_warning_and_listed(sim: Any) -> None:
    counts = sim.data["counts"].assign(ghost=0, rare=0)
    counts.iloc[0, -1] = 3
    spec = {**sim.spec, "taxa": {"min_prevalence": 0.05}}
    with pytest.warns(DataWarning, match="2 of 14 taxa dropped"):
        d = mb.design(spec, _data(sim, counts))
    assert d.dropped_taxa["ghost"] == "no reads in any sample"
    assert d.dropped_taxa["rare"].startswith("prevalence")
    assert "ghost" not in d.taxa and d.counts.shape == (48, 12)
    with pytest.raises(SpecError, match="intercept"):
        mb.design({**sim.spec, "formula": "~ 0 + group"}, sim.data)


# -- the graph ------------------------------------------------------------------------------


@pytest.mark.parametrize("likelihood", ["dirichlet_multinomial", "multinomial", "logratio_normal"])
def test_graph_names_zero_sum_effects_and_likelihood(sim: Any, likelihood: str) -> None:
    from scipy import stats

    spec = {**sim.spec, "likelihood": likelihood}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = mb.compile(spec, sim.data)
    model, design = cm.model, cm.design
    dims = model.named_vars_to_dims
    assert dims["b"] == ("term", "taxon") and dims["r_subject"] == (
        "subject",
        "subject_term",
        "taxon",
    )
    assert list(model.coords["term"]) == ["Intercept", "group[diet]", "time", "group[diet]:time"]
    assert np.isfinite(cm.initial_logp())
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    names = ["b", "r_subject"] + (["phi"] if likelihood == "dirichlet_multinomial" else [])
    obs = model.observed_RVs[0]
    outs = model.replace_rvs_by_values([model[n] for n in names])  # values, not draws
    fn = model.compile_fn(
        [model.logp(vars=[obs], sum=True), *outs],
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    loglik, b, r, *rest = fn(point)
    np.testing.assert_allclose(b.sum(axis=1), 0.0, atol=1e-9)  # CLR effects: zero-sum
    np.testing.assert_allclose(r.sum(axis=2), 0.0, atol=1e-9)
    if likelihood == "dirichlet_multinomial":
        from mixedbayes.compositional import softmax

        lam = design.samples.X @ b + r[design.groups[0].index, 0, :]
        alpha = rest[0] * softmax(lam)
        expected = sum(
            stats.dirichlet_multinomial.logpmf(design.counts[i], alpha[i], design.totals[i])
            for i in range(design.n)
        )
        np.testing.assert_allclose(loglik, expected, rtol=1e-8)


# -- a fit ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fit(sim: Any) -> mb.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.fit(
            sim.spec,
            sim.data,
            draws=400,
            tune=400,
            chains=2,
            seed=3,
        )


@pytest.mark.slow
def test_taxa_effects_recover_the_simulated_changes(fit: mb.Fit, sim: Any) -> None:
    table = fit.taxa_effects(prob=0.9)
    assert list(table.columns) == [
        "taxon",
        "coefficient",
        "mean",
        "sd",
        "lower",
        "upper",
        "p_direction",
        "lfsr",
        "call",
        "scale",
    ]
    assert table["lfsr"].is_monotonic_increasing
    inter = table[table["coefficient"] == "group[diet]:time"].set_index("taxon")
    truth = sim.effects["group[diet]:time"]
    covered = (inter["lower"] <= truth[inter.index]) & (truth[inter.index] <= inter["upper"])
    assert covered.mean() >= 0.75, covered.mean()
    called = inter[inter["call"] != ""]
    true_sign = np.sign(truth[called.index])
    wrong = (np.sign(called["mean"]) != true_sign).sum()
    assert wrong == 0, called
    changed = truth[truth.abs() > 0.5].index
    assert set(changed) <= set(called.index), (sorted(changed), sorted(called.index))
    alr = fit.taxa_effects(["group[diet]:time"], scale="alr")
    assert len(alr) == 11 and alr["scale"].eq("alr").all()
    p = fit.expected_proportions()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    observed = sim.data["counts"].div(sim.data["counts"].sum(axis=1), axis=0)
    assert (
        np.corrcoef(
            np.log(p.to_numpy().ravel()),
            np.log(observed.loc[p.index, p.columns].to_numpy().ravel() + 1e-4),
        )[0, 1]
        > 0.9
    )
    with pytest.raises(SpecError, match="coefficients"):
        fit.taxa_effects(["nope"])


@pytest.mark.slow
def test_expected_proportions_for_new_samples(fit: mb.Fit, sim: Any) -> None:
    """``expected_proportions(newdata)``: the fitted metadata gives the fitted compositions;
    an unseen subject is an error naming it, or (``new_groups="population"``) gets the
    population composition, which does not depend on the subject."""
    meta = sim.data["samples"]
    pd.testing.assert_frame_equal(fit.expected_proportions(meta), fit.expected_proportions())
    new = pd.DataFrame(
        {"subject": ["P999", "P001"], "group": ["diet", "diet"], "time": [2.0, 2.0]},
        index=["new", "known"],
    )
    with pytest.raises(DataError, match="P999"):
        fit.expected_proportions(new)
    p = fit.expected_proportions(new, new_groups="population")
    pop = fit.expected_proportions(new, level="population")
    np.testing.assert_allclose(p.loc["new"], pop.loc["known"], rtol=1e-12)
    assert not np.allclose(p.loc["known"], pop.loc["known"])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # new_groups="sample": the new subject's effects drawn per draw and taxon; its expected
    # composition averages over subjects, so it differs from the population one, is
    # reproducible by seed, and the known subject keeps its own effects
    drawn = fit.expected_proportions(new, new_groups="sample", seed=1)
    np.testing.assert_allclose(
        drawn, fit.expected_proportions(new, new_groups="sample", seed=1), rtol=0
    )
    np.testing.assert_allclose(drawn.loc["known"], p.loc["known"], rtol=1e-12)
    assert not np.allclose(drawn.loc["new"], p.loc["new"], rtol=1e-3)
    np.testing.assert_allclose(drawn.sum(axis=1), 1.0)


@pytest.mark.slow
def test_report_save_and_load(fit: mb.Fit, tmp_path: Any) -> None:
    html = fit.report(tmp_path / "report.html").read_text()
    for title in ("Differential abundance", "Communities: expected and observed"):
        assert title in html, title
    assert html.count("data:image/png") >= 5  # volcano, forest, composition, scatter, ...
    assert "Error" not in html  # every section built (the PPC's dims once clashed with ArviZ)
    fit.save(tmp_path / "fit")
    again = mb.load(tmp_path / "fit")
    assert set(again.design.source_tables) == {"counts", "samples"}
    pd.testing.assert_frame_equal(again.taxa_effects(), fit.taxa_effects())


def test_centred_parametrization_draws_zero_sum_effects_directly(sim: Any) -> None:
    """``parametrization: centered`` samples the taxon effects of ``pooling: taxa`` as
    zero-sum normals (``noncentered`` samples standard normals on the zero-sum basis)."""
    spec = {**sim.spec, "pooling": "taxa"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centred = mb.compile({**spec, "parametrization": "centered"}, sim.data)
        plain = mb.compile({**spec, "parametrization": "noncentered"}, sim.data)
    free = {v.name for v in centred.model.free_RVs}
    assert {"b_slope", "r_subject"} <= free and "z_subject" not in free
    assert {"z_b_slope", "z_subject"} <= {v.name for v in plain.model.free_RVs}
    draw = pm_draw(centred.model["r_subject"])
    np.testing.assert_allclose(draw.sum(axis=-1), 0.0, atol=1e-9)
    assert np.isfinite(centred.initial_logp())


def pm_draw(var: Any) -> np.ndarray:
    import pymc as pm

    return np.asarray(pm.draw(var, random_seed=1))


def test_a_spec_names_one_source_per_table() -> None:
    """``data: {counts: ..., samples: ...}`` loads one DataFrame per table (relative to the
    spec file); the counts CSV's sample column becomes its index through ``sample:``."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "models" / "diet_compositional.yaml"
    spec = mb.load_spec(path)
    tables = mb.load_data(spec.data, base=path.parent)  # type: ignore[arg-type]
    assert set(tables) == {"counts", "samples"} and "sample" in tables["counts"].columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = mb.design(path)
    assert d.counts.shape == (48, 15) and list(d.obs_index[:2]) == ["S0001", "S0002"]
    assert mb.load_data({"a": "dataset:sleepstudy"})["a"].shape == (180, 3)


def test_auto_parametrization_centres_subjects_seen_in_several_samples(sim: Any) -> None:
    """``auto`` applies the regression core's rule to every taxon's CLR at once: subjects
    with three samples each and a subject SD above the residual's get centred effects; a
    factor with one sample per level cannot be estimated and stays non-centred."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = mb.design(sim.spec, sim.data)
        samples = sim.data["samples"].assign(obs=lambda d: np.arange(len(d)).astype(str))
        spec = {**sim.spec, "formula": sim.spec["formula"] + " + (1 | obs)"}
        both = mb.design(spec, {**sim.data, "samples": samples})
    [block] = design.group("subject").blocks
    assert block.parametrization == "centered" and "over 12 responses" in block.reason
    assert both.group("obs").blocks[0].parametrization == "noncentered"


def test_multinomial_latent_is_sampled_data_centred_and_exactly() -> None:
    """The latent log-abundances ``eta ~ Normal(mu, sigma)`` are sampled as
    ``eta = m + v·z``: the map is invertible, its log-Jacobian is the transform's, a cell
    without reads is non-centred (``m = mu``, ``v = sigma``) and a rich cell is centred on its
    data (``v ≈ 1/√y``)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import jacobian

    from mixedbayes.compile.latent import DataCentred, data_centred_normal

    rng = np.random.default_rng(5)
    mu = rng.normal(size=(3, 4))
    sigma = rng.uniform(0.5, 2.0, size=(1, 4))
    counts = np.array([[0, 5, 4000, 30], [2, 0, 900, 1], [7, 7, 0, 100]])
    with pm.Model(coords={"r": range(3), "c": range(4)}):
        eta = data_centred_normal("eta", mu, sigma, counts, counts.sum(1), ("r", "c"))
    inputs = eta.owner.inputs  # the transform reads the variable's inputs
    z = pt.vector("z")
    back = DataCentred().backward(z.reshape((3, 4)), *inputs)
    jac = jacobian(back.ravel(), z)
    log_jac = DataCentred().log_jac_det(z.reshape((3, 4)), *inputs)
    f = pytensor.function([z], [back, jac, log_jac])
    z0 = rng.normal(size=12)
    value, J, lj = f(z0)
    np.testing.assert_allclose(np.diag(J), np.exp(lj).ravel(), rtol=1e-10)
    np.testing.assert_allclose(J - np.diag(np.diag(J)), 0.0, atol=1e-12)
    forward = pytensor.function([], DataCentred().forward(pt.as_tensor(value), *inputs))
    np.testing.assert_allclose(forward().ravel(), z0, rtol=1e-9)
    v = np.exp(lj)
    assert v[0, 0] == pytest.approx(sigma[0, 0]) and v[1, 1] == pytest.approx(sigma[0, 1])
    loc = value - v * z0.reshape(3, 4)
    assert loc[0, 0] == pytest.approx(mu[0, 0]) and loc[2, 2] == pytest.approx(mu[2, 2])
    rich = 4000 * (1 - 4000 / counts[0].sum())
    assert v[0, 2] == pytest.approx(1 / np.sqrt(1 / sigma[0, 2] ** 2 + rich))
    # the row's shift weighs each cell's ℓ − mu by 1/(1/w + sigma²): a cell whose taxon
    # varies much (large sigma) cannot drag the shift of the others (the dominant taxon's
    # slow drift at 222 × 110)
    w = counts * (1 - counts / counts.sum(1, keepdims=True))
    log_y = np.log(np.maximum(counts, 1))
    u = w / (1 + w * sigma**2)
    shift = (u * (mu - log_y)).sum(1, keepdims=True) / u.sum(1, keepdims=True)
    np.testing.assert_allclose(loc, v**2 * (mu / sigma**2 + w * (log_y + shift)), rtol=1e-9)


@pytest.mark.parametrize("parametrization", ["centered", "noncentered"])
def test_correlated_group_terms_share_one_correlation_across_taxa(
    sim: Any, parametrization: str
) -> None:
    """``(time | subject)``: each taxon's (intercept, slope) pair of a subject has covariance
    ``diag(sd) Ω diag(sd)`` (one LKJ ``Ω`` for all taxa), shrunk by the zero-sum constraint
    to ``(1 − 1/J)`` of it; every taxon vector sums to zero."""
    import pymc as pm

    spec = {
        **sim.spec,
        "formula": "~ group * time + (time | subject)",
        "parametrization": parametrization,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = mb.compile(spec, sim.data)
    model = cm.model
    assert model.named_vars_to_dims["cor_subject"] == ("subject_term", "subject_term2")
    rho, sd = -0.6, np.array([0.8, 0.3])
    chol = np.array([[1.0, 0.0], [rho, np.sqrt(1 - rho**2)]])
    fixed = pm.do(model, {"sd_subject": sd, "cor_chol_subject": chol})
    r = np.asarray(pm.draw(fixed["r_subject"], draws=3000, random_seed=2))
    np.testing.assert_allclose(r.sum(axis=-1), 0.0, atol=1e-9)
    pairs = r.transpose(0, 1, 3, 2).reshape(-1, 2)  # every (draw, subject, taxon)
    J = r.shape[-1]
    expected = np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]]) * (1 - 1 / J)
    np.testing.assert_allclose(np.cov(pairs.T), expected, rtol=0.06, atol=0.004)
    assert np.isfinite(cm.initial_logp())


def test_low_rank_residual_covariance_of_the_latent_log_abundances(sim: Any) -> None:
    """``factors: 2``: a sample's latent log-abundances vary around their mean with
    covariance ``Λ Λᵀ + diag(σ²)``, ``Λ`` lower-triangular with a positive diagonal; only
    the multinomial model has latent log-abundances to correlate."""
    import pymc as pm

    spec = {**sim.spec, "formula": "~ group + (1 | subject)", "factors": 2}
    spec["parametrization"] = "noncentered"  # every effect through a z_ fixed below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = mb.compile(spec, sim.data)
    model = cm.model
    J = len(cm.design.taxa)
    assert model.named_vars_to_dims["loadings"] == ("taxon", "factor")
    assert model.named_vars_to_dims["factor_scores"] == ("sample_id", "factor")
    assert np.isfinite(cm.initial_logp())
    rng = np.random.default_rng(3)
    below = rng.normal(size=2 * J - 3)
    sigma = rng.uniform(0.2, 0.6, size=J)
    fixed: dict[str, Any] = {
        v.name: np.zeros(model.initial_point()[v.name].shape)
        for v in model.free_RVs
        if v.name.startswith("z_")
    }
    fixed |= {"loadings_diag": np.array([1.2, 0.7]), "loadings_below": below, "sigma": sigma}
    intervened = pm.do(model, fixed)
    loadings, eta = pm.draw([intervened["loadings"], intervened["eta"]], draws=4000, random_seed=5)
    L = loadings[0]
    assert L[0, 1] == 0.0 and L[0, 0] == 1.2 and L[1, 1] == 0.7
    expected = L @ L.T + np.diag(sigma**2)
    d = np.diag(expected)
    se = np.sqrt((np.outer(d, d) + expected**2) / len(eta))  # of a Gaussian sample covariance
    assert np.all(np.abs(np.cov(eta[:, 0, :].T) - expected) < 4.5 * se)
    with pytest.raises(SpecError, match="factors"):
        mb.compile({**spec, "likelihood": "dirichlet_multinomial"}, sim.data)


def test_bundled_example_data_are_the_simulators_output() -> None:
    """``models/data/simulated_diet_*.csv`` are exactly what ``mb.simulate.compositional``
    draws with the seed their README names (simulated, not copied from a study)."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "models" / "data"
    sim = mb.simulate.compositional(
        n_subjects=16, n_times=3, n_taxa=15, share_changed=0.2, effect=0.8, seed=2026
    )
    counts = pd.read_csv(data / "simulated_diet_counts.csv", index_col="sample")
    samples = pd.read_csv(data / "simulated_diet_samples.csv", index_col="sample")
    effects = pd.read_csv(data / "simulated_diet_effects.csv", index_col="taxon")
    np.testing.assert_array_equal(counts.to_numpy(), sim.data["counts"].to_numpy())
    assert list(counts.index) == list(sim.data["counts"].index)
    pd.testing.assert_frame_equal(samples, sim.data["samples"], check_dtype=False)
    np.testing.assert_allclose(effects.to_numpy(), sim.effects.to_numpy(), rtol=1e-12)
