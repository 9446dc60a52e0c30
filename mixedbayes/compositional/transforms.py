"""Log-ratio transforms of compositions: the registry of stateful transforms (CLR, ALR, ILR).

Every transform here is linear in the log-composition: ``coords = log(x) @ M`` with ``M`` a
``taxa × coordinates`` matrix whose columns sum to zero (so the coordinates do not depend on
the composition's total), and the inverse is ``softmax(coords @ pinv(M))``:

- ``clr``: ``M = I − 11'/J``; one coordinate per taxon, each row summing to zero;
- ``alr``: ``log(x_j / x_ref)`` for every taxon but the reference (default: the most
  prevalent taxon of the data the transform is set up on);
- ``ilr``: an orthonormal basis of the zero-sum subspace (``M'M = I``, ``M'1 = 0``): pivot
  coordinates by default (Hron et al. 2017), ``z_d = sqrt((J−d)/(J−d+1)) ·
  log(x_d / gmean(x_{d+1..J}))``, or a user basis.

A transform's state (the reference, the basis, the taxa) is set by :meth:`Transform.setup`
and kept with the fit, so predictions use the same coordinates. No PyMC is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from mixedbayes.errors import SpecError
from mixedbayes.registry import Registry

__all__ = [
    "TRANSFORMS",
    "Transform",
    "get_transform",
    "pivot_basis",
    "register_transform",
    "softmax",
]


def softmax(log_x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(log_x)`` normalised to sum 1 along ``axis`` (stable)."""
    shifted = log_x - np.max(log_x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / np.sum(e, axis=axis, keepdims=True))


def pivot_basis(n: int) -> np.ndarray:
    """The ``n × (n−1)`` pivot (ILR) basis: orthonormal columns, each summing to zero.

    Column ``d`` contrasts taxon ``d`` with the geometric mean of the taxa after it.
    """
    if n < 2:
        raise SpecError(
            f"a composition needs at least 2 taxa, not {n}.",
            where="taxa",
            hint="keep more taxa (lower the filters).",
        )
    V = np.zeros((n, n - 1))
    for d in range(n - 1):
        k = n - d - 1  # taxa after d
        scale = np.sqrt(k / (k + 1.0))
        V[d, d] = scale
        V[d + 1 :, d] = -scale / k
    return V


