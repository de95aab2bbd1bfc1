"""Tasks as Ferry stores them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from models.filters import FilterRule
from models.options import Options


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    TaskArn: str
    Name: str | None = None
    SourceLocationArn: str
    DestinationLocationArn: str
    Options: Options  # every field set: defaults merged in at creation
    Includes: list[FilterRule] = []
    Excludes: list[FilterRule] = []
    CreationTime: datetime
    CloudWatchLogGroupArn: str | None = None

    def describe(self, current_execution_arn: str | None) -> dict[str, Any]:
        response: dict[str, Any] = {
            "TaskArn": self.TaskArn,
            "Status": "RUNNING" if current_execution_arn else "AVAILABLE",
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
        if current_execution_arn:
            response["CurrentTaskExecutionArn"] = current_execution_arn
        return response
