"""Spec: YAML/dict/Python, round trips, and clear SpecErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mixedbayes as mb
from mixedbayes.spec import LMMSpec, PriorSpec, SamplerSpec

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_load_yaml_file() -> None:
    spec = mb.load_spec(MODELS / "sleepstudy.yaml")
    assert isinstance(spec, LMMSpec)
    assert spec.formula == "Reaction ~ Days + (Days | Subject)"
    assert spec.family.name == "gaussian" and spec.family.link_name == "identity"
    assert spec.data == "dataset:sleepstudy"


def test_three_ways_give_the_same_spec() -> None:
    f = "Reaction ~ Days + (Days | Subject)"
    prior = {"class": "b", "coef": "Days", "prior": "normal(0, 10)"}
    a = mb.LMM(f, priors=[prior])
    b = mb.load_spec({"kind": "lmm", "formula": f, "priors": [prior]})
    c = mb.load_spec(
        f"kind: lmm\nformula: {f}\npriors:\n  - class: b\n    coef: Days\n"
        "    prior: normal(0, 10)\n"
    )
    assert a == b == c
    assert a.priors[0].class_ == "b"


def test_yaml_round_trip_is_identical(tmp_path: Path) -> None:
    spec = mb.LMM(
        "y ~ time * trt + (1 + time | clinic/patient)",
        priors=[
            {"class": "sd", "group": "clinic", "prior": "normal(0, 2)"},
            {"class": "cor", "prior": "lkj(2)"},
        ],
        parametrization="noncentered",
        group_effects={"clinic": {"parametrization": "centered"}},
        sampler={"draws": 300, "chains": 2, "seed": 5, "name": "pymc"},
        name="trial",
    )
    assert mb.load_spec(spec.to_yaml()) == spec
    path = mb.save_spec(spec, tmp_path / "s.yaml")
    assert mb.load_spec(path) == spec
    assert mb.load_spec(spec.to_dict()) == spec


formula_terms = st.lists(st.sampled_from(["x", "t", "x:t", "log(z)"]), max_size=3, unique=True)
bars = st.sampled_from(["(1 | g)", "(x | g)", "(x || g)", "(1 | a/b)", "(1 | a) + (1 | b)"])


@settings(max_examples=40, deadline=None)
@given(
    terms=formula_terms,
    bar=bars,
    draws=st.integers(1, 5000),
    chains=st.integers(1, 8),
    seed=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    param=st.sampled_from(["auto", "centered", "noncentered"]),
    scale=st.floats(0.01, 100, allow_nan=False),
)
def test_round_trip_property(
    terms: list[str], bar: str, draws: int, chains: int, seed: int | None, param: str, scale: float
) -> None:
    rhs = " + ".join([*terms, bar])
    spec = mb.LMM(
        f"y ~ {rhs}",
        sampler={"draws": draws, "chains": chains, "seed": seed},
        parametrization=param,
        priors=[{"class": "sigma", "prior": f"exponential({scale})"}],
    )
    assert mb.load_spec(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    ("source", "where", "text"),
    [
        ({"kind": "lmm", "formula": "y ~ x", "famly": "gaussian"}, "famly", "unknown key"),
        ({"kind": "lmm", "formula": "y ~ x", "family": "gausian"}, "family", "gaussian"),
        (
            {"kind": "lmm", "formula": "y ~ x", "family": {"name": "gaussian", "link": "logit"}},
            "family",
            "link",
        ),
        ({"kind": "lmm"}, "formula", "required"),
        ({"kind": "lmx", "formula": "y ~ x"}, "kind", "lmm"),
        ({"kind": "lmm", "formula": "y ~ x + (1 | )"}, "formula", "both sides"),
        ({"kind": "lmm", "formula": "y ~ x +"}, "formula", "malformed formula"),
        ({"kind": "lmm", "formula": "y x"}, "formula", "'~'"),
        ({"kind": "lmm", "formula": "y ~ (x | g"}, "formula", "unbalanced"),
        (
            {"kind": "lmm", "formula": "y ~ x", "priors": [{"class": "b", "prior": "norml(0, 1)"}]},
            "priors.0.prior",
            "unknown prior distribution",
        ),
        (
            {
                "kind": "lmm",
                "formula": "y ~ x",
                "priors": [{"class": "b", "prior": "normal(0, -1)"}],
            },
            "priors.0.prior",
            "sigma must be > 0",
        ),
        (
            {"kind": "lmm", "formula": "y ~ x", "priors": [{"class": "b", "prior": "normal(0)"}]},
            "priors.0.prior",
            "missing",
        ),
        (
            {
                "kind": "lmm",
                "formula": "y ~ x",
                "priors": [{"class": "b", "prior": "os.system('ls')"}],
            },
            "priors.0.prior",
            "must be a call",
        ),
        (
            {"kind": "lmm", "formula": "y ~ x", "sampler": {"name": "stan"}},
            "sampler.name",
            "nutpie",
        ),
        (
            {"kind": "lmm", "formula": "y ~ x", "sampler": {"draws": 0}},
            "sampler.draws",
            "an integer >= 1",
        ),
        (
            {"kind": "lmm", "formula": "y ~ x", "parametrization": "sideways"},
            "parametrization",
            "auto",
        ),
    ],
)
def test_bad_specs_name_the_key(source: dict[str, object], where: str, text: str) -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.load_spec(source)
    assert any(where in w for w in err.value.where), err.value.where
    assert text in str(err.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: lmm\nformula: y ~ x\n  priors: [\n")
    with pytest.raises(mb.SpecError) as err:
        mb.load_spec(path)
    assert "line" in str(err.value) and "bad.yaml" in str(err.value)


def test_missing_spec_file() -> None:
    with pytest.raises(mb.SpecError, match="no spec file"):
        mb.load_spec("models/does-not-exist.yaml")


def test_every_problem_reported_at_once() -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.load_spec({"kind": "lmm", "formula": "y ~ x", "famly": 1, "sampler": {"chains": 0}})
    assert len(err.value.problems) == 2


def test_spec_objects_are_immutable() -> None:
    spec = mb.LMM("y ~ x")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        spec.formula = "y ~ z"  # type: ignore[misc]
    assert SamplerSpec().name == "auto"
    assert PriorSpec(**{"class": "b", "prior": "normal(0, 1)"}).coef == ""


def test_sampler_registered_after_import_is_accepted() -> None:
    """The spec checks the sampler name against the registry as it is now, not as it was
    when mixedbayes was imported."""
    from mixedbayes.inference import SAMPLERS, Sampler, get_sampler, register_sampler

    source = {"kind": "lmm", "formula": "y ~ x", "sampler": {"name": "test_late_sampler"}}
    with pytest.raises(mb.SpecError, match="test_late_sampler"):
        mb.load_spec(source)

    @register_sampler
    class LateSampler(Sampler):
        name = "test_late_sampler"

    try:
        assert mb.load_spec(source).sampler.name == "test_late_sampler"
        assert SamplerSpec(name="test_late_sampler").name == "test_late_sampler"
        assert isinstance(get_sampler("test_late_sampler"), LateSampler)
    finally:
        del SAMPLERS["test_late_sampler"]
    with pytest.raises(mb.SpecError, match="test_late_sampler"):
        mb.load_spec(source)


def test_sampler_validation_imports_no_pymc() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mixedbayes as mb; "
        "mb.load_spec({'kind': 'lmm', 'formula': 'y ~ x', 'sampler': {'name': 'pymc'}}); "
        "bad = [m for m in ('pymc', 'pytensor') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
