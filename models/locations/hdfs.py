"""HDFS, reached over WebHDFS."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.locations.base import (
    BY_RENAME,
    Capabilities,
    Fields,
    KerberosPrincipalValue,
    KeytabValue,
    Krb5ConfValue,
    LocationBase,
    LocationKind,
    ServerPortValue,
    check_authentication,
    folder,
    prefix_uri,
)
from models.requests import (
    AgentArnList,
    LocationArnValue,
    Request,
    TagList,
)

HdfsProtection = Literal["DISABLED", "AUTHENTICATION", "INTEGRITY", "PRIVACY"]


class HdfsNameNode(BaseModel):
    """A NameNode's WebHDFS address: Port is its HTTP port (9870 on Hadoop 3), not the RPC one."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    Hostname: str
    Port: int


class HdfsQop(BaseModel):
    """Kept and shown for DataSync's sake: it protects Hadoop RPC and the DataNodes' block
    protocol, which WebHDFS does not use (its requests are HTTP)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    RpcProtection: HdfsProtection = "PRIVACY"
    DataTransferProtection: HdfsProtection = "PRIVACY"


class HdfsLocation(LocationBase):
    """An HDFS cluster reached over WebHDFS. Several NameNodes are one cluster's HA pair (or
    more): a request that meets a standby or unreachable NameNode goes to the next."""

    # Times to the millisecond; owners are names; no setuid or setgid, no symbolic links (Hadoop
    # turns them off), hard links or devices; no ':' in a name.
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        time_resolution_ns=1_000_000,
        posix_owners=False,
        owner_names=True,
        names_only=True,
        mode_bits=0o1777,
        symlinks=False,
        hard_links=False,
        devices=False,
        refused_characters=":",
        recursive_delete=True,  # DELETE with recursive=true
        exclusive_commit=BY_RENAME,  # RENAME without renameoptions=OVERWRITE
    )
    LocationType: Literal["HDFS"] = "HDFS"
    NameNodes: tuple[HdfsNameNode, ...]
    Subdirectory: str = "/"
    BlockSize: int = 128 * 1024 * 1024
    ReplicationFactor: int = 3
    KmsKeyProviderUri: str | None = None  # kept and shown: the DataNodes reach the KMS
    QopConfiguration: HdfsQop = HdfsQop()
    AuthenticationType: Literal["SIMPLE", "KERBEROS"] = "SIMPLE"
    SimpleUser: str | None = None
    KerberosPrincipal: str | None = None
    KerberosKeytab: str | None = None  # base64, sealed (api.secrets)
    KerberosKrb5Conf: str | None = None  # base64

    @property
    def path(self) -> str:
        """The location root as an absolute HDFS path."""
        return folder(self.Subdirectory).rstrip("/") or "/"

    @property
    def location_uri(self) -> str:
        first = self.NameNodes[0]
        return prefix_uri("hdfs", f"{first.Hostname}:{first.Port}", self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        # One cluster however its NameNodes are listed.
        nodes = sorted(f"{node.Hostname}:{node.Port}" for node in self.NameNodes)
        return "hdfs:" + ",".join(nodes), folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = {
            **super().describe(),
            "NameNodes": [node.model_dump() for node in self.NameNodes],
            "BlockSize": self.BlockSize,
            "ReplicationFactor": self.ReplicationFactor,
            "QopConfiguration": self.QopConfiguration.model_dump(),
            "AuthenticationType": self.AuthenticationType,
        }
        for field in ("KmsKeyProviderUri", "SimpleUser", "KerberosPrincipal"):
            if getattr(self, field):
                response[field] = getattr(self, field)
        return response


HdfsHostnameValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^(([a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9\-]*[A-Za-z0-9])$",
    ),
]


HdfsSubdirectoryValue = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\)\$ ]+$")
]


def _whole_sectors(size: int) -> int:
    if size % 512:
        raise ValueError(f"{size} is not a multiple of 512 bytes (HDFS checksums 512-byte chunks)")
    return size


HdfsBlockSizeValue = Annotated[
    int, Field(ge=1048576, le=1073741824), AfterValidator(_whole_sectors)
]


HdfsReplicationFactorValue = Annotated[int, Field(ge=1, le=512)]


HdfsUserValue = Annotated[
    str, Field(min_length=1, max_length=256, pattern=r"^[_.A-Za-z0-9][-_.A-Za-z0-9]*$")
]


_KMS_HOST = r"(([a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9\-]*[A-Za-z0-9])"


KmsKeyProviderUriValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=rf"^kms:\/\/http[s]?@{_KMS_HOST}(;{_KMS_HOST})*:[0-9]{{1,5}}\/kms$",
    ),
]


HdfsProtectionValue = Literal["DISABLED", "AUTHENTICATION", "INTEGRITY", "PRIVACY"]


class HdfsNameNodeShape(Request):
    Hostname: HdfsHostnameValue
    Port: ServerPortValue  # the NameNode's WebHDFS (HTTP) port: 9870 on Hadoop 3


class QopConfigurationShape(Request):
    RpcProtection: HdfsProtectionValue | None = None
    DataTransferProtection: HdfsProtectionValue | None = None


class CreateLocationHdfsRequest(Request):
    NameNodes: Annotated[list[HdfsNameNodeShape], Field(min_length=1)]
    Subdirectory: HdfsSubdirectoryValue = "/"
    BlockSize: HdfsBlockSizeValue = 128 * 1024 * 1024
    ReplicationFactor: HdfsReplicationFactorValue = 3
    KmsKeyProviderUri: KmsKeyProviderUriValue | None = None
    QopConfiguration: QopConfigurationShape | None = None
    AuthenticationType: Literal["SIMPLE", "KERBEROS"]
    SimpleUser: HdfsUserValue | None = None
    KerberosPrincipal: KerberosPrincipalValue | None = None
    KerberosKeytab: KeytabValue | None = None
    KerberosKrb5Conf: Krb5ConfValue | None = None
    AgentArns: AgentArnList | None = None  # required by DataSync; as for NFS
    Tags: TagList = []


class UpdateLocationHdfsRequest(Request):
    LocationArn: LocationArnValue
    NameNodes: Annotated[list[HdfsNameNodeShape], Field(min_length=1)] | None = None
    Subdirectory: HdfsSubdirectoryValue | None = None
    BlockSize: HdfsBlockSizeValue | None = None
    ReplicationFactor: HdfsReplicationFactorValue | None = None
    KmsKeyProviderUri: KmsKeyProviderUriValue | None = None
    QopConfiguration: QopConfigurationShape | None = None
    AuthenticationType: Literal["SIMPLE", "KERBEROS"] | None = None
    SimpleUser: HdfsUserValue | None = None
    KerberosPrincipal: KerberosPrincipalValue | None = None
    KerberosKeytab: KeytabValue | None = None
    KerberosKrb5Conf: Krb5ConfValue | None = None
    AgentArns: AgentArnList | None = None


_HDFS_AUTHENTICATION = {
    "SIMPLE": ("SimpleUser",),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}


def _qop(given: Fields) -> HdfsQop:
    """DataSync's defaults: PRIVACY for both, or the one given for the other."""
    rpc = given.get("RpcProtection")
    transfer = given.get("DataTransferProtection")
    return HdfsQop(
        RpcProtection=rpc or transfer or "PRIVACY",
        DataTransferProtection=transfer or rpc or "PRIVACY",
    )


def _hdfs(fields: Fields, updating: bool) -> Fields:
    if not updating or "QopConfiguration" in fields:
        fields["QopConfiguration"] = _qop(fields.get("QopConfiguration") or {})
    return fields


def _check_hdfs_authentication(fields: Fields, updating: bool) -> None:
    check_authentication(fields, _HDFS_AUTHENTICATION, updating=updating)


HDFS = LocationKind(
    name="Hdfs",
    title="an HDFS",
    model=HdfsLocation,
    create=CreateLocationHdfsRequest,
    update=UpdateLocationHdfsRequest,
    adapter="activities.storage.hdfs",
    secrets=("KerberosKeytab",),
    prepare=_hdfs,
    check=_check_hdfs_authentication,
)
