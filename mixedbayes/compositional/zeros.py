"""Zeros in compositions: the registry of ways to treat them before a log-ratio.

- ``model``: no replacement; a count likelihood (multinomial, Dirichlet-multinomial) gives
  zeros their probability (the only choice that does not invent data);
- ``pseudocount``: add ``pseudocount`` (default 0.5) to every count;
- ``multiplicative``: replace zeros of each sample by ``delta`` (default 0.65 of the
  detection limit: one read for counts, the sample's smallest non-zero proportion for
  proportions; at most half the sample's mass in all) and shrink its non-zero parts so that
  it still sums to 1, keeping their ratios (Martín-Fernández et al. 2003).

Each returns positive compositions (proportions, rows summing to 1). No PyMC here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mixedbayes.registry import Registry

__all__ = ["ZEROS", "register_zeros", "replace_zeros"]

ZeroRule = Callable[[np.ndarray, float], np.ndarray]

#: Zero-handling rules by name: ``rule(counts_or_proportions, value) -> proportions``.
ZEROS: Registry[ZeroRule | None] = Registry("zero handling", "zeros")


def register_zeros(name: str) -> Callable[[ZeroRule], ZeroRule]:
    """Decorator registering a zero-replacement rule under ``name``."""

    def deco(fn: ZeroRule) -> ZeroRule:
        ZEROS.add(name, fn)
        return fn

    return deco


ZEROS.add("model", None)  # the count likelihood models zeros: nothing is replaced


def _closure(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.sum(x, axis=1, keepdims=True))


@register_zeros("pseudocount")
def _pseudocount(x: np.ndarray, value: float) -> np.ndarray:
    return _closure(np.asarray(x, dtype=float) + value)


@register_zeros("multiplicative")
def _multiplicative(x: np.ndarray, value: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    counts = bool(np.all(x == np.round(x)))
    p = _closure(x)
    out = p.copy()
    for i, row in enumerate(p):
        zero = row == 0
        if not zero.any():
            continue
        # the detection limit: one read of the sample's counts, or its smallest proportion
        limit = 1.0 / float(x[i].sum()) if counts else float(np.min(row[~zero]))
        delta = min(value * limit, 0.5 / zero.sum())  # at most half the mass to the zeros
        out[i, zero] = delta
        out[i, ~zero] = row[~zero] * (1.0 - delta * zero.sum())
    return out


def replace_zeros(x: np.ndarray, how: str, value: float) -> np.ndarray:
    """Positive compositions from counts or proportions ``x`` by the rule ``how``.

    Parameters
    ----------
    x : ndarray, shape (samples, taxa)
    how : str
        A key of :data:`ZEROS` other than ``model``.
    value : float
        The rule's parameter (the pseudocount; the multiplicative ``delta`` fraction).
    """
    rule = ZEROS.get(how)
    if rule is None:
        if np.any(np.asarray(x) <= 0):
            raise ValueError("zeros: model keeps zeros; a log-ratio needs a replacement rule")
        return _closure(np.asarray(x, dtype=float))
    return rule(np.asarray(x, dtype=float), value)
