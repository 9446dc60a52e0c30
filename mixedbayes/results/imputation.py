"""The ``imputed`` group of a fit that imputes by sampling (the spec's ``missing:``).

One variable per imputed column, named after the column (the response's by
:func:`~mixedbayes.compile.regression.response_var_name`), dims ``(chain, draw,
"<column>_row")`` whose coordinate is the user's row labels of the missing cells:

- a continuous covariate: the sampled parameters ``<column>_missing`` (the cells of rows in
  the likelihood) and, for rows with a missing response, draws from its submodel's
  posterior predictive (those cells inform nothing, so drawing them afterwards is the same
  as sampling them);
- the response: posterior predictive draws of the rows kept out of the likelihood, each at
  its row's covariates (an imputed covariate at its drawn value) and group effects (a level
  seen only in these rows drawn from the fitted group-level distribution).

:func:`imputed_table` makes the tidy table of ``fit.imputed()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes.naming import Names
from mixedbayes.results.group_draws import effect_draws
from mixedbayes.results.predict import family_params, linear_predictor_draws

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.design import Design
    from mixedbayes.design.imputation import ImputedCovariate

__all__ = ["IMPUTED_GROUP", "add_imputed", "imputed_draws", "imputed_table"]

#: The DataTree group holding the imputed values.
IMPUTED_GROUP = "imputed"


def _submodel_draws(
    posterior: xr.Dataset, cov: ImputedCovariate, frame: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the covariate at rows ``frame`` from its submodel's posterior predictive,
    shape (chain, draw, rows)."""
    sub = cov.sub
    names = Names(cov.column)
    nd = sub.new_data(frame)
    b = posterior[names.b].transpose("chain", "draw", names.term_dim).to_numpy()
    eta = np.einsum("cdp,np->cdn", b, nd.X)
    for g in sub.groups:
        r = effect_draws(
            posterior, g, nd.group_index[g.name], nd.group_labels.get(g.name, []), "sample", rng
        )
        eta = eta + np.einsum("cdnk,nk->cdn", r, nd.group_Z[g.name])
    params = {
        p.name: posterior[names.param(p.name)].transpose("chain", "draw").to_numpy()[..., None]
        for p in sub.family.params
    }
    mu = sub.link.inverse_numpy(eta)
    return np.asarray(sub.family.simulate(mu, params, rng, None), dtype=float)


def imputed_draws(
    posterior: xr.Dataset, design: Design, seed: int | None = None
) -> dict[str, tuple[pd.Index, np.ndarray]]:
    """By imputed column, the row labels of its missing cells and their draws
    (chain, draw, cells), in the data's row order."""
    from mixedbayes.compile.regression import response_var_name

    plan = design.imputation
    if plan is None:
        return {}
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[pd.Index, np.ndarray]] = {}
    frame = plan.response_frame
    predicted: dict[str, np.ndarray] = {}
    for cov in plan.covariates:
        parts, labels = [], []
        if len(cov.rows):
            name = Names.missing_var(cov.column)
            parts.append(posterior[name].transpose("chain", "draw", ...).to_numpy())
            labels.append(cov.labels)
        if frame is not None and len(cov.predictive_rows):
            rows = frame.iloc[cov.predictive_rows]
            predicted[cov.column] = _submodel_draws(posterior, cov, rows, rng)
            parts.append(predicted[cov.column])
            labels.append(rows.index)
        if parts:
            out[cov.column] = _in_data_order(design, labels, parts)
    if frame is not None and len(frame):
        values = _response_draws(posterior, design, frame, predicted, rng)
        out[response_var_name(design)] = (frame.index, values)
    return out


def _in_data_order(
    design: Design, labels: list[pd.Index], parts: list[np.ndarray]
) -> tuple[pd.Index, np.ndarray]:
    index = labels[0].append(labels[1:]) if len(labels) > 1 else labels[0]
    values = np.concatenate(parts, axis=-1)
    order = np.argsort(design.source.index.get_indexer(index), kind="stable")
    return index[order], values[..., order]


def _response_draws(
    posterior: xr.Dataset,
    design: Design,
    frame: pd.DataFrame,
    covariates: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Posterior predictive draws of the response at the rows ``frame`` (chain, draw, rows)."""
    from mixedbayes.design.imputation import affine_columns

    plan = design.imputation
    assert plan is not None
    group_seed, noise_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    eta, _ = linear_predictor_draws(posterior, design, frame, new_groups="sample", seed=group_seed)
    b = posterior[Names().b].transpose("chain", "draw", Names().term_dim).to_numpy()
    for cov in plan.covariates:
        x = covariates.get(cov.column)
        if x is None:
            continue
        rows = cov.predictive_rows
        D = affine_columns(design, frame.iloc[rows], cov.column)
        eta[:, :, rows] += (x - cov.fill) * np.einsum("cdp,kp->cdk", b, D)
    nd = design.new_data(frame)
    params = family_params(posterior, design, nd, new_groups="sample", seed=noise_seed + 1)
    mu = design.link.inverse_numpy(eta)
    return np.asarray(
        design.family.simulate(mu, params, np.random.default_rng(noise_seed), nd.trials),
        dtype=float,
    )


def add_imputed(idata: Any, design: Any, seed: int | None) -> Any:
    """Add the ``imputed`` group to ``idata`` (nothing when the design imputes nothing)."""
    import xarray as xr

    draws = imputed_draws(idata["posterior"].to_dataset(), design, seed)
    if not draws:
        return idata
    post = idata["posterior"]
    data_vars = {}
    coords: dict[str, Any] = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
    for column, (labels, values) in draws.items():
        dim = Names.imputed_dim(column)
        coords[dim] = list(labels)
        data_vars[column] = (("chain", "draw", dim), values)
    idata[IMPUTED_GROUP] = xr.DataTree(xr.Dataset(data_vars, coords=coords))
    return idata


def imputed_table(idata: Any, prob: float = 0.9) -> pd.DataFrame:
    """A tidy table of the imputed values: ``column``, ``row`` (the data's label), ``mean``,
    ``sd``, ``lower``, ``upper`` (central ``prob`` interval); empty without imputation."""
    columns = ["column", "row", "mean", "sd", "lower", "upper"]
    if IMPUTED_GROUP not in idata.children:
        return pd.DataFrame(columns=columns)
    ds = idata[IMPUTED_GROUP].to_dataset()
    tail = (1 - prob) / 2
    records = []
    for name, da in ds.data_vars.items():
        dim = next(d for d in da.dims if d not in ("chain", "draw"))
        values = da.transpose("chain", "draw", dim).to_numpy().reshape(-1, da.sizes[dim])
        lo, hi = np.quantile(values, [tail, 1 - tail], axis=0)
        for j, label in enumerate(da[dim].to_numpy()):
            records.append(
                {
                    "column": str(name),
                    "row": label,
                    "mean": float(values[:, j].mean()),
                    "sd": float(values[:, j].std(ddof=1)) if len(values) > 1 else np.nan,
                    "lower": float(lo[j]),
                    "upper": float(hi[j]),
                }
            )
    return pd.DataFrame.from_records(records, columns=columns)
