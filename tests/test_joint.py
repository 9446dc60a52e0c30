"""The ``joint`` kind: spec, design, the one graph (names, dims, the hazard's log-likelihood
against a NumPy assembly of the same terms), bad input, small fits and dynamic predictions
(the reference fits against JMbayes2 and JM: ``test_joint_reference.py``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import frame_hash

import mixedbayes as mb
from mixedbayes.errors import DataError, SpecError


def _simulated(n: int = 40, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Subjects with a random intercept and slope, visits every 0.5 until an event or
    censoring whose hazard rises with the current value (Weibull baseline)."""
    rng = np.random.default_rng(seed)
    b0 = rng.normal(0, 1, n)
    b1 = rng.normal(0, 0.3, n)
    trt = rng.integers(0, 2, n)
    grid = np.linspace(0, 10, 2001)
    visits, subjects = [], []
    for i in range(n):
        eta = 1.0 + 0.2 * grid + b0[i] + b1[i] * grid - 0.3 * trt[i]
        hazard = 0.05 * np.exp(0.8 * eta - 0.8)
        cum = np.concatenate([[0], np.cumsum(hazard[1:] * np.diff(grid))])
        u = -np.log(rng.uniform())
        t_event = grid[np.searchsorted(cum, u)] if u < cum[-1] else np.inf
        censor = rng.uniform(4, 10)
        stop, event = (t_event, 1) if t_event <= censor else (censor, 0)
        stop = max(stop, 0.05)
        times = np.arange(0, stop, 0.5)
        y = (
            1.0
            + 0.2 * times
            + b0[i]
            + b1[i] * times
            - 0.3 * trt[i]
            + rng.normal(0, 0.3, times.size)
        )
        visits += [
            {"id": f"s{i}", "time": t, "y": v, "trt": int(trt[i]), "x": float(rng.normal())}
            for t, v in zip(times, y, strict=True)
        ]
        subjects.append({"id": f"s{i}", "stop": stop, "event": event, "trt": int(trt[i])})
    return {"longitudinal": pd.DataFrame(visits), "survival": pd.DataFrame(subjects)}


SPEC: dict[str, Any] = {
    "kind": "joint",
    "subject": "id",
    "time": "time",
    "longitudinal": {"y": {"formula": "y ~ time + trt + (time | id)"}},
    "survival": {"formula": "Surv(stop, event) ~ trt", "baseline": "weibull"},
}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return _simulated()


def _spec(**changes: Any) -> dict[str, Any]:
    out = {**SPEC, **changes}
    return out


# -- spec -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"association": {"z": ["value"]}}, "association"),
        ({"association": {"y": ["velocity"]}}, "association"),
        ({"longitudinal": {"y": "y ~ time + (1 | clinic)"}}, "longitudinal"),
        ({"survival": {"formula": "stop ~ trt"}}, "survival.formula"),
        ({"survival": {"formula": "Surv(stop) ~ trt"}}, "survival.formula"),
        (
            {"survival": {"formula": "Surv(stop, event) ~ trt", "baseline": "loglogistic"}},
            "survival",
        ),
        (
            {
                "survival": {
                    "formula": "Surv(stop, event) ~ trt",
                    "options": {"knots": 3},
                    "baseline": "weibull",
                }
            },
            "survival",
        ),
        ({"longitudinal": {"event": "y ~ time + (1 | id)"}}, "longitudinal"),
    ],
)
def test_bad_specs_are_named(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError) as info:
        mb.load_spec(_spec(**changes))
    assert any(w.startswith(where) for w in info.value.where), info.value.where


def test_python_builder_equals_the_dict_spec() -> None:
    built = mb.Joint(
        "id",
        "time",
        {"y": "y ~ time + trt + (time | id)"},
        {"formula": "Surv(stop, event) ~ trt", "baseline": "weibull"},
        lag=0.5,
    )
    assert built == mb.load_spec({**SPEC, "lag": 0.5})
    assert (
        mb.Joint("id", "time", {"y": "y ~ time + (1 | id)"}, "Surv(t, d) ~ 1").survival.baseline
        == "bspline"
    )


