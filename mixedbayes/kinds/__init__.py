"""Model kinds as objects: the only place that knows a kind (``lmm``, ``glmm``,
``nonlinear``); the stages as users call them, dispatched to the spec's kind."""

from mixedbayes.kinds.base import CAPABILITIES, KINDS, Kind, kind_of, register_kind
from mixedbayes.kinds.nonlinear import NonlinearKind
from mixedbayes.kinds.regression import GLMMKind, LMMKind, RegressionKind
from mixedbayes.kinds.stages import (
    add_log_likelihood,
    build_prior_table,
    compile_model,
    make_design,
)
from mixedbayes.registry import import_submodules

__all__ = [
    "CAPABILITIES",
    "KINDS",
    "GLMMKind",
    "Kind",
    "LMMKind",
    "NonlinearKind",
    "RegressionKind",
    "add_log_likelihood",
    "build_prior_table",
    "compile_model",
    "kind_of",
    "make_design",
    "register_kind",
]

# A new kind is one class in one new module here: importing the package registers it.
import_submodules(__name__)
