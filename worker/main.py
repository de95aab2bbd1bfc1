"""A worker: polls Ferry's task queue and hosts the registry, the execution workflow and the
storage activities. `ferry worker` runs it alone; `ferry dev` runs it beside the dev server.

Activities run on threads; listing and batches run in the worker's process pool (one core each),
the threads waiting for them and relaying their progress to Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.agents import AgentActivities
from activities.execution import ExecutionActivities
from activities.pool import WorkPool
from activities.preparing import BYTES_PER_BATCH, FILES_PER_BATCH
from activities.registry import RegistryActivities
from activities.staging import open_staging
from api.client import connect
from models.temporal import TASK_QUEUE
from worker.telemetry import from_environment
from workflows.execution import TaskExecutionWorkflow
from workflows.registry import RegistryWorkflow
from workflows.schedule import ScheduledStartWorkflow

log = logging.getLogger("ferry.worker")

# How soon a worker that follows task queues (an agent, its locations') notices a change.
FOLLOW_SECONDS = 5.0


def default_processes() -> int:
    """One per core (at least two). Two per core made small-file copies between local folders
    slower: 15.1 s against 8.9 s for 50,000 files on 2 cores, the batches contending for the
    disk's journal and for the cores the Temporal server also needs. Storage behind a network
    waits more; FERRY_PROCESSES raises it there."""
    return max(2, min(16, os.cpu_count() or 1))


def build_worker(
    client: Client,
    staging: str,
    scratch: str,
    pool: WorkPool,
    executor: ThreadPoolExecutor,
    threads: int,
    task_queue: str = TASK_QUEUE,
) -> Worker:
    """On Ferry's own queue: the workflows and every activity. On an agent's queue: the
    activities that touch the storage its locations name. `staging`: the staging store's URL
    (a directory, or s3://BUCKET/PREFIX); `scratch`: this worker's own folder."""
    # Batch sizes are a tuning knob of the worker that plans (FERRY_BATCH_FILES, _BYTES).
    registry = RegistryActivities(client)
    activities = ExecutionActivities(
        open_staging(staging),
        scratch,
        pool,
        client,
        asyncio.get_running_loop(),
        files_per_batch=int(os.environ.get("FERRY_BATCH_FILES", FILES_PER_BATCH)),
        bytes_per_batch=int(os.environ.get("FERRY_BATCH_BYTES", BYTES_PER_BATCH)),
    )
    storage_activities = [
        activities.launch,
        activities.prepare,
        activities.transfer_batch,
        activities.prepare_verification,
        activities.verify_batch,
        activities.verify_transferred,
        activities.write_task_report,
        activities.clean_up,
        registry.check_location,
    ]
    central = task_queue == TASK_QUEUE
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RegistryWorkflow, TaskExecutionWorkflow, ScheduledStartWorkflow]
        if central
        else [],
        activities=storage_activities
        + (
            [
                registry.open_executions,
                registry.apply_schedule,
                registry.start_scheduled_execution,
                AgentActivities(client).wait_for_agents,
            ]
            if central
            else []
        ),
        activity_executor=executor,
        # Threads that mostly wait for the pool; batches beyond its size wait for a process
        # while their activities go on heartbeating.
        max_concurrent_activities=threads,
        # Heartbeats reach the server within 2 s, and with them cancels reach the batches.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        default_heartbeat_throttle_interval=timedelta(seconds=2),
        # On SIGTERM running batches checkpoint and stop; their retries resume elsewhere.
        graceful_shutdown_timeout=timedelta(seconds=5),
        # Batches go to whichever worker polls for them, not all to the worker that ran the
        # workflow task that scheduled them (eager dispatch, on by default on the dev server):
        # that is how several workers share one execution.
        disable_eager_activity_execution=True,
    )


@asynccontextmanager
async def worker_client(
    address: str | None, patience: float = 0.0, service: str = "ferry-worker"
) -> AsyncIterator[Client]:
    """A worker's client, with OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is set (its
    metrics exported while the client is in use), as the OpenTelemetry `service`."""
    telemetry = from_environment(service)
    if telemetry is None:
        yield await connect(address, patience)
        return
    client = await connect(address, patience, **telemetry.client_options())
    async with telemetry.exporting(client):
        yield client


async def run_worker(
    client: Client,
    staging: str,
    stop: asyncio.Event,
    processes: int | None = None,
    task_queue: str = TASK_QUEUE,
    follow: Callable[[], Awaitable[list[str]]] | None = None,
) -> None:
    """Poll `task_queue` until `stop`, and the task queues `follow` names as they change (an
    agent: its locations'). `staging`: the staging store's URL, shared with every other worker
    and agent; what this worker keeps for itself goes to a scratch folder of its own in TMPDIR,
    removed when it stops."""
    pool = WorkPool(processes or default_processes())
    scratch = tempfile.mkdtemp(prefix="ferry-scratch-")
    threads = 4 * pool.processes + 8
    executors: list[ThreadPoolExecutor] = []

    def build(queue: str, slots: int = threads) -> Worker:
        # A thread pool per queue: an activity a worker takes must find a thread at once, or
        # it could not heartbeat.
        executors.append(ThreadPoolExecutor(slots, thread_name_prefix="ferry"))
        return build_worker(client, staging, scratch, pool, executors[-1], slots, queue)

    def shared(queue: str) -> Worker:
        # A queue other agents poll too: take no more batches than the pool runs at once (and
        # one more, for PREPARING beside them); one that would wait here is better taken by an
        # agent with a process free.
        return build(queue, pool.processes + 1)

    try:
        await asyncio.get_running_loop().run_in_executor(None, pool.warm)
        async with build(task_queue):
            log.info(
                "worker polling task queue %r on %s (namespace %s) with %d processes, "
                "staging store %s",
                task_queue,
                client.service_client.config.target_host,
                client.namespace,
                pool.processes,
                staging,
            )
            if follow is None:
                await stop.wait()
            else:
                await _follow(shared, follow, stop)
            log.info("worker stopping")
    finally:
        for executor in executors:
            executor.shutdown(wait=True)
        pool.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)


async def _follow(
    build: Callable[[str], Worker], queues: Callable[[], Awaitable[list[str]]], stop: asyncio.Event
) -> None:
    """Until `stop`, poll the task queues `queues` names, starting and stopping a worker for each
    as the list changes (checked every FOLLOW_SECONDS)."""
    running: dict[str, Worker] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        while not stop.is_set():
            try:
                wanted = set(await queues())
            except Exception as error:  # Temporal out of reach for a moment: keep polling
                log.warning("could not tell which task queues to poll: %s", error)
                wanted = set(running)
            for queue in sorted(wanted - running.keys()):
                running[queue] = build(queue)
                tasks.append(asyncio.create_task(running[queue].run()))
                log.info("polling task queue %r too", queue)
            for queue in sorted(running.keys() - wanted):
                log.info("no longer polling task queue %r", queue)
                await running.pop(queue).shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLLOW_SECONDS)
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in running.values()))
        await asyncio.gather(*tasks, return_exceptions=True)
