"""What every kind's design offers the stages after it (the ``ModelDesign`` protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mixedbayes.design.data import DataReport
    from mixedbayes.design.groups import GroupFactor
    from mixedbayes.families import Family, Link
    from mixedbayes.spec.model import ModelSpec

__all__ = ["ModelDesign"]


class ModelDesign(Protocol):
    """A spec applied to data, whatever its kind.

    Attributes
    ----------
    spec : ModelSpec
    family, link : Family, Link
        The response's family and link.
    response : str
        The response as written.
    y : ndarray
        The response of the rows used.
    groups : tuple of GroupFactor
        The grouping factors, each read by the design's rows.
    data : DataFrame
        The rows used (a copy; original index kept).
    report : DataReport
        Rows in, used, and dropped with reasons.
    """

    @property
    def spec(self) -> ModelSpec:
        """The spec the design applies."""
        ...

    @property
    def family(self) -> Family:
        """The response family."""
        ...

    @property
    def link(self) -> Link:
        """The link."""
        ...

    @property
    def response(self) -> str:
        """The response as written."""
        ...

    @property
    def y(self) -> np.ndarray:
        """The response of the rows used."""
        ...

    @property
    def groups(self) -> tuple[GroupFactor, ...]:
        """The grouping factors."""
        ...

    @property
    def data(self) -> pd.DataFrame:
        """The rows used."""
        ...

    @property
    def source(self) -> pd.DataFrame:
        """The data as given (a copy): what a saved fit stores and reloads from."""
        ...

    @property
    def report(self) -> DataReport:
        """Rows in, used and dropped."""
        ...

    @property
    def n(self) -> int:
        """Number of rows used."""
        ...

    @property
    def obs_index(self) -> pd.Index:
        """The original row labels of the rows used."""
        ...

    def group(self, name: str) -> GroupFactor:
        """The grouping factor called ``name``."""
        ...

    def coords(self) -> dict[str, list[Any]]:
        """Coordinates of every dimension of the model."""
        ...
