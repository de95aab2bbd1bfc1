"""`smb` locations: a folder of an SMB share (DataSync's Subdirectory "/share/path/inside"),
reached over SMB 2/3 with smbprotocol.

Every storage holds its own connection, session and tree connect, made on first use: Ferry
runs one storage per thread, and a connection of its own keeps one thread's failures, dialect
and credentials from another's. smbclient's pooled high-level API is not used: its pool is
keyed by host and port and reuses a session by user name alone (a wrong password would go
unnoticed after a right one), it cannot restrict the dialect, and each of its calls opens the
file again. Here each file is one handle, and small files travel in two compound requests:
create, write, set the times, attributes and security descriptor; then, once all of that is
known to have succeeded, rename into place and close.

SMB has no POSIX metadata: entries get DataSync's defaults (NO_POSIX_ID, NO_POSIX_FILE_MODE,
NO_POSIX_DIR_MODE). Windows metadata rides in `Entry.attributes`, from an SMB source to an
SMB destination (other destinations ignore it):

- "smb_creation_ns": the creation time, in ns since 1970.
- "smb_file_attributes": the READONLY, HIDDEN, SYSTEM and ARCHIVE bits (others are masked).
- "smb_security_descriptor": a callable taking SecurityDescriptorCopyFlags ("OWNER_DACL" or
  "OWNER_DACL_SACL") and returning the self-relative security descriptor (owner, group and
  DACL, plus the SACL for OWNER_DACL_SACL). It is only called where a destination copies it.

Source files are opened with share access read|write|delete and held only while read, so that
Ferry never locks out another client; a file another client holds exclusively is reported as
locked (EACCES, not retried).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from smbprotocol import Dialects
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBAuthenticationError, SMBException, SMBResponseException
from smbprotocol.file_info import FileInformationClass, FileLinkInformation, InfoType
from smbprotocol.header import NtStatus, SMB2HeaderResponse
from smbprotocol.open import SMB2ReadRequest
from smbprotocol.session import Session
from smbprotocol.structure import Structure
from smbprotocol.tree import TreeConnect

from activities.storage.base import (
    DIR,
    FILE,
    SYMLINK,
    TRANSIENT_ERRNOS,
    Entry,
    MetadataError,
    MetadataPolicy,
    Storage,
    StorageError,
    describe_error,
    listing_key,
    listing_slice,
    place,
    temp_name,
    unsealed,
)
from activities.storage.kerberos import Kerberos, kerberos
from activities.storage.smbcodec import (
    ADD_FILE,
    ADD_SUBDIRECTORY,
    CREATE,
    DELETE,
    DELETE_ON_CLOSE,
    DIRECTORY_ATTRIBUTE,
    DIRECTORY_FILE,
    FILE_ATTRIBUTES,
    NETWORK_OPEN_INFORMATION,
    NON_DIRECTORY_FILE,
    NORMAL,
    OPEN,
    OPEN_REPARSE_POINT,
    OVERWRITE_IF,
    READ_ATTRIBUTES,
    READ_CONTROL,
    READ_DATA,
    READ_ONLY_IN_THE_WAY,
    READONLY,
    RELATED,
    REPARSE_POINT,
    SACL,
    SECURITY_DESCRIPTOR,
    STATUS_ERRNOS,
    SYNCHRONIZE,
    SYSTEM_SECURITY,
    WRITE_ATTRIBUTES,
    WRITE_DATA,
    Opened,
    attribute_bits,
    basic_info,
    close,
    create,
    directory_entries,
    left_open,
    metadata_info,
    os_error,
    out_buffer,
    payload,
    query_directory,
    query_info,
    rename,
    security_access,
    security_information,
    set_info,
    set_security,
    write_request,
)
from models.errors import ErrorCode
from models.locations import SmbLocation, SmbServerLocation

REPARSE_POINT_SKIPPED = "a reparse point (junction or symbolic link), which Ferry does not follow"

# DataSync's SMB Version, as the one dialect it restricts negotiation to (None: negotiate).
DIALECTS: dict[str, int | None] = {
    "AUTOMATIC": None,
    "SMB2_0": Dialects.SMB_2_0_2,
    "SMB2": Dialects.SMB_2_1_0,
    "SMB3": Dialects.SMB_3_0_2,
}
CONNECT_TIMEOUT = 5.0
_CREDIT_BYTES = 65536  # what one SMB2 credit carries
_CREDITS = 512  # asked for once: room for 8 MiB reads and writes, and compounds
_CHUNK = 8 << 20
# A server that stops answering fails the call (as a lost connection, retried) instead of
# holding the batch forever; an 8 MiB write takes far less even on a slow link.
_REPLY_SECONDS = 120
_BUFFERED = 1 << 20  # a file this small is sent with its create, metadata and close at once
_LISTING_BYTES = 1 << 20  # of a folder's entries in one reply, where the server allows


@contextlib.contextmanager
def _mapped(path: str) -> Iterator[None]:
    """smbprotocol's exceptions as OSErrors with an errno, which Ferry knows how to handle."""
    try:
        yield
    except SMBResponseException as error:
        raise os_error(error.status, path) from error
    except SMBException as error:  # the connection closed, or a reply never came
        raise OSError(errno.ECONNRESET, f"lost the SMB connection: {error}", path) from error


