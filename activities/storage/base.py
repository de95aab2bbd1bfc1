"""The storage interface every location type implements, and the entry it lists.

Like an rclone backend, a storage is a small set of operations on paths relative to the location
root ('/'-separated, "" for the root itself). Listing, diffing, batching, checksums, bandwidth,
retries and verification are written once on top of it, in the phase modules.
"""

from __future__ import annotations

import errno
import heapq
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import xxhash

from models.errors import ErrorCode
from models.locations.base import BY_LINK, BY_RENAME
from models.options import Options

if TYPE_CHECKING:
    from models.locations import Capabilities, Location

T = TypeVar("T")
N = TypeVar("N", contravariant=True)

FILE = "f"
DIR = "d"
SYMLINK = "l"
CHAR_DEVICE = "c"
BLOCK_DEVICE = "b"
FIFO = "p"
SOCKET = "s"
SPECIAL_KINDS = frozenset({CHAR_DEVICE, BLOCK_DEVICE, FIFO})
KIND_NAMES = {
    FILE: "file",
    DIR: "directory",
    SYMLINK: "symbolic link",
    CHAR_DEVICE: "character device",
    BLOCK_DEVICE: "block device",
    FIFO: "named pipe",
    SOCKET: "socket",
}

# DataSync's metadata for an entry whose storage has no POSIX metadata (an object without
# Ferry's user metadata, a file on SMB).
NO_POSIX_ID = 65534
NO_POSIX_FILE_MODE = 0o644
NO_POSIX_DIR_MODE = 0o755

# Files being written are named like this until they are complete; listings skip such names and
# PREPARING removes the ones a crashed attempt left behind.
TEMP_NAME = re.compile(r"\.ferry-[0-9a-f]{16}\.tmp")


def listing_key(name: str, kind: str) -> str:
    """Where a child comes in a folder's listing: by name, a folder's as if followed by "/" (the
    order of S3 keys, so that every storage can list a folder in slices in the same order)."""
    return name + "/" if kind == DIR else name


def listing_slice(
    keyed: Iterable[tuple[str, T]], after: str, limit: int
) -> tuple[list[tuple[str, T]], bool]:
    """From a folder's (listing_key, item) pairs in the server's order: those whose key comes
    after `after`, in listing order, at most `limit` of them (0: all); and whether more follow.
    Every name is read, and no more of them kept than the slice holds."""
    later = (pair for pair in keyed if pair[0] > after)
    first = operator.itemgetter(0)
    chosen = heapq.nsmallest(limit + 1, later, key=first) if limit else sorted(later, key=first)
    more = bool(limit) and len(chosen) > limit
    return (chosen[:limit] if more else chosen), more


def temp_name(tag: str, path: str) -> str:
    """The temporary name of `path` in its folder; a retry of the same execution (`tag`) finds
    it again, and its length is fixed, so that even a 255-byte final name has one."""
    digest = xxhash.xxh64_hexdigest(f"{tag}\0{path}".encode(errors="surrogateescape"))
    return f".ferry-{digest}.tmp"


@dataclass(slots=True)
class Entry:
    """One file, directory, link or device, with the metadata Ferry can carry."""

    path: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    mode: int = 0  # permission bits, setuid/setgid/sticky included
    uid: int = -1
    gid: int = -1
    nlink: int = 1
    inode: int = 0  # with `device`, identifies hard links; 0 where the storage has none
    device: int = 0
    rdev: int = 0
    target: str | None = None  # a symbolic link's target
    # Owner and group by name, where the storage has names rather than ids (HDFS; object
    # storage whose file-owner is a name); uid and gid are then DataSync's defaults.
    owner: str = ""
    group: str = ""
    # An object's own properties (Content-Type and the like, user metadata, a way to its tags),
    # passed from an object read to an object written; not kept in the staging store.
    attributes: dict[str, Any] | None = None

    def row(self) -> list[Any]:
        """Compact form for the staging store."""
        row = [
            self.path, self.kind, self.size, self.mtime_ns, self.atime_ns, self.mode,
            self.uid, self.gid, self.nlink, self.inode, self.device, self.rdev, self.target,
        ]  # fmt: skip
        if self.owner or self.group:  # only where names exist: most rows stay short
            row += [self.owner, self.group]
        return row

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        return cls(*row)

    @property
    def hard_link_key(self) -> tuple[int, int] | None:
        if self.kind == FILE and self.nlink > 1 and self.inode:
            return (self.device, self.inode)
        return None


