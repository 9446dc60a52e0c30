"""The posterior report: sections by kind and family, notes instead of crashes, HTML/Markdown."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import quiet_fit

import mixedbayes as mb
from mixedbayes.report import (
    SECTIONS,
    Figure,
    Paragraph,
    Report,
    Section,
    SectionUnavailable,
    Table,
    build_report,
    get_section,
    register_section,
    report_format,
    section_keys,
    table_from_frame,
)
from mixedbayes.report.blocks import format_value, worst
from mixedbayes.report.render import markdown_table

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CORE = ["model", "data", "priors", "convergence", "parameters", "forest", "trace", "ppc", "loo"]
REGRESSION = ["shrinkage", "trajectories"]
PK = ["typical_values", "individual_parameters", "concentration"]
IMG_SRC = re.compile(r'<img [^>]*src="([^"]*)"')


# -- blocks, rendering and the registry: no fit needed ------------------------------------------


def test_format_value() -> None:
    assert format_value(3) == "3"
    assert format_value(np.int64(7)) == "7"
    assert format_value(2.0) == "2"
    assert format_value(251.40512) == "251.4"
    assert format_value(0.000123456) == "0.0001235"
    assert format_value(float("nan")) == "–"
    assert format_value(None) == "–"
    assert format_value(True) == "yes"
    assert format_value("a|b") == "a|b"


def test_worst_status() -> None:
    assert worst(["pass", "warn", "pass"]) == "warn"
    assert worst(["pass", None, "fail", "warn"]) == "fail"
    assert worst([None, None]) is None
    assert worst([]) is None


def test_table_from_frame_truncates_with_a_note() -> None:
    frame = pd.DataFrame({"name": list("abcde"), "value": [1.0, 2.5, np.nan, 4.0, 5.0]})
    table = table_from_frame(frame, max_rows=3, caption="c")
    assert table.columns == ("name", "value")
    assert table.rows == (("a", "1"), ("b", "2.5"), ("c", "–"))
    assert table.numeric == (False, True)
    assert table.note == "First 3 of 5 rows."
    assert table_from_frame(frame).note == ""


def test_markdown_table_escapes_pipes_and_marks_status() -> None:
    table = Table(("status", "what"), (("pass", "a|b"), ("fail", "x")), status_column="status")
    text = markdown_table(table)
    lines = text.splitlines()
    assert lines[0] == "| status | what |"
    assert lines[2] == "| **PASS** | a\\|b |"
    assert lines[3] == "| **FAIL** | x |"


def test_report_format() -> None:
    assert report_format("a/report.html") == "html"
    assert report_format("a/report.MD") == "md"
    assert report_format("a/report") == "html"  # no suffix: HTML
    with pytest.raises(mb.SpecError, match=r"'\.txt'.*HTML \(\.html"):
        report_format("a/report.txt")  # another format's suffix is not written as HTML
    assert report_format("a/report.html", "markdown") == "md"
    with pytest.raises(mb.SpecError, match="format"):
        report_format("r.html", "pdf")


def test_registry_order_and_errors() -> None:
    keys = section_keys()
    assert keys[: len(CORE)] == CORE
    assert set(REGRESSION + PK + ["rootogram"]) <= set(keys)
    with pytest.raises(mb.SpecError, match="no report section 'nope'") as err:
        get_section("nope")
    assert "shrinkage" in str(err.value)

    class Duplicate(Section):
        key = "model"

    with pytest.raises(ValueError, match="already registered"):
        register_section(Duplicate)

    class NoKey(Section):
        pass

    with pytest.raises(ValueError, match="no key"):
        register_section(NoKey)


# -- the sleepstudy report (LMM; the shared 4-chain fit) --------------------------------------


@pytest.fixture(scope="module")
def sleep_report(sleep_fit: mb.Fit) -> Report:
    return build_report(sleep_fit, n_groups=5, seed=3)


def _blocks(report: Report, key: str, kind: type) -> list:
    return [b for b in report.section(key).blocks if isinstance(b, kind)]


def _decode(src: str) -> tuple[int, int]:
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:40]
    png = base64.b64decode(src.split(",", 1)[1])
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return img.size


@pytest.mark.slow
def test_lmm_report_has_the_regression_sections(sleep_fit: mb.Fit, sleep_report: Report) -> None:
    assert sleep_report.keys == CORE + REGRESSION
    assert [s.key for s in sleep_report.sections if s.unavailable] == []
    assert sleep_report.subtitle == "Reaction ~ Days + (Days | Subject)"
    assert dict(sleep_report.facts)["rows"] == "180 used of 180"
    # the report works on a copy: the shared fit gains no posterior predictive group
    assert "posterior_predictive" not in sleep_fit.idata.children


@pytest.mark.slow
def test_lmm_report_numbers_match_the_fit(sleep_fit: mb.Fit, sleep_report: Report) -> None:
    summary = sleep_fit.summary()
    (table,) = _blocks(sleep_report, "parameters", Table)
    assert [r[0] for r in table.rows] == list(summary["parameter"])
    mean = table.columns.index("mean")
    days = next(r for r in table.rows if r[0] == "b[Days]")
    assert days[mean] == format_value(float(summary.set_index("parameter").loc["b[Days]", "mean"]))

    gates = sleep_fit.diagnose()
    expected = "fail" if gates.failed else ("warn" if gates.warned else "pass")
    assert sleep_report.section("convergence").status == expected
    (gate_table,) = _blocks(sleep_report, "convergence", Table)
    assert [r[gate_table.columns.index("gate")] for r in gate_table.rows] == [g.name for g in gates]

    (priors,) = _blocks(sleep_report, "priors", Table)
    provenance = priors.columns.index("provenance")
    assert [r[provenance] for r in priors.rows] == [r.provenance for r in sleep_fit.priors]

    loo = sleep_fit.loo()
    assert sleep_report.section("loo").status == ("pass" if loo.ok else "warn")


@pytest.mark.slow
def test_lmm_report_samples_groups_reproducibly(sleep_fit: mb.Fit, sleep_report: Report) -> None:
    (figure,) = _blocks(sleep_report, "trajectories", Figure)
    shown = re.search(r"\(([^)]*)\): observations", figure.caption)
    assert shown is not None
    levels = shown.group(1).split(", ")
    assert len(levels) == 5 and set(levels) <= set(sleep_fit.design.group("Subject").levels)
    assert "A random sample of 5 of 18" in figure.caption
    # the per-level shrinkage table shows the same sample
    tables = _blocks(sleep_report, "shrinkage", Table)
    per_level = tables[-1]
    assert sorted({r[0] for r in per_level.rows}) == sorted(levels)
    again = build_report(sleep_fit, sections=["trajectories"], n_groups=5, seed=3)
    assert _blocks(again, "trajectories", Figure)[0].caption == figure.caption


@pytest.mark.slow
def test_html_is_self_contained(sleep_report: Report, tmp_path: Path) -> None:
    html = sleep_report.to_html()
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html
    srcs = IMG_SRC.findall(html)
    n_figures = sum(
        isinstance(b, Figure) for section in sleep_report.sections for b in section.blocks
    )
    assert len(srcs) == n_figures == 5  # forest, trace, ppc, shrinkage, trajectories
    for src in srcs:
        width, height = _decode(src)
        assert width > 50 and height > 50
    for section in sleep_report.sections:
        assert f'<section id="{section.key}">' in html
        assert f'href="#{section.key}"' in html
    assert '<span class="badge ' in html
    assert html.count("<table>") == sum(
        isinstance(b, Table) for s in sleep_report.sections for b in s.blocks
    )
    path = sleep_report.write(tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8") == html


@pytest.mark.slow
def test_markdown_writes_images_next_to_it(sleep_report: Report, tmp_path: Path) -> None:
    path = sleep_report.write(tmp_path / "report.md")
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all(link.startswith("report_files/") for link in links)
    for link in links:
        assert (tmp_path / link).stat().st_size > 0
    assert "| parameter | mean |" in text
    assert "## Convergence" in text
    embedded = sleep_report.write(tmp_path / "embedded.md", embed=True)
    text = embedded.read_text(encoding="utf-8")
    assert "](data:image/png;base64," in text
    assert not (tmp_path / "embedded_files").exists()


@pytest.mark.slow
def test_fit_report_method(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    path = sleep_fit.report(tmp_path / "r.md", sections=["model", "priors"], embed=True)
    assert path == tmp_path / "r.md"
    text = path.read_text(encoding="utf-8")
    assert "## Model" in text and "## Priors" in text and "## Convergence" not in text
    with pytest.raises(mb.SpecError, match="n_groups"):
        sleep_fit.report(tmp_path / "x.html", n_groups=0)
    with pytest.raises(mb.SpecError, match="prob"):
        sleep_fit.report(tmp_path / "x.html", prob=1.5)
    with pytest.raises(mb.SpecError, match="no report section"):
        sleep_fit.report(tmp_path / "x.html", sections=["model", "nope"])
    assert not (tmp_path / "x.html").exists()


def test_data_section_reports_what_the_design_did() -> None:
    """The data section reads the design's report: rows used and dropped with reasons, and
    nothing about imputation, which mixedbayes does not do (yet)."""
    from types import SimpleNamespace

    from mixedbayes.report import KeyValues, ReportContext

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=12), "x": rng.normal(size=12), "g": list("abc") * 4})
    df.loc[[2, 7], "y"] = np.nan
    with pytest.warns(mb.DataWarning):
        design = mb.design(mb.LMM("y ~ x + (1 | g)"), df)
    section = get_section("data")
    idata = xr.DataTree.from_dict({"posterior": xr.Dataset()})
    blocks = section.build(ReportContext(SimpleNamespace(design=design, idata=idata)))  # type: ignore[arg-type]
    facts = dict(next(b for b in blocks if isinstance(b, KeyValues)).items)
    assert facts["rows"] == "10 used of 12" and facts["rows dropped"] == "2"
    (dropped,) = [b for b in blocks if isinstance(b, Table) and "dropped" in b.caption]
    assert dropped.rows == (("dropped", "missing response", "y", "2", "2, 7"),)
    text = " ".join(str(b) for b in blocks) + " ".join(facts)
    assert "imputed" not in text
    clean = mb.design(mb.LMM("y ~ x + (1 | g)"), df.dropna())
    blocks = section.build(ReportContext(SimpleNamespace(design=clean, idata=idata)))  # type: ignore[arg-type]
    assert Paragraph("No row was dropped.") in blocks


# -- a section that cannot be produced becomes a note ------------------------------------------


class _Boom(Section):
    key = "boom"
    title = "Boom"
    order = 5

    def build(self, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


class _Unavailable(Section):
    key = "unavailable"
    title = "Unavailable"
    order = 6

    def build(self, ctx):  # type: ignore[no-untyped-def]
        raise SectionUnavailable("not for this fit, because reasons")


class _Fine(Section):
    key = "fine"
    title = "Fine"
    order = 7

    def build(self, ctx):  # type: ignore[no-untyped-def]
        return [Paragraph(f"{ctx.fit.design.report.rows_used} rows")]


@pytest.mark.slow
def test_failing_sections_become_notes(sleep_fit: mb.Fit, monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (_Boom, _Unavailable, _Fine):
        monkeypatch.setitem(SECTIONS, cls.key, cls())

    def broken_loo(self: mb.Fit, **kwargs: object) -> None:
        raise ValueError("no log likelihood")

    monkeypatch.setattr(mb.Fit, "loo", broken_loo)
    report = build_report(sleep_fit, sections=["fine", "loo", "boom", "unavailable", "model"])
    assert report.keys == ["boom", "unavailable", "fine", "model", "loo"]
    assert report.section("boom").unavailable == "RuntimeError: boom"
    assert report.section("unavailable").unavailable == "not for this fit, because reasons"
    assert report.section("loo").unavailable == "ValueError: no log likelihood"
    assert report.section("loo").status is None
    assert report.section("fine").unavailable == ""
    assert report.section("fine").blocks == (Paragraph("180 rows"),)
    assert report.section("model").unavailable == ""
    html = report.to_html()
    assert html.count("Not available for this fit") == 3
    assert "RuntimeError: boom" in html
    text, _ = report.to_markdown()
    assert "**Not available for this fit:** not for this fit, because reasons" in text


# -- count and PK reports (one small fit each) -------------------------------------------------


@pytest.fixture(scope="session")
def count_fit() -> mb.Fit:
    """epilepsy: Poisson GLMM with patient and observation-level intercepts (small)."""
    return quiet_fit(MODELS / "epilepsy.yaml", None, draws=200, tune=200, chains=2, seed=5)


@pytest.fixture(scope="session")
def pk_fit() -> mb.Fit:
    """theophylline: one-compartment oral PK model (small)."""
    return quiet_fit(MODELS / "theophylline.yaml", None, draws=200, tune=200, chains=2, seed=5)


@pytest.mark.slow
def test_count_report_has_a_rootogram(count_fit: mb.Fit) -> None:
    report = build_report(count_fit, n_groups=4)
    assert report.keys == [*CORE, *REGRESSION, "rootogram"]
    root = report.section("rootogram")
    assert root.unavailable == ""
    (figure,) = _blocks(report, "rootogram", Figure)
    assert _decode_png(figure.png)[0] > 50
    (table,) = _blocks(report, "rootogram", Table)
    observed = table.columns.index("observed")
    y = count_fit.design.y.astype(int)
    assert int(table.rows[0][observed]) == int(np.sum(y == 0))
    # the individuals are the patients (not the observation-level factor), and the model has
    # no time covariate, so the trajectories section says why it is empty
    why = report.section("trajectories").unavailable
    assert "does not vary within levels of 'patient'" in why
    shrink = _blocks(report, "shrinkage", Figure)
    assert [f.name for f in shrink] == ["shrinkage-patient", "shrinkage-obs"]
    # shrinkage on the log scale, by the Poisson likelihood: every factor in [0, 1]
    (text, *_) = [p.text for p in _blocks(report, "shrinkage", Paragraph)]
    assert "log link scale" in text and "v_jk / (v_jk + tau_k^2)" in text
    factors = count_fit.shrinkage("patient").levels["shrinkage_factor"]
    assert factors.notna().all() and factors.between(0, 1).all()
    assert "posterior_predictive" not in count_fit.idata.children


def _decode_png(png: bytes) -> tuple[int, int]:
    return _decode("data:image/png;base64," + base64.b64encode(png).decode())


@pytest.mark.slow
def test_pk_report_has_the_pk_sections(pk_fit: mb.Fit) -> None:
    report = build_report(pk_fit, n_groups=5, seed=2)
    assert report.keys == CORE + PK
    assert [s.key for s in report.sections if s.unavailable] == []
    typical = _blocks(report, "typical_values", Table)[0]
    assert [r[0] for r in typical.rows] == list(pk_fit.typical_values()["parameter"])
    (individual,) = _blocks(report, "individual_parameters", Table)
    assert individual.columns[0] == "Subject" and len(individual.rows) == 5
    (curves,) = _blocks(report, "concentration", Figure)
    assert "5 of 12 subjects" in curves.caption
    assert _decode_png(curves.png)[1] > 50
    # regression-only outputs are not attempted for a nonlinear fit
    assert not {"shrinkage", "trajectories", "rootogram"} & set(report.keys)


def test_ppc_flags_ignore_statistics_shared_by_every_replicate() -> None:
    from mixedbayes.report.sections.core import _ppc_flags

    table = pd.DataFrame(
        {
            "statistic": ["mean", "min", "max", "sd"],
            "observed": [8.2, 0.0, 102.0, 12.0],
            "replicated_lower": [7.7, 0.0, 80.0, 13.0],
            "replicated_upper": [8.8, 0.0, 134.0, 15.0],
            "p_value": [0.49, 1.0, 0.48, 1.0],
        }
    )
    assert _ppc_flags(table) == ["pass", "pass", "pass", "warn"]
