"""Folders too large to hold at once are listed in slices (FERRY_LIST_SLICE_ENTRIES children per
side at a time; 10,000 by default, a handful here): the plan must be the one a whole listing
gives, whatever names fall at a slice's edge, on local folders and on a flat bucket prefix."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import S3Server, Stack
from helpers import create_task, differences, empty_folder, run, start, until, wait, write

from api import Ferry
from api.client import connect
from models.arn import execution_id

COUNTERS = (
    "Status",
    "EstimatedFilesToTransfer",
    "EstimatedFilesToDelete",
    "FilesTransferred",
    "FilesDeleted",
    "FilesSkipped",
    "FilesVerified",
    "BytesWritten",
)


def edges(source: Path, destination: Path) -> None:
    """Names that sort around each other's folder form ("a" < "a-b" < "a.b" < "a/" < "a0"),
    kinds that differ between the sides, equal files, and files only the destination has."""
    for name in ("a-b", "a.b", "a0", "a-", "b-", "b0", "c"):
        write(source / name, name * 10)
    write(source / "a" / "inside.txt", "in a")
    write(source / "b" / "inside.txt", "in b")
    for number in range(30):
        write(source / "many" / f"f{number:02d}", os.urandom(100))
    write(destination / "a", "a file where the source has a folder")
    write(destination / "c" / "old.txt", "a folder where the source has a file")
    write(destination / "zz-gone", "only at the destination")
    write(destination / "a0", "different")
    (destination / "many").mkdir()
    for number in range(0, 30, 3):  # a third of them equal already
        shutil.copy2(source / "many" / f"f{number:02d}", destination / "many" / f"f{number:02d}")
    write(destination / "many" / "f99-gone", "only at the destination")


def counters(result: dict[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in COUNTERS}


async def test_slices_plan_what_a_whole_listing_plans(
    ferry: Ferry, own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(FERRY_LIST_SLICE_ENTRIES="3")
    sliced = Ferry(await connect(stack.address))
    results = {}
    for name, client in (("whole", ferry), ("sliced", sliced)):
        source, destination = workdir / name / "source", workdir / name / "destination"
        empty_folder(destination)
        edges(source, destination)
        options = {"PreserveDeletedFiles": "REMOVE", "VerifyMode": "POINT_IN_TIME_CONSISTENT"}
        task = await create_task(client, source, destination, Options=options)
        results[name] = await run(client, task)
        assert results[name]["Status"] == "SUCCESS", results[name]["Result"]
        assert differences(source, destination) == []
        again = await run(client, task)
        assert again["FilesTransferred"] == 0

    assert counters(results["sliced"]) == counters(results["whole"])
    # zz-gone, many/f99-gone, the file a, the folder c and its old.txt
    assert results["sliced"]["FilesDeleted"] == 5
    log = stack.log_path(0).read_text()
    assert "/many has more than 3 children: listed in slices" in log


async def test_a_flat_prefix_is_listed_in_slices_both_ways(
    own_stack: Callable[..., Stack], moto_s3: S3Server, workdir: Path
) -> None:
    ferry = Ferry(await connect(own_stack(FERRY_LIST_SLICE_ENTRIES="7").address))
    source = workdir / "source"
    for number in range(200):
        write(source / f"object-{number:04d}.bin", os.urandom(64))
    write(source / "object-0100" / "below.txt", "a folder among the objects")
    bucket = moto_s3.bucket("flat")
    s3 = (
        await ferry.create_location_s3(
            {
                "S3BucketArn": f"arn:aws:s3:::{bucket}",
                "Subdirectory": "/flat",
                "EndpointUrl": moto_s3.endpoint,
            }
        )
    )["LocationArn"]
    local = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
    up = await ferry.create_task({"SourceLocationArn": local, "DestinationLocationArn": s3})
    first = await run(ferry, up["TaskArn"])
    assert first["Status"] == "SUCCESS", first["Result"]
    assert first["FilesTransferred"] == 203  # 201 files, a folder, the root (markers, both)
    again = await run(ferry, up["TaskArn"])
    assert again["FilesTransferred"] == 0

    back = empty_folder(workdir / "back")
    local_back = (await ferry.create_location_local({"Path": str(back)}))["LocationArn"]
    down = await ferry.create_task({"SourceLocationArn": s3, "DestinationLocationArn": local_back})
    result = await run(ferry, down["TaskArn"])
    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, back) == []


async def test_transferring_begins_before_preparing_ends(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    """Batches of files start as PREPARING completes them: with one child listed at a time,
    PREPARING takes a while, and the first batches are done long before it ends."""
    stack = own_stack(FERRY_LIST_SLICE_ENTRIES="1", FERRY_BATCH_FILES="4")
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", empty_folder(workdir / "destination")
    for number in range(2000):
        write(source / f"f{number:04d}", os.urandom(200))
    write(destination / "f0002" / "in-the-way.txt", "a folder where the source has a file")
    # That moved the root's mtime to now, perhaps the very tick of the source's last write.
    os.utime(destination, ns=(946_684_800 * 10**9, 946_684_800 * 10**9))
    task = await create_task(ferry, source, destination)
    execution = await start(ferry, task)
    result = await wait(ferry, execution)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, destination) == []
    assert result["FilesTransferred"] == 2001, result  # and the root
    assert result["FilesDeleted"] == 2  # the folder in the way and its file
    # The order of the execution's activities, as its history has them.
    labels: dict[int, str] = {}
    order: list[str] = []
    handle = ferry.client.get_workflow_handle(execution_id(execution))
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            name = scheduled.activity_type.name
            labels[event.event_id] = scheduled.activity_id if name == "TransferBatch" else name
            order.append(labels[event.event_id])
        elif event.HasField("activity_task_completed_event_attributes"):
            completed = event.activity_task_completed_event_attributes
            order.append("done:" + labels[completed.scheduled_event_id])
    prepared = order.index("done:PrepareTransfer")
    removal, first_files = order.index("transfer:removals-0"), order.index("transfer:files-0")
    assert removal < order.index("done:transfer:removals-0") < first_files < prepared, order
    assert order.index("done:transfer:files-0") < prepared, order


async def test_a_preparing_killed_after_batches_ran_is_retried_after_them(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    """The worker dies while PREPARING goes on and batches it completed have run: the retried
    PREPARING numbers its batches after those, and every file arrives, counted once."""
    stack = own_stack(FERRY_LIST_SLICE_ENTRIES="1", FERRY_BATCH_FILES="4")
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", empty_folder(workdir / "destination")
    for number in range(2000):
        write(source / f"f{number:04d}", os.urandom(100))
    execution = await start(ferry, await create_task(ferry, source, destination))

    async def transferring_while_preparing() -> bool:
        now = await ferry.describe_task_execution({"TaskExecutionArn": execution})
        return now["Result"]["PrepareStatus"] == "PENDING" and now["FilesTransferred"] >= 20

    await until(transferring_while_preparing)
    stack.stop_worker(stack.workers[0], signal.SIGKILL)
    stack.start_worker(FERRY_LIST_SLICE_ENTRIES="1", FERRY_BATCH_FILES="4")
    result = await wait(ferry, execution)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, destination) == []
    assert result["FilesTransferred"] == 2001  # and the root
    assert result["BytesWritten"] == 2000 * 100
