"""Hurdle, zero-truncated and NB1 count families, the ``hu`` formula, and ``zi`` formulas with
a factor and a site effect (glmmTMB's Salamanders shape): spec, design, priors, graph,
log-densities against independent references, predictions (no sampling).

The fits (recovery of simulated truth) are in ``test_hurdle_fits.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash
from scipy import stats
from scipy.special import expit, logit
from test_distributional import _prior_as_posterior, pymc_pointwise_loglik

import mixedbayes as mb
from mixedbayes.families import FAMILIES

HURDLES = ("hurdle_negbinomial", "hurdle_negbinomial1", "hurdle_poisson")
TRUNCATED = ("truncated_negbinomial", "truncated_negbinomial1", "truncated_poisson")

#: Hurdle Poisson truth: the count part (log scale) and the hurdle part (logit scale).
HURDLE_TRUTH = {
    "b[Intercept]": 0.7,
    "b[x]": 0.4,
    "sd_g[Intercept]": 0.4,
    "b_hu[Intercept]": -0.5,
    "b_hu[x]": 0.8,
    "sd_g_hu[Intercept]": 0.8,
}


def hurdle_data(seed: int = 11, n_groups: int = 40, per_group: int = 10) -> pd.DataFrame:
    """Hurdle Poisson data at :data:`HURDLE_TRUTH`, drawn with the family's ``simulate``."""
    t = HURDLE_TRUTH
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    u = rng.normal(0.0, t["sd_g[Intercept]"], n_groups)
    v = rng.normal(0.0, t["sd_g_hu[Intercept]"], n_groups)
    mu = np.exp(t["b[Intercept]"] + t["b[x]"] * x + u[g])
    hu = expit(t["b_hu[Intercept]"] + t["b_hu[x]"] * x + v[g])
    y = FAMILIES["hurdle_poisson"].simulate(mu, {"hu": hu}, rng)
    return pd.DataFrame({"g": [f"G{i:02d}" for i in g], "x": x, "y": y})


def hurdle_spec(**options: object) -> mb.GLMMSpec:
    return mb.GLMM("y ~ x + (1 | g)", "hurdle_poisson", hu="~ x + (1 | g)", **options)  # type: ignore[arg-type]


#: Salamanders-shaped truth (glmmTMB's example: 23 sites × 7 species × 4 visits, mined
#: sites): counts by species and mining with a site intercept, zero inflation by species with
#: a site intercept of its own. Species effects are against GP.
SPECIES = ("GP", "PR", "DM", "EC-A", "EC-L", "DES-L", "DF")
SALAMANDER_TRUTH = {
    "b[Intercept]": 1.6,
    "b[mined[yes]]": -0.8,
    "sd_site[Intercept]": 0.5,
    "b_zi[Intercept]": -0.8,
    "sd_site_zi[Intercept]": 0.8,
    **{
        f"b[spp[{s}]]": v
        for s, v in zip(SPECIES[1:], (-0.6, 0.3, -0.4, 0.5, 0.4, 0.1), strict=True)
    },
    **{
        f"b_zi[spp[{s}]]": v
        for s, v in zip(SPECIES[1:], (1.0, -0.5, 0.8, -0.8, -0.3, 0.2), strict=True)
    },
}
SALAMANDER_SPEC = mb.GLMM(
    "count ~ spp + mined + (1 | site)",
    "zero_inflated_poisson",
    zi="~ spp + (1 | site)",
    contrasts={"spp": {"reference": "GP"}, "mined": {"reference": "no"}},
)


def salamander_data(seed: int = 5, n_sites: int = 23, visits: int = 4) -> pd.DataFrame:
    """Zero-inflated Poisson counts in Salamanders' layout at :data:`SALAMANDER_TRUTH`."""
    t = SALAMANDER_TRUTH
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), len(SPECIES) * visits)
    spp = np.tile(np.repeat(np.arange(len(SPECIES)), visits), n_sites)
    mined = (np.arange(n_sites) % 2 == 0)[site]
    b_spp = np.asarray([0.0, *(t[f"b[spp[{s}]]"] for s in SPECIES[1:])])
    c_spp = np.asarray([0.0, *(t[f"b_zi[spp[{s}]]"] for s in SPECIES[1:])])
    u = rng.normal(0.0, t["sd_site[Intercept]"], n_sites)
    v = rng.normal(0.0, t["sd_site_zi[Intercept]"], n_sites)
    mu = np.exp(t["b[Intercept]"] + b_spp[spp] + t["b[mined[yes]]"] * mined + u[site])
    zi = expit(t["b_zi[Intercept]"] + c_spp[spp] + v[site])
    y = FAMILIES["zero_inflated_poisson"].simulate(mu, {"zi": zi}, rng)
    return pd.DataFrame(
        {
            "site": [f"R-{i + 1}" for i in site],
            "spp": [SPECIES[k] for k in spp],
            "mined": np.where(mined, "yes", "no"),
            "count": y,
        }
    )


