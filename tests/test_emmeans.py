"""Estimated marginal (least-squares) means: ``fit.emmeans`` and the report's LS-means section.

Hand-made posteriors (no sampling): every marginal mean is checked against the linear
predictor written out from the draws of ``b`` by term name — the reference grid's averaging
over the other factors (equal and proportional weights), numeric covariates at their mean,
the back-transformation of a log link — and the pairwise differences against the draws'
differences. The real-fit check (a Poisson GLMM) is in ``test_afterfit.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import count_data
from test_shrinkage import CHAINS, DRAWS, posterior_fit

import mixedbayes as mb
from mixedbayes.errors import SpecError
from mixedbayes.report.registry import ReportContext, get_section
from mixedbayes.report.sections.lsmeans import lsmeans_columns

ARMS = ["placebo", "active"]
VISITS = [1, 2, 3, 4]


def _trial(seed: int = 3, n: int = 24) -> pd.DataFrame:
    """``n`` patients × 4 visits (the last missed by 3 patients); arm placebo (reference) or
    active, sex M for a third of them, age."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        for v in VISITS if s >= 3 else VISITS[:-1]:
            rows.append(
                {
                    "id": f"p{s:02d}",
                    "arm": ARMS[s % 2],
                    "visit": v,
                    "sex": "M" if s % 3 == 0 else "F",
                    "age": 40.0 + s,
                    "y": float(rng.normal(0.2 * v, 1.0)),
                }
            )
    df = pd.DataFrame(rows)
    df["arm"] = pd.Categorical(df["arm"], categories=ARMS)
    return df


def _fake(formula: str, data: pd.DataFrame, seed: int = 1, **spec: Any) -> mb.Fit:
    design = mb.design(mb.LMM(formula, **spec), data)
    rng = np.random.default_rng(seed)
    b = rng.normal(0.0, 1.0, (CHAINS, DRAWS, len(design.fixed_terms)))
    r = {g.name: rng.normal(0, 1, (CHAINS, DRAWS, g.n_levels, len(g.terms))) for g in design.groups}
    sd = {g.name: np.ones((CHAINS, DRAWS, len(g.terms))) for g in design.groups}
    return posterior_fit(design, b, r, sd)


def _b(fit: mb.Fit) -> dict[str, np.ndarray]:
    b = fit.posterior["b"].transpose("chain", "draw", "term")
    return {str(t): b.sel(term=t).to_numpy().ravel() for t in b["term"].to_numpy()}


def _cell(b: dict[str, np.ndarray], arm: str, visit: int, male: float, age: float) -> np.ndarray:
    """The linear predictor of ``y ~ arm * C(visit) + sex + age`` written out by term."""
    eta = b["Intercept"] + male * b["sex[M]"] + age * b["age"]
    if arm == "active":
        eta = eta + b["arm[active]"]
    if visit > 1:
        eta = eta + b[f"C(visit)[{visit}]"]
        if arm == "active":
            eta = eta + b[f"arm[active]:C(visit)[{visit}]"]
    return eta


@pytest.fixture(scope="module")
def trial_fit() -> mb.Fit:
    return _fake("y ~ arm * C(visit) + sex + age + (1 | id)", _trial())


def test_means_average_other_factors_with_equal_weights(trial_fit: mb.Fit) -> None:
    em = trial_fit.emmeans("arm", by="visit")
    b = _b(trial_fit)
    age = trial_fit.design.data["age"].mean()
    means = em.means
    assert list(means.columns[:2]) == ["visit", "arm"]
    assert list(zip(means["visit"], means["arm"], strict=True)) == [
        (v, a) for v in VISITS for a in ARMS
    ]
    for j, row in means.iterrows():
        expected = _cell(b, row["arm"], row["visit"], 0.5, age)  # sex: M and F weighted 1/2
        np.testing.assert_allclose(em.draws[:, j], expected, rtol=1e-10, atol=1e-10)
        assert row["estimate"] == pytest.approx(expected.mean())
        lo, hi = np.quantile(expected, [0.025, 0.975])
        assert (row["lower"], row["upper"]) == pytest.approx((lo, hi))
    assert list(means["n"]) == [12, 12, 12, 12, 12, 12, 10, 11]  # p00, p02 placebo; p01
    assert list(em.averaged) == ["sex"]
    assert em.held == {"age": pytest.approx(age)}


def test_proportional_weights_and_at(trial_fit: mb.Fit) -> None:
    b = _b(trial_fit)
    data = trial_fit.design.data
    male = float((data["sex"] == "M").mean())
    em = trial_fit.emmeans("~ arm | visit", weights="proportional", at={"age": 50.0})
    last = em.means.index[-1]
    np.testing.assert_allclose(em.draws[:, last], _cell(b, "active", 4, male, 50.0))
    # a list in ``at`` restricts the values shown (specs) or averaged over (other factors)
    only = trial_fit.emmeans("arm", by="visit", at={"visit": [4], "sex": ["M"]})
    assert list(only.means["visit"]) == [4, 4]
    age = data["age"].mean()
    np.testing.assert_allclose(only.draws[:, 1], _cell(b, "active", 4, 1.0, age))


