"""Nonlinear models: user-written mean functions and ODE right-hand sides.

See :mod:`mixedbayes.nonlinear.expression` for the safe expression language.
"""

from __future__ import annotations

from mixedbayes.nonlinear.expression import FUNCTIONS, Expression, Function, parse_expression

__all__ = ["FUNCTIONS", "Expression", "Function", "parse_expression"]