# --------------------------------------------------------------------------- spec
def test_hu_spec_yaml_round_trip_and_errors() -> None:
    spec = mb.load_spec(
        'kind: glmm\nformula: "y ~ x + (1 | g)"\nfamily: hurdle_poisson\nhu: "~ x + (1 | g)"\n'
    )
    assert spec == hurdle_spec() and spec.dpar_formulas() == {"hu": "~ x + (1 | g)"}
    assert mb.load_spec(spec.to_yaml()) == spec
    with pytest.raises(mb.SpecError) as err:
        mb.GLMM("y ~ x", "zero_inflated_poisson", hu="~ x")
    assert err.value.problems[0].where == "hu"
    assert all(family in str(err.value) for family in HURDLES)
    with pytest.raises(mb.SpecError, match="families whose 'zi' does"):
        mb.GLMM("y ~ x", "hurdle_poisson", zi="~ x")
    for family in HURDLES:
        (hu,) = FAMILIES[family].formula_params()[-1:]
        assert (hu.name, hu.link, hu.predictor) == ("hu", "logit", True)


# --------------------------------------------------------------------------- design, graph
def test_hu_formula_names_dims_and_priors() -> None:
    df = hurdle_data()
    before = frame_hash(df)
    cm = mb.compile(hurdle_spec(), df)
    assert frame_hash(df) == before
    dims = cm.model.named_vars_to_dims
    assert dims["b_hu"] == ("hu_term",)
    assert dims["X_hu"] == ("observation", "hu_term")
    assert dims["sd_g_hu"] == ("g_hu_term",)
    assert dims["r_g_hu"] == ("g", "g_hu_term")
    assert list(cm.model.coords["hu_term"]) == ["Intercept", "x"]
    assert np.isfinite(cm.initial_logp())
    rows = {(r.class_, r.coef, r.group): str(r.prior) for r in cm.priors if r.nlpar == "hu"}
    assert rows == {
        ("Intercept", "", ""): "logistic(0, 1)",
        ("b", "x", ""): rows[("b", "x", "")],
        ("sd", "Intercept", "g"): "student_t(3, 0, 2.5)",
    }
    assert rows[("b", "x", "")].startswith("normal(0, ")
    # without a formula hu is ~ 1: one intercept, no group effects
    plain = mb.compile(mb.GLMM("y ~ x + (1 | g)", "hurdle_poisson"), df).model
    assert list(plain.coords["hu_term"]) == ["Intercept"]
    assert {v for v in plain.named_vars if "hu" in v and not v.startswith("prior_")} == {
        "b_hu",
        "X_hu",
    }
    # the count part's default intercept is centred at log(mean(y | y > 0))
    icpt = mb.get_priors(hurdle_spec(), df).get("Intercept")
    assert icpt.prior.args[1] == pytest.approx(np.log(df.loc[df["y"] > 0, "y"].mean()), abs=1e-3)