def test_spec_round_trips_through_yaml() -> None:
    spec = mb.load_spec(_spec(association={"y": ["value", "slope"]}))
    assert mb.load_spec(spec.to_yaml()) == spec
    assert spec.associations() == [("y", "value"), ("y", "slope")]
    assert mb.load_spec(SPEC).associations() == [("y", "value")]


# -- bad data ---------------------------------------------------------------------------------


def _broken(tables: dict[str, pd.DataFrame], what: str) -> Any:
    long, surv = tables["longitudinal"].copy(), tables["survival"].copy()
    if what == "one table":
        return long
    if what == "subject only in visits":
        return {"longitudinal": long, "survival": surv.iloc[1:]}
    if what == "subject only in survival":
        extra = pd.DataFrame([{"id": "new", "stop": 3.0, "event": 0, "trt": 1}])
        return {"longitudinal": long, "survival": pd.concat([surv, extra], ignore_index=True)}
    if what == "visit after event":
        surv.loc[0, "stop"] = 0.01
        return {"longitudinal": long, "survival": surv}
    if what == "negative time":
        long.loc[long.index[3], "time"] = -1.0
        return {"longitudinal": long, "survival": surv}
    if what == "text event":
        surv["event"] = np.where(surv["event"] == 1, "dead", "alive")
        return {"longitudinal": long, "survival": surv}
    if what == "event 2":
        surv.loc[2, "event"] = 2
        return {"longitudinal": long, "survival": surv}
    raise AssertionError(what)


@pytest.mark.parametrize(
    ("what", "where"),
    [
        ("one table", "data.longitudinal column 'stop'"),
        ("subject only in visits", "data.survival column 'id'"),
        ("subject only in survival", "data.longitudinal column 'id'"),
        ("visit after event", "data.longitudinal column 'time'"),
        ("negative time", "data.longitudinal column 'time'"),
        ("text event", "data.survival column 'event'"),
        ("event 2", "data.survival column 'event'"),
    ],
)
def test_bad_data_is_named_and_not_mutated(
    tables: dict[str, pd.DataFrame], what: str, where: str
) -> None:
    data = _broken(tables, what)
    before = (
        {k: frame_hash(v) for k, v in data.items()} if isinstance(data, dict) else frame_hash(data)
    )
    with pytest.raises(DataError) as info:
        mb.design(SPEC, data)
    assert where in info.value.where, info.value.where
    after = (
        {k: frame_hash(v) for k, v in data.items()} if isinstance(data, dict) else frame_hash(data)
    )
    assert before == after


def test_one_table_with_survival_columns_and_an_event_comparison(
    tables: dict[str, pd.DataFrame],
) -> None:
    """A single table carrying each subject's survival columns on every row (as pbc2) gives
    the same survival rows as two tables; ``Surv(stop, status == 2)`` codes the event."""
    surv = tables["survival"].assign(status=lambda d: np.where(d["event"] == 1, 2, 0))
    long = tables["longitudinal"].drop(columns="trt").merge(surv, on="id")
    spec = _spec(survival={"formula": "Surv(stop, status == 2) ~ trt", "baseline": "weibull"})
    one = mb.design(spec, long)
    two = mb.design(SPEC, tables)
    np.testing.assert_array_equal(one.survival.event, two.survival.event)
    np.testing.assert_allclose(one.survival.stop, two.survival.stop)
    np.testing.assert_array_equal(one.survival.X, two.survival.X)
    varying = long.assign(stop=long["stop"] + long["time"])
    with pytest.raises(DataError, match="vary within subjects"):
        mb.design(spec, varying)


# -- the graph --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tables: dict[str, pd.DataFrame]) -> Any:
    return mb.compile(_spec(association={"y": ["value", "slope", "area", "shared"]}), tables)


