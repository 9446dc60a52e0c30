"""Prior table: data-scaled defaults with provenance, overrides, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedbayes as mb
from mixedbayes.priors import parse_prior

FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_defaults_are_scaled_from_the_data(sleepstudy: pd.DataFrame) -> None:
    table = mb.get_priors(mb.LMM(FORMULA), sleepstudy)
    sd_y = sleepstudy["Reaction"].std()
    sd_x = sleepstudy["Days"].std()
    b = table.get("b", "Days")
    assert b.prior.name == "normal"
    assert b.prior.args[1] == pytest.approx(2.5 * sd_y / sd_x, rel=1e-3)
    icpt = table.get("Intercept")
    assert icpt.prior.args[1] == pytest.approx(sleepstudy["Reaction"].median(), rel=1e-3)
    assert table.get("sd", "Days", "Subject").prior.args[2] == pytest.approx(sd_y / sd_x, rel=1e-3)
    assert table.get("cor", "", "Subject").prior.name == "lkj"
    assert table.get("sigma").prior.args[2] == pytest.approx(sd_y, rel=1e-3)
    for row in table:
        assert row.source == "default" and row.provenance
    assert f"sd(y)={sd_y:.4g}" in table.get("sigma").provenance


def test_overrides_by_class_coef_group(sleepstudy: pd.DataFrame) -> None:
    spec = mb.LMM(
        FORMULA,
        priors=[
            {"class": "sd", "prior": "exponential(0.1)"},
            {"class": "sd", "group": "Subject", "coef": "Days", "prior": "normal(0, 10)"},
            {"class": "b", "coef": "Days", "prior": "normal(10, 5)"},
            {"class": "cor", "group": "Subject", "prior": "lkj(2)"},
        ],
    )
    table = mb.get_priors(spec, sleepstudy)
    assert str(table.get("sd", "Intercept", "Subject").prior) == "exponential(0.1)"
    days_sd = table.get("sd", "Days", "Subject")
    assert str(days_sd.prior) == "normal(0, 10)" and days_sd.source == "user"
    assert days_sd.provenance == "spec priors[1]"
    assert str(table.get("b", "Days").prior) == "normal(10, 5)"
    assert str(table.get("cor", "", "Subject").prior) == "lkj(2)"
    assert table.get("sigma").source == "default"
    text = str(table)
    assert "exponential(0.1)" in text and "provenance" in text


@pytest.mark.parametrize(
    ("prior", "where", "lists"),
    [
        ({"class": "b", "coef": "Dayz", "prior": "normal(0, 1)"}, "priors[0].coef", "['Days']"),
        ({"class": "sd", "group": "Subj", "prior": "normal(0, 1)"}, "priors[0].group", "Subject"),
        ({"class": "bb", "prior": "normal(0, 1)"}, "priors[0].class", "'sigma'"),
        ({"class": "sigma", "coef": "x", "prior": "normal(0, 1)"}, "priors[0].coef", "no coef"),
        ({"class": "cor", "prior": "normal(0, 1)"}, "priors[0].prior", "lkj"),
        ({"class": "b", "prior": "lkj(2)"}, "priors[0].prior", "other than lkj"),
        ({"class": "b", "prior": "exponential(1)"}, "priors[0].prior", "positive support"),
    ],
)
def test_bad_overrides(
    sleepstudy: pd.DataFrame, prior: dict[str, str], where: str, lists: str
) -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.get_priors(mb.LMM(FORMULA, priors=[prior]), sleepstudy)
    assert where in err.value.where
    assert lists in str(err.value)


def test_parse_prior_is_not_eval() -> None:
    assert parse_prior("student_t(nu=3, mu=0, sigma=2.5)").args == (3.0, 0.0, 2.5)
    assert parse_prior("normal(-1, 2e-1)").args == (-1.0, 0.2)
    for bad in ["normal(0, x)", "normal(0, 1 + 1)", "normal(0, 1, 2)", "normal(0, sd=1)", "1"]:
        with pytest.raises(ValueError):
            parse_prior(bad)


def test_prior_predictive_is_one_call(sleepstudy: pd.DataFrame) -> None:
    tree = mb.prior_predictive(mb.LMM(FORMULA), sleepstudy, draws=200, seed=3)
    assert {"prior", "prior_predictive"} <= set(tree.children)
    sim = tree["prior_predictive"]["Reaction"].to_numpy()
    assert sim.shape[-1] == 180 and np.isfinite(sim).all()
    # the defaults are weakly informative: prior SDs have the scale of the data, not 1e6
    sigma = tree["prior"]["sigma"].to_numpy()
    assert 10 < np.median(sigma) < 200
    again = mb.prior_predictive(mb.LMM(FORMULA), sleepstudy, draws=200, seed=3)
    np.testing.assert_array_equal(sim, again["prior_predictive"]["Reaction"].to_numpy())


def test_positive_priors_on_a_parts_positive_parameters() -> None:
    """A part's positive parameters (a joint model's ``sigma`` of an outcome, the Weibull
    ``shape`` of the hazard) take positive-support priors with their ``nlpar``; a real-valued
    class with that ``nlpar`` still refuses them."""
    sim = mb.simulate.joint(12, seed=1)
    ok = [
        {"class": "sigma", "nlpar": "y", "prior": "exponential(1)"},
        {"class": "shape", "nlpar": "event", "prior": "gamma(20, 20)"},
    ]
    table = mb.get_priors({**sim.spec, "priors": ok}, sim.data)
    assert "gamma(20, 20)" in str(table) and "exponential(1)" in str(table)
    bad = [{"class": "b", "nlpar": "y", "prior": "exponential(1)"}]
    with pytest.raises(mb.SpecError, match="positive support"):
        mb.get_priors({**sim.spec, "priors": bad}, sim.data)
