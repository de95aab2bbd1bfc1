"""S3 and self-managed object storage (any S3-compatible server)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.locations.base import (
    BY_CONDITION,
    Capabilities,
    Fields,
    FolderMarkers,
    LocationBase,
    LocationKind,
    ServerPortValue,
    folder,
    prefix_uri,
)
from models.requests import (
    PARTITIONS,
    AgentArnList,
    LocationArnValue,
    Request,
    TagList,
)


class S3AccessConfig(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    # Assumed through STS when set; else the worker's own AWS credential chain is used.
    BucketAccessRoleArn: str | None = None


# Ferry keeps POSIX metadata (owners as ids and names, modes, times) in user metadata, as
# DataSync does; a second name of a file is a copy the server makes.
# A key is at most 1,024 bytes, the location's prefix included.
_OBJECTS = Capabilities(
    owner_names=True,
    hard_links=False,
    server_side_copy=True,
    devices=False,
    max_path_bytes=1024,
    object_tags=True,
    recursive_delete=True,  # a prefix listed flat, its keys deleted a thousand a request
    exclusive_commit=BY_CONDITION,
)


# Storage classes whose objects are restored before they can be read.
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")


class _Objects(LocationBase):
    """What S3 and S3-compatible locations share: FolderMarkers (beyond DataSync), folders as
    empty "name/" objects with their metadata (DataSync's way), or only as key prefixes, for
    servers that map keys onto files (`rclone serve s3`)."""

    CAPABILITIES: ClassVar[Capabilities] = _OBJECTS
    FolderMarkers: FolderMarkers = "ENABLED"

    @property
    def capabilities(self) -> Capabilities:
        if self.FolderMarkers == "DISABLED":
            return replace(self.CAPABILITIES, empty_folders=False, folder_metadata=False)
        return self.CAPABILITIES


class S3Location(_Objects):
    LocationType: Literal["S3"] = "S3"
    S3BucketArn: str
    Subdirectory: str = ""
    S3StorageClass: str = "STANDARD"
    S3Config: S3AccessConfig = S3AccessConfig()
    # Beyond DataSync, for S3-compatible services: the AWS SDK's `endpoint_url`. Without it the
    # SDK's own settings apply (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the config file).
    EndpointUrl: str | None = None

    @property
    def bucket(self) -> str:
        return self.S3BucketArn.rpartition(":")[2].rpartition("/")[2]

    @property
    def capabilities(self) -> Capabilities:
        can = super().capabilities
        if self.S3StorageClass in ARCHIVED:
            return replace(can, reads_back=False)
        return can

    @property
    def location_uri(self) -> str:
        return prefix_uri("s3", self.bucket, self.Subdirectory)

    @property
    def tree(self) -> tuple[str, str]:
        return f"s3:{self.EndpointUrl or ''}/{self.bucket}", folder(self.Subdirectory)

    def describe(self) -> dict[str, Any]:
        response = {**super().describe(), "S3StorageClass": self.S3StorageClass}
        if self.S3Config.BucketAccessRoleArn:
            response["S3Config"] = {"BucketAccessRoleArn": self.S3Config.BucketAccessRoleArn}
        if self.EndpointUrl:
            response["EndpointUrl"] = self.EndpointUrl
        response["FolderMarkers"] = self.FolderMarkers
        return response


class ObjectStorageLocation(_Objects):
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

    @property
    def endpoint_url(self) -> str:
        return f"{self.ServerProtocol.lower()}://{self.ServerHostname}:{self.ServerPort}"

    @property
    def location_uri(self) -> str:
        return prefix_uri(
            "object-storage", f"{self.ServerHostname}/{self.BucketName}", self.Subdirectory
        )

    @property
    def tree(self) -> tuple[str, str]:
        return f"s3:{self.endpoint_url}/{self.BucketName}", folder(self.Subdirectory)

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


ObjectLocation = S3Location | ObjectStorageLocation


S3BucketArnValue = Annotated[
    str,
    Field(
        max_length=268,
        pattern=rf"^arn:{PARTITIONS}:s3:::[a-zA-Z0-9.\-_]{{1,255}}$"
        rf"|^arn:{PARTITIONS}:s3:[a-z\-0-9]*:[0-9]{{12}}:accesspoint[/:][a-zA-Z0-9\-.]{{1,63}}$",
    ),
]


S3SubdirectoryValue = Annotated[str, Field(max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\) ]*$")]


S3StorageClassValue = Literal[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_INSTANT_RETRIEVAL",
]


EndpointUrlValue = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s/]+(/.*)?$")]


ServerHostnameValue = Annotated[
    str,
    Field(
        max_length=255,
        pattern=r"^(([a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9\-]*[A-Za-z0-9])$",
    ),
]


BucketNameValue = Annotated[
    str, Field(min_length=3, max_length=63, pattern=r"^[a-zA-Z0-9_\-\+\./\(\)\$ ]+$")
]


ObjectStorageKeyValue = Annotated[str, Field(max_length=200)]


def _check_certificate(text: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(
            "ServerCertificate: give the PEM chain of the server's certificate authority "
            "(-----BEGIN CERTIFICATE----- ...; on the command line, file://PATH)."
        )
    return text


CertificateValue = Annotated[str, Field(max_length=32768), AfterValidator(_check_certificate)]


class S3ConfigShape(Request):
    BucketAccessRoleArn: Annotated[
        str, Field(max_length=2048, pattern=rf"^arn:{PARTITIONS}:iam::[0-9]{{12}}:role/.*$")
    ]


class CreateLocationS3Request(Request):
    S3BucketArn: S3BucketArnValue
    Subdirectory: S3SubdirectoryValue = ""
    S3StorageClass: S3StorageClassValue = "STANDARD"
    # Required by DataSync; optional here: without it the worker's own AWS credentials apply.
    S3Config: S3ConfigShape | None = None
    AgentArns: AgentArnList | None = None
    Tags: TagList = []
    EndpointUrl: EndpointUrlValue | None = None  # beyond DataSync: an S3-compatible service
    FolderMarkers: Literal["ENABLED", "DISABLED"] = "ENABLED"  # beyond DataSync


class UpdateLocationS3Request(Request):
    LocationArn: LocationArnValue
    Subdirectory: S3SubdirectoryValue | None = None
    S3StorageClass: S3StorageClassValue | None = None
    S3Config: S3ConfigShape | None = None
    EndpointUrl: EndpointUrlValue | None = None
    FolderMarkers: Literal["ENABLED", "DISABLED"] | None = None


class CreateLocationObjectStorageRequest(Request):
    ServerHostname: ServerHostnameValue
    ServerPort: ServerPortValue | None = None  # 443 for HTTPS, 80 for HTTP
    ServerProtocol: Literal["HTTPS", "HTTP"] = "HTTPS"
    Subdirectory: S3SubdirectoryValue = ""
    BucketName: BucketNameValue
    AccessKey: ObjectStorageKeyValue | None = None
    SecretKey: ObjectStorageKeyValue | None = None
    AgentArns: AgentArnList | None = None
    Tags: TagList = []
    ServerCertificate: CertificateValue | None = None
    FolderMarkers: Literal["ENABLED", "DISABLED"] = "ENABLED"  # beyond DataSync


class UpdateLocationObjectStorageRequest(Request):
    LocationArn: LocationArnValue
    ServerHostname: ServerHostnameValue | None = None
    ServerPort: ServerPortValue | None = None
    ServerProtocol: Literal["HTTPS", "HTTP"] | None = None
    Subdirectory: S3SubdirectoryValue | None = None
    AccessKey: ObjectStorageKeyValue | None = None
    SecretKey: ObjectStorageKeyValue | None = None
    AgentArns: AgentArnList | None = None
    ServerCertificate: CertificateValue | None = None
    FolderMarkers: Literal["ENABLED", "DISABLED"] | None = None


def _default_port(fields: Fields, updating: bool) -> Fields:
    """HTTPS's port or HTTP's, unless one is given."""
    if fields.get("ServerPort") is None and (not updating or "ServerProtocol" in fields):
        fields["ServerPort"] = 80 if fields.get("ServerProtocol") == "HTTP" else 443
    return fields


S3 = LocationKind(
    name="S3",
    title="an S3",
    model=S3Location,
    create=CreateLocationS3Request,
    update=UpdateLocationS3Request,
    adapter="activities.storage.objects",
)
OBJECT_STORAGE = LocationKind(
    name="ObjectStorage",
    title="an object storage",
    model=ObjectStorageLocation,
    create=CreateLocationObjectStorageRequest,
    update=UpdateLocationObjectStorageRequest,
    adapter="activities.storage.objects",
    secrets=("SecretKey",),
    prepare=_default_port,
)
