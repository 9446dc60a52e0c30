"""Diagnostics of a fit: convergence gates and model checks (LOO, comparison, PPC); the
simulation-based calibration of a model and sampler is in :mod:`mixedbayes.workflows.sbc`."""

from mixedbayes.diagnostics.checks import LooReport, compare, loo, plot_ppc, ppc_stats
from mixedbayes.diagnostics.gates import (
    ConvergenceWarning,
    Diagnostics,
    Gate,
    diagnose,
    warn_if_bad,
)
from mixedbayes.diagnostics.rootogram import Rootogram, rootogram

__all__ = [
    "ConvergenceWarning",
    "Diagnostics",
    "Gate",
    "LooReport",
    "Rootogram",
    "compare",
    "diagnose",
    "loo",
    "plot_ppc",
    "ppc_stats",
    "rootogram",
    "warn_if_bad",
]
