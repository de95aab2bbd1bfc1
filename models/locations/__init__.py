"""Locations: each location type declared once, in the module of its family (its model, request
shapes, rules, adapter and what its storage can hold; see base.LocationKind), and gathered here.

Adding a location type is writing its declaration in one of these modules (or a new one listed
below) and its adapter in activities/storage/: the API's operations, the CLI's commands, the
request validation and the way workers open it all follow from KINDS. A type kept outside
Ferry's tree is a module of its own with a `KINDS` tuple, named in FERRY_LOCATION_TYPES
(module names, comma-separated) in the environment of every Ferry process: it is imported here,
once, while KINDS is made.
"""

from __future__ import annotations

import importlib
import os
from typing import Annotated, Union

from pydantic import Field

from models.locations.base import (
    BY_CONDITION,
    BY_LINK,
    BY_RENAME,
    Capabilities,
    FileServerLocation,
    FolderMarkers,
    FsxLocation,
    LocationBase,
    LocationKind,
    aws_file_system,
)
from models.locations.hdfs import HDFS, HdfsLocation, HdfsNameNode, HdfsQop
from models.locations.local import FSX_LUSTRE, LOCAL, FsxLustreLocation, LocalLocation
from models.locations.nfs import (
    EFS,
    FSX_OPENZFS,
    NFS,
    Ec2Settings,
    EfsLocation,
    FsxOpenZfsLocation,
    NfsLocation,
    NfsMountOptions,
    NfsServerLocation,
)
from models.locations.objects import (
    OBJECT_STORAGE,
    S3,
    ObjectLocation,
    ObjectStorageLocation,
    S3AccessConfig,
    S3Location,
)
from models.locations.smb import (
    FSX_WINDOWS,
    SMB,
    FsxWindowsLocation,
    SmbLocation,
    SmbMountOptions,
    SmbServerLocation,
)

# Location types declared outside Ferry's tree: modules, each with its KINDS.
ELSEWHERE = "FERRY_LOCATION_TYPES"


def _declared_elsewhere() -> tuple[LocationKind, ...]:
    names = [name.strip() for name in os.environ.get(ELSEWHERE, "").split(",") if name.strip()]
    return tuple(kind for name in names for kind in importlib.import_module(name).KINDS)


KINDS: tuple[LocationKind, ...] = (
    LOCAL, S3, OBJECT_STORAGE, NFS, SMB, EFS, FSX_WINDOWS, FSX_OPENZFS, FSX_LUSTRE, HDFS,
    *_declared_elsewhere(),
)  # fmt: skip
KIND_OF: dict[str, LocationKind] = {kind.location_type: kind for kind in KINDS}

# Any location, as the registry keeps it: the model its LocationType names.
Location = Annotated[
    Union[tuple(kind.model for kind in KINDS)],  # noqa: UP007 - built from KINDS
    Field(discriminator="LocationType"),
]

__all__ = [
    "BY_CONDITION",
    "BY_LINK",
    "BY_RENAME",
    "ELSEWHERE",
    "KINDS",
    "KIND_OF",
    "Capabilities",
    "Ec2Settings",
    "EfsLocation",
    "FileServerLocation",
    "FolderMarkers",
    "FsxLocation",
    "FsxLustreLocation",
    "FsxOpenZfsLocation",
    "FsxWindowsLocation",
    "HdfsLocation",
    "HdfsNameNode",
    "HdfsQop",
    "LocalLocation",
    "Location",
    "LocationBase",
    "LocationKind",
    "NfsLocation",
    "NfsMountOptions",
    "NfsServerLocation",
    "ObjectLocation",
    "ObjectStorageLocation",
    "S3AccessConfig",
    "S3Location",
    "SmbLocation",
    "SmbMountOptions",
    "SmbServerLocation",
    "aws_file_system",
]
