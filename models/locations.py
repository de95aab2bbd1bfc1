"""Locations as Ferry stores them. One model per location type; `Location` is their union."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FolderMarkers = Literal["ENABLED", "DISABLED"]


class LocationBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    LocationArn: str
    CreationTime: datetime
    # The agents that reach this storage; none: the ordinary workers reach it. (A tuple: a
    # location is hashable.)
    AgentArns: tuple[str, ...] = ()

    @property
    def location_uri(self) -> str:
        raise NotImplementedError

    @property
    def tree(self) -> tuple[str, str]:
        """Where the files are: a namespace (one host's file system, one bucket) and a path in
        it ending in '/'. Two locations with one namespace and paths that start one another
        are nested."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The Describe* response; never contains a secret."""
        response: dict[str, Any] = {
            "LocationArn": self.LocationArn,
            "LocationUri": self.location_uri,
            "CreationTime": self.CreationTime,
        }
        if self.AgentArns:
            response["AgentArns"] = list(self.AgentArns)
        return response


class LocalLocation(LocationBase):
    """Beyond DataSync: a directory that the worker sees in its own file system."""

    LocationType: Literal["LOCAL"] = "LOCAL"
    Path: str

    @property
    def location_uri(self) -> str:
        return "local://" + self.Path.rstrip("/") + "/"

    @property
    def tree(self) -> tuple[str, str]:
        # Folders seen by different agents, or by agents and the workers, are on other hosts.
        return "local:" + ",".join(sorted(self.AgentArns)), self.Path.rstrip("/") + "/"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "Path": self.Path}


def _folder(subdirectory: str) -> str:
    inside = subdirectory.strip("/")
    return "/" + inside + "/" if inside else "/"


def _prefix_uri(scheme: str, host_and_bucket: str, subdirectory: str) -> str:
    return f"{scheme}://{host_and_bucket}" + _folder(subdirectory)


class S3AccessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Assumed through STS when set; else the worker's own AWS credential chain is used.
    BucketAccessRoleArn: str | None = None


class S3Location(LocationBase):
    LocationType: Literal["S3"] = "S3"
    S3BucketArn: str
    Subdirectory: str = ""
    S3StorageClass: str = "STANDARD"
    S3Config: S3AccessConfig = S3AccessConfig()
    # Beyond DataSync, for S3-compatible services: the AWS SDK's `endpoint_url`. Without it the
    # SDK's own settings apply (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the config file).
    EndpointUrl: str | None = None
    # Beyond DataSync: folders as empty "name/" objects with their metadata (DataSync's way), or
    # only as key prefixes, for servers that map keys onto files (`rclone serve s3`).
    FolderMarkers: FolderMarkers = "ENABLED"

    @property
    def bucket(self) -> str:
        return self.S3BucketArn.rpartition(":")[2].rpartition("/")[2]

    @property
    def location_uri(self) -> str:
        return _prefix_uri("s3", self.bucket, self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        return f"s3:{self.EndpointUrl or ''}/{self.bucket}", _folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = {**super().describe(), "S3StorageClass": self.S3StorageClass}
        if self.S3Config.BucketAccessRoleArn:
            response["S3Config"] = {"BucketAccessRoleArn": self.S3Config.BucketAccessRoleArn}
        if self.EndpointUrl:
            response["EndpointUrl"] = self.EndpointUrl
        response["FolderMarkers"] = self.FolderMarkers
        return response


class ObjectStorageLocation(LocationBase):
    """Self-managed object storage that speaks the S3 API."""

    LocationType: Literal["OBJECT_STORAGE"] = "OBJECT_STORAGE"
    ServerHostname: str
    ServerPort: int
    ServerProtocol: Literal["HTTP", "HTTPS"] = "HTTPS"
    BucketName: str
    Subdirectory: str = ""
    AccessKey: str | None = None
    SecretKey: str | None = None  # sealed (activities.secrets): never in plain text, never shown
    ServerCertificate: str | None = None  # PEM: the chain of a private certificate authority
    FolderMarkers: FolderMarkers = "ENABLED"  # as for S3

    @property
    def endpoint_url(self) -> str:
        return f"{self.ServerProtocol.lower()}://{self.ServerHostname}:{self.ServerPort}"

    @property
    def location_uri(self) -> str:
        return _prefix_uri(
            "object-storage", f"{self.ServerHostname}/{self.BucketName}", self.Subdirectory
        )

    @property
    def tree(self) -> tuple[str, str]:
        return f"s3:{self.endpoint_url}/{self.BucketName}", _folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = {
            **super().describe(),
            "ServerPort": self.ServerPort,
            "ServerProtocol": self.ServerProtocol,
        }
        if self.AccessKey is not None:
            response["AccessKey"] = self.AccessKey
        if self.ServerCertificate is not None:
            response["ServerCertificate"] = self.ServerCertificate
        response["FolderMarkers"] = self.FolderMarkers
        return response


Location = Annotated[
    LocalLocation | S3Location | ObjectStorageLocation, Field(discriminator="LocationType")
]
ObjectLocation = S3Location | ObjectStorageLocation
