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
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedbayes as mb
from mixedbayes.errors import DataError, MixedBayesError, SpecError

# ----------------------------------------------------------------------------- base data


def long_data() -> pd.DataFrame:
    """6 subjects × 4 days, with columns for every family used below."""
    rng = np.random.default_rng(0)
    n_sub, n_day = 6, 4
    df = pd.DataFrame(
        {
            "Subject": np.repeat([f"s{i}" for i in range(n_sub)], n_day),
            "Days": np.tile(np.arange(n_day), n_sub),
        }
    )
    n = len(df)
    df["y"] = 250 + 10 * df["Days"] + rng.normal(0, 20, n)
    df["count"] = rng.poisson(3, n)
    df["trials"] = 10
    df["k"] = rng.binomial(10, 0.3, n)
    df["hit"] = rng.binomial(1, 0.5, n)
    df["pos"] = rng.gamma(2.0, 1.0, n)
    df["prop"] = rng.uniform(0.05, 0.95, n)
    df["exposure"] = rng.uniform(0.5, 2.0, n)
    df["x"] = rng.normal(size=n)
    return df


def theoph() -> pd.DataFrame:
    df = mb.datasets.load("theoph")
    return df[df["Subject"].astype(str).isin(["1", "2", "3"])].copy()


PK = {
    "kind": "nonlinear",
    "model": "oral_1cmt",
    "parameters": {"log_CL": "1 + (1 | Subject)", "log_V": "1", "log_KA": "1"},
    "response": "conc",
    "time": "Time",
    "subject": "Subject",
    "dosing": {"dose": "Dose"},
}

LMM = "y ~ Days + (Days | Subject)"


def with_(df: pd.DataFrame, **changes: Any) -> pd.DataFrame:
    """A copy of ``df`` with cells set: ``col=(row, value)`` or ``col=list_of_values``."""
    out = df.copy()
    for col, change in changes.items():
        if isinstance(change, tuple):
            row, value = change
            if col in out and pd.api.types.is_numeric_dtype(out[col]):
                if isinstance(value, str):
                    out[col] = out[col].astype(object)
                elif isinstance(value, float):
                    out[col] = out[col].astype(float)
            out.loc[row, col] = value
        else:
            out[col] = change
    return out


# ----------------------------------------------------------------------------- the matrix


@dataclass
class Case:
    """One malformed input: what to run, the error, the names the message must contain."""

    id: str
    op: str  # spec | design | priors | compile | load_data | new_data | fit_no_data | load
    # | fit_method (a method of a cheap fit) | fit (mb.fit; the sampler is never reached)
    spec: Any
    error: type[MixedBayesError]
    names: tuple[str, ...]
    where: str | None = None
    data: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    xfail: str = ""
    absent: tuple[str, ...] = ()  # wording the message must not use (it would mislead)


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

        from mixedbayes.compile import compile_model

        spec = mb.load_spec({"formula": LMM})
        design = mb.design(spec, long_data())
        compiled = compile_model(design)
        prior = pm.sample_prior_predictive(draws=20, model=compiled.model, random_seed=1)
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
    else:  # pragma: no cover
        raise AssertionError(case.op)


D = long_data()
T = theoph()

