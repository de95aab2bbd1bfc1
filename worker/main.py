"""A worker: polls Ferry's task queue and hosts the registry, the execution workflow and the
storage activities. `ferry worker` runs it alone; `ferry dev` runs it beside the dev server.

Activities run on threads; listing and batches run in the worker's process pool (one core each),
the threads waiting for them and relaying their progress to Temporal.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
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
from activities.staging import StagingStore
from models.temporal import TASK_QUEUE
from starter.client import connect
from worker.telemetry import from_environment
from workflows.execution import TaskExecutionWorkflow
from workflows.registry import RegistryWorkflow
from workflows.schedule import ScheduledStartWorkflow

log = logging.getLogger("ferry.worker")


def default_processes() -> int:
    """One per core (at least two). Two per core made small-file copies between local folders
    slower: 15.1 s against 8.9 s for 50,000 files on 2 cores, the batches contending for the
    disk's journal and for the cores the Temporal server also needs. Storage behind a network
    waits more; FERRY_PROCESSES raises it there."""
    return max(2, min(16, os.cpu_count() or 1))


def build_worker(
    client: Client,
    staging_dir: str,
    pool: WorkPool,
    executor: ThreadPoolExecutor,
    threads: int,
    task_queue: str = TASK_QUEUE,
) -> Worker:
    """On Ferry's own queue: the workflows and every activity. On an agent's queue: the
    activities that touch the storage its locations name."""
    os.makedirs(staging_dir, exist_ok=True)
    # Batch sizes are a tuning knob of the worker that plans (FERRY_BATCH_FILES, _BYTES).
    registry = RegistryActivities(client)
    activities = ExecutionActivities(
        StagingStore(staging_dir),
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
    staging_dir: str,
    stop: asyncio.Event,
    processes: int | None = None,
    task_queue: str = TASK_QUEUE,
) -> None:
    pool = WorkPool(processes or default_processes())
    try:
        await asyncio.get_running_loop().run_in_executor(None, pool.warm)
        threads = 4 * pool.processes + 8
        with ThreadPoolExecutor(threads, thread_name_prefix="ferry") as executor:
            worker = build_worker(client, staging_dir, pool, executor, threads, task_queue)
            async with worker:
                log.info(
                    "worker polling task queue %r on %s (namespace %s) with %d processes, "
                    "staging in %s",
                    task_queue,
                    client.service_client.config.target_host,
                    client.namespace,
                    pool.processes,
                    staging_dir,
                )
                await stop.wait()
                log.info("worker stopping")
    finally:
        pool.shutdown()
