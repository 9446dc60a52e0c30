"""Model specs: pure descriptions of models, loadable from YAML, dicts or Python."""

from mixedbayes.spec.compositional import CompositionalSpec, TaxaFilter
from mixedbayes.spec.contrasts import ContrastSpec
from mixedbayes.spec.io import (
    GLMM,
    LMM,
    Compositional,
    Joint,
    load_spec,
    save_spec,
    spec_from_dict,
)
from mixedbayes.spec.joint import JointSpec, OutcomeSpec, SurvivalSpec
from mixedbayes.spec.model import (
    SPEC_KINDS,
    FamilySpec,
    GLMMSpec,
    GroupOptions,
    LMMSpec,
    ModelSpec,
    PriorSpec,
    SamplerSpec,
    register_kind,
)
from mixedbayes.spec.nonlinear import DosingSpec, NonlinearSpec, ODESpec

__all__ = [
    "GLMM",
    "LMM",
    "SPEC_KINDS",
    "Compositional",
    "CompositionalSpec",
    "ContrastSpec",
    "DosingSpec",
    "FamilySpec",
    "GLMMSpec",
    "GroupOptions",
    "Joint",
    "JointSpec",
    "LMMSpec",
    "ModelSpec",
    "NonlinearSpec",
    "ODESpec",
    "OutcomeSpec",
    "PriorSpec",
    "SamplerSpec",
    "SurvivalSpec",
    "TaxaFilter",
    "load_spec",
    "register_kind",
    "save_spec",
    "spec_from_dict",
]
