"""The notebooks in notebooks/ (one per model kind, and one on missing data) run top to bottom,
with small draws."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "glmm.ipynb",
    "joint.ipynb",
    "longitudinal-lmm.ipynb",
    "microbiome.ipynb",
    "missing-data.ipynb",
    "mmrm.ipynb",
    "pk.ipynb",
]
# what each notebook must leave in its output folder
REPORTS = {
    "longitudinal-lmm.ipynb": ["sleepstudy-report.html"],
    "glmm.ipynb": ["epilepsy-report.md", "epilepsy-report_files"],
    "pk.ipynb": ["theophylline-report.html"],
    "joint.ipynb": ["joint-report.html"],
    "microbiome.ipynb": ["microbiome-report.html"],
    "missing-data.ipynb": ["missing-data-mi-report.html"],
    "mmrm.ipynb": ["mmrm-report.html"],
}


def test_one_notebook_per_model_kind_stored_without_outputs() -> None:
    import nbformat

    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == EXPECTED
    for name in found:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        assert all(not c.outputs and c.execution_count is None for c in code), (
            f"{name} is stored with outputs; clear them before committing."
        )
        assert "MIXEDBAYES_NB_DRAWS" in code[0].source


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("MIXEDBAYES_NB_DRAWS", "150")
    monkeypatch.setenv("MIXEDBAYES_NB_CHAINS", "2")
    monkeypatch.setenv("MIXEDBAYES_NB_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name} failed:\n{exc}")
    for output in REPORTS[name]:
        assert (tmp_path / output).exists(), output
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert errors == []
