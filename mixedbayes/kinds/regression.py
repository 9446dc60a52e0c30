"""The regression kinds: ``lmm`` (Gaussian, with the marginalised sampling variant) and
``glmm`` (any family, offsets, trials, distributional formulas such as ``zi``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from mixedbayes.kinds.base import Kind, register_kind
from mixedbayes.naming import Names
from mixedbayes.spec.model import GLMMSpec, LMMSpec

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.context import BuildContext
    from mixedbayes.compile.model import CompiledModel
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.design import Design
    from mixedbayes.priors.table import PriorTable
    from mixedbayes.spec.model import ModelSpec

__all__ = ["GLMMKind", "LMMKind", "RegressionKind"]


class RegressionKind(Kind):
    """A formula with lme4 syntax: fixed effects, group effects, a family and a link."""

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"predict", "shrinkage", "trajectories", "slopes", "naive"}
    )

    def _dpars(self, spec: ModelSpec) -> dict[str, str]:
        """The spec's distributional formulas, by family parameter (``variance: {ident:
        col}`` is one of ``sigma``)."""
        return cast(LMMSpec, spec).dpar_formulas()

    def design(self, spec: ModelSpec, data: pd.DataFrame) -> Design:
        from mixedbayes.design.design import make_regression_design
        from mixedbayes.design.residuals import residual_design, residual_spec
        from mixedbayes.design.variance import ident_terms

        formula = cast(LMMSpec, spec).formula
        design = make_regression_design(spec, data, formula=formula, dpars=self._dpars(spec))
        design = ident_terms(design)
        if residual_spec(design) is not None:  # residuals: (mixedbayes/*/residuals.py)
            residual_design(design)  # every data problem of the residual blocks, now
        return design

    def default_priors(self, design: ModelDesign) -> PriorTable:
        from mixedbayes.design.residuals import residual_design, residual_spec
        from mixedbayes.priors.regression import default_regression_priors
        from mixedbayes.priors.residuals import residual_priors

        d = cast("Design", design)
        table = default_regression_priors(d)
        if residual_spec(d) is None:
            return table
        return residual_priors(table, d, residual_design(d))

    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        from mixedbayes.priors.regression import regression_positive_classes

        return regression_positive_classes(cast("Design", design))

    def coords(self, design: ModelDesign) -> dict[str, list[Any]]:
        from mixedbayes.compile.regression import regression_coords
        from mixedbayes.compile.residuals import residual_coords
        from mixedbayes.design.residuals import residual_design, residual_spec

        coords = regression_coords(cast("Design", design))
        if residual_spec(design) is not None:
            coords.update(residual_coords(residual_design(cast("Design", design))))
        return coords

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.regression import add_regression

        return add_regression(cast("Design", design), priors, ctx)

    def family_variables(self, design: ModelDesign) -> list[str]:
        """The family's scalar parameters (``phi``), then per distributional formula its
        fixed effects (``b_zi``) and group-level SDs and correlations (``sd_Subject_zi``),
        then per imputed covariate its submodel's (``b_chl``, ``sd_id_chl``, ``sigma_chl``)."""
        from mixedbayes.design.variance import power_of_fitted

        d = cast("Design", design)
        predicted = {dp.name for dp in d.dpars}
        names = [Names().param(p.name) for p in d.family.params if p.name not in predicted]
        if power_of_fitted(d):
            names.append(Names().param(Names.DELTA_POWER))
        for dp in d.dpars:
            names.append(Names(dp.name).b)
            names += _group_variables(dp.groups)
        return _residual_variables(d, names) + imputation_variables(d.imputation)

    def summary_variables(self, design: ModelDesign, include_group_levels: bool) -> list[str]:
        names = super().summary_variables(design, include_group_levels)
        if include_group_levels:
            d = cast("Design", design)
            names += [Names.r(g.key) for dp in d.dpars for g in dp.groups]
            subs = () if d.imputation is None else d.imputation.covariates
            names += [Names.r(g.key) for cov in subs for g in cov.sub.groups]
        return names

    def response_columns(self, design: ModelDesign) -> list[str]:
        return [cast("Design", design).formula.response]

    def log_likelihood(self, design: ModelDesign, posterior: Any) -> Any:
        from mixedbayes.results.loglik import regression_log_likelihood

        return regression_log_likelihood(posterior, cast("Design", design))

    def imputed_draws(
        self, posterior: Any, design: ModelDesign, seed: int | None
    ) -> dict[str, tuple[str, Any, Any]]:
        from mixedbayes.results.imputation import imputed_draws

        return imputed_draws(posterior, design, seed)

    def describe(self, spec: ModelSpec) -> str:
        s = cast(LMMSpec, spec)
        text = str(s.formula)
        for key, rhs in self._dpars(spec).items():
            if key != "sigma" or s.sigma is not None:
                text += f"; {key} {rhs.strip()}"
        if s.variance is not None:
            shown = [f"{k}({v})" for k, v in s.variance.model_dump(exclude_none=True).items()]
            text += f"; variance {' * '.join(shown)}"
        res = s.residuals
        if res is not None:
            group = res.group or "the formula's grouping factor"
            what = "latent residuals" if s.latent_residuals else "residuals"
            text += f"; {what} {res.correlation} over {res.time} within {group}"
        return text