@dataclass(frozen=True, slots=True)
class MetadataPolicy:
    """Which metadata a transfer writes and compares, from the task's Options."""

    mtime: bool
    atime: bool
    uid: bool
    gid: bool
    mode: bool
    devices: bool
    tags: bool = False  # object tags, between object stores
    # SMB's SecurityDescriptorCopyFlags: NONE, OWNER_DACL or OWNER_DACL_SACL.
    security_descriptor: str = "NONE"
    # Whether a symbolic link's own mtime is kept (not where the server ignores it on links).
    link_times: bool = True
    # Owner and group names (Entry.owner, .group), kept where the destination has names, by
    # the Uid and Gid options.
    owner_name: bool = False
    group_name: bool = False
    # The permission bits the destination keeps (HDFS has no setuid or setgid).
    mode_bits: int = 0o7777

    @classmethod
    def from_options(cls, options: Options) -> MetadataPolicy:
        return cls(
            mtime=options.Mtime == "PRESERVE",
            atime=options.Atime == "BEST_EFFORT",
            uid=options.Uid != "NONE",
            gid=options.Gid != "NONE",
            mode=options.PosixPermissions == "PRESERVE",
            devices=options.PreserveDevices == "PRESERVE",
            tags=options.ObjectTags == "PRESERVE",
            security_descriptor=options.SecurityDescriptorCopyFlags or "NONE",
        )


