"""A GLMM's latent residual process (``residuals: ar1 | car1`` of a ``glmm``; docs/residuals.md,
"GLMMs: latent residual process").

No sampling: the closed-form Cholesky factor of the AR(1)/CAR(1) correlation equals NumPy's
Cholesky of the dense correlation (integer visits with gaps, negative phi, irregular times;
padded and one batch per block size), so ``L Lᵀ = R``; the process the compiled model
computes at a random point equals ``sigma_ar · chol(R_j) z_j`` per subject written here;
the NumPy log-likelihood adds it and equals PyMC's pointwise log-density for several
families; names, dims, priors, the parametrization rule; predictions for new times
(the AR(1) conditional) and new subjects (the stationary process); spec errors.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_distributional import _prior_as_posterior, pymc_pointwise_loglik
from test_residuals import _panel as residual_panel

import mixedbayes as mb
from mixedbayes._system import python_ops
from mixedbayes.compile.latent_residuals import latent_batches, latent_factor
from mixedbayes.design.residuals import residual_design
from mixedbayes.errors import DataError, SpecError
from mixedbayes.results.latent_residuals import latent_draws
from mixedbayes.results.loglik import regression_log_likelihood
from mixedbayes.results.predict import predict_draws

LATENT = importlib.import_module("mixedbayes.compile.latent_residuals")


def _panel(seed: int = 2) -> pd.DataFrame:
    """test_residuals' subjects (integer visits with gaps, an irregular time) plus one with a
    single visit, a covariate and responses of every family used here, rows out of time
    order."""
    df = residual_panel(seed=seed, n_subjects=14, visits=6)
    df = pd.concat([df, df.iloc[[0]].assign(id="single", visit=3, t=3.1)], ignore_index=True)
    rng = np.random.default_rng(seed)
    n = len(df)
    df = df.assign(
        x=rng.normal(size=n),
        count=rng.poisson(3.0, n),
        hit=(rng.random(n) < 0.4).astype(int),
        k=rng.binomial(5, 0.3, n),
        n=5,
    )
    return df.sample(frac=1.0, random_state=seed)


def _ar1(time: str = "visit", group: str | None = "id") -> dict[str, Any]:
    corr = "ar1" if time == "visit" else "car1"
    return {"correlation": corr, "time": time, **({"group": group} if group else {})}


def _factor(rd: Any, phi: float) -> list[tuple[Any, np.ndarray]]:
    with python_ops():
        return [
            (b, latent_factor(rd, b, np.float64(phi)).eval({}, mode="FAST_COMPILE"))
            for b in latent_batches(rd)
        ]


@pytest.mark.parametrize("pad_limit", [24, 0])
@pytest.mark.parametrize(("time", "phi"), [("visit", 0.6), ("visit", -0.7), ("t", 0.45)])
def test_closed_form_factor_is_numpys_cholesky(
    time: str, phi: float, pad_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per pattern, the valid block of ``L`` equals ``np.linalg.cholesky`` of ``phi^|Δt|`` at
    the pattern's times and ``L Lᵀ`` is that correlation; the padded part is the identity."""
    monkeypatch.setattr(LATENT, "PAD_LIMIT", pad_limit)
    df = _panel()
    spec = mb.GLMM("count ~ x", "poisson", residuals=_ar1(time))
    rd = residual_design(mb.design(spec, df))
    checked = 0
    for batch, L in _factor(rd, phi):
        assert (batch.valid is not None) == (pad_limit > 0)
        for p in range(batch.n_patterns):
            k = batch.k if batch.valid is None else int(batch.valid[p].sum())
            R = phi ** batch.lags[p, :k, :k]
            np.testing.assert_allclose(L[p, :k, :k], np.linalg.cholesky(R), atol=1e-12)
            np.testing.assert_allclose(L[p, :k, :k] @ L[p, :k, :k].T, R, atol=1e-12)
            np.testing.assert_array_equal(L[p, k:, :], np.eye(batch.k)[k:])
            checked += 1
    assert checked >= 5
    steps = [np.diagonal(b.lags, offset=-1, axis1=1, axis2=2) for b in rd.batches]
    assert any((s > 1.5).any() for s in steps)  # gaps (ar1) / irregular steps (car1)