def _raise_first(results: list[SMB2HeaderResponse | SMBResponseException], path: str) -> None:
    for result in results:
        if isinstance(result, SMBResponseException):
            raise os_error(result.status, path) from result


def _raise_metadata(results: list[SMB2HeaderResponse | SMBResponseException], path: str) -> None:
    """A metadata step that failed: a MetadataError (the file is not kept) unless retrying
    may help. A status without an errno of its own is the server refusing that metadata (a
    malformed descriptor, say), not a failing server: no retry sets it."""
    for result in results:
        if isinstance(result, SMBResponseException):
            error = os_error(result.status, path)
            if result.status in STATUS_ERRNOS and error.errno in TRANSIENT_ERRNOS:
                raise error from result
            raise MetadataError(f"cannot set SMB metadata: {describe_error(error)}") from result


class _SmbReader:
    __slots__ = ("file_id", "offset", "opened", "path", "storage")

    def __init__(self, storage: SmbStorage, path: str, opened: Opened) -> None:
        self.storage = storage
        self.path = path
        self.opened = opened
        self.file_id = opened.file_id
        self.offset = 0

    def read(self, size: int) -> bytes:
        request = SMB2ReadRequest()
        request["length"] = self.storage._chunk(size, self.storage._max_read)
        request["offset"] = self.offset
        request["file_id"] = self.file_id
        (result,) = self.storage._exchange([request])
        if isinstance(result, SMBResponseException):
            if result.status == NtStatus.STATUS_END_OF_FILE:
                return b""
            raise os_error(result.status, self.path) from result
        data = payload(result)
        offset, length = struct.unpack_from("<BxI", data, 2)
        start = offset - 64
        self.offset += length
        return data[start : start + length]

    def stat(self) -> Entry:
        entry = self.opened.entry(self.path)
        entry.attributes[SECURITY_DESCRIPTOR] = self.storage._descriptor_getter(self.path)  # type: ignore[index]
        return entry

    def version(self) -> tuple[int, int, int]:
        query = query_info(
            InfoType.SMB2_0_INFO_FILE, NETWORK_OPEN_INFORMATION, file_id=self.file_id
        )
        (result,) = self.storage._exchange([query])
        _raise_first([result], self.path)
        _, _, write, change, _, size, _, _ = struct.unpack_from("<QQQQQQII", out_buffer(result))
        return (size, write, change)


