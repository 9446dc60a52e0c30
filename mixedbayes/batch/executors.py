"""Executors of a batch, one function each in the :data:`EXECUTORS` registry: serial, a pool of
local processes, or Dask; and the bookkeeping of attempts they share (:class:`_Book`).

An executor runs every key of ``todo`` until :meth:`_Book.finish` says it is done and returns
the number of workers it used; it is called as
``executor(fn, items, todo, book, pass_attempt, n_workers=..., address=..., client=...)``.

Workers are long-lived (a process pool, or Dask workers), so per-process caches serve many tasks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixedbayes.batch.records import Attempt, BatchError, TaskRecord, _now, _Store
from mixedbayes.errors import MixedBayesError

#: Executor name → function (see the module docstring); ``run_batch(backend=name)``.
EXECUTORS: dict[str, Callable[..., int]] = {}


def register_executor(name: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorator adding an executor to :data:`EXECUTORS` under ``name``."""

    def add(run: Callable[..., int]) -> Callable[..., int]:
        EXECUTORS[name] = run
        return run

    return add


def check_backend(backend: str, error: type[MixedBayesError] = BatchError) -> None:
    """Raise ``error`` naming the known executors when ``backend`` is not one of them."""
    if backend not in EXECUTORS:
        raise error(
            f"unknown backend {backend!r}.", where="backend", hint=f"use one of {tuple(EXECUTORS)}."
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


@register_executor("serial")
def _run_serial(
    fn: Callable[..., Any],
    items: dict[str, Any],
    todo: list[str],
    book: _Book,
    pass_attempt: bool,
    **_unused: Any,
) -> int:
    for key in todo:
        for n in range(1, book.max_attempts + 1):
            out = _call(fn, key, items[key], book.start(key), pass_attempt)
            if book.finish(out, n):
                break
    return 1


@register_executor("processes")
def _run_processes(
    fn: Callable[..., Any],
    items: dict[str, Any],
    todo: list[str],
    book: _Book,
    pass_attempt: bool,
    *,
    n_workers: int,
    **_unused: Any,
) -> int:
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
    return n_workers


@register_executor("dask")
def _run_dask(
    fn: Callable[..., Any],
    items: dict[str, Any],
    todo: list[str],
    book: _Book,
    pass_attempt: bool,
    *,
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
