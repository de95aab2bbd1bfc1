"""Folders the agent sees in its own file system: `local` (beyond DataSync) and FSx for
Lustre, which the agent's host mounts with the Lustre client."""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from models.errors import InvalidRequestException
from models.locations.base import (
    Capabilities,
    Fields,
    FsxFilesystemArnValue,
    FsxLocation,
    LocationBase,
    LocationKind,
    SecurityGroupArnsValue,
    SmbSubdirectoryValue,
    folder,
    prefix_uri,
)
from models.requests import (
    AgentArnList,
    LocationArnValue,
    Request,
    TagList,
)


class LocalLocation(LocationBase):
    """Beyond DataSync: a directory that the worker sees in its own file system."""

    # A file costs little more than its bytes: a batch copies one at a time, CPU-bound.
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(files_in_flight=1)
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


class FsxLustreLocation(FsxLocation):
    """Lustre has no protocol a process speaks by itself: the agent's host mounts the file system
    with the Lustre client at MountPath (beyond DataSync; /fsx, as AWS's guides mount it), and
    Ferry works beneath it as on a local directory."""

    LocationType: Literal["FSX_LUSTRE"] = "FSX_LUSTRE"
    Subdirectory: str = "/"
    MountPath: str = "/fsx"

    @property
    def path(self) -> str:
        return (self.MountPath.rstrip("/") + folder(self.Subdirectory)).rstrip("/") or "/"

    @property
    def location_uri(self) -> str:
        return prefix_uri("fsxl", self.fsx_uri_host, self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        return f"fsxl:{self.FsxFilesystemArn}", folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "MountPath": self.MountPath}


class CreateLocationLocalRequest(Request):
    Path: Annotated[str, Field(min_length=1, max_length=4096)]
    # Beyond DataSync's local-less model: the agents that see Path; none, the ordinary workers.
    AgentArns: AgentArnList | None = None
    Tags: TagList = []


def _beneath(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError("a path with '..' would leave the file system's mount: remove it")
    return path


LustreSubdirectoryValue = Annotated[SmbSubdirectoryValue, AfterValidator(_beneath)]


class CreateLocationFsxLustreRequest(Request):
    FsxFilesystemArn: FsxFilesystemArnValue
    SecurityGroupArns: SecurityGroupArnsValue | None = None
    Subdirectory: LustreSubdirectoryValue = "/"
    AgentArns: AgentArnList | None = None
    # Beyond DataSync: where the agent's host has the file system mounted by the Lustre client.
    MountPath: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")] = "/fsx"
    Tags: TagList = []


class UpdateLocationFsxLustreRequest(Request):
    LocationArn: LocationArnValue
    Subdirectory: LustreSubdirectoryValue | None = None
    MountPath: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")] | None = None


def _absolute(fields: Fields, updating: bool) -> Fields:
    path = fields.get("Path")
    if path is not None:
        if not path.startswith("/"):
            raise InvalidRequestException(f"Path: {path!r} must be an absolute path.")
        fields["Path"] = os.path.normpath(path)
    return fields


LOCAL = LocationKind(
    name="Local",
    title="a local",
    model=LocalLocation,
    create=CreateLocationLocalRequest,
    prepare=_absolute,
)
FSX_LUSTRE = LocationKind(
    name="FsxLustre",
    title="an FSx for Lustre",
    model=FsxLustreLocation,
    create=CreateLocationFsxLustreRequest,
    update=UpdateLocationFsxLustreRequest,
)
