"""What goes wrong, and what Ferry does then: unreadable files, locations that go away,
cancelling, and a second execution of a busy task."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Stack
from helpers import (
    create_task,
    differences,
    digest,
    empty_folder,
    run,
    start,
    transfer,
    until,
    wait,
    write,
)
from temporalio.client import WorkflowExecutionStatus
from test_verify import SLOW, copying_big, slow_task

from api import Ferry
from api.client import connect
from models.arn import execution_id
from models.errors import InvalidRequestException


async def test_an_unreadable_file_is_skipped_named_and_fails_the_execution(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(bound_by_permissions=True)
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    for number in range(5):
        write(source / f"file-{number}.txt", f"readable {number}")
    write(source / "secret.txt", "nobody may read this", 0o000)
    empty_folder(destination)

    _, result = await transfer(ferry, source, destination, Options={"VerifyMode": "NONE"})

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "FilesFailed"
    assert result["Result"]["TransferStatus"] == "ERROR"
    assert "/secret.txt (read: Permission denied)" in result["Result"]["ErrorDetail"]
    assert result["FilesSkipped"] == 1
    assert sorted(p.name for p in destination.iterdir()) == [f"file-{n}.txt" for n in range(5)]
    log = stack.log_path(0).read_text()
    assert "/secret.txt: read: Permission denied" in log
    assert result["TaskExecutionArn"] in log


async def test_an_unlistable_folder_is_never_taken_for_empty(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(bound_by_permissions=True)
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    write(source / "open" / "a.txt", "a")
    (source / "closed").mkdir(mode=0o000)
    write(destination / "closed" / "precious.txt", "must survive a REMOVE")

    _, result = await transfer(
        ferry, source, destination, Options={"PreserveDeletedFiles": "REMOVE"}
    )
    os.chmod(source / "closed", 0o755)

    assert result["Status"] == "ERROR"
    assert result["Result"]["PrepareStatus"] == "ERROR"
    assert "/closed (read: cannot list: Permission denied)" in result["Result"]["ErrorDetail"]
    assert (destination / "closed" / "precious.txt").read_text() == "must survive a REMOVE"
    assert (destination / "open" / "a.txt").read_text() == "a"


async def test_a_destination_that_disappears_fails_fast_with_a_clear_error(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for number in range(8):
        write(source / f"file-{number}.bin", os.urandom(512 * 1024))
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Options=SLOW)

    arn = await start(ferry, task)
    await until(lambda: any(destination.iterdir()))
    os.system(f"rm -rf '{destination}'")
    gone = time.monotonic()
    result = await wait(ferry, arn)

    assert time.monotonic() - gone < 20  # not retried for minutes
    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    assert result["Result"]["TransferStatus"] == "ERROR"
    assert f"{destination} no longer exists" in result["Result"]["ErrorDetail"]
    assert not destination.exists()  # Ferry did not recreate the location's root


async def test_a_missing_source_fails_in_launching(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    source.mkdir()
    empty_folder(destination)
    task = await create_task(ferry, source, destination)
    source.rmdir()

    result = await run(ferry, task)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    detail = result["Result"]["ErrorDetail"]
    assert detail.startswith("source location arn:aws:datasync:")
    assert f"{source}: No such file or directory" in detail
    assert result["Result"]["PrepareStatus"] == "PENDING"
    assert result["EstimatedFilesToTransfer"] == 0


async def test_cancel_stops_within_seconds_and_leaves_no_partial_file(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, task = await slow_task(ferry, workdir, big=8 << 20)

    arn = await start(ferry, task)
    await until(lambda: copying_big(destination))
    asked = time.monotonic()
    await ferry.cancel_task_execution({"TaskExecutionArn": arn})
    result = await wait(ferry, arn)

    assert time.monotonic() - asked < 10
    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "Cancelled"
    assert result["Result"]["TransferStatus"] == "ERROR"
    left = sorted(p.name for p in destination.iterdir())
    assert left == ["a-1.txt", "a-2.txt", "a-3.txt"]  # no z-big.bin, no temporary file
    for name in left:
        assert digest(destination / name) == digest(source / name)
    info = await ferry.client.get_workflow_handle(execution_id(arn)).describe()
    assert info.status == WorkflowExecutionStatus.CANCELED
    with pytest.raises(InvalidRequestException, match="has already ended"):
        await ferry.cancel_task_execution({"TaskExecutionArn": arn})


async def test_a_second_start_waits_in_queued_until_the_first_ends(
    ferry: Ferry, workdir: Path
) -> None:
    _, _, task = await slow_task(ferry, workdir, big=2 << 20)

    first = await start(ferry, task)
    second = await start(ferry, task)
    waiting = await ferry.describe_task_execution({"TaskExecutionArn": second})
    busy = await ferry.describe_task({"TaskArn": task})
    results = await asyncio.gather(wait(ferry, first), wait(ferry, second))

    assert waiting["Status"] == "QUEUED"
    assert busy["Status"] == "RUNNING"
    assert busy["CurrentTaskExecutionArn"] == first
    assert [r["Status"] for r in results] == ["SUCCESS", "SUCCESS"]
    assert results[1]["LaunchTime"] >= results[0]["EndTime"]
    assert results[1]["FilesTransferred"] == 0  # the first one did it all
    assert (await ferry.describe_task({"TaskArn": task}))["Status"] == "AVAILABLE"


async def test_with_task_queueing_disabled_a_second_start_is_rejected(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, task = await slow_task(
        ferry, workdir, big=2 << 20, TaskQueueing="DISABLED"
    )

    first = await start(ferry, task)
    with pytest.raises(InvalidRequestException, match="TaskQueueing option is DISABLED"):
        await start(ferry, task)
    listed = await ferry.list_task_executions({"TaskArn": task})
    result = await wait(ferry, first)

    assert [e["TaskExecutionArn"] for e in listed["TaskExecutions"]] == [first]
    assert result["Status"] == "SUCCESS"
    assert differences(source, destination) == []


async def test_an_execution_terminated_by_hand_does_not_keep_its_task_busy(
    ferry: Ferry, workdir: Path
) -> None:
    _, destination, task = await slow_task(ferry, workdir, big=4 << 20)

    first = await start(ferry, task)
    await until(lambda: copying_big(destination))
    await ferry.client.get_workflow_handle(execution_id(first)).terminate("by hand")
    second = await start(ferry, task)
    described = await ferry.describe_task_execution({"TaskExecutionArn": second})
    result = await wait(ferry, second)
    ended = await ferry.describe_task_execution({"TaskExecutionArn": first})

    assert described["Status"] != "QUEUED"
    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert ended["Status"] == "ERROR"
    assert ended["Result"]["ErrorCode"] == "Terminated"
