"""The ``joint`` kind: longitudinal mixed submodels and a hazard sharing the subject's
random effects (JMbayes2's joint models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from mixedbayes.kinds.base import Kind, register_kind
from mixedbayes.naming import Names
from mixedbayes.spec.joint import JointSpec

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.context import BuildContext
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.design.joint import JointDesign
    from mixedbayes.priors.table import PriorTable
    from mixedbayes.spec.model import ModelSpec

__all__ = ["JointKind"]


@register_kind
class JointKind(Kind):
    """``joint``: one part per outcome (``b_<outcome>``, ``sigma_<outcome>``) and the ``event``
    part (``b_event``, the baseline's parameters, ``alpha``), one covariance per grouping
    factor across the outcomes."""

    name = "joint"
    spec_type = JointSpec
    capabilities: ClassVar[frozenset[str]] = frozenset({"survival"})

    def design(self, spec: ModelSpec, data: pd.DataFrame) -> JointDesign:
        from mixedbayes.design.joint import make_joint_design

        return make_joint_design(cast(JointSpec, spec), data)

    def default_priors(self, design: ModelDesign) -> PriorTable:
        from mixedbayes.priors.joint import default_joint_priors

        return default_joint_priors(cast("JointDesign", design))

    def positive_classes(self, design: ModelDesign) -> tuple[str, ...]:
        from mixedbayes.priors.joint import joint_positive_classes

        return joint_positive_classes(cast("JointDesign", design))

    def coords(self, design: ModelDesign) -> dict[str, list[Any]]:
        from mixedbayes.compile.joint import joint_coords

        return joint_coords(cast("JointDesign", design))

    def build(self, design: ModelDesign, priors: PriorTable, ctx: BuildContext) -> Any:
        from mixedbayes.compile.joint import add_joint

        return add_joint(cast("JointDesign", design), priors, ctx)

    def initial_values(self, design: ModelDesign) -> dict[str, Any]:
        """The hazard starts flat at the crude event rate: ``alpha`` and ``b_event`` at 0, the
        baseline's level at log(events / follow-up), a Weibull shape of 1, a Gompertz rate of
        0 (the priors' centres jittered by ±1 could start ``alpha × value`` far out in the
        exponential tail, where one chain's step size adapts to a crawl)."""
        import numpy as np

        from mixedbayes.priors.joint import crude_log_rate

        d = cast("JointDesign", design)
        labels = [label for a in d.associations for label in a.labels]
        out: dict[str, Any] = {"alpha": np.zeros(len(labels))}
        if d.survival.terms:
            out[Names("event").b] = np.zeros(len(d.survival.terms))
        rate = crude_log_rate(d)
        neutral = {"shape": 1.0, "gompertz_rate": 0.0}
        for p in d.baseline.params():
            if p.level:
                out[p.name] = np.full(p.size, rate) if p.size else rate
            elif p.name in neutral:
                out[p.name] = neutral[p.name]
        return out

    def parts(self, design: ModelDesign) -> tuple[str, ...]:
        d = cast("JointDesign", design)
        return (*d.outcomes, "event") if d.survival.terms else tuple(d.outcomes)

    def family_variables(self, design: ModelDesign) -> list[str]:
        d = cast("JointDesign", design)
        names = [Names(o).param(p.name) for o, od in d.outcomes.items() for p in od.family.params]
        return [*names, "alpha", *(p.name for p in d.baseline.params())]

    def response_columns(self, design: ModelDesign) -> list[str]:
        return [d.response for d in cast("JointDesign", design).outcomes.values()]

    def subject_factor(self, design: ModelDesign) -> GroupFactor | None:
        d = cast("JointDesign", design)
        return d.group(d.subject_factor)

    def describe(self, spec: ModelSpec) -> str:
        s = cast(JointSpec, spec)
        outcomes = "; ".join(f"{k}: {o.formula}" for k, o in s.longitudinal.items())
        return f"{outcomes}; {s.survival.formula} ({s.survival.baseline} baseline)"

    def report_items(self, spec: ModelSpec) -> list[tuple[str, str]]:
        s = cast(JointSpec, spec)
        assoc = ", ".join(f"{o}:{k}" for o, k in s.associations())
        return [("association", assoc), ("baseline hazard", s.survival.baseline)]
