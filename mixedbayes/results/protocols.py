"""What the functions reading a fit need of it: the :class:`FitLike` protocol.

The implementations behind :class:`~mixedbayes.Fit`'s methods (results, diagnostics, the
report) take a ``FitLike``, so that none of them imports :mod:`mixedbayes.results.fit`:
``Fit`` sits on top, imports them and satisfies the protocol. This module is a leaf: at run
time it imports nothing of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from mixedbayes.compile import CompiledModel
    from mixedbayes.design import Design
    from mixedbayes.kinds import Kind
    from mixedbayes.priors import PriorTable
    from mixedbayes.results.predict import Level, NewGroups
    from mixedbayes.spec import ModelSpec

__all__ = ["FitLike"]


class FitLike(Protocol):
    """A fitted model as the functions that read one see it (:class:`~mixedbayes.Fit` is one).

    Attributes
    ----------
    idata : xarray.DataTree
        The draws and the data (``posterior``, ``sample_stats``, ``observed_data``, ...).
    spec : ModelSpec
    design : Design
    priors : PriorTable
    compiled : CompiledModel
        The compiled model (may be built on first use).
    posterior : xarray.Dataset
        The posterior draws.
    model : pymc.Model
        The PyMC model behind the fit.
    timings : dict of str to float
        Seconds spent in each stage.
    kind : Kind
        The model kind (its capabilities say which outputs the fit offers).
    """

    @property
    def idata(self) -> xr.DataTree: ...

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def design(self) -> Design: ...

    @property
    def priors(self) -> PriorTable: ...

    @property
    def compiled(self) -> CompiledModel: ...

    @property
    def kind(self) -> Kind:
        """The model kind: what the fit can do (``kind.capabilities``)."""
        ...

    @property
    def posterior(self) -> xr.Dataset: ...

    @property
    def model(self) -> Any: ...

    @property
    def timings(self) -> dict[str, float]: ...

    def summary(
        self,
        prob: float = 0.95,
        *,
        var_names: list[str] | None = None,
        include_group_levels: bool = False,
    ) -> pd.DataFrame:
        """Tidy summary: one row per parameter (:meth:`mixedbayes.Fit.summary`)."""
        ...

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        kind: Literal["link", "mean", "response"] = "mean",
        level: Level = None,
        new_groups: NewGroups = "error",
        seed: int | None = None,
    ) -> xr.DataArray:
        """Posterior draws of predictions (:meth:`mixedbayes.Fit.predict`)."""
        ...

    def sample_posterior_predictive(self, seed: int | None = None) -> xr.DataTree:
        """Add (and return) the ``posterior_predictive`` group of ``idata``."""
        ...