def test_names_and_dims(compiled: Any) -> None:
    model = compiled.model
    coords = model.coords
    assert list(coords["y_term"]) == ["Intercept", "time", "trt"]
    assert list(coords["event_term"]) == ["trt"]
    assert list(coords["association"]) == [
        "y:value",
        "y:slope",
        "y:area",
        "y:shared:Intercept",
        "y:shared:time",
    ]
    assert list(coords["id_term"]) == ["y:Intercept", "y:time"]
    for name in ("b_y", "sigma_y", "b_event", "alpha", "log_h0", "shape", "sd_id", "cor_id"):
        assert name in model.named_vars, name
    assert model.named_vars_to_dims["alpha"] == ("association",)


def test_logp_is_finite_with_a_gradient(compiled: Any) -> None:
    model = compiled.model
    assert np.isfinite(compiled.initial_logp())
    grad = model.compile_dlogp(mode="FAST_COMPILE")(model.initial_point())
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_area_reads_the_integral_of_the_predictor(compiled: Any) -> None:
    """``y ~ time + trt``: the area from 0 to t of the fixed part's rows is (t, t²/2, trt·t),
    and of the random intercept and slope (t, t²/2)."""
    design = compiled.design
    area = next(a for a in design.associations if a.type == "area")
    t = design.survival.stop
    trt = design.source_tables["survival"]["trt"].to_numpy()
    assert area.at_stop is not None
    np.testing.assert_allclose(area.at_stop.X, np.column_stack([t, t**2 / 2, trt * t]))
    ((_, rm),) = area.at_stop.maps
    np.testing.assert_allclose(rm.Z, np.column_stack([t, t**2 / 2]))
    np.testing.assert_array_equal(rm.index, design.survival.level)


def test_nested_subject_factor(tables: dict[str, pd.DataFrame]) -> None:
    """Patients in centres: ``(1 | centre/id)``; the hazard reads the patient's effects."""
    long = tables["longitudinal"]
    centre = {s: f"c{int(s[1:]) % 4}" for s in long["id"].unique()}
    long = long.assign(centre=long["id"].map(centre))
    spec = _spec(longitudinal={"y": "y ~ time + (1 | centre/id)"}, association={"y": ["shared"]})
    compiled = mb.compile(spec, {"longitudinal": long, "survival": tables["survival"]})
    design = compiled.design
    assert design.subject_factor == "centre:id"
    sub = design.structure("centre:id")
    ids = design.source_tables["survival"]["id"].astype(str)
    assert [sub.levels[i] for i in design.survival.level] == [f"{centre[s]}:{s}" for s in ids]
    assert np.isfinite(compiled.initial_logp())


def test_auto_parametrization_across_outcomes(tables: dict[str, pd.DataFrame]) -> None:
    """``auto``: the subject's block is centred when every outcome's own rule centres it
    (data that pin each subject's trajectory down), non-centred otherwise; the spec can fix
    it."""
    d = mb.design(SPEC, tables)
    (block,) = d.structure("id").blocks
    assert block.reason.startswith("auto across outcomes")
    own = [b.parametrization for g in d.outcomes["y"].groups for b in g.blocks]
    assert own == ["centered"]  # 0.3 measurement error against SDs 1 and 0.3: informative
    assert block.parametrization == "centered"
    long = tables["longitudinal"].assign(flag=lambda x: (x["y"] > x["y"].median()).astype(int))
    two = _spec(
        longitudinal={
            "y": "y ~ time + (time | id)",
            "flag": {"formula": "flag ~ 1 + (1 | id)", "family": "bernoulli"},
        },
    )
    mixed = mb.design(two, {"longitudinal": long, "survival": tables["survival"]})
    assert mixed.structure("id").blocks[0].parametrization == "noncentered"
    fixed = mb.design(_spec(parametrization="noncentered"), tables)
    assert fixed.structure("id").blocks[0].parametrization == "noncentered"


