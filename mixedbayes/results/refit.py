"""Fit methods that refit the model (``fit.update``, ``fit.kfold``): a registry.

Refitting runs :func:`mixedbayes.fit`, which sits above :class:`~mixedbayes.Fit`; so the
refitting methods live in :mod:`mixedbayes.workflows` and register here
(:func:`register_refit`), and ``Fit`` looks them up by name (:func:`refit_method`). Importing
:mod:`mixedbayes` registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["REFITS", "refit_method", "register_refit"]

#: Method name → the workflow implementing it (called with the fit first).
REFITS: dict[str, Callable[..., Any]] = {}


def register_refit(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a refitting workflow as the ``Fit`` method ``name``."""

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        REFITS[name] = fn
        return fn

    return add


def refit_method(name: str) -> Callable[..., Any]:
    """The workflow registered as ``name`` (importing :mod:`mixedbayes` registers them)."""
    return REFITS[name]
