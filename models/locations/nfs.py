"""File systems reached by NFS: an NFS server, Amazon EFS and FSx for OpenZFS."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.errors import InvalidRequestException
from models.locations.base import (
    Capabilities,
    Fields,
    FileServerHostnameValue,
    FileServerLocation,
    FsxFilesystemArnValue,
    FsxLocation,
    LocationKind,
    SecurityGroupArnsValue,
    ServerPortValue,
    aws_file_system,
    fsx_hostname,
)
from models.requests import (
    PARTITIONS,
    AgentArnList,
    LocationArnValue,
    Request,
    TagList,
)

NfsVersion = Literal["AUTOMATIC", "NFS3", "NFS4_0", "NFS4_1", "NFS4_2"]


class NfsMountOptions(Request):  # kept as the request gives it
    Version: NfsVersion = "AUTOMATIC"


# The names of a path, from the server's root, that one NFSv4.1 request reaches. A session
# caps the operations of a request at what CREATE_SESSION negotiated (nfs-ganesha: 16, the
# fewest of the servers known), and nfs-rs looks the whole path up in the request that uses
# it, a LOOKUP a name, beside four operations of its own. nfs-rs does not say what a session
# negotiated (its Client has `io_limits`, the read and write sizes, but no channel attributes:
# CREATE_SESSION's ca_maxoperations is not exposed), nor takes a file handle but for listing,
# so no request can go deeper, and the fewest is assumed. NFSv4.0 has no sessions, no cap.
NFS4_1_PATH_NAMES = 12


class NfsServerLocation(FileServerLocation):
    """Reached by NFS: Subdirectory is the export path and what lies beneath it."""

    # Servers differ on a SETATTR of a symbolic link's times (nfs-ganesha's VFS back end ignores
    # it): they are set but never compared. nfs-rs has no MKNOD: no devices.
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(link_times=False, devices=False)

    ServerPort: int = 2049
    MountOptions: NfsMountOptions = NfsMountOptions()

    @property
    def protocol(self) -> str:
        return "nfs"

    @property
    def capabilities(self) -> Capabilities:
        """With NFSv4.1 alone, paths only as deep as one request reaches, the export path's
        names (looked up in every request) counted (AUTOMATIC goes deeper by NFSv4.0)."""
        if self.MountOptions.Version not in ("NFS4_1", "NFS4_2"):
            return self.CAPABILITIES
        export = len([name for name in self.Subdirectory.split("/") if name])
        return replace(
            self.CAPABILITIES,
            max_path_components=max(1, NFS4_1_PATH_NAMES - export),
            deeper=" with NFSv4.1 (MountOptions Version AUTOMATIC reaches it by NFSv4.0)",
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "MountOptions": self.MountOptions.model_dump()}


class NfsLocation(NfsServerLocation):
    LocationType: Literal["NFS"] = "NFS"

    @property
    def scheme(self) -> str:
        return "nfs"

    def describe(self) -> dict[str, Any]:
        response = super().describe()
        if agents := response.pop("AgentArns", None):
            response["OnPremConfig"] = {"AgentArns": agents}
        return response


class Ec2Settings(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    SubnetArn: str
    SecurityGroupArns: tuple[str, ...]


class EfsLocation(NfsServerLocation):
    """Amazon EFS over NFS 4.1 (by default); the EC2 and IAM settings are kept and shown."""

    LocationType: Literal["EFS"] = "EFS"
    EfsFilesystemArn: str
    AccessPointArn: str | None = None
    FileSystemAccessRoleArn: str | None = None
    InTransitEncryption: Literal["NONE", "TLS1_2"] = "NONE"
    Ec2Config: Ec2Settings | None = None

    @property
    def scheme(self) -> str:
        return "efs"

    @property
    def uri_host(self) -> str:
        return ".".join(aws_file_system(self.EfsFilesystemArn))

    def describe(self) -> dict[str, Any]:
        response = {**super().describe(), "InTransitEncryption": self.InTransitEncryption}
        if self.Ec2Config:
            response["Ec2Config"] = self.Ec2Config.model_dump()
        for field in ("AccessPointArn", "FileSystemAccessRoleArn"):
            if getattr(self, field):
                response[field] = getattr(self, field)
        return response


class FsxOpenZfsLocation(NfsServerLocation, FsxLocation):
    LocationType: Literal["FSX_OPENZFS"] = "FSX_OPENZFS"

    @property
    def scheme(self) -> str:
        return "fsxz"

    @property
    def uri_host(self) -> str:
        return self.fsx_uri_host

    def describe(self) -> dict[str, Any]:
        response = super().describe()
        response["Protocol"] = {"NFS": {"MountOptions": response.pop("MountOptions")}}
        return response


NfsSubdirectoryValue = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\) ]+$")
]


EfsSubdirectoryValue = Annotated[
    str, Field(max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\) ]*$")
]


EfsFilesystemArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{PARTITIONS}:elasticfilesystem:[a-z\-0-9]+:[0-9]{{12}}:"
        r"file-system/fs-[0-9a-f]{8,40}$",
    ),
]


EfsAccessPointArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{PARTITIONS}:elasticfilesystem:[a-z\-0-9]+:[0-9]{{12}}:"
        r"access-point/fsap-[0-9a-f]{8,40}$",
    ),
]


IamRoleArnValue = Annotated[
    str, Field(max_length=2048, pattern=rf"^arn:{PARTITIONS}:iam::[0-9]{{12}}:role/.*$")
]


class OnPremConfigShape(Request):
    AgentArns: AgentArnList


class Ec2ConfigShape(Request):
    SubnetArn: Annotated[
        str,
        Field(
            max_length=128,
            pattern=rf"^arn:{PARTITIONS}:ec2:[a-z\-0-9]*:[0-9]{{12}}:subnet/subnet-[a-f0-9]+$",
        ),
    ]
    SecurityGroupArns: SecurityGroupArnsValue


class CreateLocationNfsRequest(Request):
    ServerHostname: FileServerHostnameValue
    Subdirectory: NfsSubdirectoryValue
    # Required by DataSync; optional here: without agents, the ordinary workers reach the server.
    OnPremConfig: OnPremConfigShape | None = None
    MountOptions: NfsMountOptions = NfsMountOptions()
    ServerPort: ServerPortValue = 2049  # beyond DataSync
    Tags: TagList = []


class UpdateLocationNfsRequest(Request):
    LocationArn: LocationArnValue
    ServerHostname: FileServerHostnameValue | None = None
    Subdirectory: NfsSubdirectoryValue | None = None
    OnPremConfig: OnPremConfigShape | None = None
    MountOptions: NfsMountOptions | None = None
    ServerPort: ServerPortValue | None = None


class CreateLocationEfsRequest(Request):
    EfsFilesystemArn: EfsFilesystemArnValue
    Subdirectory: EfsSubdirectoryValue = "/"
    # Required by DataSync; accepted and shown: Ferry's agent reaches the mount target itself.
    Ec2Config: Ec2ConfigShape | None = None
    AccessPointArn: EfsAccessPointArnValue | None = None
    FileSystemAccessRoleArn: IamRoleArnValue | None = None
    InTransitEncryption: Literal["NONE", "TLS1_2"] = "NONE"
    AgentArns: AgentArnList | None = None  # beyond DataSync, as for local locations
    # Beyond DataSync: the file system's address if not its AWS DNS name, and its port.
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue = 2049
    MountOptions: NfsMountOptions = NfsMountOptions(Version="NFS4_1")
    Tags: TagList = []


class UpdateLocationEfsRequest(Request):
    LocationArn: LocationArnValue
    Subdirectory: EfsSubdirectoryValue | None = None
    # "" clears them, as in DataSync.
    AccessPointArn: EfsAccessPointArnValue | Literal[""] | None = None
    FileSystemAccessRoleArn: IamRoleArnValue | Literal[""] | None = None
    InTransitEncryption: Literal["NONE", "TLS1_2"] | None = None
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue | None = None


class FsxProtocolNfsShape(Request):
    MountOptions: NfsMountOptions = NfsMountOptions()


class FsxProtocolShape(Request):
    NFS: FsxProtocolNfsShape


class CreateLocationFsxOpenZfsRequest(Request):
    FsxFilesystemArn: FsxFilesystemArnValue
    Protocol: FsxProtocolShape
    SecurityGroupArns: SecurityGroupArnsValue | None = None
    Subdirectory: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/fsx(/.*)?$")] = (
        "/fsx"
    )
    AgentArns: AgentArnList | None = None
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue = 2049
    Tags: TagList = []


class UpdateLocationFsxOpenZfsRequest(Request):
    LocationArn: LocationArnValue
    Protocol: FsxProtocolShape | None = None
    Subdirectory: Annotated[str, Field(max_length=4096, pattern=r"^/fsx(/.*)?$")] | None = None
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue | None = None


def _check_efs_tunnel(fields: Fields, updating: bool) -> None:
    """TLS and access points go through EFS's TLS tunnel (efs-proxy, or stunnel with the access
    point), which Ferry does not run: without the address of one as ServerHostname (any but the
    file system's own name), they would be ignored."""
    wanted = [
        name
        for name, given in (
            ("InTransitEncryption=TLS1_2", fields.get("InTransitEncryption") == "TLS1_2"),
            ("AccessPointArn", bool(fields.get("AccessPointArn"))),
        )
        if given
    ]
    hostname = fields.get("ServerHostname")
    if wanted and hostname in (None, _efs_hostname(fields["EfsFilesystemArn"])):
        raise InvalidRequestException(
            f"{' and '.join(wanted)} need EFS's TLS tunnel, which Ferry does not run: run "
            "efs-proxy (or stunnel) beside the agent and give its address as ServerHostname "
            "and ServerPort."
        )


def _efs_hostname(arn: str) -> str:
    """The DNS name AWS gives an EFS file system (resolvable inside its VPC)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.efs.{region}.amazonaws.com"


def _on_prem_agents(fields: Fields, updating: bool) -> Fields:
    """DataSync names an NFS location's agents in OnPremConfig."""
    if (on_prem := fields.pop("OnPremConfig", None)) is not None:
        fields["AgentArns"] = on_prem["AgentArns"]
    return fields


def _efs(fields: Fields, updating: bool) -> Fields:
    if updating:  # "" clears an access point or a role, as in DataSync
        return {name: value if value != "" else None for name, value in fields.items()}
    if fields.get("ServerHostname") is None:
        fields["ServerHostname"] = _efs_hostname(fields["EfsFilesystemArn"])
    return fields


def _fsx_open_zfs(fields: Fields, updating: bool) -> Fields:
    if not updating and fields.get("ServerHostname") is None:
        fields["ServerHostname"] = fsx_hostname(fields["FsxFilesystemArn"])
    if (protocol := fields.pop("Protocol", None)) is not None:
        fields["MountOptions"] = protocol["NFS"]["MountOptions"]
    return fields


NFS = LocationKind(
    name="Nfs",
    title="an NFS",
    model=NfsLocation,
    create=CreateLocationNfsRequest,
    update=UpdateLocationNfsRequest,
    adapter="activities.storage.nfs",
    prepare=_on_prem_agents,
)
EFS = LocationKind(
    name="Efs",
    title="an EFS",
    model=EfsLocation,
    create=CreateLocationEfsRequest,
    update=UpdateLocationEfsRequest,
    adapter="activities.storage.nfs",
    prepare=_efs,
    check=_check_efs_tunnel,
)
FSX_OPENZFS = LocationKind(
    name="FsxOpenZfs",
    title="an FSx for OpenZFS",
    model=FsxOpenZfsLocation,
    create=CreateLocationFsxOpenZfsRequest,
    update=UpdateLocationFsxOpenZfsRequest,
    adapter="activities.storage.nfs",
    prepare=_fsx_open_zfs,
)
