"""Task schedules: a Temporal Schedule per task that starts executions through the registry,
seen and driven from the Temporal CLI, disabled by the user or, after repeated failures with the
same error, by the service."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from conftest import Stack, run_cli
from helpers import create_task, empty_folder, until, write

from api import Ferry
from models.temporal import schedule_id
from starter.dev import temporal_cli


def temporal(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [temporal_cli(), *args, "--address", stack.address, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def schedule_paused(stack: Stack, task_arn: str) -> bool:
    described = temporal(stack, "schedule", "describe", "--schedule-id", schedule_id(task_arn))
    assert described.returncode == 0, described.stderr
    return bool(json.loads(described.stdout)["schedule"]["state"].get("paused"))


async def executions(ferry: Ferry, task_arn: str) -> list[dict[str, Any]]:
    listed = await ferry.list_task_executions({"TaskArn": task_arn})
    return listed["TaskExecutions"]


async def test_schedule_fires_and_is_driven_from_temporal(
    ferry: Ferry, stack: Stack, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "scheduled")
    empty_folder(destination)
    task = await create_task(
        ferry, source, destination, Schedule={"ScheduleExpression": "rate(3 seconds)"}
    )
    try:
        # It fires every few seconds; each start is an ordinary execution of the task.
        async def two_succeeded() -> bool:
            listed = await executions(ferry, task)
            return sum(entry["Status"] == "SUCCESS" for entry in listed) >= 2

        await until(two_succeeded)
        assert (destination / "a.txt").read_text() == "scheduled"
        described = await ferry.describe_task({"TaskArn": task})
        assert described["Schedule"] == {
            "ScheduleExpression": "rate(3 seconds)",
            "Status": "ENABLED",
        }
        assert "StatusUpdateTime" in described["ScheduleDetails"]
        assert not schedule_paused(stack, task)

        # Disabled by the user: the Temporal Schedule pauses and starts nothing more.
        disabled = run_cli(
            stack,
            "update-task",
            "--task-arn",
            task,
            "--schedule",
            json.dumps({"ScheduleExpression": "rate(3 seconds)", "Status": "DISABLED"}),
        )
        assert disabled.returncode == 0, disabled.stderr
        described = await ferry.describe_task({"TaskArn": task})
        assert described["Schedule"]["Status"] == "DISABLED"
        assert described["ScheduleDetails"]["DisabledBy"] == "USER"
        assert schedule_paused(stack, task)
        await asyncio.sleep(1)  # a start fired just before the pause may still be arriving
        before = len(await executions(ferry, task))
        await asyncio.sleep(7)
        assert len(await executions(ferry, task)) == before

        # `temporal schedule trigger` starts an execution now, paused or not.
        triggered = temporal(stack, "schedule", "trigger", "--schedule-id", schedule_id(task))
        assert triggered.returncode == 0, triggered.stderr

        async def one_more() -> bool:
            return len(await executions(ferry, task)) == before + 1

        await until(one_more, timeout=30)
    finally:
        # An empty expression removes the schedule.
        await ferry.update_task({"TaskArn": task, "Schedule": {"ScheduleExpression": ""}})
    assert "Schedule" not in await ferry.describe_task({"TaskArn": task})
    gone = temporal(stack, "schedule", "describe", "--schedule-id", schedule_id(task))
    assert gone.returncode != 0


async def test_schedule_is_disabled_after_repeated_failures(
    ferry: Ferry, stack: Stack, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "soon gone")
    empty_folder(destination)
    task = await create_task(
        ferry,
        source,
        destination,
        Schedule={"ScheduleExpression": "rate(2 seconds)", "DisableAfterFailures": 2},
    )
    shutil.rmtree(source)  # every execution now fails in LAUNCHING with the same error

    async def disabled() -> bool:
        described = await ferry.describe_task({"TaskArn": task})
        return described["Schedule"]["Status"] == "DISABLED"

    await until(disabled)
    described = await ferry.describe_task({"TaskArn": task})
    details = described["ScheduleDetails"]
    assert details["DisabledBy"] == "SERVICE"
    assert "2 executions in a row failed with LocationUnavailable" in details["DisabledReason"]
    assert str(source) in details["DisabledReason"]
    assert schedule_paused(stack, task)
    failed = [e for e in await executions(ferry, task) if e["Status"] == "ERROR"]
    assert len(failed) >= 2

    # Enabled again by the user, it fires again (and the failure count starts over).
    write(source / "a.txt", "back")
    await ferry.update_task(
        {
            "TaskArn": task,
            "Schedule": {"ScheduleExpression": "rate(2 seconds)", "DisableAfterFailures": 2},
        }
    )
    assert not schedule_paused(stack, task)

    async def succeeded() -> bool:
        return any(e["Status"] == "SUCCESS" for e in await executions(ferry, task))

    await until(succeeded)
    await ferry.update_task({"TaskArn": task, "Schedule": {"ScheduleExpression": ""}})
    assert (destination / "a.txt").read_text() == "back"


def test_bad_schedule_and_timetable_are_rejected(stack: Stack, workdir: Path) -> None:
    source = workdir / "source"
    source.mkdir()
    arn = json.loads(run_cli(stack, "create-location-local", "--path", str(source)).stdout)
    other = workdir / "other"
    other.mkdir()
    arn2 = json.loads(run_cli(stack, "create-location-local", "--path", str(other)).stdout)
    listed = json.loads(run_cli(stack, "list-tasks").stdout)["Tasks"]
    common = [
        "create-task",
        "--source-location-arn",
        arn["LocationArn"],
        "--destination-location-arn",
        arn2["LocationArn"],
    ]

    cron = run_cli(stack, *common, "--schedule", '{"ScheduleExpression": "cron(0 0 L * ? *)"}')
    weekly = run_cli(stack, *common, "--schedule", '{"ScheduleExpression": "rate(3 weeks)"}')
    timetable = run_cli(stack, *common, "--bandwidth-timetable", "08:00,10M 25:00,off")

    assert cron.returncode == 254
    assert "Schedule.ScheduleExpression 'cron(0 0 L * ? *)' is not valid" in cron.stderr
    assert "not supported" in cron.stderr
    assert weekly.returncode == 254
    assert "rate(12 hours)" in weekly.stderr  # what a valid one looks like
    assert timetable.returncode == 254
    assert "BandwidthTimetable entry '25:00,off'" in timetable.stderr
    assert json.loads(run_cli(stack, "list-tasks").stdout)["Tasks"] == listed
