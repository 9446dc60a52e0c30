"""mixedbayes: Bayesian mixed-effects models for longitudinal data.

One declarative spec (YAML, dict or Python) → design → PyMC model → NUTS → ArviZ DataTree.
"""

from mixedbayes.errors import DataError, MixedBayesError, SpecError
from mixedbayes.spec import LMM, LMMSpec, ModelSpec, load_spec, save_spec

__version__ = "0.1.0"

__all__ = [
    "LMM",
    "DataError",
    "LMMSpec",
    "MixedBayesError",
    "ModelSpec",
    "SpecError",
    "__version__",
    "load_spec",
    "save_spec",
]
