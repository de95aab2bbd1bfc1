"""The registry's state and the requests it takes: every location and task, and which
execution of each task runs or waits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from models import manifests, options, reports
from models.access_keys import AccessKey, AccessKeyStatus
from models.agents import Activation, Agent
from models.filters import FilterRule
from models.locations import Location
from models.schedules import TaskSchedule
from models.tags import TagListEntry
from models.tasks import Task

# The registry's state travels as one payload when it continues as new (2 MB at most).
MAX_RESOURCES = 2000
MAX_AGENTS_PER_LOCATION = 8


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")


class Admission(_Model):
    """An execution and what it holds while it runs: its task and the agents it runs on."""

    TaskExecutionArn: str
    holds: list[str]


class ExecutionQueue(_Model):
    """One execution at a time per task and per agent; the others wait, and start in the order
    they were started: none overtakes an earlier one that waits for something it also needs."""

    running: list[Admission] = []
    waiting: list[Admission] = []

    def can_start(self, holds: list[str], ahead: list[Admission] | None = None) -> bool:
        """Whether an execution holding `holds` may start, with `ahead` waiting before it."""
        taken = {arn for admission in self.running for arn in admission.holds}
        taken.update(arn for admission in (ahead or []) for arn in admission.holds)
        return taken.isdisjoint(holds)

    def blocker(self, holds: list[str]) -> str | None:
        """The running or waiting execution that `holds` would wait for."""
        for admission in (*self.running, *self.waiting):
            if not set(admission.holds).isdisjoint(holds):
                return admission.TaskExecutionArn
        return None

    def of_task(self, task_arn: str) -> tuple[str | None, str]:
        """The execution of a task that runs (else the first that waits), and the task's
        Status: RUNNING, QUEUED or AVAILABLE."""
        for admissions, status in ((self.running, "RUNNING"), (self.waiting, "QUEUED")):
            for admission in admissions:
                if task_arn in admission.holds:
                    return admission.TaskExecutionArn, status
        return None, "AVAILABLE"

    def arns(self) -> list[str]:
        return [admission.TaskExecutionArn for admission in (*self.running, *self.waiting)]

    def finished(self, execution_arn: str) -> list[str]:
        """Drop an execution that ended; returns those that may start now, in order (they
        move to running)."""
        self.running = [a for a in self.running if a.TaskExecutionArn != execution_arn]
        self.waiting = [a for a in self.waiting if a.TaskExecutionArn != execution_arn]
        granted: list[str] = []
        still: list[Admission] = []
        for admission in self.waiting:
            if self.can_start(admission.holds, still):
                self.running.append(admission)
                granted.append(admission.TaskExecutionArn)
            else:
                still.append(admission)
        self.waiting = still
        return granted


class FailureStreak(_Model):
    """Consecutive executions of a task that failed with one ErrorCode."""

    ErrorCode: str
    count: int


class RegistryState(_Model):
    @model_validator(mode="before")
    @classmethod
    def _from_per_task_queues(cls, data: Any) -> Any:
        """A registry saved before agents kept a queue per task ("queues"): its running and
        waiting executions become admissions holding their task."""
        if isinstance(data, dict) and "queues" in data:
            data = dict(data)
            running, waiting = [], []
            for task_arn, queue in data.pop("queues").items():
                if queue.get("running"):
                    running.append({"TaskExecutionArn": queue["running"], "holds": [task_arn]})
                waiting += [
                    {"TaskExecutionArn": arn, "holds": [task_arn]}
                    for arn in queue.get("waiting", [])
                ]
            data.setdefault("executions", {"running": running, "waiting": waiting})
        return data

    agents: dict[str, Agent] = {}
    activations: dict[str, Activation] = {}  # by activation key
    locations: dict[str, Location] = {}
    tasks: dict[str, Task] = {}
    # Kept apart from the resources, which travel in every execution's input.
    tags: dict[str, list[TagListEntry]] = {}
    executions: ExecutionQueue = ExecutionQueue()
    failures: dict[str, FailureStreak] = {}  # by task
    access_keys: dict[str, AccessKey] = {}  # who may call the endpoint, by access key id


class TaskUpdate(_Model):
    """UpdateTask: fields left None stay as they are; Options merge into the task's; an empty
    ScheduleExpression or BandwidthTimetable removes it."""

    TaskArn: str
    Name: str | None = None
    CloudWatchLogGroupArn: str | None = None
    Options: options.Options | None = None
    Includes: list[FilterRule] | None = None
    Excludes: list[FilterRule] | None = None
    Schedule: TaskSchedule | None = None
    BandwidthTimetable: str | None = None
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None


class ExecutionStart(_Model):
    """StartTaskExecution, with the ARN the client chose for the execution."""

    TaskArn: str
    TaskExecutionArn: str
    OverrideOptions: options.Options | None = None
    Includes: list[FilterRule] | None = None
    Excludes: list[FilterRule] | None = None
    Tags: list[TagListEntry] = []
    DryRun: bool = False
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None


class AccessKeyUpdate(_Model):
    AccessKeyId: str
    Status: AccessKeyStatus


class AgentUpdate(_Model):
    AgentArn: str
    Name: str | None = None


class Tagging(_Model):
    """Tags given at creation, TagResource (Tags) or UntagResource (Keys), on an agent, a
    location, a task or a task execution."""

    ResourceArn: str
    Tags: list[TagListEntry] = []
    Keys: list[str] = []
