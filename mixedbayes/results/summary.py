"""Tidy posterior summaries: one row per scalar parameter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.naming import parse

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design

__all__ = ["check_prob", "summarise", "summary_variables", "timing_text"]

SAMPLE_DIMS = ("chain", "draw")


#: A fit's stages in the order they run, as :func:`timing_text` names them.
STAGES = (
    ("design_seconds", "design"),
    ("build_seconds", "model"),
    ("compile_seconds", "compiled"),
    ("sample_seconds", "sampled"),
    ("post_seconds", "after"),
    ("check_seconds", "checks"),
)


def timing_text(timings: dict[str, float]) -> str:
    """One line of a fit's stage times, e.g. ``design 0.4 s, model 0.6 s, compiled 1.0 s,
    sampled 0.2 s, after 0.3 s``: the stages ``timings`` records, in the order they ran."""
    parts = [f"{label} {timings[key]:.1f} s" for key, label in STAGES if key in timings]
    return ", ".join(parts) if parts else "not recorded"


def check_prob(prob: float) -> None:
    """Raise ``SpecError`` unless ``prob`` (an interval's mass) lies in (0, 1)."""
    from mixedbayes.errors import SpecError

    if not 0.0 < prob < 1.0:
        raise SpecError(
            f"prob must lie strictly between 0 and 1, not {prob!r}.",
            where="prob",
            hint="use e.g. 0.95 for a central 95% interval.",
        )


def summary_variables(design: Any, posterior: xr.Dataset, include_group_levels: bool) -> list[str]:
    """The variables a summary shows, in a stable order (the kind's: fixed effects, sd_*,
    cor_*, family or residual-error parameters, then r_* when asked), those in ``posterior``."""
    from mixedbayes.kinds import kind_of

    names = kind_of(design.spec).summary_variables(design, include_group_levels)
    return [n for n in names if n in posterior]


def _class_and_group(name: str) -> tuple[str, str]:
    parsed = parse(name)
    return parsed.class_, parsed.group


def _is_factor(design: Design, name: str) -> bool:
    try:
        design.group(name)
    except KeyError:
        return False
    return True


def _cells(
    da: xr.DataArray, name: str, design: Design
) -> Iterable[tuple[str, str, tuple[int, ...]]]:
    """(label, term, index) of each scalar in ``da`` worth showing."""
    dims = [d for d in da.dims if d not in SAMPLE_DIMS]
    coords = [[str(v) for v in da[d].to_numpy()] for d in dims]
    if not dims:
        yield name, "", ()
        return
    if name.startswith("cor_") and len(dims) == 2 and not _is_factor(design, name[4:]):
        # a correlation matrix that is not a grouping factor's (an unstructured residual
        # correlation over the visits, cor_<visit>): its upper triangle
        for a in range(len(coords[0])):
            for b in range(a):
                pair = f"{coords[0][b]},{coords[1][a]}"
                yield f"{name}[{pair}]", pair, (b, a)
        return
    if name.startswith("cor_"):
        group = design.group(name[4:])
        for block in group.blocks:
            if not block.correlated:
                continue
            cols = block.columns
            for a in range(len(cols)):
                for b in range(a):
                    i, j = cols[a], cols[b]
                    pair = f"{coords[0][j]},{coords[1][i]}"
                    yield f"{name}[{pair}]", pair, (j, i)
        return
    for index in np.ndindex(*[len(c) for c in coords]):
        labels = [coords[k][i] for k, i in enumerate(index)]
        yield f"{name}[{','.join(labels)}]", labels[-1], index


def _stats(ds: xr.Dataset, q: float) -> dict[str, xr.Dataset]:
    import arviz_stats as azs

    return {
        "mean": ds.mean(SAMPLE_DIMS),
        "sd": ds.std(SAMPLE_DIMS, ddof=1),
        "median": ds.median(SAMPLE_DIMS),
        "lower": ds.quantile(q, SAMPLE_DIMS).drop_vars("quantile"),
        "upper": ds.quantile(1 - q, SAMPLE_DIMS).drop_vars("quantile"),
        "rhat": azs.rhat(ds),
        "ess_bulk": azs.ess(ds, method="bulk"),
        "ess_tail": azs.ess(ds, method="tail"),
        "mcse_mean": azs.mcse(ds, method="mean"),
    }


def summarise(
    posterior: xr.Dataset, design: Design, var_names: list[str], prob: float = 0.95
) -> pd.DataFrame:
    """A tidy summary table of ``var_names``.

    Columns: ``parameter``, ``class``, ``group``, ``term``, ``mean``, ``sd``, ``median``,
    ``lower``, ``upper`` (central ``prob`` interval), ``rhat``, ``ess_bulk``, ``ess_tail``,
    ``mcse_mean``. ``df.attrs["prob"]`` holds ``prob``.
    """
    check_prob(prob)
    ds = posterior[var_names]
    q = (1 - prob) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = _stats(ds, q)
    rows = []
    for name in var_names:
        cls, group = _class_and_group(name)
        for label, term, index in _cells(ds[name], name, design):
            row: dict[str, object] = {
                "parameter": label,
                "class": cls,
                "group": group,
                "term": term,
            }
            for key, value in stats.items():
                row[key] = float(np.asarray(value[name].to_numpy())[index])
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["prob"] = prob
    return frame
