"""Named variance functions of a Gaussian response (nlme's ``weights =``): ``variance:``.

Two of nlme's variance functions, as a spec's ``variance:`` key::

    variance: {ident: visit}      # varIdent(form = ~ 1 | visit): one residual SD per level
    variance: {power: fitted}     # varPower(form = ~ fitted(.)): sigma·|mu|^delta_power
    variance: {ident: visit, power: fitted}   # varComb of the two

``ident`` is a distributional formula of ``sigma`` in disguise: ``sigma: "~ 1 + visit"``
(the column always taken as a factor), so ``b_sigma`` holds the reference level's log SD
(``Intercept``) and each other level's log ratio to it (``visit[2]``, nlme's varIdent
parameters on the log scale). ``power`` multiplies each row's SD by ``|mu_i|^delta_power``
(``mu`` the fitted value, group effects included, as nlme's ``fitted(.)`` at the innermost
level). A power of a covariate (nlme's ``varPower(form = ~ x)``) and nlme's ``varExp`` are
sigma formulas: ``sigma: "~ log(abs(x))"``, ``sigma: "~ x"``. No PyMC here.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["POWER_FORMS", "VarianceSpec"]

#: What ``power`` may be a power of (nlme's default form of ``varPower``).
POWER_FORMS: tuple[str, ...] = ("fitted",)


class VarianceSpec(BaseModel):
    """A variance function of the residual SD (``variance:`` of a Gaussian ``lmm``/``glmm``).

    Attributes
    ----------
    ident : str, optional
        A column whose levels each get a residual SD (nlme's ``varIdent(form = ~ 1 |
        ident)``): the same as ``sigma: "~ 1 + <column>"`` with the column taken as a factor
        (its terms named ``<column>[<level>]``; a spec's ``contrasts`` for the column sets
        the reference level).
    power : {"fitted"}, optional
        ``sigma_i = sigma·|mu_i|^delta_power`` (nlme's ``varPower()``), ``mu_i`` the fitted
        value of row ``i``; ``delta_power`` has a Normal(0, 1) prior.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ident: str | None = None
    power: str | None = None

    @field_validator("power")
    @classmethod
    def _power_form(cls, value: str | None) -> str | None:
        if value is not None and value not in POWER_FORMS:
            raise ValueError(
                f"variance.power takes {list(POWER_FORMS)} (nlme's varPower of the fitted "
                f"value), not {value!r}; a power of a covariate x is the sigma formula "
                f'sigma: "~ log(abs(x))" (its coefficient is the power)'
            )
        return value

    @model_validator(mode="after")
    def _one_at_least(self) -> Self:
        if self.ident is None and self.power is None:
            raise ValueError(
                "variance: needs ident: <column> (one SD per level, nlme's varIdent) and/or "
                "power: fitted (nlme's varPower)"
            )
        if self.ident is not None and not self.ident.strip():
            raise ValueError("variance.ident is a column name, not an empty string")
        return self

    def sigma_formula(self) -> str | None:
        """The sigma formula ``ident`` stands for (``"~ 1 + C(visit)"``), or None."""
        return None if self.ident is None else f"~ 1 + C({self.ident.strip()})"
