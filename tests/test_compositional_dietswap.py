"""dietswap (O'Keefe et al. 2015) as a compositional model at full size, 222 samples × 110
taxa: the tables read in place (``benchmarks/dietswap.py``), the design and the compiled
graph with a finite log-density at the initial point. No sampling: the end-to-end fit with
a report is ``make fit-dietswap`` (minutes), its speed ``make bench-compositional``."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import frame_hash

import mixedbayes as mb
from mixedbayes.design.data import DataWarning

ROOT = Path(__file__).resolve().parents[1]


def _helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dietswap", ROOT / "benchmarks" / "dietswap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dietswap = _helper()


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    if not dietswap.available():
        pytest.skip(f"dietswap not found in {dietswap.DIETSWAP}")
    return dietswap.load_dietswap()


def test_tables_are_samples_by_taxa_with_the_metadata_indexed_alike(data: dict[str, Any]) -> None:
    counts, samples = data["counts"], data["samples"]
    assert counts.shape == (222, 130) and samples.shape[0] == 222
    assert list(counts.index) == list(samples.index) and counts.index[0] == "Sample-1"
    # the file is taxa × samples: Actinomycetaceae reads 0, 1, 0, 1 in samples 1-4
    assert list(counts["Actinomycetaceae"].iloc[:4]) == [0, 1, 0, 1]
    assert {"subject", "nationality", "group", "timepoint"} <= set(samples.columns)
    assert samples["subject"].nunique() == 38
    assert set(samples["group"]) == {"HE", "DI", "ED"}


@pytest.mark.parametrize("likelihood", ["multinomial", "dirichlet_multinomial"])
def test_dietswap_designs_and_compiles_with_a_finite_log_density(
    data: dict[str, Any], likelihood: str
) -> None:
    before = frame_hash(data["counts"]), frame_hash(data["samples"])
    spec = dietswap.dietswap_spec(likelihood)
    with pytest.warns(DataWarning, match="20 of 130 taxa dropped"):
        design = mb.design(spec, data)
    assert design.counts.shape == (222, 110) and len(design.dropped_taxa) == 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        cm = mb.compile(spec, data)
    model = cm.model
    assert list(model.coords["term"]) == [
        "Intercept",
        "nationality[AFR]",
        "group[DI]",
        "group[ED]",
        "nationality[AFR]:group[DI]",
        "nationality[AFR]:group[ED]",
    ]
    assert dietswap.SWAP in model.coords["term"]
    assert model.named_vars_to_dims["r_subject"] == ("subject", "subject_term", "taxon")
    assert len(model.coords["subject"]) == 38 and len(model.coords["taxon"]) == 110
    assert np.isfinite(cm.initial_logp())
    assert (frame_hash(data["counts"]), frame_hash(data["samples"])) == before
