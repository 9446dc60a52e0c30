"""Posterior predictions from a fit's draws (no recompilation).

Predictions can include every grouping factor (the default), none (population level), or
some (``level=["clinic"]``, like lme4's ``re.form``). A level the model has not seen is an
error, gets no effect (population level for that factor), or gets an effect drawn from the
fitted group-level distribution, one draw per posterior draw (``new_groups="sample"``). For
nested factors this is exactly right per level: a new patient in a known clinic keeps that
clinic's effect and draws only its patient effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mixedbayes.design.design import OBS_DIM
from mixedbayes.errors import DataError, SpecError, require_known
from mixedbayes.naming import Names

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design, GroupFactor, NewData

__all__ = [
    "Level",
    "NewGroups",
    "group_covariance",
    "linear_predictor_draws",
    "predict_draws",
]

NewGroups = Literal["error", "sample", "population"]
Level = str | Sequence[str] | None


def included_groups(design: Design, level: Level) -> list[GroupFactor]:
    """The grouping factors a prediction includes (``level`` as in :meth:`Fit.predict`)."""
    if level is None:
        return list(design.groups)
    if isinstance(level, str):
        if level == "population":
            return []
        level = [level]
    names = [g.name for g in design.groups]
    require_known(
        level,
        names,
        where="level",
        what=f"level names grouping factors; the model's are {names}",
        hint=f"use None (all), 'population' (none) or some of {names}.",
    )
    return [g for g in design.groups if g.name in level]


def group_covariance(posterior: xr.Dataset, g: GroupFactor) -> np.ndarray:
    """Each draw's covariance of the factor's effects, (chain, draw, k, k)."""
    sd = posterior[Names.sd(g.name)].transpose("chain", "draw", g.term_dim).to_numpy()
    k = sd.shape[-1]
    name = Names.cor(g.name)
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


def _new_effects(
    posterior: xr.Dataset, g: GroupFactor, labels: list[str], rng: np.random.Generator
) -> np.ndarray:
    """Effects of unseen levels drawn from the group-level distribution, (chain, draw, n_new, k)."""
    chol = _group_covariance_chol(posterior, g)
    c, d, k, _ = chol.shape
    z = rng.standard_normal((c, d, len(labels), k))
    return np.einsum("cdkl,cdul->cduk", chol, z)


def rows_of(design: Design, newdata: pd.DataFrame | None) -> NewData:
    """Design arrays of the rows to predict for (the fitted rows when ``newdata`` is None)."""
    from mixedbayes.design import NewData

    if newdata is not None:
        return design.new_data(newdata)
    return NewData(
        X=design.X,
        group_index={g.name: g.index for g in design.groups},
        group_Z={g.name: g.Z for g in design.groups},
        new_levels={},
        index=design.obs_index,
        group_labels={},
        offset=design.offset,
        trials=design.trials,
        zi_X=design.zi_X,
    )


def family_params(posterior: xr.Dataset, design: Design, nd: NewData) -> dict[str, np.ndarray]:
    """Draws of the family's parameters, broadcastable to (chain, draw, rows)."""
    from scipy.special import expit

    out: dict[str, np.ndarray] = {}
    for p in design.family.params:
        if p.predictor:
            b = (
                posterior[Names(p.name).b]
                .transpose("chain", "draw", Names(p.name).term_dim)
                .to_numpy()
            )
            assert nd.zi_X is not None
            out[p.name] = expit(np.einsum("cdp,np->cdn", b, nd.zi_X))
        else:
            out[p.name] = posterior[p.name].transpose("chain", "draw").to_numpy()[..., None]
    return out


def linear_predictor_draws(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    *,
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> tuple[np.ndarray, pd.Index]:
    """Draws of the linear predictor, shape (chain, draw, rows), and the rows' index.

    Parameters
    ----------
    posterior : xarray.Dataset
    design : Design
    newdata : DataFrame, optional
        Rows to predict for; the fitted rows when None.
    level : None, "population", str or list of str
        Grouping factors whose effects are included (None: all).
    new_groups : {"error", "sample", "population"}
        Unseen levels: raise a ``DataError`` naming them; draw their effects from the fitted
        group-level distribution; or give them no effect.
    seed : int, optional
        Seed of the draws for new levels; the same seed gives the same predictions.
    """
    if new_groups not in ("error", "sample", "population"):
        raise SpecError(
            f"unknown new_groups {new_groups!r}.",
            where="new_groups",
            hint="use 'error', 'sample' or 'population'.",
        )
    groups = included_groups(design, level)
    nd = rows_of(design, newdata)
    X, index, group_index, group_Z = nd.X, nd.index, nd.group_index, nd.group_Z
    labels, new_levels = nd.group_labels, nd.new_levels
    names = Names()
    b = posterior[names.b].transpose("chain", "draw", names.term_dim).to_numpy()
    eta = np.einsum("cdp,np->cdn", b, X)
    if nd.offset is not None:
        eta = eta + nd.offset
    unknown = {g.name: new_levels[g.name] for g in groups if new_levels.get(g.name)}
    if unknown and new_groups == "error":
        detail = "; ".join(f"{g}: {list(lv)[:8]}" for g, lv in unknown.items())
        raise DataError(
            f"newdata has levels the model has not seen ({detail}).",
            where=", ".join(f"group '{g}'" for g in unknown),
            hint="pass new_groups='sample' to draw their effects from the fitted distribution, "
            "or new_groups='population' to predict them without that factor's effect.",
        )
    rng = np.random.default_rng(seed)
    for g in groups:
        r = posterior[Names.r(g.name)].transpose("chain", "draw", g.dim, g.term_dim).to_numpy()
        idx = group_index[g.name]
        Z = group_Z[g.name]
        known = idx >= 0
        contrib = np.zeros(eta.shape)
        contrib[..., known] = np.einsum("cdnk,nk->cdn", r[:, :, idx[known], :], Z[known])
        if new_groups == "sample" and (~known).any():
            rows = np.flatnonzero(~known)
            levels, inverse = np.unique([labels[g.name][i] for i in rows], return_inverse=True)
            r_new = _new_effects(posterior, g, list(levels), rng)
            contrib[..., rows] = np.einsum("cdnk,nk->cdn", r_new[:, :, inverse, :], Z[rows])
        eta = eta + contrib
    return eta, index


def predict_draws(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    *,
    kind: Literal["link", "mean", "response"] = "mean",
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> xr.DataArray:
    """Predictive draws (chain, draw, obs) of the linear predictor, the mean, or new responses."""
    import xarray as xr

    if kind not in ("link", "mean", "response"):
        raise SpecError(
            f"unknown kind {kind!r}.", where="kind", hint="use 'link', 'mean' or 'response'."
        )
    rng = np.random.default_rng(seed)
    group_seed, noise_seed = rng.integers(0, 2**31 - 1, size=2)
    eta, index = linear_predictor_draws(
        posterior, design, newdata, level=level, new_groups=new_groups, seed=int(group_seed)
    )
    if kind == "link":
        values = eta
    else:
        nd = rows_of(design, newdata)
        mu = design.link.inverse_numpy(eta)
        params = family_params(posterior, design, nd)
        values = design.family.mean_numpy(mu, params, nd.trials)
        if kind == "response":
            rng_noise = np.random.default_rng(noise_seed)
            values = design.family.simulate(mu, params, rng_noise, nd.trials)
    return xr.DataArray(
        values,
        dims=("chain", "draw", OBS_DIM),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            OBS_DIM: list(index),
        },
        name=kind,
    )
