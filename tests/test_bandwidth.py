"""BytesPerSecond limits a whole execution, however many of its batches run at once;
UpdateTaskExecution changes it while the execution runs, and a task's bandwidth timetable as the
clock passes its boundaries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Stack, run_cli
from helpers import create_task, differences, empty_folder, start, until, wait, write

from api import Ferry
from api.client import connect

MiB = 1 << 20


def bytes_at(destination: Path) -> int:
    """What has been written so far, temporary files included."""
    total = 0
    for folder, _, files in os.walk(destination):
        for name in files:
            # A file renamed into place between the listing and the stat counts once, later.
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


class Meter:
    """Samples the destination every 0.1 s: bytes written, and how many files were being
    written at once (each batch writes one under a temporary name). Entered, it samples until
    left, from the moment the first bytes arrive (`began`)."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination
        self.samples: list[tuple[float, int]] = []
        self.most_at_once = 0
        self.began = 0.0

    async def __aenter__(self) -> Meter:
        self._sampling = asyncio.create_task(self._run())
        await until(lambda: bytes_at(self.destination) > 0)
        self.began = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._sampling.cancel()

    async def _run(self) -> None:
        while True:
            writing = [p for p in self.destination.iterdir() if p.name.startswith(".ferry-")]
            self.most_at_once = max(self.most_at_once, len(writing))
            self.samples.append((time.monotonic(), bytes_at(self.destination)))
            await asyncio.sleep(0.1)

    def at(self, moment: float) -> tuple[float, int]:
        return next((when, size) for when, size in self.samples if when >= moment)

    async def rate(self, start: float, end: float) -> float:
        """Bytes per second between the samples nearest `start` and `end`, divided by the time
        between those samples: on a busy machine a sample can come late, and dividing by the
        nominal interval would count its extra bytes as speed."""
        while time.monotonic() < end + 0.2:
            await asyncio.sleep(0.1)
        (first, before), (last, after) = self.at(start), self.at(end)
        return (after - before) / (last - first)


async def test_limit_holds_across_batches_and_changes_while_running(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    # One 8 MiB file per batch, so that several batches share the limit.
    stack = own_stack(FERRY_BATCH_BYTES=str(8 * MiB))
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    for number in range(8):
        write(source / f"file-{number}.bin", os.urandom(8 * MiB))
    empty_folder(destination)
    task = await create_task(
        ferry, source, destination, Options={"BytesPerSecond": 2 * MiB, "VerifyMode": "NONE"}
    )

    arn = await start(ferry, task)
    async with Meter(destination) as meter:
        first = await meter.rate(meter.began + 2, meter.began + 8)
        await ferry.update_task_execution(
            {"TaskExecutionArn": arn, "Options": {"BytesPerSecond": 4 * MiB}}
        )
        changed = time.monotonic()
        # DescribeTaskExecution shows the limit in force.
        described = await ferry.describe_task_execution({"TaskExecutionArn": arn})
        assert described["Options"]["BytesPerSecond"] == 4 * MiB
        second = await meter.rate(changed + 3, changed + 8)
        await ferry.update_task_execution(
            {"TaskExecutionArn": arn, "Options": {"BytesPerSecond": -1}}
        )
        result = await wait(ferry, arn)

    assert meter.most_at_once >= 2, "batches should have run side by side"
    assert 0.9 * 2 * MiB <= first <= 1.1 * 2 * MiB, f"{first / MiB:.2f} MiB/s under 2 MiB/s"
    assert 0.9 * 4 * MiB <= second <= 1.1 * 4 * MiB, f"{second / MiB:.2f} MiB/s under 4 MiB/s"
    assert result["Status"] == "SUCCESS", result
    assert result["BytesWritten"] == 64 * MiB
    assert differences(source, destination) == []


async def test_update_task_execution_rejects_what_it_cannot_change(
    ferry: Ferry, stack: Stack, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "big.bin", os.urandom(4 * MiB))
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Options={"BytesPerSecond": MiB})
    arn = await start(ferry, task)

    other = run_cli(
        stack,
        "update-task-execution",
        "--task-execution-arn",
        arn,
        "--options",
        "BytesPerSecond=5000000,VerifyMode=NONE",
    )
    zero = run_cli(
        stack,
        "update-task-execution",
        "--task-execution-arn",
        arn,
        "--options",
        "BytesPerSecond=0",
    )
    await ferry.update_task_execution({"TaskExecutionArn": arn, "Options": {"BytesPerSecond": -1}})
    result = await wait(ferry, arn)
    ended = run_cli(
        stack,
        "update-task-execution",
        "--task-execution-arn",
        arn,
        "--options",
        json.dumps({"BytesPerSecond": 1000}),
    )

    assert other.returncode == 254
    assert "changes only Options.BytesPerSecond" in other.stderr
    assert "VerifyMode" in other.stderr
    assert zero.returncode == 254
    assert "BytesPerSecond=0 is not a valid limit" in zero.stderr
    assert result["Status"] == "SUCCESS"
    assert result["Options"]["BytesPerSecond"] == -1
    assert ended.returncode == 254
    assert "is no longer running" in ended.stderr


async def test_bandwidth_timetable_lifts_the_limit_at_its_boundary(
    ferry: Ferry, workdir: Path
) -> None:
    now = datetime.now(UTC)
    if now.second > 45:  # leave room before the boundary to measure the limited rate
        await asyncio.sleep(61 - now.second)
        now = datetime.now(UTC)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    timetable = f"{now:%H:%M},1M {boundary:%H:%M},off"
    source, destination = workdir / "source", workdir / "destination"
    for number in range(80):
        write(source / f"file-{number:02d}.bin", os.urandom(MiB))
    empty_folder(destination)
    task = await create_task(
        ferry, source, destination, BandwidthTimetable=timetable, Options={"VerifyMode": "NONE"}
    )
    assert (await ferry.describe_task({"TaskArn": task}))["BandwidthTimetable"] == timetable

    arn = await start(ferry, task)
    async with Meter(destination) as meter:
        began = meter.began
        until_boundary = (boundary - datetime.now(UTC)).total_seconds()
        limited = await meter.rate(began + 1, began + until_boundary - 1)
        result = await wait(ferry, arn)
        ended = time.monotonic()

    assert 0.9 * MiB <= limited <= 1.1 * MiB, f"{limited / MiB:.2f} MiB/s under 1 MiB/s"
    # At the boundary the limit is lifted: the rest (tens of MiB) goes at disk speed.
    assert ended - (began + until_boundary) < 15
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["Options"]["BytesPerSecond"] == -1
    assert differences(source, destination) == []
