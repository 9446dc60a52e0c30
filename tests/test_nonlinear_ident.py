"""Identified nonlinear models: the ``biexp`` library model and ``order:`` (ordered rates), where
the chains start (self-start, point fit, user ``init=``), and the gate's label-switching
message. Structural and point-fit checks only: nothing here runs NUTS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mixedbayes as mb
from mixedbayes.diagnostics import diagnose
from mixedbayes.inference.init import Start, chain_starts, constrained, point_fit, start_vector
from mixedbayes.kinds import kind_of
from mixedbayes.nonlinear.library import get_curve_model

#: Population values of the simulated bi-exponential (nlme's scale: log rate constants).
TRUTH = {"A1": 2.8, "lrc1": 0.8, "A2": 0.6, "lrc2": -1.6}
TIMES = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
BIEXP = "A1 * exp(-exp(lrc1) * t) + A2 * exp(-exp(lrc2) * t)"


def biexp_data(n_subjects: int = 10, seed: int = 1) -> pd.DataFrame:
    """Indometh-like data: a bi-exponential per subject, between-subject effects on A1, lrc1
    and A2, residual sd 0.05."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        a1 = TRUTH["A1"] + 0.3 * rng.normal()
        l1 = TRUTH["lrc1"] + 0.15 * rng.normal()
        a2 = TRUTH["A2"] + 0.1 * rng.normal()
        mean = a1 * np.exp(-np.exp(l1) * TIMES) + a2 * np.exp(-np.exp(TRUTH["lrc2"]) * TIMES)
        y = mean + 0.05 * rng.normal(size=TIMES.size)
        rows += [{"Subject": f"s{s}", "t": t, "conc": c} for t, c in zip(TIMES, y, strict=True)]
    return pd.DataFrame(rows)


def biexp_spec(**kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "nonlinear",
        "model": "biexp",
        "response": "conc",
        "time": "t",
        "correlation": "diagonal",
        "parameters": {
            "A1": "1 + (1 | Subject)",
            "lrc1": "1 + (1 | Subject)",
            "A2": "1 + (1 | Subject)",
            "lrc2": "1",
        },
    }
    spec.update(kw)
    return spec


def expression_spec(**kw: Any) -> dict[str, Any]:
    spec = biexp_spec(**kw)
    del spec["model"], spec["time"]
    spec["expression"] = BIEXP
    return spec


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return biexp_data()


@pytest.fixture(scope="module")
def biexp_model(data: pd.DataFrame) -> mb.CompiledModel:
    return mb.compile(biexp_spec(), data)


