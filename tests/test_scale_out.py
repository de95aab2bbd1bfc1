"""Several workers share the batches of one execution: a worker killed in the middle leaves the
others to finish it, and a worker stopped with SIGTERM lets its batches checkpoint, so that
their retries on another worker resume where they stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import Popen, Stack
from helpers import (
    Batch,
    differences,
    identity,
    start_limited,
    transfer_batches,
    until,
    wait,
)
from temporalio.api.enums.v1 import PendingActivityState

from api import Ferry
from api.client import connect
from models.arn import execution_id

FILE_SIZE = 256 * 1024


@dataclass
class Transfer:
    """An execution started on a stack of several workers, from files of FILE_SIZE."""

    ferry: Ferry
    workers: dict[str, Popen]  # by identity
    source: Path
    destination: Path
    files: list[str]
    arn: str


async def start_transfer(stack: Stack, workdir: Path, files: int, limit: int) -> Transfer:
    ferry = Ferry(await connect(stack.address))
    workers = {identity(process): process for process in stack.workers}
    return Transfer(ferry, workers, *await start_limited(ferry, workdir, files, limit, FILE_SIZE))


async def finished(transfer: Transfer) -> list[Batch]:
    """Waits for the execution to succeed with every file in place; its batches of files."""
    result = await asyncio.wait_for(wait(transfer.ferry, transfer.arn), 120)
    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert differences(transfer.source, transfer.destination) == []
    assert result["FilesTransferred"] == len(transfer.files) + 1  # and the root
    assert result["BytesWritten"] == len(transfer.files) * FILE_SIZE
    batches = await transfer_batches(transfer.ferry, transfer.arn)
    return [batch for batch in batches if batch.step == "files"]


def inodes(destination: Path, names: list[str]) -> dict[str, int]:
    """The files in place at the destination now, by name."""
    found = {}
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            found[name] = os.stat(destination / name).st_ino
    return found


@dataclass
class Running:
    """A TransferBatch attempt running now, as the server knows it."""

    worker: str
    seconds: float  # since it started
    checkpoint: dict[str, Any]  # its last heartbeat recorded ({} before the first)


async def running_batches(ferry: Ferry, arn: str) -> list[Running]:
    described = await ferry.client.get_workflow_handle(execution_id(arn)).describe()
    running = []
    for pending in described.raw_description.pending_activities:
        if (
            pending.activity_type.name == "TransferBatch"
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ):
            details = pending.heartbeat_details.payloads
            running.append(
                Running(
                    pending.last_worker_identity,
                    time.time() - pending.last_started_time.ToMicroseconds() / 1e6,
                    json.loads(details[0].data) if details else {},
                )
            )
    return running


# Workers take batches from the server (eager dispatch is off: it gave every batch to the worker
# that ran the workflow task), so the three share them.
async def test_three_workers_share_an_execution_and_two_finish_it_when_one_is_killed(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    # Two files a batch; two pool processes a worker, the least it runs: three workers and
    # their pools share two cores with the Temporal server here.
    stack = own_stack(workers=3, FERRY_BATCH_FILES="2", FERRY_PROCESSES="2")
    # 18 MiB at 1 MiB/s in 36 batches: two at once under a limit, each about a second long.
    transfer = await start_transfer(stack, workdir, 72, 1 << 20)
    workers = transfer.workers

    async def victim() -> Popen | None:
        """Once each worker has finished a batch, one that has just started another."""
        done = await transfer_batches(transfer.ferry, transfer.arn)
        took = {batch.identity for batch in done}
        # Were batches dealt out at random, 24 would miss one worker of three once in 5,000.
        assert len(done) < 24 or took == set(workers), (
            f"{len(done)} batches ran on {len(took)} of the 3 workers"
        )
        if took != set(workers):
            return None
        for batch in await running_batches(transfer.ferry, transfer.arn):
            if batch.worker in workers and batch.seconds < 0.4:
                return workers[batch.worker]
        return None

    killed = await until(victim, timeout=60, every=0.1)
    stack.stop_worker(killed, signal.SIGKILL)
    batches = await finished(transfer)

    assert sorted(batch.index for batch in batches) == list(range(36))
    assert {batch.identity for batch in batches} == set(workers)
    # The batch the killed worker had just started was finished by another, once its
    # heartbeats had stopped for 10 s.
    retried = [batch for batch in batches if batch.attempt > 1]
    assert retried, batches
    assert identity(killed) not in {batch.identity for batch in retried}, retried


async def test_a_worker_stopped_with_sigterm_hands_its_batches_on_at_their_checkpoints(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    # In sessions of their own, as a service manager starts them: SIGTERM goes to the worker's
    # whole process group, its pool processes with it.
    stack = own_stack(workers=2, new_session=True, FERRY_BATCH_FILES="8", FERRY_PROCESSES="2")
    # 6 MiB at 512 KiB/s in 3 batches of eight files: two at once, a file a second each.
    transfer = await start_transfer(stack, workdir, 24, 1 << 19)
    workers, destination, files = transfer.workers, transfer.destination, transfer.files

    async def stopping() -> Popen | None:
        """A worker running a batch that has checkpointed a finished file, and has files to do
        yet (its last heartbeat recorded may be two seconds old)."""
        for batch in await running_batches(transfer.ferry, transfer.arn):
            if batch.worker in workers and 1 <= batch.checkpoint.get("next", 0) <= 4:
                return workers[batch.worker]
        return None

    stopped = await until(stopping, timeout=60, every=0.2)
    in_place = inodes(destination, files)
    os.killpg(stopped.pid, signal.SIGTERM)
    assert await asyncio.to_thread(stopped.wait, 15) == 0  # in order, and soon
    batches = await finished(transfer)

    (other,) = set(workers) - {identity(stopped)}
    handed_on = [batch for batch in batches if batch.last_failure == "WorkerShutdown"]
    assert handed_on, batches
    assert all(batch.attempt >= 2 and batch.identity == other for batch in handed_on), batches
    # Its pool process checkpointed as it stopped: no file it had put in place is written
    # again, and its retry resumed past the files it had done.
    assert inodes(destination, files).items() >= in_place.items()
    log = stack.log_path(stack.workers.index(workers[other])).read_text()
    resumed = {
        int(index): int(row)
        for index, row in re.findall(r"resuming files batch (\d+) at row (\d+)", log)
    }
    assert any(resumed.get(batch.index, 0) >= 1 for batch in handed_on), (resumed, handed_on)
