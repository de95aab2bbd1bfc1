"""DataSync's TaskReportConfig: what a task report holds and where it goes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.staging import StagingTraffic

ReportLevelValue = Literal["ERRORS_ONLY", "SUCCESSES_AND_ERRORS"]
Category = Literal["Transferred", "Verified", "Deleted", "Skipped"]
CATEGORIES: tuple[Category, ...] = ("Transferred", "Verified", "Deleted", "Skipped")


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class ReportOverride(_Model):
    ReportLevel: ReportLevelValue | None = None


class ReportOverrides(_Model):
    Transferred: ReportOverride | None = None
    Verified: ReportOverride | None = None
    Deleted: ReportOverride | None = None
    Skipped: ReportOverride | None = None


class ReportDestinationS3(_Model):
    S3BucketArn: str
    Subdirectory: str | None = None
    BucketAccessRoleArn: str | None = None


class ReportDestinationLocation(_Model):
    """Beyond DataSync: any Ferry location takes the report, in Subdirectory below its root."""

    LocationArn: str
    Subdirectory: str | None = Field(default=None, max_length=4096)


class ReportDestination(_Model):
    S3: ReportDestinationS3 | None = None
    Location: ReportDestinationLocation | None = None

    @model_validator(mode="after")
    def _one(self) -> ReportDestination:
        if (self.S3 is None) == (self.Location is None):
            raise ValueError("give exactly one of S3 and Location")
        return self


class TaskReportConfig(_Model):
    Destination: ReportDestination
    OutputType: Literal["SUMMARY_ONLY", "STANDARD"] = "SUMMARY_ONLY"
    ReportLevel: ReportLevelValue | None = None
    ObjectVersionIds: Literal["INCLUDE", "NONE"] | None = None
    Overrides: ReportOverrides | None = None

    @property
    def detailed(self) -> bool:
        return self.OutputType == "STANDARD"

    def level(self, category: Category) -> ReportLevelValue:
        """The report level of a category: its override, else ReportLevel, else errors only."""
        override = getattr(self.Overrides, category, None) if self.Overrides else None
        return (override and override.ReportLevel) or self.ReportLevel or "ERRORS_ONLY"


class ReportResult(_Model):
    """DescribeTaskExecution's ReportResult."""

    Status: Literal["PENDING", "SUCCESS", "ERROR"] = "PENDING"
    ErrorCode: str | None = None
    ErrorDetail: str | None = None
    # What writing the report asked of the staging store (not shown: not DataSync's).
    staging_traffic: StagingTraffic | None = None
