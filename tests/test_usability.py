"""Small things a colleague notices first (issue 15, item 5), without sampling: table order of
numeric keys, gate remedies and ``repr`` of a marginalised fit, ``repr`` of a nonlinear fit,
the GLMM family, the offset in the intercept's prior, PyTensor's BLAS notice.

Malformed input of the same item (one-level factors, unknown formula functions, PDF reports,
pydantic's errors) is in the bad-input tables (``bad_input_*_cases.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bad_input_base import long_data
from test_shrinkage import CHAINS, DRAWS, posterior_fit

import mixedbayes as mb
from mixedbayes.compile.blas import BLAS_FALLBACK_NOTICE
from mixedbayes.compile.model import INTEGRATED_OUT


def _fake_fit(design: mb.Design, seed: int = 0, **attrs: Any) -> mb.Fit:
    """A fit of hand-made draws (b ~ N(1, 0.1), r ~ N(0, 0.1), sd and sigma ~ 1) with the
    posterior attributes ``attrs``."""
    rng = np.random.default_rng(seed)
    b = 1 + 0.1 * rng.normal(size=(CHAINS, DRAWS, len(design.fixed_terms)))
    r = {
        g.name: 0.1 * rng.normal(size=(CHAINS, DRAWS, g.n_levels, len(g.terms)))
        for g in design.groups
    }
    sd = {g.name: 1 + 0.01 * rng.normal(size=(CHAINS, DRAWS, len(g.terms))) for g in design.groups}
    fit = posterior_fit(design, b, r, sd)
    sigma = fit.idata["posterior"]["sigma"]
    fit.idata["posterior"]["sigma"] = sigma + 0.01 * rng.normal(size=sigma.shape)
    fit.idata["posterior"].attrs.update(attrs)
    return fit


# ----------------------------------------------------------------------------- numeric order


@pytest.fixture(scope="module")
def dose_fit() -> mb.Fit:
    """A numeric ``dose`` with values 0, 2, 10 (text order: 0, 10, 2) and a Categorical ``arm``
    whose reference is its first category, ``placebo`` (text order: active first)."""
    df = long_data()
    df["dose"] = np.tile([0.0, 2.0, 10.0], len(df) // 3)
    df["arm"] = pd.Categorical(
        np.where(np.arange(len(df)) % 2, "active", "placebo"), categories=["placebo", "active"]
    )
    return _fake_fit(mb.design({"formula": "y ~ x + dose * arm + (1 | Subject)"}, df))


def test_contrasts_sort_numeric_values_numerically(dose_fit: mb.Fit) -> None:
    table = dose_fit.contrasts("dose")
    assert list(table["hypothesis"]) == ["dose=2.0 − dose=0.0", "dose=10.0 − dose=0.0"]
    by = dose_fit.contrasts("arm", by="dose")
    assert [p.split(" | ")[1] for p in by["hypothesis"]] == ["dose=0.0", "dose=2.0", "dose=10.0"]


def test_slopes_by_a_numeric_variable_sort_numerically(dose_fit: mb.Fit) -> None:
    table = dose_fit.slopes("x", by="dose", compare=True)
    assert list(table["hypothesis"][:3]) == [f"d/dx | dose={v}" for v in (0.0, 2.0, 10.0)]
    compared = ["d/dx: dose=2.0 − dose=0.0", "d/dx: dose=10.0 − dose=0.0"]
    assert list(table["hypothesis"][3:]) == compared


def test_contrasts_of_a_categorical_are_against_its_reference(dose_fit: mb.Fit) -> None:
    table = dose_fit.contrasts("arm")
    assert list(table["hypothesis"]) == ["arm=active − arm=placebo"]


# ----------------------------------------------------------------------------- integrated out


@pytest.fixture(scope="module")
def marginal_fake() -> tuple[mb.Design, dict[str, Any]]:
    """A centred ``Subject`` factor, and the attributes mb.fit records when the marginalised
    LMM integrated it out."""
    spec = {
        "formula": "y ~ Days + (Days | Subject)",
        "group_effects": {"Subject": {"parametrization": "centered"}},
    }
    design = mb.design(spec, long_data())
    assert {b.parametrization for b in design.group("Subject").blocks} == {"centered"}
    compiled = mb.compile(design)
    assert compiled.integrated_out == ("Subject",)
    attrs = {
        "marginalization": compiled.marginalization,
        INTEGRATED_OUT: list(compiled.integrated_out),
    }
    return design, attrs


def _troubled(fit: mb.Fit) -> mb.Fit:
    """``fit`` with chains that disagree on sd_Subject and divergences in every chain."""
    post = fit.idata["posterior"].to_dataset()
    sd = post["sd_Subject"].copy()
    sd[0] = sd[0] + 5.0
    post = post.assign(sd_Subject=sd)
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[:, ::4] = True
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), diverging)},
        coords={"chain": post["chain"], "draw": post["draw"]},
    )
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    return mb.Fit(tree, fit.spec, fit.design, None)  # type: ignore[arg-type]


def test_no_parametrization_advice_for_a_group_integrated_out(
    marginal_fake: tuple[mb.Design, dict[str, Any]],
) -> None:
    design, attrs = marginal_fake
    sampled = _troubled(_fake_fit(design))
    advised = sampled.diagnose()
    # sampled centred: the gates advise non-centring Subject
    assert "parametrization: noncentered for group Subject" in advised["rhat"].remedy
    assert "parametrization: noncentered for group Subject" in advised["divergences"].remedy
    integrated = _troubled(_fake_fit(design, **attrs))
    gates = integrated.diagnose()
    for name in ("rhat", "divergences"):
        assert gates[name].status != "pass"
        assert "parametrization" not in gates[name].remedy, gates[name].remedy
    assert "stronger priors" in gates["divergences"].remedy


def test_repr_shows_the_parametrization_used(
    marginal_fake: tuple[mb.Design, dict[str, Any]],
) -> None:
    design, attrs = marginal_fake
    line = next(x for x in repr(_fake_fit(design, **attrs)).splitlines() if "group Subject" in x)
    assert "integrated out" in line and "centered" not in line
    sampled = next(x for x in repr(_fake_fit(design)).splitlines() if "group Subject" in x)
    assert "[centered; centered]" in sampled or "[centered]" in sampled


def test_report_data_section_shows_the_parametrization_used(
    marginal_fake: tuple[mb.Design, dict[str, Any]],
) -> None:
    from mixedbayes.report import build_report

    design, attrs = marginal_fake
    for attributes, shown, hidden in (
        (attrs, "integrated out (drawn after sampling", "centered"),
        ({}, "centered", "integrated out"),
    ):
        report = build_report(_fake_fit(design, **attributes), sections=["data"])
        text, _ = report.to_markdown()
        row = next(x for x in text.splitlines() if x.startswith("| Subject"))
        assert shown in row and hidden not in row, row


def test_integrated_out_is_read_from_the_note_of_older_fits(
    marginal_fake: tuple[mb.Design, dict[str, Any]],
) -> None:
    from mixedbayes.compile.model import integrated_out

    _, attrs = marginal_fake
    assert integrated_out({"marginalization": attrs["marginalization"]}) == ("Subject",)
    note = "integrated out: patient within clinic (marginalised Gaussian LMM)"
    assert integrated_out({"marginalization": note}) == ("patient", "clinic")
    assert integrated_out({"marginalization": "not integrated out: crossed"}) == ()


# ----------------------------------------------------------------------------- nonlinear repr


def test_repr_of_a_nonlinear_fit_describes_the_model() -> None:
    import pymc as pm

    from mixedbayes.kinds import compile_model

    rng = np.random.default_rng(1)
    c = np.tile(np.array([0.0, 1, 3, 10, 30, 100]), 4)
    df = pd.DataFrame({"C": c, "id": np.repeat([f"s{i}" for i in range(4)], 6)})
    df["E"] = 5 + 20 * c / (8 + c) + rng.normal(0, 1, len(c))
    expression = "E0 + Emax * C / (EC50 + C)"
    spec = mb.load_spec(
        {
            "kind": "nonlinear",
            "expression": expression,
            "parameters": {"E0": "1 + (1 | id)", "log_Emax": "1", "log_EC50": "1"},
            "response": "E",
        }
    )
    compiled = compile_model(mb.design(spec, df))
    prior = pm.sample_prior_predictive(draws=20, model=compiled.model, random_seed=1)
    tree = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})
    text = repr(mb.Fit(tree, spec, compiled.design, compiled.priors, {}, compiled))  # type: ignore[arg-type]
    first = text.splitlines()[0]
    assert expression in first and "log_Emax ~ 1" in first
    assert "residual error: additive" in text


# ----------------------------------------------------------------------------- GLMM family


def test_glmm_spec_and_helper_agree_that_a_family_is_required() -> None:
    with pytest.raises(mb.SpecError) as err:
        mb.load_spec({"kind": "glmm", "formula": "count ~ x + (1 | Subject)"})
    assert "family" in err.value.where
    with pytest.raises(TypeError, match="family"):
        mb.GLMM("count ~ x + (1 | Subject)")  # type: ignore[call-arg]
    spec = mb.GLMM("count ~ x + (1 | Subject)", "poisson")
    assert mb.load_spec(spec.to_yaml()) == spec


# ----------------------------------------------------------------------------- offset prior


@pytest.mark.parametrize("family", ["poisson", "negbinomial"])
def test_intercept_prior_accounts_for_the_offset(family: str) -> None:
    df = long_data()
    df["exposure"] = df["exposure"] * 100  # counts per ~100 units of exposure
    spec = mb.GLMM("count ~ x + offset(log(exposure)) + (1 | Subject)", family)
    row = next(r for r in mb.get_priors(spec, df).rows if r.class_ == "Intercept" and not r.nlpar)
    rate = np.log(df["count"].mean()) - np.log(df["exposure"]).mean()
    assert row.prior.args[1] == pytest.approx(rate, rel=1e-3)
    assert "offset" in row.provenance
    plain = mb.GLMM("count ~ x + (1 | Subject)", family)
    row = next(r for r in mb.get_priors(plain, df).rows if r.class_ == "Intercept" and not r.nlpar)
    assert row.prior.args[1] == pytest.approx(np.log(df["count"].mean()), rel=1e-3)


# ----------------------------------------------------------------------------- BLAS notice


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pytensor_blas_fallback_notice_is_dropped_and_nothing_else() -> None:
    import pytensor
    from pytensor.tensor.blas.c_code.blas_headers import blas_header_text

    import mixedbayes.compile  # noqa: F401  (installs the filter)

    logger = logging.getLogger("pytensor.tensor.blas")
    records = _Records()
    logger.addHandler(records)
    try:
        with pytensor.config.change_flags(blas__ldflags=""):
            assert blas_header_text()  # the NumPy C-API fallback: the notice's code path
        logger.warning("another warning")
    finally:
        logger.removeHandler(records)
    assert BLAS_FALLBACK_NOTICE not in records.messages
    assert "another warning" in records.messages
