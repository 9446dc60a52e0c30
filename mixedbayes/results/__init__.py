"""Stage 4 results: Fit, summaries, predictions, save/load."""

from mixedbayes.results.fit import Fit, load_fit
from mixedbayes.results.io import save_fit

__all__ = ["Fit", "load_fit", "save_fit"]
