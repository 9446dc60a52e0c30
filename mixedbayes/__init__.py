"""mixedbayes: Bayesian mixed-effects models for longitudinal data.

One declarative spec (YAML, dict or Python) → design → PyMC model → NUTS → ArviZ DataTree.
"""

from mixedbayes import batch, datasets, pk, simulate
from mixedbayes._version import __version__
from mixedbayes.api import compile, design, fit, get_priors, load, load_data, prior_predictive
from mixedbayes.design import DataWarning, Design
from mixedbayes.diagnostics import ConvergenceWarning, compare
from mixedbayes.errors import DataError, MixedBayesError, SpecError
from mixedbayes.results import Fit
from mixedbayes.results.multiple import MultipleFit
from mixedbayes.spec import (
    GLMM,
    LMM,
    Compositional,
    GLMMSpec,
    Joint,
    LMMSpec,
    ModelSpec,
    load_spec,
    save_spec,
)
from mixedbayes.workflows import kfold as _kfold  # noqa: F401  (registers fit.kfold)
from mixedbayes.workflows import update as _update  # noqa: F401  (registers fit.update)
from mixedbayes.workflows.impute import impute
from mixedbayes.workflows.multiple import fit_multiple
from mixedbayes.workflows.naive import compare_naive
from mixedbayes.workflows.sbc import SBCResult, sbc

__all__ = [
    "GLMM",
    "LMM",
    "Compositional",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "Design",
    "Fit",
    "GLMMSpec",
    "Joint",
    "LMMSpec",
    "MixedBayesError",
    "ModelSpec",
    "MultipleFit",
    "SBCResult",
    "SpecError",
    "__version__",
    "batch",
    "compare",
    "compare_naive",
    "compile",
    "datasets",
    "design",
    "fit",
    "fit_multiple",
    "get_priors",
    "impute",
    "load",
    "load_data",
    "load_spec",
    "pk",
    "prior_predictive",
    "save_spec",
    "sbc",
    "simulate",
]
