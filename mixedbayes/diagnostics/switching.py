"""Label switching: chains that disagree on exchangeable parameters.

A model unchanged when two parameters swap (the phases of a bi-exponential, the components
of a mixture) has as many modes as labellings; each chain settles on one, and R-hat is high
on exactly those parameters. The sign: for two parameters with a high R-hat, some chains put
the first above the second and others below, while the pair's smaller and larger chain means
agree across chains (the chain means are permutations of each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mixedbayes.diagnostics.gate_helpers import _by_sample_dims, _cell_label, _checked_cells

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SWITCH_RATIO", "exchangeable", "switched_pairs", "switching_remedy"]

#: A pair is switched when sorting each chain's means leaves at most this fraction of the
#: between-chain spread of the unsorted means.
SWITCH_RATIO = 0.25
#: At most this many high-R-hat cells are compared pairwise.
MAX_CELLS = 60


def _chain_means(
    rhat: xr.Dataset, draws: xr.Dataset, names: Sequence[str], threshold: float
) -> list[tuple[str, np.ndarray]]:
    """``(label, chain means)`` of each checked cell of ``names`` with R-hat above
    ``threshold``, worst first."""
    cells: list[tuple[float, str, np.ndarray]] = []
    for name in names:
        da = draws[name]
        values = _by_sample_dims(da).to_numpy()
        mask = _checked_cells(name, da)
        rest = [d for d in _by_sample_dims(da).dims if d not in ("chain", "draw")]
        stat = np.asarray(rhat[name].transpose(*rest).to_numpy(), dtype=float)
        means = values.mean(axis=1).reshape(values.shape[0], -1)  # (chain, cell)
        high = np.atleast_1d(mask & (stat > threshold)).reshape(-1)
        flat_stat = np.atleast_1d(stat).reshape(-1)
        for k in np.flatnonzero(high):
            cell = tuple(int(i) for i in np.unravel_index(k, values.shape[2:]))
            label = _cell_label(name, da, cell)
            cells.append((float(flat_stat[k]), label, means[:, k]))
    cells.sort(key=lambda c: -c[0])
    return [(label, m) for _, label, m in cells[:MAX_CELLS]]


def _switched(a: np.ndarray, b: np.ndarray) -> bool:
    d = a - b
    if not (np.any(d > 0) and np.any(d < 0)):
        return False
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    sorted_spread = np.ptp(lo) + np.ptp(hi)
    spread = np.ptp(a) + np.ptp(b)
    return bool(spread > 0 and sorted_spread <= SWITCH_RATIO * spread)


def exchangeable(a: str, b: str, parts: Sequence[str] = ()) -> bool:
    """Whether cells ``a`` and ``b`` (labels ``name[coords]``) could swap: cells of one
    variable, or the same coordinate of one class of variable in two of the model's named
    ``parts`` (``b_lrc1[Intercept]`` and ``b_lrc2[Intercept]``: the parameters of two phases).
    Cells of unrelated variables (``z_subject[...]`` and ``z_b_slope[...]``, ``eta[...]``)
    never are."""
    from mixedbayes.naming import parse

    name_a, _, coords_a = a.partition("[")
    name_b, _, coords_b = b.partition("[")
    if name_a == name_b:
        return True
    pa, pb = parse(name_a, tuple(parts)), parse(name_b, tuple(parts))
    same_class = (pa.class_, pa.group) == (pb.class_, pb.group)
    return same_class and bool(pa.part) and bool(pb.part) and coords_a == coords_b


def switched_pairs(
    rhat: xr.Dataset,
    draws: xr.Dataset,
    names: Sequence[str],
    threshold: float,
    parts: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """Pairs of parameters (labels such as ``b_lrc1[Intercept]``) whose chain means are
    swapped between chains, among those with R-hat above ``threshold``.

    Parameters
    ----------
    rhat : Dataset
        R-hat of every variable (without sample dims).
    draws : Dataset
        The posterior (``chain``, ``draw``, ...).
    names : sequence of str
        Variables to look at.
    threshold : float
        Only cells with a larger R-hat are compared.
    parts : sequence of str
        The model's named parts (nonlinear parameters): cells of one variable class in two
        parts may swap (see :func:`exchangeable`).

    Returns
    -------
    list of (str, str)
    """
    cells = _chain_means(rhat, draws, names, threshold)
    out = []
    for i, (label_a, a) in enumerate(cells):
        for label_b, b in cells[i + 1 :]:
            if exchangeable(label_a, label_b, parts) and _switched(a, b):
                out.append((label_a, label_b))
    return out


def switching_remedy(pairs: Sequence[tuple[str, str]], parts: Sequence[str]) -> tuple[str, str]:
    """The finding and the remedy for label switching between ``pairs``.

    ``parts`` are the model's named parts (nonlinear parameters), used to name the
    parameters of an ``order:`` constraint (``b_lrc1[Intercept]`` → ``lrc1``).
    """
    from mixedbayes.naming import parse

    shown = "; ".join(f"{a} <-> {b}" for a, b in pairs[:4])
    more = f" and {len(pairs) - 4} more" if len(pairs) > 4 else ""
    finding = (
        f"Label switching: the chains disagree on exchangeable parameters, their chain means "
        f"swapped between chains ({shown}{more})."
    )
    named = []
    for pair in pairs:
        a, b = sorted(parse(x.split("[", 1)[0], tuple(parts)).part for x in pair)
        if a and b and a != b and f"[{a}, {b}]" not in named:
            named.append(f"[{a}, {b}]")
    example = " or ".join(f"order: {n}" for n in named[:3]) or "order: [lrc1, lrc2]"
    remedy = (
        "label switching: the model is unchanged when these parameters swap, so each chain "
        "settles on its own labelling. Break the symmetry: for a bi-exponential use the "
        "library model (model: biexp, rates ordered), for an expression add an order "
        f"constraint on one pair (spec: {example}; largest first), or give distinct initial "
        "values (mb.fit(..., init={...})); nonlinear fits start from a point fit by default."
    )
    return finding, remedy
