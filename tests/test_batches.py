"""A batch's checkpoints, as a retried attempt sees them: it resumes where the last one stopped,
a row that keeps failing with a transient error is given up, not retried forever, and a lost
attempt writes nothing after it learns so."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from activities.batches import TRIES_PER_ROW, BatchRun
from activities.pool import LOST, Control, Stopped
from activities.staging import StagingStore, open_staging
from models.execution import BatchRef
from models.locations import LocalLocation
from models.options import resolve_options

TASK = "arn:aws:datasync:xx-ferry-1:000000000000:task/task-00000000000000000"
ARN = f"{TASK}/execution/exec-00000000000000000"


def batch(store: StagingStore, rows: list[list[Any]]) -> BatchRef:
    location = LocalLocation(
        LocationArn="arn:aws:datasync:xx-ferry-1:000000000000:location/loc-00000000000000000",
        CreationTime=datetime.now(UTC),
        Path="/nowhere",
    )
    ref = BatchRef(
        execution_arn=ARN,
        step="files",
        index=0,
        source=location,
        destination=location,
        options=resolve_options(),
    )
    writer = store.batches(ref.execution_id, "files")
    for row in rows:
        writer.add(row)
    writer.close()
    return ref


def attempt(store: StagingStore, ref: BatchRef, control: Control, handle: Any) -> Any:
    """One attempt, started from the checkpoint the previous one left."""
    run = BatchRun(store, ref, control.saved(store) or {}, control)
    return run, run.run(lambda row: handle(run, row))


def test_a_row_that_keeps_failing_transiently_is_given_up(tmp_path: Path) -> None:
    store = open_staging(str(tmp_path / "staging"))
    ref = batch(store, [["a"], ["bad"], ["c"]])
    control = Control(str(tmp_path), "files-0", "x/checkpoints/files-000000.T.json")
    done: list[str] = []

    def handle(run: BatchRun, row: list[str]) -> None:
        if row[0] == "bad":
            run.transient("bad", "read", OSError(errno.EIO, "Input/output error"))
            return
        done.append(row[0])
        run.counters.FilesTransferred += 1

    for _ in range(TRIES_PER_ROW - 1):
        with pytest.raises(OSError):
            attempt(store, ref, control, handle)
    _, result = attempt(store, ref, control, handle)

    assert done == ["a", "c"]  # "a" was not copied again by the retries
    assert result.counters.FilesTransferred == 2
    assert result.counters.FilesFailed == 1
    assert [str(issue) for issue in result.issues] == [
        f"/bad (read: Input/output error (on {TRIES_PER_ROW} attempts))"
    ]


def test_a_stop_request_ends_the_batch_with_its_place_kept(tmp_path: Path) -> None:
    store = open_staging(str(tmp_path / "staging"))
    ref = batch(store, [[str(n)] for n in range(5)])
    control = Control(str(tmp_path), "files-0", "x/checkpoints/files-000000.T.json")
    done: list[str] = []

    def handle(run: BatchRun, row: list[str]) -> None:
        done.append(row[0])
        run.counters.FilesTransferred += 1
        if row[0] == "1":
            control.request_stop("shutdown")
            run._last_stop_check = 0.0

    with pytest.raises(Stopped, match="shutdown"):
        attempt(store, ref, control, handle)
    control.reset()
    _, result = attempt(store, ref, control, handle)

    assert done == ["0", "1", "2", "3", "4"]
    assert result.counters.FilesTransferred == 5


def test_a_lost_attempt_stops_without_a_checkpoint_or_its_results(tmp_path: Path) -> None:
    store = open_staging(str(tmp_path / "staging"))
    ref = batch(store, [[str(n)] for n in range(5)])
    control = Control(str(tmp_path), "files-0", "x/checkpoints/files-000000.T.json")
    done: list[str] = []

    run = BatchRun(store, ref, {}, control, results=True)

    def handle(row: list[str]) -> None:
        done.append(row[0])
        run.record(row)
        if row[0] == "1":
            run.checkpoint()  # what the retry will start from
        if row[0] == "2":
            control.request_stop(LOST)  # its heartbeats stopped reaching Temporal

    with pytest.raises(Stopped, match=LOST):
        run.run(handle)

    # It stopped before the next row, and its last checkpoint is the one before it was lost.
    assert done == ["0", "1", "2"]
    assert control.saved(store) is not None and control.saved(store)["next"] == 1
    assert store.result_keys(ref.execution_id, "") == []  # nothing published
