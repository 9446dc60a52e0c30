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
    frame_fingerprint,
    iter_failures,
    load_records,
    run_batch,
    settings_fingerprint,
)

__all__ = [
    "BACKENDS",
    "EXECUTORS",
    "Attempt",
    "BatchError",
    "BatchResult",
    "TaskRecord",
    "check_backend",
    "frame_fingerprint",
    "iter_failures",
    "load_records",
    "run_batch",
    "settings_fingerprint",
]
