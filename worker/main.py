"""A worker: polls Ferry's task queue and hosts the registry, the execution workflow and the
storage activities. `ferry worker` runs it alone; `ferry dev` runs it beside the dev server."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.execution import ExecutionActivities, check_location
from activities.preparing import BYTES_PER_BATCH, FILES_PER_BATCH
from activities.staging import StagingStore
from models.temporal import TASK_QUEUE
from workflows.execution import TaskExecutionWorkflow
from workflows.registry import RegistryWorkflow

log = logging.getLogger("ferry.worker")

# Batches run on threads: file I/O blocks, and Python releases the GIL while it waits.
DEFAULT_MAX_ACTIVITIES = 16


def build_worker(
    client: Client, staging_dir: str, executor: ThreadPoolExecutor, max_activities: int
) -> Worker:
    os.makedirs(staging_dir, exist_ok=True)
    # Batch sizes are a tuning knob of the worker that plans (FERRY_BATCH_FILES, _BYTES).
    activities = ExecutionActivities(
        StagingStore(staging_dir),
        files_per_batch=int(os.environ.get("FERRY_BATCH_FILES", FILES_PER_BATCH)),
        bytes_per_batch=int(os.environ.get("FERRY_BATCH_BYTES", BYTES_PER_BATCH)),
    )
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[RegistryWorkflow, TaskExecutionWorkflow],
        activities=[
            activities.launch,
            activities.prepare,
            activities.transfer_batch,
            activities.prepare_verification,
            activities.verify_batch,
            activities.verify_transferred,
            activities.clean_up,
            check_location,
        ],
        activity_executor=executor,
        max_concurrent_activities=max_activities,
        # Heartbeats reach the server within 2 s, and with them cancels reach the batches.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        default_heartbeat_throttle_interval=timedelta(seconds=2),
        # On SIGTERM running batches checkpoint and stop; their retries resume elsewhere.
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def run_worker(
    client: Client,
    staging_dir: str,
    stop: asyncio.Event,
    max_activities: int = DEFAULT_MAX_ACTIVITIES,
) -> None:
    with ThreadPoolExecutor(max_workers=max_activities, thread_name_prefix="ferry") as executor:
        worker = build_worker(client, staging_dir, executor, max_activities)
        async with worker:
            log.info(
                "worker polling task queue %r on %s (namespace %s), staging in %s",
                TASK_QUEUE,
                client.service_client.config.target_host,
                client.namespace,
                staging_dir,
            )
            await stop.wait()
            log.info("worker stopping")
