"""NfsStorage against a real nfs-ganesha (NFSv4.x): bytes and metadata are checked both through
the adapter and on the disk behind the export."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator

import pytest
import xxhash
from helpers import free_port
from nfs_server import NfsServer, nfs_server, rclone_nfs

from activities.storage.base import (
    DIR,
    FIFO,
    FILE,
    SYMLINK,
    Entry,
    MetadataPolicy,
    StorageError,
    is_transient,
    remove_tree,
    temp_name,
)
from activities.storage.nfs import NfsStorage
from models.errors import ErrorCode
from models.locations import NfsLocation

__all__ = ["nfs_server"]  # the fixture, imported for pytest to find

EVERYTHING = MetadataPolicy(mtime=True, atime=True, uid=True, gid=True, mode=True, devices=True)
MTIME_NS = 1_600_000_000_123_456_789
ATIME_NS = 1_500_000_000_987_654_321
NFS_CAN = NfsLocation.CAPABILITIES  # no recursive delete: emptied folder by folder
MIB = 1 << 20


@pytest.fixture
def folder(nfs_server: NfsServer, request: pytest.FixtureRequest) -> str:
    """This test's own folder of the export, on disk."""
    path = os.path.join(nfs_server.export_dir, request.node.name)
    os.makedirs(path)
    return path


@pytest.fixture
def storage(nfs_server: NfsServer, folder: str) -> Iterator[NfsStorage]:
    subdirectory = f"{nfs_server.pseudo_path}/{os.path.basename(folder)}"
    storage = NfsStorage("127.0.0.1", nfs_server.port, subdirectory, temp_tag="test")
    yield storage
    storage.close()


def write(storage: NfsStorage, path: str, data: bytes, entry: Entry | None = None) -> bool:
    entry = entry or Entry(path, FILE, size=len(data), mode=0o644, mtime_ns=MTIME_NS)
    writer = storage.create_file(path, entry, EVERYTHING)
    writer.write(data)
    return writer.commit(exclusive=False)


def read(storage: NfsStorage, path: str) -> bytes:
    reader = storage.open_read(path)
    try:
        return reader.read(1 << 30)
    finally:
        storage.close_reader(reader)


def test_a_file_keeps_its_bytes_and_metadata(storage: NfsStorage, folder: str):
    entry = Entry(
        "deep/er/file.bin", FILE, size=5, mtime_ns=MTIME_NS, atime_ns=ATIME_NS, mode=0o4750,
        uid=1234, gid=5678,
    )  # fmt: skip
    assert write(storage, entry.path, b"hello", entry)

    on_disk = os.stat(os.path.join(folder, entry.path))
    assert stat.S_IMODE(on_disk.st_mode) == 0o4750  # setuid survives the chown
    assert (on_disk.st_uid, on_disk.st_gid) == (1234, 5678)
    assert (on_disk.st_mtime_ns, on_disk.st_atime_ns) == (MTIME_NS, ATIME_NS)
    assert os.listdir(os.path.join(folder, "deep/er")) == ["file.bin"]  # no temporary file left

    seen = storage.stat(entry.path)
    assert seen is not None
    assert (seen.kind, seen.size, seen.mode, seen.uid, seen.gid) == (FILE, 5, 0o4750, 1234, 5678)
    assert (seen.mtime_ns, seen.atime_ns) == (MTIME_NS, ATIME_NS)
    assert seen.inode == on_disk.st_ino
    assert read(storage, entry.path) == b"hello"
    assert storage.stat("deep/er/missing") is None
    assert storage.stat("").kind == DIR


def test_a_reader_reports_the_file_and_its_version(storage: NfsStorage, folder: str):
    write(storage, "f", b"12345")
    reader = storage.open_read("f")
    try:
        assert reader.stat().size == 5
        version = reader.version()
        assert reader.read(3) == b"123"
        assert reader.version() == version
        with open(os.path.join(folder, "f"), "ab") as file:
            file.write(b"6")
        assert reader.version() != version
    finally:
        storage.close_reader(reader)


def test_listing_is_in_listing_key_order_and_reports_kinds(storage: NfsStorage, folder: str):
    os.mkdir(os.path.join(folder, "a"))
    for name in ("a.b", "a-c", "a0"):
        open(os.path.join(folder, name), "w").close()
    os.symlink("a.b", os.path.join(folder, "link"))
    os.mkfifo(os.path.join(folder, "pipe"))

    entries, more = storage.list_dir("")
    assert [(e.path, e.kind) for e in entries] == [
        ("a-c", FILE), ("a.b", FILE), ("a", DIR), ("a0", FILE), ("link", SYMLINK), ("pipe", FIFO),
    ]  # fmt: skip
    assert not more
    assert entries[4].target == "a.b"
    assert storage.list_dir("a") == ([], False)


