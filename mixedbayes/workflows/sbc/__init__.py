"""Validation of models and samplers: simulation-based calibration (:func:`sbc`)."""

from mixedbayes.workflows.sbc.run import SBCResult, current_replicate, sbc
from mixedbayes.workflows.sbc.stats import chi2_uniformity, ecdf_band, ecdf_test

__all__ = ["SBCResult", "chi2_uniformity", "current_replicate", "ecdf_band", "ecdf_test", "sbc"]
