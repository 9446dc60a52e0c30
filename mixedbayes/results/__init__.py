"""Stage 4 results: Fit, summaries, predictions, save/load."""

from mixedbayes.results.fit import Fit
from mixedbayes.results.io import load_fit, save_fit

__all__ = ["Fit", "load_fit", "save_fit"]
