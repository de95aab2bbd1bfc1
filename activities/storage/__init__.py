"""Storage adapters, one module per protocol family, behind the interface in `base`."""

from __future__ import annotations

import base64
import dataclasses
from typing import TYPE_CHECKING

from activities.storage.base import MetadataPolicy, Storage, StorageError
from activities.storage.local import LocalStorage
from models.errors import ErrorCode
from models.locations import (
    FsxLustreLocation,
    HdfsLocation,
    LocalLocation,
    Location,
    NfsServerLocation,
    SmbLocation,
    SmbServerLocation,
)
from models.options import Options

if TYPE_CHECKING:
    from activities.storage.kerberos import Kerberos


def open_storage(location: Location, temp_tag: str = "") -> Storage:
    """The storage of a location. `temp_tag` names this execution's temporary files.

    Protocol clients are imported only by the workers that reach such a location.
    """
    if isinstance(location, LocalLocation):
        return LocalStorage(location.Path, temp_tag)
    if isinstance(location, FsxLustreLocation):
        return LocalStorage(location.path, temp_tag)
    if isinstance(location, NfsServerLocation):
        from activities.storage.nfs import NfsStorage

        return NfsStorage(
            location.ServerHostname,
            location.ServerPort,
            location.Subdirectory,
            location.MountOptions.Version,
            temp_tag,
        )
    if isinstance(location, SmbServerLocation):
        from activities.storage.smb import SmbStorage

        return SmbStorage(
            location.ServerHostname,
            location.ServerPort,
            location.Subdirectory,
            location.User,
            _unsealed(location.Password, location.LocationArn),
            location.Domain,
            location.MountOptions.Version,
            temp_tag,
            _kerberos(location) if isinstance(location, SmbLocation) else None,
        )
    if isinstance(location, HdfsLocation):
        from activities.storage.hdfs import HdfsStorage

        return HdfsStorage(
            [(node.Hostname, node.Port) for node in location.NameNodes],
            location.path,
            location.SimpleUser or "",
            block_size=location.BlockSize,
            replication=location.ReplicationFactor,
            temp_tag=temp_tag,
            kerberos=_kerberos(location),
        )
    from activities.storage.objects import ObjectStorage

    return ObjectStorage(location, temp_tag)


def _kerberos(location: SmbLocation | HdfsLocation) -> Kerberos | None:
    """AuthenticationType KERBEROS's principal, keytab and krb5.conf."""
    if location.AuthenticationType != "KERBEROS":
        return None
    from activities.storage.kerberos import Kerberos

    return Kerberos(
        location.KerberosPrincipal or "",
        base64.b64decode(_unsealed(location.KerberosKeytab, location.LocationArn)),
        base64.b64decode(location.KerberosKrb5Conf or ""),
    )


def _unsealed(sealed: str | None, location_arn: str) -> str:
    from api.secrets import SecretError, unseal

    try:
        return unseal(sealed, location_arn) if sealed else ""
    except SecretError as error:
        raise StorageError(str(error), code=ErrorCode.LOCATION_UNAVAILABLE) from None


# The mtime resolution each location type keeps, to compare times without opening a storage
# (Ferry writes object storage mtimes in nanoseconds, in user metadata; SMB counts 100 ns).
_TIME_RESOLUTION_NS = {
    "LOCAL": 1,
    "S3": 1,
    "OBJECT_STORAGE": 1,
    "NFS": 1,
    "EFS": 1,
    "FSX_OPENZFS": 1,
    "FSX_LUSTRE": 1,
    "SMB": 100,
    "FSX_WINDOWS": 100,
    "HDFS": 1_000_000,  # milliseconds
}


def time_resolution_ns(*locations: Location) -> int:
    """The coarsest mtime resolution among `locations`: times closer than this are equal."""
    return max(_TIME_RESOLUTION_NS[location.LocationType] for location in locations)


# Files a batch works on at once: one where a file costs little more than its bytes (local
# disks, CPU-bound), several where each costs round trips to a server (a PUT, a CREATE).
_FILES_IN_FLIGHT = {
    "LOCAL": 1,
    "S3": 8,
    "OBJECT_STORAGE": 8,
    "NFS": 8,
    "EFS": 8,
    "FSX_OPENZFS": 8,
    "FSX_LUSTRE": 8,
    "SMB": 8,
    "FSX_WINDOWS": 8,
    "HDFS": 8,
}


def files_in_flight(*locations: Location) -> int:
    return max(_FILES_IN_FLIGHT[location.LocationType] for location in locations)


# Where files have no owner, group or permission bits: DataSync neither writes nor compares them
# there (a source of that kind gives its entries the defaults, NO_POSIX_ID and the like).
_NO_POSIX = frozenset({"SMB", "FSX_WINDOWS"})


def carries_attributes(source: Location, destination: Location) -> bool:
    """Whether a folder's or a metadata-only entry's `Storage.attributes` are worth reading from
    the source: SMB's, between SMB shares (files carry theirs through the reader anyway)."""
    return source.LocationType in _NO_POSIX and destination.LocationType in _NO_POSIX


# Where a symbolic link's own times may not be kept: NFS servers differ on a SETATTR of a link's
# times (nfs-ganesha's VFS back end ignores it), so they are set but never compared there.
_NO_LINK_TIMES = frozenset({"NFS", "EFS", "FSX_OPENZFS"})


# Where owners and groups are names (HDFS's), and where names can be kept (object storage keeps
# them in file-owner and file-group). HDFS has no numeric ids to write nor compare, and keeps
# permission bits and the sticky bit but not setuid or setgid.
_NAMED_OWNERS = frozenset({"HDFS"})
_KEEPS_NAMES = _NAMED_OWNERS | {"S3", "OBJECT_STORAGE"}


def metadata_policy(options: Options, destination: Location | None) -> MetadataPolicy:
    """What a transfer to `destination` writes and compares, from the task's options."""
    policy = MetadataPolicy.from_options(options)
    if destination is None:
        return policy
    if destination.LocationType in _NO_POSIX:
        policy = dataclasses.replace(policy, uid=False, gid=False, mode=False, devices=False)
    if destination.LocationType in _KEEPS_NAMES:
        policy = dataclasses.replace(policy, owner_name=policy.uid, group_name=policy.gid)
    if destination.LocationType in _NAMED_OWNERS:
        policy = dataclasses.replace(policy, uid=False, gid=False, devices=False, mode_bits=0o1777)
    if destination.LocationType in _NO_LINK_TIMES:
        policy = dataclasses.replace(policy, link_times=False)
    return policy
