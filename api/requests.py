"""Request shapes of the DataSync operations Ferry serves, validated before anything is sent.

Field names, patterns and limits follow the botocore `datasync` model; a bad request becomes an
InvalidRequestException whose message names the field and what it accepts.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from models import manifests, options, reports
from models.agents import ACTIVATION_KEY
from models.arn import AGENT_ARN, LOCATION_ARN, TASK_ARN, TASK_EXECUTION_ARN
from models.errors import InvalidRequestException
from models.filters import FilterRule
from models.schedules import TaskSchedule
from models.tags import MAX_TAGS, TagListEntry
from models.timetable import check_timetable

AgentArnValue = Annotated[str, Field(max_length=128, pattern=AGENT_ARN.pattern)]
LocationArnValue = Annotated[str, Field(max_length=128, pattern=LOCATION_ARN.pattern)]
TaskArnValue = Annotated[str, Field(max_length=128, pattern=TASK_ARN.pattern)]
TaskExecutionArnValue = Annotated[str, Field(max_length=128, pattern=TASK_EXECUTION_ARN.pattern)]
NameValue = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9\s+=._:@/-]+$")]
FilterListValue = Annotated[list[FilterRule], Field(max_length=1)]
TagList = Annotated[list[TagListEntry], Field(max_length=MAX_TAGS)]
ResourceArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=r"^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):datasync:[a-z\-0-9]+:"
        r"[0-9]{12}:(agent|task|location)/(agent|task|loc)-[a-z0-9]{17}"
        r"(/execution/exec-[a-f0-9]{17})?$",
    ),
]
LogGroupArnValue = Annotated[
    str,
    Field(
        max_length=562,
        pattern=r"^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):logs:[a-z\-0-9]+:"
        r"[0-9]{12}:log-group:([^:\*]*)(:\*)?$",
    ),
]
TimetableValue = Annotated[str, Field(max_length=4096), AfterValidator(check_timetable)]
NewTimetableValue = Annotated[
    str, Field(min_length=1, max_length=4096), AfterValidator(check_timetable)
]
MaxResultsValue = Annotated[int, Field(ge=0, le=100)]
NextTokenValue = Annotated[str, Field(max_length=65535, pattern=r"^[a-zA-Z0-9=_-]+$")]
OperatorValue = Literal[
    "Equals",
    "NotEquals",
    "In",
    "LessThanOrEqual",
    "LessThan",
    "GreaterThanOrEqual",
    "GreaterThan",
    "Contains",
    "NotContains",
    "BeginsWith",
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


R = TypeVar("R", bound=Request)


class CreateAgentRequest(Request):
    ActivationKey: Annotated[str, Field(max_length=29, pattern=ACTIVATION_KEY.pattern)]
    AgentName: NameValue | None = None
    Tags: TagList = []
    # Accepted for DataSync's sake; an agent reaches Temporal however its host is networked.
    VpcEndpointId: str | None = None
    SubnetArns: list[str] | None = None
    SecurityGroupArns: list[str] | None = None


class AgentArnRequest(Request):
    AgentArn: AgentArnValue


class ListAgentsRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


class UpdateAgentRequest(Request):
    AgentArn: AgentArnValue
    Name: NameValue | None = None


AgentArnList = Annotated[list[AgentArnValue], Field(min_length=1, max_length=8)]


class CreateLocationLocalRequest(Request):
    Path: Annotated[str, Field(min_length=1, max_length=4096)]
    # Beyond DataSync's local-less model: the agents that see Path; none, the ordinary workers.
    AgentArns: AgentArnList | None = None
    Tags: TagList = []


_PARTITIONS = "(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b)"
S3BucketArnValue = Annotated[
    str,
    Field(
        max_length=268,
        pattern=rf"^arn:{_PARTITIONS}:s3:::[a-zA-Z0-9.\-_]{{1,255}}$"
        rf"|^arn:{_PARTITIONS}:s3:[a-z\-0-9]*:[0-9]{{12}}:accesspoint[/:][a-zA-Z0-9\-.]{{1,63}}$",
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
ServerPortValue = Annotated[int, Field(ge=1, le=65535)]
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
        str, Field(max_length=2048, pattern=rf"^arn:{_PARTITIONS}:iam::[0-9]{{12}}:role/.*$")
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


# --- file servers (NFS, SMB, EFS, FSx) --------------------------------------------------------

FileServerHostnameValue = Annotated[
    str,
    Field(
        max_length=255,
        pattern=r"^(([a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9\-:]*[A-Za-z0-9])$",
    ),
]
NfsSubdirectoryValue = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\) ]+$")
]
SmbSubdirectoryValue = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\)\$ ]+$")
]
EfsSubdirectoryValue = Annotated[
    str, Field(max_length=4096, pattern=r"^[a-zA-Z0-9_\-\+\./\(\) ]*$")
]
SmbUserValue = Annotated[
    str, Field(max_length=104, pattern=r"^[^\x22\x5B\x5D/\\:;|=,+*?\x3C\x3E]{1,104}$")
]
SmbDomainValue = Annotated[
    str, Field(max_length=253, pattern=r"^[A-Za-z0-9]((\.|-+)?[A-Za-z0-9]){0,252}$")
]
SmbPasswordValue = Annotated[str, Field(max_length=104, pattern=r"^.{0,104}$")]
FsxFilesystemArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{_PARTITIONS}:fsx:[a-z\-0-9]+:[0-9]{{12}}:file-system/fs-[0-9a-f]+$",
    ),
]
EfsFilesystemArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{_PARTITIONS}:elasticfilesystem:[a-z\-0-9]+:[0-9]{{12}}:"
        r"file-system/fs-[0-9a-f]{8,40}$",
    ),
]
EfsAccessPointArnValue = Annotated[
    str,
    Field(
        max_length=128,
        pattern=rf"^arn:{_PARTITIONS}:elasticfilesystem:[a-z\-0-9]+:[0-9]{{12}}:"
        r"access-point/fsap-[0-9a-f]{8,40}$",
    ),
]
IamRoleArnValue = Annotated[
    str, Field(max_length=2048, pattern=rf"^arn:{_PARTITIONS}:iam::[0-9]{{12}}:role/.*$")
]
SecurityGroupArnsValue = Annotated[
    list[
        Annotated[
            str,
            Field(
                max_length=128,
                pattern=rf"^arn:{_PARTITIONS}:ec2:[a-z\-0-9]*:[0-9]{{12}}:"
                r"security-group/sg-[a-f0-9]+$",
            ),
        ]
    ],
    Field(min_length=1, max_length=5),
]


def _ip_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    return text


DnsIpAddressesValue = Annotated[
    list[Annotated[str, AfterValidator(_ip_address)]], Field(max_length=2)
]
KerberosPrincipalValue = Annotated[str, Field(min_length=1, max_length=256)]


def _check_base64(text: str) -> str:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(
            "give the file's bytes in base64 (on the command line: base64 -w0 FILE)"
        ) from None
    return text


KeytabValue = Annotated[str, Field(max_length=87384), AfterValidator(_check_base64)]
Krb5ConfValue = Annotated[str, Field(max_length=174764), AfterValidator(_check_base64)]


class NfsMountOptionsShape(Request):
    Version: Literal["AUTOMATIC", "NFS3", "NFS4_0", "NFS4_1", "NFS4_2"] = "AUTOMATIC"


class SmbMountOptionsShape(Request):
    Version: Literal["AUTOMATIC", "SMB1", "SMB2_0", "SMB2", "SMB3"] = "AUTOMATIC"


class OnPremConfigShape(Request):
    AgentArns: AgentArnList


class Ec2ConfigShape(Request):
    SubnetArn: Annotated[
        str,
        Field(
            max_length=128,
            pattern=rf"^arn:{_PARTITIONS}:ec2:[a-z\-0-9]*:[0-9]{{12}}:subnet/subnet-[a-f0-9]+$",
        ),
    ]
    SecurityGroupArns: SecurityGroupArnsValue


class CreateLocationNfsRequest(Request):
    ServerHostname: FileServerHostnameValue
    Subdirectory: NfsSubdirectoryValue
    # Required by DataSync; optional here: without agents, the ordinary workers reach the server.
    OnPremConfig: OnPremConfigShape | None = None
    MountOptions: NfsMountOptionsShape = NfsMountOptionsShape()
    ServerPort: ServerPortValue = 2049  # beyond DataSync
    Tags: TagList = []


class UpdateLocationNfsRequest(Request):
    LocationArn: LocationArnValue
    ServerHostname: FileServerHostnameValue | None = None
    Subdirectory: NfsSubdirectoryValue | None = None
    OnPremConfig: OnPremConfigShape | None = None
    MountOptions: NfsMountOptionsShape | None = None
    ServerPort: ServerPortValue | None = None


class CreateLocationSmbRequest(Request):
    ServerHostname: FileServerHostnameValue
    Subdirectory: SmbSubdirectoryValue
    User: SmbUserValue | None = None
    Domain: SmbDomainValue | None = None
    Password: SmbPasswordValue | None = None
    AuthenticationType: Literal["NTLM", "KERBEROS"] = "NTLM"
    KerberosPrincipal: KerberosPrincipalValue | None = None
    KerberosKeytab: KeytabValue | None = None
    KerberosKrb5Conf: Krb5ConfValue | None = None
    DnsIpAddresses: DnsIpAddressesValue = []
    AgentArns: AgentArnList | None = None  # required by DataSync; as for NFS
    MountOptions: SmbMountOptionsShape = SmbMountOptionsShape()
    ServerPort: ServerPortValue = 445  # beyond DataSync
    Tags: TagList = []


class UpdateLocationSmbRequest(Request):
    LocationArn: LocationArnValue
    ServerHostname: FileServerHostnameValue | None = None
    Subdirectory: SmbSubdirectoryValue | None = None
    User: SmbUserValue | None = None
    Domain: SmbDomainValue | None = None
    Password: SmbPasswordValue | None = None
    AuthenticationType: Literal["NTLM", "KERBEROS"] | None = None
    KerberosPrincipal: KerberosPrincipalValue | None = None
    KerberosKeytab: KeytabValue | None = None
    KerberosKrb5Conf: Krb5ConfValue | None = None
    DnsIpAddresses: DnsIpAddressesValue | None = None
    AgentArns: AgentArnList | None = None
    MountOptions: SmbMountOptionsShape | None = None
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
    MountOptions: NfsMountOptionsShape = NfsMountOptionsShape(Version="NFS4_1")
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


class CreateLocationFsxWindowsRequest(Request):
    FsxFilesystemArn: FsxFilesystemArnValue
    SecurityGroupArns: SecurityGroupArnsValue | None = None  # required by DataSync; kept
    User: SmbUserValue
    Domain: SmbDomainValue | None = None
    Password: SmbPasswordValue | None = None
    Subdirectory: SmbSubdirectoryValue = "/share"
    AgentArns: AgentArnList | None = None
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue = 445
    Tags: TagList = []


class UpdateLocationFsxWindowsRequest(Request):
    LocationArn: LocationArnValue
    Subdirectory: SmbSubdirectoryValue | None = None
    Domain: SmbDomainValue | Literal[""] | None = None  # "" clears it
    User: SmbUserValue | None = None
    Password: SmbPasswordValue | None = None
    ServerHostname: FileServerHostnameValue | None = None
    ServerPort: ServerPortValue | None = None


class FsxProtocolNfsShape(Request):
    MountOptions: NfsMountOptionsShape = NfsMountOptionsShape()


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


# --- HDFS ------------------------------------------------------------------------------------

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


class LocationArnRequest(Request):
    LocationArn: LocationArnValue


class LocationFilter(Request):
    Name: Literal["LocationUri", "LocationType", "CreationTime"]
    Values: list[str]
    Operator: OperatorValue


class TaskFilter(Request):
    Name: Literal["LocationId", "CreationTime"]
    Values: list[str]
    Operator: OperatorValue


class ListLocationsRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None
    Filters: list[LocationFilter] = []


class CreateTaskRequest(Request):
    SourceLocationArn: LocationArnValue
    DestinationLocationArn: LocationArnValue
    Name: NameValue | None = None
    Options: options.Options | None = None
    Includes: FilterListValue = []
    Excludes: FilterListValue = []
    CloudWatchLogGroupArn: LogGroupArnValue | None = None
    Schedule: TaskSchedule | None = None
    BandwidthTimetable: NewTimetableValue | None = None
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None
    Tags: TagList = []
    TaskMode: Literal["BASIC"] | None = None


class TaskArnRequest(Request):
    TaskArn: TaskArnValue


class ListTasksRequest(Request):
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None
    Filters: list[TaskFilter] = []


class UpdateTaskRequest(Request):
    TaskArn: TaskArnValue
    Name: NameValue | None = None
    Options: options.Options | None = None
    Includes: FilterListValue | None = None
    Excludes: FilterListValue | None = None
    CloudWatchLogGroupArn: LogGroupArnValue | None = None
    Schedule: TaskSchedule | None = None
    BandwidthTimetable: TimetableValue | None = None  # "" removes it
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None


class StartTaskExecutionRequest(Request):
    TaskArn: TaskArnValue
    OverrideOptions: options.Options | None = None
    Includes: FilterListValue | None = None
    Excludes: FilterListValue | None = None
    Tags: TagList = []
    TaskReportConfig: reports.TaskReportConfig | None = None
    ManifestConfig: manifests.ManifestConfig | None = None
    # Beyond DataSync: LAUNCHING and PREPARING only; the estimates say what a run would do.
    DryRun: bool | None = None


class TaskExecutionArnRequest(Request):
    TaskExecutionArn: TaskExecutionArnValue


class UpdateTaskExecutionRequest(Request):
    TaskExecutionArn: TaskExecutionArnValue
    Options: options.Options


class TagResourceRequest(Request):
    ResourceArn: ResourceArnValue
    Tags: TagList


class UntagResourceRequest(Request):
    ResourceArn: ResourceArnValue
    Keys: Annotated[list[str], Field(min_length=1, max_length=MAX_TAGS)]


class ListTagsForResourceRequest(Request):
    ResourceArn: ResourceArnValue
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


class ListTaskExecutionsRequest(Request):
    TaskArn: TaskArnValue | None = None
    MaxResults: MaxResultsValue | None = None
    NextToken: NextTokenValue | None = None


def parse(shape: type[R], request: dict[str, Any]) -> R:
    try:
        return shape.model_validate(request)
    except ValidationError as error:
        raise InvalidRequestException(explain(error, shape)) from None


def explain(error: ValidationError, shape: type[BaseModel]) -> str:
    """One sentence per problem, each naming the field (Options.VerifyMode, Includes[0].Value)."""
    problems = []
    for detail in error.errors(include_url=False):
        field = _field_name(detail["loc"])
        kind = detail["type"]
        if kind == "extra_forbidden":
            known = ", ".join(_fields_at(shape, detail["loc"][:-1]))
            problems.append(f"Unknown parameter {field}; the parameters here are: {known}.")
        elif kind == "missing":
            problems.append(f"Missing required parameter {field}.")
        elif kind == "value_error":
            # Ferry's own checks: their messages mostly name the field already.
            text = str(detail["ctx"]["error"])
            problems.append(text if text.startswith(field) else f"{field}: {text}.")
        elif kind == "string_pattern_mismatch" and field.endswith("Arn"):
            form = _ARN_FORMS.get(field, "a valid ARN")
            problems.append(f"{field}: {detail['input']!r} is not {form}.")
        else:
            given = detail.get("input")
            shown = f" (got {given!r})" if not isinstance(given, (dict, list)) else ""
            problems.append(f"{field}: {detail['msg']}{shown}.")
    return " ".join(problems)


_ARN_FORMS = {
    "AgentArn": "an agent ARN (arn:aws:datasync:REGION:ACCOUNT:agent/agent-ID)",
    "LocationArn": "a location ARN (arn:aws:datasync:REGION:ACCOUNT:location/loc-ID)",
    "TaskArn": "a task ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID)",
    "TaskExecutionArn": (
        "a task execution ARN (arn:aws:datasync:REGION:ACCOUNT:task/task-ID/execution/exec-ID)"
    ),
}
_ARN_FORMS["SourceLocationArn"] = _ARN_FORMS["DestinationLocationArn"] = _ARN_FORMS["LocationArn"]
_ARN_FORMS["ResourceArn"] = "the ARN of an agent, a location, a task or a task execution"
_ARN_FORMS["CloudWatchLogGroupArn"] = "a CloudWatch log group ARN"
_ARN_FORMS["S3BucketArn"] = "an S3 bucket ARN (arn:aws:s3:::BUCKET) or access point ARN"
_ARN_FORMS["S3Config.BucketAccessRoleArn"] = "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"


def _field_name(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not str(part).startswith(("function-", "nullable")):
            name += f".{part}" if name else str(part)
    return name or "request"


def _fields_at(shape: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model: Any = shape
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = _model_in(annotation)
        if model is None:
            return []
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return getattr(annotation, "__origin__", None) and _model_in(annotation.__origin__)


SHAPES: dict[str, type[Request]] = {
    "CreateAgent": CreateAgentRequest,
    "DescribeAgent": AgentArnRequest,
    "ListAgents": ListAgentsRequest,
    "UpdateAgent": UpdateAgentRequest,
    "DeleteAgent": AgentArnRequest,
    "CreateLocationLocal": CreateLocationLocalRequest,
    "DescribeLocationLocal": LocationArnRequest,
    "CreateLocationS3": CreateLocationS3Request,
    "DescribeLocationS3": LocationArnRequest,
    "UpdateLocationS3": UpdateLocationS3Request,
    "CreateLocationObjectStorage": CreateLocationObjectStorageRequest,
    "DescribeLocationObjectStorage": LocationArnRequest,
    "UpdateLocationObjectStorage": UpdateLocationObjectStorageRequest,
    "CreateLocationNfs": CreateLocationNfsRequest,
    "DescribeLocationNfs": LocationArnRequest,
    "UpdateLocationNfs": UpdateLocationNfsRequest,
    "CreateLocationSmb": CreateLocationSmbRequest,
    "DescribeLocationSmb": LocationArnRequest,
    "UpdateLocationSmb": UpdateLocationSmbRequest,
    "CreateLocationEfs": CreateLocationEfsRequest,
    "DescribeLocationEfs": LocationArnRequest,
    "UpdateLocationEfs": UpdateLocationEfsRequest,
    "CreateLocationFsxWindows": CreateLocationFsxWindowsRequest,
    "DescribeLocationFsxWindows": LocationArnRequest,
    "UpdateLocationFsxWindows": UpdateLocationFsxWindowsRequest,
    "CreateLocationFsxOpenZfs": CreateLocationFsxOpenZfsRequest,
    "DescribeLocationFsxOpenZfs": LocationArnRequest,
    "UpdateLocationFsxOpenZfs": UpdateLocationFsxOpenZfsRequest,
    "CreateLocationFsxLustre": CreateLocationFsxLustreRequest,
    "DescribeLocationFsxLustre": LocationArnRequest,
    "UpdateLocationFsxLustre": UpdateLocationFsxLustreRequest,
    "CreateLocationHdfs": CreateLocationHdfsRequest,
    "DescribeLocationHdfs": LocationArnRequest,
    "UpdateLocationHdfs": UpdateLocationHdfsRequest,
    "ListLocations": ListLocationsRequest,
    "DeleteLocation": LocationArnRequest,
    "CreateTask": CreateTaskRequest,
    "DescribeTask": TaskArnRequest,
    "ListTasks": ListTasksRequest,
    "UpdateTask": UpdateTaskRequest,
    "DeleteTask": TaskArnRequest,
    "StartTaskExecution": StartTaskExecutionRequest,
    "DescribeTaskExecution": TaskExecutionArnRequest,
    "ListTaskExecutions": ListTaskExecutionsRequest,
    "CancelTaskExecution": TaskExecutionArnRequest,
    "UpdateTaskExecution": UpdateTaskExecutionRequest,
    "TagResource": TagResourceRequest,
    "UntagResource": UntagResourceRequest,
    "ListTagsForResource": ListTagsForResourceRequest,
}
