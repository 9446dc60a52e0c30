"""CompiledModel: a built PyMC model with the design and prior table it came from.

Each kind builds its models (``mixedbayes.kinds``); ``mb.compile`` dispatches."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mixedbayes.design.base import ModelDesign
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.design import Design
    from mixedbayes.design.groups import GroupFactor

__all__ = ["INTEGRATED_OUT", "CompiledModel", "integrated_out", "sampled_parametrization"]

#: The posterior attribute listing the grouping factors integrated out while sampling.
INTEGRATED_OUT = "integrated_out"


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
    design: ModelDesign
    priors: PriorTable
    observed: str
    sampling_model: Any = None
    marginal: Any = None
    marginalization: str = ""

    def __post_init__(self) -> None:
        if self.sampling_model is None:
            object.__setattr__(self, "sampling_model", self.model)

    @property
    def integrated_out(self) -> tuple[str, ...]:
        """The grouping factors whose effects NUTS did not sample (the marginalised LMM
        integrates them out and draws them afterwards): their parametrization was not used."""
        if self.marginal is None:
            return ()
        return tuple(n for n in (self.marginal.inner, self.marginal.outer) if n)

    def complete(self, idata: Any, seed: int) -> Any:
        """Add what the sampled model left out (``r_<group>`` of a marginalised LMM)."""
        if self.marginal is None:
            return idata
        from mixedbayes.compile.marginal import draw_group_effects
        from mixedbayes.inference.trees import data_groups

        design = cast("Design", self.design)
        return data_groups(draw_group_effects(idata, design, self.marginal, seed), self.model)

    def initial_logp(self, mode: str | None = "FAST_COMPILE") -> float:
        """The model's log-density at its initial point (finite for a well-built model).

        Compiled with PyTensor's ``FAST_COMPILE`` mode by default: a structural check, not
        a sampler (``mode=None`` uses the default, optimised compile).
        """
        from mixedbayes._system import python_ops

        with python_ops():
            point = self.model.initial_point()
            if mode == "FAST_COMPILE":  # a structural check: Python thunks, no C compiler
                return float(self.model.compile_logp(mode=mode)(point))
        fn = self.model.compile_logp(mode=mode) if mode else self.model.compile_logp()
        return float(fn(point))


def integrated_out(attrs: Mapping[Any, Any]) -> tuple[str, ...]:
    """The grouping factors a fit integrated out, from its posterior's attributes.

    Reads :data:`INTEGRATED_OUT`; fits saved before it was recorded fall back on the
    ``marginalization`` note (``"integrated out: patient within clinic (...)"``).
    """
    names = attrs.get(INTEGRATED_OUT)
    if names is not None:
        return tuple(str(n) for n in ([names] if isinstance(names, str) else names))
    note = str(attrs.get("marginalization", ""))
    if not note.startswith("integrated out: "):
        return ()
    return tuple(note.removeprefix("integrated out: ").split(" (", 1)[0].split(" within "))


def sampled_parametrization(
    factor: GroupFactor, integrated: Collection[str], reasons: bool = False
) -> str:
    """How the effects of ``factor`` were sampled: each block's parametrization (with the
    reason when ``reasons``), or ``integrated out`` when the sampler never saw them."""
    if factor.name in integrated:
        why = " (drawn after sampling from their exact conditional)" if reasons else ""
        return "integrated out" + why
    return "; ".join(
        b.parametrization + (f" ({b.reason})" if reasons and b.reason else "")
        for b in factor.blocks
    )