def _evaluate(model: Any, point: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    outs = model.replace_rvs_by_values([model[n] for n in names])
    with python_ops():
        fn = model.compile_fn(
            outs, inputs=model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
        )
        return [np.asarray(v) for v in fn(point)]


@pytest.mark.parametrize("time", ["visit", "t"])
def test_process_is_sigma_chol_z_per_subject(time: str) -> None:
    """At a random point, the compiled ``e_ar`` of every row is ``sigma_ar · chol(R_j) z_j``
    of its subject (rows in time order), ``R_j`` written from its definition."""
    df = _panel()
    spec = mb.GLMM("count ~ x + (1 | id)", "poisson", residuals=_ar1(time))
    compiled = mb.compile(spec, df)
    model = compiled.model
    rng = np.random.default_rng(5)
    point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in model.initial_point().items()}
    e, z, phi, sigma = _evaluate(model, point, ["e_ar", "z_ar", "phi_ar", "sigma_ar"])
    assert abs(float(phi)) > 0.05
    used = compiled.design.data
    for _, rows in used.groupby("id").indices.items():
        order = rows[np.argsort(used[time].to_numpy()[rows])]
        t = used[time].to_numpy(dtype=float)[order]
        R = float(phi) ** np.abs(t[:, None] - t[None, :])
        np.testing.assert_allclose(e[order], float(sigma) * np.linalg.cholesky(R) @ z[order])
    assert np.isfinite(compiled.initial_logp())


@pytest.mark.parametrize(
    ("formula", "family"),
    [
        ("count ~ x + (1 | id)", "poisson"),
        ("count ~ x", "negbinomial"),
        ("hit ~ x + (1 | id)", "bernoulli"),
        ("cbind(k, n - k) ~ x", "binomial"),
    ],
)
def test_log_likelihood_adds_the_process(formula: str, family: str) -> None:
    """Prior draws as a posterior: the link-scale predictions of the fitted rows include
    ``e_ar`` and the NumPy pointwise log-likelihood (LOO's, given the process) equals PyMC's
    pointwise log-density of the observed variable."""
    df = _panel()
    # brms's Gamma(0.01, 0.01) on the NB shape draws shapes NumPy's generator refuses
    priors = [{"class": "alpha", "prior": "exponential(0.5)"}] if family == "negbinomial" else []
    spec = mb.GLMM(formula, family, residuals=_ar1(), priors=priors)
    cm = mb.compile(spec, df)
    post: Any = _prior_as_posterior(cm, draws=3)
    e = post["e_ar"].to_numpy()
    assert np.abs(e).max() > 0  # the process is there
    with_e = predict_draws(post, cm.design, None, kind="link").to_numpy()
    without = predict_draws(post, cm.design, None, kind="link", level="population").to_numpy()
    if "(1 | id)" not in formula:
        np.testing.assert_allclose(with_e - without, e, atol=1e-10)
    numpy_ll = regression_log_likelihood(post, cm.design)
    observed = next(rv.name for rv in cm.model.observed_RVs)
    pymc_ll = pymc_pointwise_loglik(post, cm, observed)
    np.testing.assert_allclose(numpy_ll, pymc_ll, rtol=1e-6, atol=1e-9)


def test_names_dims_priors_and_parametrization() -> None:
    df = _panel()
    spec = mb.GLMM("count ~ x + (1 | id)", "poisson", residuals=_ar1())
    compiled = mb.compile(spec, df)
    model = compiled.model
    dims = model.named_vars_to_dims
    assert dims["z_ar"] == ("observation",) and dims["e_ar"] == ("observation",)
    assert "phi_ar" in model.named_vars and "sigma_ar" in model.named_vars
    assert "phi_ar" not in dims and "sigma_ar" not in dims
    kind = mb.kinds.kind_of(spec)
    assert {"phi_ar", "sigma_ar"} <= set(kind.summary_variables(compiled.design, False))
    table = mb.get_priors(spec, df)
    assert table.get("phi_ar").prior.args == (-1.0, 1.0)
    sd = table.get("sigma_ar")
    assert sd.prior.name == "student_t" and sd.prior.args == (3.0, 0.0, 1.0)
    assert sd.prior == table.get("sd", "Intercept", "id").prior  # the group SDs' rule
    car1 = mb.get_priors(mb.GLMM("count ~ x", "poisson", residuals=_ar1("t")), df)
    assert car1.get("phi_ar").prior.args == (0.0, 1.0)
    # large counts, subjects far apart: the auto rule's data weight calls (1 | id) centred,
    # and beside the process it is made non-centred (design/parametrization.py)
    rich = df.assign(count=np.random.default_rng(1).poisson(np.exp(4 + 2 * (df["id"] < "p07"))))
    plain = mb.design(mb.GLMM("count ~ x + (1 | id)", "poisson"), rich).group("id").blocks
    assert plain[0].parametrization == "centered"
    (block,) = mb.design(spec, rich).group("id").blocks
    assert block.parametrization == "noncentered" and "residuals correlated" in block.reason
    assert "latent residuals ar1 over visit within id" in kind.describe(spec)
    # a positive class: positive-support priors are allowed (not on phi_ar)
    own = mb.GLMM("count ~ x", "poisson", residuals=_ar1(), priors=[_exp("sigma_ar")])
    assert mb.get_priors(own, df).get("sigma_ar").prior.name == "exponential"
    with pytest.raises(SpecError, match="phi_ar"):
        mb.get_priors(
            mb.GLMM("count ~ x", "poisson", residuals=_ar1(), priors=[_exp("phi_ar")]), df
        )


