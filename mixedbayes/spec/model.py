"""The model spec: a pure, serialisable description of a model (no PyMC here).

A spec is a pydantic model. Every kind of model (``lmm``, ``glmm``, ``nonlinear``) is a
subclass of :class:`ModelSpec` registered in ``SPEC_KINDS`` under its ``kind`` (what the
kind *does* is its object in ``mixedbayes.kinds``); they share the family, prior,
group-effect and sampler settings defined here.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mixedbayes.errors import SpecError
from mixedbayes.spec.contrasts import ContrastSpec
from mixedbayes.spec.missing import MissingSpec
from mixedbayes.spec.residuals import ResidualSpec, residual_problem
from mixedbayes.spec.validation import validation_problems
from mixedbayes.spec.variance import VarianceSpec

__all__ = [
    "DPAR_KEYS",
    "SPEC_KINDS",
    "FamilySpec",
    "GroupOptions",
    "LMMSpec",
    "ModelSpec",
    "PriorSpec",
    "SamplerSpec",
    "register_kind",
]

Parametrization = Literal["auto", "centered", "noncentered"]

_DEPTH: ContextVar[int] = ContextVar("spec_depth", default=0)


class _Strict(BaseModel):
    """Base of every spec object: unknown keys are errors; objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __init__(self, /, **data: Any) -> None:
        depth = _DEPTH.get()
        token = _DEPTH.set(depth + 1)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if depth:  # nested: let the outermost spec report the full key path
                raise
            raise SpecError(validation_problems(exc, type(self))) from None
        finally:
            _DEPTH.reset(token)


class FamilySpec(_Strict):
    """Response family and link, e.g. ``{"name": "gaussian", "link": "identity"}``.

    A bare string (``family: gaussian``) is accepted and means the family's default link.
    """

    name: str = "gaussian"
    link: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known(self) -> Self:
        from mixedbayes.families import FAMILIES, LINKS
        from mixedbayes.families.base import unknown_family_message

        if self.name not in FAMILIES:
            raise ValueError(unknown_family_message(self.name))
        fam = FAMILIES[self.name]
        if self.link is not None:
            if self.link not in LINKS:
                raise ValueError(f"unknown link {self.link!r}; use one of {sorted(LINKS)}")
            if self.link not in fam.links:
                raise ValueError(
                    f"family {self.name!r} does not take the link {self.link!r}; "
                    f"its links: {list(fam.links)}"
                )
        return self

    @property
    def link_name(self) -> str:
        """The link in force (the family's default when none is given)."""
        from mixedbayes.families import FAMILIES

        return self.link or FAMILIES[self.name].default_link


class PriorSpec(_Strict):
    """One row of prior overrides, keyed like brms by (class, coef, group, nlpar).

    Parameters
    ----------
    class_ : str
        ``Intercept``, ``b``, ``sd``, ``cor``, ``sigma`` or a family parameter. Written
        ``class`` in YAML and dicts.
    prior : str
        A distribution call, e.g. ``"normal(0, 10)"``, ``"student_t(3, 0, 2.5)"``,
        ``"lkj(2)"``.
    coef : str
        A coefficient (``"Days"``); empty means every coefficient of the class.
    group : str
        For ``sd`` and ``cor``: the grouping factor (``"Subject"``); empty means every group.
    nlpar : str
        For nonlinear models: the parameter the row belongs to.
    """

    class_: str = Field(alias="class")
    prior: str
    coef: str = ""
    group: str = ""
    nlpar: str = ""

    @field_validator("prior")
    @classmethod
    def _parses(cls, value: str) -> str:
        from mixedbayes.priors.distributions import parse_prior

        parse_prior(value)
        return value


class GroupOptions(_Strict):
    """Per grouping factor options of the group-effect core."""

    parametrization: Parametrization = "auto"


class SamplerSpec(_Strict):
    """NUTS settings; every one can be overridden by :func:`mixedbayes.fit`'s arguments."""

    name: str = "auto"
    draws: int = Field(default=1000, ge=1)
    tune: int = Field(default=1000, ge=0)
    chains: int = Field(default=4, ge=1)
    seed: int | None = None
    target_accept: float = Field(default=0.8, gt=0, lt=1)
    marginalize: bool = True

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        # the live registry (a sampler may be registered after import); imports no PyMC
        from mixedbayes.inference.samplers import sampler_names

        names = sampler_names()
        if value not in names:
            raise ValueError(f"unknown sampler {value!r}; use one of {list(names)}")
        return value


