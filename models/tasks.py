"""Tasks as Ferry stores them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from models import manifests, reports, schedules
from models.filters import FilterRule
from models.options import Options


class Task(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    TaskArn: str
    Name: str | None = None
    SourceLocationArn: str
    DestinationLocationArn: str
    Options: Options  # every field set: defaults merged in at creation
    Includes: list[FilterRule] = []
    Excludes: list[FilterRule] = []
    CreationTime: datetime
    CloudWatchLogGroupArn: str | None = None
    Schedule: schedules.TaskSchedule | None = None  # a Temporal Schedule with the task's id
    ScheduleDetails: schedules.ScheduleDetails | None = None
    # Beyond DataSync: BytesPerSecond by time of day and weekday (models/timetable.py).
    BandwidthTimetable: str | None = None
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None

    def describe(self, current_execution_arn: str | None, status: str) -> dict[str, Any]:
        """`status`: AVAILABLE, QUEUED or RUNNING, as its executions stand."""
        response: dict[str, Any] = {
            "TaskArn": self.TaskArn,
            "Status": status,
            "SourceLocationArn": self.SourceLocationArn,
            "DestinationLocationArn": self.DestinationLocationArn,
            "Options": self.Options.given(),
            "Excludes": [rule.model_dump() for rule in self.Excludes],
            "Includes": [rule.model_dump() for rule in self.Includes],
            "CreationTime": self.CreationTime,
            "TaskMode": "BASIC",
        }
        if self.Name is not None:
            response["Name"] = self.Name
        if self.CloudWatchLogGroupArn is not None:
            response["CloudWatchLogGroupArn"] = self.CloudWatchLogGroupArn
        if self.Schedule is not None:
            response["Schedule"] = self.Schedule.model_dump(exclude_none=True)
        if self.ScheduleDetails is not None:
            response["ScheduleDetails"] = self.ScheduleDetails.model_dump(exclude_none=True)
        if self.ManifestConfig is not None:
            response["ManifestConfig"] = self.ManifestConfig.model_dump(exclude_none=True)
        if self.TaskReportConfig is not None:
            response["TaskReportConfig"] = self.TaskReportConfig.model_dump(exclude_none=True)
        if self.BandwidthTimetable is not None:
            response["BandwidthTimetable"] = self.BandwidthTimetable
        if current_execution_arn:
            response["CurrentTaskExecutionArn"] = current_execution_arn
        return response
