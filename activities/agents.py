"""An execution's wait for its agents: until one is ONLINE (api.presence), or fail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from api import Ferry
from api.presence import agent_presence
from models.errors import DataSyncError, ErrorCode
from models.execution import AgentsOnline
from models.temporal import WAIT_FOR_AGENTS

# How long an execution waits for an OFFLINE agent before it fails.
AGENT_WAIT_SECONDS = 600.0


class AgentActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=WAIT_FOR_AGENTS)
    async def wait_for_agents(self, agent_arns: list[str], location_arn: str = "") -> AgentsOnline:
        """The execution's agents that are ONLINE, once there is one; fails, naming them, when
        none has come online within FERRY_AGENT_WAIT_SECONDS (600), which the execution is told
        so that it waits as long for agents later on. At LAUNCHING, the agents it started with;
        mid-execution (`location_arn`), those its location names at the time."""
        limit = float(os.environ.get("FERRY_AGENT_WAIT_SECONDS", AGENT_WAIT_SECONDS))
        ferry = Ferry(self.client)
        deadline = time.monotonic() + limit
        while True:
            agents = agent_arns
            if location_arn:
                # The location deleted meanwhile, or the registry out of reach: as they were.
                with contextlib.suppress(DataSyncError):
                    agents = await ferry.location_agents(location_arn) or agent_arns
            online = [
                arn for arn in agents if (await agent_presence(self.client, arn))[0] == "ONLINE"
            ]
            if online:
                return AgentsOnline(online=online, wait_seconds=limit)
            if time.monotonic() > deadline:
                could_not = "go on" if location_arn else "launch"
                raise ApplicationError(
                    f"Agent {', '.join(agents)} stayed OFFLINE for {limit:g} s, so the execution "
                    f"could not {could_not}. Start the agent (`ferry worker --agent --state-dir "
                    "DIR`) and check that it reaches Temporal, then start the execution again.",
                    type=ErrorCode.AGENT_OFFLINE,
                    non_retryable=True,
                )
            activity.heartbeat()
            await asyncio.sleep(2)
