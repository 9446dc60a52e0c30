"""Bayesian R², marginal and conditional, one value per posterior draw.

Two definitions, both computed per draw so that R² has a posterior (an estimate, an sd and
an interval):

- **Gelman, Goodrich, Gabry & Vehtari (2019)**, ``method="gelman"`` (the default for
  Gaussian identity-link models): with ``f`` the fitted means of the observed rows,
  ``R² = Var(f) / (Var(f) + σ²)`` (variances over the rows; the model-based residual
  variance σ²). *Conditional* R² uses the fitted means with every group effect;
  *marginal* R² the variance of the fixed-effect part only over the same denominator (the
  share of the modelled variance the fixed effects explain).
- **Nakagawa & Schielzeth (2013), Nakagawa, Johnson & Schielzeth (2017)**,
  ``method="nakagawa"`` (the default for other families), on the latent (link) scale:
  ``R²m = σ²_f / (σ²_f + σ²_r + σ²_d)`` and ``R²c = (σ²_f + σ²_r) / (σ²_f + σ²_r + σ²_d)``
  with σ²_f the variance of the fixed-effect linear predictor over the rows, σ²_r the
  group-level variance (for random slopes the mean over rows of ``z Σ zᵀ``, Johnson 2014)
  and σ²_d the distribution-specific variance (:func:`distribution_variance`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mixedbayes.design.variance import row_varying_sigma
from mixedbayes.errors import SpecError
from mixedbayes.results.predict import (
    family_params,
    group_covariance,
    linear_predictor_draws,
    rows_of,
)

if TYPE_CHECKING:
    import xarray as xr

    from mixedbayes.design import Design
    from mixedbayes.results.protocols import FitLike

__all__ = ["bayes_r2", "distribution_variance", "group_variance"]

Method = Literal["gelman", "nakagawa"]

#: Latent residual variance of the binary links (Nakagawa et al. 2017, table 1).
_BINARY_LINKS = {
    "logit": (np.pi**2 / 3, "pi^2/3"),
    "probit": (1.0, "1"),
    "cloglog": (np.pi**2 / 6, "pi^2/6"),
}


def distribution_variance(
    design: Design, posterior: xr.Dataset, mean: np.ndarray | float
) -> tuple[np.ndarray, str]:
    """Draws of the distribution-specific (residual) variance on the link scale, and how.

    Parameters
    ----------
    design : Design
    posterior : xarray.Dataset
    mean : array or float
        The expected response λ (per draw, or one number) that the lognormal approximation
        of count families needs.

    Returns
    -------
    (ndarray, str)
        One value per draw (chain-major) and the formula used: ``sigma^2`` (families with
        a ``sigma``: Gaussian, Student, lognormal); ``pi^2/3`` (logit), ``1`` (probit),
        ``pi^2/6`` (cloglog); ``log(1 + 1/λ)`` (Poisson) and ``log(1 + 1/λ + 1/α)``
        (negative binomial) with a log link (the lognormal approximation); ``trigamma(α)``
        (gamma, log link). NaN where none is defined.
    """
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    params = {p.name for p in design.family.params}
    link = design.link.name
    lam = np.broadcast_to(np.asarray(mean, dtype=float), (n_draws,))

    def draws(name: str) -> np.ndarray:
        return np.asarray(posterior[name].transpose("chain", "draw").to_numpy()).ravel()

    if "sigma" in params and "sigma" in posterior and not row_varying_sigma(design):
        return draws("sigma") ** 2, "sigma^2"
    if link in _BINARY_LINKS:
        value, text = _BINARY_LINKS[link]
        return np.full(n_draws, value), f"{text} (latent {link} scale)"
    if link == "log" and design.family.discrete:
        inv = 1.0 / np.maximum(lam, 1e-12)
        if "alpha" in params and "alpha" in posterior:
            return (
                np.log1p(inv + 1.0 / draws("alpha")),
                "log(1 + 1/lambda + 1/alpha) (lognormal approximation, Nakagawa et al. 2017)",
            )
        return np.log1p(inv), "log(1 + 1/lambda) (lognormal approximation, Nakagawa et al. 2017)"
    if link == "log" and "alpha" in params and "alpha" in posterior:
        from scipy.special import polygamma

        return polygamma(1, draws("alpha")), "trigamma(alpha) (Nakagawa et al. 2017)"
    return np.full(n_draws, np.nan), f"not defined for {design.family.name}/{link}"


def group_variance(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """Draws (chain, draw, rows) of the group-level variance of each observed row's linear
    predictor, ``Σ_g z_i Σ_g z_iᵀ`` (for intercept-only factors ``Σ_g sd_g²``)."""
    c, d = posterior.sizes["chain"], posterior.sizes["draw"]
    out = np.zeros((c, d, design.n))
    for g in design.groups:
        cov = group_covariance(posterior, g)
        out += np.einsum("nk,cdkl,nl->cdn", g.Z, cov, g.Z)
    return out


def _summary(
    label: str, values: np.ndarray, prob: float, method: str, note: str
) -> dict[str, object]:
    q = (1 - prob) / 2
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        ok = np.full(2, np.nan)
    return {
        "r2": label,
        "estimate": float(np.mean(ok)),
        "sd": float(np.std(ok, ddof=1)) if ok.size > 1 else 0.0,
        "lower": float(np.quantile(ok, q)),
        "upper": float(np.quantile(ok, 1 - q)),
        "method": method,
        "residual_variance": note,
    }


def default_method(design: Design) -> Method:
    """``"gelman"`` for Gaussian identity-link models, ``"nakagawa"`` otherwise."""
    gaussian = design.family.name == "gaussian" and design.link.name == "identity"
    return "gelman" if gaussian else "nakagawa"


def r2_draws(fit: FitLike, method: Method) -> tuple[dict[str, np.ndarray], str]:
    """Per-draw marginal and conditional R² (flattened, chain-major) and the residual
    variance used (see the module docstring)."""
    post = fit.posterior
    design = fit.design
    offset = design.offset if design.offset is not None else 0.0
    fixed, _ = linear_predictor_draws(post, design, None, level="population")
    fixed = fixed - offset  # an offset is not variance the model explains
    if method == "gelman":
        eta, _ = linear_predictor_draws(post, design, None)
        m = design.link.inverse_numpy(eta)
        params = family_params(post, design, rows_of(design, None), mu=m)
        mu = design.family.mean_numpy(m, params, design.trials)
        mu0 = design.family.mean_numpy(
            design.link.inverse_numpy(fixed + offset), params, design.trials
        )
        var_fit = mu.var(axis=-1).ravel()
        var_f = mu0.var(axis=-1).ravel()
        if design.link.name == "identity" and "sigma" in post and not row_varying_sigma(design):
            resid, note = distribution_variance(design, post, np.nan)
        else:  # residual-based (Gelman et al. 2019, section 3)
            resid = (design.y - mu).var(axis=-1).ravel()
            note = "var(y - fitted) (residual-based)"
        total = var_fit + resid
        return {"marginal": var_f / total, "conditional": var_fit / total}, note
    var_r_rows = group_variance(post, design)
    var_f = fixed.var(axis=-1).ravel()
    var_r = var_r_rows.mean(axis=-1).ravel()
    lam: np.ndarray | float = np.nan
    if design.link.name == "log":
        lam = np.exp(fixed + offset + var_r_rows / 2).mean(axis=-1).ravel()
    resid, note = distribution_variance(design, post, lam)
    total = var_f + var_r + resid
    return {"marginal": var_f / total, "conditional": (var_f + var_r) / total}, note


_LABELS = {
    "gelman": "Gelman et al. 2019",
    "nakagawa": "Nakagawa & Schielzeth 2013 / Nakagawa et al. 2017",
}


def bayes_r2(fit: FitLike, *, method: Method | None = None, prob: float = 0.95) -> pd.DataFrame:
    """Bayesian R², marginal (fixed effects) and conditional (fixed and group effects).

    Parameters
    ----------
    fit : Fit
    method : {"gelman", "nakagawa"}, optional
        Gelman et al. (2019), the default for Gaussian identity-link models, or Nakagawa &
        Schielzeth (2013) / Nakagawa et al. (2017) on the latent scale, the default
        otherwise (see the module docstring).
    prob : float
        Mass of the central interval.

    Returns
    -------
    DataFrame
        Rows ``marginal`` and ``conditional``; columns ``r2``, ``estimate`` (posterior
        mean), ``sd``, ``lower``, ``upper``, ``method`` and ``residual_variance`` (the
        formula of the residual variance used). ``attrs["draws"]`` holds the draws.

    Raises
    ------
    SpecError
        For an unknown ``method``.
    """
    used = default_method(fit.design) if method is None else method
    if used not in _LABELS:
        raise SpecError(
            f"unknown R² method {used!r}.", where="method", hint="use 'gelman' or 'nakagawa'."
        )
    values, note = r2_draws(fit, used)
    out = pd.DataFrame([_summary(k, v, prob, _LABELS[used], note) for k, v in values.items()])
    out.attrs["prob"] = prob
    out.attrs["draws"] = values
    return out
