"""Rubin's rules: pool one scalar's estimates and variances over ``m`` imputations.

Pure NumPy/SciPy, no model objects: :class:`~mixedbayes.results.multiple.MultipleFit` feeds it
the posterior means and variances of every scalar parameter of each imputation's fit.

The formulas are those of mice's ``pool()`` (``R/pool.vector.R`` and ``R/barnard.rubin.R`` of
mice 3.x, amices/mice on GitHub), which follow Rubin (1987, p. 76) and Barnard & Rubin
(1999):

- ``estimate`` :math:`\\bar Q = \\frac1m \\sum_j Q_j`
- ``within`` :math:`\\bar U = \\frac1m \\sum_j U_j`
- ``between`` :math:`B = \\frac1{m-1} \\sum_j (Q_j - \\bar Q)^2`
- ``total`` :math:`T = \\bar U + (1 + 1/m) B`
- ``riv`` :math:`r = (1 + 1/m) B / \\bar U` (relative increase in variance)
- ``lambda`` :math:`\\lambda = (1 + 1/m) B / T` (proportion of the variance due to the
  missing data)
- ``df`` (Barnard–Rubin): :math:`\\nu_{old} = (m-1)/\\lambda^2`; with complete-data degrees
  of freedom :math:`\\nu_{com}`, :math:`\\nu_{obs} = \\frac{\\nu_{com}+1}{\\nu_{com}+3}
  \\nu_{com}(1-\\lambda)` and :math:`\\nu = \\nu_{old}\\nu_{obs}/(\\nu_{old}+\\nu_{obs})`
  (:math:`\\nu_{old}` when :math:`\\nu_{com}` is infinite)
- ``fmi`` :math:`\\gamma = (r + 2/(\\nu+3)) / (r + 1)` (fraction of missing information, as
  mice's ``pool()`` reports it)
- ``lower``, ``upper``: :math:`\\bar Q \\mp t_{\\nu, (1+p)/2} \\sqrt{T}`.

References
----------
Rubin, D.B. (1987). *Multiple Imputation for Nonresponse in Surveys*. Wiley.
Barnard, J. and Rubin, D.B. (1999). Small-sample degrees of freedom with multiple
imputation. *Biometrika* 86, 948–955.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RUBIN_COLUMNS", "barnard_rubin_df", "rubin_rules"]

#: The columns :func:`rubin_rules` returns, in order.
RUBIN_COLUMNS = (
    "estimate",
    "se",
    "within",
    "between",
    "total",
    "riv",
    "lambda",
    "fmi",
    "df",
    "lower",
    "upper",
)


def barnard_rubin_df(
    m: int, between: np.ndarray, total: np.ndarray, df_complete: float = np.inf
) -> np.ndarray:
    """Barnard–Rubin (1999) small-sample degrees of freedom (mice's ``barnard.rubin``).

    Parameters
    ----------
    m : int
        Number of imputations (at least 2).
    between, total : array
        Between-imputation variance ``B`` and total variance ``T`` per scalar.
    df_complete : float
        Degrees of freedom of the complete-data analysis (``inf``: large sample; then the
        result is Rubin's (1987) ``(m - 1) / lambda**2``).

    Returns
    -------
    ndarray
        Degrees of freedom per scalar (``inf`` where ``B = 0`` and ``df_complete`` is
        infinite).
    """
    b = np.asarray(between, dtype=float)
    t = np.asarray(total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (1.0 + 1.0 / m) * b / t
        old = np.where(lam > 0, (m - 1) / lam**2, np.inf)
        if np.isinf(df_complete):
            return np.asarray(old, dtype=float)
        tmp = (1.0 - lam) * (1.0 + df_complete) * df_complete
        df = (m - 1) * tmp / ((df_complete + 3.0) * (m - 1) + lam**2 * tmp)
    return np.asarray(df, dtype=float)


def rubin_rules(
    estimates: Any,
    variances: Any,
    *,
    df_complete: float = np.inf,
    prob: float = 0.95,
    names: Any = None,
) -> pd.DataFrame:
    """Pool per-imputation estimates and variances by Rubin's rules.

    Parameters
    ----------
    estimates, variances : array of shape (m,) or (m, k)
        Point estimates ``Q_j`` and their variances ``U_j`` (squared standard errors; for a
        posterior: its mean and variance) of ``k`` scalars in each of ``m`` imputations.
    df_complete : float
        Complete-data degrees of freedom for the Barnard–Rubin ``df`` (``inf``: large
        sample).
    prob : float
        Mass of the t interval (``lower``, ``upper``).
    names : sequence of str, optional
        The scalars' names (the index of the result; default 0..k-1).

    Returns
    -------
    DataFrame
        One row per scalar, columns :data:`RUBIN_COLUMNS` (see the module docstring).

    Examples
    --------
    >>> rubin_rules([1.0, 1.2, 0.9], [0.04, 0.05, 0.03]).round(4)[["estimate", "total"]]
       estimate   total
    0    1.0333  0.0711
    """
    from scipy import stats

    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim == 1:
        q, u = q[:, None], u[:, None]
    if q.shape != u.shape or q.ndim != 2:
        raise ValueError(f"estimates {q.shape} and variances {u.shape} must have one shape.")
    m = q.shape[0]
    if m < 2:
        raise ValueError(f"Rubin's rules need at least 2 imputations, not {m}.")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, not {prob!r}.")
    if not df_complete > 0:
        raise ValueError(f"df_complete must be positive, not {df_complete!r}.")
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t = ubar + (1.0 + 1.0 / m) * b
    df = barnard_rubin_df(m, b, t, df_complete)
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1.0 + 1.0 / m) * b / ubar
        lam = (1.0 + 1.0 / m) * b / t
        fmi = (riv + 2.0 / (df + 3.0)) / (riv + 1.0)
    se = np.sqrt(t)
    crit = np.where(np.isinf(df), stats.norm.ppf(0.5 + prob / 2), stats.t.ppf(0.5 + prob / 2, df))
    frame = pd.DataFrame(
        {
            "estimate": qbar,
            "se": se,
            "within": ubar,
            "between": b,
            "total": t,
            "riv": riv,
            "lambda": lam,
            "fmi": fmi,
            "df": df,
            "lower": qbar - crit * se,
            "upper": qbar + crit * se,
        },
        index=pd.Index(list(names)) if names is not None else None,
    )
    frame.attrs["m"] = m
    frame.attrs["df_complete"] = float(df_complete)
    frame.attrs["prob"] = prob
    return frame
