"""DataSync's location operations: create, describe and update per location type, list and
delete. Secrets (SecretKey, Password, KerberosKeytab) are sealed before they reach Temporal and
never shown."""

from __future__ import annotations

import os
from typing import Any

from api.base import Operations, Response, listed, matches, now, paginate
from api.requests import (
    CreateLocationEfsRequest,
    CreateLocationFsxLustreRequest,
    CreateLocationFsxOpenZfsRequest,
    CreateLocationFsxWindowsRequest,
    CreateLocationHdfsRequest,
    CreateLocationLocalRequest,
    CreateLocationNfsRequest,
    CreateLocationObjectStorageRequest,
    CreateLocationS3Request,
    CreateLocationSmbRequest,
    Ec2ConfigShape,
    HdfsNameNodeShape,
    ListLocationsRequest,
    LocationArnRequest,
    NfsMountOptionsShape,
    QopConfigurationShape,
    Request,
    SmbMountOptionsShape,
    UpdateLocationEfsRequest,
    UpdateLocationFsxLustreRequest,
    UpdateLocationFsxOpenZfsRequest,
    UpdateLocationFsxWindowsRequest,
    UpdateLocationHdfsRequest,
    UpdateLocationNfsRequest,
    UpdateLocationObjectStorageRequest,
    UpdateLocationS3Request,
    UpdateLocationSmbRequest,
    parse,
)
from api.secrets import SecretError, seal, use_key_file
from api.settings import data_dir
from models.arn import arn_prefix, new_id
from models.errors import (
    InvalidRequestException,
)
from models.locations import (
    Ec2Settings,
    EfsLocation,
    FsxLustreLocation,
    FsxOpenZfsLocation,
    FsxWindowsLocation,
    HdfsLocation,
    HdfsNameNode,
    HdfsQop,
    LocalLocation,
    Location,
    NfsLocation,
    NfsMountOptions,
    ObjectStorageLocation,
    S3AccessConfig,
    S3Location,
    SmbLocation,
    SmbMountOptions,
    aws_file_system,
)


