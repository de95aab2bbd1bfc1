"""The registry's state and the requests it takes: every location and task, and which
execution of each task runs or waits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from models import options
from models.filters import FilterRule
from models.locations import Location
from models.tags import TagListEntry
from models.tasks import Task

# The registry's state travels as one payload when it continues as new (2 MB at most).
MAX_RESOURCES = 2000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskQueue(_Model):
    """Executions of one task: at most one runs; the others wait, in the order they started."""

    running: str | None = None
    waiting: list[str] = []


class RegistryState(_Model):
    locations: dict[str, Location] = {}
    tasks: dict[str, Task] = {}
    # Kept apart from the resources, which travel in every execution's input.
    tags: dict[str, list[TagListEntry]] = {}
    queues: dict[str, TaskQueue] = {}


class TaskUpdate(_Model):
    """UpdateTask: fields left None stay as they are; Options merge into the task's."""

    TaskArn: str
    Name: str | None = None
    CloudWatchLogGroupArn: str | None = None
    Options: options.Options | None = None
    Includes: list[FilterRule] | None = None
    Excludes: list[FilterRule] | None = None


class ExecutionStart(_Model):
    """StartTaskExecution, with the ARN the client chose for the execution."""

    TaskArn: str
    TaskExecutionArn: str
    OverrideOptions: options.Options | None = None
    Includes: list[FilterRule] | None = None
    Excludes: list[FilterRule] | None = None
    Tags: list[TagListEntry] = []


class Tagging(_Model):
    """Tags given at creation, TagResource (Tags) or UntagResource (Keys), on a location or a
    task."""

    ResourceArn: str
    Tags: list[TagListEntry] = []
    Keys: list[str] = []
