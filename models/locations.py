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
    SecretKey: str | None = None  # sealed (api.secrets): never in plain text, never shown
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


# --- file servers ---------------------------------------------------------------------------

NfsVersion = Literal["AUTOMATIC", "NFS3", "NFS4_0", "NFS4_1", "NFS4_2"]
SmbVersion = Literal["AUTOMATIC", "SMB1", "SMB2_0", "SMB2", "SMB3"]


class NfsMountOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: NfsVersion = "AUTOMATIC"


class SmbMountOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: SmbVersion = "AUTOMATIC"


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
        return server, _folder(self.Subdirectory)

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
        return _prefix_uri(self.scheme, self.uri_host, self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = super().describe()
        response["ServerHostname"] = self.ServerHostname
        response["ServerPort"] = self.ServerPort
        return response


class NfsServerLocation(FileServerLocation):
    """Reached by NFS: Subdirectory is the export path and what lies beneath it."""

    ServerPort: int = 2049
    MountOptions: NfsMountOptions = NfsMountOptions()

    @property
    def protocol(self) -> str:
        return "nfs"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "MountOptions": self.MountOptions.model_dump()}


class SmbServerLocation(FileServerLocation):
    """Reached by SMB: Subdirectory is the share and a path in it."""

    ServerPort: int = 445
    User: str = ""
    Domain: str = ""
    Password: str | None = None  # sealed (api.secrets): never in plain text, never shown
    MountOptions: SmbMountOptions = SmbMountOptions()

    @property
    def protocol(self) -> str:
        return "smb"

    def describe(self) -> dict[str, Any]:
        response = {**super().describe(), "MountOptions": self.MountOptions.model_dump()}
        if self.User:
            response["User"] = self.User
        if self.Domain:
            response["Domain"] = self.Domain
        return response


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


class SmbLocation(SmbServerLocation):
    LocationType: Literal["SMB"] = "SMB"
    AuthenticationType: Literal["NTLM", "KERBEROS"] = "NTLM"
    KerberosPrincipal: str | None = None
    KerberosKeytab: str | None = None  # base64, sealed like Password
    KerberosKrb5Conf: str | None = None  # base64
    DnsIpAddresses: tuple[str, ...] = ()

    @property
    def scheme(self) -> str:
        return "smb"

    def describe(self) -> dict[str, Any]:
        response = {**super().describe(), "AuthenticationType": self.AuthenticationType}
        if self.KerberosPrincipal:
            response["KerberosPrincipal"] = self.KerberosPrincipal
        if self.DnsIpAddresses:
            response["DnsIpAddresses"] = list(self.DnsIpAddresses)
        return response


class Ec2Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


class FsxWindowsLocation(SmbServerLocation, FsxLocation):
    LocationType: Literal["FSX_WINDOWS"] = "FSX_WINDOWS"

    @property
    def scheme(self) -> str:
        return "fsxw"

    @property
    def uri_host(self) -> str:
        return self.fsx_uri_host


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


class FsxLustreLocation(FsxLocation):
    """Lustre has no protocol a process speaks by itself: the agent's host mounts the file system
    with the Lustre client at MountPath (beyond DataSync; /fsx, as AWS's guides mount it), and
    Ferry works beneath it as on a local directory."""

    LocationType: Literal["FSX_LUSTRE"] = "FSX_LUSTRE"
    Subdirectory: str = "/"
    MountPath: str = "/fsx"

    @property
    def path(self) -> str:
        return (self.MountPath.rstrip("/") + _folder(self.Subdirectory)).rstrip("/") or "/"

    @property
    def location_uri(self) -> str:
        return _prefix_uri("fsxl", self.fsx_uri_host, self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        return f"fsxl:{self.FsxFilesystemArn}", _folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "MountPath": self.MountPath}


# --- HDFS ----------------------------------------------------------------------------------

HdfsProtection = Literal["DISABLED", "AUTHENTICATION", "INTEGRITY", "PRIVACY"]


class HdfsNameNode(BaseModel):
    """A NameNode's WebHDFS address: Port is its HTTP port (9870 on Hadoop 3), not the RPC one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Hostname: str
    Port: int


class HdfsQop(BaseModel):
    """Kept and shown for DataSync's sake: it protects Hadoop RPC and the DataNodes' block
    protocol, which WebHDFS does not use (its requests are HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    RpcProtection: HdfsProtection = "PRIVACY"
    DataTransferProtection: HdfsProtection = "PRIVACY"


class HdfsLocation(LocationBase):
    """An HDFS cluster reached over WebHDFS. Several NameNodes are one cluster's HA pair (or
    more): a request that meets a standby or unreachable NameNode goes to the next."""

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
        return _folder(self.Subdirectory).rstrip("/") or "/"

    @property
    def location_uri(self) -> str:
        first = self.NameNodes[0]
        return _prefix_uri("hdfs", f"{first.Hostname}:{first.Port}", self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        # One cluster however its NameNodes are listed.
        nodes = sorted(f"{node.Hostname}:{node.Port}" for node in self.NameNodes)
        return "hdfs:" + ",".join(nodes), _folder(self.Subdirectory)

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


Location = Annotated[
    LocalLocation
    | S3Location
    | ObjectStorageLocation
    | NfsLocation
    | SmbLocation
    | EfsLocation
    | FsxWindowsLocation
    | FsxOpenZfsLocation
    | FsxLustreLocation
    | HdfsLocation,
    Field(discriminator="LocationType"),
]
ObjectLocation = S3Location | ObjectStorageLocation
