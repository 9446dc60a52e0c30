"""The batch layer with cheap functions: backends, retries, failure records, resume."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from mixedbayes.batch import BatchError, TaskRecord, load_records, run_batch

# ----------------------------------------------------------------- task functions (picklable)


def square(x: int) -> int:
    return x * x


def square_or_fail(item: dict[str, Any], attempt: int = 1) -> int:
    """Fails always for ``bad``; fails on the first attempt only for ``flaky``."""
    if item.get("bad"):
        raise ValueError(f"bad item {item['x']}")
    if item.get("flaky") and attempt == 1:
        raise RuntimeError("flaky first attempt")
    return int(item["x"]) ** 2


def flaky_by_file(item: tuple[int, str]) -> int:
    """Fails the first time it sees ``item`` (a marker file remembers), then succeeds."""
    x, marker = item
    path = Path(marker)
    if not path.exists():
        path.write_text("seen")
        raise RuntimeError(f"first call for {x}")
    return x * 10


def record_call(item: tuple[int, str]) -> int:
    """Leaves a file per call, so a test can count which tasks really ran."""
    x, folder = item
    Path(folder, f"called-{x}-{os.getpid()}-{os.urandom(4).hex()}").write_text("")
    return x + 100


def interrupt_at_three(x: int) -> int:
    if x == 3:
        raise KeyboardInterrupt
    return x


def die_on_first_attempt(x: int, attempt: int = 1) -> int:
    if x == 2 and attempt == 1:
        os._exit(3)  # the worker process dies, no exception comes back
    return -x


def _items(n: int = 5) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {f"t{i}": {"x": i} for i in range(n)}
    items["t1"]["bad"] = True
    items["t3"]["flaky"] = True
    return items


def _check_outcomes(res: Any, out: Path) -> None:
    assert list(res.records) == [f"t{i}" for i in range(5)]
    assert res.values == {"t0": 0, "t2": 4, "t3": 9, "t4": 16}
    assert set(res.failures) == {"t1"}
    bad = res.failures["t1"]
    assert bad.status == "failed" and bad.value is None
    assert bad.attempts == 2  # one try and one retry
    assert [a.number for a in bad.errors] == [1, 2]
    assert all("ValueError: bad item 1" in a.error for a in bad.errors)
    assert "square_or_fail" in bad.errors[0].traceback  # the traceback text is kept
    flaky = res.records["t3"]
    assert flaky.ok and flaky.attempts == 2
    assert len(flaky.errors) == 1 and "flaky first attempt" in flaky.errors[0].error
    assert set(res.retried) == {"t1", "t3"}
    # written to disk as they finished
    tasks = out / "tasks"
    assert sorted(p.name for p in tasks.glob("*.ok.pkl")) == [f"t{i}.ok.pkl" for i in (0, 2, 3, 4)]
    assert (tasks / "t1.failed.pkl").exists()
    text = (tasks / "t1.failed.txt").read_text()
    assert "bad item 1" in text and "attempt 2" in text
    on_disk = load_records(out)
    assert set(on_disk) == {f"t{i}" for i in range(5)}
    assert on_disk["t3"].value == 9 and not on_disk["t1"].ok


def test_serial_retries_records_and_files(tmp_path: Path) -> None:
    seen: list[TaskRecord] = []
    res = run_batch(
        square_or_fail,
        _items(),
        out_dir=tmp_path,
        retries=1,
        pass_attempt=True,
        on_record=seen.append,
    )
    _check_outcomes(res, tmp_path)
    assert sorted(r.key for r in seen) == [f"t{i}" for i in range(5)]
    assert not res.ok and res.reused == ()


def test_processes_backend(tmp_path: Path) -> None:
    res = run_batch(
        square_or_fail,
        _items(),
        backend="processes",
        workers=2,
        out_dir=tmp_path,
        retries=1,
        pass_attempt=True,
    )
    _check_outcomes(res, tmp_path)
    assert res.backend == "processes"
    assert all(
        r.worker and r.worker.split(":")[1] != str(os.getpid()) for r in res.records.values()
    )


def test_dask_local_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    res = run_batch(
        square_or_fail,
        _items(),
        backend="dask",
        workers=2,
        out_dir=tmp_path,
        retries=1,
        pass_attempt=True,
    )
    _check_outcomes(res, tmp_path)
    assert res.workers == 2


def test_dask_existing_cluster_by_address(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        items = {f"k{i}": (i, str(tmp_path / f"marker{i}")) for i in range(3)}
        res = run_batch(
            flaky_by_file, items, backend="dask", address=cluster.scheduler_address, retries=1
        )
        assert res.values == {"k0": 0, "k1": 10, "k2": 20}
        assert all(r.attempts == 2 for r in res.records.values())
        # the cluster was not ours to close
        assert cluster.status.name == "running"


def test_a_registered_executor_is_a_backend() -> None:
    """Executors are a registry: a new one is accepted by name and does the running."""
    from mixedbayes.batch import EXECUTORS
    from mixedbayes.batch.executors import _run_serial, register_executor

    seen: list[list[str]] = []

    @register_executor("recording")
    def _recording(
        fn: Any, items: Any, todo: list[str], book: Any, pass_attempt: bool, **kw: Any
    ) -> int:
        seen.append(list(todo))
        return _run_serial(fn, items, todo, book, pass_attempt)

    try:
        res = run_batch(abs, {"a": -1, "b": 2}, backend="recording")  # type: ignore[arg-type]
    finally:
        EXECUTORS.pop("recording")
    assert seen == [["a", "b"]]
    assert res.values == {"a": 1, "b": 2} and res.backend == "recording"
    with pytest.raises(BatchError, match="recording"):
        run_batch(abs, {"a": -1}, backend="recording")  # type: ignore[arg-type]


def test_no_retries_means_one_attempt() -> None:
    items = {"a": (1, "/nonexistent/dir/marker")}
    res = run_batch(flaky_by_file, items, retries=0)
    assert set(res.failures) == {"a"} and res.failures["a"].attempts == 1
    assert "FileNotFoundError" in res.failures["a"].errors[0].error


def test_resume_skips_finished_tasks(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    out = tmp_path / "out"
    first = run_batch(record_call, {f"r{i}": (i, str(calls)) for i in range(3)}, out_dir=out)
    assert first.values == {"r0": 100, "r1": 101, "r2": 102}
    assert len(list(calls.iterdir())) == 3
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "tasks").glob("*.pkl")}
    second = run_batch(
        record_call, {f"r{i}": (i, str(calls)) for i in range(5)}, out_dir=out, fingerprint=None
    )
    assert second.reused == ("r0", "r1", "r2")
    assert second.values == {f"r{i}": 100 + i for i in range(5)}
    assert len(list(calls.iterdir())) == 5  # only r3 and r4 ran
    for name, ns in mtimes.items():  # the first results were not rewritten
        assert (out / "tasks" / name).stat().st_mtime_ns == ns
    # resume=False runs everything again
    third = run_batch(record_call, {"r0": (0, str(calls))}, out_dir=out, resume=False)
    assert third.reused == () and len(list(calls.iterdir())) == 6


def test_interrupted_run_resumes(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_batch(interrupt_at_three, list(range(6)), out_dir=tmp_path)
    done = sorted(p.name for p in (tmp_path / "tasks").glob("*.ok.pkl"))
    assert done == [f"task-{i:05d}.ok.pkl" for i in range(3)]
    res = run_batch(square, list(range(6)), out_dir=tmp_path)
    assert res.reused == tuple(f"task-{i:05d}" for i in range(3))
    # reused values are the first run's (identity), new ones the second function's (square)
    assert list(res.values.values()) == [0, 1, 2, 9, 16, 25]


def test_failed_tasks_run_again_on_resume_keeping_history(tmp_path: Path) -> None:
    items = {"a": {"x": 2, "bad": True}, "b": {"x": 3}}
    first = run_batch(square_or_fail, items, out_dir=tmp_path, retries=0)
    assert set(first.failures) == {"a"}
    fixed = {"a": {"x": 2}, "b": {"x": 3}}
    second = run_batch(square_or_fail, fixed, out_dir=tmp_path, retries=0)
    assert second.reused == ("b",)
    rec = second.records["a"]
    assert rec.ok and rec.value == 4 and rec.attempts == 2
    assert len(rec.errors) == 1 and "bad item 2" in rec.errors[0].error
    assert not (tmp_path / "tasks" / "a.failed.pkl").exists()
    assert not (tmp_path / "tasks" / "a.failed.txt").exists()


def test_dead_worker_process_is_recorded_and_retried(tmp_path: Path) -> None:
    res = run_batch(
        die_on_first_attempt,
        {f"d{i}": i for i in range(4)},
        backend="processes",
        workers=2,
        out_dir=tmp_path,
        retries=2,
        pass_attempt=True,
    )
    assert res.values == {f"d{i}": -i for i in range(4)}
    rec = res.records["d2"]
    assert rec.attempts >= 2
    assert any("worker process died" in a.error for a in rec.errors)


def test_fingerprint_guards_the_directory(tmp_path: Path) -> None:
    run_batch(square, [1, 2], out_dir=tmp_path, fingerprint="abc")
    again = run_batch(square, [1, 2], out_dir=tmp_path, fingerprint="abc")
    assert again.reused == ("task-00000", "task-00001")
    with pytest.raises(BatchError, match="different batch") as err:
        run_batch(square, [1, 2], out_dir=tmp_path, fingerprint="xyz")
    assert str(tmp_path) in err.value.where


def test_torn_result_file_is_run_again(tmp_path: Path) -> None:
    run_batch(square, {"a": 3}, out_dir=tmp_path)
    (tmp_path / "tasks" / "a.ok.pkl").write_bytes(b"not a pickle")
    res = run_batch(square, {"a": 3}, out_dir=tmp_path)
    assert res.reused == () and res.values == {"a": 9}
    with (tmp_path / "tasks" / "a.ok.pkl").open("rb") as fh:
        assert pickle.load(fh).value == 9


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"backend": "threads"}, "backend"),
        ({"retries": -1}, "retries"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], where: str) -> None:
    with pytest.raises(BatchError) as err:
        run_batch(square, [1], **kwargs)
    assert err.value.where == [where]


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden", "x" * 201, "sp ace"])
def test_keys_must_be_file_names(key: str) -> None:
    with pytest.raises(BatchError, match="file names") as err:
        run_batch(square, {key: 1})
    assert err.value.where == ["tasks"]


def test_sequence_keys_and_order() -> None:
    res = run_batch(square, [3, 1, 2])
    assert list(res.records) == ["task-00000", "task-00001", "task-00002"]
    assert list(res.values.values()) == [9, 1, 4]
    assert "3 ok" in repr(res)