class ModelSpec(_Strict):
    """Settings every model kind shares. Use a kind's class (e.g. :class:`LMMSpec`).

    Attributes
    ----------
    kind : str
        The model kind; chooses the subclass.
    name, description : str
        Free text, shown in summaries and reports.
    family : FamilySpec
        Response family and link.
    priors : list of PriorSpec
        Overrides of the default prior table.
    parametrization : {"auto", "centered", "noncentered"}
        Default for every group-effect term.
    group_effects : dict of str to GroupOptions
        Per grouping factor options, keyed by the factor as in the formula (``"Subject"``,
        ``"clinic:patient"``).
    sampler : SamplerSpec
        NUTS settings.
    contrasts : dict of str to ContrastSpec
        Coding of categorical predictors, keyed by column: reference level, level order,
        ``treatment`` or ``sum`` coding (``{"Sex": {"reference": "Male"}}``,
        ``{"Trt": "sum"}``); see :class:`~mixedbayes.spec.contrasts.ContrastSpec`.
    data : str or dict of str, optional
        Where the data live: ``"dataset:sleepstudy"`` for a bundled set, or a CSV path
        (relative paths are relative to the spec file); for a kind fitted to several tables,
        one such source per table (``{counts: counts.csv, samples: samples.csv}``).
    missing : MissingSpec, optional
        Imputation by sampling inside the model (``{response: impute, covariates: {chl:
        {formula: "chl ~ age"}}, otherwise: drop}``; see :class:`MissingSpec`); kinds whose
        class sets ``takes_missing`` accept it (``lmm``, ``glmm``, ``nonlinear``), the others
        say it is not supported yet.
    """

    kind: str
    name: str = ""
    description: str = ""
    family: FamilySpec = FamilySpec()
    priors: tuple[PriorSpec, ...] = ()
    parametrization: Parametrization = "auto"
    group_effects: dict[str, GroupOptions] = Field(default_factory=dict)
    sampler: SamplerSpec = SamplerSpec()
    contrasts: dict[str, ContrastSpec] = Field(default_factory=dict)
    data: str | dict[str, str] | None = None
    missing: MissingSpec | None = None

    allowed_families: ClassVar[tuple[str, ...] | None] = None
    #: Whether the kind imputes by sampling (``missing:``); the others refuse the key.
    takes_missing: ClassVar[bool] = False

    @model_validator(mode="after")
    def _family_allowed(self) -> Self:
        if self.allowed_families is not None and self.family.name not in self.allowed_families:
            raise ValueError(
                f"kind {self.kind!r} takes the families {list(self.allowed_families)}, "
                f"not {self.family.name!r}"
            )
        return self

    @model_validator(mode="after")
    def _missing_supported(self) -> Self:
        if self.missing is not None and not self.takes_missing:
            raise ValueError(
                f"missing: (imputation by sampling inside the model) is not supported for "
                f"kind {self.kind!r} yet; the kinds lmm, glmm and nonlinear take it. Fix: remove "
                "missing: "
                "(rows with missing values are then dropped, counted and reported), or impute "
                "first (multiple imputation, then fit each completed data set)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (the keys a YAML file would hold; defaults left out)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data = {"kind": self.kind, **data}
        return data

    def to_yaml(self) -> str:
        """The spec as YAML text; :func:`mixedbayes.load_spec` reads it back identically."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def group_options(self, group: str) -> GroupOptions:
        """Options for one grouping factor (the spec-wide defaults when none are given)."""
        return self.group_effects.get(group, GroupOptions(parametrization=self.parametrization))


def checked_formula(value: str) -> str:
    """``value`` if it is a valid lme4 formula; else ``ValueError`` with the first problem
    and its fix (for a spec's field validator)."""
    from mixedbayes.spec.formula import formula_problems

    problems = formula_problems(value)
    if problems:
        raise ValueError(problems[0].message + " Fix: " + problems[0].hint)
    return value


SPEC_KINDS: dict[str, type[ModelSpec]] = {}


def register_kind[T: type[ModelSpec]](cls: T) -> T:
    """Class decorator adding a spec kind to the registry under its ``kind`` default."""
    SPEC_KINDS[str(cls.model_fields["kind"].default)] = cls  # type: ignore[call-overload]
    return cls


#: The family parameters a ``glmm`` spec may give a distributional formula, each a top-level
#: key named after the parameter (``zi: "~ trt + (1 | Subject)"``, as brms's ``zi ~ ...`` and
#: glmmTMB's ``ziformula``; ``sigma: "~ trt"``, brms's ``sigma ~ trt``; ``phi``/``alpha``,
#: glmmTMB's ``dispformula``). Which families take which is the families' business (a
#: parameter with a :attr:`~mixedbayes.families.FamilyParam.link`); a new key is its name here
#: and a field of :class:`GLMMSpec` (``sigma`` is one of :class:`LMMSpec` too), validated,
#: designed, compiled, predicted and summarised by the same code.
DPAR_KEYS: tuple[str, ...] = ("zi", "hu", "sigma", "phi", "alpha")


def checked_dpar_formula(key: str, value: str, family: FamilySpec | None) -> str:
    """``value`` if it is a valid right-hand side for the family parameter ``key`` of
    ``family``; else ``ValueError`` naming the key, the fix, and the families that take it."""
    from mixedbayes.families import FAMILIES, families_with_formula
    from mixedbayes.spec.formula import formula_problems

    text = value.strip()
    if not text.startswith("~"):
        raise ValueError(
            f"the {key} formula is a right-hand side that starts with '~', e.g. "
            f"'~ 1 + x + (1 | g)', not {value!r}"
        )
    problems = formula_problems(f"{key} {text}", key)
    if problems:
        raise ValueError(problems[0].message + " Fix: " + problems[0].hint)
    if family is not None:
        param = FAMILIES[family.name].param(key)
        if param is None or not param.takes_formula:
            accepting = families_with_formula(key)
            raise ValueError(
                f"the family {family.name!r} has no parameter {key!r} that takes a formula; "
                f"families whose {key!r} does: {accepting}. Fix: choose one of them as the "
                f"family, or remove {key}"
            )
    return value


def _unstructured_problem(key: str, residuals: ResidualSpec | None) -> None:
    """``ValueError`` when ``key`` (``sigma``, ``variance``) would set the residual SD of an
    unstructured residual covariance, which has one SD per visit already."""
    unstructured = residuals is not None and residuals.correlation == "unstructured"
    if key in ("sigma", "variance") and residuals is not None and unstructured:
        raise ValueError(
            f"an unstructured residual covariance already has one SD per visit "
            f"(sd_{residuals.time}); {key}: on top of it is redundant. Fix: remove "
            f"{key}:, or use correlation: ar1 / car1 / cs with it (nlme's varIdent + corAR1)"
        )


@register_kind
class LMMSpec(ModelSpec):
    """A linear mixed model: an lme4 formula with a gaussian response.

    Attributes
    ----------
    formula : str
        An lme4 formula (``"Reaction ~ Days + (Days | Subject)"``).
    residuals : ResidualSpec, optional
        Correlated residuals within a subject (``{correlation: ar1, time: visit, group:
        id}``; ``ar1``, ``car1``, ``cs``, ``unstructured``); see
        :class:`~mixedbayes.spec.residuals.ResidualSpec` and ``docs/residuals.md``.
    sigma : str, optional
        A distributional formula of the residual SD (brms's ``sigma ~ ...``): a right-hand
        side on the log scale, fixed and group effects, e.g. ``"~ trt + visit"`` (``b_sigma``,
        dim ``sigma_term``; ``sd_<g>_sigma``); see ``docs/distributional.md``.
    variance : VarianceSpec, optional
        A named variance function (nlme's ``weights =``): ``{ident: visit}`` (one SD per
        level, ``varIdent``), ``{power: fitted}`` (``sigma·|mu|^delta_power``, ``varPower``);
        not together with ``sigma``; see :class:`~mixedbayes.spec.variance.VarianceSpec`.

    Examples
    --------
    >>> spec = LMMSpec(formula="Reaction ~ Days + (Days | Subject)")
    >>> spec.kind
    'lmm'
    """

    kind: Literal["lmm"] = "lmm"
    formula: str
    residuals: ResidualSpec | None = None
    sigma: str | None = None
    variance: VarianceSpec | None = None

    allowed_families: ClassVar[tuple[str, ...] | None] = ("gaussian",)
    takes_missing: ClassVar[bool] = True
    #: Whether the kind takes correlated residuals (``residuals:``).
    takes_residuals: ClassVar[bool] = True
    #: Whether they are a latent process on the linear predictor (a glmm: ``ar1``/``car1``,
    #: ``sigma_ar``) rather than the response's residuals (the Gaussian lmm).
    latent_residuals: ClassVar[bool] = False

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str) -> str:
        return checked_formula(value)

    @field_validator(*DPAR_KEYS, check_fields=False)
    @classmethod
    def _dpar_formula(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        assert info.field_name is not None
        _unstructured_problem(info.field_name, info.data.get("residuals"))
        return checked_dpar_formula(info.field_name, value, info.data.get("family"))

    @field_validator("variance")
    @classmethod
    def _variance(cls, value: VarianceSpec | None, info: ValidationInfo) -> VarianceSpec | None:
        # named variance functions: mixedbayes.spec.variance, docs/distributional.md
        if value is None:
            return value
        if info.data.get("sigma") is not None:
            raise ValueError(
                "sigma: and variance: both set the residual SD; give one. Fix: remove "
                'variance: (its ident: <col> is sigma: "~ 1 + <col>"), or remove sigma:'
            )
        family = info.data.get("family")
        if family is not None and family.name != "gaussian":
            raise ValueError(
                f"variance: (nlme's varIdent/varPower) is for the gaussian family, not "
                f"{family.name!r}. Fix: use family: gaussian, or a sigma: formula for a "
                "family whose sigma takes one"
            )
        _unstructured_problem("variance", info.data.get("residuals"))
        missing = info.data.get("missing")
        if value.power is not None and missing is not None and missing.covariates:
            raise ValueError(
                "variance: {power: fitted} with covariates imputed in the model "
                "(missing.covariates) is not supported yet. Fix: remove power: or impute "
                "first (multiple imputation)"
            )
        return value

    def dpar_formulas(self) -> dict[str, str]:
        """The distributional formulas given, by family parameter (``{"zi": "~ Trt"}``);
        ``variance: {ident: visit}`` gives ``{"sigma": "~ 1 + C(visit)"}``."""
        out = {
            k: v
            for k in DPAR_KEYS
            if k in type(self).model_fields and (v := getattr(self, k)) is not None
        }
        ident = None if self.variance is None else self.variance.sigma_formula()
        if ident is not None:
            out["sigma"] = ident
        return out

    @model_validator(mode="after")
    def _residuals(self) -> Self:
        # correlated residuals within a subject: mixedbayes.spec.residuals, docs/residuals.md
        if self.residuals is None:
            return self
        if not self.takes_residuals:
            raise ValueError(
                f"residuals: (correlated residuals within a subject) is for kinds 'lmm' "
                f"and 'glmm', not {self.kind!r}. Fix: use one of them, or remove residuals:"
            )
        problem = residual_problem(self.formula, self.residuals, self.latent_residuals)
        if problem:
            raise ValueError(problem)
        return self


@register_kind
class GLMMSpec(LMMSpec):
    """A generalised linear mixed model: an lme4 formula, any registered family and link.

    Binomial responses are written ``cbind(successes, failures) ~ ...`` (lme4) or
    ``successes | trials(n) ~ ...`` (brms); offsets as ``offset(log(exposure))``.

    Attributes
    ----------
    family : FamilySpec
        Required: a GLMM has no default family (nor has :func:`mixedbayes.GLMM`).
    zi : str, optional
        The distributional formula of the zero-inflation probability of a zero-inflated
        family (``zero_inflated_poisson``, ``zero_inflated_negbinomial``,
        ``zero_inflated_beta``): a right-hand side on the logit scale of the probability of a
        structural zero, fixed and group effects as in the main formula, e.g. ``"~ 1"`` (the
        default), ``"~ Trt"`` or ``"~ Trt + (1 | Subject)"``. Its group effects have a
        covariance of their own (``sd_Subject_zi``, ``r_Subject_zi``).
    hu : str, optional
        The same for the probability of a zero of a hurdle family (``hurdle_poisson``,
        ``hurdle_negbinomial``, ``hurdle_negbinomial1``): ``b_hu``, ``sd_Subject_hu``.
    sigma, phi, alpha : str, optional
        Distributional formulas of the dispersion parameters (glmmTMB's ``dispformula``,
        brms's ``sigma ~``, ``phi ~``, ``shape ~``), on the log scale: ``sigma`` of the
        gaussian, student and lognormal families, ``phi`` (precision) of beta and
        zero-inflated beta and dispersion of the NB1 families (``negbinomial1``: var =
        mu·(1 + phi)), ``alpha`` (shape) of gamma and the negative binomials. Without
        one the parameter is a scalar. ``variance:`` (gaussian) as for ``lmm``.
    residuals : ResidualSpec, optional
        ``ar1`` or ``car1``: a latent stationary Gaussian process per subject added to the
        linear predictor (brms's ``ar()`` on a non-Gaussian family, glmmTMB's ``ar1()``):
        ``phi_ar``, ``sigma_ar``; ``cs`` / ``unstructured`` are written as random effects
        (a ``SpecError`` names the formula). See ``docs/residuals.md``.

    Examples
    --------
    >>> spec = GLMMSpec(formula="count ~ zAge + (1 | patient)", family="poisson")
    >>> spec.family.link_name
    'log'
    >>> GLMMSpec(formula="y ~ t + (1 | s)", family="zero_inflated_beta",
    ...          zi="~ t + (1 | s)").dpar_formulas()
    {'zi': '~ t + (1 | s)'}
    """

    kind: Literal["glmm"] = "glmm"  # type: ignore[assignment]
    family: FamilySpec = Field(
        description="a glmm has no default family: name one, e.g. family: poisson "
        "(binomial, negbinomial, bernoulli, gamma, ...); a Gaussian response is kind: lmm"
    )
    zi: str | None = None
    hu: str | None = None
    phi: str | None = None
    alpha: str | None = None

    allowed_families: ClassVar[tuple[str, ...] | None] = None
    latent_residuals: ClassVar[bool] = True
