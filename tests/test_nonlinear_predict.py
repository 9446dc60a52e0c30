"""``fit.predict`` and fitted curves of nonlinear fits (PK library, expression, ODE).

The PK library model reuses the session's ``event_table_fit``; the expression and ODE models
have no sampling fit in the suite, so they get a fake posterior of hand-made draws (no
sampling). Predictions at the fitted rows are checked against the compiled model's own mean
(its graph evaluated at the draws) and against closed forms written out here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import theoph_events, theoph_subjects

import mixedbayes as mb
from mixedbayes.report import build_report
from mixedbayes.report.blocks import Figure

CHAINS, DRAWS = 2, 50


def fake_fit(design: mb.Design, draws: dict[str, np.ndarray]) -> mb.Fit:
    """A nonlinear Fit whose posterior holds ``draws`` (chain, draw, ...), no sampling."""
    dims: dict[str, tuple[str, ...]] = {"sigma": ()}
    coords: dict[str, list[object]] = {}
    for p in design.params:
        dims[p.names.b] = (p.term_dim,)
        coords[p.term_dim] = list(p.terms)
    for g in design.groups:
        dims[f"r_{g.name}"] = (g.dim, g.term_dim)
        dims[f"sd_{g.name}"] = (g.term_dim,)
        coords[g.dim], coords[g.term_dim] = list(g.levels), list(g.terms)
    data = {
        k: xr.DataArray(v, dims=("chain", "draw", *dims[k]), coords={d: coords[d] for d in dims[k]})
        for k, v in draws.items()
    }
    post = xr.Dataset(data, coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)})
    return mb.Fit(xr.DataTree.from_dict({"posterior": post}), design.spec, design, None)  # type: ignore[arg-type]


def model_mean(model: object, post: xr.Dataset, names: Sequence[str], zero_r: bool = False):
    """The compiled model's structural mean (the mean of its Normal likelihood), evaluated
    at every draw by replacing the fixed and group effects in its graph by the draws."""
    import pytensor
    from pytensor.compile.mode import Mode
    from pytensor.graph.replace import graph_replace

    (obs,) = model.observed_RVs  # type: ignore[attr-defined]
    assert "normal" in str(obs.owner.op)
    mu = obs.owner.inputs[2]
    inputs = [model[n].type() for n in names]  # type: ignore[index]
    f = pytensor.function(
        inputs,
        graph_replace(mu, dict(zip([model[n] for n in names], inputs, strict=True))),  # type: ignore[index]
        mode=Mode(linker="py", optimizer="fast_compile"),  # no C or numba compile
        on_unused_input="ignore",
    )
    out = np.empty((post.sizes["chain"], post.sizes["draw"], int(obs.shape.eval()[0])))
    for c in range(out.shape[0]):
        for d in range(out.shape[1]):
            vals = [post[n].isel(chain=c, draw=d).to_numpy() for n in names]
            if zero_r:
                vals = [
                    np.zeros_like(v) if n.startswith("r_") else v
                    for n, v in zip(names, vals, strict=True)
                ]
            out[c, d] = np.asarray(f(*vals)).ravel()
    return out


def draws_of(rng: np.random.Generator, centre: Sequence[float], sd: float) -> np.ndarray:
    return np.asarray(centre) + sd * rng.standard_normal((CHAINS, DRAWS, len(centre)))


# ---------------------------------------------------------------- PK library (event table)
def oral_ke(t: np.ndarray, doses: Sequence[tuple[float, float]], ke, ka, cl) -> np.ndarray:
    """SSfol concentrations summed over bolus doses (time, amount) given at or before t."""
    out = 0.0
    for td, amount in doses:
        dt = np.clip(t - td, 0.0, None)
        out = out + np.where(
            t >= td, amount * ke * ka / (cl * (ka - ke)) * (np.exp(-ke * dt) - np.exp(-ka * dt)), 0
        )
    return out


def test_pk_predictions_at_the_fitted_rows_are_the_models_mean(event_table_fit: mb.Fit) -> None:
    fit = event_table_fit
    names = ["b_log_KE", "b_log_KA", "b_log_CL", "r_ID"]
    subject = fit.predict()
    assert subject.dims == ("chain", "draw", "observation")
    np.testing.assert_allclose(subject, model_mean(fit.model, fit.posterior, names), rtol=1e-10)
    population = fit.predict(level="population")
    expected = model_mean(fit.model, fit.posterior, names, zero_r=True)
    np.testing.assert_allclose(population, expected, rtol=1e-10)
    # the subjects' own effects move their curves away from the population's
    assert float(np.abs(subject - population).mean()) > 0.05 * float(np.abs(subject).mean())
    # the fit's own event table as newdata gives the same predictions, row for row
    again = fit.predict(theoph_events(4))
    assert list(again["observation"].values) == list(subject["observation"].values)
    np.testing.assert_allclose(again, subject, rtol=1e-12)


def test_pk_predictions_for_new_data_honour_their_doses(event_table_fit: mb.Fit) -> None:
    fit = event_table_fit
    post = fit.posterior
    new = pd.DataFrame(
        {
            "ID": ["new"] * 5 + ["1"] * 3,
            "TIME": [0.0, 1.0, 12.0, 13.0, 20.0, 0.0, 2.0, 26.0],
            "AMT": [4.0, 0, 4.0, 0, 0, 5.0, 0, 0],
            "EVID": [1, 0, 1, 0, 0, 1, 0, 0],
        }
    )  # no DV column: predictions need none
    with pytest.raises(mb.DataError, match="new") as err:
        fit.predict(new)
    assert "ID" in str(err.value.where)
    pop = fit.predict(new, level="population")
    ke, ka, cl = (np.exp(post[f"b_log_{p}"].values[..., 0])[..., None] for p in ("KE", "KA", "CL"))
    t_new, t_one = np.array([1.0, 13.0, 20.0]), np.array([2.0, 26.0])
    expected = np.concatenate(
        [
            oral_ke(t_new, [(0.0, 4.0), (12.0, 4.0)], ke, ka, cl),
            oral_ke(t_one, [(0.0, 5.0)], ke, ka, cl),
        ],
        axis=-1,
    )
    np.testing.assert_allclose(pop, expected, rtol=1e-8)
    # subject 1 keeps its own clearance; the new subject gets none (new_groups="population")
    r1 = post["r_ID"].sel(ID="1", ID_term="log_CL").values[..., None]
    mixed = fit.predict(new, new_groups="population")
    np.testing.assert_allclose(mixed[..., :3], expected[..., :3], rtol=1e-8)
    own = oral_ke(t_one, [(0.0, 5.0)], ke, ka, cl * np.exp(r1))
    np.testing.assert_allclose(mixed[..., 3:], own, rtol=1e-8)
    # or effects drawn from the fitted distribution: reproducible, and wider than without
    drawn = fit.predict(new, new_groups="sample", seed=3)
    xr.testing.assert_equal(drawn, fit.predict(new, new_groups="sample", seed=3))
    np.testing.assert_allclose(drawn[..., 3:], own, rtol=1e-8)
    assert float(drawn[..., 1].std()) > float(pop[..., 1].std())


def test_pk_posterior_predictive_adds_the_residual_error(event_table_fit: mb.Fit) -> None:
    mean = event_table_fit.predict()
    response = event_table_fit.predict(kind="response", seed=1)
    sigma = event_table_fit.posterior["sigma"].values[..., None]
    z = (response - mean).values / sigma
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1
    with pytest.raises(mb.SpecError, match="link"):
        event_table_fit.predict(kind="link")


# ---------------------------------------------------------------- user expression
EMAX = {
    "kind": "nonlinear",
    "expression": "E0 + Emax * C / (EC50 + C)",
    "parameters": {"E0": "1 + (1 | id)", "log_Emax": "1", "log_EC50": "1"},
    "response": "E",
    "subject": "id",
}


@pytest.fixture(scope="module")
def emax_fit() -> mb.Fit:
    rng = np.random.default_rng(1)
    c = np.tile(np.array([0.0, 1, 3, 10, 30, 100]), 6)
    df = pd.DataFrame({"C": c, "id": np.repeat([f"s{i}" for i in range(6)], 6)})
    df["E"] = 5 + 20 * c / (8 + c) + rng.normal(0, 1, len(c))
    design = mb.design(mb.load_spec(EMAX), df)
    g = design.groups[0]
    draws = {
        "b_E0": draws_of(rng, [5.0], 0.2),
        "b_log_Emax": draws_of(rng, [np.log(20)], 0.05),
        "b_log_EC50": draws_of(rng, [np.log(8)], 0.05),
        "r_id": rng.normal(0, 1.5, (CHAINS, DRAWS, g.n_levels, 1)),
        "sd_id": np.abs(draws_of(rng, [1.5], 0.1)),
        "sigma": np.abs(draws_of(rng, [1.0], 0.05))[..., 0],
    }
    return fake_fit(design, draws)


def test_expression_predictions_are_the_models_mean(emax_fit: mb.Fit) -> None:
    post, design = emax_fit.posterior, emax_fit.design
    c = design.data["C"].to_numpy()
    e0 = post["b_E0"].values[..., :1] + post["r_id"].values[:, :, design.groups[0].index, 0]
    emax, ec50 = (np.exp(post[f"b_log_{p}"].values[..., :1]) for p in ("Emax", "EC50"))
    subject = emax_fit.predict()
    np.testing.assert_allclose(subject, e0 + emax * c / (ec50 + c), rtol=1e-12)
    model = mb.compile(design.spec, design.data).model
    names = ["b_E0", "b_log_Emax", "b_log_EC50", "r_id"]
    np.testing.assert_allclose(subject, model_mean(model, post, names), rtol=1e-10)
    population = emax_fit.predict(level="population")
    np.testing.assert_allclose(population, model_mean(model, post, names, zero_r=True), rtol=1e-10)
    assert not np.allclose(subject, population)


def test_expression_predictions_for_new_subjects(emax_fit: mb.Fit) -> None:
    new = pd.DataFrame({"C": [0.0, 8.0, 8.0], "id": ["new", "new", "s1"]})  # no response
    with pytest.raises(mb.DataError, match="new"):
        emax_fit.predict(new)
    post = emax_fit.posterior
    pop = emax_fit.predict(new, level="population").mean(("chain", "draw")).values
    e0 = post["b_E0"].values.mean()
    assert pop[0] == pytest.approx(e0)
    assert pop[1] == pytest.approx(pop[2])
    known = emax_fit.predict(new, new_groups="population").mean(("chain", "draw")).values
    assert known[2] - pop[2] == pytest.approx(post["r_id"].sel(id="s1").values.mean())
    with pytest.raises(mb.DataError, match="'C'"):
        emax_fit.predict(new.drop(columns="C"), level="population")


def test_expression_fit_curves_and_report_figure(emax_fit: mb.Fit) -> None:
    curves = emax_fit.concentration_curves(subjects=["s0", "s3"])
    assert curves.axis == "C" and set(curves.curves["subject"]) == {"s0", "s3"}
    c = curves.curves[curves.curves["subject"] == "s3"]
    assert (c["lower"] <= c["mean"]).all() and (c["mean"] <= c["upper"]).all()
    # the population curve has no subject effect: E0 at C = 0
    assert c["population"].iloc[0] == pytest.approx(emax_fit.posterior["b_E0"].values.mean())
    report = build_report(emax_fit, sections=["concentration"], n_groups=4)
    section = report.section("concentration")
    assert section.unavailable == ""
    (figure,) = [b for b in section.blocks if isinstance(b, Figure)]
    assert "4 of 6" in figure.caption and len(figure.png) > 1000


# ---------------------------------------------------------------- ODE
ODE = {
    "kind": "nonlinear",
    "ode": {
        "rhs": {"A_gut": "-KA * A_gut", "A_c": "KA * A_gut - KE * A_c"},
        "observe": "A_c * KE / CL",
        "dose_state": "A_gut",
    },
    "parameters": {"log_KE": "1", "log_KA": "1 + (1 | Subject)", "log_CL": "1 + (1 | Subject)"},
    "correlation": "diagonal",
    "response": "conc",
    "time": "Time",
    "subject": "Subject",
    "dosing": {"dose": "Dose"},
}


@pytest.fixture(scope="module")
def ode_fit() -> mb.Fit:
    rng = np.random.default_rng(2)
    data = theoph_subjects(3)
    design = mb.design(mb.load_spec(ODE), data)
    g = design.groups[0]
    draws = {
        "b_log_KE": draws_of(rng, [-2.45], 0.05),
        "b_log_KA": draws_of(rng, [0.47], 0.1),
        "b_log_CL": draws_of(rng, [-3.22], 0.05),
        "r_Subject": rng.normal(0, 0.3, (CHAINS, DRAWS, g.n_levels, 2)),
        "sd_Subject": np.abs(draws_of(rng, [0.6, 0.2], 0.05)),
        "sigma": np.abs(draws_of(rng, [0.7], 0.05))[..., 0],
    }
    return fake_fit(design, draws)


def test_ode_predictions_are_the_models_mean(ode_fit: mb.Fit) -> None:
    design, post = ode_fit.design, ode_fit.posterior
    subject = ode_fit.predict()
    model = mb.compile(design.spec, design.data).model
    names = ["b_log_KE", "b_log_KA", "b_log_CL", "r_Subject"]
    np.testing.assert_allclose(subject, model_mean(model, post, names), rtol=1e-9, atol=1e-12)
    # and the closed form, to the accuracy of the RK4 steps
    idx = design.groups[0].index
    r = post["r_Subject"].values[:, :, idx, :]
    ke = np.exp(post["b_log_KE"].values[..., :1])
    ka = np.exp(post["b_log_KA"].values[..., :1] + r[..., 0])
    cl = np.exp(post["b_log_CL"].values[..., :1] + r[..., 1])
    dose = design.data["Dose"].to_numpy()
    closed = oral_ke(design.time, [(0.0, 1.0)], ke, ka, cl) * dose
    np.testing.assert_allclose(subject, closed, rtol=2e-3, atol=1e-3)
    population = ode_fit.predict(level="population")
    closed_pop = (
        oral_ke(
            design.time,
            [(0.0, 1.0)],
            ke,
            np.exp(post["b_log_KA"].values[..., :1]),
            np.exp(post["b_log_CL"].values[..., :1]),
        )
        * dose
    )
    np.testing.assert_allclose(population, closed_pop, rtol=2e-3, atol=1e-3)
    assert not np.allclose(subject, population, rtol=1e-2)


def test_ode_predictions_for_a_new_subject_and_regimen(ode_fit: mb.Fit) -> None:
    post = ode_fit.posterior
    new = pd.DataFrame({"Subject": "new", "Time": [0.5, 2.0, 8.0], "Dose": 4.0})
    pop = ode_fit.predict(new, level="population")
    ke, ka, cl = (np.exp(post[f"b_log_{p}"].values[..., :1]) for p in ("KE", "KA", "CL"))
    expected = oral_ke(np.array([0.5, 2.0, 8.0]), [(0.0, 4.0)], ke, ka, cl)
    np.testing.assert_allclose(pop, expected, rtol=2e-3)
    drawn = ode_fit.predict(new, new_groups="sample", seed=1)
    assert float(drawn[..., 1].std()) > float(pop[..., 1].std())
    # a regimen: every dose counts, and a dose followed by a long gap is solved as finely
    # as the fit's data were (a fixed RK4 step as long as the gap is unstable for fast KA)
    times = np.array([11.5, 23.5, 30.0])
    regimen = ode_fit.predict_regimen(mb.pk.regimen(4.0, 3, 12.0), times, subject="1")
    r = post["r_Subject"].sel(Subject="1").values
    doses = [(0.0, 4.0), (12.0, 4.0), (24.0, 4.0)]
    closed = oral_ke(times, doses, ke, ka * np.exp(r[..., :1]), cl * np.exp(r[..., 1:]))
    np.testing.assert_allclose(regimen["mean"], closed.reshape(-1, 3).mean(axis=0), rtol=2e-3)
    new_subject = ode_fit.predict_regimen(mb.pk.regimen(4.0, 3, 12.0), times, seed=2)
    assert np.isfinite(new_subject[["lower", "upper"]]).all().all()
    assert new_subject["mean"].iloc[1] > new_subject["mean"].iloc[0]


# ---------------------------------------------------------------- curve model (biexp)
def test_curve_model_predictions_are_the_biexp_curve() -> None:
    """A ``model: biexp`` fit predicts SSbiexp's curve at its own and at new times."""
    from test_nonlinear_ident import biexp_data, biexp_spec

    rng = np.random.default_rng(3)
    formulas = {p: "1" for p in PARAMS} | {"A1": "1 + (1 | Subject)"}
    design = mb.design(mb.load_spec(biexp_spec(parameters=formulas)), biexp_data(4))
    draws = {
        f"b_{p}": draws_of(rng, [v], 0.02)
        for p, v in zip(PARAMS, (3.0, 1.0, 0.6, -1.5), strict=True)
    }
    draws["r_Subject"] = np.zeros((CHAINS, DRAWS, 4, 1))  # population = subject curves
    draws["sd_Subject"] = np.abs(draws_of(rng, [0.3], 0.01))
    draws["sigma"] = np.abs(draws_of(rng, [0.05], 0.005))[..., 0]
    fit = fake_fit(design, draws)
    post = fit.posterior

    def curve(t: np.ndarray) -> np.ndarray:
        a1, l1, a2, l2 = (post[f"b_{p}"].values[..., :1] for p in PARAMS)
        return a1 * np.exp(-np.exp(l1) * t) + a2 * np.exp(-np.exp(l2) * t)

    np.testing.assert_allclose(fit.predict(), curve(design.data["t"].to_numpy()), rtol=1e-12)
    new = pd.DataFrame({"t": [0.0, 0.5, 4.0], "Subject": ["new"] * 3})
    np.testing.assert_allclose(
        fit.predict(new, level="population"), curve(new["t"].to_numpy()), rtol=1e-12
    )
    curves = fit.concentration_curves(subjects=["s1"])
    assert curves.axis == "t" and np.isfinite(curves.curves["mean"]).all()
    with pytest.raises(mb.SpecError, match="predict"):
        fit.predict_regimen([{"time": 0.0, "amount": 1.0}], times=[1.0])


PARAMS = ("A1", "lrc1", "A2", "lrc2")
