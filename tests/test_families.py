"""Registry-driven tests of the families and links (no sampling).

Every registered family is picked up: links round-trip, PyMC's log-density of the observed
variable matches a SciPy reference, ``simulate`` agrees with ``mean_numpy``, the support
checks name the offending rows and accept simulated data, and the default priors are
registered distributions with a provenance.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb
from mixedbayes.errors import SpecError
from mixedbayes.families import FAMILIES, LINKS, Family, FamilyParam, get_family, get_link
from mixedbayes.families.counts import NB1_DISPERSION
from mixedbayes.priors.distributions import DISTRIBUTIONS

NAMES = sorted(FAMILIES)
LINK_CASES = [(f, link) for f in NAMES for link in FAMILIES[f].links]

#: Valid ranges of family parameters, by name (``zi`` is a probability). A parameter not
#: listed gets ``POSITIVE_RANGE`` when positive, else ``PROBABILITY_RANGE``.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "sigma": (0.3, 1.5),
    "alpha": (0.5, 10.0),
    "phi": (2.0, 30.0),
    "nu": (3.0, 30.0),
    "zi": (0.05, 0.6),
}
#: Ranges of parameters that share a name with another's but not its scale: the NB1
#: dispersion ``phi`` (``var = mu·(1 + phi)``) beside the beta precision ``phi``.
OWN_RANGES: list[tuple[FamilyParam, tuple[float, float]]] = [(NB1_DISPERSION, (0.2, 3.0))]
POSITIVE_RANGE = (0.5, 3.0)
PROBABILITY_RANGE = (0.05, 0.6)


def valid_mu(family: Family, rng: np.random.Generator, n: int, spread: float = 1.5) -> np.ndarray:
    """``mu`` in the family's range: the default link's inverse of a moderate predictor."""
    eta = rng.uniform(-spread, spread, size=n)
    return np.asarray(get_link(family.default_link).inverse_numpy(eta), dtype=float)


def param_range(family: Family, name: str) -> tuple[float, float]:
    param = next(p for p in family.params if p.name == name)
    own = [r for p, r in OWN_RANGES if p is param]
    if own:
        return own[0]
    default = POSITIVE_RANGE if param.positive else PROBABILITY_RANGE
    return PARAM_RANGES.get(name, default)


def random_params(family: Family, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {p.name: rng.uniform(*param_range(family, p.name), size=n) for p in family.params}


def fixed_params(family: Family) -> dict[str, np.ndarray]:
    """Midpoints of the ranges, as 0-d arrays."""
    return {p.name: np.asarray(np.mean(param_range(family, p.name))) for p in family.params}


def random_trials(family: Family, rng: np.random.Generator, n: int) -> np.ndarray | None:
    return rng.integers(1, 21, size=n) if family.needs_trials else None


def sample_y(family: Family, seed: int = 0, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mu = valid_mu(family, rng, n)
    trials = random_trials(family, rng, n)
    return np.asarray(family.simulate(mu, random_params(family, rng, n), rng, trials=trials))


# --------------------------------------------------------------------------- 1. links
@pytest.mark.parametrize(("family", "link"), LINK_CASES, ids=[f"{f}-{k}" for f, k in LINK_CASES])
def test_link_round_trip(family: str, link: str) -> None:
    fam = FAMILIES[family]
    g = get_link(link)
    assert g.name == link
    mu = valid_mu(fam, np.random.default_rng(1), 200, spread=3.0)
    with np.errstate(all="ignore"):
        eta = np.asarray(g.link_numpy(mu))
    ok = np.isfinite(eta)  # mu in this link's domain too (e.g. mu > 0 for a log link)
    assert ok.sum() >= 50
    np.testing.assert_allclose(g.inverse_numpy(eta[ok]), mu[ok], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("family", "link"), LINK_CASES, ids=[f"{f}-{k}" for f, k in LINK_CASES])
def test_link_pytensor_inverse_matches_numpy(family: str, link: str) -> None:
    import pytensor.tensor as pt

    g = get_link(link)
    mu = valid_mu(FAMILIES[family], np.random.default_rng(2), 100, spread=3.0)
    with np.errstate(all="ignore"):
        eta = np.asarray(g.link_numpy(mu))
    eta = eta[np.isfinite(eta)]
    got = np.asarray(g.inverse(pt.as_tensor(eta)).eval())
    np.testing.assert_allclose(got, g.inverse_numpy(eta), rtol=1e-9)


# --------------------------------------------------------------------------- 2. logp
def pymc_logp(
    family: Family,
    y: np.ndarray,
    mu: np.ndarray,
    params: dict[str, np.ndarray],
    trials: np.ndarray | None,
    *,
    as_data: bool,
) -> np.ndarray:
    """Pointwise log-density of the observed variable built by ``family.likelihood``.

    ``as_data`` passes the response as float ``pm.Data`` (and the trials as int64
    ``pm.Data``), as the model compiler does; otherwise plain NumPy arrays.
    """
    import pymc as pm

    with pm.Model(coords={"obs": np.arange(len(y))}) as model:
        if as_data:
            observed: Any = pm.Data("y_obs", y.astype(float), dims="obs")
            n: Any = (
                None if trials is None else pm.Data("trials", trials.astype("int64"), dims="obs")
            )
        else:
            observed, n = y, trials
        family.likelihood(model, "y", mu, params, observed, "obs", trials=n)
    (logp,) = model.compile_logp(vars=[model["y"]], sum=False)({})
    return np.asarray(logp)


@pytest.mark.parametrize("as_data", [False, True], ids=["numpy", "pm.Data"])
@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_pymc_logp_matches_reference(family: str, as_data: bool) -> None:
    fam = FAMILIES[family]
    rng = np.random.default_rng(zlib.crc32(family.encode()))
    n = 60
    mu = valid_mu(fam, rng, n)
    params = random_params(fam, rng, n)
    trials = random_trials(fam, rng, n)
    y = np.asarray(fam.simulate(mu, params, rng, trials=trials))
    expected = fam.logp_reference(y, mu, params, trials=trials)
    assert expected.shape == (n,) and np.all(np.isfinite(expected))
    got = pymc_logp(fam, y, mu, params, trials, as_data=as_data)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_family_logp_and_dist_are_one_definition(family: str) -> None:
    """``family.logp`` (a PyTensor expression from ``family.dist``) matches the SciPy
    reference, and ``pm.draw`` of ``family.dist`` has the family's mean: likelihoods, summed-out
    discrete unknowns and predictions can all be derived from ``dist``."""
    import pymc as pm

    fam = FAMILIES[family]
    rng = np.random.default_rng(zlib.crc32(family.encode()) + 1)
    n = 40
    mu = valid_mu(fam, rng, n)
    params = random_params(fam, rng, n)
    trials = random_trials(fam, rng, n)
    y = np.asarray(fam.simulate(mu, params, rng, trials=trials))
    got = np.asarray(fam.logp(y, mu, params, trials).eval(mode="FAST_COMPILE"))
    np.testing.assert_allclose(got, fam.logp_reference(y, mu, params, trials), rtol=1e-6)
    one = {k: v[:1] for k, v in params.items()}
    t1 = None if trials is None else trials[:1]
    draws = pm.draw(fam.dist(mu[:1], one, t1), draws=4000, random_seed=1, mode="FAST_COMPILE")
    expected = float(fam.mean_numpy(mu[:1], one, t1)[0])
    sd = float(np.std(draws))
    assert abs(float(np.mean(draws)) - expected) < 5 * sd / np.sqrt(4000) + 1e-9


@pytest.mark.parametrize("family", [f for f in NAMES if FAMILIES[f].discrete], ids=str)
def test_discrete_reference_is_a_distribution(family: str) -> None:
    """The reference pmf sums to 1 over the support (guards the hand-written ZI ones)."""
    fam = FAMILIES[family]
    trials = np.asarray([7]) if fam.needs_trials else None
    mu = valid_mu(fam, np.random.default_rng(3), 1)
    params = {k: v[:1] for k, v in random_params(fam, np.random.default_rng(4), 1).items()}
    y = np.arange(0, 400)
    total = np.exp(fam.logp_reference(y, mu, params, trials=trials)).sum()
    assert total == pytest.approx(1.0, abs=1e-8)


# --------------------------------------------------------------------------- 3. mean
@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_simulate_agrees_with_mean(family: str) -> None:
    fam = FAMILIES[family]
    n = 20_000
    mu = np.full(n, get_link(fam.default_link).inverse_numpy(np.asarray(0.4)))
    params = fixed_params(fam)
    trials = np.full(n, 10) if fam.needs_trials else None
    draws = np.asarray(fam.simulate(mu, params, np.random.default_rng(5), trials=trials))
    assert draws.shape == (n,)
    mean = np.asarray(fam.mean_numpy(mu, params, trials=trials))
    assert np.allclose(mean, mean.flat[0])
    se = draws.std(ddof=1) / np.sqrt(n)
    assert abs(draws.mean() - mean.flat[0]) < 5 * se


@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_simulate_broadcasts_like_predictions(family: str) -> None:
    """mu (chain, draw, obs) with parameters (chain, draw, 1), as ``predict_draws`` passes."""
    fam = FAMILIES[family]
    rng = np.random.default_rng(6)
    mu = valid_mu(fam, rng, 2 * 3 * 4).reshape(2, 3, 4)
    params = {k: v.reshape(2, 3, 1) for k, v in random_params(fam, rng, 6).items()}
    trials = np.full(4, 5) if fam.needs_trials else None
    assert np.shape(fam.simulate(mu, params, rng, trials=trials)) == (2, 3, 4)
    assert np.shape(fam.mean_numpy(mu, params, trials=trials)) == (2, 3, 4)


# --------------------------------------------------------------------------- 4. support
INDEX = [101, 102, 103, 104, 105]

#: (family, response, trials, row label and value text that the message must name)
BAD_CASES: list[tuple[str, list[float], list[int] | None, str, str]] = [
    ("poisson", [0, 2, 5, -1, 3], None, "104", "-1"),
    ("poisson", [0, 2, 2.5, 1, 3], None, "103", "2.5"),
    ("negbinomial", [0, 2, 5, 1, -3], None, "105", "-3"),
    ("zero_inflated_poisson", [0, 0, 1.5, 1, 3], None, "103", "1.5"),
    ("zero_inflated_negbinomial", [0, -2, 1, 1, 3], None, "102", "-2"),
    ("negbinomial1", [0, 2, 5, 1, -3], None, "105", "-3"),
    ("truncated_poisson", [1, 2, 0, 1, 3], None, "103", "0"),
    ("truncated_negbinomial1", [1, 2, 2.5, 1, 3], None, "103", "2.5"),
    ("hurdle_poisson", [0, 2, 5, -1, 3], None, "104", "-1"),
    ("hurdle_negbinomial", [0, 0, 1.5, 1, 3], None, "103", "1.5"),
    ("bernoulli", [0, 1, 0.5, 1, 0], None, "103", "0.5"),
    ("bernoulli", [0, 1, 2, 1, 0], None, "103", "2"),
    ("binomial", [0, 1, 3, 1, 2], [2, 2, 2, 2, 2], "103", "3 > 2"),
    ("binomial", [0, 1, 1, 1, 2], [2, 2, 0, 2, 2], "103", "0"),
    ("binomial", [0, 1, 1.5, 1, 2], [2, 2, 2, 2, 2], "103", "1.5"),
    ("beta", [0.2, 0.5, 1.0, 0.3, 0.9], None, "103", "1"),
    ("beta", [0.0, 0.5, 0.4, 0.3, 0.9], None, "101", "0"),
    ("beta", [0.2, 0.5, 0.4, 1.7, 0.9], None, "104", "1.7"),
    ("zero_inflated_beta", [0.0, 0.5, 1.0, 0.3, 0.0], None, "103", "1"),
    ("zero_inflated_beta", [0.0, 0.5, 0.4, -0.3, 0.9], None, "104", "-0.3"),
    ("gamma", [1.2, 0.0, 3.0, 0.3, 0.9], None, "102", "0"),
    ("gamma", [1.2, 2.0, 3.0, -0.3, 0.9], None, "104", "-0.3"),
    ("lognormal", [1.2, 2.0, 0.0, 0.3, 0.9], None, "103", "0"),
    ("student", [1.2, 2.0, np.inf, 0.3, 0.9], None, "103", "inf"),
]


@pytest.mark.parametrize(
    ("family", "values", "trials", "row", "text"),
    BAD_CASES,
    ids=[f"{c[0]}-{c[4]}" for c in BAD_CASES],
)
def test_response_problems_name_rows_and_values(
    family: str, values: list[float], trials: list[int] | None, row: str, text: str
) -> None:
    fam = FAMILIES[family]
    y = pd.Series(values, index=INDEX, dtype=float)
    problems = fam.response_problems(
        y, "resp", trials=None if trials is None else np.asarray(trials)
    )
    assert len(problems) == 1, problems
    message = str(problems[0])
    assert f"rows {row} " in message and text in message and problems[0].hint
    assert "resp" in problems[0].where


def test_beta_boundary_hint_mentions_inflated_models() -> None:
    y = pd.Series([0.2, 1.0, 0.0], index=[7, 8, 9])
    (problem,) = FAMILIES["beta"].response_problems(y, "prop")
    assert "rows 8, 9" in problem.message
    assert "one-inflated" in problem.hint and "squeeze" in problem.hint


@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_response_problems_flag_infinite_values(family: str) -> None:
    fam = FAMILIES[family]
    y = pd.Series(sample_y(fam, n=5).astype(float), index=INDEX)
    y.loc[104] = np.inf
    trials = np.full(5, 10**6) if fam.needs_trials else None
    problems = fam.response_problems(y, "resp", trials=trials)
    assert problems and any("104" in str(p) for p in problems)


@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_response_problems_accept_simulated_data(family: str) -> None:
    fam = FAMILIES[family]
    rng = np.random.default_rng(7)
    n = 300
    mu = valid_mu(fam, rng, n)
    trials = random_trials(fam, rng, n)
    y = np.asarray(fam.simulate(mu, random_params(fam, rng, n), rng, trials=trials))
    assert fam.response_problems(pd.Series(y.astype(float)), "resp", trials=trials) == []


def test_bernoulli_accepts_booleans() -> None:
    y = pd.Series([True, False, True])
    assert FAMILIES["bernoulli"].response_problems(y, "event") == []


def test_binomial_needs_trials() -> None:
    fam = FAMILIES["binomial"]
    (problem,) = fam.response_problems(pd.Series([1.0, 2.0]), "k")
    assert "trials" in problem.message and "trials(" in problem.hint
    with pytest.raises(SpecError, match="trials"):
        fam.mean_numpy(np.asarray([0.5]), {})


# --------------------------------------------------------------------------- 5. metadata
@pytest.mark.parametrize("family", NAMES, ids=NAMES)
def test_links_and_default_priors(family: str) -> None:
    fam = FAMILIES[family]
    assert fam.name == family
    assert fam.default_link in fam.links
    assert all(link in LINKS for link in fam.links)
    y = sample_y(fam).astype(float)
    for param in fam.params:
        prior, provenance = param.default_prior(y)
        assert prior.name in DISTRIBUTIONS, param.name
        assert DISTRIBUTIONS[prior.name].check(prior.args) == ""
        assert provenance.strip(), param.name
    for link in fam.links:
        loc, s, text = fam.prior_reference(y, get_link(link))
        assert np.isfinite(loc) and s > 0 and text


def test_scaled_references() -> None:
    """Identity-like links scale with the data; lognormal works on log(y)."""
    y = np.asarray([100.0, 120.0, 80.0, 140.0, 60.0])
    loc, s, _ = FAMILIES["poisson"].prior_reference(y, get_link("identity"))
    assert loc == pytest.approx(100.0) and s == pytest.approx(np.std(y, ddof=1), rel=1e-3)
    loc, s, _ = FAMILIES["poisson"].prior_reference(y, get_link("log"))
    assert loc == pytest.approx(np.log(100.0), rel=1e-3) and s == 1.0
    loc, s, _ = FAMILIES["lognormal"].prior_reference(y, get_link("identity"))
    assert loc == pytest.approx(np.log(100.0), rel=1e-3)
    assert s == pytest.approx(np.std(np.log(y), ddof=1), rel=1e-3)
    loc, s, _ = FAMILIES["student"].prior_reference(y, get_link("identity"))
    assert loc == pytest.approx(100.0) and s == pytest.approx(np.std(y, ddof=1), rel=1e-3)


def test_zero_inflated_beta_zeros_and_mean_rows() -> None:
    """Exact zeros are in the support (the zero inflation), ``log(zi)`` their density; the
    zeros say nothing about ``mu`` (``mean_rows``)."""
    fam = FAMILIES["zero_inflated_beta"]
    y = np.asarray([0.0, 0.3])
    logp = fam.logp_reference(y, np.asarray([0.4, 0.4]), {"zi": np.asarray(0.2), "phi": 5.0})
    assert logp[0] == pytest.approx(np.log(0.2))
    assert fam.response_problems(pd.Series(y), "y") == []
    np.testing.assert_array_equal(fam.mean_rows(y), [False, True])
    assert FAMILIES["beta"].mean_rows(y).all()


def test_zi_prior_statement_is_right() -> None:
    """The zi default's provenance states its median and 95 % interval correctly."""
    from scipy.special import expit

    for family in ("zero_inflated_poisson", "zero_inflated_negbinomial", "zero_inflated_beta"):
        (zi,) = [p for p in FAMILIES[family].params if p.name == "zi"]
        assert zi.predictor and not zi.positive
        prior, text = zi.default_prior(np.zeros(3))
        m, s = prior.args
        assert f"{100 * expit(m):.0f} %" in text
        assert f"({100 * expit(m - 1.96 * s):.0f} %, {100 * expit(m + 1.96 * s):.0f} %)" in text


def test_no_pymc_at_import() -> None:
    code = "import sys, mixedbayes.families; assert 'pymc' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("nbinom1", "here it is family: negbinomial1"),
        ("nbinom2", "here it is family: negbinomial"),
        ("truncated_nbinom2", "here it is family: truncated_negbinomial"),
        ("NegativeBinomial", "here it is family: negbinomial"),
        ("Poisson", "did you mean family: poisson"),
        ("binomal", "did you mean family: binomial"),
    ],
)
def test_unknown_family_names_ours(name: str, said: str) -> None:
    """A peer's family name or a typo is a SpecError naming our family."""
    with pytest.raises(SpecError, match="unknown family") as err:
        mb.GLMM("y ~ x", family=name)
    assert said in str(err.value) and "Known families" in str(err.value)
    with pytest.raises(SpecError, match=said):
        get_family(name)


def test_unknown_family_without_a_match_lists_them() -> None:
    with pytest.raises(SpecError) as err:
        get_family("quasipoisson_xyz")
    assert "did you mean" not in str(err.value) and "'negbinomial1'" in str(err.value)
