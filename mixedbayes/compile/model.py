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
    design : Design
    priors : PriorTable
    observed : str
        Name of the observed variable.
    """

    model: Any
    design: Design
    priors: PriorTable
    observed: str

    def initial_logp(self) -> float:
        """The model's log-density at its initial point (finite for a well-built model)."""
        return float(self.model.compile_logp()(self.model.initial_point()))


def compile_model(design: Design | Any, priors: PriorTable | None = None) -> CompiledModel:
    """Build the PyMC model of ``design``.

    Parameters
    ----------
    design : Design
    priors : PriorTable, optional
        Defaults to the spec's prior table (defaults with the spec's overrides).

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
    model = BUILDERS[kind](design, table)
    observed = next(rv.name for rv in model.observed_RVs)
    return CompiledModel(model, design, table, observed)