def imputation_variables(plan: Any) -> list[str]:
    """Per imputed covariate of an imputation plan (None: none), its submodel's variables:
    ``b_<column>``, ``sd_<g>_<column>`` (and ``cor_``), ``sigma_<column>``."""
    names: list[str] = []
    for cov in () if plan is None else plan.covariates:
        part = Names(cov.column)
        names.append(part.b)
        names += _group_variables(cov.sub.groups)
        names += [part.param(p.name) for p in cov.sub.family.params]
    return names


def _residual_variables(design: Design, names: list[str]) -> list[str]:
    """``names`` (the family's variables) with the residual structure's (``residuals:``):
    ``phi_ar`` / ``rho_cs``, ``sigma_ar`` of a latent process, or an unstructured
    covariance's ``sd_<visit>`` and ``cor_<visit>`` in place of ``sigma``."""
    from mixedbayes.design.residuals import latent_residuals, residual_spec

    spec = residual_spec(design)
    if spec is None:
        return names
    if spec.correlation == "unstructured":
        sigma = Names().param("sigma")
        return [n for n in names if n != sigma] + [Names.sd(spec.time), Names.cor(spec.time)]
    extra = [Names.RHO_CS if spec.correlation == "cs" else Names.PHI_AR]
    if latent_residuals(design):
        extra.append(Names.SIGMA_AR)
    return [*names, *(Names().param(e) for e in extra)]


def _group_variables(groups: Any) -> list[str]:
    """``sd_<key>`` (and ``cor_<key>``) of a part's own grouping factors."""
    names = []
    for g in groups:
        names.append(Names.sd(g.key))
        if g.correlated:
            names.append(Names.cor(g.key))
    return names


@register_kind
class LMMKind(RegressionKind):
    """``lmm``: a Gaussian linear mixed model; sampled with its group effects integrated
    out where the structure allows (one factor, or one nested in another)."""

    name = "lmm"
    spec_type = LMMSpec

    # -- correlated residuals within a subject (residuals:; mixedbayes/*/residuals.py)
    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.residuals import add_residual_regression
        from mixedbayes.design.residuals import residual_design, residual_spec

        if residual_spec(design) is None:
            return super().build(design, priors, ctx)
        d = cast("Design", design)
        return add_residual_regression(d, residual_design(d), priors, ctx)

    def log_likelihood(self, design: ModelDesign, posterior: Any) -> Any:
        from mixedbayes.design.residuals import residual_spec
        from mixedbayes.results.residuals import residual_pointwise_log_likelihood

        if residual_spec(design) is None:
            return super().log_likelihood(design, posterior)
        return residual_pointwise_log_likelihood(posterior, cast("Design", design))

    def simulate(self, design: ModelDesign, posterior: Any, seed: int | None) -> Any:
        from mixedbayes.design.residuals import residual_spec
        from mixedbayes.results.residuals import residual_predictive

        if residual_spec(design) is None:
            return super().simulate(design, posterior, seed)
        return residual_predictive(posterior, cast("Design", design), seed)

    def sampling_variant(
        self, design: ModelDesign, priors: PriorTable, marginalize: bool
    ) -> CompiledModel | str:
        from mixedbayes.compile.marginal import build_marginal, centred_design, marginal_applies
        from mixedbayes.compile.model import CompiledModel
        from mixedbayes.compile.regression import build_regression
        from mixedbayes.design.residuals import residual_spec

        d = cast("Design", design)
        res = residual_spec(d)
        if res is not None:
            return (
                f"not integrated out: correlated residuals ({res.correlation}); the group "
                "effects, if any, are sampled and the residuals of each subject are one "
                "multivariate normal block"
            )
        if not marginalize:
            return "not integrated out: marginalize=False"
        if d.imputation is not None and d.imputation.covariates:
            return (
                "not integrated out: covariates imputed in the model (their sampled values "
                "enter X, so the marginal statistics are not constant)"
            )
        why_not = marginal_applies(d)
        if why_not:
            return f"not integrated out: {why_not}"
        plain = build_regression(centred_design(d), priors, hierarchical=False)
        sampled, stats = build_marginal(d, priors)
        observed = next(rv.name for rv in plain.observed_RVs)
        names = stats.inner + (f" within {stats.outer}" if stats.outer else "")
        note = f"integrated out: {names} (marginalised Gaussian LMM)"
        return CompiledModel(plain, d, priors, observed, sampled, stats, note)


@register_kind
class GLMMKind(RegressionKind):
    """``glmm``: any registered family and link; offsets, trials, zero-inflation."""

    name = "glmm"
    spec_type = GLMMSpec

    # -- a latent residual process (residuals: ar1 | car1; compile/latent_residuals.py)
    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        from mixedbayes.design.residuals import latent_residuals

        extra = (Names.SIGMA_AR,) if latent_residuals(design) else ()
        return super().positive_classes(design) + extra

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.latent_residuals import add_latent_residuals
        from mixedbayes.compile.regression import add_regression
        from mixedbayes.design.residuals import latent_residuals, residual_design

        d = cast("Design", design)
        if not latent_residuals(d):
            return super().build(design, priors, ctx)
        rd = residual_design(d)
        return add_regression(d, priors, ctx, latent=lambda c: add_latent_residuals(rd, priors, c))
