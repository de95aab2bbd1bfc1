"""`local` locations: a directory in the worker's own file system, through POSIX calls.

Every path is resolved beneath the location's root without following a symbolic link on the
way (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or one component at a time on kernels
without it): a link in the destination, or one swapped in while an execution runs, never leads a
write outside the root, and a link in the source never leads a read outside it. Entries are then
handled by name relative to their folder's descriptor.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Callable

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
from models.errors import ErrorCode
from models.locations import FsxLustreLocation, LocalLocation

_KINDS = {
    stat.S_IFREG: FILE,
    stat.S_IFDIR: DIR,
    stat.S_IFLNK: SYMLINK,
    stat.S_IFCHR: CHAR_DEVICE,
    stat.S_IFBLK: BLOCK_DEVICE,
    stat.S_IFIFO: FIFO,
    stat.S_IFSOCK: SOCKET,
}
_SPECIAL_TYPES = {CHAR_DEVICE: stat.S_IFCHR, BLOCK_DEVICE: stat.S_IFBLK, FIFO: stat.S_IFIFO}
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# O_NOATIME keeps reading from changing the source's atime; only the owner (or root) may use it.
_NOATIME = getattr(os, "O_NOATIME", 0)
_FOLDER = os.O_PATH | os.O_DIRECTORY | _NOFOLLOW
_PARENTS_KEPT = 64


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# The modes new entries get when permissions are not preserved, as any program would create them.
_UMASK = _umask()
DEFAULT_FILE_MODE = 0o666 & ~_UMASK
DEFAULT_DIR_MODE = 0o777 & ~_UMASK


def entry_from_stat(path: str, st: os.stat_result) -> Entry:
    return Entry(
        path,
        _KINDS.get(stat.S_IFMT(st.st_mode), SOCKET),
        st.st_size,
        st.st_mtime_ns,
        st.st_atime_ns,
        st.st_mode & 0o7777,
        st.st_uid,
        st.st_gid,
        st.st_nlink,
        st.st_ino,
        st.st_dev,
        st.st_rdev,
    )


class _How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE = 0x02 | 0x04 | 0x08  # NO_MAGICLINKS | NO_SYMLINKS | BENEATH
_openat2_works = True


def open_beneath(root: int, path: str, flags: int) -> int:
    """Open `path` (relative, '/'-separated) beneath the folder `root` without following any
    symbolic link; ELOOP where a link is in the way."""
    global _openat2_works
    if _openat2_works:
        how = _How(flags | os.O_CLOEXEC, 0, _RESOLVE)
        raw = path.encode(errors="surrogateescape")
        fd = _LIBC.syscall(_SYS_OPENAT2, root, raw, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return fd
        error = ctypes.get_errno()
        if error in (errno.ELOOP, errno.EXDEV) or (error == errno.ENOTDIR and _is_link(root, path)):
            raise OSError(errno.ELOOP, _LINK_IN_THE_WAY, path)
        if error not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter forbids it
            raise OSError(error, os.strerror(error), path)
        _openat2_works = False
    # One component at a time, each opened without following a link.
    parts = path.split("/")
    current = os.dup(root)
    try:
        for part in parts[:-1]:
            following = os.open(part, _FOLDER, dir_fd=current)
            os.close(current)
            current = following
        return os.open(parts[-1], flags | _NOFOLLOW, dir_fd=current)
    except OSError as error:
        if error.errno == errno.ELOOP or (error.errno == errno.ENOTDIR and _is_link(root, path)):
            raise OSError(errno.ELOOP, _LINK_IN_THE_WAY, path) from None
        raise
    finally:
        os.close(current)


_LINK_IN_THE_WAY = "a symbolic link is in the way (Ferry does not follow it)"


def _is_link(root: int, path: str) -> bool:
    """Whether a component of `path` is a symbolic link (to explain a refused open)."""
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        try:
            st = os.stat("/".join(parts[:end]), dir_fd=root, follow_symlinks=False)
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return True
    return False


class _FileReader:
    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    def read(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def stat(self) -> Entry:
        return entry_from_stat(self.path, os.fstat(self.fd))

    def version(self) -> tuple[int, int, int]:
        st = os.fstat(self.fd)
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _FileWriter:
    """Writes under the temporary name, then renames it into place, in one folder."""

    __slots__ = ("entry", "fd", "final", "folder", "policy", "temp")

    def __init__(
        self, fd: int, folder: int, temp: str, final: str, entry: Entry, policy: MetadataPolicy
    ) -> None:
        self.fd = fd
        self.folder = folder  # its own descriptor of the folder, closed at the end
        self.temp = temp
        self.final = final
        self.entry = entry
        self.policy = policy

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def commit(self, *, exclusive: bool) -> bool:
        fd, self.fd = self.fd, -1
        try:
            _set_fd_metadata(fd, self.entry, self.policy, created=True)
        finally:
            os.close(fd)
        placed = _place(self.folder, self.temp, self.final, exclusive)
        os.close(self.folder)  # on failure, abort() removes the temporary file and closes it
        self.folder = -1
        return placed

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.folder >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp, dir_fd=self.folder)
            os.close(self.folder)
            self.folder = -1


class _InFolder:
    """The moves `place` makes a commit of, by name in one folder's descriptor."""

    __slots__ = ("folder",)

    def __init__(self, folder: int) -> None:
        self.folder = folder

    def rename(self, temp: str, final: str, *, replace: bool) -> None:
        assert replace  # local declares BY_LINK for what must not replace
        os.rename(temp, final, src_dir_fd=self.folder, dst_dir_fd=self.folder)

    def link(self, temp: str, final: str) -> None:
        folder = self.folder
        os.link(temp, final, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)

    def drop(self, temp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=self.folder)


