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

import contextlib
import json
import os
import pickle
import re
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mixedbayes.errors import MixedBayesError

__all__ = [
    "BACKENDS",
    "Attempt",
    "BatchError",
    "BatchResult",
    "TaskRecord",
    "iter_failures",
    "load_records",
    "run_batch",
]

Backend = Literal["serial", "processes", "dask"]
#: The executors :func:`run_batch` knows.
BACKENDS: tuple[str, ...] = ("serial", "processes", "dask")

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,199}")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class BatchError(MixedBayesError):
    """A batch was called wrongly: a bad key, backend or output directory."""

    kind = "batch"


@dataclass(frozen=True)
class Attempt:
    """One failed attempt at a task: the error, its traceback text, where and how long."""

    number: int
    error: str
    traceback: str
    seconds: float
    worker: str


@dataclass(frozen=True)
class TaskRecord:
    """What became of one task.

    Attributes
    ----------
    key : str
    status : {"ok", "failed"}
    value : object
        What ``fn`` returned (None for a failed task).
    attempts : int
        Attempts made, over every run of the batch.
    errors : tuple of Attempt
        Every failed attempt, oldest first (a task that succeeded on a retry keeps them).
    seconds : float
        Time of the last attempt, on the worker.
    worker : str
        ``host:pid`` of the worker that ran the last attempt.
    finished : str
        When the record was written (ISO 8601, UTC).
    """

    key: str
    status: Literal["ok", "failed"]
    value: Any
    attempts: int
    errors: tuple[Attempt, ...] = ()
    seconds: float = 0.0
    worker: str = ""
    finished: str = ""

    @property
    def ok(self) -> bool:
        """Whether the task succeeded."""
        return self.status == "ok"

    def describe(self) -> str:
        """Readable account of the failed attempts (their tracebacks)."""
        lines = [f"task {self.key!r}: {self.status} after {self.attempts} attempt(s)"]
        for a in self.errors:
            lines.append(f"--- attempt {a.number} on {a.worker} ({a.seconds:.2f} s): {a.error}")
            lines.append(a.traceback.rstrip())
        return "\n".join(lines) + "\n"


@dataclass
class BatchResult:
    """The records of a batch, by key, in the order the tasks were given.

    Attributes
    ----------
    records : dict of str to TaskRecord
    reused : tuple of str
        Keys whose result was found on disk (not run again).
    seconds : float
        Wall-clock time of this run.
    out_dir : Path or None
    """

    records: dict[str, TaskRecord]
    reused: tuple[str, ...] = ()
    seconds: float = 0.0
    out_dir: Path | None = None
    backend: str = "serial"
    workers: int = 1

    @property
    def values(self) -> dict[str, Any]:
        """What each successful task returned, by key."""
        return {k: r.value for k, r in self.records.items() if r.ok}

    @property
    def failures(self) -> dict[str, TaskRecord]:
        """The tasks that failed every attempt, by key."""
        return {k: r for k, r in self.records.items() if not r.ok}

    @property
    def ok(self) -> bool:
        """Whether every task succeeded."""
        return not self.failures

    @property
    def retried(self) -> dict[str, TaskRecord]:
        """Tasks that needed more than one attempt (successful or not)."""
        return {k: r for k, r in self.records.items() if r.attempts > 1}

    def __repr__(self) -> str:
        return (
            f"BatchResult({len(self.records)} tasks: {len(self.values)} ok, "
            f"{len(self.failures)} failed, {len(self.reused)} reused from disk; "
            f"{self.backend}, {self.seconds:.1f} s)"
        )


# --------------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class _Outcome:
    key: str
    attempt: int
    ok: bool
    value: Any = None
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0
    worker: str = ""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _call(
    fn: Callable[..., Any], key: str, item: Any, attempt: int, pass_attempt: bool
) -> _Outcome:
    """Run one attempt on a worker, catching any exception as text (it always pickles)."""
    t0 = time.perf_counter()
    try:
        value = fn(item, attempt=attempt) if pass_attempt else fn(item)
    except Exception as exc:
        return _Outcome(
            key,
            attempt,
            False,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            seconds=time.perf_counter() - t0,
            worker=_worker_name(),
        )
    return _Outcome(
        key, attempt, True, value, seconds=time.perf_counter() - t0, worker=_worker_name()
    )


