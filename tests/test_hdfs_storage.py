"""HdfsStorage against the WebHDFS stand-in (tests/webhdfs_server.py): bytes and metadata are
checked both through the adapter and in the stand-in's namespace."""

from __future__ import annotations

import errno
import os
import tracemalloc
from collections.abc import Iterator

import hdfs
import pytest
from helpers import free_port
from webhdfs_server import HdfsCluster

from activities.storage.base import (
    DIR,
    FILE,
    NO_POSIX_ID,
    SYMLINK,
    Entry,
    MetadataError,
    MetadataPolicy,
    StorageError,
    remove_tree,
)
from activities.storage.hdfs import HdfsStorage
from models.errors import ErrorCode
from models.locations import HdfsLocation

MTIME_NS = 1_600_000_000_123_000_000  # HDFS keeps milliseconds
ATIME_NS = 1_500_000_000_987_000_000
MIB = 1 << 20
EVERYTHING = MetadataPolicy(
    mtime=True, atime=True, uid=False, gid=False, mode=True, devices=False,
    owner_name=True, group_name=True, mode_bits=0o1777,
)  # fmt: skip


@pytest.fixture
def cluster(tmp_path) -> Iterator[HdfsCluster]:
    with HdfsCluster(tmp_path / "hdfs", namenodes=2, groups={"alice": ("staff",)}) as cluster:
        cluster.mkdir("/data", "alice", "staff")
        yield cluster


def storage_of(
    cluster: HdfsCluster, user: str = "alice", root: str = "/data", **more: object
) -> HdfsStorage:
    namenodes = [("127.0.0.1", port) for port in cluster.namenode_ports]
    options = {"block_size": 64 * MIB, "replication": 2, "temp_tag": "test", **more}
    return HdfsStorage(namenodes, root, user, **options)  # type: ignore[arg-type]


@pytest.fixture
def storage(cluster: HdfsCluster) -> Iterator[HdfsStorage]:
    storage = storage_of(cluster)
    yield storage
    storage.close()


def write(storage: HdfsStorage, path: str, data: bytes, entry: Entry | None = None) -> bool:
    entry = entry or Entry(path, FILE, size=len(data), mode=0o640, mtime_ns=MTIME_NS)
    writer = storage.create_file(path, entry, EVERYTHING)
    writer.write(data)
    return writer.commit(exclusive=False)


def read(storage: HdfsStorage, path: str) -> bytes:
    reader = storage.open_read(path)
    try:
        return b"".join(iter(lambda: reader.read(MIB), b""))
    finally:
        storage.close_reader(reader)


