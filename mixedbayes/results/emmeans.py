"""Estimated marginal means (least-squares means) and their pairwise differences.

``fit.emmeans("arm", by="visit")`` is R's ``emmeans(fit, ~ arm | visit)`` on the posterior:
per draw, the model's linear predictor on a *reference grid*, averaged over the grid's other
factors, then summarised over the draws. ``.pairs()`` is ``pairs(..., reverse = TRUE)``: within
each value of ``by``, every later level minus every earlier one (treatment − placebo when the
reference level comes first), with its interval and probability of direction. The MMRM
headline, the treatment difference at the last visit, is the last row of
``fit.emmeans("arm", by="visit").pairs()``.

The reference grid (emmeans' ``ref_grid``):

- every column the fixed part reads as a factor (text, Categorical, ``C(x)``) and every
  boolean column takes each of its levels in the rows used, in table order (the reference
  level first);
- every other column it reads as a number is held at its mean over the rows used (emmeans'
  ``cov.reduce = mean``);
- the columns of ``specs`` and ``by`` take their values: a factor its levels, a number its
  distinct values (its 10/50/90 % quantiles when it has more than 10, as ``fit.slopes``'
  ``by``);
- ``at`` overrides any column with a value or a list of values.

The marginal mean of a cell of ``specs`` × ``by`` averages the grid over its other factors:
each combination of their levels weighted equally (``weights="equal"``, emmeans' default) or
by how often it occurs in the data (``"proportional"``, as emmeans' and tern.mmrm's
``weights = "proportional"``). Group effects are left out (population level).

Scales: ``type="link"`` is the averaged linear predictor; ``type="response"`` (the default)
its inverse link, draw by draw — averaged on the link scale, then back-transformed, as
emmeans' ``type = "response"`` (for a zero-inflated or hurdle family: the mean of the
non-zero part ``mu``, as emmeans on brms fits; a transformed response such as ``log(y)`` is
not back-transformed). Differences are taken on the same scale: on the response scale of a
logit model they are risk differences, on its link scale log odds ratios. Both scales agree
for a Gaussian identity-link model.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mixedbayes.design.matrices import fixed_predictors
from mixedbayes.errors import SpecError, require_known
from mixedbayes.results.hypothesis import summarise_draws
from mixedbayes.results.slopes import (
    by_values,
    data_column,
    ordered_values,
    reference_grid,
    with_categories,
)

if TYPE_CHECKING:
    from mixedbayes.results.protocols import FitLike

__all__ = ["EMMeans", "emmeans"]

Scale = Literal["response", "link"]
Weights = Literal["equal", "proportional"]
_SUMMARY = ("estimate", "sd", "lower", "upper")


@dataclass(frozen=True)
class EMMeans:
    """Estimated marginal means of a fit (:func:`emmeans`); ``pairs()`` gives their differences.

    Attributes
    ----------
    means : DataFrame
        One row per cell of ``by`` × ``specs``: their columns, ``estimate`` (posterior mean),
        ``sd``, ``lower``, ``upper`` (central ``prob`` interval) and, when every column of
        ``specs`` and ``by`` is a factor, ``n`` (rows of the data in the cell).
    draws : ndarray, shape (draws, cells)
        Posterior draws of each cell's marginal mean (chains concatenated), in the order of
        the rows of ``means``: for contrasts of your own.
    specs, by : tuple of str
    averaged : dict of str to list
        The grid's other columns averaged over, with their values.
    held : dict of str to value
        The numeric predictors held fixed (at their mean, or at ``at``).
    type : {"response", "link"}
    weights : {"equal", "proportional"}
    prob : float
    """

    means: pd.DataFrame
    draws: np.ndarray
    specs: tuple[str, ...]
    by: tuple[str, ...]
    averaged: dict[str, list[Any]]
    held: dict[str, Any]
    type: str
    weights: str
    prob: float

    def pairs(self, *, reverse: bool = True, prob: float | None = None) -> pd.DataFrame:
        """Pairwise differences of the marginal means within each value of ``by``.

        Parameters
        ----------
        reverse : bool
            True (the default here; emmeans' ``pairs(reverse = TRUE)``, as in mmrm's
            documentation): each later level minus each earlier one, so ``active − placebo``
            when ``placebo`` is the reference level. False: earlier minus later (emmeans'
            default).
        prob : float, optional
            Mass of the central interval (default: the one the means were computed with).

        Returns
        -------
        DataFrame
            One row per pair: the ``by`` columns, ``contrast`` (``"active − placebo"``),
            ``estimate``, ``sd``, ``lower``, ``upper``, ``post_prob`` (P(difference > 0)) and
            ``pd`` (probability of direction: the larger of P(> 0) and P(< 0)).
        """
        prob = self.prob if prob is None else _check_prob(prob)
        labels = [
            " ".join(str(v) for v in row)
            for row in self.means[list(self.specs)].itertuples(index=False)
        ]
        rows = []
        for key, idx in _by_groups(self.means, self.by).items():
            for a, b in itertools.combinations(idx, 2):
                hi, lo = (b, a) if reverse else (a, b)
                label = f"{labels[hi]} − {labels[lo]}"
                diff = self.draws[:, hi] - self.draws[:, lo]
                s = summarise_draws(label, diff, direction=">", prob=prob)
                p = float(s["post_prob"])  # type: ignore[arg-type]
                rows.append(
                    {
                        **dict(zip(self.by, key, strict=True)),
                        "contrast": label,
                        **{k: s[k] for k in _SUMMARY},
                        "post_prob": p,
                        "pd": max(p, 1.0 - p),
                    }
                )
        out = pd.DataFrame(rows)
        out.attrs["prob"] = prob
        return out

    def __repr__(self) -> str:
        over = ", ".join(self.averaged) or "nothing"
        held = ", ".join(f"{k}={_short(v)}" for k, v in self.held.items()) or "none"
        return (
            f"Estimated marginal means ({self.type} scale, {self.prob:.0%} intervals)\n"
            f"{self.means.to_string(index=False, float_format=lambda v: f'{v:.4g}')}\n"
            f"Averaged over {over} ({self.weights} weights); numeric predictors at {held}."
        )

    def _repr_html_(self) -> str:
        return str(self.means._repr_html_())  # type: ignore[operator]


def emmeans(
    fit: FitLike,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    at: Mapping[str, Any] | None = None,
    type: Scale = "response",
    weights: Weights = "equal",
    prob: float = 0.95,
) -> EMMeans:
    """Estimated marginal (least-squares) means per level of ``specs`` within ``by``.

    Parameters
    ----------
    fit : Fit
        An ``lmm`` or ``glmm`` fit.
    specs : str or sequence of str
        The columns whose levels the means are given for (``"arm"``); emmeans' formulas are
        read too: ``"~ arm | visit"`` is ``specs="arm", by="visit"``, ``"arm * visit"`` both
        as specs.
    by : str or sequence of str, optional
        Columns to condition on (``"visit"``): ``pairs()`` compares within each of their
        values.
    at : mapping, optional
        Values of grid columns: a value, or a list of values (for ``specs``/``by``: the
        ones shown; for another column: the ones averaged over).
    type : {"response", "link"}
        The scale (see the module's notes): the inverse link of the averaged linear
        predictor, or the linear predictor.
    weights : {"equal", "proportional"}
        How the combinations of the other factors' levels are weighted.
    prob : float
        Mass of the central intervals.

    Returns
    -------
    EMMeans
        ``.means`` (tidy table), ``.pairs()`` (differences), ``.draws``.

    Raises
    ------
    SpecError
        A name that is not a predictor of the model's fixed part (the predictors are
        listed), a column in both ``specs`` and ``by``, an unknown ``type`` or ``weights``.

    Examples
    --------
    >>> em = fit.emmeans("arm", by="visit")  # doctest: +SKIP
    >>> em.pairs().tail(1)  # the treatment difference at the last visit  # doctest: +SKIP
    """
    spec_cols, by_cols = _parse(specs, by)
    design: Any = fit.design
    data = design.data
    predictors = fixed_predictors(design._matrices)
    _check(spec_cols, by_cols, predictors.columns, type, weights)
    factors = [
        c
        for c in predictors.columns
        if c in predictors.categorical or pd.api.types.is_bool_dtype(data[c])
    ]
    numbers = [c for c in predictors.columns if c not in factors]
    prob = _check_prob(prob)
    at = dict(at or {})
    for key in at:
        data_column(fit, key, "'at'")

    def values(col: str) -> list[Any]:
        if col in at:
            return _as_list(at[col])
        if col in factors:
            return ordered_values(data[col])
        return by_values(fit, col, None, role="'specs'/'by'")

    cell_cols = by_cols + spec_cols
    cells = list(itertools.product(*(values(c) for c in cell_cols)))
    averaged = {c: values(c) for c in factors if c not in cell_cols}
    averaged |= {
        c: _as_list(at[c]) for c in numbers if c not in cell_cols and c in at and _is_list(at[c])
    }
    base = reference_grid(fit, {k: v for k, v in at.items() if not _is_list(v)})
    held = {c: base[c].iloc[0] for c in numbers if c not in cell_cols and c not in averaged}
    combos = list(itertools.product(*averaged.values()))
    n_avg = len(combos)
    grid = pd.concat([base] * (len(cells) * n_avg), ignore_index=True)
    for k, col in enumerate(cell_cols):
        grid[col] = [cell[k] for cell in cells for _ in range(n_avg)]
    for k, col in enumerate(averaged):
        grid[col] = [combo[k] for _ in cells for combo in combos]
    with_categories(grid, data)
    w = _weights(data, averaged, combos, factors, weights)
    eta = fit.predict(grid, kind="link", level="population").to_numpy()
    link = eta.reshape(-1, len(cells), n_avg) @ w
    draws = design.link.inverse_numpy(link) if type == "response" else link
    rows = []
    for j, cell in enumerate(cells):
        s = summarise_draws("", draws[:, j], prob=prob)
        rows.append({**dict(zip(cell_cols, cell, strict=True)), **{k: s[k] for k in _SUMMARY}})
    means = pd.DataFrame(rows)
    if all(c in factors for c in cell_cols):
        counts = _counts(data, cell_cols)
        means["n"] = [counts.get(_key(cell), 0) for cell in cells]
    means.attrs["prob"] = prob
    return EMMeans(
        means,
        np.asarray(draws),
        tuple(spec_cols),
        tuple(by_cols),
        averaged,
        held,
        type,
        weights,
        prob,
    )


# --------------------------------------------------------------------------- helpers


def _split_names(text: str) -> list[str]:
    return [t for t in re.split(r"[\s*:+]+", text.strip().lstrip("~")) if t]


def _parse(
    specs: str | Sequence[str], by: str | Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """Columns of specs and by from lists, names or an emmeans formula (``~ arm | visit``)."""
    if isinstance(specs, str):
        text = specs.strip().lstrip("~")
        if "|" in text:
            if by is not None:
                raise SpecError(
                    f"specs {specs!r} has a '|' and by= is given too.",
                    where="by",
                    hint="give the conditioning columns once: '~ arm | visit' or by='visit'.",
                )
            text, by = text.split("|", 1)
        spec_cols = _split_names(text)
    else:
        spec_cols = [str(s) for s in specs]
    by_cols = [] if by is None else _split_names(by) if isinstance(by, str) else list(by)
    if not spec_cols:
        raise SpecError(
            "emmeans needs at least one column in specs.",
            where="specs",
            hint="e.g. fit.emmeans('arm', by='visit').",
        )
    return spec_cols, [str(b) for b in by_cols]


def _check(
    spec_cols: list[str], by_cols: list[str], columns: Sequence[str], type: str, weights: str
) -> None:
    what = "emmeans needs columns the model's fixed part reads"
    require_known(spec_cols, columns, where="specs", what=what)
    require_known(by_cols, columns, where="by", what=what)
    both = sorted(set(spec_cols) & set(by_cols))
    if both or len(set(spec_cols + by_cols)) < len(spec_cols + by_cols):
        raise SpecError(
            f"a column is named twice in specs and by: {both or spec_cols + by_cols}.",
            where="by",
            hint="name each column once, e.g. specs='arm', by='visit'.",
        )
    if type not in ("response", "link"):
        raise SpecError(f"unknown type {type!r}.", where="type", hint="use 'response' or 'link'.")
    if weights not in ("equal", "proportional"):
        raise SpecError(
            f"unknown weights {weights!r}.", where="weights", hint="use 'equal' or 'proportional'."
        )


def _check_prob(prob: float) -> float:
    if not 0 < prob < 1:
        raise SpecError(f"prob must be in (0, 1), not {prob}.", where="prob", hint="e.g. 0.95.")
    return float(prob)


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray | pd.Series | pd.Index)


def _as_list(value: Any) -> list[Any]:
    return list(value) if _is_list(value) else [value]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _key(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _counts(data: pd.DataFrame, cols: list[str]) -> dict[tuple[str, ...], int]:
    """Rows of ``data`` per combination of ``cols``' values (keys as text)."""
    sizes = data.groupby(cols, observed=True, dropna=True).size()
    return {_key(k if isinstance(k, tuple) else (k,)): int(v) for k, v in sizes.items()}


def _weights(
    data: pd.DataFrame,
    averaged: Mapping[str, list[Any]],
    combos: list[tuple[Any, ...]],
    categorical: Sequence[str],
    weights: str,
) -> np.ndarray:
    """Weights of the combinations averaged over: equal, or proportional to the rows of
    the data holding each combination of the factors' levels."""
    factors = [k for k, col in enumerate(averaged) if col in categorical]
    if weights == "equal" or not factors:
        return np.full(len(combos), 1.0 / len(combos))
    counts = _counts(data, [list(averaged)[k] for k in factors])
    raw = np.array([counts.get(_key([c[k] for k in factors]), 0) for c in combos], dtype=float)
    return raw / raw.sum()


def _by_groups(means: pd.DataFrame, by: tuple[str, ...]) -> dict[tuple[Any, ...], list[int]]:
    """Row positions of ``means`` per value of the ``by`` columns, in table order."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    keys = means[list(by)].itertuples(index=False) if by else [()] * len(means)
    for i, key in enumerate(keys):
        groups.setdefault(tuple(key), []).append(i)
    return groups
