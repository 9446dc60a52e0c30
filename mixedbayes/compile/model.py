"""CompiledModel and the registry of model builders, one per spec kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mixedbayes.compile.regression import build_regression
from mixedbayes.design import Design
from mixedbayes.errors import SpecError
from mixedbayes.priors.table import PriorTable, build_prior_table

__all__ = ["BUILDERS", "CompiledModel", "compile_model", "register_builder"]

Builder = Callable[[Design, PriorTable], Any]


def _build_nonlinear(design: Any, priors: PriorTable) -> Any:
    from mixedbayes.compile.nonlinear import build_nonlinear

    return build_nonlinear(design, priors)


BUILDERS: dict[str, Builder] = {
    "lmm": build_regression,
    "glmm": build_regression,
    "nonlinear": _build_nonlinear,
}


def register_builder(kind: str) -> Callable[[Builder], Builder]:
    """Decorator registering the ``pm.Model`` builder of a spec kind."""

    def deco(fn: Builder) -> Builder:
        BUILDERS[kind] = fn
        return fn

    return deco


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A built PyMC model with the design and prior table it came from.

    Attributes
    ----------
    model : pymc.Model
        The plain model: every parameter, the observed response (log-likelihood,
        predictive draws).
    design : Design
    priors : PriorTable
    observed : str
        Name of the observed variable.
    sampling_model : pymc.Model
        The model NUTS samples: ``model`` itself, or the marginalised Gaussian LMM (group
        effects integrated out; :meth:`complete` then draws them).
    marginal : MarginalLMM or None
        The sufficient statistics when the group effects are integrated out.
    marginalization : str
        What was done and why, for the fit's record (``"integrated out: Subject"``,
        ``"not integrated out: ..."``).
    """

    model: Any
    design: Design
    priors: PriorTable
    observed: str
    sampling_model: Any = None
    marginal: Any = None
    marginalization: str = ""

    def __post_init__(self) -> None:
        if self.sampling_model is None:
            object.__setattr__(self, "sampling_model", self.model)

    def complete(self, idata: Any, seed: int) -> Any:
        """Add what the sampled model left out (``r_<group>`` of a marginalised LMM)."""
        if self.marginal is None:
            return idata
        from mixedbayes.compile.marginal import draw_group_effects
        from mixedbayes.inference.samplers import data_groups

        return data_groups(draw_group_effects(idata, self.design, self.marginal, seed), self.model)

    def initial_logp(self) -> float:
        """The model's log-density at its initial point (finite for a well-built model)."""
        return float(self.model.compile_logp()(self.model.initial_point()))


def compile_model(
    design: Design | Any, priors: PriorTable | None = None, marginalize: bool = True
) -> CompiledModel:
    """Build the PyMC model of ``design``.

    Parameters
    ----------
    design : Design
    priors : PriorTable, optional
        Defaults to the spec's prior table (defaults with the spec's overrides).
    marginalize : bool
        Integrate the group effects out of a Gaussian LMM with one grouping factor
        (sampled model of sufficient statistics; ``r_<group>`` drawn afterwards from its
        exact conditional). Other models are built plain, and ``marginalization`` says why.

    Returns
    -------
    CompiledModel
    """
    kind = design.spec.kind
    if kind not in BUILDERS:
        raise SpecError(
            f"no model builder for kind {kind!r}.",
            where="kind",
            hint=f"use one of {sorted(BUILDERS)}.",
        )
    table = priors if priors is not None else build_prior_table(design, design.spec.priors)
    if kind == "lmm" and marginalize:
        from mixedbayes.compile.marginal import build_marginal, centred_design, marginal_applies

        why_not = marginal_applies(design)
        if not why_not:
            plain = build_regression(centred_design(design), table, hierarchical=False)
            sampled, stats = build_marginal(design, table)
            observed = next(rv.name for rv in plain.observed_RVs)
            names = stats.inner + (f" within {stats.outer}" if stats.outer else "")
            note = f"integrated out: {names} (marginalised Gaussian LMM)"
            return CompiledModel(plain, design, table, observed, sampled, stats, note)
        note = f"not integrated out: {why_not}"
    else:
        note = "not integrated out: marginalize=False" if kind == "lmm" else ""
    model = BUILDERS[kind](design, table)
    observed = next(rv.name for rv in model.observed_RVs)
    return CompiledModel(model, design, table, observed, marginalization=note)