def _exp(cls: str) -> dict[str, str]:
    return {"class": cls, "prior": "exponential(2)"}


def test_predictions_for_new_times_and_new_subjects() -> None:
    """Fitted (subject, time) pairs read ``e_ar``; a time after a subject's last visit is
    AR(1)'s conditional ``N(phi^Δ e_last, σ²(1 − phi^(2Δ)))``; a new subject's process is the
    stationary one (variance σ², lag-2 correlation phi²) under ``new_groups="sample"``, 0
    under ``"population"``, a ``DataError`` under ``"error"``."""
    import xarray as xr

    df = _panel()
    spec = mb.GLMM("count ~ x", "poisson", residuals=_ar1())
    design = mb.design(spec, df)
    draws, phi, sigma = 4000, -0.6, 0.8
    rng = np.random.default_rng(0)
    e = rng.normal(0.0, 1.0, (1, draws, design.n))
    post = xr.Dataset(
        {
            "e_ar": (("chain", "draw", "observation"), e),
            "phi_ar": (("chain", "draw"), np.full((1, draws), phi)),
            "sigma_ar": (("chain", "draw"), np.full((1, draws), sigma)),
        }
    )
    used = design.data
    np.testing.assert_array_equal(latent_draws(post, design, used, rng=rng), e)
    subject = used["id"].iloc[0]
    mine = used[used["id"] == subject]
    last = int(mine["visit"].max())
    at = int(np.flatnonzero((used["id"] == subject).to_numpy() & (used["visit"] == last))[0])
    new = pd.DataFrame(
        {"id": [subject, "new", "new"], "visit": [last + 2, 1, 3], "x": 0.0, "count": 0}
    )
    got = latent_draws(post, design, new, new_groups="sample", rng=rng)[0]
    mean, sd = phi**2 * e[0, :, at], sigma * np.sqrt(1 - phi**4)
    resid = (got[:, 0] - mean) / sd
    assert abs(resid.mean()) < 0.1 and abs(resid.std() - 1) < 0.06
    assert abs(got[:, 1].std() - sigma) < 0.05
    assert abs(np.corrcoef(got[:, 1], got[:, 2])[0, 1] - phi**2) < 0.06
    pop = latent_draws(post, design, new, new_groups="population", rng=rng)[0]
    assert np.all(pop[:, 1:] == 0) and np.all(pop[:, 0] != 0)
    assert latent_draws(post, design, new, level="population", rng=rng) == 0.0
    with pytest.raises(DataError, match="subjects the model has not seen"):
        latent_draws(post, design, new, rng=rng)


@pytest.mark.parametrize(
    ("correlation", "fix"),
    [("cs", r"\+ \(1 \| id\)"), ("unstructured", r"\(0 \+ C\(visit\) \| id\)")],
)
def test_cs_and_unstructured_are_random_effects_for_a_glmm(correlation: str, fix: str) -> None:
    with pytest.raises(SpecError, match=fix):
        mb.GLMM(
            "count ~ x",
            "poisson",
            residuals={"correlation": correlation, "time": "visit", "group": "id"},
        )


def test_glmm_spec_errors_shared_with_the_lmm() -> None:
    with pytest.raises(SpecError, match=r"residuals\.group is required"):
        mb.GLMM("count ~ x", "poisson", residuals={"correlation": "ar1", "time": "visit"})
    spec = mb.GLMM(
        "count ~ x", "poisson", residuals={"correlation": "ar1", "time": "t", "group": "id"}
    )
    with pytest.raises(DataError, match="integer visits"):
        mb.design(spec, _panel())
    spec = mb.GLMM(
        "count ~ x + (1 | id)", "poisson", residuals={"correlation": "ar1", "time": "visit"}
    )
    assert mb.design(spec, _panel()).n > 0  # the group taken from the formula
