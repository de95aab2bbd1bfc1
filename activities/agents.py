"""Whether agents are ONLINE, from what Temporal already knows: the last time each polled its
task queue. An idle worker polls again at least every minute (a long poll ends after 60 s)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from models.errors import ErrorCode
from models.temporal import WAIT_FOR_AGENTS, agent_task_queue

# An agent that has not polled for this long is OFFLINE (a live one polls every minute).
ONLINE_WITHIN = timedelta(seconds=90)
# How long LAUNCHING waits for an OFFLINE agent before the execution fails.
AGENT_WAIT_SECONDS = 600.0


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


class AgentActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=WAIT_FOR_AGENTS)
    async def wait_for_agents(self, agent_arns: list[str]) -> list[str]:
        """LAUNCHING: the execution's agents that are ONLINE, once there is one; fails, naming
        them, when none has come online within FERRY_AGENT_WAIT_SECONDS (600)."""
        limit = float(os.environ.get("FERRY_AGENT_WAIT_SECONDS", AGENT_WAIT_SECONDS))
        deadline = time.monotonic() + limit
        while True:
            online = [
                arn for arn in agent_arns if (await agent_presence(self.client, arn))[0] == "ONLINE"
            ]
            if online:
                return online
            if time.monotonic() > deadline:
                raise ApplicationError(
                    f"Agent {', '.join(agent_arns)} stayed OFFLINE for {limit:g} s, so the "
                    "execution could not launch. Start the agent (`ferry worker --agent "
                    "--state-dir DIR`) and check that it reaches Temporal, then start the "
                    "execution again.",
                    type=ErrorCode.AGENT_OFFLINE,
                    non_retryable=True,
                )
            activity.heartbeat()
            await asyncio.sleep(2)
