"""The records of a batch (:class:`TaskRecord`, :class:`BatchResult`) and their files on disk.

Every finished task is written to ``out_dir/tasks/<key>.ok.pkl`` (or ``.failed.pkl`` plus a
readable ``.failed.txt``), atomically; ``out_dir/manifest.json`` holds the batch fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mixedbayes.errors import MixedBayesError

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


def iter_failures(result: BatchResult) -> Iterator[str]:
    """Readable tracebacks of the failed tasks of ``result``."""
    for record in result.failures.values():
        yield record.describe()