class _SmbWriter:
    """Writes under the temporary name and renames into place, through one handle. A file of
    at most _BUFFERED bytes is kept until commit and sent with its create and metadata in one
    compound; the rename and close follow in a second, once the metadata is known to be set:
    samba goes on with a compound after a failed step, and a rename sent with the metadata
    would replace the previous file with one that is then deleted."""

    __slots__ = (
        "buffer", "created", "entry", "file_id", "final", "offset", "path", "policy", "renamed",
        "storage", "temp",
    )  # fmt: skip

    def __init__(
        self, storage: SmbStorage, path: str, temp: str, entry: Entry, policy: MetadataPolicy
    ) -> None:
        self.storage = storage
        self.path = path
        self.temp = temp  # share-relative names
        self.final = storage._name(path)
        self.entry = entry
        self.policy = policy
        self.buffer = bytearray()
        self.file_id: bytes | None = None  # None once a CLOSE was sent, even a failed one
        self.created = False  # the temporary file exists
        self.renamed = False  # the file has its final name: abort must not delete it
        self.offset = 0

    def _access(self) -> int:
        access = WRITE_DATA | READ_ATTRIBUTES | WRITE_ATTRIBUTES | DELETE | SYNCHRONIZE
        if self._descriptor_source():
            access |= security_access(self.policy.security_descriptor)
        return access

    def _descriptor_source(self) -> Callable[[str], bytes] | None:
        return (self.entry.attributes or {}).get(SECURITY_DESCRIPTOR)

    def _wanted_attributes(self) -> int | None:
        return (self.entry.attributes or {}).get(FILE_ATTRIBUTES)

    def _opening(self) -> list[Structure]:
        """The CREATE of the temporary file, and the data buffered so far."""
        opening = create(self.temp, self._access(), OVERWRITE_IF, NON_DIRECTORY_FILE)
        messages: list[Structure] = [opening]
        step = self.storage._max_write
        for start in range(0, len(self.buffer), step):
            data = bytes(self.buffer[start : start + step])
            messages.append(write_request(RELATED, start, data))
        self.offset = len(self.buffer)
        self.buffer.clear()
        return messages

    def _opened(self, results: list[SMB2HeaderResponse | SMBResponseException]) -> None:
        """Take the handle the CREATE of `results` opened, then raise what failed after it."""
        _raise_first(results[:1], self.path)
        self.file_id = Opened(results[0]).file_id  # type: ignore[arg-type]
        self.created = True
        _raise_first(results[1:], self.path)

    def write(self, data: bytes | memoryview) -> None:
        if self.file_id is None and not self.created:
            if len(self.buffer) + len(data) <= _BUFFERED:
                self.buffer += data
                return
            results = self.storage._exchange_creating(self._opening(), self.path)
            self._opened(results)
        view = memoryview(data)
        while view:
            size = self.storage._chunk(len(view), self.storage._max_write)
            request = write_request(self.file_id, self.offset, bytes(view[:size]))
            _raise_first(self.storage._exchange([request]), self.path)
            self.offset += size
            view = view[size:]

    def commit(self, *, exclusive: bool) -> bool:
        """The metadata is set on the temporary file, then the file renamed into place: a
        metadata failure leaves the file under the final name as it was (as local.py does)."""
        results, opening = self._send_metadata()
        self._check_metadata(results, opening)
        how = SmbServerLocation.CAPABILITIES.exclusive_commit
        return place(self, how, self.temp, self.final, exclusive=exclusive)

    def _metadata(self) -> list[Structure]:
        """Times, attributes but READONLY (set after the rename, since a read-only file could
        not be renamed) and the security descriptor, for the handle open or being opened."""
        wanted = self._wanted_attributes()
        without_readonly = None if wanted is None else wanted & ~READONLY
        messages = [metadata_info(self.entry, self.policy, attribute_bits(without_readonly))]
        source = self._descriptor_source()
        if self.policy.security_descriptor != "NONE" and source is not None:
            flags = self.policy.security_descriptor
            messages.append(set_security(source(flags), flags))
        if self.file_id is not None:
            for message in messages:
                message["file_id"] = self.file_id
        return messages

    def _send_metadata(self) -> tuple[list[SMB2HeaderResponse | SMBResponseException], int]:
        """One compound: [create, writes,] then the metadata, after the last write so that
        closing keeps the times; the handle stays open. The replies, and how many of them
        answer the create and writes."""
        metadata = self._metadata()  # first: reading the source's descriptor may fail
        if self.file_id is not None:
            return self.storage._exchange(metadata), 0
        opening = self._opening()
        return self.storage._exchange_creating(opening + metadata, self.path), len(opening)

    def _check_metadata(
        self, results: list[SMB2HeaderResponse | SMBResponseException], opening: int
    ) -> None:
        if opening:
            self._opened(results[:opening])
        _raise_metadata(results[opening:], self.path)

    # The moves `place` makes the commit of: a rename through the open handle, told whether
    # it may replace (SMB declares BY_RENAME).

    def rename(self, temp: str, final: str, *, replace: bool) -> None:
        """[rename, close]; a file to be read-only keeps its handle for READONLY, set last."""
        assert self.file_id is not None  # opened by _send_metadata or write
        wanted = self._wanted_attributes()
        readonly = wanted is not None and bool(wanted & READONLY)
        renaming = rename(final, replace=replace)
        renaming["file_id"] = self.file_id
        closing = [] if readonly else [close(self.file_id)]
        results = self.storage._exchange([renaming, *closing])
        if closing:
            self.file_id = None  # closed, by _exchange itself where the CLOSE failed
        renamed = results[0]
        if isinstance(renamed, SMBResponseException):
            if renamed.status == NtStatus.STATUS_OBJECT_NAME_COLLISION and not replace:
                raise FileExistsError(errno.EEXIST, "a file is there", self.path)
            if renamed.status not in READ_ONLY_IN_THE_WAY or not replace:
                raise os_error(renamed.status, self.path) from renamed
            self._replace_read_only()
        self.renamed = True
        if readonly:
            self._set_read_only(wanted)  # type: ignore[arg-type]

    def link(self, temp: str, final: str) -> None:
        raise OSError(errno.EOPNOTSUPP, "SMB commits by a rename that does not replace")

    def drop(self, temp: str) -> None:
        self.abort()

    def _replace_read_only(self) -> None:
        """A read-only file is in the way: clear its READONLY, then rename again, through the
        handle where it is still open, else by name."""
        self.storage._clear_read_only(self.final, self.path)
        renaming = rename(self.final, replace=True)
        if self.file_id is not None:
            renaming["file_id"] = self.file_id
            messages: list[Structure] = [renaming]
        else:
            messages = [create(self.temp, DELETE | SYNCHRONIZE), renaming, close()]
        # The CLOSE is left out: once renamed, a failed close changes nothing for the file.
        _raise_first(self.storage._exchange(messages)[:2], self.path)

    def _set_read_only(self, wanted: int) -> None:
        assert self.file_id is not None  # _move kept it open
        update = basic_info(attributes=wanted)
        update["file_id"] = self.file_id
        results = self.storage._exchange([update, close(self.file_id)])
        self.file_id = None
        _raise_metadata(results[:1], self.path)

    def abort(self) -> None:
        self.buffer.clear()
        file_id, self.file_id = self.file_id, None
        if self.renamed:  # in place under its final name: only the handle is let go
            if file_id is not None:
                self.storage._exchange([close(file_id)])
            return
        if file_id is not None and self._deleted_through(file_id):
            self.created = False
        if self.created:
            self.storage._delete(self.temp, self.path)
            self.created = False

    def _deleted_through(self, file_id: bytes) -> bool:
        """Delete the temporary file through its handle, which is closed (nothing is then left
        under its name); False where the server no longer knows the handle."""
        delete = set_info(
            InfoType.SMB2_0_INFO_FILE,
            FileInformationClass.FILE_DISPOSITION_INFORMATION,
            b"\x01",
            file_id=file_id,
        )
        results = self.storage._exchange([delete, close(file_id)])
        return not isinstance(results[0], SMBResponseException)


