"""The ``missing:`` key of a spec: what to do with missing values (no PyMC here).

.. code-block:: yaml

    missing:
      response: impute          # or drop (the default)
      covariates:
        chl: {formula: "chl ~ age + (1 | id)"}      # continuous: a submodel of its own
      otherwise: drop           # or error

``response: impute`` keeps the rows with a missing response and draws their responses from
the posterior predictive; each covariate named under ``covariates`` is imputed by sampling
inside the model, with its own mixed-effects submodel (``formula``, ``family``); the
columns not named are dropped row-wise as without ``missing:`` (``otherwise: drop``) or are
an error (``otherwise: error``). See ``docs/missing-data.md``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CONTINUOUS_IMPUTATION_FAMILIES",
    "DISCRETE_IMPUTATION_FAMILIES",
    "CovariateImputation",
    "MissingSpec",
]

#: Families a continuous covariate's submodel may take: each missing cell is a parameter.
CONTINUOUS_IMPUTATION_FAMILIES = ("gaussian", "student", "lognormal", "gamma", "beta")

#: Families of a discrete covariate (summed out of the log-density exactly): ``bernoulli``
#: (0/1) and ``categorical`` (a factor: a multinomial logit over its levels, fixed effects
#: only; local to imputation, not a response family of the GLMM).
DISCRETE_IMPUTATION_FAMILIES = ("bernoulli", "categorical")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CovariateImputation(_Frozen):
    """The submodel of one imputed covariate.

    Attributes
    ----------
    formula : str
        An lme4 formula whose left side is the covariate (``"chl ~ age + (1 | id)"``); fixed
        and group effects. It may not use the main model's response (that would be circular).
    family : str
        The covariate's distribution: a continuous family
        (:data:`CONTINUOUS_IMPUTATION_FAMILIES`, default ``gaussian``: each missing cell is a
        parameter), ``bernoulli`` (a 0/1 covariate) or ``categorical`` (a factor with K
        levels: a multinomial logit, fixed effects only), both summed out exactly.
    """

    formula: str
    family: str = "gaussian"

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"formula": value} if isinstance(value, str) else value

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str) -> str:
        from mixedbayes.spec.formula import formula_problems

        problems = formula_problems(value)
        if problems:
            raise ValueError(problems[0].message + " Fix: " + problems[0].hint)
        return value

    @field_validator("family")
    @classmethod
    def _family(cls, value: str) -> str:
        allowed = CONTINUOUS_IMPUTATION_FAMILIES + DISCRETE_IMPUTATION_FAMILIES
        if value not in allowed:
            raise ValueError(
                f"an imputation submodel cannot take the family {value!r}; it takes the "
                f"continuous families {list(CONTINUOUS_IMPUTATION_FAMILIES)} (each missing "
                f"value a parameter) or {list(DISCRETE_IMPUTATION_FAMILIES)} (a binary or "
                "categorical covariate, summed out)"
            )
        return value

    @property
    def discrete(self) -> bool:
        """Whether the covariate is discrete (summed out, not sampled)."""
        return self.family in DISCRETE_IMPUTATION_FAMILIES


class MissingSpec(_Frozen):
    """What to do with missing values (the spec's ``missing:`` key).

    Attributes
    ----------
    response : {"drop", "impute"}
        ``drop`` (default): rows with a missing response are left out, counted and reported.
        ``impute``: they are kept aside and their responses drawn from the posterior
        predictive (stored in the fit's ``imputed`` group).
    covariates : dict of str to CovariateImputation
        By column, the submodel that imputes it (``{"chl": {"formula": "chl ~ age"}}``, or
        the formula alone as a string).
    otherwise : {"drop", "error"}
        Missing values in columns not named: rows dropped (counted and reported) or a
        ``DataError`` naming the columns.
    """

    response: Literal["drop", "impute"] = "drop"
    covariates: dict[str, CovariateImputation] = Field(default_factory=dict)
    otherwise: Literal["drop", "error"] = "drop"

    @model_validator(mode="after")
    def _left_sides(self) -> Self:
        from mixedbayes.spec.formula import split_formula

        for key, sub in self.covariates.items():
            lhs = split_formula(sub.formula).response
            if lhs != key:
                raise ValueError(
                    f"the imputation formula of {key!r} has {lhs!r} on its left side; it must "
                    f"model {key!r} itself. Fix: write covariates: {{{key}: {{formula: "
                    f"'{key} ~ ...'}}}}"
                )
        return self