def test_a_large_folder_is_listed_in_slices(storage: NfsStorage, folder: str):
    big = os.path.join(folder, "big")
    os.mkdir(big)
    for number in range(50):
        if number % 5:
            open(os.path.join(big, f"f{number:02}"), "w").close()
        else:
            os.mkdir(os.path.join(big, f"f{number:02}"))  # listed as "fNN/"
    whole, more = storage.list_dir("big")
    assert len(whole) == 50 and not more

    sliced: list[Entry] = []
    after = ""
    while True:
        entries, more = storage.list_dir("big", after=after, limit=7)
        sliced += entries
        if not more:
            break
        assert len(entries) == 7
        last = entries[-1]
        after = last.path.rpartition("/")[2] + ("/" if last.kind == DIR else "")
    assert [e.path for e in sliced] == [e.path for e in whole]


def test_symbolic_and_hard_links_round_trip(storage: NfsStorage, folder: str):
    link = Entry("links/to", SYMLINK, uid=1234, gid=5678, target="../some/where")
    assert storage.make_symlink(link.path, link, EVERYTHING)
    assert os.readlink(os.path.join(folder, "links/to")) == "../some/where"
    assert os.lstat(os.path.join(folder, "links/to")).st_uid == 1234
    seen = storage.stat("links/to")
    assert seen is not None and (seen.kind, seen.target) == (SYMLINK, "../some/where")
    assert not storage.make_symlink(link.path, link, EVERYTHING, exclusive=True)

    write(storage, "links/file", b"shared")
    assert storage.make_hard_link("links/other", "links/file")
    first, second = storage.stat("links/file"), storage.stat("links/other")
    assert first is not None and second is not None
    assert first.nlink == 2 and first.hard_link_key == second.hard_link_key is not None
    disk = os.stat(os.path.join(folder, "links/other"))
    assert disk.st_ino == os.stat(os.path.join(folder, "links/file")).st_ino
    assert not storage.make_hard_link("links/other", "links/file", exclusive=True)


def test_an_exclusive_commit_leaves_an_existing_file_alone(storage: NfsStorage, folder: str):
    write(storage, "x", b"old")
    writer = storage.create_file("x", Entry("x", FILE, size=3), EVERYTHING)
    writer.write(b"new")
    assert writer.commit(exclusive=True) is False
    assert read(storage, "x") == b"old"
    assert os.listdir(folder) == ["x"]

    assert write(storage, "x", b"newer")
    assert read(storage, "x") == b"newer"

    writer = storage.create_file("y", Entry("y", FILE), EVERYTHING)
    writer.write(b"abandoned")
    writer.abort()
    assert os.listdir(folder) == ["x"]


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_retry_never_writes_through_a_leftover_of_the_attempt_before(
    storage: NfsStorage, folder: str, kind: str
):
    # An attempt that died between LINK and REMOVE of an exclusive commit left its temporary
    # name as one more name of the file it put in place: the retry (leftovers, the default)
    # removes it before writing there.
    with open(os.path.join(folder, "kept"), "wb") as file:
        file.write(b"kept")
    os.link(os.path.join(folder, "kept"), os.path.join(folder, temp_name("test", "x")))
    assert storage.leftovers
    if kind == "file":
        assert write(storage, "x", b"new")
        assert read(storage, "x") == b"new"
    else:
        assert storage.make_hard_link("x", "kept")
    assert read(storage, "kept") == b"kept"
    assert sorted(os.listdir(folder)) == ["kept", "x"]


def test_metadata_of_a_folder_and_removal(storage: NfsStorage, folder: str):
    assert storage.make_dir("d/sub")
    assert not storage.make_dir("d/sub")
    storage.set_metadata("d", Entry("d", DIR, mode=0o1770, mtime_ns=MTIME_NS), EVERYTHING)
    assert stat.S_IMODE(os.stat(os.path.join(folder, "d")).st_mode) == 0o1770
    write(storage, "d/f1", b"1")
    write(storage, "d/sub/f2", b"2")
    os.symlink("/etc", os.path.join(folder, "d/sub/out"))

    with pytest.raises(OSError) as refused:
        storage.remove("d", DIR)
    assert refused.value.errno == errno.ENOTEMPTY
    storage.remove("d/f1", FILE)
    assert remove_tree(storage, "d", NFS_CAN) == 4  # d, sub, f2, out: the link as itself
    assert os.listdir(folder) == []
    assert os.path.isdir("/etc")

    # A location whose root goes away fails as a whole; its root is never recreated.
    storage.make_dir("inner")
    inner = NfsStorage("127.0.0.1", storage.port, f"{storage.export_path}/inner")
    try:
        assert inner.make_dir("kept")
        assert remove_tree(storage, "inner", NFS_CAN) == 2
        with pytest.raises(StorageError, match="no longer exists"):
            inner.create_file("again/f", Entry("again/f", FILE), EVERYTHING)
    finally:
        inner.close()
    assert os.listdir(folder) == []


def test_errors_are_os_errors_with_their_errno(storage: NfsStorage):
    with pytest.raises(FileNotFoundError) as missing:
        storage.open_read("nothing")
    assert missing.value.strerror == "No such file or directory"
    assert not is_transient(missing.value)
    with pytest.raises(OSError) as special:
        storage.make_special("pipe", Entry("pipe", FIFO), EVERYTHING)
    assert special.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as escape:
        storage.stat("../elsewhere")
    assert escape.value.errno == errno.EINVAL


