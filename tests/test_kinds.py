"""Kinds as objects: the registry, dispatch by spec class, capabilities, and a new kind
added from outside the package (one class) without touching any stage (no sampling)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb
from mixedbayes.errors import SpecError
from mixedbayes.kinds import (
    KINDS,
    GLMMKind,
    Kind,
    LMMKind,
    NonlinearKind,
    kind_of,
    register_kind,
)
from mixedbayes.spec import SPEC_KINDS, GLMMSpec, LMMSpec, NonlinearSpec
from mixedbayes.spec import register_kind as register_spec


def test_every_kind_is_registered_once() -> None:
    assert {"lmm", "glmm", "nonlinear"} <= set(KINDS.names())
    for name in KINDS.names():
        assert KINDS.get(name).name == name


def test_kind_of_dispatches_by_spec_class() -> None:
    assert isinstance(kind_of(LMMSpec(formula="y ~ x + (1 | g)")), LMMKind)
    # a GLMMSpec is an LMMSpec subclass, but its kind is glmm
    glmm = GLMMSpec(formula="y ~ x + (1 | g)", family="poisson")
    assert isinstance(glmm, LMMSpec) and isinstance(kind_of(glmm), GLMMKind)
    nl = NonlinearSpec(expression="a * x", parameters={"a": "1 + (1 | g)"}, response="y")
    assert isinstance(kind_of(nl), NonlinearKind)


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown model kind 'lmmm'") as err:
        KINDS.get("lmmm")
    assert "did you mean 'lmm'" in str(err.value)


def test_capabilities_say_what_a_fit_can_do() -> None:
    lmm, nl = KINDS.get("lmm"), KINDS.get("nonlinear")
    assert lmm.supports("shrinkage") and lmm.supports("predict") and not lmm.supports("pk")
    assert nl.supports("pk") and not nl.supports("shrinkage")
    lmm.require("predict", "predict")  # offered: no error
    with pytest.raises(SpecError, match=r"fit\.shrinkage\(\) is not available") as err:
        nl.require("shrinkage", "shrinkage")
    assert "individual_parameters()" in str(err.value)
    assert "glmm" in str(err.value) and "lmm" in str(err.value)


def test_summary_variables_come_from_the_kind() -> None:
    df = mb.datasets.load("sleepstudy")
    d = mb.design(mb.LMM("Reaction ~ Days + (Days | Subject)"), df)
    assert kind_of(d.spec).summary_variables(d, include_group_levels=True) == [
        "b",
        "sd_Subject",
        "cor_Subject",
        "sigma",
        "r_Subject",
    ]


# --------------------------------------------------------------------------- a new kind
class ToySpec(LMMSpec):
    """A kind defined outside the package: a regression without group effects' outputs."""

    kind: Literal["toy"] = "toy"  # type: ignore[assignment]


class ToyKind(Kind):
    """Designs and builds as an LMM, but offers no capability."""

    name = "toy"
    spec_type = ToySpec
    capabilities: ClassVar[frozenset[str]] = frozenset()
    calls: ClassVar[list[str]] = []

    def design(self, spec: Any, data: pd.DataFrame) -> Any:
        self.calls.append("design")
        return LMMKind().design(spec, data)

    def default_priors(self, design: Any) -> Any:
        self.calls.append("priors")
        return LMMKind().default_priors(design)

    def positive_classes(self, design: Any) -> tuple[str, ...]:
        return ("sigma",)

    def coords(self, design: Any) -> dict[str, list[Any]]:
        return LMMKind().coords(design)

    def build(self, design: Any, priors: Any, ctx: Any) -> Any:
        self.calls.append("build")
        return LMMKind().build(design, priors, ctx)


@pytest.fixture
def toy_kind() -> Iterator[None]:
    """Register the toy spec and kind for one test, then remove them."""
    register_spec(ToySpec)
    register_kind(ToyKind)
    yield
    SPEC_KINDS.pop("toy")
    KINDS.remove("toy")


@pytest.mark.usefixtures("toy_kind")
def test_a_new_kind_is_one_class_and_every_stage_asks_it() -> None:
    from mixedbayes.report.sections.regression import ShrinkageSection, TrajectoriesSection

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(list("abcdef"), 5), "x": rng.normal(size=30)})
    df["y"] = df["x"] + rng.normal(size=30)
    spec = mb.load_spec({"kind": "toy", "formula": "y ~ x + (1 | g)"})
    assert isinstance(spec, ToySpec) and isinstance(kind_of(spec), ToyKind)
    ToyKind.calls.clear()
    compiled = mb.compile(spec, df)
    assert ToyKind.calls == ["design", "priors", "build"]
    assert np.isfinite(compiled.initial_logp())
    assert compiled.marginalization == ""  # the toy kind offers no sampling variant
    fake = SimpleNamespace(spec=spec, design=compiled.design)
    # sections appear because the kind says it can, not because it is "not nonlinear"
    assert not ShrinkageSection().applies(fake)  # type: ignore[arg-type]
    assert not TrajectoriesSection().applies(fake)  # type: ignore[arg-type]
    lmm_fake = SimpleNamespace(spec=mb.LMM("y ~ x + (1 | g)"), design=compiled.design)
    assert ShrinkageSection().applies(lmm_fake)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="not available for toy fits"):
        kind_of(spec).require("shrinkage", "shrinkage")


def test_subject_factor_skips_an_observation_level_factor() -> None:
    """With ``(1 | obs)`` for overdispersion the individuals are the patients, not the rows
    (the default of ``fit.trajectories()`` and the report's trajectories)."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"patient": np.repeat([f"p{i}" for i in range(8)], 4)})
    df["obs"] = [f"o{i}" for i in range(len(df))]
    df["count"] = rng.poisson(3.0, size=len(df))
    d = mb.design(mb.GLMM("count ~ 1 + (1 | patient) + (1 | obs)", "poisson"), df)
    assert max(d.groups, key=lambda g: g.n_levels).name == "obs"
    factor = kind_of(d.spec).subject_factor(d)
    assert factor is not None and factor.name == "patient"
