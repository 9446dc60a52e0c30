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
  seen only in these rows drawn from the fitted group-level distribution);
- a discrete covariate summed out of the model: classes drawn from each cell's posterior
  class probabilities, and those probabilities, ``<column>_prob``: of class 1 for a binary
  covariate, of every level (an extra dim ``<column>_class``) for a categorical one, whose
  draws are its level labels.

:func:`imputed_table` makes the tidy table of ``fit.imputed()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from mixedbayes.naming import Names
from mixedbayes.results.group_draws import effect_draws
from mixedbayes.results.predict import family_params, linear_predictor_draws, rows_of

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design.design import Design
    from mixedbayes.design.imputation import ImputedCovariate

__all__ = [
    "IMPUTED_GROUP",
    "ResponseDraws",
    "add_imputed",
    "class_log_weights",
    "imputed_draws",
    "imputed_table",
    "summed_out_log_likelihood",
]

#: The DataTree group holding the imputed values.
IMPUTED_GROUP = "imputed"


def _submodel_mean(
    posterior: xr.Dataset,
    cov: ImputedCovariate,
    frame: pd.DataFrame | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The submodel's mean of the covariate at rows ``frame`` (its own rows when None) and
    its family's parameters, (chain, draw, rows) and (chain, draw, 1)."""
    sub = cov.sub
    names = Names(cov.column)
    nd = rows_of(sub, frame)
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
    return sub.link.inverse_numpy(eta), params


def _submodel_draws(
    posterior: xr.Dataset, cov: ImputedCovariate, frame: pd.DataFrame, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the covariate at rows ``frame`` from its submodel's posterior predictive,
    shape (chain, draw, rows)."""
    mu, params = _submodel_mean(posterior, cov, frame, rng)
    return np.asarray(cov.sub.family.simulate(mu, params, rng, None), dtype=float)


def _class_logp(
    posterior: xr.Dataset,
    cov: ImputedCovariate,
    frame: pd.DataFrame | None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The submodel's log-probability of each class of a discrete covariate at rows
    ``frame`` (its missing cells when None), (classes, chain, draw, rows)."""
    if cov.categorical:
        X = cov.sub.X[cov.sub_missing] if frame is None else rows_of(cov.sub, frame).X
        B = posterior[Names(cov.column).b].transpose("chain", "draw", ...).to_numpy()
        eta = np.einsum("cdpk,np->kcdn", B, X)
        return eta - logsumexp(eta, axis=0, keepdims=True)
    mu_s, params_s = _submodel_mean(posterior, cov, frame, rng or np.random.default_rng(0))
    p = mu_s if frame is not None else mu_s[..., cov.sub_missing]
    n = p.shape[-1]
    fam_s = cov.sub.family
    return np.stack([fam_s.logp_reference(np.full(n, c), p, params_s, None) for c in (0.0, 1.0)])


def class_log_weights(posterior: xr.Dataset, design: Design, cov: ImputedCovariate) -> np.ndarray:
    """For a summed-out discrete covariate, ``log p(k | submodel) + log p(y | k)`` of its
    missing cells for each class k, (classes, chain, draw, cells): what the model's
    potential sums (their log-sum-exp over the classes is the rows' marginal
    log-likelihood, their softmax the class probabilities given everything)."""
    rows = cov.rows
    lp = _class_logp(posterior, cov, None)
    eta_all, _ = linear_predictor_draws(posterior, design, None)
    eta0 = eta_all[..., rows]
    b = posterior[Names().b].transpose("chain", "draw", Names().term_dim).to_numpy()
    class_D, _ = cov.class_changes()
    eta = eta0[None] + np.einsum("cdp,knp->kcdn", b, class_D)
    nd = rows_of(design, None)
    params = {
        k: v if v.shape[-1] == 1 else v[..., rows]
        for k, v in family_params(
            posterior, design, nd, mu=design.link.inverse_numpy(eta_all)
        ).items()
    }
    trials = None if nd.trials is None else nd.trials[rows]
    y = np.asarray(design.y)[rows]
    with np.errstate(all="ignore"):
        ll = [
            design.family.logp_reference(y, design.link.inverse_numpy(e), params, trials)
            for e in eta
        ]
    return lp + np.stack(ll)


def summed_out_log_likelihood(posterior: xr.Dataset, design: Design) -> dict[int, np.ndarray]:
    """The marginal log-likelihood of the rows whose discrete covariate was summed out, by
    row position: ``log Σ_k p(k | submodel) p(y | k)`` (chain, draw)."""
    plan = getattr(design, "imputation", None)
    out: dict[int, np.ndarray] = {}
    for cov in () if plan is None else plan.covariates:
        if cov.spec.discrete and len(cov.rows):
            total = logsumexp(class_log_weights(posterior, design, cov), axis=0)
            for j, row in enumerate(cov.rows):
                out[int(row)] = total[..., j]
    return out


#: Draws of the response at the rows with a missing response (``plan.response_frame``),
#: given the posterior, the design, those rows, the draws of the imputed covariates' cells
#: among them (by column) and a generator: (chain, draw, rows).
ResponseDraws = Callable[
    [Any, Any, pd.DataFrame, dict[str, np.ndarray], np.random.Generator], np.ndarray
]


def imputed_draws(
    posterior: xr.Dataset,
    design: Any,
    seed: int | None = None,
    response_draws: ResponseDraws | None = None,
) -> dict[str, tuple[str, pd.Index, np.ndarray]]:
    """By variable of the ``imputed`` group, its dim, the row labels of the missing cells
    and their draws (chain, draw, cells), in the data's row order: per imputed column its
    values; per summed-out binary column also ``<column>_prob``, the probability of class 1
    (given the data and each draw's parameters; the submodel's alone in rows with a missing
    response).

    ``design`` is any design with an ``imputation`` plan; ``response_draws`` draws its
    response at the rows kept out of the likelihood (default: a regression design's
    posterior predictive; a nonlinear design's is
    :func:`mixedbayes.results.nonlinear_imputation.nonlinear_response_draws`).
    """
    from mixedbayes.compile.regression import response_var_name

    plan = getattr(design, "imputation", None)
    if plan is None:
        return {}
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[str, pd.Index, np.ndarray]] = {}
    frame = plan.response_frame
    predicted: dict[str, np.ndarray] = {}
    for cov in plan.covariates:
        parts, probs, labels = [], [], []
        if len(cov.rows):
            labels.append(cov.labels)
            if cov.spec.discrete:
                w = class_log_weights(posterior, design, cov)
                prob = np.exp(w - logsumexp(w, axis=0, keepdims=True))
                probs.append(_class_probs(cov, prob))
                parts.append(_draw_classes(cov, prob, rng))
            else:
                name = Names.missing_var(cov.column)
                parts.append(posterior[name].transpose("chain", "draw", ...).to_numpy())
        if frame is not None and len(cov.predictive_rows):
            rows = frame.iloc[cov.predictive_rows]
            if cov.spec.discrete:
                prob = np.exp(_class_logp(posterior, cov, _sub_rows(cov, rows), rng))
                predicted[cov.column] = _class_index(prob, rng)
                parts.append(_draw_classes(cov, prob, predicted[cov.column]))
                probs.append(_class_probs(cov, prob))
            else:
                mu, params = _submodel_mean(posterior, cov, rows, rng)
                predicted[cov.column] = np.asarray(
                    cov.sub.family.simulate(mu, params, rng, None), dtype=float
                )
                parts.append(predicted[cov.column])
            labels.append(rows.index)
        dim = Names.imputed_dim(cov.column)
        if parts:
            out[cov.column] = (dim, *_in_data_order(design, labels, parts))
        if cov.spec.discrete and probs:
            out[Names.prob_var(cov.column)] = (dim, *_in_data_order(design, labels, probs))
    if frame is not None and len(frame):
        values = (response_draws or _response_draws)(posterior, design, frame, predicted, rng)
        name = response_var_name(design)
        out[name] = (Names.imputed_dim(name), frame.index, values)
    return out


def _class_index(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A class drawn per cell from ``prob`` (classes, ...): its position, shape (...)."""
    u = rng.random(prob.shape[1:])
    return np.minimum((np.cumsum(prob, axis=0) < u).sum(axis=0), len(prob) - 1)


def _draw_classes(
    cov: ImputedCovariate, prob: np.ndarray, drawn: np.random.Generator | np.ndarray
) -> np.ndarray:
    """Classes drawn from ``prob`` (or the positions ``drawn``): 0./1. for a binary
    covariate, the level labels for a categorical one."""
    index = _class_index(prob, drawn) if isinstance(drawn, np.random.Generator) else drawn
    if cov.categorical:
        return np.asarray(cov.levels, dtype=object)[index]
    return index.astype(float)


def _class_probs(cov: ImputedCovariate, prob: np.ndarray) -> np.ndarray:
    """What ``<column>_prob`` holds: class 1's probability (binary), every level's, last
    (categorical)."""
    return np.moveaxis(prob, 0, -1) if cov.categorical else prob[1]


def _sub_rows(cov: ImputedCovariate, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the submodel's design reads them (a categorical column as its indicator)."""
    if not cov.categorical:
        return rows
    from mixedbayes.design.imputation_discrete import indicator_frame

    return indicator_frame(rows.assign(**{cov.column: np.nan}), cov.column, cov.levels)


def _in_data_order(
    design: Design, labels: list[pd.Index], parts: list[np.ndarray]
) -> tuple[pd.Index, np.ndarray]:
    index = labels[0].append(labels[1:]) if len(labels) > 1 else labels[0]
    values = np.concatenate(parts, axis=2)  # (chain, draw, rows[, classes])
    order = np.argsort(design.source.index.get_indexer(index), kind="stable")
    return index[order], values[:, :, order]


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
        if cov.spec.discrete:  # x: each draw's class (position)
            class_D = _class_changes(design, frame.iloc[rows], cov)
            shift = np.einsum("cdp,knp->kcdn", b, class_D)
            eta[:, :, rows] += np.take_along_axis(shift, x[None].astype(int), axis=0)[0]
            continue
        D = affine_columns(design, frame.iloc[rows], cov.column)
        eta[:, :, rows] += (x - cov.fill) * np.einsum("cdp,kp->cdk", b, D)
    nd = design.new_data(frame)
    mu = design.link.inverse_numpy(eta)
    params = family_params(posterior, design, nd, new_groups="sample", seed=noise_seed + 1, mu=mu)
    return np.asarray(
        design.family.simulate(mu, params, np.random.default_rng(noise_seed), nd.trials),
        dtype=float,
    )


def _class_changes(design: Design, frame: pd.DataFrame, cov: ImputedCovariate) -> np.ndarray:
    """The change of ``design``'s columns at rows ``frame`` from the fill's class to each
    class of a discrete covariate, (classes, rows, p)."""
    from mixedbayes.design.imputation_discrete import class_changes

    classes = list(cov.levels) if cov.categorical else [0.0, 1.0]
    return class_changes(
        design._matrices.common,
        frame,
        cov.column,
        classes,
        cov.fill,
        coded=design.coding.new_data,
        n_columns=len(design.fixed_terms),
    )


def add_imputed(
    idata: Any,
    design: Any,
    seed: int | None,
    draw: Callable[[Any, Any, int | None], dict[str, tuple[str, pd.Index, np.ndarray]]]
    | None = None,
) -> Any:
    """Add the ``imputed`` group to ``idata`` (nothing when the design imputes nothing).

    ``draw(posterior, design, seed)`` makes its variables (the design's kind's
    ``imputed_draws``; default :func:`imputed_draws`, a regression design's)."""
    import xarray as xr

    draws = (draw or imputed_draws)(idata["posterior"].to_dataset(), design, seed)
    if not draws:
        return idata
    post = idata["posterior"]
    data_vars = {}
    coords: dict[str, Any] = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
    plan = getattr(design, "imputation", None)
    levels = {
        Names.prob_var(c.column): c.levels for c in getattr(plan, "covariates", ()) if c.levels
    }
    for name, (dim, labels, values) in draws.items():
        coords[dim] = list(labels)
        dims: tuple[str, ...] = ("chain", "draw", dim)
        if values.ndim == 4:  # a categorical covariate's level probabilities
            class_dim = name.removesuffix("_prob") + "_class"
            coords[class_dim] = list(levels[name])
            dims = (*dims, class_dim)
        data_vars[name] = (dims, values)
    idata[IMPUTED_GROUP] = xr.DataTree(xr.Dataset(data_vars, coords=coords))
    return idata


def imputed_table(idata: Any, prob: float = 0.9) -> pd.DataFrame:
    """A tidy table of the imputed values: ``column``, ``row`` (the data's label), ``mean``,
    ``sd``, ``lower``, ``upper`` (central ``prob`` interval), ``probability`` (a summed-out
    binary covariate: the posterior probability of class 1; a categorical one: that of its
    most probable level; NaN otherwise), ``class`` (a categorical covariate: its most
    probable level, whose row has no mean, sd or interval; None otherwise); empty without
    imputation."""
    columns = ["column", "row", "mean", "sd", "lower", "upper", "probability", "class"]
    if IMPUTED_GROUP not in idata.children:
        return pd.DataFrame(columns=columns)
    ds = idata[IMPUTED_GROUP].to_dataset()
    tail = (1 - prob) / 2
    records = []
    prob_names = {Names.prob_var(str(name)) for name in ds.data_vars} & set(ds.data_vars)
    for name, da in ds.data_vars.items():
        if name in prob_names:
            continue
        dim = next(d for d in da.dims if d not in ("chain", "draw"))
        p_name = Names.prob_var(str(name))
        class1 = ds[p_name].mean(("chain", "draw")).to_numpy() if p_name in prob_names else None
        if class1 is not None and class1.ndim == 2:  # a categorical covariate's levels
            levels = ds[p_name][ds[p_name].dims[-1]].to_numpy()
            for j, label in enumerate(da[dim].to_numpy()):
                k = int(np.argmax(class1[j]))
                records.append(
                    {"column": str(name), "row": label, "probability": float(class1[j, k])}
                    | {"mean": np.nan, "sd": np.nan, "lower": np.nan, "upper": np.nan}
                    | {"class": str(levels[k])}
                )
            continue
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
                    "probability": np.nan if class1 is None else float(class1[j]),
                    "class": None,
                }
            )
    return pd.DataFrame.from_records(records, columns=columns)