def test_a_big_file_streams_in_chunks(storage: NfsStorage, folder: str):
    chunk = os.urandom(4 * MIB)
    count = 16  # 64 MiB, each chunk a different one
    written = xxhash.xxh3_128()
    started = time.monotonic()
    writer = storage.create_file(
        "big.bin", Entry("big.bin", FILE, size=count * len(chunk)), EVERYTHING
    )
    for number in range(count):
        data = number.to_bytes(8, "big") + chunk[8:]
        writer.write(data)
        written.update(data)
    assert writer.commit(exclusive=False)
    write_seconds = time.monotonic() - started

    started = time.monotonic()
    read_back = xxhash.xxh3_128()
    reader = storage.open_read("big.bin")
    try:
        while data := reader.read(4 * MIB):
            read_back.update(data)
    finally:
        storage.close_reader(reader)
    read_seconds = time.monotonic() - started
    assert read_back.hexdigest() == written.hexdigest()

    on_disk = xxhash.xxh3_128()
    with open(os.path.join(folder, "big.bin"), "rb") as file:
        while data := file.read(4 * MIB):
            on_disk.update(data)
    assert on_disk.hexdigest() == written.hexdigest()
    print(f"64 MiB: write {64 / write_seconds:.0f} MiB/s, read {64 / read_seconds:.0f} MiB/s")


def test_check_accepts_a_writable_folder(storage: NfsStorage, folder: str):
    storage.check(writable=True)
    assert os.listdir(folder) == []  # the probe file is gone
    assert not os.path.exists(os.path.join(folder, temp_name("test", "")))


@pytest.mark.parametrize("version", ["NFS4_1", "NFS4_0"])
def test_each_nfsv4_version_connects(nfs_server: NfsServer, folder: str, version: str):
    storage = NfsStorage(
        "127.0.0.1", nfs_server.port, f"/export/{os.path.basename(folder)}", version
    )
    try:
        storage.check(writable=True)
        assert storage.make_dir("v")
    finally:
        storage.close()
    assert os.path.isdir(os.path.join(folder, "v"))


def check_error(storage: NfsStorage) -> str:
    try:
        with pytest.raises(StorageError) as failed:
            storage.check(writable=False)
    finally:
        storage.close()
    assert failed.value.code == ErrorCode.LOCATION_UNAVAILABLE
    return str(failed.value)


def test_check_reports_an_unreachable_server():
    port = free_port()
    started = time.monotonic()
    message = check_error(NfsStorage("127.0.0.1", port, "/export"))
    assert message == f"cannot reach the NFS server 127.0.0.1:{port}: connection refused"
    assert time.monotonic() - started < 2


def test_check_reports_a_missing_or_wrong_subdirectory(nfs_server: NfsServer, folder: str):
    port = nfs_server.port
    message = check_error(NfsStorage("127.0.0.1", port, "/export/no/such/dir"))
    assert message == (
        f"the export path /export/no/such/dir does not exist on the NFS server 127.0.0.1:{port}:"
        " check Subdirectory"
    )
    open(os.path.join(folder, "plain"), "w").close()
    subdirectory = f"/export/{os.path.basename(folder)}/plain"
    message = check_error(NfsStorage("127.0.0.1", port, subdirectory))
    assert message == (
        f"the export path {subdirectory} on the NFS server 127.0.0.1:{port} is not a directory:"
        " check Subdirectory"
    )
    # ganesha serves no NFSv3 without rpcbind: the mount is refused, and said so.
    message = check_error(NfsStorage("127.0.0.1", port, "/export", "NFS3"))
    assert message.startswith(
        f"the NFS server 127.0.0.1:{port} did not mount the export path /export (NFS 3: "
    )
    assert message.endswith("check Subdirectory and NfsVersion")


def test_nfsv3_on_rclone():
    """NFSv3 (MOUNT on the NFS port), where AUTOMATIC falls back to it; rclone's VFS keeps no
    modes nor owners, so only bytes and times are checked."""
    with rclone_nfs() as server:
        os.mkdir(os.path.join(server.export_dir, "sub"))
        storage = NfsStorage("127.0.0.1", server.port, "/sub")
        try:
            storage.check(writable=True)
            entry = Entry("d/f", FILE, size=4, mtime_ns=MTIME_NS)
            assert write(storage, "d/f", b"data", entry)
            assert read(storage, "d/f") == b"data"
            writer = storage.create_file("d/f", entry, EVERYTHING)
            writer.write(b"else")
            # No LINK there, and no RENAME that refuses to replace: an exclusive commit is
            # refused, not made by a look then a rename (a writer between would lose its file).
            with pytest.raises(OSError, match="no hard links") as refused:
                writer.commit(exclusive=True)
            assert refused.value.errno == errno.EOPNOTSUPP
            writer.abort()
            assert read(storage, "d/f") == b"data"
            entries, _ = storage.list_dir("d")
            assert [(e.path, e.size) for e in entries] == [("d/f", 4)]
            assert entries[0].mtime_ns // 1_000_000_000 == MTIME_NS // 1_000_000_000
            assert remove_tree(storage, "d", NFS_CAN) == 2
        finally:
            storage.close()
