"""DataSync's agent operations, and the agent process's side of activation."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from api.base import Operations, Response, listed, now, paginate
from api.presence import agent_presence
from api.requests import (
    AgentArnRequest,
    CreateAgentRequest,
    ListAgentsRequest,
    UpdateAgentRequest,
    parse,
)
from models.agents import Activation, Agent
from models.arn import arn_prefix, new_id
from models.registry import AgentUpdate


class AgentOperations(Operations):
    async def create_agent(self, request: dict[str, Any]) -> Response:
        req = parse(CreateAgentRequest, request)
        arn = f"{arn_prefix(self.region, self.account)}agent/{new_id('agent')}"
        agent = Agent(AgentArn=arn, Name=req.AgentName, CreationTime=now())
        await self._update("create_agent", agent, req.ActivationKey, req.Tags)
        return {"AgentArn": arn}

    async def describe_agent(self, request: dict[str, Any]) -> Response:
        req = parse(AgentArnRequest, request)
        agent = await self._agent(req.AgentArn)
        status, last = await agent_presence(self.client, agent.AgentArn)
        return agent.describe(status, last, _version())

    async def list_agents(self, request: dict[str, Any]) -> Response:
        req = parse(ListAgentsRequest, request)
        agents = await self._query("agents", list[Agent])
        page, token = paginate(
            agents,
            lambda x: (x.CreationTime.isoformat(), x.AgentArn),
            req.MaxResults,
            req.NextToken,
        )
        entries = []
        for agent in page:
            status, _ = await agent_presence(self.client, agent.AgentArn)
            entry = {"AgentArn": agent.AgentArn, "Status": status}
            entry["Platform"] = {"Version": _version()}
            if agent.Name is not None:
                entry["Name"] = agent.Name
            entries.append(entry)
        return listed("Agents", entries, token)

    async def update_agent(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateAgentRequest, request)
        await self._update("update_agent", AgentUpdate(AgentArn=req.AgentArn, Name=req.Name))
        return {}

    async def delete_agent(self, request: dict[str, Any]) -> Response:
        req = parse(AgentArnRequest, request)
        await self._update("delete_agent", req.AgentArn)
        return {}

    async def register_activation(self, key: str, seconds: int) -> Activation:
        return Activation.model_validate(await self._update("register_activation", key, seconds))

    async def activation(self, key: str) -> Activation | None:
        found = await self._query("activation", list[Activation], key)
        return found[0] if found else None

    async def agent_exists(self, agent_arn: str) -> bool:
        return any(a.AgentArn == agent_arn for a in await self._query("agents", list[Agent]))

    async def agent_locations(self, agent_arn: str) -> list[str]:
        """The ARNs of the locations that name the agent."""
        return await self._query("agent_locations", list[str], agent_arn)

    async def location_agents(self, location_arn: str) -> list[str]:
        """The agents a location names now (after any UpdateLocation)."""
        return list((await self._location(location_arn)).AgentArns)


def _version() -> str:
    try:
        return importlib.metadata.version("ferry")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"