def test_hazard_log_likelihood_equals_a_numpy_assembly(tables: dict[str, pd.DataFrame]) -> None:
    """The graph's ``event_loglik`` at a random point equals the same terms put together in
    NumPy from the design: baseline, covariates, α × (X·b + Z·r) at the stop times and nodes,
    and the quadrature of the hazard."""
    from mixedbayes.survival import log_likelihood_rows

    compiled = mb.compile(_spec(association={"y": ["value", "slope"]}), tables)
    design, model = compiled.design, compiled.model
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    names = ["event_loglik", "b_y", "r_id", "b_event", "alpha", "log_h0", "shape"]
    outs = model.replace_rvs_by_values([model[n] for n in names])  # at the point, not draws
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    got, b, r, gamma, alpha, log_h0, shape = (np.asarray(x) for x in fn(point))
    surv = design.survival
    lin = surv.X @ gamma

    def value(reading: Any) -> np.ndarray:
        out = reading.X @ b
        for _g, rm in reading.maps:
            out = out + np.sum(rm.Z * r[rm.index][:, list(rm.columns)], axis=1)
        return out

    theta = {"log_h0": log_h0, "shape": shape}
    n, q = surv.nodes.shape
    at_stop = sum(alpha[j] * value(a.at_stop) for j, a in enumerate(design.associations))
    at_nodes = sum(
        alpha[j] * value(a.at_nodes).reshape(n, q) for j, a in enumerate(design.associations)
    )
    log_h_stop = design.baseline.log_hazard(surv.stop, theta, np) + lin + at_stop
    log_h_nodes = design.baseline.log_hazard(surv.nodes, theta, np) + lin[:, None] + at_nodes
    expected = log_likelihood_rows(log_h_stop, log_h_nodes, surv.weights, surv.event, np).sum()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # the NumPy hazard of the log_likelihood group and of SBC gives the same rows
    from mixedbayes.results.joint_hazard import survival_log_likelihood

    values = {"b_y": b, "r_id": r, "b_event": gamma, "alpha": alpha}
    values.update({"log_h0": log_h0, "shape": shape})
    post = xr.Dataset(
        {
            k: (("chain", "draw", *(f"{k}{i}" for i in range(v.ndim))), v[None, None])
            for k, v in values.items()
        }
    )
    np.testing.assert_allclose(survival_log_likelihood(post, design).sum(), got, rtol=1e-10)
    # the slope association is the time derivative of the value: here the formula is linear
    # in time, so it is b_time + r_time of the subject
    slope = value(design.associations[1].at_stop)
    np.testing.assert_allclose(slope, b[1] + r[surv.level, 1], rtol=1e-6, atol=1e-8)


def test_two_outcomes_share_one_correlated_block(tables: dict[str, pd.DataFrame]) -> None:
    long = tables["longitudinal"].assign(high=lambda d: (d["y"] > d["y"].median()).astype(int))
    spec = _spec(
        longitudinal={
            "y": "y ~ time + (time | id)",
            "high": {"formula": "high ~ time + (1 | id)", "family": "bernoulli"},
        },
        association={"y": ["value"], "high": ["value"]},
    )
    compiled = mb.compile(spec, {"longitudinal": long, "survival": tables["survival"]})
    coords = compiled.model.coords
    assert list(coords["id_term"]) == ["y:Intercept", "y:time", "high:Intercept"]
    assert list(coords["association"]) == ["y:value", "high:value"]
    assert "sigma_high" not in compiled.model.named_vars
    assert np.isfinite(compiled.initial_logp())