class SmbStorage(Storage):
    def __init__(
        self,
        host: str,
        port: int,
        subdirectory: str,
        user: str,
        password: str,
        domain: str = "",
        version: str = "AUTOMATIC",
        temp_tag: str = "",
        kerberos: Kerberos | None = None,
    ) -> None:
        self.host = host
        self.port = port
        parts = [p for p in subdirectory.replace("\\", "/").split("/") if p]
        self.share = parts[0] if parts else ""
        self._base = "\\".join(parts[1:])  # the location root, relative to the share
        self.user = user
        self._password = password
        self.domain = domain
        self.version = version
        self._temp_tag = temp_tag
        self._kerberos = kerberos
        self._connection: Connection | None = None
        self._session: Session | None = None
        self._tree: TreeConnect | None = None
        self._max_read = self._max_write = 65536
        self._rejected: list[tuple[str, str]] = []

    def close(self) -> None:
        connection, self._connection, self._session, self._tree = self._connection, None, None, None
        if connection is not None:
            # The socket is closed without a TREE_DISCONNECT and LOGOFF: the server ends the
            # session with its connection, and smbprotocol waits for those answers without a
            # time limit, so a server that stopped answering would hold a worker's shutdown.
            with contextlib.suppress(Exception):
                connection.disconnect(close=False)

    def __del__(self) -> None:
        # Owners close their storages, but a storage dropped on a failure path may be
        # collected on any thread: its socket is shut without a wait (no LOGOFF, no join of
        # smbprotocol's thread, which then sees the end of the stream and closes the socket).
        connection = getattr(self, "_connection", None)  # absent where __init__ failed
        if connection is not None:
            with contextlib.suppress(OSError):  # closed already
                connection.transport._sock.shutdown(socket.SHUT_RDWR)

    # --- the connection ----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> TreeConnect:
        """The tree connect of the share, connecting first where needed; StorageError with
        the cause and the fix when that fails."""
        if self._tree is not None and self._connection and self._connection.transport.connected:
            return self._tree
        self.close()
        if self.version == "SMB1":
            raise StorageError(
                "SMB1 is not supported (it is obsolete and insecure, and Ferry's SMB client "
                "speaks SMB 2 and 3 only): set Version to AUTOMATIC, SMB2 or SMB3",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            )
        if self.version not in DIALECTS:
            raise StorageError(
                f"unknown SMB Version {self.version!r}", code=ErrorCode.LOCATION_UNAVAILABLE
            )
        if not self.share:
            raise StorageError(
                "the Subdirectory names no share: it must be /share/path",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            )
        connection = Connection(uuid.uuid4(), self.host, self.port, require_signing=True)
        try:
            connection.connect(dialect=DIALECTS[self.version], timeout=CONNECT_TIMEOUT)
        except (ValueError, OSError, SMBException) as error:
            with contextlib.suppress(Exception):
                connection.disconnect(close=False)
            cause = error.__cause__ or error
            raise StorageError(
                f"cannot reach the SMB server {self._where}: {cause}",
                transient=True,
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        self._connection = connection
        try:
            if self._kerberos is not None:
                user, password, protocol = self._kerberos.principal, None, "kerberos"
                self._kerberos.install()
            else:
                user = f"{self.domain}\\{self.user}" if self.domain else self.user
                password, protocol = self._password, "ntlm"
            session = self._session = self._logon(connection, user, password, protocol)
            tree = TreeConnect(session, rf"\\{self.host}\{self.share}")
            try:
                tree.connect()
            except SMBResponseException as error:
                if error.status == NtStatus.STATUS_BAD_NETWORK_NAME:
                    message = (
                        f"the share {self.share!r} does not exist on {self.host}: "
                        "check Subdirectory"
                    )
                else:
                    message = (
                        f"cannot connect to the share {self.share!r} on {self._where}: "
                        f"{describe_error(os_error(error.status, ''))}"
                    )
                raise StorageError(message, code=ErrorCode.LOCATION_UNAVAILABLE) from error
            connection.echo(sid=session.session_id, credit_request=_CREDITS)
        except SMBException as error:
            self.close()
            raise StorageError(
                f"lost the connection to the SMB server {self._where}: {error}",
                transient=True,
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        except BaseException:
            self.close()
            raise
        if connection.supports_multi_credit:
            self._max_read = min(connection.max_read_size, _CHUNK)
            self._max_write = min(connection.max_write_size, _CHUNK)
        self._tree = tree
        return tree

    def _logon(
        self, connection: Connection, user: str, password: str | None, protocol: str
    ) -> Session:
        session = Session(
            connection, user, password, require_encryption=False, auth_protocol=protocol
        )
        kerberos = protocol == "kerberos"
        who = f"principal {user!r}" if kerberos else f"user {user!r}"
        fix = (
            "check KerberosPrincipal, KerberosKeytab and KerberosKrb5Conf"
            if kerberos
            else "check User, Password and Domain"
        )
        try:
            session.connect()
        except (SMBAuthenticationError, SMBResponseException) as error:
            # GSSAPI's failures (no ticket from the KDC, a wrong keytab) come wrapped in
            # SMBAuthenticationError: their reason is the clue.
            cause = f" ({error})" if kerberos else ""
            raise StorageError(
                f"the SMB server {self._where} refused the logon of {who}: logon "
                f"failure{cause}: {fix}",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        except SMBException:
            raise  # the connection failed: _connect says so
        except Exception as error:
            # pyspnego and gssapi raise their own errors where they cannot even begin.
            raise StorageError(
                f"cannot log on to the SMB server {self._where} as {who}: "
                f"{type(error).__name__}: {error}: {fix}",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        return session

    def _exchange(
        self, messages: list[Structure]
    ) -> list[SMB2HeaderResponse | SMBResponseException]:
        """Send `messages` as one related compound and wait for every reply; a failed step is
        returned as its exception, so that the caller sees which one failed."""
        tree = self._connect()
        connection = tree.session.connection
        with _mapped(""):
            requests = connection.send_compound(
                messages, tree.session.session_id, tree.tree_connect_id, related=True
            )
            results: list[SMB2HeaderResponse | SMBResponseException] = []
            for request in requests:
                try:
                    reply = connection.receive(
                        request, timeout=_REPLY_SECONDS, resolve_symlinks=False
                    )
                    results.append(reply)
                except SMBResponseException as error:
                    results.append(error)
            handle = left_open(messages, results)
            if handle is not None:
                # A server may fail the rest of a compound after one failed step, its CLOSE
                # too (Windows does): the handle is closed on its own, never left open. A
                # handle the server no longer knows is closed all the same.
                with contextlib.suppress(SMBResponseException):
                    connection.receive(
                        connection.send(
                            close(handle), tree.session.session_id, tree.tree_connect_id
                        ),
                        timeout=_REPLY_SECONDS,
                    )
        return results

    def _delete(self, name: str, path: str) -> None:
        """Delete the file `name` (share-relative) unless it is gone already."""
        options = NON_DIRECTORY_FILE | DELETE_ON_CLOSE
        opening = create(name, DELETE | SYNCHRONIZE, OPEN, options)
        opened = self._exchange([opening, close()])[0]
        if isinstance(opened, SMBResponseException):
            error = os_error(opened.status, path)
            if error.errno != errno.ENOENT:
                raise error from opened

    def _exchange_creating(
        self, messages: list[Structure], path: str
    ) -> list[SMB2HeaderResponse | SMBResponseException]:
        """An exchange that creates `path` (or its temporary file) first: a missing folder is
        made (batches run in parallel, so a parent may not exist yet) and the exchange sent
        again."""
        results = self._exchange(messages)
        first = results[0]
        if isinstance(first, SMBResponseException) and first.status in (
            NtStatus.STATUS_OBJECT_PATH_NOT_FOUND,
            NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
        ):
            parent = path.rpartition("/")[0]
            if parent:
                self.make_dir(parent)
                results = self._exchange(messages)
        return results

    def _chunk(self, length: int, largest: int) -> int:
        """How much of `length` one READ or WRITE may carry: the negotiated size, and what the
        credits granted allow."""
        connection = self._connection
        assert connection is not None
        if not connection.supports_multi_credit:
            return min(length, 65536)
        window = connection.sequence_window
        credits = max(1, window["high"] - window["low"])
        return max(1, min(length, largest, credits * _CREDIT_BYTES))

    def _name(self, path: str) -> str:
        """`path` as a name relative to the share; EINVAL for a name SMB cannot hold."""
        for part in path.split("/") if path else ():
            _check_name(part, path)
        inside = path.replace("/", "\\")
        return f"{self._base}\\{inside}" if self._base and inside else self._base or inside

    def _descriptor_getter(self, path: str) -> Callable[[str], bytes]:
        def descriptor(flags: str) -> bytes:
            additional = security_information(flags)
            access = READ_CONTROL | (SYSTEM_SECURITY if additional & SACL else 0)
            query = query_info(InfoType.SMB2_0_INFO_SECURITY, 0, additional)
            results = self._exchange([create(self._name(path), access), query, close()])
            _raise_first(results[:2], path)
            return out_buffer(results[1])  # type: ignore[arg-type]

        return descriptor

    def _clear_read_only(self, name: str, path: str) -> None:
        """Take READONLY off the entry `name` (share-relative), keeping its other attributes."""
        access = READ_ATTRIBUTES | WRITE_ATTRIBUTES
        opening = create(name, access, OPEN, OPEN_REPARSE_POINT)  # the entry, not a target
        results = self._exchange([opening, close()])
        _raise_first(results[:1], path)
        attributes = Opened(results[0]).attributes  # type: ignore[arg-type]
        if attributes & READONLY:
            cleared = attributes & ~READONLY & ~DIRECTORY_ATTRIBUTE
            update = [opening, basic_info(attributes=cleared or NORMAL), close()]
            _raise_first(self._exchange(update), path)

    # --- the interface -----------------------------------------------------------------------

    def check(self, *, writable: bool) -> None:
        self._connect()
        inside = self._base.replace("\\", "/")
        where = f"in the share {self.share!r} on {self.host}: check Subdirectory"
        try:
            entry = self.stat("")
        except OSError as error:
            raise StorageError(
                f"cannot open the folder {inside or '/'!r} {where} ({describe_error(error)})",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        if entry is None:
            raise StorageError(
                f"the folder {inside!r} does not exist {where}", code=ErrorCode.LOCATION_UNAVAILABLE
            )
        if entry.kind != DIR:
            raise StorageError(
                f"{inside!r} is not a folder {where}", code=ErrorCode.LOCATION_UNAVAILABLE
            )
        if writable:
            # The right to add files and folders is asked for, not tried: a file made and
            # removed would change the folder's last write time at every launch, and the next
            # run would find the folder to update again.
            probe = create(self._name(""), ADD_FILE | ADD_SUBDIRECTORY, OPEN, DIRECTORY_FILE)
            results = self._exchange([probe, close()])
            if isinstance(results[0], SMBResponseException):
                error = os_error(results[0].status, "")
                raise StorageError(
                    f"cannot write to {inside or '/'!r} in the share {self.share!r} on "
                    f"{self.host} ({describe_error(error)}): check the user's permissions",
                    code=ErrorCode.LOCATION_UNAVAILABLE,
                )

    def stat(self, path: str) -> Entry | None:
        # The CREATE response carries all there is to know; the handle is closed at once.
        opening = create(self._name(path), READ_ATTRIBUTES | SYNCHRONIZE)
        opened, _ = self._exchange([opening, close()])
        if isinstance(opened, SMBResponseException):
            if os_error(opened.status, path).errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise os_error(opened.status, path) from opened
        return Opened(opened).entry(path)

    def attributes(self, path: str) -> dict[str, Any] | None:
        entry = self.stat(path)
        if entry is None or entry.attributes is None:
            return None
        entry.attributes[SECURITY_DESCRIPTOR] = self._descriptor_getter(path)
        return entry.attributes

    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        # A folder's names come in the server's order: a slice is found by reading every
        # name, keeping no more of them than the slice holds.
        reparse: list[tuple[str, str]] = []
        chosen, more = listing_slice(self._keyed(path, reparse), after, limit)
        # Each reparse point is reported by the slice its name falls in, once.
        self._rejected += [
            (skipped, REPARSE_POINT_SKIPPED)
            for key, skipped in reparse
            if key > after and not (more and key > chosen[-1][0])
        ]
        return [entry for _, _, entry in chosen], more

    def take_rejected(self) -> list[tuple[str, str]]:
        rejected, self._rejected = self._rejected, []
        return rejected

    def _keyed(self, path: str, reparse: list[tuple[str, str]]) -> Iterator[tuple[str, str, Entry]]:
        """The children of `path` by listing key; reparse points go to `reparse` instead: a
        junction is listed as a folder, and following one may loop forever."""
        for entry, attrs in self._scan(path, path + "/" if path else ""):
            key = listing_key(entry.path.rpartition("/")[2], entry.kind)
            if attrs & REPARSE_POINT:
                reparse.append((key, entry.path))
            else:
                yield key, entry.path, entry

    def _scan(self, path: str, prefix: str) -> Iterator[tuple[Entry, int]]:
        """The children of `path` with their attribute bits. A folder whose entries fit in one
        reply costs one round trip: open, two queries and close in one compound, the second
        query's NO_MORE_FILES saying the first had them all. A larger one is read again from
        the start through a handle kept open (the compound's handle is closed by then, and
        a second enumeration is never stitched to the first)."""
        access = READ_DATA | READ_ATTRIBUTES | SYNCHRONIZE
        opening = create(self._name(path), access, OPEN, DIRECTORY_FILE)
        size = self._listing_size()
        results = self._exchange(
            [
                opening,
                query_directory(RELATED, restart=True, size=size),
                query_directory(RELATED, size=size),
                close(),
            ]
        )
        _raise_first(results[:1], path)
        pages = [result for result in results[1:3] if not _no_more_files(result)]
        _raise_first(pages, path)
        if len(pages) == 2:
            yield from self._scan_open(path, prefix, opening, size)
            return
        for page in pages:
            yield from directory_entries(out_buffer(page), prefix)  # type: ignore[arg-type]

    def _scan_open(
        self, path: str, prefix: str, opening: Structure, size: int
    ) -> Iterator[tuple[Entry, int]]:
        results = self._exchange([opening, query_directory(RELATED, restart=True, size=size)])
        _raise_first(results[:1], path)
        file_id = Opened(results[0]).file_id  # type: ignore[arg-type]
        try:
            result = results[1]
            while not _no_more_files(result):
                _raise_first([result], path)
                yield from directory_entries(out_buffer(result), prefix)  # type: ignore[arg-type]
                (result,) = self._exchange([query_directory(file_id, size=size)])
        finally:
            self._exchange([close(file_id)])

    def _listing_size(self) -> int:
        """How many bytes of a folder's entries one QUERY_DIRECTORY asks for: up to
        _LISTING_BYTES (some 10,000 names), as much as the server lets one reply carry and
        the credits granted let two queries ask for beside the open and the close."""
        connection = self._connect().session.connection
        if not connection.supports_multi_credit:
            return 65536
        window = connection.sequence_window
        credits = (window["high"] - window["low"] - 2) // 2
        largest = min(_LISTING_BYTES, connection.max_transact_size, credits * _CREDIT_BYTES)
        return max(65536, largest)

    def open_read(self, path: str) -> _SmbReader:
        access = READ_DATA | READ_ATTRIBUTES | SYNCHRONIZE
        (result,) = self._exchange([create(self._name(path), access, OPEN, NON_DIRECTORY_FILE)])
        _raise_first([result], path)
        return _SmbReader(self, path, Opened(result))  # type: ignore[arg-type]

    def close_reader(self, reader: _SmbReader) -> None:  # type: ignore[override]
        _raise_first(self._exchange([close(reader.file_id)]), reader.path)

    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> _SmbWriter:
        parent = path.rpartition("/")[0]
        temp = temp_name(self._temp_tag, path)
        return _SmbWriter(
            self, path, self._name(f"{parent}/{temp}" if parent else temp), entry, policy
        )

    def make_dir(self, path: str) -> bool:
        if not path:
            self._connect()
            return False
        access = READ_ATTRIBUTES | SYNCHRONIZE
        opening = create(self._name(path), access, CREATE, DIRECTORY_FILE)
        results = self._exchange_creating([opening, close()], path)
        first = results[0]
        if isinstance(first, SMBResponseException):
            if first.status != NtStatus.STATUS_OBJECT_NAME_COLLISION:
                raise os_error(first.status, path) from first
            existing = self.stat(path)
            if existing is None or existing.kind != DIR:
                raise FileExistsError(errno.EEXIST, "a file is in the way", path)
            return False
        return True

    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(errno.EOPNOTSUPP, "SMB cannot store symbolic links", path)

    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(errno.EOPNOTSUPP, "SMB cannot store devices or named pipes", path)

    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        """SMB2's FileLinkInformation: NTFS and samba keep hard links (others refuse). As for
        files written, a missing folder is made, and a read-only file in the way loses its
        READONLY (which keeps it from being replaced)."""
        status = self._link(path, existing, exclusive=exclusive)
        parent = path.rpartition("/")[0]
        if parent and status == NtStatus.STATUS_OBJECT_PATH_NOT_FOUND:
            self.make_dir(parent)
            status = self._link(path, existing, exclusive=exclusive)
        if not exclusive and status in READ_ONLY_IN_THE_WAY:
            self._clear_read_only(self._name(path), path)
            status = self._link(path, existing, exclusive=exclusive)
        if exclusive and status == NtStatus.STATUS_OBJECT_NAME_COLLISION:
            return False
        if status is not None:
            raise os_error(status, path)
        return True

    def _link(self, path: str, existing: str, *, exclusive: bool) -> int | None:
        """Link `path` to the file at `existing`: the status the link failed with, if any."""
        link = FileLinkInformation()
        link["replace_if_exists"] = not exclusive
        link["file_name"] = self._name(path)
        request = set_info(
            InfoType.SMB2_0_INFO_FILE, FileInformationClass.FILE_LINK_INFORMATION, link.pack()
        )
        results = self._exchange([create(self._name(existing), SYNCHRONIZE), request, close()])
        _raise_first(results[:1], existing)
        linked = results[1]
        return linked.status if isinstance(linked, SMBResponseException) else None

    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        source = (entry.attributes or {}).get(SECURITY_DESCRIPTOR)
        flags = policy.security_descriptor if source is not None else "NONE"
        wanted = (entry.attributes or {}).get(FILE_ATTRIBUTES)
        messages: list[Structure] = [
            create(self._name(path), WRITE_ATTRIBUTES | SYNCHRONIZE | security_access(flags)),
            metadata_info(entry, policy, attribute_bits(wanted)),
        ]
        if flags != "NONE":
            messages.append(set_security(source(flags), flags))  # type: ignore[misc]
        results = self._exchange([*messages, close()])
        _raise_first(results[:1], path)
        _raise_metadata(results[1:-1], path)

    def removal_slice(self, path: str, after: str, limit: int) -> list[Entry]:
        """What list_dir shows, and the reparse points it leaves out, as links: each goes as
        itself, never with what it points to."""

        def keyed() -> Iterator[tuple[str, Entry]]:
            for entry, attrs in self._scan(path, path + "/" if path else ""):
                if attrs & REPARSE_POINT:
                    entry.kind = SYMLINK
                yield listing_key(entry.path.rpartition("/")[2], entry.kind), entry

        return [entry for _, entry in listing_slice(keyed(), after, limit)[0]]

    def remove(self, path: str, kind: str) -> None:
        # The entry itself, not what a reparse point points to (a junction: a folder).
        options = DELETE_ON_CLOSE | OPEN_REPARSE_POINT
        if kind == DIR:
            options |= DIRECTORY_FILE
        elif kind == FILE:
            options |= NON_DIRECTORY_FILE
        delete = [create(self._name(path), DELETE | READ_ATTRIBUTES, OPEN, options), close()]
        results = self._exchange(delete)
        first = results[0]
        if (
            isinstance(first, SMBResponseException)
            and first.status == NtStatus.STATUS_CANNOT_DELETE
        ):
            self._clear_read_only(self._name(path), path)  # Windows keeps read-only files
            results = self._exchange(delete)
        _raise_first(results[:1], path)


def _no_more_files(result: SMB2HeaderResponse | SMBResponseException) -> bool:
    return (
        isinstance(result, SMBResponseException) and result.status == NtStatus.STATUS_NO_MORE_FILES
    )


def _check_name(name: str, path: str) -> None:
    """Raise EINVAL for a name that would mean something else on SMB, as SMB locations declare
    them (models.locations.smb): a path or stream separator, a wildcard, a control character,
    '.' or '..', or a trailing dot or space (which Windows drops)."""
    reason = SmbServerLocation.CAPABILITIES.refuses(name) if name else "an empty name"
    if reason:
        raise OSError(errno.EINVAL, f"not a valid name on SMB: {name!r} ({reason})", path)


def open_location(location: SmbServerLocation, temp_tag: str) -> SmbStorage:
    """An SMB share or FSx for Windows File Server."""
    return SmbStorage(
        location.ServerHostname,
        location.ServerPort,
        location.Subdirectory,
        location.User,
        unsealed(location.Password, location.LocationArn),
        location.Domain,
        location.MountOptions.Version,
        temp_tag,
        kerberos(location) if isinstance(location, SmbLocation) else None,
    )
