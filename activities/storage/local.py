"""`local` locations: a directory in the worker's own file system, through POSIX calls."""

from __future__ import annotations

import contextlib
import os
import stat
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
    Capabilities,
    Entry,
    MetadataError,
    MetadataPolicy,
    Storage,
    StorageError,
    describe_error,
    temp_path,
)

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
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
# O_NOATIME keeps reading from changing the source's atime; only the owner (or root) may use it.
_NOATIME = getattr(os, "O_NOATIME", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


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
        path=path,
        kind=_KINDS.get(stat.S_IFMT(st.st_mode), SOCKET),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        atime_ns=st.st_atime_ns,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        nlink=st.st_nlink,
        inode=st.st_ino,
        device=st.st_dev,
        rdev=st.st_rdev,
    )


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
    """Writes under the temporary name, then renames it into place."""

    __slots__ = ("fd", "final", "temp")

    def __init__(self, fd: int, temp: str, final: str) -> None:
        self.fd = fd
        self.temp = temp
        self.final = final

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def commit(self, entry: Entry, policy: MetadataPolicy, *, exclusive: bool) -> bool:
        fd, self.fd = self.fd, -1
        try:
            _set_fd_metadata(fd, entry, policy)
        finally:
            os.close(fd)
        if not exclusive:
            os.rename(self.temp, self.final)
            return True
        # link() fails if the final name exists: an atomic "create, never overwrite".
        try:
            os.link(self.temp, self.final)
        except FileExistsError:
            return False
        finally:
            os.unlink(self.temp)
        return True

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        _unlink_quietly(self.temp)


def _set_fd_metadata(fd: int, entry: Entry, policy: MetadataPolicy) -> None:
    # Owner first: chown clears setuid/setgid bits, so the mode is set after it.
    if (policy.uid or policy.gid) and entry.uid >= 0:
        uid, gid = entry.uid if policy.uid else -1, entry.gid if policy.gid else -1
        _metadata(f"owner {uid}:{gid}", os.fchown, fd, uid, gid)
    mode = entry.mode if policy.mode else DEFAULT_FILE_MODE
    _metadata(f"mode {mode:04o}", os.fchmod, fd, mode)
    if policy.mtime:
        times = (entry.atime_ns if policy.atime else entry.mtime_ns, entry.mtime_ns)
        _metadata("times", os.utime, fd, ns=times)


def _metadata(what: str, call: Callable[..., None], *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)
    except OSError as error:
        if error.errno in TRANSIENT_ERRNOS:
            raise
        raise MetadataError(f"cannot set {what}: {describe_error(error)}") from error


