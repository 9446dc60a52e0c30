"""PyTensor's notice about its BLAS fallback, shown once in the docs instead of on every fit.

Without BLAS libraries to link to (a pip install), PyTensor compiles the C code of its
matrix products against NumPy's C-API and logs ``Using NumPy C-API based implementation for
BLAS functions.`` each time it compiles such an operation: on the first fit of every
session. It is not a problem of the model or the fit (nutpie samples through numba, which
uses BLAS itself); ``docs/install.md`` explains it, and how to link PyTensor to a BLAS.
Only that one message is dropped: PyTensor's other warnings (its ``UserWarning`` that it
could not link to a BLAS, included) are left as they are.
"""

from __future__ import annotations

import logging

__all__ = ["BLAS_FALLBACK_NOTICE", "quiet_blas_fallback_notice"]

#: The message PyTensor logs (``pytensor.tensor.blas``) when it uses NumPy's C-API for BLAS.
BLAS_FALLBACK_NOTICE = "Using NumPy C-API based implementation for BLAS functions."
_LOGGER = "pytensor.tensor.blas"


class _DropBlasFallbackNotice(logging.Filter):
    """Drops exactly :data:`BLAS_FALLBACK_NOTICE`; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != BLAS_FALLBACK_NOTICE


def quiet_blas_fallback_notice() -> None:
    """Install the filter on PyTensor's BLAS logger (once; PyTensor need not be imported)."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(f, _DropBlasFallbackNotice) for f in logger.filters):
        logger.addFilter(_DropBlasFallbackNotice())
