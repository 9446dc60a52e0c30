"""The ``nonlinear`` kind: a structural model (PK library, expression or ODE) whose
parameters each have a mixed-effects formula on a link scale, and a residual error model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from mixedbayes.kinds.base import Kind, register_kind
from mixedbayes.naming import Names
from mixedbayes.spec.nonlinear import NonlinearSpec

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.context import BuildContext
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.design.nonlinear import NonlinearDesign
    from mixedbayes.priors.table import PriorTable
    from mixedbayes.spec.model import ModelSpec

__all__ = ["NonlinearKind"]


@register_kind
class NonlinearKind(Kind):
    """``nonlinear``: parameters as parts (``b_<key>``, ``<key>_term``), one covariance per
    grouping factor across them, a structural mean and a residual error model."""

    name = "nonlinear"
    spec_type = NonlinearSpec
    capabilities: ClassVar[frozenset[str]] = frozenset({"pk", "predict"})
    instead: ClassVar[dict[str, str]] = {
        "shrinkage": "individual_parameters()",
        "trajectories": "concentration_curves()",
        "slopes": "typical_values()",
    }

    def design(self, spec: ModelSpec, data: pd.DataFrame) -> NonlinearDesign:
        from mixedbayes.design.nonlinear import make_nonlinear_design

        return make_nonlinear_design(cast(NonlinearSpec, spec), data)

    def default_priors(self, design: ModelDesign) -> PriorTable:
        from mixedbayes.priors.nonlinear import default_nonlinear_priors

        return default_nonlinear_priors(cast("NonlinearDesign", design))

    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        from mixedbayes.priors.nonlinear import ERROR_PARAMS

        return ERROR_PARAMS[cast(NonlinearSpec, design.spec).error]

    def coords(self, design: ModelDesign) -> dict[str, list[Any]]:
        from mixedbayes.compile.nonlinear import nonlinear_coords

        return nonlinear_coords(cast("NonlinearDesign", design))

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.nonlinear import add_nonlinear

        return add_nonlinear(cast("NonlinearDesign", design), priors, ctx)

    def point_fit(self, design: ModelDesign) -> bool:
        """A point fit for user expressions and ordered or self-starting models, whose
        default priors say little about where the curve is (two exchangeable phases of an
        expression otherwise start symmetric and switch labels). PK library and ODE models
        keep the sampler's start: their priors are centred on typical values, and a joint
        mode can sit in the flip-flop (KA and KE swapped) or in a funnel's neck; ask with
        ``mb.fit(..., point_fit=True)``."""
        spec = cast("NonlinearDesign", design).spec
        return spec.expression is not None or bool(spec.parameter_order())

    def initial_values(self, design: ModelDesign) -> dict[str, Any]:
        """A library curve model's self-start values (``biexp``: curve peeling) as the
        intercepts ``b_<key>[Intercept]`` on each parameter's link scale."""
        import numpy as np

        from mixedbayes.nonlinear.library import get_curve_model

        d = cast("NonlinearDesign", design)
        curve = d.spec.curve_model
        if curve is None or d.time is None:
            return {}
        values = get_curve_model(curve).self_start(d.time, d.y)
        out: dict[str, Any] = {}
        for p in d.params:
            if p.name not in values or "Intercept" not in p.terms:
                continue
            with np.errstate(all="ignore"):
                eta = float(p.link.link_numpy(np.asarray(values[p.name])))
            if np.isfinite(eta):
                b = np.zeros(len(p.terms))
                b[p.terms.index("Intercept")] = eta
                out[p.names.b] = b
        return out

    def parts(self, design: ModelDesign) -> tuple[str, ...]:
        return tuple(p.key for p in cast("NonlinearDesign", design).params)

    def family_variables(self, design: ModelDesign) -> list[str]:
        """The error model's parameters, then per imputed covariate its submodel's
        (``b_<column>``, ``sd_<g>_<column>``, ``sigma_<column>``)."""
        from mixedbayes.kinds.regression import imputation_variables

        plan = cast("NonlinearDesign", design).imputation
        return list(self.positive_classes(design)) + imputation_variables(plan)

    def summary_variables(self, design: ModelDesign, include_group_levels: bool) -> list[str]:
        names = super().summary_variables(design, include_group_levels)
        plan = cast("NonlinearDesign", design).imputation
        if include_group_levels and plan is not None:
            names += [Names.r(g.key) for cov in plan.covariates for g in cov.sub.groups]
        return names

    def imputed_draws(
        self, posterior: Any, design: ModelDesign, seed: int | None
    ) -> dict[str, tuple[str, Any, Any]]:
        from mixedbayes.results.nonlinear_imputation import nonlinear_imputed_draws

        return nonlinear_imputed_draws(posterior, cast("NonlinearDesign", design), seed)

    def response_columns(self, design: ModelDesign) -> list[str]:
        return [cast(NonlinearSpec, design.spec).response]

    def subject_factor(self, design: ModelDesign) -> GroupFactor | None:
        """The factor of the spec's ``subject`` column, else the first grouping factor."""
        subject = cast(NonlinearSpec, design.spec).subject
        for g in design.groups:
            if g.name == subject:
                return g
        return design.groups[0] if design.groups else None

    def report_items(self, spec: ModelSpec) -> list[tuple[str, str]]:
        s = cast(NonlinearSpec, spec)
        items = [("residual error", str(s.error))]
        order = s.parameter_order()
        if order:
            items.append(("ordered intercepts", " > ".join(order)))
        return items

    def describe(self, spec: ModelSpec) -> str:
        s = cast(NonlinearSpec, spec)
        what = s.model or s.expression or "ODE"
        params = "; ".join(f"{k} ~ {v}" for k, v in s.parameters.items())
        return f"{what}: {params}" if params else str(what)
