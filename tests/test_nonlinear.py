"""Nonlinear kind: spec validation, design, graph (no sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import frame_hash

import mixedbayes as mb

THEOPH_SPEC = Path(__file__).resolve().parents[1] / "models" / "theophylline.yaml"


@pytest.fixture(scope="module")
def theoph() -> pd.DataFrame:
    return mb.datasets.load("theoph")


def base(**kw: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "kind": "nonlinear",
        "model": "oral_1cmt_ke",
        "parameters": {"log_KE": "1", "log_KA": "1 + (1 | Subject)", "log_CL": "1 + (1 | Subject)"},
        "response": "conc",
        "time": "Time",
        "subject": "Subject",
        "dosing": {"dose": "Dose"},
    }
    spec.update(kw)
    return spec


def test_theophylline_design_and_graph(theoph: pd.DataFrame) -> None:
    before = frame_hash(theoph)
    spec = mb.load_spec(THEOPH_SPEC)
    assert mb.load_spec(spec.to_yaml()) == spec
    d = mb.design(spec, theoph)
    assert [p.key for p in d.params] == ["log_KE", "log_KA", "log_CL"]
    (g,) = d.groups
    assert g.terms == ("log_KA", "log_CL") and g.n_levels == 12
    assert not g.correlated  # correlation: diagonal
    assert d.doses.amount.shape == (132, 1)
    np.testing.assert_allclose(d.doses.amount[:, 0], theoph["Dose"])
    cm = mb.compile(d)
    names = set(cm.model.named_vars)
    assert {"b_log_KE", "b_log_KA", "sd_Subject", "r_Subject", "sigma", "conc"} <= names
    assert np.isfinite(cm.initial_logp())
    assert cm.priors.get("b", "Intercept", "", "log_KA").source == "user"
    assert frame_hash(theoph) == before


def test_block_correlation_is_the_default(theoph: pd.DataFrame) -> None:
    d = mb.design(mb.load_spec(base()), theoph)
    assert d.groups[0].correlated
    cm = mb.compile(d)
    assert "cor_Subject" in cm.model.named_vars and np.isfinite(cm.initial_logp())


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"model": None}, "exactly one structural model"),
        ({"expression": "A * exp(-k * Time)"}, "exactly one structural model"),
        ({"model": "oral_3cmt"}, "unknown PK model"),
        ({"parameters": {"log_KE": "1", "log_KA": "1"}}, "missing ['CL']"),
        (
            {"parameters": {"log_KE": "1", "log_KA": "1", "log_CL": "1", "log_V": "1"}},
            "unknown ['V']",
        ),
        ({"dosing": None}, "need 'time', 'subject' and 'dosing'"),
        ({"parameters": {"log_KE": "1 +", "log_KA": "1", "log_CL": "1"}}, "parameters.log_KE"),
        ({"dosing": {"dose": "Dose", "events": {"id": "ID"}}}, "exactly one"),
        ({"error": "multiplicative"}, "error"),
    ],
)
def test_bad_nonlinear_specs(changes: dict[str, object], text: str) -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.load_spec(base(**changes))
    assert text in str(err.value)


def test_lognormal_error_needs_positive_response(theoph: pd.DataFrame) -> None:
    df = theoph.copy()
    df.loc[[0, 11], "conc"] = 0.0
    with pytest.raises(mb.DataError) as err:
        mb.compile(mb.load_spec(base(error="lognormal")), df)
    assert "0, 11" in str(err.value)


def test_expression_model_builds() -> None:
    rng = np.random.default_rng(1)
    c = np.tile(np.array([0.0, 1, 3, 10, 30, 100]), 8)
    df = pd.DataFrame({"C": c, "id": np.repeat([f"s{i}" for i in range(8)], 6)})
    df["E"] = 5 + 20 * c / (8 + c) + rng.normal(0, 1, len(c))
    spec = mb.load_spec(
        {
            "kind": "nonlinear",
            "expression": "E0 + Emax * C / (EC50 + C)",
            "parameters": {"E0": "1 + (1 | id)", "log_Emax": "1", "log_EC50": "1"},
            "response": "E",
        }
    )
    cm = mb.compile(spec, df)
    assert np.isfinite(cm.initial_logp())
    bad = mb.load_spec(
        {
            "kind": "nonlinear",
            "expression": "E0 + Emax * Conc / (EC50 + Conc)",
            "parameters": {"E0": "1", "log_Emax": "1", "log_EC50": "1"},
            "response": "E",
        }
    )
    with pytest.raises(mb.SpecError, match="Conc"):
        mb.design(bad, df)


def test_event_table_dosing() -> None:
    rows = []
    for i, sid in enumerate(["a", "b"]):
        rows.append(
            {"ID": sid, "TIME": 0.0, "AMT": 100.0, "EVID": 1, "DV": np.nan, "ADDL": 2, "II": 12.0}
        )
        for t in (1.0, 6.0, 13.0, 30.0):
            rows.append(
                {"ID": sid, "TIME": t, "AMT": 0.0, "EVID": 0, "DV": 1.0 + i, "ADDL": 0, "II": 0.0}
            )
    df = pd.DataFrame(rows)
    spec = mb.load_spec(
        {
            "kind": "nonlinear",
            "model": "oral_1cmt",
            "parameters": {"log_CL": "1 + (1 | ID)", "log_V": "1", "log_KA": "1"},
            "response": "DV",
            "time": "TIME",
            "subject": "ID",
            "dosing": {
                "events": {
                    "id": "ID",
                    "time": "TIME",
                    "amt": "AMT",
                    "evid": "EVID",
                    "dv": "DV",
                    "addl": "ADDL",
                    "ii": "II",
                }
            },
        }
    )
    d = mb.design(spec, df)
    assert d.n == 8
    assert d.doses.amount.shape == (8, 3)
    np.testing.assert_array_equal(d.doses.amount[2], [100.0, 100.0, 0.0])  # t = 13: two doses
    assert np.isfinite(mb.compile(d).initial_logp())


@pytest.mark.parametrize("error", ["additive", "proportional", "combined", "lognormal"])
def test_residual_error_models_build(theoph: pd.DataFrame, error: str) -> None:
    df = theoph[theoph["conc"] > 0]
    cm = mb.compile(mb.load_spec(base(error=error)), df)
    free = {v.name for v in cm.model.free_RVs}
    expected = {
        "additive": {"sigma"},
        "proportional": {"sigma_prop"},
        "combined": {"sigma", "sigma_prop"},
        "lognormal": {"sigma"},
    }[error]
    assert expected <= free and np.isfinite(cm.initial_logp())
    assert cm.priors.get(sorted(expected)[0]).provenance
