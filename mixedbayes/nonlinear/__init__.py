"""Nonlinear models: user-written mean functions and ODE right-hand sides, and the library of
self-starting curve models.

See :mod:`mixedbayes.nonlinear.expression` for the safe expression language and
:mod:`mixedbayes.nonlinear.library` for the curve models (``biexp``).
"""

from __future__ import annotations

from mixedbayes.nonlinear.expression import FUNCTIONS, Expression, Function, parse_expression
from mixedbayes.nonlinear.library import (
    CURVE_MODELS,
    CurveModel,
    get_curve_model,
    register_curve_model,
)

__all__ = [
    "CURVE_MODELS",
    "FUNCTIONS",
    "CurveModel",
    "Expression",
    "Function",
    "get_curve_model",
    "parse_expression",
    "register_curve_model",
]
