"""Run many independent tasks (fits) serially, in local processes, or on Dask.

The batch layer knows nothing of models: it calls ``fn(item)`` for every ``(key, item)`` of a
mapping and returns what each call returned. What it guarantees:

- **Nothing is lost.** A task that raises is retried (``retries`` times); every failed attempt
  is kept with its traceback text, and a task that never succeeds is recorded as failed (on
  disk and in the result), not dropped.
- **Results are written as they finish.** With ``out_dir``, every finished task is written at
  once to ``out_dir/tasks/<key>.ok.pkl`` (or ``.failed.pkl`` plus a readable ``.failed.txt``),
  atomically, by the driver (workers need no shared file system).
- **An interrupted run resumes.** Calling again with the same ``out_dir`` skips the tasks whose
  result is on disk and re-runs the rest (failed ones included; their earlier attempts are
  kept). A ``fingerprint`` stored in ``out_dir/manifest.json`` guards against resuming a
  different batch in the same directory.

Workers are long-lived (a process pool, or Dask workers), so per-process caches (such as the
compiled model a sampler keeps between refits of one model structure) serve many tasks.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mixedbayes._system import usable_cpus
from mixedbayes.batch.executors import EXECUTORS, _Book, check_backend
from mixedbayes.batch.records import (
    Attempt,
    BatchError,
    BatchResult,
    TaskRecord,
    _Store,
    iter_failures,
    load_records,
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

Backend = Literal["serial", "processes", "dask"]
#: The executors :func:`run_batch` knows (the names of :data:`EXECUTORS`).
BACKENDS: tuple[str, ...] = tuple(EXECUTORS)

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,199}")


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short hash of a batch's settings (JSON-serialisable), for ``run_batch``'s
    ``fingerprint``: a resumed batch with other settings is refused, not mixed."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def frame_fingerprint(data: Any) -> str:
    """A short hash of a data frame (values, index, columns and dtypes), or of a mapping of
    frames, for a batch's settings."""
    import hashlib
    import json

    import pandas as pd

    if isinstance(data, Mapping):
        data = pd.DataFrame({k: [frame_fingerprint(v)] for k, v in data.items()})
    content = pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes()
    meta = json.dumps([list(map(str, data.columns)), list(map(str, data.dtypes))]).encode()
    return hashlib.sha256(content + meta).hexdigest()[:16]


def _normalise(tasks: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(tasks, Mapping):
        items = {str(k): v for k, v in tasks.items()}
        if len(items) != len(tasks):
            raise BatchError("two task keys are equal as strings.", where="tasks")
    else:
        items = {f"task-{i:05d}": v for i, v in enumerate(tasks)}
    bad = [k for k in items if not _KEY.fullmatch(k)]
    if bad:
        raise BatchError(
            f"task keys must be usable as file names; these are not: {bad[:5]}.",
            where="tasks",
            hint="use letters, digits and '_', '.', '=', '-' (at most 200 characters), "
            "not starting with a punctuation mark.",
        )
    return items


def run_batch(
    fn: Callable[..., Any],
    tasks: Mapping[str, Any] | Sequence[Any],
    *,
    backend: Backend = "serial",
    workers: int | None = None,
    address: str | None = None,
    client: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    retries: int = 1,
    resume: bool = True,
    fingerprint: str | None = None,
    pass_attempt: bool = False,
    on_record: Callable[[TaskRecord], None] | None = None,
) -> BatchResult:
    """Call ``fn(item)`` for every task, with retries, results on disk and resume.

    Parameters
    ----------
    fn : callable
        A picklable function (defined at module level, or a ``functools.partial`` of one) for
        the ``processes`` and ``dask`` backends. Called as ``fn(item)``, or
        ``fn(item, attempt=k)`` (``k`` = 1, 2, ...) with ``pass_attempt``.
    tasks : mapping of str to item, or sequence of items
        The work, by key (a sequence gets the keys ``task-00000``, ...). Keys name the
        result files.
    backend : {"serial", "processes", "dask"}
        In this process; in a pool of ``workers`` spawned processes (long-lived); or on Dask:
        the cluster at ``address`` (or ``client``), else a new ``LocalCluster`` of
        ``workers`` single-threaded worker processes, closed at the end.
    workers : int, optional
        Worker processes (default: the CPUs available). Ignored with ``address``/``client``.
    address : str, optional
        Scheduler address of a running Dask cluster (e.g. one started with dask-jobqueue on
        SLURM: ``SLURMCluster(...).scheduler_address``).
    client : distributed.Client, optional
        A Dask client to use (not closed at the end).
    out_dir : path, optional
        Where each result is written as it finishes; with ``resume`` a second call skips the
        tasks already done. Without it nothing is written.
    retries : int
        Further attempts after a failure (0: one attempt only).
    resume : bool
        Reuse the results in ``out_dir`` (successful tasks are skipped; failed ones are run
        again, their earlier attempts kept in the record).
    fingerprint : str, optional
        Identifies the batch (e.g. a hash of its settings); resuming in a directory written
        with another fingerprint raises :class:`BatchError`.
    pass_attempt : bool
        Pass the attempt number to ``fn`` (e.g. to change a sampler seed on a retry).
    on_record : callable, optional
        Called in the driver with each :class:`TaskRecord` as it is written.

    Returns
    -------
    BatchResult
        ``.values`` (key → value), ``.failures`` (key → record with every traceback),
        ``.reused`` (keys read from disk).

    Examples
    --------
    >>> from mixedbayes.batch import run_batch
    >>> res = run_batch(abs, {"a": -1, "b": 2})
    >>> res.values
    {'a': 1, 'b': 2}
    """
    check_backend(backend)
    if retries < 0:
        raise BatchError(f"retries must be >= 0, not {retries}.", where="retries")
    if workers is not None and workers < 1:
        raise BatchError(f"workers must be >= 1, not {workers}.", where="workers")
    items = _normalise(tasks)
    store = _Store(Path(out_dir) if out_dir is not None else None)
    store.prepare(fingerprint)
    previous: dict[str, TaskRecord] = {}
    reused: list[str] = []
    if resume and out_dir is not None:
        for key in items:
            record = store.load(key)
            if record is not None:
                previous[key] = record
                if record.ok:
                    reused.append(key)
    book = _Book(store, retries + 1, on_record, previous)
    book.records.update({k: previous[k] for k in reused})
    todo = [k for k in items if k not in book.records]
    n_workers = workers or usable_cpus()
    t0 = time.perf_counter()
    if todo:
        n_workers = EXECUTORS[backend](
            fn, items, todo, book, pass_attempt, n_workers=n_workers, address=address, client=client
        )
    records = {k: book.records[k] for k in items}
    return BatchResult(
        records,
        tuple(reused),
        time.perf_counter() - t0,
        Path(out_dir) if out_dir is not None else None,
        backend,
        n_workers,
    )
