"""A task execution: what the workflow is given, what it keeps, what the activities report, and
how it reads as DataSync's DescribeTaskExecution."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from models import manifests, reports
from models.arn import execution_id
from models.filters import FilterRule
from models.locations import Location
from models.options import Options
from models.staging import StagingTraffic

Status = Literal[
    "QUEUED",
    "LAUNCHING",
    "PREPARING",
    "TRANSFERRING",
    "VERIFYING",
    "CANCELLING",
    "SUCCESS",
    "ERROR",
]
PhaseStatus = Literal["PENDING", "SUCCESS", "ERROR"]
TERMINAL: frozenset[str] = frozenset({"SUCCESS", "ERROR"})

# Steps of TRANSFERRING, in the order they run. Each is a series of batches in the staging store.
Step = Literal["removals", "files", "links", "deletes", "directories", "verify"]
TRANSFER_STEPS: tuple[Step, ...] = ("removals", "files", "links", "deletes", "directories")

# How many file issues travel back to the workflow per batch; the rest are counted and logged.
ISSUES_PER_BATCH = 20


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")


class ExecutionInput(_Model):
    """Everything an execution needs, frozen when it starts (later task edits don't apply)."""

    TaskExecutionArn: str
    TaskArn: str
    Source: Location
    Destination: Location
    Options: Options  # resolved: every field set
    Includes: list[FilterRule] = []
    Excludes: list[FilterRule] = []
    StartTime: datetime
    # The agents its activities run on (the source location's, else the destination's; none:
    # the ordinary workers).
    AgentArns: list[str] = []
    BandwidthTimetable: str | None = None  # the task's; sets BytesPerSecond as the clock turns
    DryRun: bool = False  # beyond DataSync: LAUNCHING and PREPARING only, nothing written
    TaskReportConfig: reports.TaskReportConfig | None = None
    ReportLocation: Location | None = None  # where the report goes (Destination.Location)
    ManifestConfig: manifests.ManifestConfig | None = None
    ManifestLocation: Location | None = None  # where the manifest is (Source.Location)
    queued: bool = False
    max_parallel_batches: int = 8

    @property
    def execution_id(self) -> str:
        return execution_id(self.TaskExecutionArn)

    @property
    def agent_location_arn(self) -> str:
        """The location whose agents run the execution (the source's, else the destination's)."""
        return (self.Source if self.Source.AgentArns else self.Destination).LocationArn

    @property
    def detailed_report(self) -> bool:
        """A STANDARD task report: every path's fate is kept for it."""
        return self.TaskReportConfig is not None and self.TaskReportConfig.detailed


class FileIssue(_Model):
    """One path that could not be transferred, deleted or verified, and why."""

    path: str
    kind: str  # read, write, metadata, delete, checksum, added, removed, vanished
    detail: str

    def __str__(self) -> str:
        return f"/{self.path} ({self.kind}: {self.detail})"


class Counters(_Model):
    """Counts as DescribeTaskExecution reports them; directories count as files (Basic mode)."""

    FilesTransferred: int = 0
    BytesWritten: int = 0
    BytesTransferred: int = 0
    FilesDeleted: int = 0
    FilesSkipped: int = 0
    FilesVerified: int = 0
    FilesFailed: int = 0
    VerifyFailed: int = 0

    def add(self, other: Counters) -> None:
        for name in Counters.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def plus(self, other: Counters) -> Counters:
        total = self.model_copy()
        total.add(other)
        return total

    def named(self) -> dict[str, int]:
        """By the names telemetry gives them: files_transferred, bytes_written, ..."""
        return {
            re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(): getattr(self, name)
            for name in Counters.model_fields
        }


def metric_attributes(
    execution_arn: str, source: Location, destination: Location
) -> dict[str, str]:
    """What an execution's metrics are told apart by, wherever they are recorded."""
    return {
        "task_execution_arn": execution_arn,
        "source_location_type": source.LocationType,
        "destination_location_type": destination.LocationType,
    }


class BatchRef(_Model):
    """A batch of one step of one execution's plan in the staging store."""

    execution_arn: str
    step: Step
    index: int
    source: Location
    destination: Location
    options: Options
    # This batch's share of the execution's bandwidth limit when it starts (-1: none); the
    # batch asks the execution for its share again every second while it runs.
    bytes_per_second: int = -1
    report: bool = False  # keep a row per path for a STANDARD task report
    # The staging store the batch was written to, as its writer named it, and that its object
    # ends with its row count (empty: a plan from before batches said so).
    staging_url: str = ""

    @property
    def execution_id(self) -> str:
        return execution_id(self.execution_arn)


class BatchResult(_Model):
    counters: Counters = Counters()
    issues: list[FileIssue] = []
    staging_traffic: StagingTraffic = StagingTraffic()


class PlanSummary(_Model):
    """What PREPARING found; the lists themselves stay in the staging store."""

    batches: dict[str, int]  # step -> number of batches
    EstimatedFilesToTransfer: int = 0
    EstimatedBytesToTransfer: int = 0
    EstimatedFilesToDelete: int = 0
    FilesSkipped: int = 0
    source_entries: int = 0
    destination_entries: int = 0
    issues: list[FileIssue] = []
    issue_count: int = 0
    staging_url: str = ""  # the store the plan is in (empty: a plan from before it said so)
    staging_traffic: StagingTraffic = StagingTraffic()


class VerifyPlan(_Model):
    batches: int
    counters: Counters = Counters()
    issues: list[FileIssue] = []
    staging_url: str = ""
    staging_traffic: StagingTraffic = StagingTraffic()


class AgentsOnline(_Model):
    """LAUNCHING's wait for agents: those ONLINE, and how long an execution waits for one
    (FERRY_AGENT_WAIT_SECONDS on the worker that waited), which bounds its waits later on."""

    online: list[str]
    wait_seconds: float


class ExecutionState(_Model):
    """What an execution carries across continue-as-new."""

    Status: Status = "QUEUED"
    LaunchTime: datetime | None = None
    EndTime: datetime | None = None
    PrepareStatus: PhaseStatus = "PENDING"
    TransferStatus: PhaseStatus = "PENDING"
    VerifyStatus: PhaseStatus = "PENDING"
    PrepareDuration: int = 0
    TransferDuration: int = 0
    VerifyDuration: int = 0
    phase_started: datetime | None = None
    ErrorCode: str | None = None
    ErrorDetail: str | None = None
    counters: Counters = Counters()
    plan: PlanSummary | None = None
    plan_progress: PlanSummary | None = None  # the plan so far, while PREPARING goes on
    transfer_started: datetime | None = None  # TRANSFERRING may begin before PREPARING ends
    early: dict[str, int] = {}  # batches per transfer stage run while PREPARING
    verify_plan: VerifyPlan | None = None
    BytesPerSecond: int | None = None  # the limit in force; None until the execution starts
    agents_online: list[str] = []  # of the execution's agents, those its activities run on
    agent_wait_seconds: float | None = None  # as LAUNCHING's wait said (None: 600)
    step: str | None = None  # the stage running, such as "transfer:files"
    next_batch: int = 0
    transfer_issues: list[FileIssue] = []
    verify_issues: list[FileIssue] = []
    report: reports.ReportResult | None = None
    trace: dict[str, str] = {}  # the root span's context (W3C traceparent), for later runs
    staging_traffic: StagingTraffic = StagingTraffic()  # of the activities that have ended


def describe(
    execution: ExecutionInput, state: ExecutionState, in_flight: Counters | None = None
) -> dict[str, Any]:
    """The DescribeTaskExecution response for an execution in `state`."""
    counters = state.counters.plus(in_flight) if in_flight else state.counters
    plan = state.plan or state.plan_progress
    end = state.EndTime
    result: dict[str, Any] = {
        "PrepareDuration": state.PrepareDuration,
        "PrepareStatus": state.PrepareStatus,
        "TotalDuration": _ms(state.LaunchTime or execution.StartTime, end) if end else 0,
        "TransferDuration": state.TransferDuration,
        "TransferStatus": state.TransferStatus,
        "VerifyDuration": state.VerifyDuration,
        "VerifyStatus": state.VerifyStatus,
    }
    if state.ErrorCode:
        result["ErrorCode"] = state.ErrorCode
        result["ErrorDetail"] = state.ErrorDetail or ""
    response: dict[str, Any] = {
        "TaskExecutionArn": execution.TaskExecutionArn,
        "Status": state.Status,
        "Options": execution.Options.given(),
        "Excludes": [rule.model_dump() for rule in execution.Excludes],
        "Includes": [rule.model_dump() for rule in execution.Includes],
        "StartTime": execution.StartTime,
        "EstimatedFilesToTransfer": plan.EstimatedFilesToTransfer if plan else 0,
        "EstimatedBytesToTransfer": plan.EstimatedBytesToTransfer if plan else 0,
        "EstimatedFilesToDelete": plan.EstimatedFilesToDelete if plan else 0,
        "FilesTransferred": counters.FilesTransferred,
        "BytesWritten": counters.BytesWritten,
        "BytesTransferred": counters.BytesTransferred,
        "BytesCompressed": counters.BytesTransferred,
        "FilesDeleted": counters.FilesDeleted,
        "FilesSkipped": counters.FilesSkipped,
        "FilesVerified": counters.FilesVerified,
        "Result": result,
        "TaskMode": "BASIC",
        "StagingTraffic": state.staging_traffic.describe(),  # beyond DataSync
    }
    if execution.DryRun:
        response["DryRun"] = True
    if execution.ManifestConfig is not None:
        response["ManifestConfig"] = execution.ManifestConfig.model_dump(exclude_none=True)
    if execution.TaskReportConfig is not None:
        response["TaskReportConfig"] = execution.TaskReportConfig.model_dump(exclude_none=True)
        response["ReportResult"] = (state.report or reports.ReportResult()).model_dump(
            exclude_none=True, exclude={"staging_traffic"}
        )
    if state.LaunchTime:
        response["LaunchTime"] = state.LaunchTime
    if end:
        response["EndTime"] = end
    return response


def _ms(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))
