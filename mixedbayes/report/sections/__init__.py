"""The built-in report sections; importing this package registers them."""

from mixedbayes.report.sections import core, pk, regression

__all__ = ["core", "pk", "regression"]
