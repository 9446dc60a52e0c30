"""Posterior predictions from a fit's draws (no recompilation).

Predictions can include every grouping factor (the default), none (population level), or
some (``level=["clinic"]``, like lme4's ``re.form``). A level the model has not seen is an
error, gets no effect (population level for that factor), or gets an effect drawn from the
fitted group-level distribution, one draw per posterior draw (``new_groups="sample"``). For
nested factors this is exactly right per level: a new patient in a known clinic keeps that
clinic's effect and draws only its patient effect. Nonlinear fits predict the same way
(:mod:`mixedbayes.results.nonlinear_predict`); the group effects of both are drawn by
:mod:`mixedbayes.results.group_draws`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mixedbayes.design.design import OBS_DIM, Design
from mixedbayes.design.residuals import latent_residuals, observation_residuals
from mixedbayes.design.variance import FITTED_FLOOR, power_of_fitted, row_varying_sigma
from mixedbayes.errors import SpecError
from mixedbayes.naming import Names
from mixedbayes.results.group_draws import (
    Level,
    NewGroups,
    check_new_groups,
    effect_draws,
    group_covariance,
    included_groups,
    level_names,
)
from mixedbayes.results.latent_residuals import latent_draws

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import GroupFactor, NewData
    from mixedbayes.design.base import ModelDesign

__all__ = [
    "Level",
    "NewGroups",
    "family_params",
    "group_covariance",
    "included_dpar_groups",
    "included_groups",
    "linear_predictor_draws",
    "predict_draws",
]


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
        dpars={d.name: d.rows() for d in design.dpars},
    )


def family_params(
    posterior: xr.Dataset,
    design: Design,
    nd: NewData,
    *,
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
    mu: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Draws of the family's parameters, broadcastable to (chain, draw, rows).

    A parameter with a distributional formula (``zi``, ``sigma``) is evaluated per row, its
    group effects included as ``level`` and ``new_groups`` say (as
    :func:`linear_predictor_draws` does for the response's); a scalar parameter has shape
    (chain, draw, 1). ``mu`` (chain, draw, rows), the mean of the rows, is needed when the
    residual SD is a power of it (``variance: {power: fitted}``): ``sigma·|mu|^delta_power``.
    """
    out: dict[str, np.ndarray] = {}
    dpars = {d.name: d for d in design.dpars}
    rng = np.random.default_rng(seed)
    for p in design.family.params:
        dpar = dpars.get(p.name)
        if dpar is None:
            if p.name not in posterior:  # replaced: an unstructured residual covariance
                continue
            out[p.name] = posterior[p.name].transpose("chain", "draw").to_numpy()[..., None]
            continue
        rows = nd.dpars[p.name]
        names = dpar.names
        b = posterior[names.b].transpose("chain", "draw", names.term_dim).to_numpy()
        eta = np.einsum("cdp,np->cdn", b, rows.X)
        groups = included_dpar_groups(dpar.groups, level)
        check_new_groups(new_groups, groups, rows.new_levels)
        for g in groups:
            r = effect_draws(
                posterior,
                g,
                rows.group_index[g.name],
                rows.group_labels.get(g.name, []),
                new_groups,
                rng,
            )
            eta = eta + np.einsum("cdnk,nk->cdn", r, rows.group_Z[g.name])
        out[p.name] = dpar.link.inverse_numpy(eta)
    if power_of_fitted(design):
        if mu is None:
            raise TypeError("family_params needs mu: the residual SD is a power of it")
        delta = posterior[Names.DELTA_POWER].transpose("chain", "draw").to_numpy()[..., None]
        out["sigma"] = out["sigma"] * np.maximum(np.abs(mu), FITTED_FLOOR) ** delta
    return out