def _lost(key: str, attempt: int, exc: BaseException, what: str) -> _Outcome:
    """An attempt whose worker died or whose result could not come back."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return _Outcome(
        key, attempt, False, error=f"{what}: {type(exc).__name__}: {exc}", traceback=text
    )


# --------------------------------------------------------------------------- storage


class _Store:
    """Per-task result files under ``root/tasks``, written atomically."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.tasks = root / "tasks" if root is not None else None

    def prepare(self, fingerprint: str | None) -> None:
        if self.root is None or self.tasks is None:
            return
        self.tasks.mkdir(parents=True, exist_ok=True)
        manifest = self.root / MANIFEST
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise BatchError(
                    f"cannot read {str(manifest)!r}: {exc}.",
                    where=str(self.root),
                    hint="use a new out_dir, or delete this one to start afresh.",
                ) from None
            if fingerprint is not None and old.get("fingerprint") not in (None, fingerprint):
                raise BatchError(
                    f"{str(self.root)!r} holds the results of a different batch "
                    f"(fingerprint {old.get('fingerprint')!r}, this batch {fingerprint!r}).",
                    where=str(self.root),
                    hint="use a new out_dir for a changed batch, or delete the old results.",
                )
            return
        _atomic_write(
            manifest,
            json.dumps(
                {
                    "format": FORMAT_VERSION,
                    "fingerprint": fingerprint,
                    "created": _now(),
                },
                indent=2,
            ).encode(),
        )

    def _path(self, key: str, status: str) -> Path:
        assert self.tasks is not None
        return self.tasks / f"{key}.{status}.pkl"

    def load(self, key: str) -> TaskRecord | None:
        """The record on disk for ``key``: the successful one if any, else the failed one."""
        if self.tasks is None:
            return None
        for status in ("ok", "failed"):
            path = self._path(key, status)
            if path.exists():
                try:
                    with path.open("rb") as fh:
                        record = pickle.load(fh)
                except Exception:  # a torn or foreign file: run the task again
                    continue
                if isinstance(record, TaskRecord) and record.key == key:
                    return record
        return None

    def write(self, record: TaskRecord) -> None:
        if self.tasks is None:
            return
        _atomic_write(self._path(record.key, record.status), pickle.dumps(record))
        if record.ok:
            for stale in (
                self._path(record.key, "failed"),
                self.tasks / f"{record.key}.failed.txt",
            ):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        else:
            _atomic_write(self.tasks / f"{record.key}.failed.txt", record.describe().encode())


def _atomic_write(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_records(out_dir: str | os.PathLike[str]) -> dict[str, TaskRecord]:
    """Every task record written under ``out_dir`` (by key; a success wins over a failure)."""
    tasks = Path(out_dir) / "tasks"
    out: dict[str, TaskRecord] = {}
    if not tasks.is_dir():
        return out
    store = _Store(Path(out_dir))
    for path in sorted(tasks.glob("*.pkl")):
        key = path.name.rsplit(".", 2)[0]
        if key not in out:
            record = store.load(key)
            if record is not None:
                out[key] = record
    return out


# --------------------------------------------------------------------------- the driver


@dataclass
class _Book:
    """Bookkeeping of one run: attempts made and errors so far, per key."""

    store: _Store
    max_attempts: int
    on_record: Callable[[TaskRecord], None] | None
    previous: dict[str, TaskRecord]
    records: dict[str, TaskRecord] = field(default_factory=dict)
    errors: dict[str, list[Attempt]] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)

    def start(self, key: str) -> int:
        """Number of the next attempt at ``key`` (counting earlier runs)."""
        if key not in self.tries:
            prev = self.previous.get(key)
            self.tries[key] = prev.attempts if prev is not None else 0
            self.errors[key] = list(prev.errors) if prev is not None else []
        self.tries[key] += 1
        return self.tries[key]

    def finish(self, out: _Outcome, attempts_this_run: int) -> bool:
        """Record an outcome; True when the task is done (success or out of attempts)."""
        if out.ok:
            record = TaskRecord(
                out.key,
                "ok",
                out.value,
                self.tries[out.key],
                tuple(self.errors[out.key]),
                out.seconds,
                out.worker,
                _now(),
            )
        else:
            self.errors[out.key].append(
                Attempt(out.attempt, out.error, out.traceback, out.seconds, out.worker)
            )
            if attempts_this_run < self.max_attempts:
                return False
            record = TaskRecord(
                out.key,
                "failed",
                None,
                self.tries[out.key],
                tuple(self.errors[out.key]),
                out.seconds,
                out.worker,
                _now(),
            )
        self.store.write(record)
        self.records[out.key] = record
        if self.on_record is not None:
            self.on_record(record)
        return True


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
    if backend not in BACKENDS:
        raise BatchError(
            f"unknown backend {backend!r}.", where="backend", hint=f"use one of {BACKENDS}."
        )
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
    n_workers = workers or _cpus()
    t0 = time.perf_counter()
    if todo:
        if backend == "serial":
            n_workers = 1
            _run_serial(fn, items, todo, book, pass_attempt)
        elif backend == "processes":
            _run_processes(fn, items, todo, book, pass_attempt, n_workers)
        else:
            n_workers = _run_dask(fn, items, todo, book, pass_attempt, n_workers, address, client)
    records = {k: book.records[k] for k in items}
    return BatchResult(
        records,
        tuple(reused),
        time.perf_counter() - t0,
        Path(out_dir) if out_dir is not None else None,
        backend,
        n_workers,
    )


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_serial(
    fn: Callable[..., Any], items: dict[str, Any], todo: list[str], book: _Book, pass_attempt: bool
) -> None:
    for key in todo:
        for n in range(1, book.max_attempts + 1):
            out = _call(fn, key, items[key], book.start(key), pass_attempt)
            if book.finish(out, n):
                break