def test_boolean_column_is_averaged_over_its_two_values() -> None:
    data = _trial().assign(smoker=lambda d: d["age"] % 4 == 0)
    fit = _fake("y ~ arm + smoker + (1 | id)", data)
    b = _b(fit)
    (smoker,) = (t for t in b if t.startswith("smoker"))
    share = float(fit.design.data["smoker"].mean())
    for weights, w in (("equal", 0.5), ("proportional", share)):
        em = fit.emmeans("arm", weights=weights)
        assert list(em.averaged) == ["smoker"] and em.held == {}
        np.testing.assert_allclose(em.draws[:, 0], b["Intercept"] + w * b[smoker])


def test_pairs_are_differences_of_the_draws(trial_fit: mb.Fit) -> None:
    em = trial_fit.emmeans("arm", by="visit", prob=0.9)
    pairs = em.pairs()
    assert list(pairs["visit"]) == VISITS
    assert set(pairs["contrast"]) == {"active − placebo"}
    diff = em.draws[:, 7] - em.draws[:, 6]  # the last visit: active − placebo
    last = pairs.iloc[-1]
    assert last["estimate"] == pytest.approx(diff.mean())
    assert (last["lower"], last["upper"]) == pytest.approx(tuple(np.quantile(diff, [0.05, 0.95])))
    p = float(np.mean(diff > 0))
    assert last["post_prob"] == pytest.approx(p)
    assert last["pd"] == pytest.approx(max(p, 1 - p))
    flipped = em.pairs(reverse=False).iloc[-1]
    assert flipped["contrast"] == "placebo − active"
    assert flipped["estimate"] == pytest.approx(-diff.mean())
    # without by, every pair of cells of arm × visit
    assert len(trial_fit.emmeans(["arm", "visit"]).pairs()) == 8 * 7 // 2


def test_glmm_response_scale_back_transforms_the_link_average() -> None:
    """Poisson: averaged over a factor on the log scale, then exp (emmeans'
    ``type = "response"``), which is not the average of the exp."""
    data = count_data().dropna()
    data = data.assign(site=np.where(data.index % 3 == 0, "north", "south"))
    design = mb.design(mb.GLMM("count ~ x + arm + site + (1 | g)", "poisson"), data)
    rng = np.random.default_rng(2)
    b = rng.normal(0.0, 0.5, (CHAINS, DRAWS, len(design.fixed_terms)))
    g = design.groups[0]
    fit = posterior_fit(
        design,
        b,
        {"g": np.zeros((CHAINS, DRAWS, g.n_levels, 1))},
        {"g": np.ones((CHAINS, DRAWS, 1))},
    )
    terms = _b(fit)
    x = design.data["x"].mean()
    link = terms["Intercept"] + terms["arm[trt]"] + x * terms["x"] + 0.5 * terms["site[south]"]
    em = fit.emmeans("arm")
    np.testing.assert_allclose(em.draws[:, 1], np.exp(link))
    np.testing.assert_allclose(fit.emmeans("arm", type="link").draws[:, 1], link)
    ctl = terms["Intercept"] + x * terms["x"] + 0.5 * terms["site[south]"]
    pairs = em.pairs()
    assert pairs.loc[0, "contrast"] == "trt − ctl"
    assert pairs.loc[0, "estimate"] == pytest.approx(np.mean(np.exp(link) - np.exp(ctl)))


@pytest.mark.parametrize(
    ("specs", "options", "message"),
    [
        ("armm", {}, "armm"),
        ("arm", {"by": "visits"}, "visits"),
        ("id", {}, "'id'"),  # a grouping column, not a fixed predictor
        ("arm", {"by": "arm"}, "named twice"),
        ("~ arm | visit", {"by": "visit"}, "'|'"),
        ("arm", {"type": "probability"}, "probability"),
        ("arm", {"weights": "cells"}, "cells"),
        ("arm", {"prob": 1.5}, "prob"),
        ("", {}, "at least one column"),
    ],
)
def test_bad_input_names_the_problem(
    trial_fit: mb.Fit, specs: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        trial_fit.emmeans(specs, **options)


def test_report_section_for_an_mmrm() -> None:
    """The LS-means section appears for a model with residual correlation over the visits,
    names the difference at the last visit, and is absent without ``residuals:``."""
    data = _trial()
    residuals = {"correlation": "unstructured", "time": "visit", "group": "id"}
    fit = _fake("y ~ arm * C(visit) + sex", data, residuals=residuals)
    section = get_section("lsmeans")
    assert section.applies(fit)
    assert lsmeans_columns(fit) == (["arm"], ["visit"])
    blocks = section.build(ReportContext(fit))  # type: ignore[arg-type]
    kinds = [type(b).__name__ for b in blocks]
    assert kinds == ["Paragraph", "Paragraph", "Table", "Table", "Figure"]
    last = fit.emmeans("arm", by="visit").pairs().iloc[-1]
    assert "At the last visit (4): active − placebo" in blocks[1].text  # type: ignore[union-attr]
    assert f"{last['estimate']:.4g}" in blocks[1].text  # type: ignore[union-attr]
    assert blocks[2].rows[-1][:2] == ("4", "active − placebo")  # type: ignore[union-attr]
    plain = _fake("y ~ arm * C(visit) + sex + (1 | id)", data)
    assert not section.applies(plain)
    assert lsmeans_columns(plain) == (["arm", "visit", "sex"], [])
    # asked for explicitly on a model without a categorical predictor: a note says why
    with pytest.raises(Exception, match="no categorical predictor"):
        section.build(SimpleNamespace(fit=_fake("y ~ age + (1 | id)", data)))  # type: ignore[arg-type]
