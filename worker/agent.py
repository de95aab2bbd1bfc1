"""An agent process: `ferry worker --agent --state-dir DIR`.

Never activated, it makes an activation key, prints it, writes it to DIR/activation-key and
waits, doing no work, until CreateAgent uses the key (a new key replaces one that expires); with
an activation port it also hands the key to whoever asks over HTTP, as DataSync's agent does
(worker/activation.py).
Activated, it keeps its agent's ARN in DIR/agent.json, polls the agent's own task queue and the
task queue of every location that names it (as locations are created, updated and deleted), and
serves it again after a restart without a new key. When its agent is deleted it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from api import Ferry
from models.agents import ACTIVATION_KEY_SECONDS, new_activation_key
from models.errors import DataSyncError
from models.temporal import agent_task_queue, location_task_queue
from worker.activation import serve_activation
from worker.main import run_worker

log = logging.getLogger("ferry.agent")

ACTIVATION_POLL_SECONDS = 1.0
AGENT_CHECK_SECONDS = 10.0
EXIT_AGENT_DELETED = 3


class AgentState:
    """What an agent process keeps in its state directory."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key_path = directory / "activation-key"
        self.agent_path = directory / "agent.json"

    def agent_arn(self) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            return json.loads(self.agent_path.read_text())["AgentArn"]
        return None

    def key(self) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            return self.key_path.read_text().strip() or None
        return None

    def save_key(self, key: str) -> None:
        _write(self.key_path, key + "\n")

    def save_agent(self, agent_arn: str) -> None:
        _write(self.agent_path, json.dumps({"AgentArn": agent_arn}) + "\n")
        self.key_path.unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


async def run_agent(
    client: Client,
    state_dir: Path,
    staging: str,
    stop: asyncio.Event,
    processes: int | None = None,
    activation: tuple[str, int] | None = None,
) -> int:
    """`activation`: the host and port where the activation key is handed out over HTTP."""
    ferry = Ferry(client)
    state = AgentState(state_dir)
    agent_arn = state.agent_arn() or await _activate(ferry, state, stop, activation)
    if agent_arn is None:
        return 0  # stopped before it was activated
    if not await ferry.agent_exists(agent_arn):
        return _deleted(agent_arn, state)
    log.info("serving agent %s", agent_arn)
    deleted = asyncio.Event()
    watch = asyncio.create_task(_watch(ferry, agent_arn, stop, deleted))

    async def locations() -> list[str]:
        return [location_task_queue(arn) for arn in await ferry.agent_locations(agent_arn)]

    try:
        await run_worker(
            client, staging, stop, processes, agent_task_queue(agent_arn), follow=locations
        )
    finally:
        watch.cancel()
    return _deleted(agent_arn, state) if deleted.is_set() else 0


async def _activate(
    ferry: Ferry, state: AgentState, stop: asyncio.Event, activation: tuple[str, int] | None
) -> str | None:
    """Wait with an activation key until CreateAgent uses it; the agent's ARN."""
    server = None
    if activation is not None:
        server = await serve_activation(state.key, ferry.region, *activation)
        log.info("handing out the activation key on http://%s:%d/", *activation)
    try:
        return await _await_activation(ferry, state, stop)
    finally:
        if server is not None:
            await server.cleanup()


async def _await_activation(ferry: Ferry, state: AgentState, stop: asyncio.Event) -> str | None:
    seconds = int(os.environ.get("FERRY_ACTIVATION_KEY_SECONDS", ACTIVATION_KEY_SECONDS))
    key = state.key()  # a key this process made before a restart may still be waiting
    activation = await ferry.activation(key) if key else None
    shown = None
    while not stop.is_set():
        if activation is not None and activation.AgentArn:
            state.save_agent(activation.AgentArn)
            log.info("activated as agent %s", activation.AgentArn)
            return activation.AgentArn
        if activation is None or activation.ExpiresAt <= datetime.now(UTC):
            activation = await ferry.register_activation(new_activation_key(), seconds)
            state.save_key(activation.ActivationKey)
        if shown != activation.ActivationKey:
            shown = activation.ActivationKey
            print(shown, flush=True)
            log.info(
                "activation key %s (in %s, until %s): run `ferry create-agent "
                "--activation-key %s` to activate this agent",
                shown,
                state.key_path,
                activation.ExpiresAt.isoformat(timespec="seconds"),
                shown,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ACTIVATION_POLL_SECONDS)
        with contextlib.suppress(DataSyncError):
            activation = await ferry.activation(shown) or activation
    return None


async def _watch(ferry: Ferry, agent_arn: str, stop: asyncio.Event, deleted: asyncio.Event) -> None:
    """Stop the worker once the agent is deleted."""
    while not stop.is_set():
        await asyncio.sleep(AGENT_CHECK_SECONDS)
        with contextlib.suppress(DataSyncError):
            if not await ferry.agent_exists(agent_arn):
                deleted.set()
                stop.set()


def _deleted(agent_arn: str, state: AgentState) -> int:
    print(
        f"Agent {agent_arn} was deleted; this process takes no more work. Remove "
        f"{state.agent_path} and start it again to activate it as a new agent.",
        file=sys.stderr,
    )
    return EXIT_AGENT_DELETED