def population(model: Any, names: list[str], n: int = 40, seed: int = 0) -> np.ndarray:
    """Values of ``names`` (scalars) at ``n`` random points of the sampler's scale."""
    outs = model.replace_rvs_by_values([model[name] for name in names])
    fn = model.compile_fn(
        outs=outs, inputs=model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    rng = np.random.default_rng(seed)
    start = model.initial_point()
    rows = []
    for _ in range(n):
        point = {k: rng.normal(scale=3.0, size=np.shape(v)) for k, v in start.items()}
        rows.append([float(np.ravel(v)[0]) for v in fn(point)])
    return np.array(rows)


# --- the model and the order constraint ------------------------------------------------------


def test_biexp_rates_are_ordered_at_every_point(
    biexp_model: mb.CompiledModel, data: pd.DataFrame
) -> None:
    model = biexp_model.model
    assert {"b_A1", "b_lrc1", "b_A2", "b_lrc2", "sd_Subject", "sigma"} <= set(model.named_vars)
    assert np.isfinite(biexp_model.initial_logp())
    values = population(model, ["b_lrc1", "b_lrc2"])
    assert np.all(values[:, 0] > values[:, 1])
    # the mean is SSbiexp's, evaluated at the design's times
    curve = get_curve_model("biexp").mean(TIMES, TRUTH, np)
    by_hand = TRUTH["A1"] * np.exp(-np.exp(0.8) * TIMES) + 0.6 * np.exp(-np.exp(-1.6) * TIMES)
    np.testing.assert_allclose(curve, by_hand)
    spec = biexp_model.design.spec
    assert ("ordered intercepts", "lrc1 > lrc2") in kind_of(spec).report_items(spec)
    # order: [] turns the library model's order off
    free = mb.compile(biexp_spec(order=[]), data).model
    values = population(free, ["b_lrc1", "b_lrc2"])
    assert np.any(values[:, 0] < values[:, 1])


def test_order_constraint_on_an_expression(data: pd.DataFrame) -> None:
    plain = mb.compile(expression_spec(), data).model
    assert np.any(np.diff(population(plain, ["b_lrc2", "b_lrc1"]), axis=1) < 0)
    ordered = mb.compile(expression_spec(order=["lrc1", "lrc2"]), data).model
    values = population(ordered, ["b_lrc1", "b_lrc2"])
    assert np.all(values[:, 0] > values[:, 1])
    # an ordered parameter with covariate terms: its intercept is ordered
    with_x = data.assign(x=np.tile(np.linspace(-1, 1, len(TIMES)), len(data) // len(TIMES)))
    spec = expression_spec(order=["lrc1", "lrc2"])
    spec["parameters"] = {**spec["parameters"], "lrc1": "1 + x + (1 | Subject)"}
    model = mb.compile(spec, with_x).model
    assert "b_lrc1[Intercept]" in model.named_vars
    values = population(model, ["b_lrc1[Intercept]", "b_lrc2"])
    assert np.all(values[:, 0] > values[:, 1])


@pytest.mark.parametrize(
    ("order", "text"),
    [
        (["lrc1", "k9"], "'k9'"),
        (["lrc1"], "at least two"),
        (["lrc1", "lrc1"], "at least two"),
    ],
)
def test_bad_order_is_a_spec_error(order: list[str], text: str) -> None:
    with pytest.raises(mb.SpecError, match=text) as err:
        mb.load_spec(expression_spec(order=order))
    assert "order" in str(err.value)


def test_order_needs_one_link_and_intercepts(data: pd.DataFrame) -> None:
    spec = expression_spec(order=["lrc1", "A2"])
    spec["parameters"] = {k if k != "A2" else "log_A2": v for k, v in spec["parameters"].items()}
    spec["expression"] = BIEXP
    with pytest.raises(mb.SpecError, match="share one link"):
        mb.load_spec(spec)
    spec = expression_spec(order=["lrc1", "lrc2"])
    spec["parameters"] = {**spec["parameters"], "lrc2": "0 + t"}
    with pytest.raises(mb.SpecError, match="no intercept"):
        mb.design(spec, data)


def test_biexp_needs_its_parameters_and_time() -> None:
    with pytest.raises(mb.SpecError, match=r"curve model 'biexp'.*missing \['lrc2'\]"):
        mb.load_spec(biexp_spec(parameters={"A1": "1", "lrc1": "1", "A2": "1"}))
    with pytest.raises(mb.SpecError, match="needs 'time'"):
        mb.load_spec(biexp_spec(time=None))


# --- where the chains start ------------------------------------------------------------------


#: Population parameters only: a point fit of few dimensions (quick in FAST_COMPILE).
FIXED = {"A1": "1", "lrc1": "1", "A2": "1", "lrc2": "1"}


def test_self_start_and_point_fit_are_near_the_truth(data: pd.DataFrame) -> None:
    peeled = get_curve_model("biexp").self_start(data["t"].to_numpy(), data["conc"].to_numpy())
    for name, value in TRUTH.items():
        assert peeled[name] == pytest.approx(value, abs=0.15), (name, peeled)
    compiled = mb.compile(biexp_spec(parameters=FIXED), data)
    design = compiled.design
    start = kind_of(design.spec).initial_values(design)
    assert start["b_lrc1"] == pytest.approx([peeled["lrc1"]])
    fitted = point_fit(compiled.model, start, mode="FAST_COMPILE")
    for name, value in TRUTH.items():
        assert float(fitted[f"b_{name}"][0]) == pytest.approx(value, abs=0.15), name
    assert float(fitted["sigma"]) < 0.3  # the subjects' own curves differ a little


def test_point_fit_of_an_ordered_expression_finds_the_truth(data: pd.DataFrame) -> None:
    """Without a self-start rule: from the priors' centres, the order alone leads L-BFGS to
    the right mode (the fast phase first)."""
    model = mb.compile(expression_spec(order=["lrc1", "lrc2"], parameters=FIXED), data).model
    fitted = point_fit(model, mode="FAST_COMPILE")
    assert float(fitted["b_lrc1"][0]) == pytest.approx(TRUTH["lrc1"], abs=0.2)
    assert float(fitted["b_lrc2"][0]) == pytest.approx(TRUTH["lrc2"], abs=0.2)


class _Stop(Exception):
    pass


def test_init_reaches_the_sampler(data: pd.DataFrame) -> None:
    seen: dict[str, Any] = {}

    class Recorder:
        name = "recorder"

        def sample(self, model: Any, **kwargs: Any) -> Any:
            seen.update(kwargs, model=model)
            raise _Stop

    init = {"b_lrc1": 1.0, "sigma": 0.2}
    with mock.patch("mixedbayes.api.get_sampler", return_value=Recorder()), pytest.raises(_Stop):
        mb.fit(biexp_spec(), data, init=init, chains=2)
    start: Start = seen["start"]
    assert start.user == {"b_lrc1", "sigma"} and not start.point_fit
    assert float(start.values["sigma"]) == 0.2
    np.testing.assert_array_equal(start.values["b_lrc1"], [1.0])
    # by default a nonlinear fit starts from a point fit from the self-start values
    with mock.patch("mixedbayes.api.get_sampler", return_value=Recorder()), pytest.raises(_Stop):
        mb.fit(biexp_spec(), data, chains=2)
    assert seen["start"].point_fit and set(seen["start"].values) == {
        "b_A1",
        "b_lrc1",
        "b_A2",
        "b_lrc2",
    }
    # each chain starts at the given values, jittered by at most ±0.1 on the sampler's scale
    model = seen["model"]
    x, mask = start_vector(model, start)
    draw = chain_starts(x, mask, start.jitter)
    chains = constrained(model, [draw(1), draw(2)])
    for point in chains:
        assert abs(np.log(point["sigma"]) - np.log(0.2)) <= 0.1
    assert chains[0]["sigma"] != chains[1]["sigma"]


def test_pymc_sampler_gets_one_start_per_chain(biexp_model: mb.CompiledModel) -> None:
    from mixedbayes.inference.samplers import PyMCNuts

    seen: dict[str, Any] = {}

    def fake_sample(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise _Stop

    start = Start({"sigma": np.array(0.2)})
    with mock.patch("pymc.sample", fake_sample), pytest.raises(_Stop):
        PyMCNuts().sample(
            biexp_model.model,
            draws=10,
            tune=10,
            chains=3,
            seed=1,
            target_accept=0.8,
            progressbar=False,
            start=start,
        )
    assert seen["init"] == "adapt_diag" and len(seen["initvals"]) == 3
    sigmas = [float(p["sigma"]) for p in seen["initvals"]]
    assert len(set(sigmas)) == 3 and all(abs(np.log(s / 0.2)) <= 0.1 for s in sigmas)


def test_nutpie_starts_its_chains_at_the_start(biexp_model: mb.CompiledModel) -> None:
    from mixedbayes.inference import samplers
    from mixedbayes.inference.reuse import CompileCache

    @dataclass(frozen=True)
    class Compiled:
        initial_point_func: Any = None

    seen: dict[str, Any] = {}

    def fake_sample(compiled: Any, **kwargs: Any) -> Any:
        seen["compiled"] = compiled
        raise _Stop

    start = Start({"sigma": np.array(0.2)})
    with (
        mock.patch.object(samplers, "COMPILE_CACHE", CompileCache()),
        mock.patch("nutpie.compile_pymc_model", lambda *a, **k: Compiled()),
        mock.patch("nutpie.sample", fake_sample),
        pytest.raises(_Stop),
    ):
        samplers.Nutpie().sample(
            biexp_model.model,
            draws=10,
            tune=10,
            chains=2,
            seed=1,
            target_accept=0.8,
            progressbar=False,
            start=start,
        )
    first = seen["compiled"].initial_point_func(7)
    point = constrained(biexp_model.model, [first])[0]
    assert abs(np.log(point["sigma"] / 0.2)) <= 0.1
    assert not np.array_equal(first, seen["compiled"].initial_point_func(8))


@pytest.mark.parametrize(
    ("init", "text"),
    [
        ({"b_nope": 1.0}, r"unknown variables \['b_nope'\].*known variables: \[.*'b_lrc1'"),
        ({"b_lrc1": [1.0, 2.0]}, "shape"),
        ({"sigma": -1.0}, r"\['sigma'\] are outside the support"),
        ({"b_lrc1": -5.0}, "order"),
        ([1.0], "dict"),
    ],
)
def test_bad_init_is_a_spec_error(data: pd.DataFrame, init: Any, text: str) -> None:
    class Unreached:
        name = "unreached"

        def sample(self, model: Any, **kwargs: Any) -> Any:
            raise AssertionError("the sampler was reached")

    with (
        mock.patch("mixedbayes.api.get_sampler", return_value=Unreached()),
        pytest.raises(mb.SpecError, match=text),
    ):
        mb.fit(biexp_spec(), data, init=init)


# --- the gate's message ----------------------------------------------------------------------


@dataclass
class FakeFit:
    idata: xr.DataTree
    design: Any
    spec: Any

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()


def swapped_fit(design: Any, swap: bool) -> FakeFit:
    """Two chains of the biexp model; with ``swap`` the second chain has the phases swapped
    (lrc1 <-> lrc2, A1 <-> A2), else it is shifted on lrc1 only."""
    rng = np.random.default_rng(3)
    chains, draws = 2, 200
    means = {k: np.full(chains, v) for k, v in TRUTH.items()}
    if swap:
        means["lrc1"][1], means["lrc2"][1] = TRUTH["lrc2"], TRUTH["lrc1"]
        means["A1"][1], means["A2"][1] = TRUTH["A2"], TRUTH["A1"]
    else:
        means["lrc1"][1] += 1.0
    data: dict[str, Any] = {}
    for p in design.params:
        value = means[p.key][:, None, None] + 0.05 * rng.normal(size=(chains, draws, 1))
        data[p.names.b] = (("chain", "draw", p.term_dim), value)
    (g,) = design.groups
    data["sd_Subject"] = (
        ("chain", "draw", g.term_dim),
        np.exp(-1 + 0.1 * rng.normal(size=(chains, draws, len(g.terms)))),
    )
    data["sigma"] = (("chain", "draw"), 0.05 + 0.001 * rng.normal(size=(chains, draws)))
    coords = {p.term_dim: list(p.terms) for p in design.params}
    post = xr.Dataset(data, coords={**coords, g.term_dim: list(g.terms)})
    return FakeFit(xr.DataTree.from_dict({"posterior": post}), design, design.spec)


def test_rhat_gate_names_label_switching(biexp_model: mb.CompiledModel) -> None:
    gate = diagnose(swapped_fit(biexp_model.design, swap=True))["rhat"]  # type: ignore[arg-type]
    assert gate.status == "fail"
    assert "Label switching" in gate.message
    assert "b_lrc1[Intercept] <-> b_lrc2[Intercept]" in gate.message
    assert "b_A1[Intercept] <-> b_A2[Intercept]" in gate.message
    for remedy in ("model: biexp", "order: [lrc1, lrc2]", "init="):
        assert remedy in gate.remedy
    # a chain that is merely off (no permutation) is not called label switching
    shifted = diagnose(swapped_fit(biexp_model.design, swap=False))["rhat"]  # type: ignore[arg-type]
    assert shifted.status == "fail" and "abel switching" not in shifted.message + shifted.remedy


def test_only_exchangeable_cells_are_called_switched() -> None:
    """Chain means swapped between cells of unrelated variables (a compositional model's
    ``z_subject`` and ``z_b_slope``) are not label switching; within one variable, or the
    same coordinate of two phases' variables, they are."""
    from mixedbayes.diagnostics.switching import exchangeable, switched_pairs

    parts = ("lrc1", "lrc2")
    assert exchangeable("b_lrc1[Intercept]", "b_lrc2[Intercept]", parts)
    assert not exchangeable("b_lrc1[Intercept]", "sd_Subject[lrc2]", parts)
    assert exchangeable("mu[1]", "mu[2]")
    assert not exchangeable("z_subject[P1, Intercept, 3]", "z_b_slope[time, 5]")
    assert not exchangeable("z_subject", "z_b_slope")
    assert not exchangeable("eta[S1, t1]", "z_b_slope[time, 5]")
    rng = np.random.default_rng(1)
    noise = 0.01 * rng.normal(size=(2, 100))
    a = np.array([0.0, 1.0])[:, None] + noise
    b = np.array([1.0, 0.0])[:, None] + noise
    post = xr.Dataset({"z_subject": (("chain", "draw"), a), "z_b_slope": (("chain", "draw"), b)})
    rhat = xr.Dataset({"z_subject": 3.0, "z_b_slope": 3.0})
    assert switched_pairs(rhat, post, ["z_subject", "z_b_slope"], 1.01) == []
    post = xr.Dataset({"mu": (("chain", "draw", "k"), np.stack([a, b], axis=-1))})
    rhat = xr.Dataset({"mu": ("k", [3.0, 3.0])})
    assert switched_pairs(rhat, post, ["mu"], 1.01) == [("mu[0]", "mu[1]")]


def test_init_names_what_was_integrated_out(sleepstudy: pd.DataFrame) -> None:
    """A marginalised LMM samples neither r_Subject (integrated out) nor b (the centred
    Intercept and b_slope): the error says so and lists what can be set."""
    from mixedbayes.inference.init import check_init

    compiled = mb.compile(mb.LMM("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    model, plain = compiled.sampling_model, compiled.model
    with pytest.raises(mb.SpecError, match=r"\['r_Subject'\] are integrated out") as err:
        check_init(model, {"r_Subject": 0.0}, plain=plain)
    assert "'Intercept'" in str(err.value) and "'b_slope'" in str(err.value)
    with pytest.raises(mb.SpecError, match=r"\['b'\] are computed from other variables"):
        check_init(model, {"b": [250.0, 10.0]}, plain=plain)
    assert float(check_init(model, {"Intercept": 250}, plain=plain)["Intercept"]) == 250.0


def test_point_fit_by_default_only_where_priors_do_not_place_the_curve(
    data: pd.DataFrame,
) -> None:
    """Expressions and ordered / self-starting models start from a point fit; a PK library
    model keeps the sampler's start (a joint mode can sit in the KA/KE flip-flop)."""
    from conftest import theoph_subjects

    for spec in (biexp_spec(), expression_spec(), expression_spec(order=["lrc1", "lrc2"])):
        design = mb.design(spec, data)
        assert kind_of(design.spec).point_fit(design)
    path = Path(__file__).resolve().parents[1] / "models" / "theophylline.yaml"
    theoph = mb.design(mb.load_spec(path), theoph_subjects(4))
    assert not kind_of(theoph.spec).point_fit(theoph)
    assert not kind_of(mb.LMM("y ~ x + (1 | g)")).point_fit(None)
