"""Bad input: a matrix of malformed specs and data sets, fuzzing of spec loading, and the rule
that the user's DataFrame is never mutated.

Every row of ``CASES`` names the operation, the error class it must raise, and the strings
that the message must contain: the offending key, column, row or level (and, where the error
records one, the ``where`` it must name). Each row also checks that the DataFrame it was given
is unchanged afterwards, error or not.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from bad_input_base import LMM, PK, Case, long_data, theoph
from bad_input_data_cases import DATA_CASES
from bad_input_fit_cases import FIT_CASES
from bad_input_mi_cases import IMPUTATION_CASES, MI_CASES
from bad_input_spec_cases import SPEC_CASES
from conftest import frame_hash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedbayes as mb
from mixedbayes.errors import DataError, MixedBayesError, SpecError


class _NoSampler:
    """Stands in for the sampler: reaching it means the bad argument was not caught."""

    name = "none"

    def sample(self, model: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the sampler was reached with {kwargs}")


_CHEAP: list[mb.Fit] = []


def cheap_fit() -> mb.Fit:
    """A Fit whose "posterior" is 20 prior draws (no sampling): enough to call its methods."""
    if not _CHEAP:
        import pymc as pm
        import xarray as xr

        from mixedbayes.kinds import compile_model

        spec = mb.load_spec({"formula": LMM})
        design = mb.design(spec, long_data())
        compiled = compile_model(design)
        prior = pm.sample_prior_predictive(
            draws=20, model=compiled.model, random_seed=1, compile_kwargs={"mode": "FAST_COMPILE"}
        )
        tree = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})
        _CHEAP.append(mb.Fit(tree, spec, design, compiled.priors, {}, compiled))
    return _CHEAP[0]


def _run(case: Case) -> None:
    if case.op == "spec":
        mb.load_spec(case.spec)
    elif case.op == "design":
        mb.design(case.spec, case.data)
    elif case.op == "priors":
        mb.get_priors(case.spec, case.data)
    elif case.op == "compile":
        mb.compile(case.spec, case.data)
    elif case.op == "load_data":
        mb.load_data(case.spec)
    elif case.op == "fit_no_data":
        mb.fit(case.spec)
    elif case.op == "load":
        mb.load(case.spec)
    elif case.op == "new_data":
        good = case.extra["fit_data"]
        mb.design(case.spec, good).new_data(case.data)  # type: ignore[arg-type]
    elif case.op == "fit_method":
        method = getattr(cheap_fit(), case.extra["method"])
        method(*case.extra.get("args", ()), **case.extra.get("kwargs", {}))
    elif case.op == "fit":
        with mock.patch("mixedbayes.api.get_sampler", return_value=_NoSampler()):
            mb.fit(case.spec, case.data, **case.extra)
    elif case.op == "impute":
        mb.impute(case.data, case.extra["source"], **case.extra.get("kwargs", {}))
    elif case.op == "fit_multiple":
        with mock.patch("mixedbayes.api.get_sampler", return_value=_NoSampler()):
            mb.fit_multiple(case.spec, case.extra["datasets"], **case.extra.get("kwargs", {}))
    else:  # pragma: no cover
        raise AssertionError(case.op)


#: The matrix: every row of the three themes (spec, data, fit) in one list.
CASES: list[Case] = [*SPEC_CASES, *DATA_CASES, *IMPUTATION_CASES, *FIT_CASES, *MI_CASES]


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def test_matrix_is_large_and_ids_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case) -> None:
    before = frame_hash(case.data) if isinstance(case.data, pd.DataFrame) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataWarning for dropped rows is not the point here
        with pytest.raises(MixedBayesError) as err:
            _run(case)
    exc = err.value
    assert type(exc) is case.error, f"{type(exc).__name__}: {exc}"
    text = str(exc)
    for name in case.names:
        assert name in text, f"{name!r} not in {text!r}"
    for wrong in case.absent:
        assert wrong not in text, f"misleading {wrong!r} in {text!r}"
    if case.where is not None:
        assert any(case.where in w for w in exc.where), f"{case.where!r} not in {exc.where}"
    if before is not None:
        assert frame_hash(case.data) == before  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- never mutated


def _messy() -> pd.DataFrame:
    df = long_data()
    df.loc[[2, 9], "y"] = np.nan  # dropped (missing response)
    df.loc[5, "x"] = np.nan  # dropped (missing covariate)
    df["Subject"] = df["Subject"].astype("category")
    df.index = pd.Index([f"row{i}" for i in range(len(df))])
    return df


@pytest.mark.parametrize(
    ("spec", "dropped"),
    [
        ({"formula": "y ~ x * Days + (Days | Subject)"}, 3),
        ({"formula": "y ~ scale(x) + (1 | Subject)"}, 3),
        (
            {
                "kind": "glmm",
                "formula": "count ~ x + offset(log(exposure)) + (1 | Subject)",
                "family": "poisson",
            },
            1,
        ),
        (
            {
                "kind": "glmm",
                "formula": "cbind(k, trials - k) ~ x + (1 | Subject)",
                "family": "binomial",
            },
            1,
        ),
    ],
    ids=["lmm", "stateful-transform", "poisson-offset", "binomial-cbind"],
)
def test_design_and_compile_never_mutate_the_data(spec: dict[str, Any], dropped: int) -> None:
    df = _messy()
    keep = df.copy(deep=True)
    before = frame_hash(df)
    with pytest.warns(mb.DataWarning):
        compiled = mb.compile(spec, df)
    assert compiled.design.report.rows_dropped == dropped
    assert frame_hash(df) == before
    pd.testing.assert_frame_equal(df, keep)
    with pytest.warns(mb.DataWarning):
        mb.get_priors(spec, df)
    compiled.design.new_data(df.dropna())
    assert frame_hash(df) == before


def test_nonlinear_design_never_mutates_the_data() -> None:
    df = theoph()
    df.loc[df.index[4], "conc"] = np.nan
    before = frame_hash(df)
    with pytest.warns(mb.DataWarning):
        mb.compile(PK, df)
    assert frame_hash(df) == before


# ----------------------------------------------------------------------------- fuzzing

KEYS = [
    "kind",
    "formula",
    "family",
    "priors",
    "parametrization",
    "group_effects",
    "sampler",
    "data",
    "name",
    "description",
    "zi",
    "model",
    "expression",
    "ode",
    "parameters",
    "response",
    "time",
    "subject",
    "dosing",
    "error",
    "correlation",
    "link",
    "class",
]
TOKENS = [
    "y",
    "x",
    "Days",
    "Subject",
    "~",
    "+",
    "*",
    ":",
    "|",
    "||",
    "(",
    ")",
    "1",
    "0",
    "-",
    "/",
    "log(",
    "cbind(",
    ",",
    "trials(",
    "offset(",
    " ",
    "I(",
    "**",
    "2",
    "C(",
    "^",
    "%in%",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        ["lmm", "glmm", "nonlinear", "gaussian", "poisson", "oral_1cmt", "normal(0, 1)", LMM]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
# kinds are drawn from any value, lists and mappings included
spec_dicts = st.dictionaries(st.sampled_from(KEYS), values, max_size=6).flatmap(
    lambda d: st.builds(lambda k: {**d, "kind": k} if "kind" in d else d, values)
)
formulas = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map("".join)

ALLOWED = (SpecError, DataError)
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _only_our_errors(fn: Callable[[], Any]) -> None:
    """Run ``fn``; a SpecError or DataError is fine, anything else fails the test."""
    with contextlib.suppress(*ALLOWED):
        fn()


@FUZZ
@given(spec_dicts)
def test_fuzz_spec_dicts(spec: dict[str, Any]) -> None:
    _only_our_errors(lambda: mb.load_spec(spec))


@FUZZ
@given(formulas, st.sampled_from(["lmm", "glmm"]))
def test_fuzz_formulas(formula: str, kind: str) -> None:
    _only_our_errors(lambda: mb.load_spec({"kind": kind, "formula": formula}))


@FUZZ
@given(st.text(max_size=80))
def test_fuzz_yaml_text(text: str) -> None:
    _only_our_errors(lambda: mb.load_spec("kind: lmm\n" + text))


@FUZZ
@given(st.text(alphabet="abcdefnormalstuden_()0123456789.,-+ =eplkjx", max_size=30))
def test_fuzz_prior_strings(prior: str) -> None:
    _only_our_errors(
        lambda: mb.load_spec({"formula": LMM, "priors": [{"class": "b", "prior": prior}]})
    )


LHS = [
    "y",
    "count",
    "log(y)",
    "cbind(k, trials - k)",
    "k | trials(trials)",
    "y + x",
    "Subject",
    "hit",
    "I(y * 2)",
    "C(Subject)",
    "nope",
]
TERMS = [
    "0",
    "-1",
    "x",
    "Days",
    "Days * x",
    "x:Days",
    "log(x)",
    "log(pos)",
    "scale(x)",
    "C(Days)",
    "Subject",
    "(1 | Subject)",
    "(Days | Subject)",
    "(x || Subject)",
    "(1 | Subject/Days)",
    "(1 | Subject:Days)",
    "(1 | Days)",
    "1",
    "offset(log(exposure))",
    "I(x**2)",
    "(0 + x | Subject)",
    "(1 | x)",
    "(1 | y)",
    "center(x)",
    "{x + 1}",
    "(1 | nope)",
    "trials",
    "(Days | Subject) + (1 | Subject)",
]
FAMILIES = [
    None,
    "poisson",
    "binomial",
    "bernoulli",
    "gamma",
    "beta",
    "negbinomial",
    "zero_inflated_poisson",
    "student",
    "lognormal",
]
structured = st.builds(
    lambda lhs, rhs, fam: (
        {"kind": "glmm", "formula": f"{lhs} ~ {' + '.join(rhs)}", "family": fam}
        if fam
        else {"kind": "lmm", "formula": f"{lhs} ~ {' + '.join(rhs)}"}
    ),
    st.sampled_from(LHS),
    st.lists(st.sampled_from(TERMS), min_size=1, max_size=4, unique=True),
    st.sampled_from(FAMILIES),
)
DATA = long_data()


@settings(max_examples=250, derandomize=True, deadline=None)
@given(structured)
def test_fuzz_specs_against_data(spec: dict[str, Any]) -> None:
    """Specs that load are applied to data: again only SpecError or DataError escape."""
    df = DATA
    before = frame_hash(df)
    try:
        model_spec = mb.load_spec(spec)
    except ALLOWED:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _only_our_errors(lambda: mb.design(model_spec, df))
    assert frame_hash(df) == before


@pytest.mark.parametrize("formula", ["y ~ 0 + (1 | Subject)", "y ~ -1 + (Days | Subject)"])
def test_formula_without_fixed_effects(formula: str) -> None:
    """lme4 accepts a model with group effects only: no fixed terms, a finite log-density."""
    df = long_data()
    design = mb.design({"formula": formula}, df)
    assert list(design.fixed_terms) == []
    assert design.groups[0].name == "Subject"
    assert np.isfinite(mb.compile(design).initial_logp())