def included_dpar_groups(groups: tuple[GroupFactor, ...], level: Level) -> list[GroupFactor]:
    """The factors of a distributional formula a prediction includes: those ``level`` names
    (all for None, none for ``"population"``), as for the response's factors."""
    wanted = level_names(level)
    return list(groups) if wanted is None else [g for g in groups if g.name in wanted]


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
    check_new_groups(new_groups)
    groups = included_groups(design, level)
    nd = rows_of(design, newdata)
    names = Names()
    b = posterior[names.b].transpose("chain", "draw", names.term_dim).to_numpy()
    eta = np.einsum("cdp,np->cdn", b, nd.X)
    if newdata is None:
        eta = eta + imputed_shift(posterior, design, b)
    if nd.offset is not None:
        eta = eta + nd.offset
    check_new_groups(new_groups, groups, nd.new_levels)
    rng = np.random.default_rng(seed)
    for g in groups:
        r = effect_draws(
            posterior, g, nd.group_index[g.name], nd.group_labels.get(g.name, []), new_groups, rng
        )
        eta = eta + np.einsum("cdnk,nk->cdn", r, nd.group_Z[g.name])
    if latent_residuals(design):  # a glmm's latent residual process (residuals: ar1 | car1)
        eta = eta + latent_draws(
            posterior, design, newdata, level=level, new_groups=new_groups, rng=rng
        )
    return eta, nd.index


def imputed_shift(posterior: xr.Dataset, design: Design, b: np.ndarray) -> np.ndarray | float:
    """What the imputed covariates' sampled values add to the fitted rows' linear predictor
    (their cells hold the observed mean in ``design.X``): ``(x − fill) · (D @ b)`` at the
    rows of the missing cells, shape (chain, draw, rows); 0 without imputed covariates."""
    plan = getattr(design, "imputation", None)
    if plan is None or not plan.covariates:
        return 0.0
    shift = np.zeros((*b.shape[:2], design.n))
    for cov in plan.covariates:
        name = Names.missing_var(cov.column)
        if name not in posterior or not len(cov.rows):
            continue
        x = posterior[name].transpose("chain", "draw", ...).to_numpy()
        shift[:, :, cov.rows] += (x - cov.fill) * np.einsum("cdp,kp->cdk", b, cov.D)
    return shift


def predict_draws(
    posterior: xr.Dataset,
    design: ModelDesign,
    newdata: pd.DataFrame | None,
    *,
    kind: Literal["link", "mean", "response"] = "mean",
    level: Level = None,
    new_groups: NewGroups = "error",
    seed: int | None = None,
) -> xr.DataArray:
    """Predictive draws (chain, draw, obs) of the linear predictor, the mean, or new responses.

    A nonlinear design's predictions are made by
    :func:`mixedbayes.results.nonlinear_predict.nonlinear_predict_draws`.
    """
    import xarray as xr

    from mixedbayes.design.nonlinear import NonlinearDesign

    if kind not in ("link", "mean", "response"):
        raise SpecError(
            f"unknown kind {kind!r}.", where="kind", hint="use 'link', 'mean' or 'response'."
        )
    if isinstance(design, NonlinearDesign):
        from mixedbayes.results.nonlinear_predict import nonlinear_predict_draws

        return nonlinear_predict_draws(
            posterior, design, newdata, kind=kind, level=level, new_groups=new_groups, seed=seed
        )
    assert isinstance(design, Design)
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
        params = family_params(
            posterior,
            design,
            nd,
            level=level,
            new_groups=new_groups,
            seed=int(noise_seed) + 1,
            mu=mu,
        )
        values = design.family.mean_numpy(mu, params, nd.trials)
        if kind == "response" and observation_residuals(design):
            # correlated residuals: drawn jointly within each subject (residual_draws.py),
            # scaled by each row's SD when it varies (sigma:, variance:)
            from mixedbayes.results.residual_draws import residual_response

            scale = params.get("sigma") if row_varying_sigma(design) else None
            values = residual_response(posterior, design, newdata, eta, int(noise_seed), scale)
        elif kind == "response":
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