# -- fits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_fit(tables: dict[str, pd.DataFrame]) -> mb.Fit:
    """A short fit of the simulated data (2 chains × 200 draws): for the fit's outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.fit(SPEC, tables, draws=200, tune=300, chains=2, seed=1)


@pytest.mark.slow
def test_fit_names_save_load_and_report(small_fit: mb.Fit, tmp_path: Any) -> None:
    s = small_fit.summary()
    names = list(s["parameter"])
    for name in (
        "b_y[Intercept]",
        "b_y[time]",
        "b_event[trt]",
        "sd_id[y:Intercept]",
        "cor_id[y:Intercept,y:time]",
        "sigma_y",
        "alpha[y:value]",
        "log_h0",
        "shape",
    ):
        assert name in names, name
    # the simulated association (0.8) and treatment effect on y (-0.3) are recovered roughly
    est = s.set_index("parameter")
    assert est.loc["alpha[y:value]", "lower"] < 0.8 < est.loc["alpha[y:value]", "upper"]
    assert est.loc["b_y[trt]", "lower"] < -0.3 < est.loc["b_y[trt]", "upper"]
    # the survival rows' pointwise log-likelihood; LOO leaves one subject out
    ll = small_fit.idata["log_likelihood"]
    assert ll["event"].dims == ("chain", "draw", "observation_event")
    assert np.isfinite(ll["event"].to_numpy()).all()
    loo = small_fit.loo()
    assert loo.n_obs == small_fit.design.survival.n and np.isfinite(loo.elpd)
    small_fit.save(tmp_path / "fit")
    again = mb.load(tmp_path / "fit")
    pd.testing.assert_frame_equal(again.summary(), s)
    assert set(again.design.source_tables) == {"longitudinal", "survival"}
    html = small_fit.report(tmp_path / "report.html").read_text()
    assert "y:value" in html and "weibull" in html
    for title in ("Association and hazard covariates", "Baseline hazard", "Dynamic survival"):
        assert title in html, title
    assert html.count("data:image/png") >= 2  # the baseline hazard and the survival curves


@pytest.mark.slow
def test_dynamic_prediction(small_fit: mb.Fit, tables: dict[str, pd.DataFrame]) -> None:
    """Conditional survival after a landmark: in [0, 1], falling with time, 1 just after the
    landmark; a patient measured higher (the hazard rises with the value: α > 0) gets a lower
    survival; the trajectory passes near the patient's measurements."""
    long = tables["longitudinal"]
    one = long[long["id"] == "s3"].query("time <= 2").copy()
    high = one.assign(id="hi", y=one["y"] + 1.5)
    low = one.assign(id="lo", y=one["y"] - 1.5)
    before = frame_hash(long)
    pred = small_fit.predict_survival(
        pd.concat([high, low]), times=[2.001, 3, 5, 8], landmark=2.0, seed=4
    )
    assert frame_hash(long) == before
    s = pred.survival
    assert set(s["subject"]) == {"hi", "lo"} and (s["landmark"] == 2.0).all()
    assert ((s["lower"] <= s["mean"]) & (s["mean"] <= s["upper"])).all()
    assert ((s["lower"] >= 0) & (s["upper"] <= 1)).all()
    for _, rows in s.groupby("subject"):
        assert np.all(np.diff(rows["mean"].to_numpy()) < 0)
        assert rows["mean"].iloc[0] > 0.995
    hi = s[s["subject"] == "hi"].set_index("time")["mean"]
    lo = s[s["subject"] == "lo"].set_index("time")["mean"]
    assert (hi.loc[[3.0, 5.0, 8.0]] < lo.loc[[3.0, 5.0, 8.0]]).all()
    traj = pred.trajectory.dropna(subset=["observed"])
    assert (traj["subject"] == "hi").sum() == len(one)
    assert np.corrcoef(traj["mean"], traj["observed"])[0, 1] > 0.9
    assert pred.draws.shape[:2] == (2, 200) and pred.draws.shape[2] == 4


def test_predict_survival_needs_a_joint_fit(count_small_fit: mb.Fit) -> None:
    with pytest.raises(SpecError, match="predict_survival"):
        count_small_fit.predict_survival(times=[1.0])