class LocalStorage(Storage):
    capabilities = Capabilities(
        posix_metadata=True, hard_links=True, symlinks=True, devices=True, time_resolution_ns=1
    )

    def __init__(self, root: str, temp_tag: str = "") -> None:
        self.root = root.rstrip("/") or "/"
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        self._temp_tag = temp_tag

    def _abs(self, path: str) -> str:
        return self._prefix + path if path else self.root

    def _temp(self, path: str) -> str:
        return self._abs(temp_path(self._temp_tag, path))

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
            st = os.lstat(self._abs(path))
        except FileNotFoundError:
            return None
        entry = entry_from_stat(path, st)
        if entry.kind == SYMLINK:
            entry.target = os.readlink(self._abs(path))
        return entry

    def list_dir(self, path: str) -> list[Entry]:
        prefix = path + "/" if path else ""
        entries = []
        with os.scandir(self._abs(path)) as items:
            for item in items:
                st = item.stat(follow_symlinks=False)
                kind = _KINDS.get(stat.S_IFMT(st.st_mode), SOCKET)
                entry = Entry(
                    prefix + item.name,
                    kind,
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
                if kind == SYMLINK:
                    entry.target = os.readlink(item.path)
                entries.append(entry)
        return entries

    def open_read(self, path: str) -> _FileReader:
        full = self._abs(path)
        try:
            fd = os.open(full, _READ_FLAGS | _NOATIME)
        except PermissionError:
            if not _NOATIME:
                raise
            fd = os.open(full, _READ_FLAGS)  # not the owner: read without O_NOATIME
        return _FileReader(fd, path)

    def close_reader(self, reader: _FileReader) -> None:  # type: ignore[override]
        os.close(reader.fd)

    def create_file(self, path: str) -> _FileWriter:
        temp = self._temp(path)
        try:
            fd = os.open(temp, _WRITE_FLAGS, 0o600)
        except FileNotFoundError:
            # Batches run in parallel; the parent may not have been created yet.
            self.make_dir(path.rpartition("/")[0])
            fd = os.open(temp, _WRITE_FLAGS, 0o600)
        return _FileWriter(fd, temp, self._abs(path))

    def make_dir(self, path: str) -> bool:
        try:
            os.mkdir(self._abs(path) if path else self._missing_root())
            return True
        except FileExistsError:
            if not os.path.isdir(self._abs(path)):
                raise
            return False
        except FileNotFoundError:
            self._missing_root()
            os.makedirs(self._abs(path), exist_ok=True)
            return True

    def _missing_root(self) -> str:
        """Never recreate a location root that went away: that is the location failing."""
        if not os.path.isdir(self.root):
            raise StorageError(f"{self.root} no longer exists", code="LocationUnavailable")
        return self.root

    def _in_place(self, path: str, create: Callable[[str], None]) -> str:
        """Create an entry under the temporary name with `create(temp)`; return that name."""
        temp = self._temp(path)
        _unlink_quietly(temp)
        try:
            create(temp)
        except FileNotFoundError:
            self.make_dir(path.rpartition("/")[0])
            create(temp)
        return temp

    def make_symlink(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        target = entry.target or ""
        temp = self._in_place(path, lambda name: os.symlink(target, name))
        try:
            _set_path_metadata(temp, entry, policy, created=True)
            os.rename(temp, self._abs(path))
        except BaseException:
            _unlink_quietly(temp)
            raise

    def make_special(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        file_type = _SPECIAL_TYPES[entry.kind]
        temp = self._in_place(path, lambda name: os.mknod(name, file_type | 0o600, entry.rdev))
        try:
            _set_path_metadata(temp, entry, policy, created=True)
            os.rename(temp, self._abs(path))
        except BaseException:
            _unlink_quietly(temp)
            raise

    def make_hard_link(self, path: str, existing: str) -> None:
        source = self._abs(existing)
        temp = self._in_place(path, lambda name: os.link(source, name))
        try:
            os.rename(temp, self._abs(path))
        except BaseException:
            _unlink_quietly(temp)
            raise

    def set_metadata(self, path: str, entry: Entry, policy: MetadataPolicy) -> None:
        _set_path_metadata(self._abs(path), entry, policy, created=False)

    def remove(self, path: str, kind: str, *, recursive: bool = False) -> int:
        full = self._abs(path)
        if kind != DIR:
            os.unlink(full)
            return 1
        removed = 1
        if recursive:
            for folder, folders, files in os.walk(full, topdown=False):
                for name in files:
                    os.unlink(os.path.join(folder, name))
                for name in folders:
                    child = os.path.join(folder, name)
                    if os.path.islink(child):
                        os.unlink(child)
                    else:
                        os.rmdir(child)
                removed += len(files) + len(folders)
        os.rmdir(full)
        return removed


def _set_path_metadata(full: str, entry: Entry, policy: MetadataPolicy, *, created: bool) -> None:
    """`created`: the entry was just made with a placeholder mode that must not stay."""
    if (policy.uid or policy.gid) and entry.uid >= 0:
        uid, gid = entry.uid if policy.uid else -1, entry.gid if policy.gid else -1
        _metadata(f"owner {uid}:{gid}", os.chown, full, uid, gid, follow_symlinks=False)
    # Linux has no modes on symbolic links.
    if entry.kind != SYMLINK and (policy.mode or created):
        mode = entry.mode if policy.mode else _default_mode(entry)
        _metadata(f"mode {mode:04o}", os.chmod, full, mode)
    if policy.mtime:
        times = (entry.atime_ns if policy.atime else entry.mtime_ns, entry.mtime_ns)
        _metadata("times", os.utime, full, ns=times, follow_symlinks=False)


def _default_mode(entry: Entry) -> int:
    return DEFAULT_DIR_MODE if entry.kind == DIR else DEFAULT_FILE_MODE


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
