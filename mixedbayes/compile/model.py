"""CompiledModel: a built PyMC model with the design and prior table it came from.

Each kind builds its models (``mixedbayes.kinds``); ``mb.compile`` dispatches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mixedbayes.design.base import ModelDesign
from mixedbayes.priors.table import PriorTable

if TYPE_CHECKING:
    from mixedbayes.design.design import Design

__all__ = ["CompiledModel"]


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

    def complete(self, idata: Any, seed: int) -> Any:
        """Add what the sampled model left out (``r_<group>`` of a marginalised LMM)."""
        if self.marginal is None:
            return idata
        from mixedbayes.compile.marginal import draw_group_effects
        from mixedbayes.inference.samplers import data_groups

        design = cast("Design", self.design)
        return data_groups(draw_group_effects(idata, design, self.marginal, seed), self.model)

    def initial_logp(self, mode: str | None = "FAST_COMPILE") -> float:
        """The model's log-density at its initial point (finite for a well-built model).

        Compiled with PyTensor's ``FAST_COMPILE`` mode by default: a structural check, not
        a sampler (``mode=None`` uses the default, optimised compile).
        """
        fn = self.model.compile_logp(mode=mode) if mode else self.model.compile_logp()
        return float(fn(self.model.initial_point()))
