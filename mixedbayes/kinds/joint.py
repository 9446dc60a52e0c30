"""The ``joint`` kind: longitudinal mixed submodels and a hazard sharing the subject's
random effects (JMbayes2's joint models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np

from mixedbayes.kinds.base import Kind, register_kind, replicate_response
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


def _event_codes(op: str, value: float, event: np.ndarray) -> np.ndarray:
    """Values of an event column given as ``column <op> value`` (``status == 2``) that code
    ``event`` (1) and censoring (0): the value itself or the next integer past it."""
    yes, no = {
        "==": (value, 0.0 if value != 0 else 1.0),
        "!=": (value + 1, value),
        ">": (value + 1, value),
        ">=": (value, value - 1),
        "<": (value - 1, value),
        "<=": (value, value + 1),
    }[op]
    return np.where(event == 1, yes, no)


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

    def log_likelihood_extra(
        self, design: ModelDesign, posterior: Any
    ) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """``event``: each survival row's log-likelihood (``event·log h(stop) − ∫ h``)."""
        from mixedbayes.design.joint import EVENT
        from mixedbayes.results.joint_hazard import survival_log_likelihood

        d = cast("JointDesign", design)
        return {EVENT: ((Names(EVENT).obs_dim,), survival_log_likelihood(posterior, d))}

    def loo_units(self, design: ModelDesign, log_likelihood: Any) -> Any:
        """``subject``: per subject, the log-likelihood of all their measurements (every
        outcome) and of their survival rows — LOO leaves one subject out."""
        import xarray as xr

        from mixedbayes.design.joint import EVENT

        d = cast("JointDesign", design)
        sub = d.structure(d.subject_factor)
        parts = [(EVENT, d.survival.level)]
        parts += [(name, d.rows[(name, sub.name)].index) for name in d.outcomes]
        total = np.zeros((*log_likelihood[EVENT].shape[:2], len(sub.levels)))
        for name, level in parts:
            values = np.asarray(log_likelihood[name].to_numpy(), dtype=float)
            total += values @ (level[:, None] == np.arange(len(sub.levels))).astype(float)
        return xr.DataArray(
            total,
            dims=("chain", "draw", sub.name),
            coords={sub.name: list(sub.levels)},
            name="subject",
        )

    def replicate_spec(self, spec: ModelSpec) -> ModelSpec:
        """Replicates keep the template's visits after a simulated event (the model is
        conditional on the visit times, so the posterior stays the model's)."""
        return spec.model_copy(update={"visits_after_event": "keep"})

    def replicate_template(self, spec: ModelSpec, data: Any) -> Any:
        """Both tables (one table is split), each with row positions as labels."""
        from mixedbayes.design.joint_tables import split_tables

        tables = split_tables(data, cast(JointSpec, spec))
        return dict(zip(("longitudinal", "survival"), tables, strict=True))

    def replicate_columns(
        self,
        design: ModelDesign,
        template: Any,
        draws: dict[str, np.ndarray],
        observed: dict[str, np.ndarray],
        rng: np.random.Generator,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Each outcome's simulated responses, and event times drawn from the hazard of the
        draw (censored at the template's stop times); see
        :func:`mixedbayes.results.joint_hazard.simulate_event_times`."""
        from mixedbayes.results.joint_hazard import simulate_event_times
        from mixedbayes.spec.joint import event_test, parse_surv

        d = cast("JointDesign", design)
        long, surv = template["longitudinal"], template["survival"]
        columns: dict[str, np.ndarray] = {}
        for name, od in d.outcomes.items():
            columns[od.response] = replicate_response(od, od.response, long, observed[name])
        stop, event = simulate_event_times(d, draws, rng)
        _, stop_col, event_arg, _ = parse_surv(d.spec.survival.formula)
        event_col, op, value = event_test(event_arg)
        times = surv[stop_col].astype("float64").copy()
        times.loc[list(d.survival.index)] = stop
        coded = np.asarray(event, dtype=float)
        if op is not None and value is not None:
            coded = _event_codes(op, value, event)
        status = surv[event_col].astype("float64").copy()
        status.loc[list(d.survival.index)] = coded
        return {
            "longitudinal": columns,
            "survival": {stop_col: times.to_numpy(), event_col: status.to_numpy()},
        }

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
        items = [("association", assoc), ("baseline hazard", s.survival.baseline)]
        if s.lag:
            items.append(("association lag", f"{s.lag:g} (the hazard at t reads t − lag)"))
        if s.visits_after_event == "keep":
            items.append(("visits after the event", "kept"))
        return items
