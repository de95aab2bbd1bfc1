"""DataSync's ManifestConfig: the list of paths an execution transfers, instead of everything."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class S3ManifestConfig(_Model):
    ManifestObjectPath: str = Field(max_length=1024)
    S3BucketArn: str
    BucketAccessRoleArn: str | None = None
    ManifestObjectVersionId: str | None = None


class LocationManifestConfig(_Model):
    """Beyond DataSync: the manifest is a file in any Ferry location."""

    LocationArn: str
    ManifestObjectPath: str = Field(min_length=1, max_length=4096)


class SourceManifestConfig(_Model):
    S3: S3ManifestConfig | None = None
    Location: LocationManifestConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceManifestConfig:
        if (self.S3 is None) == (self.Location is None):
            raise ValueError("give exactly one of S3 and Location")
        return self


class ManifestConfig(_Model):
    Action: Literal["TRANSFER"] = "TRANSFER"
    Format: Literal["CSV"] = "CSV"
    Source: SourceManifestConfig
