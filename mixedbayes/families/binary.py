"""Binary and binomial responses: the ``bernoulli`` and ``binomial`` families.

``mu`` is the success probability ``p`` (the inverse link of the linear predictor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mixedbayes.errors import Problem, SpecError, format_rows
from mixedbayes.families.base import Family, Link, register_family
from mixedbayes.families.support import (
    bad_rows_problem,
    count_problems,
    is_whole,
    present_values,
)

__all__ = ["Bernoulli", "Binomial"]

_TRIALS_HINT = "write the response as 'k | trials(n)' or 'cbind(k, n - k)'."


@register_family
class Bernoulli(Family):
    """Binary response: ``y ~ Bernoulli(p)`` with ``p = mu``, ``y`` in {0, 1}."""

    name = "bernoulli"
    links = ("logit", "probit", "cloglog")
    default_link = "logit"
    discrete = True

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Rows whose (non-missing) value is not 0/1 (``False``/``True``)."""
        v = present_values(y)
        bad = ~np.isnan(v) & (v != 0) & (v != 1)
        return bad_rows_problem(
            y,
            bad,
            column,
            "the bernoulli response must be 0 or 1 (False or True)",
            "recode the outcome as 0/1; for k successes out of n trials use the binomial "
            "family, for proportions strictly between 0 and 1 the beta family.",
        )

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.Bernoulli.dist(p=mu)``."""
        import pymc as pm

        return pm.Bernoulli.dist(p=mu)

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.bernoulli.logpmf(y, mu)``."""
        from scipy import stats

        return np.asarray(stats.bernoulli.logpmf(np.asarray(y, dtype=int), mu))

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = p = mu``."""
        return np.asarray(mu)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw 0/1 responses (integers) with success probability ``mu``."""
        return rng.binomial(1, np.asarray(mu))


def _require_trials(trials: Any) -> Any:
    if trials is None:
        raise SpecError(
            "the binomial family needs the number of trials of each row.",
            where="family",
            hint=_TRIALS_HINT,
        )
    return trials


@register_family
class Binomial(Family):
    """Successes out of trials: ``y ~ Binomial(n=trials, p=mu)``."""

    name = "binomial"
    links = ("logit", "probit", "cloglog")
    default_link = "logit"
    discrete = True
    needs_trials = True

    def prior_reference(self, y: np.ndarray, link: Link) -> tuple[float, float, str]:
        """``0`` on the link scale (``p = 0.5``) and ``s = 1``.

        The observed proportion needs the trials, which this hook does not receive; brms
        centres a binomial intercept's default prior at 0 likewise.
        """
        return 0.0, 1.0, "0 on the link scale (p = 0.5), s=1 on the link scale"

    def response_problems(
        self, y: pd.Series, column: str, trials: np.ndarray | None = None
    ) -> list[Problem]:
        """Successes that are not integers in ``0..trials``; trials not positive integers."""
        problems = count_problems(y, column, self.name)
        if trials is None:
            return [
                *problems,
                Problem(
                    "the binomial family needs the number of trials of each row.",
                    f"column '{column}'",
                    _TRIALS_HINT,
                ),
            ]
        v = present_values(y)
        n = np.asarray(trials, dtype=float).reshape(-1)
        if n.shape != v.shape:
            return [
                *problems,
                Problem(
                    f"the trials have {n.size} values for {v.size} responses.",
                    f"trials of '{column}'",
                    "give one number of trials per row.",
                ),
            ]
        with np.errstate(invalid="ignore"):
            bad_n = ~(is_whole(n) & (n > 0))
            over = ~bad_n & is_whole(v) & (v > n)
        problems += bad_rows_problem(
            y,
            bad_n,
            column,
            "the number of trials must be a positive integer",
            "check the trials column; rows with no trials carry no information: drop them.",
            values=n,
            where=f"trials of '{column}'",
        )
        if np.any(over):
            rows = list(y.index[over])
            pairs = [f"{a:g} > {b:g}" for a, b in zip(v[over], n[over], strict=True)]
            problems.append(
                Problem(
                    f"the successes exceed the trials; rows {format_rows(rows)} hold "
                    f"{format_rows(pairs)} (successes > trials).",
                    f"column '{column}'",
                    "the response is the number of successes k and the trials n >= k; "
                    "check that the columns are not swapped, and that cbind() takes "
                    "(k, n - k).",
                )
            )
        return problems

    def dist(self, mu: Any, params: dict[str, Any], trials: Any = None) -> Any:
        """``pm.Binomial.dist(n=trials, p=mu)``.

        Raises
        ------
        SpecError
            When ``trials`` is missing.
        """
        import pymc as pm

        n = _require_trials(trials)
        return pm.Binomial.dist(n=n, p=mu)

    def logp_reference(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """``scipy.stats.binom.logpmf(y, trials, mu)``."""
        from scipy import stats

        n = np.asarray(_require_trials(trials))
        return np.asarray(stats.binom.logpmf(y, n, mu))

    def mean_numpy(
        self, mu: np.ndarray, params: dict[str, np.ndarray], trials: np.ndarray | None = None
    ) -> np.ndarray:
        """``E[y] = trials·p``."""
        return np.asarray(_require_trials(trials)) * np.asarray(mu)

    def simulate(
        self,
        mu: np.ndarray,
        params: dict[str, np.ndarray],
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw successes (integers) out of ``trials`` with probability ``mu``."""
        n = np.asarray(_require_trials(trials))
        return rng.binomial(np.rint(n).astype(np.int64), np.asarray(mu))
