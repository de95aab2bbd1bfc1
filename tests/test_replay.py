"""Workflow histories recorded from real executions (tests/histories/, by record.py there) replay
with the workflow code as it is now: executions and the registry that were running when Ferry
was upgraded go on where they stopped, instead of failing on a nondeterminism error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.execution import TaskExecutionWorkflow
from workflows.registry import RegistryWorkflow
from workflows.schedule import ScheduledStartWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json.gz"))


@pytest.mark.parametrize("path", HISTORIES, ids=[path.name for path in HISTORIES])
async def test_a_recorded_history_replays_with_the_code_of_today(path: Path) -> None:
    text = gzip.decompress(path.read_bytes()).decode()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    history = WorkflowHistory.from_json(started.get("workflowId", path.stem), text)
    replayer = Replayer(
        workflows=[TaskExecutionWorkflow, RegistryWorkflow, ScheduledStartWorkflow],
        data_converter=pydantic_data_converter,
    )

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None, result.replay_failure


def test_every_kind_of_execution_has_a_history() -> None:
    names = {path.name.rpartition("-")[0] for path in HISTORIES}
    assert {
        "execution-verified",
        "execution-limited",
        "execution-dry-run",
        "execution-failed",
        "execution-continued",
        "registry",
    } <= names
