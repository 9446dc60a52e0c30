"""Helpers of the convergence gates: the cells of the draws worth checking, their labels, the
worst value over them, and remedy advice that names the grouping factor concerned.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from mixedbayes.naming import GROUP_NAME_PREFIXES, parse

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design

SAMPLE_DIMS = ("chain", "draw")
GROUP_PREFIXES = tuple(f"{c}_" for c in GROUP_NAME_PREFIXES)


def _by_sample_dims(da: xr.DataArray) -> xr.DataArray:
    rest = [d for d in da.dims if d not in SAMPLE_DIMS]
    return da.transpose(*SAMPLE_DIMS, *rest)


def _checked_cells(name: str, da: xr.DataArray) -> np.ndarray:
    """Mask of the cells of ``da`` (without sample dims) worth checking.

    Constant cells (R-hat is NaN) are left out (:func:`_stuck` reports those that should not
    be constant), and of a correlation matrix ``cor_<group>`` only the upper triangle (the
    diagonal is 1, the lower triangle repeats the upper).
    """
    values = _by_sample_dims(da).to_numpy()
    cells = np.ones(values.shape[2:], dtype=bool)
    constant = np.all(values == values[:1, :1], axis=(0, 1))
    if parse(name).class_ == "cor" and values.ndim == 4:
        cells = np.triu(cells, k=1)
    return np.asarray(cells & ~constant)


def _structural(name: str) -> bool:
    """Whether constant cells are expected (correlation matrices and their Cholesky factors)."""
    return parse(name).class_ in ("cor", "cor_chol")


def _stuck(draws: xr.Dataset, names: Sequence[str]) -> list[str]:
    """Labels of cells that never moved although they should (a stuck sampler)."""
    out = []
    for name in names:
        if _structural(name):
            continue
        values = _by_sample_dims(draws[name]).to_numpy()
        if values.shape[0] * values.shape[1] < 2:
            continue
        constant = np.all(values == values[:1, :1], axis=(0, 1))
        for index in zip(*np.nonzero(np.atleast_1d(constant)), strict=False):
            cell = tuple(int(i) for i in index) if values.ndim > 2 else ()
            out.append(_cell_label(name, draws[name], cell))
    return out


def _cell_label(name: str, da: xr.DataArray, index: tuple[int, ...]) -> str:
    dims = [d for d in _by_sample_dims(da).dims if d not in SAMPLE_DIMS]
    if not dims:
        return name
    labels = [
        str(da[d].to_numpy()[i]) if d in da.coords else str(i)
        for d, i in zip(dims, index, strict=True)
    ]
    return f"{name}[{','.join(labels)}]"


def _extreme(
    stat: xr.Dataset, draws: xr.Dataset, names: Sequence[str], worst: Literal["max", "min"]
) -> tuple[float, str]:
    """The worst finite value of ``stat`` over the checked cells of ``names``, and its label."""
    best_value = np.nan
    best_label = ""
    for name in names:
        mask = _checked_cells(name, draws[name])
        rest = [d for d in _by_sample_dims(draws[name]).dims if d not in SAMPLE_DIMS]
        values = np.asarray(stat[name].transpose(*rest).to_numpy(), dtype=float)
        values = np.where(mask & np.isfinite(values), values, np.nan)
        if np.all(np.isnan(values)):
            continue
        flat = int(np.nanargmax(values) if worst == "max" else np.nanargmin(values))
        index = tuple(int(i) for i in np.unravel_index(flat, values.shape))
        value = float(values[index]) if values.ndim else float(values)
        better = value > best_value if worst == "max" else value < best_value
        if np.isnan(best_value) or better:
            best_value, best_label = value, _cell_label(name, draws[name], index)
    return best_value, best_label


def _group_of(parameter: str, design: Design | None) -> str:
    """The grouping factor a parameter belongs to (``sd_Subject[Days]`` → ``Subject``)."""
    if design is None:
        return ""
    base = parameter.split("[", 1)[0]
    known = {g.name for g in design.groups}
    for prefix in GROUP_PREFIXES:
        if base.startswith(prefix) and base[len(prefix) :] in known:
            return base[len(prefix) :]
    return ""


def _switch_advice(design: Design | None, group: str, integrated: Collection[str] = ()) -> str:
    """How to switch the parametrization of ``group`` in the spec (nothing for a group whose
    effects were integrated out: no parametrization was sampled)."""
    if design is None or not group or group in integrated:
        return ""
    current = {b.parametrization for b in design.group(group).blocks}
    other = "centered" if current == {"noncentered"} else "noncentered"
    return (
        f"use parametrization: {other} for group {group} "
        f"(spec: group_effects: {{{group}: {{parametrization: {other}}}}})"
    )


def _centred_groups(design: Design | None, integrated: Collection[str] = ()) -> list[str]:
    if design is None:
        return []
    return [
        g.name
        for g in design.groups
        if g.name not in integrated and any(b.parametrization == "centered" for b in g.blocks)
    ]


def _geometry_advice(design: Design | None, integrated: Collection[str] = ()) -> str:
    """Advice for funnel-like geometry: non-centre the centred groups that were sampled, or
    tighten priors."""
    centred = _centred_groups(design, integrated)
    if centred:
        groups = ", ".join(centred)
        return (
            f"use parametrization: noncentered for group {groups} "
            f"(spec: group_effects: {{{centred[0]}: {{parametrization: noncentered}}}})"
        )
    return "put stronger priors on the sd_* parameters, or reparametrize the model"


def _fmt(value: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"
