"""`nfs` locations: a folder of an NFS export, reached from user space with nfs-rs (no mount).

NFSv4 servers such as nfs-ganesha refuse every operation on the handle of a mounted export's
root ("bad name"), so with NFSv4 the pseudo root "/" is mounted and paths are prefixed with the
export path; with NFSv3 the export path itself is mounted. Writes follow the local adapter: a
temporary name, metadata, then rename (or link, for an exclusive commit) into place.

NFS LOOKUP never follows a symbolic link, so a link in the destination never leads a write
outside the location; ".." is refused, since nfs-rs would resolve it within the mount.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import nfs_rs
import xxhash

from activities.storage.base import (
    BLOCK_DEVICE,
    CHAR_DEVICE,
    DIR,
    FIFO,
    FILE,
    SOCKET,
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
)
from activities.storage.local import DEFAULT_DIR_MODE, DEFAULT_FILE_MODE
from models.errors import ErrorCode
from models.locations import NfsServerLocation

_KINDS = {
    nfs_rs.FileType.FILE: FILE,
    nfs_rs.FileType.DIRECTORY: DIR,
    nfs_rs.FileType.SYMLINK: SYMLINK,
    nfs_rs.FileType.CHARACTER_DEVICE: CHAR_DEVICE,
    nfs_rs.FileType.BLOCK_DEVICE: BLOCK_DEVICE,
    nfs_rs.FileType.FIFO: FIFO,
    nfs_rs.FileType.SOCKET: SOCKET,
}
# DataSync's NfsVersion values, as the protocol versions tried in turn. nfs-rs speaks up to 4.1;
# NFS 4.2 servers speak 4.1 too (4.2 only adds optional operations Ferry does not use).
_VERSIONS = {
    "AUTOMATIC": ("4.1", "4.0", "3"),
    "NFS4_2": ("4.1",),
    "NFS4_1": ("4.1",),
    "NFS4_0": ("4.0",),
    "NFS3": ("3",),
}
NFS_PORT = 2049
CONNECT_TIMEOUT = 5.0
# Long enough for a few MiB over a slow link; a hung server still fails the call in the end.
OPERATION_TIMEOUT = 120.0
# Servers exporting with "secure" (Linux's default) only answer privileged source ports, which
# only root may bind; as another user, the export must allow others ("insecure").
_UNPRIVILEGED = os.geteuid() != 0

# NFS statuses (NFS3ERR_x, NFS4ERR_x) that nfs-rs leaves without an errno.
_STATUS_ERRNOS = {
    "NOENT": errno.ENOENT,
    "EXIST": errno.EEXIST,
    "NOTDIR": errno.ENOTDIR,
    "ISDIR": errno.EISDIR,
    "NOTEMPTY": errno.ENOTEMPTY,
    "ACCESS": errno.EACCES,
    "PERM": errno.EPERM,
    "NOSPC": errno.ENOSPC,
    "DQUOT": errno.EDQUOT,
    "ROFS": errno.EROFS,
    "FBIG": errno.EFBIG,
    "MLINK": errno.EMLINK,
    "XDEV": errno.EXDEV,
    "NAMETOOLONG": errno.ENAMETOOLONG,
    "BADNAME": errno.EINVAL,
    "INVAL": errno.EINVAL,
    "SYMLINK": errno.ELOOP,
    "NOTSUPP": errno.EOPNOTSUPP,
    "STALE": errno.ESTALE,
    "DELAY": errno.EAGAIN,
    "JUKEBOX": errno.EAGAIN,
    "GRACE": errno.EAGAIN,
    "IO": errno.EIO,
}
# Failures without a status, by kind; the transport's and the server's state's are transient.
_CLASS_ERRNOS: tuple[tuple[type[nfs_rs.NfsError], int], ...] = (
    (nfs_rs.NfsTimeoutError, errno.ETIMEDOUT),
    (nfs_rs.NfsConnectionError, errno.ECONNRESET),
    (nfs_rs.NfsRpcError, errno.ECONNRESET),
    (nfs_rs.NfsBadCookieError, errno.EAGAIN),  # the folder changed while it was listed
    (nfs_rs.NfsRetryableError, errno.EAGAIN),
    (nfs_rs.NfsStateLostError, errno.EAGAIN),
    (nfs_rs.NfsOperationOutcomeError, errno.EAGAIN),
    (nfs_rs.NfsUnsupportedError, errno.EOPNOTSUPP),
    (nfs_rs.NfsInvalidInputError, errno.EINVAL),
    (nfs_rs.NfsEncodingError, errno.EPROTO),
)


def os_error(error: nfs_rs.NfsError) -> OSError:
    """The OSError the rest of Ferry understands (errno, retryable or not) for an nfs-rs one."""
    if (cap := _channel_cap(error)) is not None:
        return OSError(
            errno.ENAMETOOLONG,
            f"too deep for one NFSv4.1 request: the server takes at most {cap} operations in "
            "one, and nfs-rs looks a path up in one (about a folder an operation); with "
            "MountOptions Version AUTOMATIC or NFS4_0 it is reached by NFSv4.0, which has no "
            "such limit",
        )
    status = (error.code_name or "").rpartition("ERR_")[2]
    code = error.errno or _STATUS_ERRNOS.get(status)
    if code:
        return OSError(code, os.strerror(code))
    code = next((code for kind, code in _CLASS_ERRNOS if isinstance(error, kind)), errno.EIO)
    return OSError(code, error.message)


_CHANNEL_CAP = re.compile(r"COMPOUND contains \d+ operations; channel maximum is (\d+)")


def _channel_cap(error: nfs_rs.NfsError) -> int | None:
    """The most operations an NFSv4.1 session takes in one request, when `error` says a
    request had more (a path deeper than that many folders)."""
    found = isinstance(error, nfs_rs.NfsRpcError) and _CHANNEL_CAP.search(str(error))
    return int(found.group(1)) if found else None


class _DeepPaths:
    """An NFSv4.1 client that reaches deep paths by NFSv4.0. nfs-rs looks a path up in the
    request that uses it, about an operation a folder, and an NFSv4.1 session caps the
    operations of a request at what was negotiated when it was made (nfs-ganesha: 16, some 11
    folders); NFSv4.0 has no sessions and no such cap. Every call goes to the 4.1 client; one
    refused for its length goes again to a 4.0 client of the same server, made then."""

    def __init__(self, client: nfs_rs.Client, deeper: Callable[[], nfs_rs.Client]) -> None:
        self.client = client
        self._deeper = deeper
        self._v40: nfs_rs.Client | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method) or name == "close":
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except nfs_rs.NfsRpcError as error:
                if _channel_cap(error) is None:
                    raise
            return getattr(self._v4_0(), name)(*args, **kwargs)

        return call

    def scandir(self, *args: Any, **kwargs: Any) -> Iterator[nfs_rs.DirEntry]:
        """A listing fails for its length as it begins, before any entry: then it is read
        whole by NFSv4.0 instead."""
        entries = iter(self.client.scandir(*args, **kwargs))
        try:
            first = next(entries, None)
        except nfs_rs.NfsRpcError as error:
            if _channel_cap(error) is None:
                raise
            yield from self._v4_0().scandir(*args, **kwargs)
            return
        if first is not None:
            yield first
            yield from entries

    def _v4_0(self) -> nfs_rs.Client:
        if self._v40 is None:
            self._v40 = self._deeper()
        return self._v40

    def close(self) -> None:
        for client in (self.client, self._v40):
            if client is not None:
                with contextlib.suppress(nfs_rs.NfsError):
                    client.close()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _os_errors(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """Raise nfs-rs failures of `call` as OSError (see os_error)."""

    @functools.wraps(call)
    def translated(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return call(*args, **kwargs)
        except nfs_rs.NfsError as error:
            raise os_error(error) from error

    return translated


# Reads retried in place when nfs-rs calls them safe to retry: several clients of one host
# reading at once draw NFS4ERR_DELAY-like answers from nfs-ganesha (22 of 400 opens with 8
# threads here), which would otherwise cost the whole batch a retry, or fail VERIFYING.
_READ_TRIES = 6
_READ_BACKOFF = 0.02  # seconds, doubled each time


def _replayable(error: nfs_rs.NfsError, *, uncertain_ok: bool) -> bool:
    outcome = getattr(error, "outcome", None)
    if outcome == nfs_rs.OperationOutcome.SAFE_TO_RETRY:
        return True
    return uncertain_ok and outcome == nfs_rs.OperationOutcome.UNCERTAIN


def _reading(call: Callable[_P, _R], *, uncertain_ok: bool = False) -> Callable[_P, _R]:
    """`_os_errors` for an operation that changes nothing on the server, retried in place
    while nfs-rs says it is safe to (and, with `uncertain_ok`, when its outcome is merely
    unknown: opening for reading only creates open state, which a repeat cannot harm)."""

    @functools.wraps(call)
    def retried(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(_READ_TRIES):
            try:
                return call(*args, **kwargs)
            except nfs_rs.NfsError as error:
                if attempt + 1 == _READ_TRIES or not _replayable(error, uncertain_ok=uncertain_ok):
                    raise os_error(error) from error
            time.sleep(_READ_BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    return retried


def _metadata(what: str, call: Callable[..., None], *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)
    except nfs_rs.NfsError as error:
        failure = os_error(error)
        if failure.errno in TRANSIENT_ERRNOS or failure.errno == errno.ENOENT:
            raise failure from error  # to be retried, or missing: not the metadata's failure
        raise MetadataError(f"cannot set {what}: {describe_error(failure)}") from error


def _default_mode(entry: Entry) -> int:
    return DEFAULT_DIR_MODE if entry.kind == DIR else DEFAULT_FILE_MODE


class _NfsReader:
    __slots__ = ("file", "full", "offset", "path", "seen", "storage")

    def __init__(self, storage: NfsStorage, file: nfs_rs.File, full: str, path: str) -> None:
        self.storage = storage
        self.file = file
        self.full = full
        self.path = path
        self.offset = 0  # reads are positional, so that a retried one reads the same bytes
        self.seen: nfs_rs.FileInfo | None = None  # what stat() saw, for the version() after it

    @_reading
    def read(self, size: int) -> bytes:
        data = self.file.read_at(self.offset, size)
        self.offset += len(data)
        return data

    @_reading
    def stat(self) -> Entry:
        self.seen = self.storage._nfs.stat(self.full)
        return self.storage._entry(self.path, self.seen)

    @_reading
    def version(self) -> tuple[int, int, int]:
        # stat() and the version() that follows it describe the same moment: one GETATTR.
        info, self.seen = self.seen or self.storage._nfs.stat(self.full), None
        return (info.size, info.mtime, info.ctime)


class _NfsWriter:
    """Writes under the temporary name, then moves it into place."""

    __slots__ = ("entry", "file", "final", "policy", "storage", "temp")

    def __init__(
        self,
        storage: NfsStorage,
        file: nfs_rs.File,
        temp: str,
        final: str,
        entry: Entry,
        policy: MetadataPolicy,
    ) -> None:
        self.storage = storage
        self.file: nfs_rs.File | None = file
        self.temp = temp
        self.final = final
        self.entry = entry
        self.policy = policy

    @_os_errors
    def write(self, data: bytes | memoryview) -> None:
        assert self.file is not None
        self.file.write(data)

    @_os_errors
    def commit(self, *, exclusive: bool) -> bool:
        assert self.file is not None
        file, self.file = self.file, None
        file.close()
        self.storage._set_full_metadata(self.temp, self.entry, self.policy, created=True)
        return self.storage._place(self.temp, self.final, exclusive=exclusive)

    @_os_errors
    def abort(self) -> None:
        if self.file is not None:
            with contextlib.suppress(nfs_rs.NfsError):
                self.file.close()
            self.file = None
        self.storage._nfs.remove(self.temp, missing_ok=True)


class NfsStorage(Storage):
    """The folder `export_path` (DataSync's Subdirectory: an export, or a folder in one) of
    the NFS server at `host`:`port`, with `version` one of DataSync's NfsVersion values."""

    def __init__(
        self,
        host: str,
        port: int,
        export_path: str,
        version: str = "AUTOMATIC",
        temp_tag: str = "",
    ) -> None:
        if version not in _VERSIONS:
            raise ValueError(f"unknown NFS version {version!r}: one of {', '.join(_VERSIONS)}")
        self.host = host
        self.port = port
        self.export_path = "/" + export_path.strip("/")
        self.version = version
        self._temp_tag = temp_tag
        self._where = f"{host}:{port}"
        # The client, and what is put before every path (the export path, with NFSv4).
        self._mounted: tuple[nfs_rs.Client, str] | None = None
        self._connecting = threading.Lock()
        self._devices: dict[int, int] = {}

    def close(self) -> None:
        mounted, self._mounted = self._mounted, None
        if mounted is not None:
            with contextlib.suppress(nfs_rs.NfsError):
                mounted[0].close()

    # --- connecting --------------------------------------------------------------------------

    def _mount(self) -> tuple[nfs_rs.Client, str]:
        """The connected client and the path prefix; the first use connects (a StorageError
        if that fails)."""
        if self._mounted is None:
            with self._connecting:
                if self._mounted is None:
                    self._mounted = self._connect()
        return self._mounted

    @property
    def _nfs(self) -> nfs_rs.Client:
        return self._mount()[0]

    def _unavailable(self, message: str, *, transient: bool = False) -> StorageError:
        return StorageError(message, transient=transient, code=ErrorCode.LOCATION_UNAVAILABLE)

    def _connect(self) -> tuple[nfs_rs.Client, str]:
        # A plain TCP connection first: it tells "unreachable" apart from a refused mount,
        # which the NFS client reports alike once all versions have failed.
        try:
            socket.create_connection((self.host, self.port), CONNECT_TIMEOUT).close()
        except OSError as error:
            reason = describe_error(error)
            # Retried: a batch thread connecting during a short outage must not end the
            # execution (LAUNCHING still fails once its retries are spent).
            raise self._unavailable(
                f"cannot reach the NFS server {self._where}: {reason[:1].lower()}{reason[1:]}",
                transient=True,
            ) from error
        failures = []
        for version in _VERSIONS[self.version]:
            v4 = version != "3"
            try:
                client: nfs_rs.Client | _DeepPaths = self._client(version)
            except nfs_rs.NfsError as error:
                failures.append(f"NFS {version}: {error}")
                continue
            if version == "4.1" and "4.0" in _VERSIONS[self.version]:
                client = _DeepPaths(client, functools.partial(self._client, "4.0"))
            return client, self.export_path.strip("/") if v4 else ""  # type: ignore[return-value]
        raise self._unavailable(
            f"the NFS server {self._where} did not mount the export path {self.export_path}"
            f" ({'; '.join(failures)}): check Subdirectory and NfsVersion"
        )

    def _client(self, version: str) -> nfs_rs.Client:
        v4 = version != "3"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return nfs_rs.Client.connect(
            f"nfs://{host}{'/' if v4 else quote(self.export_path)}",
            versions=[version],
            nfs_port=self.port,
            # Without rpcbind (a server on a port of its own), MOUNT shares the NFS port.
            mount_port=None if v4 or self.port == NFS_PORT else self.port,
            noresvport=_UNPRIVILEGED,
            connect_timeout=CONNECT_TIMEOUT,
            operation_timeout=OPERATION_TIMEOUT,
        )

    # --- paths and entries -------------------------------------------------------------------

    def _full(self, path: str) -> str:
        """The path nfs-rs is given for a location path ("" for the location root)."""
        if ".." in path and ".." in path.split("/"):
            raise OSError(errno.EINVAL, "'..' is not a file name", path)
        prefix = self._mount()[1]
        if not path:
            return prefix or "."
        return f"{prefix}/{path}" if prefix else path

    def _temp(self, path: str) -> tuple[str, str]:
        """The folder of `path`, and the full temporary name `path` is made under."""
        parent = path.rpartition("/")[0]
        name = temp_name(self._temp_tag, path)
        return parent, self._full(f"{parent}/{name}" if parent else name)

    def _entry(self, path: str, info: nfs_rs.FileInfo) -> Entry:
        return Entry(
            path,
            _KINDS.get(info.type, SOCKET),
            info.size,
            info.mtime,
            info.atime,
            info.mode & 0o7777,
            info.uid,
            info.gid,
            info.nlink,
            info.fileid,
            self._device(info.fsid),
        )

    def _device(self, fsid: int) -> int:
        """A device number for hard-link keys: the server's file system id, told apart from
        another server's and kept within a signed 64-bit integer."""
        device = self._devices.get(fsid)
        if device is None:
            device = xxhash.xxh64_intdigest(f"{self._where}/{fsid}".encode()) >> 1
            self._devices[fsid] = device
        return device

    def _with_target(self, entry: Entry, full: str) -> Entry:
        if entry.kind == SYMLINK:
            entry.target = self._nfs.readlink(full)
        return entry

    # --- the interface -----------------------------------------------------------------------

    def check(self, *, writable: bool) -> None:
        where = f"the export path {self.export_path} on the NFS server {self._where}"
        root = self._full("")
        try:
            client = self._nfs
            info = client.stat(root)
            if info.type != nfs_rs.FileType.DIRECTORY:
                raise self._unavailable(f"{where} is not a directory: check Subdirectory")
            client.scandir_page(root)
        except nfs_rs.NfsNotFoundError as error:
            raise self._unavailable(
                f"the export path {self.export_path} does not exist on the NFS server"
                f" {self._where}: check Subdirectory"
            ) from error
        except nfs_rs.NfsError as error:
            reason = describe_error(os_error(error))
            raise self._unavailable(f"cannot list {where}: {reason}") from error
        # Asked of the server (ACCESS), not tried: a file made and removed would change the
        # root's mtime at every launch, and the next run would find it to copy again.
        if writable and not self._may_write(client, root):
            raise self._unavailable(f"cannot write to {where}: permission denied")

    @staticmethod
    def _may_write(client: nfs_rs.Client, root: str) -> bool:
        try:
            return client.access(root, os.W_OK | os.X_OK)
        except nfs_rs.NfsError as error:
            raise os_error(error) from error

    @_reading
    def stat(self, path: str) -> Entry | None:
        full = self._full(path)
        try:
            info = self._nfs.stat(full)
        except nfs_rs.NfsNotFoundError:
            return None
        return self._with_target(self._entry(path, info), full)

    @_reading
    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        # The server's order is not the listing order: a slice of a large folder is found by
        # reading every name (scandir pages through it), keeping no more than the slice holds.
        prefix = path + "/" if path else ""
        keyed = (
            (listing_key(item.name, _KINDS.get(item.info.type, SOCKET)), item)
            for item in self._nfs.scandir(self._full(path))
            if item.name not in (".", "..")
        )
        chosen, more = listing_slice(keyed, after, limit)
        entries = [
            self._with_target(self._entry(prefix + item.name, item.info), item.path)
            for _, item in chosen
        ]
        return entries, more

    def open_read(self, path: str) -> _NfsReader:
        full = self._full(path)
        return _NfsReader(self, self._open_for_reading(full), full, path)

    @functools.partial(_reading, uncertain_ok=True)
    def _open_for_reading(self, full: str) -> nfs_rs.File:
        return self._nfs.open(full, "rb")

    def close_reader(self, reader: _NfsReader) -> None:  # type: ignore[override]
        # The bytes are read (and hashed); a CLOSE whose answer was lost leaves only open
        # state, which the server drops with the client's lease.
        with contextlib.suppress(nfs_rs.NfsError):
            reader.file.close()

    @_os_errors
    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> _NfsWriter:
        parent, temp = self._temp(path)
        client = self._nfs
        # A leftover of an earlier attempt may share its inode with the final name (a crash
        # between link and remove): never write through it.
        if self.leftovers:
            client.remove(temp, missing_ok=True)  # a missing folder too
        try:
            file = client.open(temp, "wb")
        except nfs_rs.NfsNotFoundError:
            self.make_dir(parent)  # batches run in parallel: the folder may not exist yet
            file = client.open(temp, "wb")
        return _NfsWriter(self, file, temp, self._full(path), entry, policy)

    @_os_errors
    def make_dir(self, path: str) -> bool:
        if not path:
            if self.stat("") is None:
                raise self._gone()
            return False
        full = self._full(path)
        try:
            self._nfs.mkdir(full)
            return True
        except nfs_rs.NfsAlreadyExistsError:
            if self._nfs.stat(full).type != nfs_rs.FileType.DIRECTORY:
                raise
            return False
        except nfs_rs.NfsNotFoundError:
            parent = path.rpartition("/")[0]
            if not parent:
                raise self._gone() from None
            self.make_dir(parent)
            return self.make_dir(path)

    def _gone(self) -> StorageError:
        """Never recreate a location root that went away: that is the location failing."""
        return self._unavailable(
            f"the export path {self.export_path} on the NFS server {self._where} no longer exists"
        )

    def _make(
        self,
        path: str,
        entry: Entry | None,
        policy: MetadataPolicy | None,
        exclusive: bool,
        create: Callable[[str], None],
    ) -> bool:
        """Make an entry under the temporary name with `create(full path)`, give it its
        metadata, then its final name."""
        parent, temp = self._temp(path)
        client = self._nfs
        if self.leftovers:
            client.remove(temp, missing_ok=True)
        try:
            create(temp)
        except nfs_rs.NfsNotFoundError:
            self.make_dir(parent)
            create(temp)
        try:
            if entry is not None and policy is not None:
                self._set_full_metadata(temp, entry, policy, created=True)
            return self._place(temp, self._full(path), exclusive=exclusive)
        except BaseException:
            with contextlib.suppress(nfs_rs.NfsError):
                client.remove(temp, missing_ok=True)
            raise

    @_os_errors
    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        target = entry.target or ""
        return self._make(
            path, entry, policy, exclusive, lambda temp: self._nfs.symlink(target, temp)
        )

    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        raise OSError(
            errno.EOPNOTSUPP,
            "devices and named pipes cannot be created on an NFS location (no MKNOD in nfs-rs)",
            path,
        )

    @_os_errors
    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        source = self._full(existing)
        return self._make(path, None, None, exclusive, lambda temp: self._nfs.link(source, temp))

    @_os_errors
    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        self._set_full_metadata(self._full(path), entry, policy, created=False)

    def _set_full_metadata(
        self, full: str, entry: Entry, policy: MetadataPolicy, *, created: bool
    ) -> None:
        """`created`: the entry was just made with a placeholder mode that must not stay."""
        client = self._nfs
        # Owner first: chown clears setuid/setgid bits, so the mode is set after it.
        if (policy.uid or policy.gid) and entry.uid >= 0:
            uid, gid = entry.uid if policy.uid else -1, entry.gid if policy.gid else -1
            _metadata(f"owner {uid}:{gid}", client.chown, full, uid, gid)
        # Linux has no modes on symbolic links.
        if entry.kind != SYMLINK and (policy.mode or created):
            mode = entry.mode if policy.mode else _default_mode(entry)
            _metadata(f"mode {mode:04o}", client.chmod, full, mode)
        if policy.mtime:
            times = (entry.atime_ns if policy.atime else entry.mtime_ns, entry.mtime_ns)
            _metadata("times", client.utime, full, ns=times)

    def _place(self, temp: str, final: str, *, exclusive: bool) -> bool:
        how = NfsServerLocation.CAPABILITIES.exclusive_commit
        return place(self, how, temp, final, exclusive=exclusive)

    # The moves `place` makes a commit of. NFS has no RENAME that refuses to replace: an
    # exclusive commit is a LINK, which does.

    def rename(self, temp: str, final: str, *, replace: bool) -> None:
        assert replace
        self._nfs.rename(temp, final)

    def link(self, temp: str, final: str) -> None:
        try:
            self._nfs.link(temp, final)
        except nfs_rs.NfsAlreadyExistsError:
            raise
        except nfs_rs.NfsError as error:
            if os_error(error).errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            # A look, then a rename, would let a writer that comes between lose its file.
            raise OSError(
                errno.EOPNOTSUPP,
                "this NFS server has no hard links, so a file cannot be put in place without "
                "the risk of replacing one that appears meanwhile (OverwriteMode NEVER): use "
                "OverwriteMode ALWAYS with it",
            ) from error

    def drop(self, temp: str) -> None:
        self._nfs.remove(temp, missing_ok=True)

    @_os_errors
    def remove(self, path: str, kind: str) -> None:
        full = self._full(path)
        if kind == DIR:
            self._nfs.rmdir(full)
        else:
            self._nfs.remove(full)


def open_location(location: NfsServerLocation, temp_tag: str) -> NfsStorage:
    """An NFS server, EFS or FSx for OpenZFS."""
    return NfsStorage(
        location.ServerHostname,
        location.ServerPort,
        location.Subdirectory,
        location.MountOptions.Version,
        temp_tag,
    )