def _place(folder: int, temp: str, final: str, exclusive: bool) -> bool:
    how = LocalLocation.CAPABILITIES.exclusive_commit
    return place(_InFolder(folder), how, temp, final, exclusive=exclusive)


def _set_fd_metadata(fd: int, entry: Entry, policy: MetadataPolicy, *, created: bool) -> None:
    """`created`: the entry was just made with a placeholder mode that must not stay."""
    # Owner first: chown clears setuid/setgid bits, so the mode is set after it.
    if (policy.uid or policy.gid) and entry.uid >= 0:
        uid, gid = entry.uid if policy.uid else -1, entry.gid if policy.gid else -1
        _metadata(f"owner {uid}:{gid}", os.fchown, fd, uid, gid)
    if policy.mode or created:
        mode = entry.mode if policy.mode else _default_mode(entry)
        _metadata(f"mode {mode:04o}", os.fchmod, fd, mode)
    if policy.mtime:
        times = (entry.atime_ns if policy.atime else entry.mtime_ns, entry.mtime_ns)
        _metadata("times", os.utime, fd, ns=times)


def _set_name_metadata(
    folder: int, name: str, entry: Entry, policy: MetadataPolicy, *, created: bool
) -> None:
    """For links and devices, which are not opened: by name in `folder`, never followed."""
    if (policy.uid or policy.gid) and entry.uid >= 0:
        uid, gid = entry.uid if policy.uid else -1, entry.gid if policy.gid else -1
        _metadata(
            f"owner {uid}:{gid}", os.chown, name, uid, gid, dir_fd=folder, follow_symlinks=False
        )
    # Linux has no modes on symbolic links.
    if entry.kind != SYMLINK and (policy.mode or created):
        mode = entry.mode if policy.mode else _default_mode(entry)
        _metadata(f"mode {mode:04o}", os.chmod, name, mode, dir_fd=folder, follow_symlinks=False)
    if policy.mtime:
        times = (entry.atime_ns if policy.atime else entry.mtime_ns, entry.mtime_ns)
        _metadata("times", os.utime, name, ns=times, dir_fd=folder, follow_symlinks=False)