@pytest.mark.slow
def test_informative_dropout_biases_the_naive_slope_not_the_joint_one() -> None:
    """300 patients, dropout driven by the current value: the naive LMM of the visits that
    remain underestimates the slope (its 95 % interval excludes 0.2); the joint model's 90 %
    intervals cover the true slope (0.2) and the true association (1.5)."""
    sim = mb.simulate.joint(300, alpha=1.5, slope=0.2, sigma=1.0, seed=2)
    data = sim.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        naive = mb.fit(
            mb.LMM("y ~ time + (time | id)"),
            data["longitudinal"],
            draws=500,
            tune=500,
            chains=2,
            seed=1,
        )
        joint = mb.fit(
            sim.spec,
            data,
            draws=500,
            tune=700,
            chains=2,
            seed=1,
        )
    slope = naive.summary(prob=0.95).set_index("parameter").loc["b[time]"]
    assert slope["upper"] < 0.2
    s = joint.summary(prob=0.9).set_index("parameter")
    assert s.loc["b_y[time]", "lower"] < 0.2 < s.loc["b_y[time]", "upper"]
    assert s.loc["alpha[y:value]", "lower"] < 1.5 < s.loc["alpha[y:value]", "upper"]
    assert abs(s.loc["b_y[time]", "mean"] - 0.2) < abs(slope["mean"] - 0.2)


def test_simulated_event_times_follow_the_hazard() -> None:
    """mb.simulate.joint draws event times exactly: with α = 0 they are exponential with the
    given hazard (treated × exp(trt_hazard)); visits stop at the event."""
    sim = mb.simulate.joint(4000, alpha=0.0, hazard=0.1, trt_hazard=0.5, follow_up=5.0, seed=7)
    surv = sim.data["survival"]
    for arm, rate in ((0, 0.1), (1, 0.1 * np.exp(0.5))):
        rows = surv[surv["trt"] == arm]
        p = 1 - np.exp(-rate * 5.0)
        assert abs(rows["event"].mean() - p) < 4 * np.sqrt(p * (1 - p) / len(rows))
    last = sim.data["longitudinal"].groupby("id")["time"].max()
    assert (last.to_numpy() < surv.set_index("id").loc[last.index, "stop"].to_numpy()).all()
    assert mb.load_spec(sim.spec).survival.formula == "Surv(stop, event) ~ trt"


def test_dynamic_accuracy_by_hand() -> None:
    """IPCW AUC and Brier score on four subjects worked by hand: A dies at 2 (a case), B is
    censored at 2.5 inside the window (1, 4], C and D are alive after it. The censoring
    Kaplan–Meier drops to 2/3 at 2.5, so C and D weigh 1.5 and B 0."""
    from mixedbayes.results.joint_predict import dynamic_accuracy

    risk = np.array([0.9, 0.5, 0.2, 0.4])
    time = np.array([2.0, 2.5, 10.0, 8.0])
    event = np.array([1, 0, 0, 0])
    out = dynamic_accuracy(risk, time, event, landmark=1.0, horizon=3.0)
    assert (out["at_risk"], out["cases"], out["controls"]) == (4, 1, 2)
    assert out["brier"] == pytest.approx((0.01 + 1.5 * 0.04 + 1.5 * 0.16) / 4)
    assert out["auc"] == pytest.approx(1.0)
    flipped = dynamic_accuracy(1 - risk, time, event, landmark=1.0, horizon=3.0)
    assert flipped["auc"] == pytest.approx(0.0)
    early = dynamic_accuracy(risk, time, event, landmark=2.2, horizon=3.0)
    assert early["at_risk"] == 3 and np.isnan(early["auc"])  # no case left


@pytest.mark.slow
def test_validate_dynamic_on_the_fit(small_fit: mb.Fit) -> None:
    out = small_fit.validate_dynamic(landmark=2.0, horizon=3.0, n_draws=50, seed=1)
    assert out["at_risk"] > 0 and out["cases"] > 0
    assert 0.5 < out["auc"] <= 1.0
    assert 0.0 <= out["brier"] < 0.25


@pytest.mark.slow
def test_predict_survival_names_bad_input(
    small_fit: mb.Fit, tables: dict[str, pd.DataFrame]
) -> None:
    one = tables["longitudinal"].query("id == 's3'")
    with pytest.raises(DataError) as info:
        small_fit.predict_survival(one.drop(columns="y"), times=[5.0], landmark=2.0)
    assert "column 'y'" in info.value.where
    with pytest.raises(DataError) as info:
        small_fit.predict_survival(one.query("time > 1"), times=[5.0], landmark=0.5)
    assert info.value.where == ["landmark"]