def test_a_file_written_gets_its_bytes_metadata_block_size_and_replication(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    data = os.urandom(3 * MIB + 17)
    entry = Entry(
        "a/b.bin", FILE, size=len(data), mtime_ns=MTIME_NS, atime_ns=ATIME_NS, mode=0o1640
    )
    storage.make_dir("a")
    writer = storage.create_file("a/b.bin", entry, EVERYTHING)
    for start in range(0, len(data), MIB):
        writer.write(data[start : start + MIB])
    assert storage.stat("a/b.bin") is None  # nothing under the final name before commit
    assert writer.commit(exclusive=False)

    assert cluster.read("/data/a/b.bin") == data
    status = cluster.status("/data/a/b.bin")
    assert (status["blockSize"], status["replication"]) == (64 * MIB, 2)
    assert (status["permission"], status["owner"], status["group"]) == ("1640", "alice", "staff")
    assert status["modificationTime"] == MTIME_NS // 1_000_000
    assert status["accessTime"] == ATIME_NS // 1_000_000
    assert [e.path for e in storage.list_dir("a")[0]] == ["a/b.bin"]  # no temporary name left

    seen = storage.stat("a/b.bin")
    assert seen is not None
    assert (seen.kind, seen.size, seen.mtime_ns, seen.atime_ns) == (
        FILE,
        len(data),
        MTIME_NS,
        ATIME_NS,
    )
    assert (seen.mode, seen.owner, seen.group) == (0o1640, "alice", "staff")
    assert (seen.uid, seen.gid) == (NO_POSIX_ID, NO_POSIX_ID)  # DataSync's defaults for names
    assert read(storage, "a/b.bin") == data


def test_exclusive_commit_keeps_what_is_there_and_a_plain_one_replaces_it(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    assert write(storage, "f.txt", b"first")
    entry = Entry("f.txt", FILE, size=6, mode=0o644, mtime_ns=MTIME_NS)
    writer = storage.create_file("f.txt", entry, EVERYTHING)
    writer.write(b"second")
    assert writer.commit(exclusive=True) is False
    assert cluster.read("/data/f.txt") == b"first"
    assert write(storage, "f.txt", b"third")
    assert cluster.read("/data/f.txt") == b"third"
    names = {entry.path for entry in storage.list_dir("")[0]}
    assert names == {"f.txt"}  # no temporary file left by either commit


def test_an_aborted_write_leaves_nothing(cluster: HdfsCluster, storage: HdfsStorage) -> None:
    writer = storage.create_file("gone.bin", Entry("gone.bin", FILE, size=10), EVERYTHING)
    writer.write(b"12345")
    writer.abort()
    assert storage.list_dir("") == ([], False)


def test_listing_is_in_listing_key_order_in_slices_across_pages(
    tmp_path, cluster: HdfsCluster
) -> None:
    # The stand-in pages its listings by 3 names, as dfs.ls.limit would by 1,000.
    with HdfsCluster(tmp_path / "paged", list_limit=3) as paged:
        paged.mkdir("/data", "alice", "alice")
        for name in ("a.txt", "b", "a-1", "c"):
            paged.put(f"/data/{name}", name.encode(), "alice", "alice")
        paged.mkdir("/data/a", "alice", "alice")
        paged.mkdir("/data/a0", "alice", "alice")
        storage = storage_of(paged)
        everything, more = storage.list_dir("")
        # Folders come as if their names ended in "/": "a/" after "a.txt", before "a0/".
        assert [e.path for e in everything] == ["a-1", "a.txt", "a", "a0", "b", "c"]
        assert more is False
        assert [e.kind for e in everything] == [FILE, FILE, DIR, DIR, FILE, FILE]
        first, more = storage.list_dir("", limit=2)
        assert ([e.path for e in first], more) == (["a-1", "a.txt"], True)
        rest, more = storage.list_dir("", after="a.txt", limit=3)
        assert ([e.path for e in rest], more) == (["a", "a0", "b"], True)
        last, more = storage.list_dir("", after="b", limit=3)
        assert ([e.path for e in last], more) == (["c"], False)
        listed = [(op, path) for _, _, op, path in paged.requests if op == "LISTSTATUS_BATCH"]
        assert len(listed) >= 2  # paged, not one LISTSTATUS
        storage.close()


def test_owner_and_group_names_are_set_as_the_superuser_and_refused_otherwise(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    superuser = storage_of(cluster, user="hdfs")
    named = Entry(
        "owned.txt", FILE, size=2, mode=0o600, mtime_ns=MTIME_NS, owner="bob", group="staff"
    )
    writer = superuser.create_file("owned.txt", named, EVERYTHING)
    writer.write(b"hi")
    assert writer.commit(exclusive=False)
    status = cluster.status("/data/owned.txt")
    assert (status["owner"], status["group"], status["permission"]) == ("bob", "staff", "600")

    # alice may not give a file away: the file is not kept, and the reason says what to do.
    writer = storage.create_file("mine.txt", named, EVERYTHING)
    writer.write(b"hi")
    with pytest.raises(MetadataError, match=r"only its superuser.*Uid and Gid options to NONE"):
        writer.commit(exclusive=False)
    writer.abort()
    assert storage.stat("mine.txt") is None
    superuser.close()


def test_folder_metadata_is_set_and_read_back(cluster: HdfsCluster, storage: HdfsStorage) -> None:
    assert storage.make_dir("x/y") is True
    assert storage.make_dir("x/y") is False
    folder = Entry("x/y", DIR, mtime_ns=MTIME_NS, mode=0o1750, group="staff")
    storage.set_metadata("x/y", folder, EVERYTHING)
    seen = storage.stat("x/y")
    assert seen is not None
    assert (seen.kind, seen.mode, seen.mtime_ns, seen.group) == (DIR, 0o1750, MTIME_NS, "staff")


def test_names_hdfs_cannot_hold_and_links_fail_per_file(storage: HdfsStorage) -> None:
    entry = Entry("a:b", FILE, size=1)
    with pytest.raises(OSError, match="':'") as refused:
        storage.create_file("a:b", entry, EVERYTHING)
    assert refused.value.errno == errno.EINVAL
    with pytest.raises(OSError, match="symbolic links") as link:
        storage.make_symlink("l", Entry("l", SYMLINK, target="x"), EVERYTHING)
    assert link.value.errno == errno.EOPNOTSUPP


def test_hdfs_has_no_hard_links(storage: HdfsStorage) -> None:
    """Declared: PREPARING plans each name as a file of its own (tests/test_hdfs.py)."""
    assert HdfsLocation.CAPABILITIES.hard_links is False
    write(storage, "one.txt", b"shared bytes")
    with pytest.raises(OSError) as refused:
        storage.make_hard_link("two.txt", "one.txt")
    assert refused.value.errno == errno.EOPNOTSUPP


def test_removing_a_folder_counts_what_it_held(cluster: HdfsCluster, storage: HdfsStorage) -> None:
    for path in ("d/1", "d/e/2", "d/e/3"):
        write(storage, path, b"x")
    assert HdfsLocation.CAPABILITIES.recursive_delete  # one DELETE with recursive=true
    assert remove_tree(storage, "d", HdfsLocation.CAPABILITIES) == 5  # d, e and three files
    assert storage.stat("d") is None
    with pytest.raises(FileNotFoundError):
        storage.remove("d", DIR)


def test_a_standby_or_stopped_namenode_is_passed_over(cluster: HdfsCluster) -> None:
    cluster.set_standby(0, True)
    storage = storage_of(cluster)
    write(storage, "ha.txt", b"through the active one")
    assert read(storage, "ha.txt") == b"through the active one"
    standby = [r for r in cluster.requests if r[0] == 0]
    active = [r for r in cluster.requests if r[0] == 1]
    assert standby and active  # the standby was asked and answered StandbyException
    # A failover: the first comes back as the active one, the second goes away.
    cluster.set_standby(0, False)
    cluster.stop_namenode(1)
    write(storage, "ha.txt", b"after the failover")
    assert read(storage, "ha.txt") == b"after the failover"
    storage.close()


def test_check_says_what_is_wrong(cluster: HdfsCluster) -> None:
    storage_of(cluster).check(writable=True)

    with pytest.raises(
        StorageError, match=r"Subdirectory /missing does not exist.*check Subdirectory"
    ):
        storage_of(cluster, root="/missing").check(writable=False)

    cluster.mkdir("/locked", "hdfs", "supergroup", 0o700)
    with pytest.raises(StorageError, match="user 'alice' may not list /locked") as denied:
        storage_of(cluster, root="/locked").check(writable=False)
    assert denied.value.code == ErrorCode.LOCATION_UNAVAILABLE
    assert not denied.value.transient

    cluster.mkdir("/readonly", "hdfs", "supergroup", 0o755)
    storage_of(cluster, root="/readonly").check(writable=False)
    with pytest.raises(StorageError, match="may not write to /readonly"):
        storage_of(cluster, root="/readonly").check(writable=True)

    cluster.put("/file", b"x", "alice", "alice")
    with pytest.raises(StorageError, match="not a directory"):
        storage_of(cluster, root="/file").check(writable=False)

    nowhere = HdfsStorage(
        [("127.0.0.1", free_port()), ("127.0.0.1", free_port())], "/data", "alice",
        block_size=MIB, replication=1,
    )  # fmt: skip
    with pytest.raises(StorageError, match="cannot reach a NameNode") as unreachable:
        nowhere.check(writable=False)
    assert unreachable.value.transient  # retried: a cluster may be restarting

    cluster.set_standby(0, True)
    cluster.set_standby(1, True)
    with pytest.raises(StorageError, match="active") as standby:
        storage_of(cluster).check(writable=False)
    assert standby.value.transient


def test_large_files_stream_without_memory_growing_with_their_size(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    chunk = os.urandom(MIB)
    size = 64 * MIB
    tracemalloc.start()
    try:
        entry = Entry("big.bin", FILE, size=size, mode=0o644)
        writer = storage.create_file("big.bin", entry, EVERYTHING)
        for _ in range(size // MIB):
            writer.write(chunk)
        assert writer.commit(exclusive=False)
        reader = storage.open_read("big.bin")
        total = 0
        while data := reader.read(MIB):
            total += len(data)
        storage.close_reader(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    # The stand-in runs in this process too: together they hold a few chunks, not the file.
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB for a {size // MIB} MiB file"


def test_a_read_only_file_still_gets_its_times(cluster: HdfsCluster, storage: HdfsStorage) -> None:
    # HDFS wants write access to set times, even of the owner: the mode comes after them.
    entry = Entry("ro.txt", FILE, size=2, mode=0o444, mtime_ns=MTIME_NS)
    writer = storage.create_file("ro.txt", entry, EVERYTHING)
    writer.write(b"ro")
    assert writer.commit(exclusive=False)
    status = cluster.status("/data/ro.txt")
    assert (status["permission"], status["modificationTime"]) == ("444", MTIME_NS // 1_000_000)


def test_changing_the_metadata_of_a_read_only_file(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    write(storage, "ro.txt", b"ro", Entry("ro.txt", FILE, size=2, mode=0o444, mtime_ns=MTIME_NS))
    later = Entry("ro.txt", FILE, size=2, mode=0o640, mtime_ns=MTIME_NS + 5_000_000_000)
    storage.set_metadata("ro.txt", later, EVERYTHING)
    status = cluster.status("/data/ro.txt")
    assert (status["permission"], status["modificationTime"]) == ("640", later.mtime_ns // 10**6)
    storage.set_metadata("ro.txt", Entry("ro.txt", FILE, mode=0o400, mtime_ns=MTIME_NS), EVERYTHING)
    assert cluster.status("/data/ro.txt")["permission"] == "400"


def test_an_exclusive_commit_never_moves_a_file_into_a_folder_of_its_name(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    storage.make_dir("taken")
    writer = storage.create_file("taken", Entry("taken", FILE, size=1, mode=0o644), EVERYTHING)
    writer.write(b"x")
    assert writer.commit(exclusive=True) is False
    assert storage.list_dir("taken") == ([], False)
    assert [e.path for e in storage.list_dir("")[0]] == ["taken"]


def test_folders_are_never_made_over_a_file_nor_in_place_of_the_root(
    cluster: HdfsCluster, storage: HdfsStorage
) -> None:
    write(storage, "file", b"x")
    with pytest.raises(FileExistsError):
        storage.make_dir("file")
    hdfs.InsecureClient(cluster.url, user="hdfs").delete("/data", recursive=True)
    with pytest.raises(StorageError, match="/data no longer exists"):
        storage.make_dir("a/b")
    assert storage.stat("") is None
