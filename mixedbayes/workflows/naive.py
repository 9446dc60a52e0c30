"""Naive (pooled) versus mixed: what ignoring the grouping does to the inference.

The pooled model drops every random-effect bar and keeps the fixed part. On clustered data
its intervals for between-cluster effects are too narrow: observations in a cluster are not
independent, so the data carry fewer independent pieces of information than rows. The
comparison reports the ICC of each grouping factor (from the mixed posterior), Kish's design
effect ``deff = 1 + (m − 1)·ICC`` with ``m`` the mean cluster size, the effective sample size
``n / deff``, and, per fixed effect, how much narrower the naive interval is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixedbayes import api
from mixedbayes.design.formulae import formula_variables
from mixedbayes.naming import Names
from mixedbayes.results.r2 import distribution_variance
from mixedbayes.spec import load_spec
from mixedbayes.spec.formula import fixed_formula, split_formula

if TYPE_CHECKING:
    from mixedbayes.api import SpecLike
    from mixedbayes.results import Fit
    from mixedbayes.results.protocols import FitLike

__all__ = ["NaiveComparison", "compare_naive", "intraclass_correlation"]


@dataclass(frozen=True, eq=False)
class NaiveComparison:
    """Mixed and pooled fits side by side.

    Attributes
    ----------
    mixed, naive : Fit
    effects : DataFrame
        Per fixed effect: mixed and naive mean and interval, ``width_ratio`` (naive/mixed) and
        ``narrower_pct`` (how much narrower the naive interval is, %).
    icc : DataFrame
        Per grouping factor: ICC (posterior mean and interval), mean cluster size, design
        effect and effective sample size.
    """

    mixed: Fit
    naive: Fit
    effects: pd.DataFrame
    icc: pd.DataFrame

    def __str__(self) -> str:
        lines = ["Naive (pooled) vs mixed model", "", "ICC and design effect:"]
        lines.append(self.icc.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        lines += ["", "Fixed effects (intervals):"]
        lines.append(self.effects.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        return "\n".join(lines)


def residual_variance(fit: FitLike) -> tuple[np.ndarray, str]:
    """Draws of the residual variance on the latent (link) scale, and how it was obtained.

    :func:`mixedbayes.results.r2.distribution_variance` (the distribution-specific variances
    of Nakagawa, Johnson & Schielzeth 2017) with λ = mean(y) for log-link count families.
    """
    return distribution_variance(fit.design, fit.posterior, float(np.mean(fit.design.y)))


def intraclass_correlation(fit: FitLike) -> pd.DataFrame:
    """ICC of each grouping factor's intercept: var_g / (Σ intercept variances + residual).

    The residual variance is on the latent scale (:func:`residual_variance`); the ICC has an
    interval because it is computed per posterior draw.
    """
    post = fit.posterior
    design = fit.design
    resid, how = residual_variance(fit)
    variances = {}
    for g in design.groups:
        if "Intercept" in g.terms:
            sd = post[Names.sd(g.name)].sel({g.term_dim: "Intercept"}).to_numpy().ravel()
            variances[g.name] = sd**2
    total = resid + sum(variances.values(), np.zeros_like(resid))
    rows = []
    n = design.n
    for g in design.groups:
        if g.name not in variances:
            continue
        icc = variances[g.name] / total
        m = n / g.n_levels
        deff = 1 + (m - 1) * float(icc.mean())
        rows.append(
            {
                "group": g.name,
                "icc": float(icc.mean()),
                "icc_lower": float(np.quantile(icc, 0.025)),
                "icc_upper": float(np.quantile(icc, 0.975)),
                "levels": g.n_levels,
                "mean_cluster_size": m,
                "design_effect": deff,
                "effective_n": n / deff,
                "residual_variance": how,
            }
        )
    return pd.DataFrame(rows)


def compare_naive(
    spec: SpecLike, data: pd.DataFrame | None = None, *, prob: float = 0.95, **fit_kwargs: Any
) -> NaiveComparison:
    """Fit the mixed model and the pooled model that ignores the grouping, side by side.

    Parameters
    ----------
    spec : ModelSpec, dict, YAML path or text
        The mixed model.
    data : DataFrame, optional
    prob : float
        Interval mass.
    **fit_kwargs
        Passed to :func:`mixedbayes.fit` for both fits (draws, chains, seed, ...).

    Returns
    -------
    NaiveComparison
    """
    model_spec, frame = api.spec_and_data(spec, data)
    formula = model_spec.formula  # type: ignore[attr-defined]
    naive_data = model_spec.model_dump(by_alias=True)
    pooled = fixed_formula(formula)
    pooled_columns = formula_variables(split_formula(pooled))[1]
    naive_data.update(
        formula=pooled,
        contrasts={k: v for k, v in naive_data["contrasts"].items() if k in pooled_columns},
        priors=[p for p in naive_data["priors"] if p["class"] not in ("sd", "cor")],
        group_effects={},
        name=(model_spec.name or "model") + " (naive)",
    )
    naive_spec = load_spec(naive_data)
    mixed_fit = api.fit(model_spec, frame, **fit_kwargs)
    naive_fit = api.fit(naive_spec, frame, **fit_kwargs)
    a = mixed_fit.summary(prob).set_index("parameter")
    b = naive_fit.summary(prob).set_index("parameter")
    rows = []
    for name in [p for p in a.index if p.startswith("b[")]:
        wm = a.loc[name, "upper"] - a.loc[name, "lower"]
        wn = b.loc[name, "upper"] - b.loc[name, "lower"]
        rows.append(
            {
                "parameter": name,
                "mixed_mean": a.loc[name, "mean"],
                "mixed_lower": a.loc[name, "lower"],
                "mixed_upper": a.loc[name, "upper"],
                "naive_mean": b.loc[name, "mean"],
                "naive_lower": b.loc[name, "lower"],
                "naive_upper": b.loc[name, "upper"],
                "width_ratio": wn / wm,
                "narrower_pct": 100 * (1 - wn / wm),
            }
        )
    return NaiveComparison(
        mixed_fit, naive_fit, pd.DataFrame(rows), intraclass_correlation(mixed_fit)
    )
