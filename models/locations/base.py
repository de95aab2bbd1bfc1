"""What every location type has, and how a type is declared: its model, its request
shapes, the rules its fields follow, the adapter a worker opens it with, and what that
storage can hold."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.errors import InvalidRequestException
from models.requests import (
    PARTITIONS,
    Request,
)

FolderMarkers = Literal["ENABLED", "DISABLED"]
Fields = dict[str, Any]

# Characters no name may hold anywhere: the path separator and NUL.
_ALWAYS_REFUSED = "/\0"

# How an entry written under a temporary name takes its final name without replacing what is
# there (Capabilities.exclusive_commit; activities.storage.base.place does the first two):
BY_LINK = "link"  # a hard link, which never replaces, then the temporary name removed
BY_RENAME = "rename"  # a rename the server is told never to let replace anything
BY_CONDITION = "condition"  # the write itself, which the server refuses where a name is taken


@dataclass(frozen=True)
class Capabilities:
    """What a storage can hold, as its location type declares it (the way an rclone backend
    declares its features): the metadata policy writes and compares only what it keeps, and
    PREPARING skips, naming each, the entries it cannot hold."""

    time_resolution_ns: int = 1  # mtimes closer than this are the same
    access_times: bool = True  # an atime of its own, beside the mtime
    posix_owners: bool = True  # numeric uid and gid
    owner_names: bool = False  # owner and group names (HDFS's; object storage's user metadata)
    names_only: bool = False  # owners are names, never numbers (HDFS)
    posix_modes: bool = True
    mode_bits: int = 0o7777  # the permission bits kept
    link_times: bool = True  # a symbolic link's own mtime (NFS servers may ignore it)
    symlinks: bool = True
    hard_links: bool = True  # else each further name is a copy
    server_side_copy: bool = False  # a copy the server makes, without the bytes passing by
    # A folder removed with everything in it by the server (as an rclone backend declares
    # Purge); elsewhere it is emptied entry by entry above the adapter (base.remove_tree).
    recursive_delete: bool = False
    exclusive_commit: str = BY_LINK  # how OverwriteMode NEVER keeps what is there: BY_*
    devices: bool = True  # block and character devices, named pipes
    empty_folders: bool = True
    folder_metadata: bool = True
    windows_metadata: bool = False  # SMB's attributes and security descriptors
    object_tags: bool = False  # an object's tags (object storage)
    # What is written can be read back at once (not an S3 Glacier Flexible Retrieval or Deep
    # Archive object, which must be restored first).
    reads_back: bool = True
    files_in_flight: int = 8  # files a batch works on at once (1: local disks, CPU-bound)
    refused_characters: str = ""  # characters no name may hold there, beyond "/" and NUL
    refused_endings: str = ""  # characters no name may end with there
    case_sensitive: bool = True  # else "A" and "a" are one name (SMB, as Windows has it)
    max_name_bytes: int = 255
    max_path_bytes: int = 4096  # a path beneath the location root, in bytes
    # The most names a path beneath the location root may have for one request of the
    # protocol to reach it (0: no limit): an NFSv4.1 session caps a request's operations.
    max_path_components: int = 0
    deeper: str = ""  # what reaches deeper paths, told where one is skipped

    def refuses(self, name: str) -> str | None:
        """Why no entry there can be called `name` (None: it can)."""
        if len(name.encode(errors="surrogateescape")) > self.max_name_bytes:
            return f"a name longer than {self.max_name_bytes} bytes"
        bad = sorted({c for c in name if c in self.refused_characters or c in _ALWAYS_REFUSED})
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            return f"a name with {shown}"
        if name in (".", "..") or (name and name[-1] in self.refused_endings):
            return f"a name ending in {name[-1]!r}"
        return None

    def unreachable(self, path: str) -> str | None:
        """Why no request can reach the entry at `path` there (None: one can)."""
        names = path.count("/") + 1 if path else 0
        if self.max_path_components and names > self.max_path_components:
            return (
                f"a path of {names} names: one request reaches at most "
                f"{self.max_path_components} below this location" + self.deeper
            )
        return None


@dataclass(frozen=True)
class LocationKind:
    """One location type, declared once: the operations' name (CreateLocation<name>,
    DescribeLocation<name>, UpdateLocation<name>), the model it is kept as, its request shapes,
    the rules its fields follow, and the adapter a worker opens it with (the module whose
    `open_location` does, one of activities.storage for Ferry's own types). What the storage
    can hold is the model's `capabilities`."""

    name: str
    title: str  # what a location of this type is, in a sentence: "an SMB"
    model: type[LocationBase]
    create: type[Request]
    update: type[Request] | None = None  # None: it cannot be updated
    adapter: str = "activities.storage.local"
    secrets: tuple[str, ...] = ()  # fields sealed before they reach Temporal, never shown
    # A request's fields as the model takes them (renamed, derived, defaulted); `updating`: an
    # update's changes, merged with the location's fields after.
    prepare: Callable[[Fields, bool], Fields] = lambda fields, updating: fields
    # The rules a location's fields follow together (on create, and after an update).
    check: Callable[[Fields, bool], None] = lambda fields, updating: None

    @property
    def location_type(self) -> str:
        return str(self.model.model_fields["LocationType"].default)


class LocationBase(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    CAPABILITIES: ClassVar[Capabilities] = Capabilities()

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

    @property
    def capabilities(self) -> Capabilities:
        """What this location's storage can hold (its type's, unless its settings change it)."""
        return self.CAPABILITIES

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


def folder(subdirectory: str) -> str:
    inside = subdirectory.strip("/")
    return "/" + inside + "/" if inside else "/"


def prefix_uri(scheme: str, host_and_bucket: str, subdirectory: str) -> str:
    return f"{scheme}://{host_and_bucket}" + folder(subdirectory)


def aws_file_system(arn: str) -> tuple[str, str]:
    """The region and id of an EFS or FSx file system ARN."""
    return arn.split(":")[3], arn.rpartition("/")[2]


class FileServerLocation(LocationBase):
    """A file system that the agent reaches over the network, by NFS or SMB.

    ServerPort is beyond DataSync (which assumes 2049 and 445), for servers on other ports. For
    the AWS file systems, ServerHostname is the DNS name AWS gives the file system, derived from
    its ARN unless it was given (for a mount target's address, or another server).
    """

    ServerHostname: str
    ServerPort: int
    Subdirectory: str

    @property
    def tree(self) -> tuple[str, str]:
        # By protocol, not location type: an EFS location may name the server an NFS one does.
        server = f"{self.protocol}:{self.ServerHostname}:{self.ServerPort}"
        return server, folder(self.Subdirectory)

    @property
    def protocol(self) -> str:
        raise NotImplementedError

    @property
    def scheme(self) -> str:
        raise NotImplementedError

    @property
    def uri_host(self) -> str:
        return self.ServerHostname

    @property
    def location_uri(self) -> str:
        return prefix_uri(self.scheme, self.uri_host, self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = super().describe()
        response["ServerHostname"] = self.ServerHostname
        response["ServerPort"] = self.ServerPort
        return response


class FsxLocation(LocationBase):
    """What every FSx location has: the file system and the security groups DataSync would use."""

    FsxFilesystemArn: str
    SecurityGroupArns: tuple[str, ...] = ()

    @property
    def fsx_uri_host(self) -> str:
        return ".".join(aws_file_system(self.FsxFilesystemArn))

    def describe(self) -> dict[str, Any]:
        response = super().describe()
        if self.SecurityGroupArns:
            response["SecurityGroupArns"] = list(self.SecurityGroupArns)
        return response


FileServerHostnameValue = Annotated[
    str,
    Field(
        max_length=255,
        pattern=r"^(([a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9\-:]*[A-Za-z0-9])$",
    ),
]


ServerPortValue = Annotated[int, Field(ge=1, le=65535)]


SmbSubdirectoryValue = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\)\$ ]+$")
]


FsxFilesystemArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{PARTITIONS}:fsx:[a-z\-0-9]+:[0-9]{{12}}:file-system/fs-[0-9a-f]+$",
    ),
]


SecurityGroupArnsValue = Annotated[
    list[
        Annotated[
            str,
            Field(
                max_length=128,
                pattern=rf"^arn:{PARTITIONS}:ec2:[a-z\-0-9]*:[0-9]{{12}}:"
                r"security-group/sg-[a-f0-9]+$",
            ),
        ]
    ],
    Field(min_length=1, max_length=5),
]


KerberosPrincipalValue = Annotated[str, Field(min_length=1, max_length=256)]


def check_base64(text: str) -> str:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(
            "give the file's bytes in base64 (on the command line: base64 -w0 FILE)"
        ) from None
    return text


KeytabValue = Annotated[str, Field(max_length=87384), AfterValidator(check_base64)]


Krb5ConfValue = Annotated[str, Field(max_length=174764), AfterValidator(check_base64)]


def check_authentication(
    fields: Fields, needs: dict[str, tuple[str, ...]], *, updating: bool = False
) -> None:
    """DataSync's rule: each AuthenticationType has fields it cannot go without."""
    kind = fields.get("AuthenticationType", next(iter(needs)))
    needed = needs[kind]
    missing = [field for field in needed if not fields.get(field)]
    if missing:
        listed = f"{', '.join(needed[:-1])} and {needed[-1]}" if len(needed) > 1 else needed[0]
        raise InvalidRequestException(
            f"AuthenticationType {kind} requires {listed}: give "
            f"{', '.join(missing)}" + (" (or change AuthenticationType)." if updating else ".")
        )


def fsx_hostname(arn: str) -> str:
    """The DNS name AWS gives an FSx file system (Lustre and OpenZFS; a Windows file system's
    is in its Active Directory domain, so give ServerHostname for it)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.fsx.{region}.amazonaws.com"