def _metadata(what: str, call: Callable[..., None], *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)
    except OSError as error:
        if error.errno in TRANSIENT_ERRNOS or error.errno == errno.ENOENT:
            raise  # to be retried, or missing: not the metadata's failure
        raise MetadataError(f"cannot set {what}: {describe_error(error)}") from error
    except ValueError as error:
        # What Python's chmod() raises for a link when it may not follow it.
        raise MetadataError(f"cannot set {what}: {_LINK_IN_THE_WAY}") from error


def _scanned_kind(item: os.DirEntry[str]) -> str:
    """A folder or not, from the directory entry (no stat on most file systems)."""
    return DIR if item.is_dir(follow_symlinks=False) else FILE


def _default_mode(entry: Entry) -> int:
    return DEFAULT_DIR_MODE if entry.kind == DIR else DEFAULT_FILE_MODE


class LocalStorage(Storage):
    def __init__(self, root: str, temp_tag: str = "") -> None:
        self.root = root.rstrip("/") or "/"
        self._temp_tag = temp_tag
        self._root_fd: int | None = None
        # Descriptors of the folders written to lately, so that a batch resolves each once.
        self._folders: OrderedDict[str, int] = OrderedDict()

    def close(self) -> None:
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- resolving paths ---------------------------------------------------------------------

    def _root(self) -> int:
        if self._root_fd is None:
            try:
                self._root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise self._gone() from None
        return self._root_fd

    def _gone(self) -> StorageError:
        """Never recreate a location root that went away: that is the location failing."""
        return StorageError(f"{self.root} no longer exists", code=ErrorCode.LOCATION_UNAVAILABLE)

    def _folder(self, path: str) -> int:
        """A descriptor of the folder `path` ("" for the root), cached; do not close it."""
        if not path:
            return self._root()
        fd = self._folders.get(path)
        if fd is not None:
            self._folders.move_to_end(path)
            return fd
        fd = open_beneath(self._root(), path, _FOLDER)
        self._folders[path] = fd
        if len(self._folders) > _PARENTS_KEPT:
            os.close(self._folders.popitem(last=False)[1])
        return fd

    def _parent(self, path: str, create: bool = False) -> tuple[int, str]:
        """The descriptor of `path`'s folder and `path`'s name in it. With `create`, missing
        folders are made (batches run in parallel: a parent may not exist yet)."""
        parent, _, name = path.rpartition("/")
        try:
            return self._folder(parent), name
        except FileNotFoundError:
            if not create:
                raise
            if not parent:
                raise self._gone() from None
            self.make_dir(parent)
            return self._folder(parent), name

    # --- the interface -----------------------------------------------------------------------

    def check(self, *, writable: bool) -> None:
        try:
            st = os.stat(self.root)
        except OSError as error:
            raise StorageError(f"{self.root}: {describe_error(error)}") from error
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise StorageError(f"{self.root}: permission denied (the worker cannot list it)")
        if writable and not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"{self.root}: permission denied (the worker cannot write to it)")

    def stat(self, path: str) -> Entry | None:
        try:
            if not path:
                return entry_from_stat("", os.fstat(self._root()))
            folder, name = self._parent(path)
            entry = entry_from_stat(path, os.stat(name, dir_fd=folder, follow_symlinks=False))
        except FileNotFoundError:
            return None
        except StorageError:
            return None
        if entry.kind == SYMLINK:
            entry.target = os.readlink(name, dir_fd=folder)
        return entry

    def list_dir(self, path: str, *, after: str = "", limit: int = 0) -> tuple[list[Entry], bool]:
        prefix = path + "/" if path else ""
        fd = open_beneath(self._root(), path or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            # A folder's names come in no order: a slice of a large one is found by reading
            # every name, keeping no more of them than the slice holds.
            with os.scandir(fd) as items:
                keyed = ((listing_key(item.name, _scanned_kind(item)), item.name) for item in items)
                chosen, more = listing_slice(keyed, after, limit)
            entries = []
            for _, name in chosen:
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since the folder was read
                entry = entry_from_stat(prefix + name, info)
                if entry.kind == SYMLINK:
                    entry.target = os.readlink(name, dir_fd=fd)
                entries.append(entry)
        finally:
            os.close(fd)
        return entries, more

    def open_read(self, path: str) -> _FileReader:
        try:
            fd = open_beneath(self._root(), path, os.O_RDONLY | _NOATIME)
        except PermissionError:
            if not _NOATIME:
                raise
            fd = open_beneath(self._root(), path, os.O_RDONLY)  # not the owner: no O_NOATIME
        return _FileReader(fd, path)

    def close_reader(self, reader: _FileReader) -> None:  # type: ignore[override]
        os.close(reader.fd)

    def create_file(self, path: str, entry: Entry, policy: MetadataPolicy) -> _FileWriter:
        folder, name = self._parent(path, create=True)
        temp = temp_name(self._temp_tag, path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        try:
            fd = os.open(temp, flags, 0o600, dir_fd=folder)
        except FileExistsError:
            # A leftover of an earlier attempt may share its inode with the final name (a crash
            # between link() and unlink()): never write through it. Removed only when found,
            # not before every file.
            os.unlink(temp, dir_fd=folder)
            fd = os.open(temp, flags, 0o600, dir_fd=folder)
        return _FileWriter(fd, os.dup(folder), temp, name, entry, policy)

    def make_dir(self, path: str) -> bool:
        if not path:
            self._root()
            return False
        folder, name = self._parent(path, create=True)
        try:
            os.mkdir(name, dir_fd=folder)
            return True
        except FileExistsError:
            st = os.stat(name, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                raise
            return False
        except FileNotFoundError:
            raise self._gone() from None  # the folder we hold was removed

    def _make(
        self,
        path: str,
        entry: Entry | None,
        policy: MetadataPolicy | None,
        exclusive: bool,
        create: Callable[[int, str], None],
    ) -> bool:
        """Make an entry under the temporary name with `create(folder, name)`, give it its
        metadata, then its final name."""
        folder, name = self._parent(path, create=True)
        temp = temp_name(self._temp_tag, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)
        create(folder, temp)
        try:
            if entry is not None and policy is not None:
                _set_name_metadata(folder, temp, entry, policy, created=True)
            return _place(folder, temp, name, exclusive)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=folder)
            raise

    def make_symlink(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        target = entry.target or ""
        return self._make(
            path,
            entry,
            policy,
            exclusive,
            lambda folder, name: os.symlink(target, name, dir_fd=folder),
        )

    def make_special(
        self, path: str, entry: Entry, policy: MetadataPolicy, *, exclusive: bool = False
    ) -> bool:
        mode = _SPECIAL_TYPES[entry.kind] | 0o600
        return self._make(
            path,
            entry,
            policy,
            exclusive,
            lambda folder, name: os.mknod(name, mode, entry.rdev, dir_fd=folder),
        )

    def make_hard_link(self, path: str, existing: str, *, exclusive: bool = False) -> bool:
        source, source_name = self._parent(existing)
        source = os.dup(source)  # _parent() below may let the cache close it
        try:
            return self._make(
                path,
                None,
                None,
                exclusive,
                lambda folder, name: os.link(
                    source_name, name, src_dir_fd=source, dst_dir_fd=folder, follow_symlinks=False
                ),
            )
        finally:
            os.close(source)

    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        folder, name = self._parent(path) if path else (self._root(), ".")
        _set_name_metadata(folder, name, entry, policy, created=False)

    def remove(self, path: str, kind: str) -> None:
        folder, name = self._parent(path)
        if kind != DIR:
            os.unlink(name, dir_fd=folder)
            return
        os.rmdir(name, dir_fd=folder)
        self._forget(path)

    def _forget(self, path: str) -> None:
        """Drop cached descriptors of a removed folder and of folders below it."""
        for cached in [p for p in self._folders if p == path or p.startswith(path + "/")]:
            os.close(self._folders.pop(cached))


def open_location(location: LocalLocation | FsxLustreLocation, temp_tag: str) -> LocalStorage:
    """A `local` location, or FSx for Lustre beneath its mount on the agent's host."""
    root = location.Path if isinstance(location, LocalLocation) else location.path
    return LocalStorage(root, temp_tag)