class StorageError(Exception):
    """A failure of the location as a whole (not of one file), with a message for ErrorDetail.

    `transient` errors are retried by Temporal with backoff; the others end the execution.
    """

    def __init__(self, message: str, *, transient: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


class MetadataError(Exception):
    """The data arrived but its metadata could not be set (a file is then not kept)."""


# OS errors worth retrying: the storage may answer differently in a moment.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EAGAIN, errno.EINTR, errno.EIO, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET,
        errno.ECONNABORTED, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
        errno.ENETDOWN, errno.EPIPE, errno.ESTALE, errno.ENOLCK, errno.ETXTBSY,
    }
)  # fmt: skip
# OS errors that stop every further write to the location, so retrying file by file is futile.
LOCATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def is_transient(error: BaseException) -> bool:
    if isinstance(error, StorageError):
        return error.transient
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def describe_error(error: BaseException) -> str:
    """A one-line reason, without the path (the caller names the path)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def unsealed(sealed: str | None, location_arn: str) -> str:
    """A location's secret, opened with this worker's keys ("" where it has none); one this
    worker cannot open fails the location, saying which key it lacks."""
    from api.secrets import SecretError, unseal

    try:
        return unseal(sealed, location_arn) if sealed else ""
    except SecretError as error:
        raise StorageError(str(error), code=ErrorCode.LOCATION_UNAVAILABLE) from None


def location_error(error: OSError) -> StorageError | None:
    """The StorageError that ends the execution when `error` stops all writes to a location."""
    if error.errno in LOCATION_ERRNOS:
        return StorageError(
            f"destination: {describe_error(error)}", code=ErrorCode.DESTINATION_UNAVAILABLE
        )
    return None


class Reader(Protocol):
    def read(self, size: int) -> bytes: ...
    def stat(self) -> Entry: ...

    def version(self) -> object:
        """A value that changes whenever the file may have been written to (size, mtime and
        ctime for POSIX), to tell a copy that raced with a writer."""
        ...


class Writer(Protocol):
    """A file being written under a temporary name; nothing appears under the final name
    before `commit`."""

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self, *, exclusive: bool) -> bool:
        """Set the metadata given to `create_file`, then move into place. With `exclusive`, an
        existing file is left alone and False is returned."""
        ...

    def abort(self) -> None: ...


class SyncIndex(Protocol):
    """What a task's executions wrote to its destination and read of it, kept between them
    (in the staging store) by folder, as rows the storage makes and reads itself: for storage
    whose listing lacks metadata that costs a request per entry to read (object storage). A
    row is a record of the past, which the storage holds against what its listing shows now."""

    def recall(self, folder: str) -> Iterator[list[Any]]:
        """The rows kept for `folder`."""
        ...

    def keep(
        self, folder: str, rows: list[list[Any]], *, whole: bool, unchanged: bool = False
    ) -> None:
        """Keep `rows` for `folder`; `whole`: they are all that is worth keeping of it, so
        that the rows `recall` gave are dropped (rows noted since stay); `unchanged`: they are
        every row `recall` gave, as it gave them."""
        ...

    def note(self, folder: str, row: list[Any]) -> None:
        """A row of something just written, kept when the batch ends."""
        ...


class Storage(ABC):
    """One location's file tree, as the worker reaches it. Paths never leave the location: an
    adapter resolves them beneath its root without following links."""

    # Whether an earlier attempt of this execution may have left an entry under a temporary
    # name this storage writes (a batch retried): an adapter that removes such a leftover
    # before writing there (it may share its inode with a final name) skips that when not.
    leftovers: bool = True

    def close(self) -> None:  # noqa: B027 - adapters without resources to free have nothing to do
        """Free connections and descriptors."""

    @abstractmethod
    def check(self, *, writable: bool) -> None:
        """Raise StorageError unless the location root can be listed (and written)."""

    @abstractmethod
    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, not following a final symbolic link; None if absent."""

    @abstractmethod
    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        """The children of a directory whose `listing_key` comes after `after`, in that order,
        at most `limit` of them (0: all); and whether more follow."""

    @abstractmethod
    def open_read(self, path: str) -> Reader:
        """A file opened for reading; close it with `close_reader`."""

    @abstractmethod
    def close_reader(self, reader: Reader) -> None: ...

    @abstractmethod
    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> Writer:
        """A new file that will get `entry`'s metadata (as `policy` keeps it); `entry.size` is
        what is expected to be written."""

    def held_as(self, location: Location) -> Location:
        """The destination `location` as this storage, tried, can really hold it: itself, or
        the same with the settings the server allows (LAUNCHING uses what this returns)."""
        return location

    def keeps_folder_metadata(self, path: str) -> bool:
        """Whether the folder `path` ("" for the root) keeps metadata. Where it does not, it is
        taken to have the source's, so that it is never written nor found different."""
        return True

    def attributes(self, path: str) -> dict[str, Any] | None:
        """What the entry at `path` carries beyond Entry's fields, as `Entry.attributes`, for a
        destination of the same kind (SMB's security descriptor): the reader's stat has them
        for files; this is for folders and entries whose metadata alone is set. Lazy where
        costly, since most destinations ignore them."""
        return None

    def use_sync_index(self, index: SyncIndex) -> None:  # noqa: B027 - most storages list it all
        """Note what this storage writes in `index`, and read what its listings lack there."""

    def take_rejected(self) -> list[tuple[str, str]]:
        """Names the last listings left out because no file can have them, with the reason."""
        return []

    @abstractmethod
    def make_dir(self, path: str) -> bool:
        """Create a directory and missing parents; True if `path` itself was created."""

    @abstractmethod
    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        """Create or replace a symbolic link to `entry.target`, with its metadata. With
        `exclusive`, an entry already there stays and False is returned (so below too)."""

    @abstractmethod
    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        """Create or replace a device or named pipe like `entry`."""

    @abstractmethod
    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        """Make `path` (created or replaced) another name of the file at `existing`."""

    @abstractmethod
    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        """Give an existing entry the metadata of `entry` that `policy` keeps."""

    @abstractmethod
    def remove(self, path: str, kind: str) -> None:
        """Remove an entry, a folder only once it is empty (`remove_tree` removes a tree)."""

    def purge(self, path: str) -> int:
        """Remove the folder `path` with everything in it in the server's own way, where the
        location declares `recursive_delete`; the number of entries removed."""
        raise NotImplementedError(f"{type(self).__name__} has no recursive delete")

    def removal_slice(self, path: str, after: str, limit: int) -> list[Entry]:
        """For `remove_tree`: the children of `path` as `list_dir` slices them, and any it
        leaves out that the folder holds all the same, each as what to remove it as."""
        return self.list_dir(path, after=after, limit=limit)[0]


