"""Stage 2: spec + data → Design (arrays, group structure, stateful transforms)."""

from mixedbayes.design.data import DataReport, DataWarning, Dropped
from mixedbayes.design.design import Design, NewData, make_design
from mixedbayes.design.groups import GroupBlock, GroupFactor

__all__ = [
    "DataReport",
    "DataWarning",
    "Design",
    "Dropped",
    "GroupBlock",
    "GroupFactor",
    "NewData",
    "make_design",
]
