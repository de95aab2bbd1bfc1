"""File systems reached by SMB: an SMB share and FSx for Windows File Server."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from models.locations.base import (
    BY_RENAME,
    Capabilities,
    Fields,
    FileServerHostnameValue,
    FileServerLocation,
    FsxFilesystemArnValue,
    FsxLocation,
    KerberosPrincipalValue,
    KeytabValue,
    Krb5ConfValue,
    LocationKind,
    SecurityGroupArnsValue,
    ServerPortValue,
    SmbSubdirectoryValue,
    check_authentication,
    fsx_hostname,
)
from models.requests import (
    AgentArnList,
    LocationArnValue,
    Request,
    TagList,
)

SmbVersion = Literal["AUTOMATIC", "SMB1", "SMB2_0", "SMB2", "SMB3"]


class SmbMountOptions(Request):  # kept as the request gives it
    Version: SmbVersion = "AUTOMATIC"


class SmbServerLocation(FileServerLocation):
    """Reached by SMB: Subdirectory is the share and a path in it."""

    # No POSIX owners, modes, links or devices; Windows attributes and security descriptors,
    # FILETIME's 100 ns, names without the separators, wildcards and control characters
    # Windows refuses, and that differ in more than case.
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        time_resolution_ns=100,
        posix_owners=False,
        posix_modes=False,
        symlinks=False,
        devices=False,
        windows_metadata=True,
        refused_characters='\\:*?"<>|' + "".join(map(chr, range(1, 32))),
        refused_endings=". ",  # Windows drops a trailing dot or space
        case_sensitive=False,
        exclusive_commit=BY_RENAME,  # FileRenameInformation without ReplaceIfExists
    )

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


class FsxWindowsLocation(SmbServerLocation, FsxLocation):
    LocationType: Literal["FSX_WINDOWS"] = "FSX_WINDOWS"

    @property
    def scheme(self) -> str:
        return "fsxw"

    @property
    def uri_host(self) -> str:
        return self.fsx_uri_host


SmbUserValue = Annotated[
    str, Field(max_length=104, pattern=r"^[^\x22\x5B\x5D/\\:;|=,+*?\x3C\x3E]{1,104}$")
]


SmbDomainValue = Annotated[
    str, Field(max_length=253, pattern=r"^[A-Za-z0-9]((\.|-+)?[A-Za-z0-9]){0,252}$")
]


SmbPasswordValue = Annotated[str, Field(max_length=104, pattern=r"^.{0,104}$")]


def _ip_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    return text


DnsIpAddressesValue = Annotated[
    list[Annotated[str, AfterValidator(_ip_address)]], Field(max_length=2)
]


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
    MountOptions: SmbMountOptions = SmbMountOptions()
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
    MountOptions: SmbMountOptions | None = None
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


# What each AuthenticationType needs, the first being the default.
_SMB_AUTHENTICATION = {
    "NTLM": ("User", "Password"),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}


def _check_smb_authentication(fields: Fields, updating: bool) -> None:
    check_authentication(fields, _SMB_AUTHENTICATION, updating=updating)


def _fsx_windows(fields: Fields, updating: bool) -> Fields:
    if not updating and fields.get("ServerHostname") is None:
        fields["ServerHostname"] = fsx_hostname(fields["FsxFilesystemArn"])
    return fields


SMB = LocationKind(
    name="Smb",
    title="an SMB",
    model=SmbLocation,
    create=CreateLocationSmbRequest,
    update=UpdateLocationSmbRequest,
    adapter="activities.storage.smb",
    secrets=("Password", "KerberosKeytab"),
    check=_check_smb_authentication,
)
FSX_WINDOWS = LocationKind(
    name="FsxWindows",
    title="an FSx for Windows File Server",
    model=FsxWindowsLocation,
    create=CreateLocationFsxWindowsRequest,
    update=UpdateLocationFsxWindowsRequest,
    adapter="activities.storage.smb",
    secrets=("Password",),
    prepare=_fsx_windows,
)
