"""Whether agents are ONLINE, from what Temporal already knows: the last time each polled its
own task queue. An idle worker polls again at least every minute (a long poll ends after 60 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from models.temporal import agent_task_queue

# An agent that has not polled for this long is OFFLINE (a live one polls every minute).
ONLINE_WITHIN = timedelta(seconds=90)


async def last_poll(
    client: Client,
    task_queue: str,
    kind: TaskQueueType.ValueType = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
) -> datetime | None:
    """When a worker last polled `task_queue` (None: none in the last few minutes)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
    )
    seen = [poller.last_access_time.ToDatetime(tzinfo=UTC) for poller in response.pollers]
    return max(seen, default=None)


async def agent_presence(client: Client, agent_arn: str) -> tuple[str, datetime | None]:
    """DescribeAgent's Status (ONLINE or OFFLINE) and LastConnectionTime."""
    last = await last_poll(client, agent_task_queue(agent_arn))
    online = last is not None and datetime.now(UTC) - last < ONLINE_WITHIN
    return ("ONLINE" if online else "OFFLINE"), last
