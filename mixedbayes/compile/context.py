"""The build context: the model being built and the names of the part being built.

Every builder of the compile stage takes a :class:`BuildContext` instead of reading a
``with pm.Model():`` block: the model is explicit, and a part's names come from
:class:`~mixedbayes.naming.Names`, so that one builder can be called for several parts of one
model (the parameters of a nonlinear model, the outcomes of a joint model) without name
clashes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from mixedbayes.naming import Names

__all__ = ["BuildContext", "Dims", "new_model"]

Dims = str | Sequence[str] | None


def new_model(coords: Mapping[str, Sequence[Any]] | None = None) -> Any:
    """A new, empty ``pm.Model`` with ``coords`` (the one place models are made)."""
    import pymc as pm

    return pm.Model(coords=dict(coords or {}))


@dataclass(frozen=True)
class BuildContext:
    """The model under construction and the names of one of its parts.

    Attributes
    ----------
    model : pymc.Model
    names : Names
        The part's names (``Names()`` for the plain part).
    """

    model: Any
    names: Names = field(default_factory=Names)

    def scoped(self, part: str) -> BuildContext:
        """The same model with the names of the part ``part``."""
        return replace(self, names=Names(part))

    @contextmanager
    def active(self) -> Iterator[Any]:
        """Make the model the active one, for PyMC constructors that need it."""
        with self.model:
            yield self.model

    def data(self, name: str, value: npt.ArrayLike, dims: Dims = None) -> Any:
        """A data container ``name`` (already a full name, e.g. ``names.data("X")``)."""
        import pymc as pm

        return pm.Data(name, np.asarray(value), dims=dims, model=self.model)

    def deterministic(self, name: str, value: Any, dims: Dims = None) -> Any:
        """A named deterministic kept in the posterior."""
        import pymc as pm

        return pm.Deterministic(name, value, dims=dims, model=self.model)

    def potential(self, name: str, value: Any) -> Any:
        """A named term added to the log-density."""
        import pymc as pm

        return pm.Potential(name, value, model=self.model)

    def add_coords(self, coords: Mapping[str, Sequence[Any]]) -> None:
        """Add the dims ``coords`` that the model does not have yet."""
        for name, values in coords.items():
            if name not in self.model.coords:
                self.model.add_coord(name, list(values))

    def register(self, dist: Any, name: str, *, observed: Any = None, dims: Dims = None) -> Any:
        """Register a distribution made with ``.dist(...)`` as the model variable ``name``."""
        if isinstance(dims, str):
            dims = (dims,)
        return self.model.register_rv(dist, name, observed=observed, dims=dims)
