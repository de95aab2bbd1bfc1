"""The SMB2 messages Ferry builds and parses, the MS-SMB2 constants they are made of, and the
NTSTATUS codes of replies as errnos: the protocol encoding of the `smb` storage, kept apart so
that smb.py reads as storage logic (connections, handles, files written and renamed).

Nothing here touches a connection: SmbStorage sends the requests built here, and the replies
it receives are read here.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileInformationClass, FileRenameInformation, InfoType
from smbprotocol.header import NtStatus, SMB2HeaderResponse
from smbprotocol.open import (
    SMB2CloseRequest,
    SMB2CreateRequest,
    SMB2QueryDirectoryRequest,
    SMB2QueryInfoRequest,
    SMB2SetInfoRequest,
    SMB2WriteRequest,
)
from smbprotocol.structure import Structure

from activities.storage.base import (
    DIR,
    FILE,
    NO_POSIX_DIR_MODE,
    NO_POSIX_FILE_MODE,
    NO_POSIX_ID,
    TEMP_NAME,
    Entry,
    MetadataPolicy,
)

# The keys of the Windows metadata in `Entry.attributes` (smb.py says what each holds).
CREATION_NS = "smb_creation_ns"
FILE_ATTRIBUTES = "smb_file_attributes"
SECURITY_DESCRIPTOR = "smb_security_descriptor"

READONLY, HIDDEN, SYSTEM, ARCHIVE = 0x1, 0x2, 0x4, 0x20
KEPT_ATTRIBUTES = READONLY | HIDDEN | SYSTEM | ARCHIVE
DIRECTORY_ATTRIBUTE, NORMAL, REPARSE_POINT = 0x10, 0x80, 0x400

# 100 ns units between 1601-01-01 (FILETIME) and 1970-01-01.
_FILETIME_1970 = 116_444_736_000_000_000

# Access rights, share access, dispositions and options of SMB2 CREATE (MS-SMB2 2.2.13).
READ_DATA, WRITE_DATA, READ_ATTRIBUTES, WRITE_ATTRIBUTES = 0x1, 0x2, 0x80, 0x100
DELETE, READ_CONTROL, _WRITE_DAC, _WRITE_OWNER = 0x10000, 0x20000, 0x40000, 0x80000
SYNCHRONIZE, SYSTEM_SECURITY = 0x100000, 0x01000000
ADD_FILE, ADD_SUBDIRECTORY = 0x2, 0x4  # a folder's WRITE_DATA and APPEND_DATA
_SHARE_ALL = 0x1 | 0x2 | 0x4  # read | write | delete: never lock out other clients
OPEN, CREATE, OVERWRITE_IF = 1, 2, 5
DIRECTORY_FILE, NON_DIRECTORY_FILE, DELETE_ON_CLOSE = 0x1, 0x40, 0x1000
OPEN_REPARSE_POINT = 0x200000  # the link itself, not what it points to
# What replacing a read-only file fails with: ACCESS_DENIED (Windows), CANNOT_DELETE (samba).
READ_ONLY_IN_THE_WAY = (NtStatus.STATUS_ACCESS_DENIED, NtStatus.STATUS_CANNOT_DELETE)
RELATED = b"\xff" * 16  # "the handle the previous CREATE of this compound opened"
# Security information: owner, group, DACL, SACL.
_OWNER_DACL, SACL = 0x1 | 0x2 | 0x4, 0x8
NETWORK_OPEN_INFORMATION = 34
_BASIC = struct.Struct("<QQQQII")  # FileBasicInformation
_CREATED = struct.Struct("<HBBIQQQQQQII16s")  # the fixed part of a CREATE response
LISTED = struct.Struct("<IIQQQQQQII")  # FileDirectoryInformation before the name

STATUS_ERRNOS: dict[int, tuple[int, str]] = {
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND: (errno.ENOENT, "no such file or folder"),
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND: (errno.ENOENT, "no such file or folder"),
    NtStatus.STATUS_NO_SUCH_FILE: (errno.ENOENT, "no such file or folder"),
    NtStatus.STATUS_DELETE_PENDING: (errno.ENOENT, "being deleted"),
    NtStatus.STATUS_OBJECT_NAME_COLLISION: (errno.EEXIST, "already exists"),
    NtStatus.STATUS_ACCESS_DENIED: (errno.EACCES, "access denied"),
    NtStatus.STATUS_CANNOT_DELETE: (errno.EACCES, "cannot delete (read-only)"),
    NtStatus.STATUS_PRIVILEGE_NOT_HELD: (
        errno.EPERM,
        "privilege not held (copying a SACL needs 'Manage auditing and security log')",
    ),
    NtStatus.STATUS_SHARING_VIOLATION: (
        errno.EACCES,
        "locked by another client (sharing violation)",
    ),
    0xC0000054: (errno.EACCES, "locked by another client (byte-range lock)"),  # FILE_LOCK_CONFLICT
    0xC0000055: (errno.EACCES, "locked by another client (byte-range lock)"),  # LOCK_NOT_GRANTED
    NtStatus.STATUS_DISK_FULL: (errno.ENOSPC, "no space left on the share"),
    0xC0000044: (errno.EDQUOT, "quota exceeded"),  # QUOTA_EXCEEDED
    0xC00000A2: (errno.EROFS, "the share is write-protected"),  # MEDIA_WRITE_PROTECTED
    NtStatus.STATUS_FILE_IS_A_DIRECTORY: (errno.EISDIR, "is a folder"),
    NtStatus.STATUS_NOT_A_DIRECTORY: (errno.ENOTDIR, "not a folder"),
    NtStatus.STATUS_DIRECTORY_NOT_EMPTY: (errno.ENOTEMPTY, "folder not empty"),
    NtStatus.STATUS_OBJECT_NAME_INVALID: (errno.EINVAL, "invalid name for SMB"),
    NtStatus.STATUS_OBJECT_PATH_SYNTAX_BAD: (errno.EINVAL, "invalid path for SMB"),
    NtStatus.STATUS_INVALID_PARAMETER: (errno.EINVAL, "the SMB server refused a parameter"),
    0xC0000106: (errno.ENAMETOOLONG, "name too long for the SMB server"),  # NAME_TOO_LONG
    0xC000005A: (errno.EPERM, "the server cannot take that owner"),  # INVALID_OWNER
    NtStatus.STATUS_STOPPED_ON_SYMLINK: (errno.ELOOP, "a symbolic link on the server"),
    NtStatus.STATUS_PATH_NOT_COVERED: (errno.EREMOTE, "a DFS link to another server"),
    # A handle the server no longer knows: the session was set up again (after a reconnect)
    # or the server dropped the open. Retrying opens the file again by name.
    NtStatus.STATUS_FILE_CLOSED: (errno.ESTALE, "the SMB server closed the handle"),
    NtStatus.STATUS_INVALID_HANDLE: (errno.ESTALE, "the SMB server closed the handle"),
    NtStatus.STATUS_NOT_SUPPORTED: (errno.EOPNOTSUPP, "not supported by the SMB server"),
    NtStatus.STATUS_IO_TIMEOUT: (errno.ETIMEDOUT, "the SMB server timed out"),
    NtStatus.STATUS_NETWORK_NAME_DELETED: (errno.ECONNRESET, "the share went away"),
    NtStatus.STATUS_USER_SESSION_DELETED: (errno.ECONNRESET, "the SMB session ended"),
    0xC000035C: (errno.ECONNRESET, "the SMB session expired"),  # NETWORK_SESSION_EXPIRED
    NtStatus.STATUS_INSUFFICIENT_RESOURCES: (errno.EAGAIN, "the SMB server is short of resources"),
    NtStatus.STATUS_INSUFF_SERVER_RESOURCES: (errno.EAGAIN, "the SMB server is short of resources"),
}


def ns_from_filetime(filetime: int) -> int:
    return (filetime - _FILETIME_1970) * 100


def filetime_from_ns(ns: int) -> int:
    return ns // 100 + _FILETIME_1970


def os_error(status: int, path: str) -> OSError:
    number, reason = STATUS_ERRNOS.get(status, (errno.EIO, f"SMB error 0x{status:08x}"))
    return OSError(number, reason, path)


def left_open(
    messages: list[Structure], results: list[SMB2HeaderResponse | SMBResponseException]
) -> bytes | None:
    """The handle a compound ending in a CLOSE that failed may have left open, if any."""
    last = messages[-1]
    if (
        len(messages) < 2
        or not isinstance(last, SMB2CloseRequest)
        or not isinstance(results[-1], SMBResponseException)
    ):
        return None
    handle: bytes = last["file_id"].get_value()
    if handle != RELATED:
        return handle
    opened = results[0]
    if not isinstance(messages[0], SMB2CreateRequest) or isinstance(opened, SMBResponseException):
        return None  # nothing was opened
    return Opened(opened).file_id


# --- SMB2 requests ---------------------------------------------------------------------------


def create(name: str, access: int, disposition: int = OPEN, options: int = 0) -> SMB2CreateRequest:
    request = SMB2CreateRequest()
    request["impersonation_level"] = 2  # Impersonation
    request["desired_access"] = access
    request["file_attributes"] = 0
    request["share_access"] = _SHARE_ALL
    request["create_disposition"] = disposition
    request["create_options"] = options
    request["buffer_path"] = name.encode("utf-16-le") if name else b"\x00\x00"
    return request


def close(file_id: bytes = RELATED) -> SMB2CloseRequest:
    request = SMB2CloseRequest()
    request["file_id"] = file_id
    return request


def set_info(
    info_type: int, info_class: int, buffer: bytes, additional: int = 0, file_id: bytes = RELATED
) -> SMB2SetInfoRequest:
    request = SMB2SetInfoRequest()
    request["info_type"] = info_type
    request["file_info_class"] = info_class
    request["additional_information"] = additional
    request["file_id"] = file_id
    request["buffer"] = buffer
    return request


def query_info(
    info_type: int, info_class: int, additional: int = 0, file_id: bytes = RELATED
) -> SMB2QueryInfoRequest:
    request = SMB2QueryInfoRequest()
    request["info_type"] = info_type
    request["file_info_class"] = info_class
    request["output_buffer_length"] = 65536
    request["additional_information"] = additional
    request["file_id"] = file_id
    return request


def basic_info(
    *, mtime: int = 0, atime: int = 0, creation: int = 0, attributes: int = 0
) -> SMB2SetInfoRequest:
    """FileBasicInformation; a 0 time or attribute set leaves that value as it is."""
    buffer = _BASIC.pack(creation, atime, mtime, 0, attributes, 0)
    return set_info(InfoType.SMB2_0_INFO_FILE, FileInformationClass.FILE_BASIC_INFORMATION, buffer)


def metadata_info(entry: Entry, policy: MetadataPolicy, attributes: int) -> SMB2SetInfoRequest:
    """The times `policy` keeps, the creation time the source gave, and `attributes`."""
    creation = (entry.attributes or {}).get(CREATION_NS)
    return basic_info(
        mtime=filetime_from_ns(entry.mtime_ns) if policy.mtime else 0,
        atime=filetime_from_ns(entry.atime_ns) if policy.atime else 0,
        creation=0 if creation is None else filetime_from_ns(creation),
        attributes=attributes,
    )


def attribute_bits(wanted: int | None) -> int:
    """What FileBasicInformation sets for the source's attributes (0: keep the server's);
    FILE_ATTRIBUTE_NORMAL stands for "none of them", which 0 cannot say."""
    return 0 if wanted is None else wanted or NORMAL


def rename(target: str, *, replace: bool) -> SMB2SetInfoRequest:
    info = FileRenameInformation()
    info["replace_if_exists"] = replace
    info["file_name"] = target
    return set_info(
        InfoType.SMB2_0_INFO_FILE, FileInformationClass.FILE_RENAME_INFORMATION, info.pack()
    )


def security_information(flags: str) -> int:
    """The parts of a security descriptor SecurityDescriptorCopyFlags copies."""
    return _OWNER_DACL | (SACL if flags == "OWNER_DACL_SACL" else 0)


def security_access(flags: str) -> int:
    """The access rights a handle needs to set those parts (none for NONE)."""
    if flags == "NONE":
        return 0
    sacl = SYSTEM_SECURITY if flags == "OWNER_DACL_SACL" else 0
    return _WRITE_DAC | _WRITE_OWNER | sacl


def set_security(descriptor: bytes, flags: str) -> SMB2SetInfoRequest:
    info = security_information(flags)
    return set_info(InfoType.SMB2_0_INFO_SECURITY, 0, descriptor, info)


def write_request(file_id: bytes, offset: int, data: bytes) -> SMB2WriteRequest:
    request = SMB2WriteRequest()
    request["length"] = len(data)
    request["offset"] = offset
    request["file_id"] = file_id
    request["buffer"] = data
    return request


def query_directory(
    file_id: bytes, *, restart: bool = False, size: int = 65536
) -> SMB2QueryDirectoryRequest:
    """The next entries of the folder open as `file_id`, at most `size` bytes of them."""
    request = SMB2QueryDirectoryRequest()
    request["file_information_class"] = FileInformationClass.FILE_DIRECTORY_INFORMATION
    request["flags"] = 0x1 if restart else 0  # SMB2_RESTART_SCANS
    request["file_id"] = file_id
    request["output_buffer_length"] = size
    request["buffer"] = "*".encode("utf-16-le")
    return request


# --- SMB2 responses --------------------------------------------------------------------------


def payload(result: SMB2HeaderResponse) -> bytes:
    return result["data"].get_value()


def out_buffer(result: SMB2HeaderResponse) -> bytes:
    """The output buffer of a QUERY_INFO or QUERY_DIRECTORY response."""
    data = payload(result)
    offset, length = struct.unpack_from("<HI", data, 2)
    start = offset - 64  # offsets count from the start of the SMB2 header
    return data[start : start + length]


class Opened:
    """What a CREATE response says of the file it opened."""

    __slots__ = ("access_ns", "attributes", "change", "creation", "file_id", "size", "write")

    def __init__(self, result: SMB2HeaderResponse) -> None:
        fields = _CREATED.unpack_from(payload(result))
        self.creation, access, self.write, self.change = fields[4:8]
        self.access_ns = ns_from_filetime(access)
        self.size, self.attributes, self.file_id = fields[9], fields[10], fields[12]

    def entry(self, path: str) -> Entry:
        return _entry(path, self.size, self.write, self.access_ns, self.creation, self.attributes)


def _entry(path: str, size: int, write: int, access_ns: int, creation: int, attrs: int) -> Entry:
    is_dir = bool(attrs & DIRECTORY_ATTRIBUTE)
    return Entry(
        path,
        DIR if is_dir else FILE,
        0 if is_dir else size,
        ns_from_filetime(write),
        access_ns,
        NO_POSIX_DIR_MODE if is_dir else NO_POSIX_FILE_MODE,
        NO_POSIX_ID,
        NO_POSIX_ID,
        attributes={
            CREATION_NS: ns_from_filetime(creation),
            FILE_ATTRIBUTES: attrs & KEPT_ATTRIBUTES,
        },
    )


def directory_entries(buffer: bytes, prefix: str) -> Iterator[tuple[Entry, int]]:
    """The entries of a FILE_DIRECTORY_INFORMATION buffer with their attribute bits, without
    '.', '..' and the temporary files of writes in progress."""
    offset = 0
    while True:
        (following, _, creation, access, write, _, size, _, attrs, length) = LISTED.unpack_from(
            buffer, offset
        )
        start = offset + LISTED.size
        name = buffer[start : start + length].decode("utf-16-le", errors="surrogatepass")
        if name not in (".", "..") and not TEMP_NAME.fullmatch(name):
            entry = _entry(prefix + name, size, write, ns_from_filetime(access), creation, attrs)
            yield entry, attrs
        if not following:
            return
        offset += following
