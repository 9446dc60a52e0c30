"""Group effects of the rows to predict for, one set per posterior draw.

Shared by the predictions of every kind (:mod:`mixedbayes.results.predict`,
:mod:`mixedbayes.results.nonlinear_predict`): which grouping factors a prediction includes
(``level``), what unseen levels get (``new_groups``), and each row's effects over all of a
factor's terms (a new level draws all its terms jointly from the fitted distribution, so the
correlation between terms, or between the parameters of a nonlinear model, is kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from mixedbayes.errors import DataError, SpecError, require_known
from mixedbayes.naming import Names

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.groups import GroupFactor

__all__ = [
    "Level",
    "NewGroups",
    "check_new_groups",
    "effect_draws",
    "group_covariance",
    "included_groups",
    "level_names",
    "new_effects",
]

NewGroups = Literal["error", "sample", "population"]
Level = str | Sequence[str] | None


def level_names(level: Level) -> list[str] | None:
    """The grouping factors ``level`` names (as in :meth:`Fit.predict`): None for all
    (``level=None``), none for ``"population"``, else the named ones."""
    if level is None:
        return None
    if isinstance(level, str):
        return [] if level == "population" else [level]
    return list(level)


def included_groups(design: ModelDesign, level: Level) -> list[GroupFactor]:
    """The grouping factors a prediction includes (``level`` as in :meth:`Fit.predict`)."""
    wanted = level_names(level)
    if wanted is None:
        return list(design.groups)
    if not wanted:
        return []
    level = wanted
    names = [g.name for g in design.groups]
    for dpar in getattr(design, "dpars", ()):  # factors only a distributional formula has
        names += [g.name for g in dpar.groups if g.name not in names]
    require_known(
        level,
        names,
        where="level",
        what=f"level names grouping factors; the model's are {names}",
        hint=f"use None (all), 'population' (none) or some of {names}.",
    )
    return [g for g in design.groups if g.name in level]


def check_new_groups(
    new_groups: str,
    groups: Sequence[GroupFactor] = (),
    new_levels: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Raise for an unknown ``new_groups`` option, or (``"error"``) for unseen levels of the
    included ``groups`` (``new_levels``: by factor, the levels the model has not seen),
    naming them and the options."""
    if new_groups not in ("error", "sample", "population"):
        raise SpecError(
            f"unknown new_groups {new_groups!r}.",
            where="new_groups",
            hint="use 'error', 'sample' or 'population'.",
        )
    new_levels = new_levels or {}
    unknown = {g.name: new_levels[g.name] for g in groups if new_levels.get(g.name)}
    if unknown and new_groups == "error":
        detail = "; ".join(f"{g}: {list(lv)[:8]}" for g, lv in unknown.items())
        raise DataError(
            f"newdata has levels the model has not seen ({detail}).",
            where=", ".join(f"group '{g}'" for g in unknown),
            hint="pass new_groups='sample' to draw their effects from the fitted distribution, "
            "or new_groups='population' to predict them without that factor's effect.",
        )


def group_covariance(posterior: xr.Dataset, g: GroupFactor) -> np.ndarray:
    """Each draw's covariance of the factor's effects, (chain, draw, k, k)."""
    sd = posterior[Names.sd(g.key)].transpose("chain", "draw", g.term_dim).to_numpy()
    k = sd.shape[-1]
    name = Names.cor(g.key)
    if name in posterior:
        cor = posterior[name].transpose("chain", "draw", ...).to_numpy()
    else:
        cor = np.broadcast_to(np.eye(k), (*sd.shape[:2], k, k))
    return np.asarray(sd[..., :, None] * cor * sd[..., None, :])


def _group_covariance_chol(posterior: xr.Dataset, g: GroupFactor) -> np.ndarray:
    """Cholesky factor of each draw's covariance of the factor's effects, (chain, draw, k, k)."""
    cov = group_covariance(posterior, g)
    k = cov.shape[-1]
    jitter = 1e-12 * np.eye(k) * np.maximum(1.0, np.abs(cov).max())
    return np.asarray(np.linalg.cholesky(cov + jitter))


def new_effects(
    posterior: xr.Dataset, g: GroupFactor, labels: Sequence[str], rng: np.random.Generator
) -> np.ndarray:
    """Effects of unseen levels drawn from the group-level distribution, (chain, draw, n_new, k)."""
    chol = _group_covariance_chol(posterior, g)
    c, d, k, _ = chol.shape
    z = rng.standard_normal((c, d, len(labels), k))
    return np.einsum("cdkl,cdul->cduk", chol, z)


def effect_draws(
    posterior: xr.Dataset,
    g: GroupFactor,
    index: np.ndarray,
    labels: Sequence[str],
    new_groups: NewGroups,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each row's effects of factor ``g`` over all its terms, shape (chain, draw, rows, k).

    A known level (``index >= 0``) reads its fitted effects; an unseen one (``index < 0``,
    its label in ``labels``) gets one joint draw per posterior draw and level from the
    fitted distribution when ``new_groups="sample"``, else no effect (zeros).
    """
    r = posterior[Names.r(g.key)].transpose("chain", "draw", g.dim, g.term_dim).to_numpy()
    known = index >= 0
    out = np.zeros((*r.shape[:2], index.size, r.shape[-1]))
    out[:, :, known, :] = r[:, :, index[known], :]
    if new_groups == "sample" and (~known).any():
        rows = np.flatnonzero(~known)
        levels, inverse = np.unique([labels[int(i)] for i in rows], return_inverse=True)
        out[:, :, rows, :] = new_effects(posterior, g, list(levels), rng)[:, :, inverse, :]
    return out
