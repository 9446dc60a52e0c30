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
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert (out_dir / "summary.csv").exists() and (out_dir / "priors.txt").exists()
    assert (out_dir / "fit" / "spec.yaml").exists()
    assert "sd_Subject[Intercept]" in out.stdout and str(out_dir) in out.stdout