class LocationOperations(Operations):
    async def create_location_local(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationLocalRequest, request)
        if not req.Path.startswith("/"):
            raise InvalidRequestException(f"Path: {req.Path!r} must be an absolute path.")
        arn = self._new_location_arn()
        path = os.path.normpath(req.Path)
        location = LocalLocation(
            LocationArn=arn, CreationTime=now(), Path=path, AgentArns=tuple(req.AgentArns or ())
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_local(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, LocalLocation)).describe()

    async def create_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationS3Request, request)
        arn = self._new_location_arn()
        location = S3Location(
            LocationArn=arn,
            CreationTime=now(),
            AgentArns=tuple(req.AgentArns or ()),
            S3BucketArn=req.S3BucketArn,
            Subdirectory=req.Subdirectory,
            S3StorageClass=req.S3StorageClass,
            S3Config=S3AccessConfig(**(req.S3Config.model_dump() if req.S3Config else {})),
            EndpointUrl=req.EndpointUrl,
            FolderMarkers=req.FolderMarkers,
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, S3Location)).describe()

    async def update_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationS3Request, request)
        location = await self._location(req.LocationArn, S3Location)
        changes = req.model_dump(exclude_none=True, exclude={"LocationArn"})
        if req.S3Config is not None:
            changes["S3Config"] = S3AccessConfig(**req.S3Config.model_dump())
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationObjectStorageRequest, request)
        arn = self._new_location_arn()
        location = ObjectStorageLocation(
            LocationArn=arn,
            CreationTime=now(),
            AgentArns=tuple(req.AgentArns or ()),
            ServerHostname=req.ServerHostname,
            ServerPort=req.ServerPort or (443 if req.ServerProtocol == "HTTPS" else 80),
            ServerProtocol=req.ServerProtocol,
            BucketName=req.BucketName,
            Subdirectory=req.Subdirectory,
            AccessKey=req.AccessKey,
            SecretKey=_sealed(req.SecretKey, arn),
            ServerCertificate=req.ServerCertificate,
            FolderMarkers=req.FolderMarkers,
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, ObjectStorageLocation)).describe()

    async def update_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationObjectStorageRequest, request)
        location = await self._location(req.LocationArn, ObjectStorageLocation)
        changes = req.model_dump(exclude_none=True, exclude={"LocationArn", "SecretKey"})
        if "AgentArns" in changes:
            changes["AgentArns"] = tuple(changes["AgentArns"])
        if "ServerProtocol" in changes and req.ServerPort is None:
            changes["ServerPort"] = 443 if req.ServerProtocol == "HTTPS" else 80
        if req.SecretKey is not None:
            changes["SecretKey"] = _sealed(req.SecretKey, location.LocationArn)
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationNfsRequest, request)
        arn = self._new_location_arn()
        location = NfsLocation(
            LocationArn=arn,
            CreationTime=now(),
            AgentArns=tuple(req.OnPremConfig.AgentArns if req.OnPremConfig else ()),
            ServerHostname=req.ServerHostname,
            ServerPort=req.ServerPort,
            Subdirectory=req.Subdirectory,
            MountOptions=NfsMountOptions(**req.MountOptions.model_dump()),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, NfsLocation)).describe()

    async def update_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationNfsRequest, request)
        location = await self._location(req.LocationArn, NfsLocation)
        changes = _changes(req, exclude={"OnPremConfig"})
        if req.OnPremConfig is not None:
            changes["AgentArns"] = tuple(req.OnPremConfig.AgentArns)
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationSmbRequest, request)
        _check_authentication(req.model_dump(exclude_none=True), _SMB_AUTHENTICATION)
        arn = self._new_location_arn()
        location = SmbLocation(
            LocationArn=arn,
            CreationTime=now(),
            **_changes(req, exclude={"Tags", "Password", "KerberosKeytab"}),
            **_smb_secrets(req, arn),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, SmbLocation)).describe()

    async def update_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationSmbRequest, request)
        location = await self._location(req.LocationArn, SmbLocation)
        changes = _changes(req, exclude={"Password", "KerberosKeytab"})
        changes.update(_smb_secrets(req, location.LocationArn))
        _check_authentication(
            {**location.model_dump(exclude_none=True), **_changes(req)},
            _SMB_AUTHENTICATION,
            updating=True,
        )
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationEfsRequest, request)
        _check_efs_tunnel(req.model_dump())
        arn = self._new_location_arn()
        location = EfsLocation(
            LocationArn=arn,
            CreationTime=now(),
            **_changes(req, exclude={"Tags", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _efs_hostname(req.EfsFilesystemArn),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, EfsLocation)).describe()

    async def update_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationEfsRequest, request)
        location = await self._location(req.LocationArn, EfsLocation)
        # "" clears an access point or role, as in DataSync.
        changes = {name: value or None for name, value in _changes(req).items()}
        updated = location.model_copy(update=changes)
        if updated.ServerHostname == _efs_hostname(updated.EfsFilesystemArn):
            _check_efs_tunnel(updated.model_dump(exclude={"ServerHostname"}))
        await self._update("update_location", updated)
        return {}

    async def create_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxWindowsRequest, request)
        arn = self._new_location_arn()
        location = FsxWindowsLocation(
            LocationArn=arn,
            CreationTime=now(),
            **_changes(req, exclude={"Tags", "Password", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _fsx_hostname(req.FsxFilesystemArn),
            Password=_sealed(req.Password, arn, "Password"),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxWindowsLocation)).describe()

    async def update_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxWindowsRequest, request)
        location = await self._location(req.LocationArn, FsxWindowsLocation)
        changes = _changes(req, exclude={"Password"})
        if req.Password is not None:
            changes["Password"] = _sealed(req.Password, location.LocationArn, "Password")
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxOpenZfsRequest, request)
        arn = self._new_location_arn()
        location = FsxOpenZfsLocation(
            LocationArn=arn,
            CreationTime=now(),
            **_changes(req, exclude={"Tags", "Protocol", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _fsx_hostname(req.FsxFilesystemArn),
            MountOptions=NfsMountOptions(**req.Protocol.NFS.MountOptions.model_dump()),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxOpenZfsLocation)).describe()

    async def update_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxOpenZfsRequest, request)
        location = await self._location(req.LocationArn, FsxOpenZfsLocation)
        changes = _changes(req, exclude={"Protocol"})
        if req.Protocol is not None:
            changes["MountOptions"] = NfsMountOptions(**req.Protocol.NFS.MountOptions.model_dump())
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxLustreRequest, request)
        arn = self._new_location_arn()
        location = FsxLustreLocation(
            LocationArn=arn, CreationTime=now(), **_changes(req, exclude={"Tags"})
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxLustreLocation)).describe()

    async def update_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxLustreRequest, request)
        location = await self._location(req.LocationArn, FsxLustreLocation)
        await self._update("update_location", location.model_copy(update=_changes(req)))
        return {}

    async def create_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationHdfsRequest, request)
        _check_authentication(req.model_dump(exclude_none=True), _HDFS_AUTHENTICATION)
        arn = self._new_location_arn()
        location = HdfsLocation(
            LocationArn=arn,
            CreationTime=now(),
            **_changes(req, exclude={"Tags", "KerberosKeytab", "QopConfiguration"}),
            QopConfiguration=_qop(req.QopConfiguration),
            KerberosKeytab=_sealed(req.KerberosKeytab, arn, "KerberosKeytab"),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, HdfsLocation)).describe()

    async def update_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationHdfsRequest, request)
        location = await self._location(req.LocationArn, HdfsLocation)
        changes = _changes(req, exclude={"KerberosKeytab", "QopConfiguration"})
        if req.KerberosKeytab is not None:
            changes["KerberosKeytab"] = _sealed(
                req.KerberosKeytab, location.LocationArn, "KerberosKeytab"
            )
        if req.QopConfiguration is not None:
            changes["QopConfiguration"] = _qop(req.QopConfiguration)
        _check_authentication(
            {**location.model_dump(exclude_none=True), **_changes(req)},
            _HDFS_AUTHENTICATION,
            updating=True,
        )
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    def _new_location_arn(self) -> str:
        return f"{arn_prefix(self.region, self.account)}location/{new_id('loc')}"

    async def list_locations(self, request: dict[str, Any]) -> Response:
        req = parse(ListLocationsRequest, request)
        locations = await self._query("locations", list[Location])
        chosen = [
            location
            for location in sorted(locations, key=lambda x: (x.CreationTime, x.LocationArn))
            if all(
                matches(_location_field(location, f.Name), f.Operator, f.Values)
                for f in req.Filters
            )
        ]
        page, token = paginate(chosen, lambda x: x.LocationArn, req.MaxResults, req.NextToken)
        entries = [{"LocationArn": x.LocationArn, "LocationUri": x.location_uri} for x in page]
        return listed("Locations", entries, token)

    async def delete_location(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        await self._update("delete_location", req.LocationArn)
        return {}


def _sealed(secret: str | None, location_arn: str, field: str = "SecretKey") -> str | None:
    if secret is None:
        return None
    use_key_file(data_dir(), make=True)  # unless given one: the default data directory's
    try:
        return seal(secret, location_arn)
    except SecretError as error:
        raise InvalidRequestException(f"{field}: {error}") from None


def _changes(request: Request, exclude: set[str] | frozenset[str] = frozenset()) -> Response:
    """A request's given fields as a location model takes them: nested shapes as models, lists
    as tuples."""
    changes: Response = {}
    for name in type(request).model_fields:
        value = getattr(request, name)
        if name in exclude or name == "LocationArn" or value is None:
            continue
        if isinstance(value, NfsMountOptionsShape):
            value = NfsMountOptions(**value.model_dump())
        elif isinstance(value, SmbMountOptionsShape):
            value = SmbMountOptions(**value.model_dump())
        elif isinstance(value, Ec2ConfigShape):
            value = Ec2Settings(
                SubnetArn=value.SubnetArn, SecurityGroupArns=tuple(value.SecurityGroupArns)
            )
        elif isinstance(value, list):
            value = tuple(
                HdfsNameNode(**item.model_dump()) if isinstance(item, HdfsNameNodeShape) else item
                for item in value
            )
        changes[name] = value
    return changes


def _smb_secrets(
    request: CreateLocationSmbRequest | UpdateLocationSmbRequest, location_arn: str
) -> Response:
    secrets: Response = {}
    for field in ("Password", "KerberosKeytab"):
        if (value := getattr(request, field)) is not None:
            secrets[field] = _sealed(value, location_arn, field)
    return secrets


# What each AuthenticationType needs, the first being the default.
_SMB_AUTHENTICATION = {
    "NTLM": ("User", "Password"),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}


_HDFS_AUTHENTICATION = {
    "SIMPLE": ("SimpleUser",),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}


def _check_authentication(
    fields: Response, needs: dict[str, tuple[str, ...]], *, updating: bool = False
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


def _qop(given: QopConfigurationShape | None) -> HdfsQop:
    """DataSync's defaults: PRIVACY for both, or the one given for the other."""
    rpc = given and given.RpcProtection
    transfer = given and given.DataTransferProtection
    return HdfsQop(
        RpcProtection=rpc or transfer or "PRIVACY",
        DataTransferProtection=transfer or rpc or "PRIVACY",
    )


def _check_efs_tunnel(fields: Response) -> None:
    """TLS and access points go through EFS's TLS tunnel (efs-proxy, or stunnel with the access
    point), which Ferry does not run: without an address for one, they would be ignored."""
    wanted = [
        name
        for name, given in (
            ("InTransitEncryption=TLS1_2", fields.get("InTransitEncryption") == "TLS1_2"),
            ("AccessPointArn", bool(fields.get("AccessPointArn"))),
        )
        if given
    ]
    if wanted and not fields.get("ServerHostname"):
        raise InvalidRequestException(
            f"{' and '.join(wanted)} need EFS's TLS tunnel, which Ferry does not run: run "
            "efs-proxy (or stunnel) beside the agent and give its address as ServerHostname "
            "and ServerPort."
        )


def _efs_hostname(arn: str) -> str:
    """The DNS name AWS gives an EFS file system (resolvable inside its VPC)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.efs.{region}.amazonaws.com"


def _fsx_hostname(arn: str) -> str:
    """The DNS name AWS gives an FSx file system (Lustre and OpenZFS; a Windows file system's
    is in its Active Directory domain, so give ServerHostname for it)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.fsx.{region}.amazonaws.com"


def _location_field(location: Location, name: str) -> str:
    if name == "LocationUri":
        return location.location_uri
    if name == "LocationType":
        return location.LocationType
    return location.CreationTime.isoformat()
