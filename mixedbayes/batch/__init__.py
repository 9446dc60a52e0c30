"""Batches of independent tasks (fits): serial, local processes or Dask; retries; resume.

See :func:`run_batch`.
"""

from mixedbayes.batch.core import (
    BACKENDS,
    EXECUTORS,
    Attempt,
    BatchError,
    BatchResult,
    TaskRecord,
    check_backend,
    iter_failures,
    load_records,
    run_batch,
)

__all__ = [
    "BACKENDS",
    "EXECUTORS",
    "Attempt",
    "BatchError",
    "BatchResult",
    "TaskRecord",
    "check_backend",
    "iter_failures",
    "load_records",
    "run_batch",
]
