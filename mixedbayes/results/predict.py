"""Posterior predictions from a fit's draws (no recompilation): linear predictor and response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mixedbayes.errors import DataError

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design

__all__ = ["linear_predictor_draws", "predict_draws"]

NewGroups = Literal["error", "population"]


def linear_predictor_draws(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    *,
    include_groups: bool = True,
    new_groups: NewGroups = "error",
) -> tuple[np.ndarray, pd.Index]:
    """Draws of the linear predictor, shape (chain, draw, rows), and the rows' index.

    Parameters
    ----------
    posterior : xarray.Dataset
    design : Design
    newdata : DataFrame, optional
        Rows to predict for; the fitted rows when None.
    include_groups : bool
        Add the group effects of known levels (False: population level only).
    new_groups : {"error", "population"}
        What to do with a level the model has not seen: raise a ``DataError`` naming it, or
        give it no group effect (the population-level prediction for that factor).
    """
    if newdata is None:
        X = design.X
        index = design.obs_index
        group_index = {g.name: g.index for g in design.groups}
        group_Z = {g.name: g.Z for g in design.groups}
        new_levels: dict[str, tuple[str, ...]] = {}
    else:
        nd = design.new_data(newdata)
        X, index, group_index, group_Z, new_levels = (
            nd.X,
            nd.index,
            nd.group_index,
            nd.group_Z,
            nd.new_levels,
        )
    b = posterior["b"].transpose("chain", "draw", "term").to_numpy()
    eta = np.einsum("cdp,np->cdn", b, X)
    if not include_groups:
        return eta, index
    unknown = {g: lv for g, lv in new_levels.items() if lv}
    if unknown and new_groups == "error":
        detail = "; ".join(f"{g}: {list(lv)[:8]}" for g, lv in unknown.items())
        raise DataError(
            f"newdata has levels the model has not seen ({detail}).",
            where=", ".join(f"group '{g}'" for g in unknown),
            hint="pass new_groups='population' to predict them at the population level.",
        )
    for g in design.groups:
        r = posterior[f"r_{g.name}"].transpose("chain", "draw", g.dim, g.term_dim).to_numpy()
        idx = group_index[g.name]
        known = idx >= 0
        contrib = np.zeros(eta.shape)
        contrib[..., known] = np.einsum(
            "cdnk,nk->cdn", r[:, :, idx[known], :], group_Z[g.name][known]
        )
        eta = eta + contrib
    return eta, index


def predict_draws(
    posterior: xr.Dataset,
    design: Design,
    newdata: pd.DataFrame | None,
    *,
    kind: Literal["link", "mean", "response"] = "mean",
    include_groups: bool = True,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> xr.DataArray:
    """Predictive draws (chain, draw, obs) of the linear predictor, the mean, or new responses."""
    import xarray as xr

    eta, index = linear_predictor_draws(
        posterior, design, newdata, include_groups=include_groups, new_groups=new_groups
    )
    if kind == "link":
        values = eta
    else:
        mu = design.link.inverse_numpy(eta)
        params = {
            p.name: posterior[p.name].transpose("chain", "draw").to_numpy()[..., None]
            for p in design.family.params
        }
        values = design.family.mean_numpy(mu, params)
        if kind == "response":
            rng = np.random.default_rng(seed)
            values = design.family.simulate(mu, params, rng)
    return xr.DataArray(
        values,
        dims=("chain", "draw", "obs"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "obs": list(index),
        },
        name=kind,
    )
