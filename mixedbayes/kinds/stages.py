"""The stages as users call them, dispatched to the spec's kind: design, priors, compile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mixedbayes.kinds.base import kind_of
from mixedbayes.priors.table import PriorTable, apply_overrides

if TYPE_CHECKING:
    import pandas as pd

    from mixedbayes.compile.model import CompiledModel
    from mixedbayes.design.base import ModelDesign
    from mixedbayes.spec.model import ModelSpec, PriorSpec

__all__ = ["add_log_likelihood", "build_prior_table", "compile_model", "make_design"]


def make_design(spec: ModelSpec, data: pd.DataFrame) -> ModelDesign:
    """Stage 2: apply ``spec`` to ``data`` (the spec's kind designs it).

    Parameters
    ----------
    spec : ModelSpec
    data : DataFrame
        Not modified. Rows with a missing response or covariate are dropped with a
        :class:`~mixedbayes.design.data.DataWarning` and listed in ``design.report``.

    Returns
    -------
    ModelDesign

    Raises
    ------
    DataError, SpecError
        Naming every problem at once.
    """
    return kind_of(spec).design(spec, data)


def build_prior_table(design: ModelDesign, overrides: Sequence[PriorSpec] = ()) -> PriorTable:
    """The kind's default prior table of ``design`` with ``overrides`` applied.

    Raises
    ------
    SpecError
        For an override naming an unknown class, group or coefficient (listing the valid
        ones) or a prior whose support does not fit the class; every problem at once.
    """
    kind = kind_of(design.spec)
    return apply_overrides(
        kind.default_priors(design), overrides, positive=kind.positive_classes(design)
    )


def compile_model(
    design: ModelDesign, priors: PriorTable | None = None, marginalize: bool = True
) -> CompiledModel:
    """Stage 3: build the PyMC model of ``design``.

    Parameters
    ----------
    design : ModelDesign
    priors : PriorTable, optional
        Defaults to the spec's prior table (defaults with the spec's overrides).
    marginalize : bool
        Let the kind sample an equivalent model with the group effects integrated out (the
        Gaussian LMM with one grouping factor or two nested ones; ``r_<group>`` drawn
        afterwards from its exact conditional). ``compiled.marginalization`` says what was
        done and why.

    Returns
    -------
    CompiledModel
    """
    table = priors if priors is not None else build_prior_table(design, design.spec.priors)
    return kind_of(design.spec).compile(design, table, marginalize)


def add_log_likelihood(idata: Any, model: Any, spec: ModelSpec, design: ModelDesign) -> Any:
    """Add the pointwise ``log_likelihood`` group to ``idata``: the kind's NumPy values where
    it has them (else the model's own), and the kind's extra terms."""
    from mixedbayes.inference import log_likelihood

    kind = kind_of(spec)
    post = idata["posterior"].to_dataset()
    return log_likelihood(
        idata, model, kind.log_likelihood(design, post), kind.log_likelihood_extra(design, post)
    )