def _run_processes(
    fn: Callable[..., Any],
    items: dict[str, Any],
    todo: list[str],
    book: _Book,
    pass_attempt: bool,
    n_workers: int,
) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: the driver may hold threads (samplers, BLAS) that fork would copy broken
    context = multiprocessing.get_context("spawn")
    this_run: dict[str, int] = dict.fromkeys(todo, 0)
    queue = list(todo)
    pool = ProcessPoolExecutor(max_workers=min(n_workers, len(todo)), mp_context=context)
    running: dict[Future[_Outcome], tuple[str, int]] = {}

    def submit(key: str) -> None:
        this_run[key] += 1
        attempt = book.start(key)
        running[pool.submit(_call, fn, key, items[key], attempt, pass_attempt)] = (key, attempt)

    try:
        while queue or running:
            while queue and len(running) < 2 * n_workers:
                submit(queue.pop(0))
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                key, attempt = running.pop(fut)
                try:
                    out = fut.result()
                except BrokenProcessPool as exc:
                    broken = True
                    out = _lost(key, attempt, exc, "a worker process died")
                except Exception as exc:  # the result could not be unpickled
                    out = _lost(key, attempt, exc, "the result could not come back")
                if not book.finish(out, this_run[key]):
                    queue.insert(0, key)
            if broken:  # every other future of a broken pool fails too: record and restart
                for fut, (key, attempt) in list(running.items()):
                    running.pop(fut)
                    exc2 = fut.exception() if fut.done() else None
                    out = _lost(
                        key, attempt, exc2 or RuntimeError("pool broken"), "a worker process died"
                    )
                    if not book.finish(out, this_run[key]):
                        queue.insert(0, key)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=context)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(
    fn: Callable[..., Any],
    items: dict[str, Any],
    todo: list[str],
    book: _Book,
    pass_attempt: bool,
    n_workers: int,
    address: str | None,
    client: Any,
) -> int:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a dependency
        raise BatchError(
            "the dask backend needs dask.distributed.",
            where="backend",
            hint="pip install 'dask[distributed]', or use backend='processes'.",
        ) from None
    import uuid

    own: list[Any] = []
    if client is None:
        if address is not None:
            client = Client(address)
        else:
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,  # logging.ERROR
            )
            own.append(cluster)
            client = Client(cluster)
        own.insert(0, client)
    this_run: dict[str, int] = dict.fromkeys(todo, 0)
    meta: dict[str, tuple[str, int]] = {}

    def submit(key: str) -> Any:
        this_run[key] += 1
        attempt = book.start(key)
        fut = client.submit(
            _call,
            fn,
            key,
            items[key],
            attempt,
            pass_attempt,
            key=f"mixedbayes-{key}-{attempt}-{uuid.uuid4().hex[:8]}",
            pure=False,
        )
        meta[fut.key] = (key, attempt)
        return fut

    try:
        n_used = len(client.nthreads()) or n_workers
        pending = as_completed([submit(k) for k in todo])
        for fut in pending:
            key, attempt = meta.pop(fut.key)
            try:
                out = fut.result()
            except Exception as exc:  # worker died (KilledWorker), or lost result
                out = _lost(key, attempt, exc, "the Dask task failed outside the function")
            fut.release()
            if not book.finish(out, this_run[key]):
                pending.add(submit(key))
    finally:
        for obj in own:
            with contextlib.suppress(Exception):
                obj.close()
    return int(n_used)


def iter_failures(result: BatchResult) -> Iterator[str]:
    """Readable tracebacks of the failed tasks of ``result``."""
    for record in result.failures.values():
        yield record.describe()