def test_hu_prior_is_uniform_on_the_probability() -> None:
    """Logistic(0, 1) on logit(hu), as its provenance says: P(hu < q) = q."""
    (hu,) = FAMILIES["hurdle_poisson"].params
    prior, text = hu.default_prior(np.zeros(3))
    assert str(prior) == "logistic(0, 1)" and "uniform" in text
    q = np.asarray([0.05, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(stats.logistic(*prior.args).cdf(logit(q)), q, rtol=1e-12)


def test_salamander_shaped_zi_formula_design() -> None:
    """``zi ~ spp + (1 | site)``: a factor's terms and a site effect of its own."""
    cm = mb.compile(SALAMANDER_SPEC, salamander_data())
    coords = cm.model.coords
    assert list(coords["zi_term"]) == ["Intercept"] + [f"spp[{s}]" for s in sorted(SPECIES[1:])]
    assert "mined[yes]" in coords["term"] and "mined[yes]" not in coords["zi_term"]
    assert cm.model.named_vars_to_dims["r_site_zi"] == ("site", "site_zi_term")
    assert len(coords["site"]) == 23
    assert np.isfinite(cm.initial_logp())


def test_truncated_response_with_zeros_is_a_data_error_naming_the_row() -> None:
    df = hurdle_data()
    positive = df[df["y"] > 0].copy()
    for family in TRUNCATED:
        mb.design(mb.GLMM("y ~ x + (1 | g)", family), positive)
        bad = positive.copy()
        bad.loc[bad.index[3], "y"] = 0
        with pytest.raises(mb.DataError) as err:
            mb.design(mb.GLMM("y ~ x + (1 | g)", family), bad)
        message = str(err.value)
        assert f"rows {bad.index[3]} " in message and "zero-truncated" in message
        assert "hurdle_" in err.value.problems[0].hint


# --------------------------------------------------------------------------- log-densities
@pytest.mark.parametrize("family", ["hurdle_poisson", "hurdle_negbinomial"])
def test_hurdle_logp_matches_pymcs_hurdle(family: str) -> None:
    """Our hurdle log-density (count logp at 0 in closed form) equals PyMC's own
    ``HurdlePoisson``/``HurdleNegativeBinomial`` (a mixture with a truncated component)."""
    import pymc as pm

    fam = FAMILIES[family]
    rng = np.random.default_rng(2)
    n = 50
    mu = np.exp(rng.uniform(-1.5, 2.0, n))
    params = {"hu": rng.uniform(0.05, 0.9, n), "alpha": rng.uniform(0.5, 5.0, n)}
    y = fam.simulate(mu, params, rng)
    ours = fam.logp(y, mu, params).eval()
    if family == "hurdle_poisson":
        theirs = pm.HurdlePoisson.dist(psi=1 - params["hu"], mu=mu)
    else:
        theirs = pm.HurdleNegativeBinomial.dist(psi=1 - params["hu"], mu=mu, alpha=params["alpha"])
    np.testing.assert_allclose(ours, pm.logp(theirs, y).eval(), rtol=1e-8)
    assert (y == 0).any() and (y > 0).any()


def test_negbinomial1_is_glmmtmbs_nbinom1() -> None:
    """Var = mu·(1 + phi) (glmmTMB's nbinom1), and its pmf is SciPy's NB with size mu/phi."""
    fam = FAMILIES["negbinomial1"]
    rng = np.random.default_rng(4)
    for mu, phi in ((0.8, 0.5), (6.0, 2.0)):
        draws = fam.simulate(np.full(200_000, mu), {"phi": np.asarray(phi)}, rng)
        assert draws.var() == pytest.approx(mu * (1 + phi), rel=0.03)
        y = np.arange(30)
        np.testing.assert_allclose(
            fam.logp_reference(y, np.full(30, mu), {"phi": np.asarray(phi)}),
            stats.nbinom.logpmf(y, mu / phi, 1 / (1 + phi)),
            rtol=1e-12,
        )


def test_truncated_draws_are_exact_for_small_means() -> None:
    """Draws >= 1 with the truncated mean, also where zeros dominate (inverse-CDF path)."""
    fam = FAMILIES["truncated_poisson"]
    rng = np.random.default_rng(9)
    support = np.arange(0, 60)
    for mu in (1e-6, 0.05, 2.0):
        draws = fam.simulate(np.full(100_000, mu), {}, rng)
        mean = float(fam.mean_numpy(np.asarray(mu), {}))
        pmf = np.exp(fam.logp_reference(support, np.full(support.size, mu), {}))
        sd = float(np.sqrt(np.sum((support - mean) ** 2 * pmf)))
        assert draws.min() >= 1 and pmf[0] == 0
        assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(draws.size) + 1e-12


def test_hurdle_zeros_do_not_inform_mu() -> None:
    fam = FAMILIES["hurdle_negbinomial"]
    np.testing.assert_array_equal(fam.mean_rows(np.asarray([0, 3, 0, 1])), [0, 1, 0, 1])
    assert FAMILIES["truncated_poisson"].mean_rows(np.asarray([1, 3])).all()


# --------------------------------------------------------------------------- predictions
def test_rowwise_hu_in_predictions_and_log_likelihood() -> None:
    """Each row's hu (its formula's fixed and group effects) enters the mean prediction,
    ``(1 - hu)·mu/(1 - exp(-mu))``, and the pointwise log-likelihood equals PyMC's."""
    from mixedbayes.results.loglik import regression_log_likelihood
    from mixedbayes.results.predict import family_params, predict_draws, rows_of

    df = hurdle_data(n_groups=8)
    cm = mb.compile(hurdle_spec(), df)
    d = cm.design
    post = _prior_as_posterior(cm)
    hu = family_params(post, d, rows_of(d, None))["hu"]
    g = d.dpar("hu").groups[0]
    b_hu = post["b_hu"].to_numpy()
    r_hu = post["r_g_hu"].to_numpy()[..., 0]
    expected = expit(b_hu[..., :1] + b_hu[..., 1:] * df["x"].to_numpy() + r_hu[..., g.index])
    np.testing.assert_allclose(hu, expected, rtol=1e-10)
    mu = np.exp(predict_draws(post, d, None, kind="link").to_numpy())
    mean = predict_draws(post, d, df, kind="mean").to_numpy()
    np.testing.assert_allclose(mean, (1 - hu) * mu / -np.expm1(-mu), rtol=1e-8)
    drawn = predict_draws(post, d, None, kind="response", seed=1).to_numpy()
    assert drawn.shape == (1, 6, len(df)) and drawn.min() >= 0
    pymc_ll = pymc_pointwise_loglik(post, cm, "y")
    np.testing.assert_allclose(regression_log_likelihood(post, d), pymc_ll, rtol=1e-8)
