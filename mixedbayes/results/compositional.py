"""What a compositional fit tells a microbiome analyst: each taxon's effects with a
differential-abundance call, and the compositions the model expects per sample.

The local false sign rate of an effect (Stephens 2017) is the posterior probability that
its sign is wrong: ``min(P(b > 0), P(b < 0))``. Calling every effect with ``lfsr ≤ level``
keeps the expected share of wrong signs among the calls at or below ``level``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.compositional import get_transform, softmax
from mixedbayes.errors import SpecError, require_known
from mixedbayes.naming import Names
from mixedbayes.results.group_draws import (
    Level,
    NewGroups,
    _group_covariance_chol,
    check_new_groups,
    included_groups,
)

if TYPE_CHECKING:
    from mixedbayes.design.compositional import CompositionalDesign
    from mixedbayes.results.protocols import FitLike

__all__ = ["expected_proportions", "taxa_effects"]

#: Effect scales of :func:`taxa_effects`.
SCALES = ("clr", "alr")
#: Values (draws × samples × taxa) evaluated at once by :func:`expected_proportions`.
CHUNK_VALUES = 5_000_000


def _effect_draws(fit: FitLike, scale: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Draws (draws, terms, taxa) of the effects on ``scale``, the terms and the taxa."""
    design: CompositionalDesign = fit.design  # type: ignore[assignment]
    b = fit.idata["posterior"]["b"]
    arr = np.asarray(b.transpose("chain", "draw", "term", "taxon").to_numpy(), dtype=float)
    draws = arr.reshape(-1, *arr.shape[2:])
    terms = [str(t) for t in b["term"].to_numpy()]
    taxa = [str(t) for t in b["taxon"].to_numpy()]
    if scale == "alr":
        alr = (  # the fit's own ALR (its reference), else one set up on the fit's counts
            design.transform
            if design.spec.transform == "alr"
            else get_transform("alr").setup(design.taxa, design.counts)
        )
        ref = taxa.index(str(alr.reference))  # type: ignore[attr-defined]
        keep = [j for j in range(len(taxa)) if j != ref]
        draws = draws[:, :, keep] - draws[:, :, [ref]]
        taxa = [taxa[j] for j in keep]
    return draws, terms, taxa


