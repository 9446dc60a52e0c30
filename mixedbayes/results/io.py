"""Saving and loading fits: a directory with the draws, the spec and the data as given.

Layout of ``path/``::

    idata.zarr      the DataTree (every group)
    spec.yaml       the spec
    source.parquet  the data as the user gave them (``design.source``: every row, including
                    the rows left out and an event table's dose records; index kept);
                    a model of several tables (joint: ``longitudinal``, ``survival``) saves
                    ``source.<table>.parquet`` each, listed in ``meta.json``
    meta.json       format version, package versions, timings, rows dropped, priors

Loading re-applies the spec to the saved data, which restores the design (levels, terms,
remembered transforms, doses) exactly, so a reloaded fit can predict.

Format 1 (before ``source``) saved ``data.parquet``, the rows used; it still loads, except
for event tables, whose dose records it lost.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from mixedbayes.design.data import DataWarning
from mixedbayes.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.design import Design
    from mixedbayes.priors import PriorTable
    from mixedbayes.results.protocols import FitLike
    from mixedbayes.spec import ModelSpec

__all__ = ["SavedFit", "read_fit", "save_fit"]

FORMAT_VERSION = 2

#: Packages whose versions a saved fit records (as brms records its own and Stan's).
RECORDED_PACKAGES = ("pymc", "pytensor", "nutpie", "arviz", "formulae", "pandas")


def _versions() -> dict[str, str | None]:
    """Versions of mixedbayes and of :data:`RECORDED_PACKAGES` (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    from mixedbayes._version import __version__

    out: dict[str, str | None] = {"mixedbayes": __version__}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _zarr_safe(tree: object) -> tuple[object, list[list[str]]]:
    """Object-dtype variables (nutpie's divergence messages) as JSON text, for zarr, and
    where they were (``[[group path, variable], ...]``) so that loading restores them."""
    import xarray as xr

    assert isinstance(tree, xr.DataTree)
    out = tree.copy()
    where: list[list[str]] = []
    for node in out.subtree:
        ds = node.to_dataset()
        changed = {}
        for name, var in ds.data_vars.items():
            if var.dtype == object:
                text = np.vectorize(lambda v: json.dumps(v, default=str), otypes=[str])
                changed[name] = var.copy(data=text(var.to_numpy()))
                where.append([node.path, str(name)])
        if changed:
            node.dataset = ds.assign(changed)
    return out, where


def _restore_objects(tree: object, where: list[list[str]]) -> None:
    """Undo :func:`_zarr_safe` on a loaded tree."""
    import xarray as xr

    assert isinstance(tree, xr.DataTree)
    parse = np.vectorize(json.loads, otypes=[object])
    for path, name in where:
        node = tree[path]
        ds = node.to_dataset()
        node.dataset = ds.assign({name: ds[name].copy(data=parse(ds[name].to_numpy()))})


class SavedFit(NamedTuple):
    """The parts of a saved fit, as :func:`read_fit` restores them (in the order of
    :class:`~mixedbayes.Fit`'s fields)."""

    idata: xr.DataTree
    spec: ModelSpec
    design: Design
    priors: PriorTable
    timings: dict[str, float]


def _prior_rows(fit: FitLike) -> list[dict[str, object]]:
    return [
        {
            "class": r.class_,
            "coef": r.coef,
            "group": r.group,
            "nlpar": r.nlpar,
            "name": r.prior.name,
            "args": list(r.prior.args),
            "source": r.source,
            "provenance": r.provenance,
        }
        for r in fit.priors
    ]


def save_fit(fit: FitLike, path: str | os.PathLike[str]) -> Path:
    """Write ``fit`` to the directory ``path`` (replaced if it exists)."""
    out = Path(path)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tree, object_vars = _zarr_safe(fit.idata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree.to_zarr(out / "idata.zarr", mode="w", consolidated=False)  # type: ignore[attr-defined]
    (out / "spec.yaml").write_text(fit.spec.to_yaml())
    tables = _source_tables(fit.design)
    for name, table in tables.items():
        source = table.copy()
        source.columns = [str(c) for c in source.columns]
        source.to_parquet(out / _table_file(name))
    report = asdict(fit.design.report)
    report["dropped"] = [
        {**d, "rows": [r.item() if isinstance(r, np.generic) else r for r in d["rows"]]}
        for d in report["dropped"]
    ]
    meta = {
        "format": FORMAT_VERSION,
        "versions": _versions(),
        "timings": fit.timings,
        "report": report,
        "object_vars": object_vars,
        "priors": _prior_rows(fit),
        "tables": [name for name in tables if name],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return out


def _source_tables(design: Any) -> dict[str, pd.DataFrame]:
    """The data as given, by table: ``{"": source}``, or a design's named tables (a joint
    model's ``longitudinal`` and ``survival``)."""
    tables = getattr(design, "source_tables", None)
    return dict(tables) if tables else {"": design.source}


def _table_file(name: str) -> str:
    return f"source.{name}.parquet" if name else "source.parquet"


def _sorted_categories(data: pd.DataFrame) -> pd.DataFrame:
    """Format 1 fits were designed when an unordered Categorical was coded in sorted order
    of its values (not in its categories' order): keep that coding for them."""
    import pandas as pd

    out = data.copy()
    for col in out.columns:
        values = out[col]
        if isinstance(values.dtype, pd.CategoricalDtype) and not values.cat.ordered:
            try:
                out[col] = values.cat.reorder_categories(sorted(values.cat.categories))
            except TypeError:  # categories that do not sort: leave them
                continue
    return out


def read_fit(path: str | os.PathLike[str]) -> SavedFit:
    """Read the parts of a fit written by :meth:`Fit.save`
    (:func:`mixedbayes.results.load_fit` makes the :class:`~mixedbayes.Fit`).

    Parameters
    ----------
    path : str or path
        The directory written by :func:`save_fit`.

    Returns
    -------
    SavedFit
        ``idata``, ``spec``, ``design`` (restored from the saved data), ``priors`` and
        ``timings``.

    Reads the current format (2) and format 1; the design is rebuilt from the saved data.

    Raises
    ------
    DataError
        If ``path`` is not a saved fit, or was saved in a newer format.
    """
    import pandas as pd
    import xarray as xr

    from mixedbayes.design.data import DataReport, Dropped
    from mixedbayes.kinds import build_prior_table, make_design
    from mixedbayes.priors.distributions import PriorDist
    from mixedbayes.priors.table import PriorRow, PriorTable
    from mixedbayes.spec import load_spec

    src = Path(path)
    meta_path = src / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    fmt = int(meta.get("format", 1))
    if fmt > FORMAT_VERSION:
        raise DataError(
            f"{str(src)!r} was saved in format {fmt}; this mixedbayes reads formats 1 to "
            f"{FORMAT_VERSION}.",
            where=str(src),
            hint="upgrade mixedbayes (meta.json names the version that saved it).",
        )
    tables = list(meta.get("tables") or [])
    data_files = [_table_file(t) for t in tables] or [
        "source.parquet" if fmt >= 2 else "data.parquet"
    ]
    needed = ["idata.zarr", "spec.yaml", *data_files, "meta.json"]
    missing = [n for n in needed if not (src / n).exists()]
    if missing:
        raise DataError(
            f"{str(src)!r} is not a saved fit: it lacks {missing}.",
            where=str(src),
            hint="give the directory written by fit.save(path).",
        )
    spec = load_spec(src / "spec.yaml")
    data: Any = (
        {t: pd.read_parquet(src / _table_file(t)) for t in tables}
        if tables
        else pd.read_parquet(src / data_files[0])
    )
    if fmt == 1:
        data = _sorted_categories(data)
    with warnings.catch_warnings():  # rows dropped were reported when the fit was made
        warnings.simplefilter("ignore", DataWarning)
        design = make_design(spec, data)
    rep = meta["report"]
    report = DataReport(
        rep["rows_in"],
        rep["rows_used"],
        tuple(Dropped(d["reason"], d["column"], tuple(d["rows"])) for d in rep["dropped"]),
    )
    if "report" in {f.name for f in fields(cast(Any, design))}:  # a joint design derives it
        design = replace(cast(Any, design), report=report)
    idata = xr.open_datatree(src / "idata.zarr", engine="zarr", consolidated=False).load()
    _restore_objects(idata, meta.get("object_vars", []))
    if "priors" in meta:
        priors = PriorTable(
            tuple(
                PriorRow(
                    r["class"],
                    r["coef"],
                    r["group"],
                    r["nlpar"],
                    PriorDist(r["name"], tuple(float(a) for a in r["args"])),
                    r["source"],
                    r["provenance"],
                )
                for r in meta["priors"]
            )
        )
    else:
        priors = build_prior_table(design, spec.priors)
    return SavedFit(idata, spec, cast(Any, design), priors, dict(meta.get("timings", {})))
