"""How the hazard reads a longitudinal outcome: the registry of association structures.

An association turns the outcome's linear predictor at given times into the rows the
hazard reads. The design stage hands it ``at(times, subjects)``: the outcome's fixed-effect
rows ``X`` and, per grouping factor, ``(level index, Z)`` at those times (the subject's
covariates, time set). The predictor is linear in the effects, so every association is
again such rows:

- ``value``: the rows at t;
- ``slope``: their central difference, d/dt of the predictor;
- ``area``: their Gauss–Legendre integral over [0, t];
- ``shared``: no rows; the hazard reads the subject's random effects of the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.registry import Registry

__all__ = ["ASSOCIATIONS", "AssociationType", "Rows", "register_association"]

#: Fixed-effect rows and, per grouping factor, (level index, Z) at a set of times.
Rows = tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]
#: ``at(times, subjects)``: the outcome's :data:`Rows` at those times.
Reader = Callable[[np.ndarray, np.ndarray], Rows]


class AssociationType:
    """One association structure (subclass, set ``name``, register)."""

    name: ClassVar[str]
    #: Whether the hazard reads the subject's random effects directly (no rows).
    reads_effects: ClassVar[bool] = False

    def rows(
        self, at: Reader, times: np.ndarray, subjects: np.ndarray, scale: float, nodes: int
    ) -> Rows | None:
        """The rows the hazard reads at ``times`` (one per subject entry); ``scale`` is the
        follow-up's length, ``nodes`` the quadrature order."""
        raise NotImplementedError


#: The registered association structures by name.
ASSOCIATIONS: Registry[AssociationType] = Registry("association", "association")


def register_association(cls: type[AssociationType]) -> type[AssociationType]:
    """Class decorator registering an instance of ``cls`` under ``cls.name``."""
    ASSOCIATIONS.add(cls.name, cls())
    return cls


@register_association
class Value(AssociationType):
    """The outcome's current linear predictor."""

    name = "value"

    def rows(
        self, at: Reader, times: np.ndarray, subjects: np.ndarray, scale: float, nodes: int
    ) -> Rows:
        return at(times, subjects)


@register_association
class Slope(AssociationType):
    """The predictor's time derivative (central difference, step 1e-4 × the follow-up)."""

    name = "slope"
    step: ClassVar[float] = 1e-4

    def rows(
        self, at: Reader, times: np.ndarray, subjects: np.ndarray, scale: float, nodes: int
    ) -> Rows:
        h = self.step * scale
        Xp, mp = at(times + h, subjects)
        Xm, mm = at(times - h, subjects)
        maps = {g: (mp[g][0], (mp[g][1] - mm[g][1]) / (2 * h)) for g in mp}
        return (Xp - Xm) / (2 * h), maps


@register_association
class Area(AssociationType):
    """The predictor's integral from 0 to t (Gauss–Legendre, ``nodes`` points)."""

    name = "area"

    def rows(
        self, at: Reader, times: np.ndarray, subjects: np.ndarray, scale: float, nodes: int
    ) -> Rows:
        from mixedbayes.survival.quadrature import interval_nodes

        t, w = interval_nodes(np.zeros_like(times), times, nodes)
        X, maps = at(t.ravel(), np.repeat(subjects, nodes))
        weights = w.ravel()[:, None]
        n = len(times)
        out = {}
        for g, (index, Z) in maps.items():
            per = index.reshape(n, nodes)
            if not (per == per[:, :1]).all():
                raise SpecError(
                    f"the area association needs the levels of {g!r} constant over each "
                    "subject's follow-up.",
                    where="association",
                    hint="use value or slope for an outcome with effects of a time-varying factor.",
                )
            out[g] = (per[:, 0], (Z * weights).reshape(n, nodes, -1).sum(axis=1))
        return (X * weights).reshape(n, nodes, -1).sum(axis=1), out


@register_association
class Shared(AssociationType):
    """The subject's random effects of the outcome, one coefficient each."""

    name = "shared"
    reads_effects = True

    def rows(self, *args: Any, **kwargs: Any) -> None:
        return None
