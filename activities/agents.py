"""LAUNCHING's wait for an execution's agents: until one is ONLINE (api.presence), or fail."""

from __future__ import annotations

import asyncio
import os
import time

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from api.presence import agent_presence
from models.errors import ErrorCode
from models.temporal import WAIT_FOR_AGENTS

# How long LAUNCHING waits for an OFFLINE agent before the execution fails.
AGENT_WAIT_SECONDS = 600.0


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
