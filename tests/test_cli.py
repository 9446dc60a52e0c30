"""The command line: fit a spec, write outputs, clear errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixedbayes.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_help_lists_commands() -> None:
    out = run("--help")
    assert out.returncode == 0
    assert "fit" in out.stdout and "demo" in out.stdout
    fit_help = run("fit", "--help")
    assert fit_help.returncode == 0 and "--data" in fit_help.stdout and "--out" in fit_help.stdout


def test_bad_spec_exits_2_with_named_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("kind: lmm\nformula: Reaction ~ Days + (Days | Subject)\nfamly: gaussian\n")
    out = run("fit", str(spec), "--out", str(tmp_path / "o"))
    assert out.returncode == 2
    assert "SpecError" in out.stderr and "famly" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_column_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "kind: lmm\nformula: Reaction ~ Day + (1 | Subject)\ndata: dataset:sleepstudy\n"
    )
    out = run("fit", str(spec), "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "DataError" in out.stderr and "'Day'" in out.stderr


@pytest.mark.slow
def test_fit_writes_outputs(tmp_path: Path) -> None:
    spec = tmp_path / "sleep.yaml"
    spec.write_text("kind: lmm\nformula: Reaction ~ Days + (1 | Subject)\ndata: sleep.csv\n")
    csv = tmp_path / "sleep.csv"
    csv.write_text((ROOT / "mixedbayes" / "datasets" / "data" / "sleepstudy.csv").read_text())
    out_dir = tmp_path / "out"
    out = run(
        "fit",
        str(spec),
        "--out",
        str(out_dir),
        "--draws",
        "200",
        "--chains",
        "2",
        "--seed",
        "3",
        "--no-progress",
        "--report",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert (out_dir / "summary.csv").exists() and (out_dir / "priors.txt").exists()
    assert (out_dir / "fit" / "spec.yaml").exists()
    assert "sd_Subject[Intercept]" in out.stdout and str(out_dir) in out.stdout
    assert f"report: {out_dir / 'report.html'}" in out.stdout
    assert (out_dir / "report.html").stat().st_size > 50_000


# -- report, validate, datasets, demo ---------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("report", ["--out", "--format", "--groups", "--data"]),
        ("validate", ["--data"]),
        ("datasets", ["NAME"]),
        ("demo", ["--out", "--draws"]),
        ("fit", ["--report", "--tune"]),
    ],
)
def test_every_command_has_help(command: str, options: list[str]) -> None:
    out = run(command, "--help")
    assert out.returncode == 0, out.stderr
    for option in options:
        assert option in out.stdout, (command, option)


def test_validate_prints_the_data_report_and_priors() -> None:
    out = run("validate", "models/sleepstudy.yaml")
    assert out.returncode == 0, out.stderr
    assert "180 of 180 rows used" in out.stdout
    assert "group Subject: 18 levels, terms ['Intercept', 'Days']" in out.stdout
    assert "provenance" in out.stdout and "sd(y)=56.33" in out.stdout.replace("\n", "")
    assert "nothing was fitted" in out.stdout


def test_validate_reports_dropped_rows(tmp_path: Path) -> None:
    import pandas as pd

    csv = tmp_path / "sleep.csv"
    frame = pd.read_csv(ROOT / "mixedbayes" / "datasets" / "data" / "sleepstudy.csv")
    frame.loc[0, "Reaction"] = None
    frame.to_csv(csv, index=False)
    out = run("validate", "models/sleepstudy.yaml", "--data", str(csv))
    assert out.returncode == 0, out.stderr
    assert "179 of 180 rows used" in out.stdout
    assert "dropped" in out.stdout and "'Reaction'" in out.stdout
    assert "warning" in out.stderr


def test_validate_bad_input_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "kind: lmm\nformula: Reaction ~ Day + (1 | Subject)\ndata: dataset:sleepstudy\n"
    )
    out = run("validate", str(spec))
    assert out.returncode == 2 and "DataError" in out.stderr and "'Day'" in out.stderr
    assert "Traceback" not in out.stderr
    missing = run("validate", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "SpecError" in missing.stderr


def test_datasets_lists_and_describes() -> None:
    import mixedbayes as mb

    out = run("datasets")
    assert out.returncode == 0, out.stderr
    for name in mb.datasets.names():
        assert name in out.stdout
    assert "lme4" in out.stdout  # attribution
    one = run("datasets", "sleepstudy")
    assert one.returncode == 0, one.stderr
    assert "Belenky" in one.stdout and "Reaction" in one.stdout and "rows: 180" in one.stdout
    bad = run("datasets", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_report_bad_input_exits_2(tmp_path: Path) -> None:
    out = run("report", str(tmp_path / "missing"))
    assert out.returncode == 2 and "no saved fit or spec" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run("report", str(empty))
    assert out.returncode == 2 and "not a saved fit" in out.stderr
    out = run("report", str(empty), "--format", "pdf")
    assert out.returncode == 2 and "unknown report format 'pdf'" in out.stderr
    out = run("report", str(empty), "--sections", "model,nope")
    assert out.returncode == 2 and "no report section 'nope'" in out.stderr


def test_report_finds_the_saved_fit(tmp_path: Path) -> None:
    from mixedbayes.cli import _saved_fit_dir

    run_dir = tmp_path / "run"
    saved = run_dir / "fit"
    saved.mkdir(parents=True)
    assert _saved_fit_dir(run_dir) is None
    (saved / "spec.yaml").write_text("kind: lmm\n")
    (saved / "meta.json").write_text("{}")
    assert _saved_fit_dir(saved) == saved  # written by fit.save(path)
    assert _saved_fit_dir(run_dir) == saved  # written by `mixedbayes fit --out run`


@pytest.mark.slow
def test_demo_writes_the_report_and_report_reads_its_fit(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    out = run(
        "demo",
        "--out",
        str(out_dir),
        "--draws",
        "150",
        "--tune",
        "150",
        "--chains",
        "2",
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    report = out_dir / "report.html"
    assert out.stdout.rstrip().splitlines()[-1] == f"report: {report.resolve()}"
    text = report.read_text()
    assert report.stat().st_size > 100_000 and "data:image/png;base64," in text
    assert "A random sample of 8 of 18" in text

    # the saved fit, reported again: Markdown, three sections, default path inside it
    saved = out_dir / "fit"
    out = run("report", str(saved), "--format", "md", "--sections", "model,data,forest")
    assert out.returncode == 0, out.stderr
    md = saved / "report.md"
    assert f"report: {md}" in out.stdout
    headings = [line for line in md.read_text().splitlines() if line.startswith("## ")]
    assert headings == ["## Contents", "## Model", "## Data", "## Forest plot"]
    assert [p.name for p in (saved / "report_files").glob("*.png")] == ["01-forest.png"]


@pytest.mark.slow
def test_report_with_progress_in_process(sleep_fit: object, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import mixedbayes as mb
    from mixedbayes.cli import app

    assert isinstance(sleep_fit, mb.Fit)
    saved = sleep_fit.save(tmp_path / "saved")
    result = CliRunner().invoke(
        app, ["report", str(saved), "--sections", "model,priors", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r").read_text()
    assert '<section id="priors">' in html and '<section id="loo">' not in html
