"""Every model variable, dimension and data-container name, made in one place.

A model is made of *parts* (submodels): the plain part ``""`` of an ``lmm`` or ``glmm``; one
part per structural parameter of a nonlinear model (``log_CL``); the zero-inflation part
``zi``; later one per outcome of a joint model (``log_bili``) and the ``event`` part. A part's
names are prefixed, the plain part keeps the short names users know:

========================  ==================  ============================
what                      part ``""``         part ``"log_bili"``
========================  ==================  ============================
fixed effects             ``b``               ``b_log_bili``
their dim                 ``term``            ``log_bili_term``
sampled intercept         ``Intercept``       ``Intercept_log_bili``
sampled slopes            ``b_slope``         ``b_slope_log_bili``
their dim                 ``slope``           ``log_bili_slope``
observations dim          ``observation``     ``observation_log_bili``
a data container          ``X``               ``X_log_bili``
a family parameter        ``sigma``           ``sigma_log_bili``
========================  ==================  ============================

Group-level names are **not** prefixed: one covariance per grouping factor spans every part
that reads it, so ``sd_<g>``, ``cor_<g>``, ``r_<g>`` (dims ``<g>``, ``<g>_term``) are the same
whichever part asks. The exception is a part whose effects have a covariance *of their own*:
the group effects of a family parameter's distributional formula (``zi: "~ x + (1 | Subject)"``,
independent of the response's ``(1 | Subject)``, as brms and glmmTMB fit them). Their names are
built on the *group key* ``<g>_<part>`` (:meth:`Names.group_key`): ``sd_Subject_zi`` (dim
``Subject_zi_term``), ``cor_Subject_zi``, ``r_Subject_zi`` (dims ``Subject``, ``Subject_zi_term``:
the levels are the factor's, shared with the response's effects), ``z_Subject_zi``.
:func:`parse` reads a name back (summary, gates, shrinkage, report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GROUP_CLASSES", "GROUP_NAME_PREFIXES", "OBS_DIM", "Names", "ParsedName", "parse"]

#: Dimension of the observations (rows used) of the plain part.
OBS_DIM = "observation"

#: Name prefixes of the group-level variables users see, by class.
GROUP_CLASSES = ("sd", "cor", "r")

#: Every group-level name prefix, longest first (``cor_chol`` before ``cor``).
GROUP_NAME_PREFIXES = ("cor_chol", "beta", "sd", "cor", "r", "z")


@dataclass(frozen=True)
class Names:
    """The names of one part of a model.

    Parameters
    ----------
    part : str
        ``""`` for the plain part (today's names exactly), else the submodel's name.

    Examples
    --------
    >>> Names().b, Names("log_bili").b, Names.sd("Subject")
    ('b', 'b_log_bili', 'sd_Subject')
    """

    part: str = ""

    def _suffix(self, base: str) -> str:
        return f"{base}_{self.part}" if self.part else base

    def _prefix(self, base: str) -> str:
        return f"{self.part}_{base}" if self.part else base

    # ---------------------------------------------------------------- fixed part
    @property
    def b(self) -> str:
        """Fixed effects on the original scale: ``b`` | ``b_<part>``."""
        return self._suffix("b")

    @property
    def term_dim(self) -> str:
        """Dim of the fixed effects: ``term`` | ``<part>_term``."""
        return self._prefix("term")

    @property
    def intercept(self) -> str:
        """The intercept sampled with centred predictors: ``Intercept`` | ``Intercept_<part>``."""
        return self._suffix("Intercept")

    @property
    def b_slope(self) -> str:
        """The sampled non-intercept fixed effects: ``b_slope`` | ``b_slope_<part>``."""
        return self._suffix("b_slope")

    @property
    def slope_dim(self) -> str:
        """Dim of ``b_slope``: ``slope`` | ``<part>_slope``."""
        return self._prefix("slope")

    @property
    def obs_dim(self) -> str:
        """Dim of the part's rows: ``observation`` | ``observation_<part>``."""
        return self._suffix(OBS_DIM)

    @property
    def observed_dim(self) -> str:
        """Dim of the rows of the part whose value is observed, when some are imputed (an
        imputation submodel's likelihood): ``observed`` | ``observed_<part>``."""
        return self._suffix("observed")

    def param(self, name: str) -> str:
        """A family or error-model parameter: ``sigma`` | ``sigma_<part>``."""
        return self._suffix(name)

    def var(self, name: str) -> str:
        """Any other variable of the part (a potential ``marginal_loglik``): suffixed."""
        return self._suffix(name)

    def data(self, what: str, group: str = "") -> str:
        """A data container: ``X`` | ``X_<part>``; with a group, ``index_<g>`` |
        ``index_<part>_<g>``."""
        base = self._suffix(what)
        return f"{base}_{group}" if group else base

    def scoped(self, part: str) -> Names:
        """The names of a sub-part (``zi`` of the plain part is ``zi``; of ``y`` it is
        ``y_zi``)."""
        return Names(f"{self.part}_{part}" if self.part else part)

    # ---------------------------------------------------------------- group level
    @staticmethod
    def group_key(group: str, part: str = "") -> str:
        """What a factor's group-level names are built on: the factor's name, or
        ``<g>_<part>`` for the effects of a part with a covariance of its own (the
        distributional formula of a family parameter: ``Subject_zi``, so ``sd_Subject_zi``).

        Examples
        --------
        >>> Names.group_key("Subject"), Names.group_key("Subject", "zi")
        ('Subject', 'Subject_zi')
        """
        return f"{group}_{part}" if part else group

    @staticmethod
    def sd(group: str) -> str:
        """SDs of a factor's terms: ``sd_<g>`` (dim ``<g>_term``)."""
        return f"sd_{group}"

    @staticmethod
    def cor(group: str) -> str:
        """Correlations of a factor's terms: ``cor_<g>`` (dims ``<g>_term``, ``<g>_term2``)."""
        return f"cor_{group}"

    @staticmethod
    def r(group: str, block: str = "") -> str:
        """Group effects: ``r_<g>`` (dims ``<g>``, ``<g>_term``), ``r_<g>_<block>`` per block."""
        return f"r_{group}_{block}" if block else f"r_{group}"

    @staticmethod
    def z(group: str, block: str = "") -> str:
        """Standardised effects of a non-centred block: ``z_<g>[_<block>]``."""
        return f"z_{group}_{block}" if block else f"z_{group}"

    @staticmethod
    def beta(group: str, block: str = "") -> str:
        """Hierarchically centred level coefficients: ``beta_<g>[_<block>]``."""
        return f"beta_{group}_{block}" if block else f"beta_{group}"

    @staticmethod
    def cor_chol(group: str, block: str = "") -> str:
        """The LKJ Cholesky factor of a correlated block: ``cor_chol_<g>[_<block>]``."""
        return f"cor_chol_{group}_{block}" if block else f"cor_chol_{group}"

    @staticmethod
    def element(variable: str, coef: str) -> str:
        """One element of a vector variable built element by element: ``b_slope[Days]``."""
        return f"{variable}[{coef}]"

    @staticmethod
    def prior_data(variable: str, parameter: str) -> str:
        """The data container of a prior's argument: ``prior_<variable>_<parameter>``."""
        safe = re.sub(r"\W+", "_", variable).strip("_")
        return f"prior_{safe}_{parameter}"

    @staticmethod
    def imputed_dim(column: str) -> str:
        """Dim of a column's imputed cells: ``<column>_row`` (coordinate: the data's row
        labels)."""
        return f"{column}_row"

    @staticmethod
    def missing_var(column: str) -> str:
        """The parameters of a continuous covariate's missing cells: ``<column>_missing``."""
        return f"{column}_missing"

    @staticmethod
    def marginal_var(column: str) -> str:
        """The potential summing a discrete covariate's missing cells out of the
        log-density: ``<column>_marginal``."""
        return f"{column}_marginal"

    @staticmethod
    def prob_var(column: str) -> str:
        """Posterior class probabilities of a discrete covariate's missing cells:
        ``<column>_prob``."""
        return f"{column}_prob"

    # ---------------------------------------------------------------- residual correlation
    #: The AR(1) / CAR(1) residual correlation parameter (nlme's ``Phi``).
    PHI_AR = "phi_ar"
    #: The compound-symmetry residual correlation (nlme's ``Rho`` of ``corCompSymm``).
    RHO_CS = "rho_cs"
    #: The SD of a GLMM's latent AR(1) / CAR(1) process on the linear predictor (brms's
    #: ``sderr`` of a latent ``ar()``); a positive prior class of its own.
    SIGMA_AR = "sigma_ar"
    #: The standard normals of the latent process, one per row (``e = sigma_ar · L z``).
    Z_AR = "z_ar"
    #: The latent process itself, one value per row, added to the linear predictor.
    E_AR = "e_ar"
    #: The power of ``|fitted|`` of the residual SD (``variance: {power: fitted}``, nlme's
    #: ``varPower``): ``sigma_i = sigma·|mu_i|^delta_power``.
    DELTA_POWER = "delta_power"

    @staticmethod
    def visit_dims(visit: str) -> tuple[str, str]:
        """Dims of an unstructured residual covariance over the levels of the column
        ``visit``: ``<visit>`` (of ``sd_<visit>``) and ``<visit>2`` (the second dim of
        ``cor_<visit>``)."""
        return visit, f"{visit}2"

    @staticmethod
    def residual_chol(visit: str) -> str:
        """The LKJ Cholesky factor of an unstructured residual correlation:
        ``cor_chol_<visit>``."""
        return f"cor_chol_{visit}"

    @staticmethod
    def level_dim(group: str) -> str:
        """Dim of a factor's levels: the factor's name."""
        return group

    @staticmethod
    def group_term_dim(group: str) -> str:
        """Dim of a factor's terms: ``<g>_term``."""
        return f"{group}_term"

    @staticmethod
    def cor_dim(group: str) -> str:
        """Second dim of ``cor_<g>``: ``<g>_term2``."""
        return f"{group}_term2"

    @staticmethod
    def block_term_dim(group: str, block: int) -> str:
        """Dim of one block's terms when a factor has several: ``<g>_term_<block>``."""
        return f"{group}_term_{block}"


@dataclass(frozen=True)
class ParsedName:
    """A variable name read back: its class, grouping factor and part.

    Attributes
    ----------
    class_ : str
        ``b``, ``sd``, ``cor``, ``r``, or a parameter's own name (``sigma``).
    group : str
        The grouping factor of a group-level name, else ``""``.
    part : str
        The part of a part-level name, else ``""``.
    """

    class_: str
    group: str = ""
    part: str = ""


def parse(name: str, parts: tuple[str, ...] | list[str] = ()) -> ParsedName:
    """Read a variable name back into (class, group, part).

    Parameters
    ----------
    name : str
        ``sd_Subject``, ``r_Subject``, ``b``, ``b_log_CL``, ``sigma``, ``sigma_log_bili``.
    parts : sequence of str
        The model's named parts; a name ``<class>_<part>`` is only split at a known part
        (``sigma_prop`` of a nonlinear error model is a class of its own), and so is a
        group key ``<g>_<part>`` (``sd_Subject_zi`` → class ``sd``, group ``Subject``, part
        ``zi``).

    Returns
    -------
    ParsedName
    """
    for cls in GROUP_NAME_PREFIXES:
        if name.startswith(cls + "_"):
            group = name[len(cls) + 1 :]
            for part in sorted(parts, key=len, reverse=True):
                if part and group.endswith("_" + part) and len(group) > len(part) + 1:
                    return ParsedName(cls, group=group[: -len(part) - 1], part=part)
            return ParsedName(cls, group=group)
    for part in sorted(parts, key=len, reverse=True):
        if part and name.endswith("_" + part) and len(name) > len(part) + 1:
            return ParsedName(name[: -len(part) - 1], part=part)
    return ParsedName(name)
