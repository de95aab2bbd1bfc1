"""HDFS over WebHDFS: the NameNode's REST API through HdfsCLI (`hdfs`), the bytes straight to
and from the DataNodes.

- NameNode calls go through HdfsCLI's client, which knows high availability: given every
  NameNode, it sends a request that meets a standby (StandbyException) or an unreachable
  NameNode to the next one. Its path markers ('#LATEST') are not applied: Ferry's paths are
  names as they are.
- Reads: OPEN, whose 307 redirect to a DataNode is followed, streamed in the reader's chunks.
- Writes: CREATE asks the NameNode where to write (a 307 to a DataNode, with the location's
  BlockSize and ReplicationFactor), then the bytes go to that DataNode as one chunked PUT, sent
  as they arrive, so memory does not grow with the file. A file is written under a temporary
  name, given its times and owner, then renamed into place: RENAME with `renameoptions=OVERWRITE`
  replaces atomically, and without it RENAME never replaces (an exclusive commit).
- Metadata, by DataSync's HDFS rules: times (milliseconds), permission bits and the sticky bit
  (HDFS has no setuid or setgid), owner and group by name. uid and gid are DataSync's defaults.
- HDFS keeps no symbolic links (Hadoop disables them), devices or hard links: a link to write
  fails per file, a hard link becomes a copy.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3.exceptions
from hdfs import Client, HdfsError
from hdfs.client import _Request

from activities.storage.base import (
    DIR,
    FILE,
    NO_POSIX_ID,
    SYMLINK,
    TRANSIENT_ERRNOS,
    Entry,
    MetadataError,
    MetadataPolicy,
    Storage,
    StorageError,
    describe_error,
    is_transient,
    listing_key,
    listing_slice,
    place,
    temp_name,
)
from activities.storage.kerberos import Kerberos, kerberos
from models.errors import ErrorCode
from models.locations import HdfsLocation

# Seconds to connect, and to wait for each answer (or each piece of a read).
TIMEOUT = (10, 120)
# Seconds between tries of a request that found no active NameNode (or none at all): an HA
# failover takes seconds, and a listing that gave up would leave a whole folder out.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
ABORT_TIMEOUT = 10
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
MODE_BITS = 0o1777  # what HDFS keeps: rwx for owner, group and others, and the sticky bit

_KINDS = {"FILE": FILE, "DIRECTORY": DIR, "SYMLINK": SYMLINK}

# Hadoop's exceptions as the OS errors the phases understand.
_ERRNOS = {
    "FileNotFoundException": errno.ENOENT,
    "AccessControlException": errno.EACCES,
    "FileAlreadyExistsException": errno.EEXIST,
    "ParentNotDirectoryException": errno.ENOTDIR,
    "PathIsNotEmptyDirectoryException": errno.ENOTEMPTY,
    "InvalidPathException": errno.EINVAL,
    "IllegalArgumentException": errno.EINVAL,
    "DSQuotaExceededException": errno.EDQUOT,
    "NSQuotaExceededException": errno.EDQUOT,
    "QuotaExceededException": errno.EDQUOT,
    "PathComponentTooLongException": errno.ENAMETOOLONG,
    "MaxDirectoryItemsExceededException": errno.EMLINK,
    "SecurityException": errno.EACCES,
    "AuthorizationException": errno.EACCES,
    # The NameNode answers again in a moment: leaving safe mode, failing over, recovering a
    # lease a crashed writer held.
    "SafeModeException": errno.EAGAIN,
    "StandbyException": errno.EAGAIN,
    "RetriableException": errno.EAGAIN,
    "RecoveryInProgressException": errno.EAGAIN,
    "AlreadyBeingCreatedException": errno.EBUSY,
    "LeaseExpiredException": errno.EBUSY,
}


def _os_error(error: HdfsError, path: str = "") -> OSError:
    # Any other exception (Hadoop's IOException among them) is the request's own failure, not
    # retried: EREMOTEIO, not EIO. HdfsCLI names no exception for a 401.
    refused = error.exception is None and str(error.message).startswith("Authentication failure")
    number = _ERRNOS.get(error.exception or "", errno.EACCES if refused else errno.EREMOTEIO)
    message = str(error.message or error.exception or "WebHDFS request failed")
    return OSError(number, message, path) if path else OSError(number, message)


class _WebHdfs(Client):
    """HdfsCLI's client, with the two operations it has no method for."""

    _check_access = _Request("GET")
    # Its operation name has an underscore, which the client's naming would drop.
    _list_status_batch = _Request("GET").to_method("LISTSTATUS_BATCH")

    def resolve(self, hdfs_path: str) -> str:
        # Ferry gives absolute paths; HdfsCLI's would expand '#LATEST', a name HDFS allows.
        return hdfs_path


