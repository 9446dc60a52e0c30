"""Diagnostics of a fit: convergence gates and model checks (LOO, comparison, PPC)."""

from mixedbayes.diagnostics.checks import LooReport, compare, loo, plot_ppc, ppc_stats
from mixedbayes.diagnostics.gates import (
    ConvergenceWarning,
    Diagnostics,
    Gate,
    diagnose,
    warn_if_bad,
)

__all__ = [
    "ConvergenceWarning",
    "Diagnostics",
    "Gate",
    "LooReport",
    "compare",
    "diagnose",
    "loo",
    "plot_ppc",
    "ppc_stats",
    "warn_if_bad",
]
