"""Agents: activation with a key, ONLINE and OFFLINE from Temporal's pollers, executions that
run on their agents' task queues, and one execution at a time per agent, in order."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, Stack, run_cli
from helpers import (
    activate,
    activation_key,
    agent_status,
    batch_workers,
    differences,
    empty_folder,
    identity,
    start,
    transfer_batches,
    until,
    wait,
    write,
)

from api import Ferry
from api.client import connect
from models.errors import InvalidRequestException
from models.temporal import location_task_queue

KEY = re.compile(r"^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$")


async def local_location(ferry: Ferry, path: Path, *agents: str) -> str:
    request: dict[str, Any] = {"Path": str(path)}
    if agents:
        request["AgentArns"] = list(agents)
    return (await ferry.create_location_local(request))["LocationArn"]


async def agent_task(
    ferry: Ferry, source: Path, destination: Path, agents: list[str], **options: Any
) -> str:
    """A task from a new folder the agents see to a new one the ordinary workers see."""
    if not source.exists():
        write(source / "data.bin", "x")
    empty_folder(destination)
    return await task_between(
        ferry,
        await local_location(ferry, source, *agents),
        await local_location(ferry, destination),
        **options,
    )


async def task_between(ferry: Ferry, source: str, destination: str, **options: Any) -> str:
    created = await ferry.create_task(
        {"SourceLocationArn": source, "DestinationLocationArn": destination, "Options": options}
    )
    return created["TaskArn"]


@pytest.fixture
async def agent_stack(own_stack: Callable[..., Stack]) -> Stack:
    # LAUNCHING gives up on an OFFLINE agent after 5 s here (600 s by default).
    return own_stack(FERRY_AGENT_WAIT_SECONDS="5")


async def test_activation_restart_rename_and_delete(agent_stack: Stack, workdir: Path) -> None:
    stack = agent_stack
    ferry = Ferry(await connect(stack.address))
    state_dir = workdir / "agent"
    process = stack.start_agent(state_dir)
    key = await activation_key(state_dir)
    assert KEY.match(key), key
    await asyncio.sleep(2)
    assert process.poll() is None  # waits for activation, doing no work

    created = run_cli(stack, "create-agent", "--activation-key", key, "--agent-name", "near-nas")
    assert created.returncode == 0, created.stderr
    agent_arn = re.search(r'"AgentArn": "([^"]+)"', created.stdout).group(1)  # type: ignore[union-attr]
    again = run_cli(stack, "create-agent", "--activation-key", key)
    assert again.returncode == 254
    assert "was already used" in again.stderr and agent_arn in again.stderr

    await until(lambda: agent_status(ferry, agent_arn, "ONLINE"), timeout=30)
    described = await ferry.describe_agent({"AgentArn": agent_arn})
    assert described["Name"] == "near-nas"
    assert described["LastConnectionTime"].timestamp() > time.time() - 120
    await ferry.update_agent({"AgentArn": agent_arn, "Name": "renamed"})
    listed = (await ferry.list_agents({}))["Agents"]
    assert [(a["AgentArn"], a["Name"], a["Status"]) for a in listed] == [
        (agent_arn, "renamed", "ONLINE")
    ]

    # Restarted, it serves the same agent from its state directory, without a new key.
    stack.stop_worker(process)
    process = stack.start_agent(state_dir)
    assert not (state_dir / "activation-key").exists()
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "served by the agent")
    empty_folder(destination)
    source_arn = await local_location(ferry, source, agent_arn)
    task = await task_between(ferry, source_arn, await local_location(ferry, destination))
    arn = await start(ferry, task)
    result = await wait(ferry, arn)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, destination) == []
    queues, identities = await batch_workers(ferry, arn)
    assert queues == {location_task_queue(source_arn)}
    assert identities == {identity(process)}

    # An agent a location uses can't be deleted; once free, its process stops.
    with pytest.raises(InvalidRequestException, match=r"is in-use by these location\(s\)"):
        await ferry.delete_agent({"AgentArn": agent_arn})
    await ferry.delete_task({"TaskArn": task})
    for location in (await ferry.list_locations({}))["Locations"]:
        await ferry.delete_location({"LocationArn": location["LocationArn"]})
    await ferry.delete_agent({"AgentArn": agent_arn})
    await until(lambda: process.poll() is not None, timeout=30)
    assert process.returncode == 3
    assert "was deleted" in state_dir.with_suffix(".log").read_text()


async def test_activation_key_expires(agent_stack: Stack, workdir: Path) -> None:
    stack = agent_stack
    ferry = Ferry(await connect(stack.address))
    state_dir = workdir / "agent"
    stack.start_agent(state_dir, FERRY_ACTIVATION_KEY_SECONDS="2")
    first = await activation_key(state_dir)
    # Expired, the key is replaced by a new one, which the process prints.
    second = await until(
        lambda: (k := (state_dir / "activation-key").read_text().strip()) != first and k,
        timeout=30,
    )
    with pytest.raises(InvalidRequestException, match=f"ActivationKey: {first} expired at"):
        await ferry.create_agent({"ActivationKey": first})
    with pytest.raises(InvalidRequestException, match="is not waiting to be used"):
        await ferry.create_agent({"ActivationKey": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"})
    log = state_dir.with_suffix(".log").read_text()
    assert first in log and second in log


async def test_agents_share_a_transfer_wait_for_offline_agents_and_cancel(
    agent_stack: Stack, workdir: Path
) -> None:
    stack = agent_stack
    ferry = Ferry(await connect(stack.address))
    # Two files a batch (the agent that prepares the execution plans it): 12 batches.
    small_batches = {"FERRY_BATCH_FILES": "2"}
    first, first_arn = await activate(stack, ferry, workdir / "agent-1", "one", **small_batches)
    second, second_arn = await activate(stack, ferry, workdir / "agent-2", "two", **small_batches)
    source, destination = workdir / "source", workdir / "destination"
    for number in range(24):
        write(source / f"file-{number:02d}.bin", os.urandom(256 * 1024))
    empty_folder(destination)
    shared_source = await local_location(ferry, source, first_arn, second_arn)
    shared = await task_between(
        ferry,
        shared_source,
        await local_location(ferry, destination, first_arn, second_arn),
        BytesPerSecond=1 << 20,
    )
    lonely = await agent_task(ferry, workdir / "lonely", workdir / "lonely-to", [second_arn])

    # The second agent stops: OFFLINE within two minutes, from Temporal's pollers.
    stack.stop_worker(second)
    await until(lambda: agent_status(ferry, second_arn, "OFFLINE"), timeout=150, every=5)

    # An execution that needs only it waits in LAUNCHING, then fails naming it.
    waiting = await start(ferry, lonely)
    await until(
        lambda: status_of(ferry, waiting, "LAUNCHING"),
        timeout=10,
    )
    failed = await wait(ferry, waiting)
    assert failed["Status"] == "ERROR"
    assert failed["Result"]["ErrorCode"] == "AgentOffline"
    assert second_arn in failed["Result"]["ErrorDetail"]

    # Both agents share a transfer through their location's task queue; one dies in the
    # middle, and the other finishes without it (it is started again only afterwards).
    second = stack.start_agent(workdir / "agent-2", **small_batches)
    await until(lambda: agent_status(ferry, second_arn, "ONLINE"), timeout=30)
    arn = await start(ferry, shared)
    killed = identity(second)

    async def second_finished_a_batch() -> bool:
        return killed in {batch.identity for batch in await transfer_batches(ferry, arn)}

    # Killed once it has done a batch (a fixed pause lost the race on a busy machine), while
    # the limit keeps the execution going for seconds more.
    await until(second_finished_a_batch, timeout=60, every=0.2)
    stack.stop_worker(second, signal.SIGKILL)
    assert (await ferry.describe_task_execution({"TaskExecutionArn": arn}))[
        "Status"
    ] == "TRANSFERRING"
    result = await wait(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"]
    assert differences(source, destination) == []
    batches = await transfer_batches(ferry, arn)
    assert {batch.queue for batch in batches} == {location_task_queue(shared_source)}
    assert {identity(first), killed} <= {batch.identity for batch in batches}
    second = stack.start_agent(workdir / "agent-2", **small_batches)

    # A cancel stops the batches on both agents within seconds, leaving no partial file.
    await until(lambda: agent_status(ferry, second_arn, "ONLINE"), timeout=30)
    for number in range(24):
        write(source / f"file-{number:02d}.bin", os.urandom(256 * 1024))
    arn = await start(ferry, shared)
    await until(lambda: status_of(ferry, arn, "TRANSFERRING"), timeout=30)
    await asyncio.sleep(2)
    asked = time.monotonic()
    await ferry.cancel_task_execution({"TaskExecutionArn": arn})
    cancelled = await wait(ferry, arn)
    assert time.monotonic() - asked < 10
    assert cancelled["Status"] == "ERROR"
    assert cancelled["Result"]["ErrorCode"] == "Cancelled"
    assert not [p for p in destination.iterdir() if p.name.startswith(".ferry-")]


async def status_of(ferry: Ferry, arn: str, wanted: str) -> bool:
    described = await ferry.describe_task_execution({"TaskExecutionArn": arn})
    return described["Status"] == wanted


async def test_one_execution_at_a_time_per_agent_in_start_order(
    agent_stack: Stack, workdir: Path
) -> None:
    stack = agent_stack
    ferry = Ferry(await connect(stack.address))
    _, agent_arn = await activate(stack, ferry, workdir / "agent", "only")
    tasks = []
    for number in range(3):
        source = workdir / f"source-{number}"
        write(source / "data.bin", os.urandom(2 << 20))
        destination = workdir / f"destination-{number}"
        tasks.append(
            await agent_task(ferry, source, destination, [agent_arn], BytesPerSecond=2 << 20)
        )
    unqueued = await agent_task(
        ferry, workdir / "source-3", workdir / "destination-3", [agent_arn], TaskQueueing="DISABLED"
    )

    arns = [await start(ferry, task) for task in tasks]
    described = [await ferry.describe_task_execution({"TaskExecutionArn": a}) for a in arns]
    assert [d["Status"] for d in described[1:]] == ["QUEUED", "QUEUED"]
    assert (await ferry.describe_task({"TaskArn": tasks[2]}))["Status"] == "QUEUED"
    with pytest.raises(InvalidRequestException, match="TaskQueueing option is DISABLED"):
        await start(ferry, unqueued)
    results = [await wait(ferry, arn) for arn in arns]

    assert [r["Status"] for r in results] == ["SUCCESS"] * 3
    # Each started when the one before it ended.
    for before, after in itertools.pairwise(results):
        assert before["EndTime"] <= after["LaunchTime"]
    for number in range(3):
        assert differences(workdir / f"source-{number}", workdir / f"destination-{number}") == []


async def test_every_agent_gone_mid_transfer_fails_the_execution_naming_them(
    agent_stack: Stack, rclone_s3: S3Server, workdir: Path
) -> None:
    stack = agent_stack  # which waits 5 s for an agent, mid-execution as at LAUNCHING
    ferry = Ferry(await connect(stack.address))
    first, first_arn = await activate(stack, ferry, workdir / "agent-1", "one")
    second, second_arn = await activate(stack, ferry, workdir / "agent-2", "two")
    source = workdir / "source"
    for number in range(24):
        write(source / f"file-{number:02d}.bin", os.urandom(64 * 1024))
    destination = await ferry.create_location_object_storage(
        {
            "ServerHostname": "127.0.0.1",
            "ServerPort": rclone_s3.port,
            "ServerProtocol": "HTTP",
            "BucketName": rclone_s3.bucket("gone"),
            "AccessKey": S3_ACCESS_KEY,
            "SecretKey": S3_SECRET_KEY,
            "FolderMarkers": "DISABLED",
            "AgentArns": [first_arn],
        }
    )
    task = await task_between(
        ferry,
        await local_location(ferry, source),
        destination["LocationArn"],
        BytesPerSecond=128 * 1024,  # about twelve seconds of TRANSFERRING
    )
    arn = await start(ferry, task)
    await until(lambda: status_of(ferry, arn, "TRANSFERRING"), timeout=60)
    # An agent added meanwhile is one of the location's agents as much as the first.
    await ferry.update_location_object_storage(
        {"LocationArn": destination["LocationArn"], "AgentArns": [first_arn, second_arn]}
    )

    for process in (first, second):
        stack.stop_worker(process, signal.SIGKILL)
    result = await wait(ferry, arn)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "AgentOffline"
    detail = result["Result"]["ErrorDetail"]
    assert f"Agent {first_arn}, {second_arn} stayed OFFLINE for 5 s" in detail, detail
    assert "could not go on" in detail
    assert result["Result"]["TransferStatus"] == "ERROR"