@dataclass(frozen=True)
class Transform:
    """A log-ratio transform; options are the dataclass fields, ``taxa`` is its state.

    Subclass, set ``name`` and implement :meth:`matrix` (and :meth:`coordinates` when the
    coordinates are not the taxa), then register.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    taxa: tuple[str, ...] = field(default=(), compare=True)

    def setup(self, taxa: Sequence[str], counts: np.ndarray | None = None) -> Transform:
        """A copy set up on ``taxa`` (columns of ``counts``, samples × taxa, when given)."""
        if len(taxa) < 2:
            pivot_basis(len(taxa))  # raises the named error
        return dataclasses.replace(self, taxa=tuple(map(str, taxa)))

    def _require(self) -> int:
        if not self.taxa:
            raise ValueError(f"the {self.name} transform is not set up (call setup first)")
        return len(self.taxa)

    def matrix(self) -> np.ndarray:
        """``M`` (taxa × coordinates): ``coords = log(x) @ M``."""
        raise NotImplementedError

    def coordinates(self) -> tuple[str, ...]:
        """The coordinates' names."""
        return self.taxa

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Coordinates of compositions ``x`` (rows; positive parts, any total)."""
        x = np.asarray(x, dtype=float)
        if np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise ValueError("log-ratios need positive, finite parts (replace zeros first)")
        return np.asarray(np.log(x) @ self.matrix())

    def from_log(self, log_x: np.ndarray) -> np.ndarray:
        """Coordinates of compositions given by their logs (any additive constant)."""
        return np.asarray(np.asarray(log_x, dtype=float) @ self.matrix())

    def inverse(self, coords: np.ndarray) -> np.ndarray:
        """The compositions (rows summing to 1) with these coordinates."""
        return softmax(np.asarray(coords, dtype=float) @ np.linalg.pinv(self.matrix()))


#: The registered transforms by name.
TRANSFORMS: Registry[type[Transform]] = Registry("log-ratio transform", "transform")


def register_transform(cls: type[Transform]) -> type[Transform]:
    """Class decorator registering ``cls`` under ``cls.name``."""
    TRANSFORMS.add(cls.name, cls)
    return cls


def get_transform(name: str, **options: object) -> Transform:
    """A new transform ``name`` with ``options`` (``SpecError`` naming the known ones)."""
    cls = TRANSFORMS.get(name)
    known = {f.name for f in dataclasses.fields(cls)} - {"taxa"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SpecError(
            f"the {name} transform takes no option {unknown[0]!r}.",
            where="transform",
            hint=f"its options: {sorted(known)}." if known else "it takes no options.",
        )
    return cls(**options)  # type: ignore[arg-type]


@register_transform
@dataclass(frozen=True)
class CLR(Transform):
    """Centred log-ratio: ``log(x_j / gmean(x))``."""

    name = "clr"
    description = "centred log-ratio, log(x_j / geometric mean)"

    def matrix(self) -> np.ndarray:
        n = self._require()
        return np.eye(n) - np.full((n, n), 1.0 / n)


@register_transform
@dataclass(frozen=True)
class ALR(Transform):
    """Additive log-ratio against a reference taxon: ``log(x_j / x_ref)``, ``j ≠ ref``."""

    name = "alr"
    description = "additive log-ratio, log(x_j / x_reference)"
    reference: str | None = None

    def setup(self, taxa: Sequence[str], counts: np.ndarray | None = None) -> Transform:
        taxa = tuple(map(str, taxa))
        pivot_basis(len(taxa))  # at least 2 taxa, or the named error
        if self.reference is not None:
            if self.reference not in taxa:
                raise SpecError(
                    f"the ALR reference {self.reference!r} is not one of the taxa.",
                    where="reference",
                    hint=f"use a taxon kept by the filters, e.g. {list(taxa[:5])}.",
                )
            reference = self.reference
        elif counts is not None:
            prevalence = np.mean(np.asarray(counts) > 0, axis=0)
            totals = np.sum(np.asarray(counts), axis=0)
            reference = taxa[int(np.lexsort((-totals, -prevalence))[0])]
        else:
            reference = taxa[-1]
        return dataclasses.replace(self, taxa=taxa, reference=reference)

    def _ref(self) -> int:
        self._require()
        assert self.reference is not None
        return self.taxa.index(self.reference)

    def matrix(self) -> np.ndarray:
        n, ref = self._require(), self._ref()
        keep = [j for j in range(n) if j != ref]
        M = np.zeros((n, n - 1))
        M[keep, np.arange(n - 1)] = 1.0
        M[ref, :] = -1.0
        return M

    def coordinates(self) -> tuple[str, ...]:
        return tuple(t for t in self.taxa if t != self.reference)


@register_transform
@dataclass(frozen=True)
class ILR(Transform):
    """Isometric log-ratio on an orthonormal basis of the zero-sum subspace (pivot
    coordinates by default; ``basis``: a taxa × (taxa − 1) matrix of your own)."""

    name = "ilr"
    description = "isometric log-ratio (pivot coordinates by default)"
    basis: tuple[tuple[float, ...], ...] | None = None

    def setup(self, taxa: Sequence[str], counts: np.ndarray | None = None) -> Transform:
        base = super().setup(taxa, counts)
        n = len(base.taxa)
        if self.basis is None:
            return base
        V = np.asarray(self.basis, dtype=float)
        if V.shape != (n, n - 1):
            raise SpecError(
                f"the ILR basis must be taxa × (taxa − 1) = {n} × {n - 1}, not {V.shape}.",
                where="transform",
                hint="give one row per taxon kept, or leave the basis out (pivot coordinates).",
            )
        if not (np.allclose(V.T @ V, np.eye(n - 1), atol=1e-8) and np.allclose(V.sum(0), 0)):
            raise SpecError(
                "the ILR basis must be orthonormal with columns summing to zero.",
                where="transform",
                hint="normalise a sequential binary partition's contrasts, or use the default.",
            )
        return base

    def matrix(self) -> np.ndarray:
        n = self._require()
        return pivot_basis(n) if self.basis is None else np.asarray(self.basis, dtype=float)

    def coordinates(self) -> tuple[str, ...]:
        return tuple(f"ilr{d + 1}" for d in range(self._require() - 1))