CASES: list[Case] = [
    # ---------------------------------------------------------------- spec: keys and values
    Case(
        "unknown-top-level-key",
        "spec",
        {"kind": "lmm", "formula": LMM, "formla": "x"},
        SpecError,
        ("formla",),
        where="formla",
    ),
    Case(
        "unknown-kind", "spec", {"kind": "lme", "formula": LMM}, SpecError, ("lme",), where="kind"
    ),
    Case(
        "kind-not-a-string",
        "spec",
        {"kind": ["lmm"], "formula": LMM},
        SpecError,
        ("kind",),
        where="kind",
        xfail="spec/io.py spec_from_dict: an unhashable kind raises TypeError: unhashable "
        "type: 'list'",
    ),
    Case("missing-formula", "spec", {"kind": "lmm"}, SpecError, ("formula",), where="formula"),
    Case("two-tildes", "spec", {"formula": "y ~ x ~ z"}, SpecError, ("~",), where="formula"),
    Case(
        "no-response",
        "spec",
        {"formula": "~ Days + (1 | Subject)"},
        SpecError,
        ("response",),
        where="formula",
    ),
    Case(
        "unbalanced-paren",
        "spec",
        {"formula": "y ~ Days + (1 | Subject"},
        SpecError,
        ("(",),
        where="formula",
    ),
    Case(
        "empty-bar-side",
        "spec",
        {"formula": "y ~ Days + ( | Subject)"},
        SpecError,
        ("| Subject",),
        where="formula",
    ),
    Case(
        "unknown-family",
        "spec",
        {"kind": "glmm", "formula": LMM, "family": "gausian"},
        SpecError,
        ("gausian",),
        where="family",
    ),
    Case(
        "unknown-link",
        "spec",
        {"kind": "glmm", "formula": LMM, "family": {"name": "poisson", "link": "logg"}},
        SpecError,
        ("logg",),
        where="family",
    ),
    Case(
        "link-not-of-family",
        "spec",
        {"kind": "glmm", "formula": LMM, "family": {"name": "poisson", "link": "logit"}},
        SpecError,
        ("logit", "poisson"),
        where="family",
    ),
    Case(
        "lmm-with-poisson",
        "spec",
        {"kind": "lmm", "formula": LMM, "family": "poisson"},
        SpecError,
        ("poisson", "gaussian"),
        where="spec",
    ),
    Case(
        "prior-unparseable",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "normal(0,"}]},
        SpecError,
        ("normal(0,",),
        where="priors.0.prior",
    ),
    Case(
        "prior-unknown-distribution",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "gaussian(0, 1)"}]},
        SpecError,
        ("gaussian",),
        where="priors.0.prior",
    ),
    Case(
        "prior-row-without-prior",
        "spec",
        {"formula": LMM, "priors": [{"class": "b"}]},
        SpecError,
        ("prior",),
        where="priors.0.prior",
    ),
    Case(
        "priors-not-a-list",
        "spec",
        {"formula": LMM, "priors": "normal(0, 1)"},
        SpecError,
        ("priors",),
        where="priors",
    ),
    Case(
        "sampler-chains-zero",
        "spec",
        {"formula": LMM, "sampler": {"chains": 0}},
        SpecError,
        ("chains",),
        where="sampler.chains",
    ),
    Case(
        "sampler-draws-negative",
        "spec",
        {"formula": LMM, "sampler": {"draws": -5}},
        SpecError,
        ("draws",),
        where="sampler.draws",
    ),
    Case(
        "sampler-target-accept-above-1",
        "spec",
        {"formula": LMM, "sampler": {"target_accept": 1.5}},
        SpecError,
        ("target_accept",),
        where="sampler.target_accept",
    ),
    Case(
        "sampler-unknown-name",
        "spec",
        {"formula": LMM, "sampler": {"name": "stan"}},
        SpecError,
        ("stan",),
        where="sampler.name",
    ),
    Case(
        "sampler-unknown-key",
        "spec",
        {"formula": LMM, "sampler": {"iter": 10}},
        SpecError,
        ("iter",),
        where="sampler.iter",
    ),
    Case(
        "parametrization-invalid",
        "spec",
        {"formula": LMM, "parametrization": "sideways"},
        SpecError,
        ("parametrization",),
        where="parametrization",
    ),
    Case(
        "group-options-invalid",
        "spec",
        {"formula": LMM, "group_effects": {"Subject": {"parametrization": "up"}}},
        SpecError,
        ("Subject",),
        where="group_effects.Subject.parametrization",
    ),
    Case(
        "name-not-text",
        "spec",
        {"formula": LMM, "name": [1, 2]},
        SpecError,
        ("name",),
        where="name",
    ),
    Case("spec-not-a-mapping", "spec", "- a\n- b\n", SpecError, ("list",), where="spec"),
    Case("malformed-yaml", "spec", "kind: lmm\nformula: [y ~ x\n", SpecError, ("line",)),
    Case(
        "spec-file-missing",
        "spec",
        "models/nope.yaml",
        SpecError,
        ("models/nope.yaml",),
        where="spec",
    ),
    Case(
        "zi-on-poisson",
        "spec",
        {"kind": "glmm", "formula": "count ~ x + (1 | Subject)", "family": "poisson", "zi": "~ 1"},
        SpecError,
        ("zi", "poisson"),
        where="spec",
    ),
    Case(
        "zi-without-tilde",
        "spec",
        {
            "kind": "glmm",
            "formula": "count ~ x + (1 | Subject)",
            "family": "zero_inflated_poisson",
            "zi": "x",
        },
        SpecError,
        ("~",),
        where="zi",
    ),
    Case(
        "zi-with-group-term",
        "spec",
        {
            "kind": "glmm",
            "formula": "count ~ x + (1 | Subject)",
            "family": "zero_inflated_poisson",
            "zi": "~ x + (1 | Subject)",
        },
        SpecError,
        ("zi",),
        where="zi",
    ),
    # ---------------------------------------------------------------- nonlinear specs
    Case("pk-unknown-model", "spec", {**PK, "model": "oral_3cmt"}, SpecError, ("oral_3cmt",)),
    Case(
        "pk-missing-parameter",
        "spec",
        {**PK, "parameters": {"log_CL": "1 + (1 | Subject)", "log_V": "1"}},
        SpecError,
        ("KA",),
    ),
    Case(
        "pk-unknown-parameter",
        "spec",
        {**PK, "parameters": {**PK["parameters"], "log_Q": "1"}},
        SpecError,
        ("Q",),
    ),
    Case(
        "nonlinear-two-structural-models",
        "spec",
        {**PK, "expression": "CL * Time"},
        SpecError,
        ("model", "expression"),
    ),
    Case(
        "nonlinear-parameter-not-identifier",
        "spec",
        {**PK, "parameters": {**PK["parameters"], "log CL": "1"}},
        SpecError,
        ("log CL",),
        where="parameters",
    ),
    Case(
        "nonlinear-parameter-twice",
        "spec",
        {**PK, "parameters": {**PK["parameters"], "CL": "1"}},
        SpecError,
        ("CL",),
    ),
    Case(
        "nonlinear-bad-parameter-formula",
        "spec",
        {**PK, "parameters": {**PK["parameters"], "log_V": "1 + (1 | "}},
        SpecError,
        ("log_V",),
        where="parameters",
    ),
    Case(
        "dosing-dose-and-events",
        "spec",
        {**PK, "dosing": {"dose": "Dose", "events": {"id": "ID"}}},
        SpecError,
        ("dose", "events"),
        where="dosing",
    ),
    Case(
        "dosing-unknown-event-column",
        "spec",
        {**PK, "dosing": {"events": {"id": "ID", "foo": "FOO"}}},
        SpecError,
        ("foo",),
        where="dosing",
    ),
    Case(
        "pk-without-time",
        "spec",
        {k: v for k, v in PK.items() if k != "time"},
        SpecError,
        ("time",),
    ),
    Case(
        "ode-dose-state-unknown",
        "spec",
        {
            **{k: v for k, v in PK.items() if k != "model"},
            "ode": {"rhs": {"A": "-KA * A"}, "observe": "A / V", "dose_state": "gut"},
        },
        SpecError,
        ("gut",),
        where="ode",
    ),
    Case(
        "expression-unknown-name",
        "design",
        {
            "kind": "nonlinear",
            "expression": "E0 + Emax * dose / (EC50 + dose)",
            "parameters": {"E0": "1", "Emax": "1", "EC50x": "1"},
            "response": "y",
        },
        SpecError,
        ("EC50", "dose"),
        where="expression",
        data=D,
    ),
    Case(
        "expression-not-allowed",
        "design",
        {
            "kind": "nonlinear",
            "expression": "__import__('os').getcwd()",
            "parameters": {"E0": "1"},
            "response": "y",
        },
        SpecError,
        ("__import__",),
        where="expression",
        data=D,
    ),
    # ---------------------------------------------------------------- priors against a design
    Case(
        "prior-unknown-class",
        "priors",
        {"formula": LMM, "priors": [{"class": "beta", "prior": "normal(0, 1)"}]},
        SpecError,
        ("beta",),
        where="priors[0].class",
        data=D,
    ),
    Case(
        "prior-unknown-group",
        "priors",
        {"formula": LMM, "priors": [{"class": "sd", "group": "Patient", "prior": "normal(0, 1)"}]},
        SpecError,
        ("Patient",),
        where="priors[0].group",
        data=D,
    ),
    Case(
        "prior-unknown-coef",
        "priors",
        {"formula": LMM, "priors": [{"class": "b", "coef": "Dayz", "prior": "normal(0, 1)"}]},
        SpecError,
        ("Dayz",),
        where="priors[0].coef",
        data=D,
    ),
    Case(
        "prior-lkj-on-b",
        "priors",
        {"formula": LMM, "priors": [{"class": "b", "prior": "lkj(2)"}]},
        SpecError,
        ("lkj",),
        where="priors[0].prior",
        data=D,
    ),
    Case(
        "prior-positive-on-b",
        "priors",
        {"formula": LMM, "priors": [{"class": "b", "prior": "exponential(1)"}]},
        SpecError,
        ("exponential",),
        where="priors[0].prior",
        data=D,
    ),
    Case(
        "prior-unknown-nlpar",
        "priors",
        {**PK, "priors": [{"class": "b", "nlpar": "log_Q", "prior": "normal(0, 1)"}]},
        SpecError,
        ("log_Q",),
        where="priors[0].nlpar",
        data=T,
    ),
    Case(
        "group-effects-unknown-factor",
        "design",
        {"formula": LMM, "group_effects": {"Patient": {"parametrization": "centered"}}},
        SpecError,
        ("Patient",),
        where="group_effects",
        data=D,
    ),
    # ---------------------------------------------------------------- data: columns and values
    Case(
        "missing-covariate-column",
        "design",
        {"formula": "y ~ Dayz + (1 | Subject)"},
        DataError,
        ("Dayz", "Days"),
        where="column 'Dayz'",
        data=D,
    ),
    Case(
        "missing-group-column",
        "design",
        {"formula": "y ~ Days + (1 | Patient)"},
        DataError,
        ("Patient",),
        where="column 'Patient'",
        data=D,
    ),
    Case(
        "missing-response-column",
        "design",
        {"formula": "reaction ~ Days + (1 | Subject)"},
        DataError,
        ("reaction",),
        where="column 'reaction'",
        data=D,
    ),
    Case(
        "response-not-numeric",
        "design",
        {"formula": LMM},
        DataError,
        ("'fast'", "5"),
        where="column 'y'",
        data=with_(D, y=(5, "fast")),
    ),
    Case(
        "group-has-missing-values",
        "design",
        {"formula": LMM},
        DataError,
        ("7",),
        where="column 'Subject'",
        data=with_(D, Subject=(7, None)),
    ),
    Case(
        "data-empty",
        "design",
        {"formula": LMM},
        DataError,
        ("no rows",),
        where="data",
        data=D.iloc[:0],
    ),
    Case(
        "data-not-a-frame",
        "design",
        {"formula": LMM},
        DataError,
        ("dict",),
        where="data",
        data=D.to_dict(),
    ),  # type: ignore[arg-type]
    Case(
        "every-response-missing",
        "design",
        {"formula": LMM},
        DataError,
        ("y",),
        data=with_(D, y=np.nan),
    ),
    Case(
        "single-level-group",
        "design",
        {"formula": "y ~ Days + (1 | one)"},
        DataError,
        ("one", "'a'"),
        where="group 'one'",
        data=with_(D, one="a"),
    ),
    Case(
        "reserved-group-name",
        "design",
        {"formula": "y ~ Days + (1 | b)"},
        SpecError,
        ("'b'",),
        where="group 'b'",
        data=with_(D, b=D["Subject"]),
    ),
    Case(
        "log-of-non-positive",
        "design",
        {"formula": "y ~ log(pos) + (1 | Subject)"},
        DataError,
        ("log(pos)", "rows 3."),
        where="term 'log(pos)'",
        data=with_(D, pos=(3, -1.0)),
    ),
    Case(
        "infinite-covariate",
        "design",
        {"formula": "y ~ x + (1 | Subject)"},
        DataError,
        ("x", "4"),
        where="term 'x'",
        data=with_(D, x=(4, np.inf)),
    ),
    Case(
        "infinite-response",
        "design",
        {"formula": LMM},
        DataError,
        ("y", "2"),
        data=with_(D, y=(2, np.inf)),
    ),
    Case(
        "offset-of-zero-exposure",
        "design",
        {
            "kind": "glmm",
            "formula": "count ~ x + offset(log(exposure)) + (1 | Subject)",
            "family": "poisson",
        },
        DataError,
        ("offset", "6"),
        where="offset",
        data=with_(D, exposure=(6, 0.0)),
    ),
    Case(
        "poisson-negative-count",
        "design",
        {"kind": "glmm", "formula": "count ~ x + (1 | Subject)", "family": "poisson"},
        DataError,
        ("count", "3", "-2"),
        data=with_(D, count=(3, -2)),
    ),
    Case(
        "poisson-fractional-count",
        "design",
        {"kind": "glmm", "formula": "count ~ x + (1 | Subject)", "family": "poisson"},
        DataError,
        ("count", "8", "2.5"),
        data=with_(D, count=(8, 2.5)),
    ),
    Case(
        "bernoulli-not-binary",
        "design",
        {"kind": "glmm", "formula": "hit ~ x + (1 | Subject)", "family": "bernoulli"},
        DataError,
        ("hit", "1", "2"),
        data=with_(D, hit=(1, 2)),
    ),
    Case(
        "binomial-more-successes-than-trials",
        "design",
        {"kind": "glmm", "formula": "k | trials(trials) ~ x + (1 | Subject)", "family": "binomial"},
        DataError,
        ("k", "9"),
        data=with_(D, k=(9, 12)),
    ),
    Case(
        "binomial-without-trials",
        "design",
        {"kind": "glmm", "formula": "k ~ x + (1 | Subject)", "family": "binomial"},
        SpecError,
        ("trials",),
        where="formula",
        data=D,
    ),
    Case(
        "poisson-with-trials",
        "design",
        {
            "kind": "glmm",
            "formula": "cbind(k, trials - k) ~ x + (1 | Subject)",
            "family": "poisson",
        },
        SpecError,
        ("poisson",),
        where="formula",
        data=D,
    ),
    Case(
        "gamma-non-positive",
        "design",
        {"kind": "glmm", "formula": "pos ~ x + (1 | Subject)", "family": "gamma"},
        DataError,
        ("pos", "0"),
        data=with_(D, pos=(0, 0.0)),
    ),
    Case(
        "beta-outside-unit-interval",
        "design",
        {"kind": "glmm", "formula": "prop ~ x + (1 | Subject)", "family": "beta"},
        DataError,
        ("prop", "11"),
        data=with_(D, prop=(11, 1.0)),
    ),
    # ---------------------------------------------------------------- nonlinear data
    Case(
        "pk-missing-dose-column",
        "design",
        PK,
        DataError,
        ("Dose",),
        where="column 'Dose'",
        data=T.drop(columns="Dose"),
        absent=("formula uses",),
        xfail="design/nonlinear.py: 'the formula uses column 'Dose'' although Dose is "
        "dosing.dose, not in a formula",
    ),
    Case(
        "pk-time-not-numeric",
        "design",
        PK,
        DataError,
        ("Time",),
        where="column 'Time'",
        data=with_(T, Time=(T.index[2], "noon")),
        absent=("response",),
        xfail="design/nonlinear.py: a text value in the time column is reported as 'the "
        "response must be numeric'",
    ),
    Case(
        "pk-subject-missing",
        "design",
        PK,
        DataError,
        ("Subject",),
        where="column 'Subject'",
        data=with_(T, Subject=(T.index[3], None)),
    ),
    Case(
        "lognormal-error-non-positive",
        "compile",
        {**PK, "error": "lognormal"},
        DataError,
        ("conc", str(T.index[0])),
        where="column 'conc'",
        data=with_(T, conc=(T.index[0], 0.0)),
    ),
    # ---------------------------------------------------------------- files, new data
    Case(
        "data-file-missing",
        "load_data",
        "no/such/file.csv",
        DataError,
        ("no/such/file.csv",),
        where="data",
    ),
    Case("spec-without-data", "fit_no_data", {"formula": LMM}, DataError, ("data",), where="data"),
    Case("not-a-saved-fit", "load", "no/such/fit", DataError, ("no/such/fit", "spec.yaml")),
    Case(
        "new-data-missing-column",
        "new_data",
        {"formula": LMM},
        DataError,
        ("Days",),
        where="column 'Days'",
        data=D.drop(columns="Days"),
        extra={"fit_data": D},
    ),
    # ---------------------------------------------------------------- more spec values
    Case(
        "prior-too-few-arguments",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "normal(0)"}]},
        SpecError,
        ("normal", "sigma"),
        where="priors.0.prior",
    ),
    Case(
        "prior-negative-scale",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "normal(0, -1)"}]},
        SpecError,
        ("sigma", "-1"),
        where="priors.0.prior",
    ),
    Case(
        "prior-infinite-scale",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "normal(0, 1e999)"}]},
        SpecError,
        ("sigma",),
        where="priors.0.prior",
        xfail="priors/distributions.py accepts normal(0, 1e999): an infinite sigma passes "
        "the '> 0' check (no error at all)",
    ),
    Case(
        "prior-lkj-eta-zero",
        "spec",
        {"formula": LMM, "priors": [{"class": "cor", "prior": "lkj(0)"}]},
        SpecError,
        ("eta",),
        where="priors.0.prior",
    ),
    Case(
        "prior-uniform-reversed",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "uniform(5, 1)"}]},
        SpecError,
        ("lower", "upper"),
        where="priors.0.prior",
    ),
    Case(
        "prior-unknown-argument",
        "spec",
        {"formula": LMM, "priors": [{"class": "b", "prior": "normal(0, scale=1)"}]},
        SpecError,
        ("scale",),
        where="priors.0.prior",
    ),
    Case(
        "sampler-seed-not-integer",
        "spec",
        {"formula": LMM, "sampler": {"seed": "abc"}},
        SpecError,
        ("integer",),
        where="sampler.seed",
    ),
    Case(
        "family-unknown-key",
        "spec",
        {"kind": "glmm", "formula": LMM, "family": {"name": "poisson", "lnk": "log"}},
        SpecError,
        ("lnk",),
        where="family.lnk",
    ),
    Case(
        "nonlinear-error-model-unknown",
        "spec",
        {**PK, "error": "multiplicative"},
        SpecError,
        ("additive",),
        where="error",
    ),
    Case(
        "nonlinear-no-parameters",
        "spec",
        {**PK, "parameters": {}},
        SpecError,
        ("parameter",),
        where="parameters",
    ),
    Case(
        "ode-rhs-syntax",
        "compile",
        {
            **{k: v for k, v in PK.items() if k != "model"},
            "parameters": {"log_KA": "1", "log_V": "1 + (1 | Subject)"},
            "ode": {"rhs": {"A": "-KA * * A"}, "observe": "A / V", "dose_state": "A"},
        },
        SpecError,
        ("-KA * * A",),
        where="ode.rhs.A",
        data=T,
    ),
    Case(
        "ode-observe-unknown-name",
        "compile",
        {
            **{k: v for k, v in PK.items() if k != "model"},
            "parameters": {"log_KA": "1", "log_V": "1 + (1 | Subject)"},
            "ode": {"rhs": {"A": "-KA * A"}, "observe": "B / V", "dose_state": "A"},
        },
        SpecError,
        ("'B'",),
        where="ode.observe",
        data=T,
    ),
    Case(
        "ode-rhs-unknown-parameter",
        "compile",
        {
            **{k: v for k, v in PK.items() if k != "model"},
            "parameters": {"log_KA": "1", "log_V": "1 + (1 | Subject)"},
            "ode": {"rhs": {"A": "-KZ * A"}, "observe": "A / V", "dose_state": "A"},
        },
        SpecError,
        ("KZ",),
        where="ode",
        data=T,
    ),
    # ---------------------------------------------------------------- more data
    Case(
        "formula-unknown-function",
        "design",
        {"formula": "y ~ foo(x) + (1 | Subject)"},
        DataError,
        ("foo",),
        where="formula",
        data=D,
    ),
    Case(
        "response-categorical",
        "design",
        {"formula": LMM},
        DataError,
        ("'a'",),
        where="column 'y'",
        data=with_(D, y=pd.Categorical(["a", "b"] * 12)),
    ),
    Case(
        "slope-column-missing",
        "design",
        {"formula": "y ~ 1 + (nope | Subject)"},
        DataError,
        ("nope",),
        where="column 'nope'",
        data=D,
    ),
    Case(
        "nested-factor-column-missing",
        "design",
        {"formula": "y ~ 1 + (1 | clinic/Subject)"},
        DataError,
        ("clinic",),
        where="column 'clinic'",
        data=D,
    ),
    Case(
        "binomial-negative-trials",
        "design",
        {"kind": "glmm", "formula": "k | trials(trials) ~ x + (1 | Subject)", "family": "binomial"},
        DataError,
        ("k", "4"),
        data=with_(D, trials=(4, -3), k=(4, -5)),
    ),
    Case(
        "covariate-with-a-string",
        "design",
        {"formula": "y ~ x + (1 | Subject)"},
        DataError,
        ("'x'", "3"),
        data=with_(D, x=(3, "abc")),
        xfail="design/design.py: formulae's 'Variable is of an unrecognized type "
        "(<class 'pandas.Series'>)' names neither the column x nor row 3",
    ),
    Case(
        "group-levels-of-mixed-types",
        "design",
        {"formula": "y ~ x + (1 | g)"},
        DataError,
        ("'g'",),
        data=with_(D, g=[1 if i % 2 else "1" for i in range(len(D))]),
        xfail="design/design.py: a grouping column holding 1 and '1' gives formulae's "
        "'Variable is of an unrecognized type', not naming the column g",
    ),
    Case(
        "function-of-a-text-column",
        "design",
        {"formula": "y ~ log(Subject) + (1 | Subject)"},
        DataError,
        ("Subject",),
        data=D,
        xfail="design/design.py: 'loop of ufunc does not support argument 0 of type str' "
        "does not name the column Subject",
    ),
    Case(
        "duplicate-column-names",
        "design",
        {"formula": "y ~ x + (1 | Subject)"},
        DataError,
        ("'x'",),
        data=D.rename(columns={"count": "x"}),
        xfail="design: two columns named x raise a bare ValueError (operands could not be "
        "broadcast together with shapes (24,2) (24,))",
    ),
    Case(
        "pk-negative-dose",
        "compile",
        PK,
        DataError,
        ("Dose", "rows 0"),
        where="column 'Dose'",
        data=with_(T, Dose=-1.0),
    ),
    Case(
        "pk-dose-varies-within-subject",
        "compile",
        PK,
        DataError,
        ("Dose", "'1'"),
        where="column 'Dose'",
        data=with_(T, Dose=(T.index[3], 9.0)),
    ),
    Case(
        "pk-response-column-missing",
        "design",
        {**PK, "response": "cnc"},
        DataError,
        ("cnc", "conc"),
        where="column 'cnc'",
        data=T,
    ),
    Case(
        "pk-event-columns-missing",
        "design",
        {**PK, "dosing": {"events": {"id": "ID", "time": "TIME", "amt": "AMT", "evid": "EVID"}}},
        DataError,
        ("ID", "EVID"),
        data=T,
    ),
    # ---------------------------------------------------------------- fit arguments
    Case(
        "fit-draws-zero",
        "fit",
        {"formula": LMM},
        SpecError,
        ("draws",),
        where="draws",
        data=D,
        extra={"draws": 0},
        xfail="api.fit: draws=0 is falsy and silently becomes the spec's 1000 "
        "('draws or s.draws'); the sampler is reached",
    ),
    Case(
        "fit-chains-zero",
        "fit",
        {"formula": LMM},
        SpecError,
        ("chains",),
        where="chains",
        data=D,
        extra={"chains": 0},
        xfail="api.fit: chains=0 silently becomes the spec's 4 ('chains or s.chains')",
    ),
    Case(
        "fit-tune-negative",
        "fit",
        {"formula": LMM},
        SpecError,
        ("tune",),
        where="tune",
        data=D,
        extra={"tune": -5},
        xfail="api.fit: tune=-5 is passed on to the sampler unchecked",
    ),
    Case(
        "fit-unknown-sampler",
        "design",
        {"formula": LMM, "sampler": {"name": "stan"}},
        SpecError,
        ("stan",),
        where="sampler.name",
        data=D,
    ),
    # ---------------------------------------------------------------- methods of a fit
    Case(
        "predict-unseen-level",
        "fit_method",
        None,
        DataError,
        ("zz",),
        where="group 'Subject'",
        extra={"method": "predict", "args": (pd.DataFrame({"Days": [1], "Subject": ["zz"]}),)},
    ),
    Case(
        "predict-unknown-kind",
        "fit_method",
        None,
        SpecError,
        ("median",),
        where="kind",
        extra={"method": "predict", "kwargs": {"kind": "median"}},
    ),
    Case(
        "predict-unknown-level",
        "fit_method",
        None,
        SpecError,
        ("clinic",),
        where="level",
        extra={"method": "predict", "kwargs": {"level": "clinic"}},
    ),
    Case(
        "predict-newdata-missing-column",
        "fit_method",
        None,
        DataError,
        ("Days",),
        where="column 'Days'",
        extra={"method": "predict", "args": (pd.DataFrame({"Subject": ["s1"]}),)},
    ),
    Case(
        "hypothesis-unknown-parameter",
        "fit_method",
        None,
        SpecError,
        ("foo",),
        where="hypothesis",
        extra={"method": "hypothesis", "args": ("foo > 0",)},
    ),
    Case(
        "hypothesis-code",
        "fit_method",
        None,
        SpecError,
        ("__import__",),
        where="hypothesis",
        extra={"method": "hypothesis", "args": ("__import__('os') > 0",)},
    ),
    Case(
        "summary-prob-above-1",
        "fit_method",
        None,
        SpecError,
        ("1.5",),
        where="prob",
        extra={"method": "summary", "kwargs": {"prob": 1.5}},
    ),
    Case(
        "summary-unknown-variable",
        "fit_method",
        None,
        SpecError,
        ("nope",),
        where="var_names",
        extra={"method": "summary", "kwargs": {"var_names": ["nope"]}},
        xfail="results/fit.py summary(var_names=['nope']) raises a bare KeyError: 'nope'",
    ),
    Case(
        "shrinkage-unknown-group",
        "fit_method",
        None,
        SpecError,
        ("nope", "Subject"),
        where="group",
        extra={"method": "shrinkage", "args": ("nope",)},
    ),
    Case(
        "contrasts-unknown-variable",
        "fit_method",
        None,
        DataError,
        ("nope",),
        where="column 'nope'",
        absent=("'by'",),
        extra={"method": "contrasts", "args": ("nope", [0, 1])},
        xfail="results/slopes.py contrasts('nope'): the message says \"'by' names column "
        "'nope'\" although 'nope' is the variable, not by",
    ),
    Case(
        "trajectories-unknown-level",
        "fit_method",
        None,
        DataError,
        ("zz",),
        where="group 'Subject'",
        extra={"method": "trajectories", "args": (["zz"],)},
    ),
    Case(
        "nonlinear-output-of-a-regression-fit",
        "fit_method",
        None,
        SpecError,
        ("nonlinear",),
        where="kind",
        extra={"method": "typical_values"},
    ),
]


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
# an unhashable ``kind`` escapes as TypeError: the matrix row "kind-not-a-string" (xfail)
# tracks it, so the fuzzer draws kinds from scalars only
spec_dicts = st.dictionaries(st.sampled_from(KEYS), values, max_size=6).flatmap(
    lambda d: st.builds(lambda k: {**d, "kind": k} if "kind" in d else d, scalars)
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
# "0 + ..." / "-1 + ..." without other fixed terms escape as AttributeError: tracked by
# test_formula_without_fixed_effects (xfail), so the fuzzer leaves them out
TERMS = [
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


@pytest.mark.xfail(
    strict=True,
    reason="design/design.py: a formula without fixed effects ('y ~ 0 + (1 | Subject)') "
    "raises AttributeError: 'NoneType' object has no attribute 'design_matrix'",
)
@pytest.mark.parametrize("formula", ["y ~ 0 + (1 | Subject)", "y ~ -1 + (Days | Subject)"])
def test_formula_without_fixed_effects(formula: str) -> None:
    df = long_data()
    _only_our_errors(lambda: mb.design({"formula": formula}, df))
