"""Workflows that run fits: the layer above :mod:`mixedbayes.api`.

- :mod:`mixedbayes.workflows.naive`: the pooled fit beside the mixed one
  (``mb.compare_naive``).
- :mod:`mixedbayes.workflows.impute` and :mod:`mixedbayes.workflows.multiple`: multiple
  imputation (``mb.impute``: M completed data sets; ``mb.fit_multiple``: one fit per set
  through :mod:`mixedbayes.batch`, pooled by :class:`mixedbayes.MultipleFit`).
- :mod:`mixedbayes.workflows.sbc`: simulation-based calibration of a model and sampler
  (``mb.sbc``).

Modules here import :mod:`mixedbayes.api`; the API and the stages below it never import
this package. The functions users call are re-exported by :mod:`mixedbayes`.
"""