class Placing(Protocol[N]):
    """What `place` needs of an adapter that writes entries under a temporary name: its own
    moves, on names as it has them (a path, or a folder's descriptor and a name)."""

    def rename(self, temp: N, final: N, *, replace: bool) -> None:
        """`temp` becomes `final`; FileExistsError where `final` is taken and not `replace`d
        (asked only of storages that declare BY_RENAME)."""

    def link(self, temp: N, final: N) -> None:
        """`final` becomes another name of `temp`; FileExistsError where it is taken (asked
        only of storages that declare BY_LINK)."""

    def drop(self, temp: N) -> None:
        """Remove the temporary name, where it is still there."""


def place(moves: Placing[N], how: str, temp: N, final: N, *, exclusive: bool) -> bool:
    """Give a complete entry, written under `temp`, its final name: the one commit of the
    adapters that write under a temporary name. A rename replaces what is there; `exclusive`
    never does, as the storage declares (`how`: Capabilities.exclusive_commit): by a rename the
    server is told not to let replace anything (BY_RENAME), or by a hard link, which never
    replaces, with the temporary name dropped after (BY_LINK). Each is atomic; a storage with
    neither has no exclusive commit here. False: something was there, and stays."""
    if not exclusive:
        moves.rename(temp, final, replace=True)
        return True
    if how not in (BY_LINK, BY_RENAME):
        raise ValueError(f"no exclusive commit {how!r} here: the adapter's write is its own")
    try:
        if how == BY_LINK:
            try:
                moves.link(temp, final)
            finally:
                moves.drop(temp)
        else:
            moves.rename(temp, final, replace=False)
    except FileExistsError:
        moves.drop(temp)
        return False
    return True


TREE_SLICE = 1000  # children of a folder held at a time while a tree is removed entry by entry


def remove_tree(storage: Storage, path: str, can: Capabilities) -> int:
    """Remove the folder `path` with everything in it; the number of entries removed. Where the
    location declares `recursive_delete` (as an rclone backend declares Purge), the server does
    it; elsewhere it is done here, depth first, with the storage's own listing and `remove`,
    holding a slice of each folder on the way down (memory grows with the depth, not with
    the tree). A link is removed as itself, never followed."""
    if can.recursive_delete:
        return storage.purge(path)
    removed = 0
    # Each folder being emptied, what of its slice is left, and the listing key it ends at.
    stack: list[tuple[str, Iterator[Entry], str]] = [(path, iter(()), "")]
    while stack:
        folder, children, last = stack[-1]
        child = next(children, None)
        if child is None:
            page = storage.removal_slice(folder, last, TREE_SLICE)
            if page:
                end = page[-1]
                stack[-1] = (folder, iter(page), listing_key(end.path.rpartition("/")[2], end.kind))
                continue
            storage.remove(folder, DIR)
            stack.pop()
        elif child.kind == DIR:
            stack.append((child.path, iter(()), ""))
            continue
        else:
            storage.remove(child.path, child.kind)
        removed += 1
    return removed
