"""Stage 2: spec + data → Design (arrays, group structure, stateful transforms).

Each kind designs its own spec (``mixedbayes.kinds``); ``mb.design`` dispatches.
"""

from mixedbayes.design.base import ModelDesign
from mixedbayes.design.data import DataReport, DataWarning, Dropped
from mixedbayes.design.design import Design, NewData, make_regression_design
from mixedbayes.design.groups import (
    GroupBlock,
    GroupFactor,
    GroupStructure,
    RowMap,
    merge_factors,
)
from mixedbayes.design.nonlinear import NonlinearDesign, make_nonlinear_design

__all__ = [
    "DataReport",
    "DataWarning",
    "Design",
    "Dropped",
    "GroupBlock",
    "GroupFactor",
    "GroupStructure",
    "ModelDesign",
    "NewData",
    "NonlinearDesign",
    "RowMap",
    "make_nonlinear_design",
    "make_regression_design",
    "merge_factors",
]