class _Spnego(requests.auth.AuthBase):
    """Kerberos for WebHDFS: SPNEGO (HTTP Negotiate) with the location's principal, through
    pyspnego. The DataNodes are reached with the delegation token the redirect carries."""

    def __init__(self, kerberos: Kerberos) -> None:
        self.kerberos = kerberos

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        import spnego

        self.kerberos.install()
        host = urllib.parse.urlsplit(request.url).hostname or ""
        try:
            context = spnego.client(
                self.kerberos.principal, hostname=host, service="HTTP", protocol="kerberos"
            )
            token = context.step() or b""
        except Exception as error:  # pyspnego's and GSSAPI's errors have no common base
            raise StorageError(
                f"Kerberos authentication as {self.kerberos.principal!r} to {host} failed "
                f"({error}): check KerberosPrincipal, KerberosKeytab and KerberosKrb5Conf",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from error
        request.headers["Authorization"] = "Negotiate " + base64.b64encode(token).decode()
        return request


def _entry(path: str, status: dict[str, Any]) -> Entry:
    """An entry from a WebHDFS FileStatus."""
    kind = _KINDS.get(status["type"], FILE)
    mtime = status["modificationTime"] * 1_000_000
    # HDFS keeps no access time for folders (0), and none for files with it turned off.
    atime = status.get("accessTime", 0) * 1_000_000 or mtime
    return Entry(
        path,
        kind,
        size=status["length"] if kind == FILE else 0,
        mtime_ns=mtime,
        atime_ns=atime,
        mode=int(status["permission"], 8) & MODE_BITS,
        uid=NO_POSIX_ID,
        gid=NO_POSIX_ID,
        target=status.get("symlink"),
        owner=status.get("owner", ""),
        group=status.get("group", ""),
    )


class _HdfsReader:
    __slots__ = ("full", "path", "response", "seen", "storage")

    def __init__(self, storage: HdfsStorage, full: str, path: str) -> None:
        self.storage = storage
        self.full = full
        self.path = path
        self.seen: dict[str, Any] | None = None  # what stat() saw, for the version() after it
        self.response = storage._call(storage.client._open, full)

    def read(self, size: int) -> bytes:
        try:
            return self.response.raw.read(size)
        except (urllib3.exceptions.HTTPError, requests.RequestException) as error:
            raise ConnectionError(f"lost the DataNode connection: {error}") from error

    def stat(self) -> Entry:
        self.seen = self.storage._status(self.full)
        return _entry(self.path, self.seen)

    def version(self) -> tuple[int, int]:
        status, self.seen = self.seen or self.storage._status(self.full), None
        return (status["length"], status["modificationTime"])


class _HdfsWriter:
    """A chunked PUT to the DataNode the NameNode chose, under the temporary name."""

    __slots__ = ("connection", "entry", "final", "policy", "storage", "temp")

    def __init__(
        self,
        storage: HdfsStorage,
        datanode: str,
        temp: str,
        final: str,
        entry: Entry,
        policy: MetadataPolicy,
    ) -> None:
        self.storage = storage
        self.temp = temp
        self.final = final
        self.entry = entry
        self.policy = policy
        # requests streams a body only by pulling it from an iterator; a writer is pushed to,
        # so the PUT is written by hand, one chunk per write().
        url = urllib.parse.urlsplit(datanode)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self.connection: http.client.HTTPConnection | None = kind(
            url.hostname or "", url.port, timeout=TIMEOUT[1]
        )
        self.connection.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
        self.connection.putheader("Content-Type", "application/octet-stream")
        self.connection.putheader("Transfer-Encoding", "chunked")
        self.connection.endheaders()

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return  # an empty chunk would end the body
        assert self.connection is not None
        try:
            self.connection.send(b"%x\r\n" % len(data))
            self.connection.send(data)
            self.connection.send(b"\r\n")
        except OSError as error:
            # A DataNode that refused the file may close before its answer is read.
            self._answer()
            raise ConnectionError(f"lost the DataNode connection: {error}") from error

    def _answer(self, *, required: bool = False) -> None:
        """Read the DataNode's answer and raise its error, if any; without an answer, a
        ConnectionError if it is `required` (a file is complete only once it says so)."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            if required:
                raise ConnectionError(f"the DataNode did not confirm the file: {error}") from error
            return
        finally:
            connection.close()
        if response.status >= 300:
            raise _remote_error(response.status, body, self.final)

    def commit(self, *, exclusive: bool) -> bool:
        assert self.connection is not None
        try:
            self.connection.send(b"0\r\n\r\n")
        except OSError as error:
            self._answer()
            raise ConnectionError(f"lost the DataNode connection: {error}") from error
        self._answer(required=True)
        self.storage._set_full_metadata(self.temp, self.entry, self.policy, created=True)
        return self.storage._place(self.temp, self.final, exclusive=exclusive)

    def abort(self) -> None:
        # The body is ended and the DataNode's answer awaited, so that the DELETE comes after
        # the file exists (a DataNode still setting up the upload would make it after). Where
        # the connection is broken, a leftover is PREPARING's to remove on the next run.
        with contextlib.suppress(OSError):
            if self.connection is not None and self.connection.sock is not None:
                self.connection.sock.settimeout(ABORT_TIMEOUT)  # a cancel waits no longer
                self.connection.send(b"0\r\n\r\n")
            self._answer()
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        with contextlib.suppress(OSError):
            self.storage._call(self.storage.client._delete, self.temp)


def _remote_error(status: int, body: bytes, path: str) -> OSError:
    """A DataNode's RemoteException answer as an OS error."""
    try:
        remote = json.loads(body)["RemoteException"]
        error = HdfsError(remote.get("message", ""), exception=remote.get("exception"))
    except (ValueError, KeyError, TypeError):
        error = HdfsError(f"the DataNode answered HTTP {status}", exception=None)
    return _os_error(error, path)


class HdfsStorage(Storage):
    """The folder `root` of the HDFS cluster whose NameNodes' WebHDFS addresses are
    `namenodes`, as `user` (SIMPLE) or the principal of `kerberos`."""

    def __init__(
        self,
        namenodes: list[tuple[str, int]],
        root: str,
        user: str,
        *,
        block_size: int,
        replication: int,
        temp_tag: str = "",
        kerberos: Kerberos | None = None,
    ) -> None:
        self.root = "/" + root.strip("/")
        self.block_size = block_size
        self.replication = replication
        self._temp_tag = temp_tag
        self._where = ", ".join(f"{host}:{port}" for host, port in namenodes)
        session = requests.Session()
        if kerberos is None:
            session.params = {"user.name": user}
            self.user = user
        else:
            session.auth = _Spnego(kerberos)
            self.user = kerberos.principal.split("/")[0].split("@")[0]
        urls = ";".join(f"http://{host}:{port}" for host, port in namenodes)
        self.client = _WebHdfs(urls, session=session, timeout=TIMEOUT)
        self._batched = True  # LISTSTATUS_BATCH (Hadoop 3) until the NameNode says otherwise
        self._access_times = True  # until the NameNode says it keeps none

    def close(self) -> None:
        self.client._session.close()

    # --- requests ------------------------------------------------------------------------------

    def _call(
        self,
        operation: Callable[..., requests.Response],
        full: str,
        *,
        retry: bool = True,
        **params: Any,
    ) -> Any:
        """One NameNode operation on `full`; its response. Errors as OS errors; with `retry`,
        tried again for a while where no NameNode answered as the active one."""
        for delay in (*RETRY_DELAYS, None) if retry else (None,):
            try:
                return self._once(operation, full, **params)
            except OSError as error:
                if delay is None or not (
                    isinstance(error, ConnectionError) or error.errno == errno.EAGAIN
                ):
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _once(self, operation: Callable[..., requests.Response], full: str, **params: Any) -> Any:
        try:
            return operation(full, **params)
        except HdfsError as error:
            raise _os_error(error, full) from error
        except requests.RequestException as error:
            raise ConnectionError(
                f"cannot reach a NameNode of the HDFS cluster ({self._where}): {error}"
            ) from error

    def _status(self, full: str, *, retry: bool = True) -> dict[str, Any]:
        return self._call(self.client._get_file_status, full, retry=retry).json()["FileStatus"]

    def _full(self, path: str) -> str:
        if not path:
            return self.root
        if any(part in ("", ".", "..") or ":" in part for part in path.split("/")):
            raise OSError(errno.EINVAL, "HDFS names cannot be '.' or '..' nor contain ':'", path)
        return f"{self.root}/{path}" if self.root != "/" else f"/{path}"

    def _temp(self, path: str) -> str:
        parent = path.rpartition("/")[0]
        name = temp_name(self._temp_tag, path)
        return self._full(f"{parent}/{name}" if parent else name)

    def _unavailable(self, message: str, *, transient: bool = False) -> StorageError:
        return StorageError(message, transient=transient, code=ErrorCode.LOCATION_UNAVAILABLE)

    # --- the interface -------------------------------------------------------------------------

    def check(self, *, writable: bool) -> None:
        where = f"{self.root} on the HDFS cluster {self._where}"
        try:
            # Not retried in place: LAUNCHING retries a check that may succeed later.
            status = self._status(self.root, retry=False)
            if status["type"] != "DIRECTORY":
                raise self._unavailable(f"{where} is not a directory: check Subdirectory")
            self._call(self.client._check_access, self.root, retry=False, fsaction="r-x")
            if writable:
                self._call(self.client._check_access, self.root, retry=False, fsaction="-wx")
        except FileNotFoundError as error:
            raise self._unavailable(
                f"the Subdirectory {self.root} does not exist on the HDFS cluster "
                f"{self._where}: check Subdirectory"
            ) from error
        except PermissionError as error:
            raise self._unavailable(
                f"user {self.user!r} may not {'write to' if writable else 'list'} {where}: "
                f"{error.strerror} (check SimpleUser, or the folder's permissions)"
            ) from error
        except ConnectionError as error:
            raise self._unavailable(str(error), transient=True) from error
        except OSError as error:
            standby = error.errno == errno.EAGAIN
            raise self._unavailable(
                f"cannot use {where}: {describe_error(error)}"
                + (" (no NameNode answered as the active one)" if standby else ""),
                transient=error.errno in TRANSIENT_ERRNOS,
            ) from error

    def stat(self, path: str) -> Entry | None:
        status = self._status_or_none(self._full(path))
        return None if status is None else _entry(path, status)

    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        # HDFS lists by name, which is not the listing order: a slice of a large folder is
        # found by paging through every name.
        prefix = path + "/" if path else ""
        keyed = (
            (listing_key(status["pathSuffix"], _KINDS.get(status["type"], FILE)), status)
            for status in self._listing(self._full(path))
        )
        chosen, more = listing_slice(keyed, after, limit)
        return [_entry(prefix + status["pathSuffix"], status) for _, status in chosen], more

    def _listing(self, full: str) -> Iterator[dict[str, Any]]:
        """Every child's FileStatus, a page (the NameNode's dfs.ls.limit) at a time; all at
        once from a NameNode before Hadoop 3, which has no LISTSTATUS_BATCH."""
        start: dict[str, str] = {}
        while self._batched:
            try:
                answer = self._call(self.client._list_status_batch, full, **start).json()
            except OSError as error:
                if start or error.errno != errno.EINVAL or "LISTSTATUS_BATCH" not in str(error):
                    raise
                self._batched = False
                break
            listing = answer["DirectoryListing"]
            page = listing["partialListing"]["FileStatuses"]["FileStatus"]
            if page and not page[0]["pathSuffix"]:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", full)
            yield from page
            if not page or not listing["remainingEntries"]:
                return
            start = {"startAfter": page[-1]["pathSuffix"]}
        statuses = self._call(self.client._list_status, full).json()["FileStatuses"]["FileStatus"]
        if statuses and not statuses[0]["pathSuffix"]:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", full)
        yield from statuses

    def open_read(self, path: str) -> _HdfsReader:
        return _HdfsReader(self, self._full(path), path)

    def close_reader(self, reader: _HdfsReader) -> None:  # type: ignore[override]
        reader.response.close()

    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> _HdfsWriter:
        final = self._full(path)
        temp = self._temp(path)
        redirect = self._call(
            self.client._create,
            temp,
            overwrite=True,  # a leftover of an earlier attempt
            permission=f"{_created_mode(entry, policy):o}",
            blocksize=self.block_size,
            replication=self.replication,
        )
        datanode = redirect.headers.get("Location")
        if not datanode:
            raise OSError(errno.EPROTO, "the NameNode named no DataNode to write to", path)
        try:
            return _HdfsWriter(self, datanode, temp, final, entry, policy)
        except OSError as error:
            raise ConnectionError(f"cannot reach the DataNode {datanode}: {error}") from error

    def make_dir(self, path: str) -> bool:
        existing = self.stat(path)
        if existing is not None:
            if existing.kind != DIR:
                raise FileExistsError(errno.EEXIST, "a file is in the way of the folder", path)
            return False
        # MKDIRS makes every missing folder: never the location root, which going away is the
        # location failing.
        if not path or self._status_or_none(self.root) is None:
            raise self._unavailable(
                f"the Subdirectory {self.root} no longer exists on the HDFS cluster {self._where}"
            )
        self._call(self.client._mkdirs, self._full(path), permission=f"{DEFAULT_DIR_MODE:o}")
        return True

    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(
            errno.EOPNOTSUPP, "HDFS keeps no symbolic links (Hadoop turns them off)", path
        )

    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(errno.EOPNOTSUPP, "HDFS cannot hold devices or named pipes", path)

    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        # Never asked: HDFS declares no hard links, so PREPARING plans each name as a file.
        raise OSError(errno.EOPNOTSUPP, "HDFS has no hard links", path)

    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        self._set_full_metadata(self._full(path), entry, policy, created=False)

    def _set_full_metadata(
        self, full: str, entry: Entry, policy: MetadataPolicy, *, created: bool
    ) -> None:
        """Times (which need write access), then the mode, then owner and group (a new owner
        may leave this user unable to set either). A file just made has its mode from CREATE
        unless that had to be writable for its times."""
        mode = entry.mode & MODE_BITS
        if policy.mtime:
            try:
                self._set_times(full, entry, policy)
            except MetadataError:
                # A file already there that its mode keeps this user from writing: writable
                # for as long as its times are set (the mode is set after them anyway).
                if created or not policy.mode:
                    raise
                self._metadata(
                    "mode", self.client._set_permission, full, permission=f"{mode | 0o200:o}"
                )
                self._set_times(full, entry, policy)
        if (
            policy.mode
            and entry.kind != SYMLINK
            and not (created and mode == _created_mode(entry, policy))
        ):
            self._metadata(
                f"mode {mode:04o}", self.client._set_permission, full, permission=f"{mode:o}"
            )
        owner = entry.owner if policy.owner_name else ""
        group = entry.group if policy.group_name else ""
        if created and owner == self.user:
            owner = ""  # a new file is this user's already
        if owner or group:
            names = {"owner": owner} if owner else {}
            if group:
                names["group"] = group
            self._metadata(
                f"owner {owner or '-'}:{group or '-'}", self.client._set_owner, full, **names
            )

    def _set_times(self, full: str, entry: Entry, policy: MetadataPolicy) -> None:
        mtime = entry.mtime_ns // 1_000_000
        atime = entry.atime_ns // 1_000_000 if policy.atime and self._access_times else -1
        try:
            self._metadata(
                "times", self.client._set_times, full, modificationtime=mtime, accesstime=atime
            )
        except MetadataError as error:
            # A NameNode with dfs.namenode.accesstime.precision 0 keeps no access times and
            # refuses to set one: Atime is BEST_EFFORT, so the mtime alone is set from now on.
            if atime < 0 or "access time" not in str(error).lower():
                raise
            self._access_times = False
            self._metadata(
                "times", self.client._set_times, full, modificationtime=mtime, accesstime=-1
            )

    def _metadata(self, what: str, operation: Callable[..., Any], full: str, **params: Any) -> None:
        try:
            self._call(operation, full, **params)
        except OSError as error:
            if error.errno in (*TRANSIENT_ERRNOS, errno.ENOENT) or isinstance(
                error, ConnectionError
            ):
                raise  # to be retried, or missing: not the metadata's failure
            hint = ""
            if what.startswith("owner") and error.errno == errno.EACCES:
                hint = (
                    " (HDFS lets only its superuser give files to another owner: run as the "
                    "superuser, or set the task's Uid and Gid options to NONE)"
                )
            raise MetadataError(f"cannot set {what}: {describe_error(error)}{hint}") from error

    def _place(self, temp: str, final: str, *, exclusive: bool) -> bool:
        how = HdfsLocation.CAPABILITIES.exclusive_commit
        return place(self, how, temp, final, exclusive=exclusive)

    # The moves `place` makes a commit of (HDFS declares BY_RENAME).

    def rename(self, temp: str, final: str, *, replace: bool) -> None:
        """RENAME with OVERWRITE replaces atomically; with NONE it never replaces anything,
        where the old RENAME would move the file into a folder of that name."""
        # Not retried in place: a RENAME whose answer was lost may have happened. HdfsCLI
        # itself sends it to the next NameNode if the first could not be reached.
        options = "OVERWRITE" if replace else "NONE"
        try:
            self._call(
                self.client._rename, temp, retry=False, destination=final, renameoptions=options
            )
        except FileNotFoundError:
            # Done by a NameNode that failed over before answering: the file is in place.
            if self._status_or_none(temp) is not None or self._status_or_none(final) is None:
                raise
        except OSError as error:
            # Something is there (a file: FileAlreadyExistsException; a folder: IOException).
            if replace or is_transient(error) or self._status_or_none(final) is None:
                raise
            raise FileExistsError(errno.EEXIST, describe_error(error), final) from error

    def link(self, temp: str, final: str) -> None:
        raise OSError(errno.EOPNOTSUPP, "HDFS has no hard links", final)

    def drop(self, temp: str) -> None:
        with contextlib.suppress(OSError):
            self._call(self.client._delete, temp)

    def _status_or_none(self, full: str) -> dict[str, Any] | None:
        try:
            return self._status(full)
        except FileNotFoundError:
            return None

    def remove(self, path: str, kind: str) -> None:
        self._delete(path, recursive=False)

    def purge(self, path: str) -> int:
        full = self._full(path)
        summary = self._call(self.client._get_content_summary, full).json()["ContentSummary"]
        self._delete(path, recursive=True)
        return int(summary["fileCount"] + summary["directoryCount"])

    def _delete(self, path: str, *, recursive: bool) -> None:
        full = self._full(path)
        if not self._call(self.client._delete, full, recursive=recursive).json()["boolean"]:
            raise FileNotFoundError(errno.ENOENT, "no such file or folder", path)


def _created_mode(entry: Entry, policy: MetadataPolicy) -> int:
    """The permission a file is created with: its own, but writable by its owner (this user)
    until its times are set; SETPERMISSION follows where that differs."""
    mode = entry.mode & MODE_BITS if policy.mode else DEFAULT_FILE_MODE
    return mode | 0o200 if policy.mtime else mode


def open_location(location: HdfsLocation, temp_tag: str) -> HdfsStorage:
    return HdfsStorage(
        [(node.Hostname, node.Port) for node in location.NameNodes],
        location.path,
        location.SimpleUser or "",
        block_size=location.BlockSize,
        replication=location.ReplicationFactor,
        temp_tag=temp_tag,
        kerberos=kerberos(location),
    )