def taxa_effects(
    fit: FitLike,
    coefficients: Sequence[str] | None = None,
    *,
    prob: float = 0.9,
    level: float = 0.05,
    scale: str = "clr",
) -> pd.DataFrame:
    """One row per taxon and coefficient, sorted by local false sign rate.

    Parameters
    ----------
    fit : Fit
        A compositional fit.
    coefficients : list of str, optional
        Terms of the formula (``"group[diet]:time"``); default: every term but the intercept.
    prob : float
        Mass of the central interval (``lower``, ``upper``).
    level : float
        An effect is called (``call`` ``"increase"`` / ``"decrease"``) when its ``lfsr`` is at
        or below ``level``.
    scale : {"clr", "alr"}
        CLR: log-ratio against the geometric mean of all taxa (the model's own scale); ALR:
        against the reference taxon (the spec's, or the most prevalent), which has no row.

    Returns
    -------
    DataFrame
        Columns ``taxon``, ``coefficient``, ``mean``, ``sd``, ``lower``, ``upper``,
        ``p_direction`` (posterior probability of the mean's sign), ``lfsr``, ``call``,
        ``scale``.
    """
    from mixedbayes.results.summary import check_prob

    check_prob(prob)
    if not 0 < level < 1:
        raise SpecError(f"level must lie in (0, 1), not {level}.", where="level")
    if scale not in SCALES:
        raise SpecError(
            f"scale must be one of {list(SCALES)}, not {scale!r}.",
            where="scale",
            hint="clr: against the geometric mean; alr: against the reference taxon.",
        )
    draws, terms, taxa = _effect_draws(fit, scale)
    wanted = [t for t in terms if t != "Intercept"] if coefficients is None else list(coefficients)
    require_known(wanted, terms, where="coefficients", what="the formula's terms")
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    frames = []
    for term in wanted:
        d = draws[:, terms.index(term), :]
        above = np.mean(d > 0, axis=0)
        below = np.mean(d < 0, axis=0)
        lfsr = np.minimum(above, below) + np.mean(d == 0, axis=0)
        mean = d.mean(axis=0)
        frames.append(
            pd.DataFrame(
                {
                    "taxon": taxa,
                    "coefficient": term,
                    "mean": mean,
                    "sd": d.std(axis=0, ddof=1),
                    "lower": np.quantile(d, lo, axis=0),
                    "upper": np.quantile(d, hi, axis=0),
                    "p_direction": np.where(mean >= 0, above, below),
                    "lfsr": lfsr,
                    "call": np.where(lfsr <= level, np.where(mean > 0, "increase", "decrease"), ""),
                    "scale": scale,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["lfsr", "coefficient", "taxon"], kind="stable").reset_index(drop=True)


def expected_proportions(
    fit: FitLike,
    newdata: pd.DataFrame | None = None,
    *,
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> pd.DataFrame:
    """The posterior mean of each sample's expected composition (samples × taxa), the
    softmax of its log-abundances (fixed and group effects; no residual).

    Parameters
    ----------
    fit : Fit
    newdata : DataFrame, optional
        Sample metadata to predict for (the fitted samples when None), one row per sample
        with the formula's columns; its index names the rows.
    level : None, "population", str or list of str
        Grouping factors whose effects are included (None: all).
    new_groups : {"error", "sample", "population"}
        Levels the model has not seen: a ``DataError`` naming them; effects drawn from the
        fitted group-level distribution (per posterior draw, level and taxon, zero-sum across
        taxa); or no effect.
    seed : int, optional
        Seed of the draws for new levels.
    """
    from mixedbayes.spec.compositional import RESPONSE

    design: CompositionalDesign = fit.design  # type: ignore[assignment]
    check_new_groups(new_groups)
    groups = included_groups(design.samples, level)
    labels: dict[str, list[str]] = {}
    if newdata is None:
        X, index = design.samples.X, pd.Index(design.obs_index, name="sample")
        rows = {g.name: (g.index, g.Z) for g in groups}
    else:
        nd = design.samples.new_data(newdata.assign(**{RESPONSE: 0.0}))
        check_new_groups(new_groups, groups, nd.new_levels)
        X, index = nd.X, pd.Index(newdata.index, name="sample")
        rows = {g.name: (nd.group_index[g.name], nd.group_Z[g.name]) for g in groups}
        if new_groups == "sample":
            labels = {g.name: list(nd.group_labels.get(g.name, [])) for g in groups}
    post = fit.idata["posterior"]
    b = np.asarray(post["b"].transpose("chain", "draw", "term", "taxon").to_numpy(), float)
    b = b.reshape(-1, *b.shape[2:])
    effects, chols, scales = {}, {}, {}
    for g in groups:
        r = np.asarray(post[Names.r(g.name)].to_numpy(), dtype=float)
        effects[g.name] = r.reshape(-1, *r.shape[2:])  # draws first
        if labels and (rows[g.name][0] < 0).any():
            chol = _group_covariance_chol(post.to_dataset(), g)
            chols[g.name] = chol.reshape(-1, *chol.shape[2:])
            scales[g.name] = _taxon_scales(post, g.name)
    rng = np.random.default_rng(seed)
    n, J = X.shape[0], len(design.taxa)
    total = np.zeros((n, J))
    step = max(1, CHUNK_VALUES // max(n * J, 1))
    for start in range(0, b.shape[0], step):
        part = slice(start, start + step)
        lam = np.einsum("np,spj->snj", X, b[part])
        for g in groups:
            idx, Z = rows[g.name]
            known = idx >= 0  # unseen levels: drawn (new_groups="sample") or no effect
            r = np.zeros((lam.shape[0], n, Z.shape[1], J))
            r[:, known] = effects[g.name][part][:, idx[known]]
            if g.name in chols:
                unseen = np.flatnonzero(~known)
                names = [labels[g.name][int(i)] for i in unseen]
                _, inverse = np.unique(names, return_inverse=True)
                rho = scales[g.name]
                r[:, unseen] = _new_level_effects(
                    chols[g.name][part],
                    int(inverse.max()) + 1,
                    J,
                    rng,
                    None if rho is None else rho[part],
                )[:, inverse]
            lam = lam + np.einsum("nk,snkj->snj", Z, r)
        total += softmax(lam, axis=-1).sum(axis=0)
    return pd.DataFrame(total / b.shape[0], index=index, columns=design.taxa)


def _taxon_scales(post: Any, group: str) -> np.ndarray | None:
    """``group_sd: taxon``: each draw's per-taxon scale of the group terms relative to the
    pooled SD, ``taxon_sd_<g> / sd_<g>`` (draws, terms, taxa); None with shared SDs."""
    from mixedbayes.compile.compositional import taxon_sd_name

    name = taxon_sd_name(group)
    if name not in post:
        return None
    g_term = Names.group_term_dim(group)
    per_taxon = post[name].transpose("chain", "draw", g_term, "taxon").to_numpy()
    sd = post[Names.sd(group)].transpose("chain", "draw", g_term).to_numpy()
    rho = np.asarray(per_taxon / sd[..., None], dtype=float)
    return rho.reshape(-1, *rho.shape[2:])


def _new_level_effects(
    chol: np.ndarray,
    n_levels: int,
    n_taxa: int,
    rng: np.random.Generator,
    rho: np.ndarray | None = None,
) -> np.ndarray:
    """Effects of unseen levels, (draws, levels, terms, taxa): per draw, level and taxon a
    term vector with covariance ``chol cholᵀ``, centred across taxa (zero-sum, as the
    model's); with per-taxon scales ``rho`` (draws, terms, taxa) rescaled by them and centred
    again, as the model's ``group_sd: taxon``."""
    z = rng.standard_normal((chol.shape[0], n_levels, chol.shape[-1], n_taxa))
    x = np.einsum("skl,sulj->sukj", chol, z)
    x = x - x.mean(axis=-1, keepdims=True)
    if rho is not None:
        x = x * rho[:, None]
        x = x - x.mean(axis=-1, keepdims=True)
    return np.asarray(x)
