"""The storage contract: the same cases against every adapter on its real server (the way
rclone's fstests hold its backends to one behaviour), each case reading what the location type
declares it can hold (models.locations: its Capabilities) and holding the adapter to it.

    local          a folder of this machine
    nfs3, nfs4.0,  nfs-ganesha on a host of its own (NFSv3's MOUNT needs rpcbind there),
    nfs4.1           every version of the same export
    smb            samba
    object-moto,   self-managed object storage on moto (folder markers) and on
    object-rclone    `rclone serve s3` (objects kept as files: prefixes only)
    s3-moto        S3 on moto
    hdfs           the WebHDFS stand-in
    memory         the toy location type of tests/toy_storage.py, added as the docs say
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import nfs_rs
import pytest
import toy_storage
from conftest import DROP_DAC, S3_ACCESS_KEY, S3_SECRET_KEY, S3Server, Stack, run_cli
from helpers import free_port, wait_for_port
from nfs_server import FULL_SIZE, ganesha_every_version
from sites import Sites, sites_or_skip
from smb_server import SmbServer
from webhdfs_server import HdfsCluster

from activities.storage import metadata_policy, open_storage
from activities.storage.base import (
    CHAR_DEVICE,
    DIR,
    FIFO,
    FILE,
    SYMLINK,
    TREE_SLICE,
    Entry,
    MetadataPolicy,
    Storage,
    is_transient,
    listing_key,
    location_error,
    remove_tree,
)
from activities.storage.local import LocalStorage
from activities.storage.smbcodec import (
    ARCHIVE,
    CREATION_NS,
    FILE_ATTRIBUTES,
    HIDDEN,
    READONLY,
    SYSTEM,
)
from api import Ferry
from api.requests import SHAPES
from api.secrets import seal
from models.locations import (
    KIND_OF,
    Capabilities,
    HdfsLocation,
    LocalLocation,
    Location,
    NfsLocation,
    ObjectStorageLocation,
    S3Location,
    SmbLocation,
)
from models.options import resolve_options

ARN = "arn:aws:datasync:xx-ferry-1:000000000000:location/loc-0123456789abcdef0"
MTIME = 1_600_000_000_123_000_000  # to the millisecond: every storage keeps that much
ATIME = MTIME - 86_400_000_000_000  # a day before
CREATED = 1_400_000_000_000_000_000  # an SMB file's creation time
EVERYTHING = MetadataPolicy(mtime=True, atime=True, uid=True, gid=True, mode=True, devices=True)
GIB = 1 << 30


@dataclass
class Side:
    """One adapter under contract: its storage, what its location declares it can hold, and a
    way behind its back to the bytes of a file (to change one while the adapter reads it)."""

    name: str
    location: Location
    storage: Storage
    behind: Callable[[str, bytes], None]
    folder: str  # the location's folder of its server, made for the case
    server: Any = None  # the server's fixture
    disk: Path | None = None  # the folder behind the location's root, where it is on this disk

    @property
    def can(self) -> Capabilities:
        return self.location.capabilities


def _now() -> datetime:
    return datetime.now(UTC)


def _on_disk(root: Path) -> Callable[[str, bytes], None]:
    def write(path: str, data: bytes) -> None:
        (root / path).write_bytes(data)

    return write


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    yield from sites_or_skip()


@pytest.fixture(scope="module")
def nfs_every_version(sites: Sites) -> Iterator[tuple[str, Any]]:
    host = sites.host("nfs")
    with ganesha_every_version(host) as server:
        yield host.address, server


@pytest.fixture(scope="module")
def moto_process() -> Iterator[S3Server]:
    """moto in a process of its own: the memory of the tests' process is measured."""
    port = free_port()
    moto = os.path.join(sysconfig.get_path("scripts"), "moto_server")
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, "moto_server", timeout=30)
    yield S3Server(f"http://127.0.0.1:{port}")
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def hdfs_cluster() -> Iterator[HdfsCluster]:
    directory = Path(tempfile.mkdtemp(prefix="ferry-contract-hdfs-", dir="/tmp"))
    with HdfsCluster(directory / "hdfs", namenodes=1) as cluster:
        yield cluster


ADAPTERS = [
    "local", "nfs3", "nfs4.0", "nfs4.1", "smb", "object-moto", "object-rclone", "s3-moto",
    "hdfs", "memory",
]  # fmt: skip


@pytest.fixture(params=ADAPTERS)
def side(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Side]:
    """A fresh, empty folder of the adapter's server, opened as a location."""
    name: str = request.param
    folder = workdir.name  # unique in the session
    behind: Callable[[str, bytes], None]
    location: Location
    if name == "local":
        location = LocalLocation(LocationArn=ARN, CreationTime=_now(), Path=str(workdir))
        behind = _on_disk(workdir)
    elif name.startswith("nfs"):
        address, server = request.getfixturevalue("nfs_every_version")
        (Path(server.export_dir) / folder).mkdir()
        version = {"nfs3": "NFS3", "nfs4.0": "NFS4_0", "nfs4.1": "NFS4_1"}[name]
        export = server.export_dir if version == "NFS3" else server.pseudo_path
        location = NfsLocation(
            LocationArn=ARN,
            CreationTime=_now(),
            ServerHostname=address,
            Subdirectory=f"{export}/{folder}",
            MountOptions={"Version": version},
        )
        # Another NFS client (ganesha caches what it serves: a write on its disk may not show).
        other = nfs_rs.Client.connect(f"nfs://{address}/", versions=["4.0"])

        def behind(path: str, data: bytes, folder: str = folder) -> None:
            file = other.open(f"x/{folder}/{path}", "wb")
            file.write(data)
            file.close()

    elif name == "smb":
        smb: SmbServer = request.getfixturevalue("smb_server")
        (Path(smb.share_dir) / folder).mkdir()
        location = SmbLocation(
            LocationArn=ARN,
            CreationTime=_now(),
            ServerHostname="127.0.0.1",
            ServerPort=smb.port,
            Subdirectory=smb.subdirectory(inside=folder),
            User=smb.user,
            Password=seal(smb.password, ARN),
        )
        behind = _on_disk(Path(smb.share_dir) / folder)
    elif name in ("object-moto", "object-rclone", "s3-moto"):
        server = request.getfixturevalue("rclone_s3" if "rclone" in name else "moto_process")
        bucket = server.bucket("contract")
        if name == "s3-moto":
            location = S3Location(
                LocationArn=ARN,
                CreationTime=_now(),
                S3BucketArn=f"arn:aws:s3:::{bucket}",
                Subdirectory=folder,
                EndpointUrl=server.endpoint,
            )
        else:
            location = ObjectStorageLocation(
                LocationArn=ARN,
                CreationTime=_now(),
                ServerHostname="127.0.0.1",
                ServerPort=server.port,
                ServerProtocol="HTTP",
                BucketName=bucket,
                Subdirectory=folder,
                AccessKey=S3_ACCESS_KEY,
                SecretKey=seal(S3_SECRET_KEY, ARN),
                FolderMarkers="DISABLED" if "rclone" in name else "ENABLED",
            )
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

        def behind(path: str, data: bytes, bucket: str = bucket, folder: str = folder) -> None:
            client.put_object(Bucket=bucket, Key=f"{folder}/{path}", Body=data)

    elif name == "hdfs":
        cluster: HdfsCluster = request.getfixturevalue("hdfs_cluster")
        cluster.mkdir(f"/{folder}", "hdfs", "supergroup")
        location = HdfsLocation(
            LocationArn=ARN,
            CreationTime=_now(),
            NameNodes=[{"Hostname": "127.0.0.1", "Port": cluster.namenode_ports[0]}],
            Subdirectory=f"/{folder}",
            SimpleUser="hdfs",
        )

        def behind(path: str, data: bytes, folder: str = folder) -> None:
            cluster.put(f"/{folder}/{path}", data, "hdfs", "supergroup")

    else:
        location = toy_storage.MemoryLocation(LocationArn=ARN, CreationTime=_now(), Name=folder)
        files = toy_storage.VOLUMES.setdefault(folder, {})

        def behind(path: str, data: bytes) -> None:
            files[path] = [Entry(path, FILE, size=len(data)), data]  # a new item

    storage = open_storage(location, "contract")
    server, disk = None, None
    if name == "local":
        disk = workdir
    elif name.startswith("nfs"):
        server = request.getfixturevalue("nfs_every_version")
        disk = Path(server[1].export_dir) / folder
    elif name == "smb":
        server = request.getfixturevalue("smb_server")
        disk = Path(server.share_dir) / folder
    elif name.startswith(("object", "s3")):
        server = request.getfixturevalue("rclone_s3" if "rclone" in name else "moto_process")
    elif name == "hdfs":
        server = request.getfixturevalue("hdfs_cluster")
    yield Side(name, location, storage, behind, folder, server, disk)
    storage.close()


# --- helpers ---------------------------------------------------------------------------------


def write(side: Side, path: str, data: bytes | Iterator[bytes], entry: Entry | None = None) -> bool:
    size = len(data) if isinstance(data, bytes) else 0
    entry = entry or Entry(path, FILE, size=size, mode=0o640, mtime_ns=MTIME, atime_ns=MTIME)
    writer = side.storage.create_file(path, entry, EVERYTHING)
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            writer.write(chunk)
        return writer.commit(exclusive=False)
    except BaseException:
        writer.abort()
        raise


def read(side: Side, path: str) -> bytes:
    reader = side.storage.open_read(path)
    try:
        chunks = []
        while chunk := reader.read(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        side.storage.close_reader(reader)


def names(side: Side, path: str = "") -> list[str]:
    entries, _ = side.storage.list_dir(path)
    skip = len(path) + 1 if path else 0
    return [entry.path[skip:] for entry in entries]


# --- the cases -------------------------------------------------------------------------------


def test_a_folder_lists_in_listing_order_and_slices_add_up(side: Side) -> None:
    for name in ("b", "a", "a.b", "B-", "c-d", "z"):
        assert write(side, name, name.encode())
    side.storage.make_dir("a-folder")
    write(side, "a-folder/inside", b"x")
    side.storage.make_dir("c")
    write(side, "c/inside", b"x")

    entries, more = side.storage.list_dir("")
    keys = [listing_key(entry.path, entry.kind) for entry in entries]

    assert not more
    assert keys == sorted(keys)
    assert set(names(side)) == {"B-", "a", "a-folder", "a.b", "b", "c", "c-d", "z"}
    sliced: list[str] = []
    after = ""
    while True:
        page, more = side.storage.list_dir("", after=after, limit=3)
        sliced += [listing_key(entry.path, entry.kind) for entry in page]
        if not more:
            break
        after = sliced[-1]
    assert sliced == keys


NAMES = {
    "space": "with a space",
    "nfc": unicodedata.normalize("NFC", "café"),
    "nfd": unicodedata.normalize("NFD", "café"),
    "long": "n" * 251 + ".txt",
    "control": "tab\there",
    "colon": "time: 12:00",
    "star": "star*",
    "dot": "ends with a dot.",
}


@pytest.mark.parametrize("kind", list(NAMES))
def test_a_name_is_kept_exactly_or_refused_as_declared(side: Side, kind: str) -> None:
    name = NAMES[kind]
    if side.can.refuses(name):
        # Declared: PREPARING never asks. Asked anyway, the adapter refuses, writing nothing.
        with pytest.raises(OSError):
            write(side, name, b"refused")
        assert name not in names(side)
        return
    assert write(side, name, kind.encode())
    assert name in names(side)
    assert read(side, name) == kind.encode()
    if kind in ("nfc", "nfd"):  # two names, not one normalised
        other = NAMES["nfd" if kind == "nfc" else "nfc"]
        assert other not in names(side)


def test_names_that_differ_only_in_case_as_declared(side: Side) -> None:
    assert write(side, "Case.txt", b"upper")
    write(side, "case.txt", b"lower")
    listed = [name for name in names(side) if name.casefold() == "case.txt"]
    # Where they are one name (SMB), PREPARING skips the second, saying why.
    assert len(listed) == (2 if side.can.case_sensitive else 1)


def test_a_path_64_folders_deep_and_3000_bytes_long(side: Side) -> None:
    folders = [f"{number:02d}-" + "f" * 43 for number in range(64)]
    path = "/".join(folders)
    assert len(path.encode()) > 2900
    if len(f"{path}/file.txt".encode()) > side.can.max_path_bytes:
        # Declared (object keys hold 1,024 bytes): PREPARING skips such a path, said so.
        assert side.name.startswith(("object", "s3"))
        return
    if side.can.unreachable(path):
        # Declared (NFSv4.1 alone: a session caps a request's operations, and a path is looked
        # up in one): PREPARING skips it. Asked anyway, the adapter refuses, saying why.
        assert side.name == "nfs4.1"
        with pytest.raises(OSError, match=r"too deep for one NFSv4\.1 request") as refused:
            side.storage.make_dir(path)
        assert refused.value.errno == errno.ENAMETOOLONG
        return
    side.storage.make_dir(path)  # and every folder on the way
    assert write(side, f"{path}/file.txt", b"deep")
    assert read(side, f"{path}/file.txt") == b"deep"
    assert names(side, path) == ["file.txt"]
    stat = side.storage.stat(f"{path}/file.txt")
    assert stat is not None and stat.size == 4


def test_empty_files_and_folders(side: Side) -> None:
    assert write(side, "empty.txt", b"")
    side.storage.make_dir("empty-folder")

    stat = side.storage.stat("empty.txt")
    assert stat is not None and (stat.kind, stat.size) == (FILE, 0)
    assert read(side, "empty.txt") == b""
    listed = names(side)
    assert "empty.txt" in listed
    # Where a folder is only the prefix of what is in it, an empty one is not there at all.
    assert ("empty-folder" in listed) is side.can.empty_folders


def _gib_and_a_byte() -> Iterator[bytes]:
    """1 GiB and one byte, mostly zeros (as a sparse file reads), made as it is written."""
    block = bytearray(8 << 20)
    for number in range(GIB // len(block)):
        block[:8] = number.to_bytes(8, "little")
        yield bytes(block)
    yield b"!"


def test_a_file_over_1_gib_streams_in_bounded_memory(side: Side) -> None:
    expected = hashlib.sha256()
    for chunk in _gib_and_a_byte():
        expected.update(chunk)
    tracemalloc.start()
    try:
        assert write(side, "big.bin", _gib_and_a_byte())
        written_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        reader = side.storage.open_read("big.bin")
        got, size = hashlib.sha256(), 0
        try:
            while chunk := reader.read(8 << 20):
                got.update(chunk)
                size += len(chunk)
        finally:
            side.storage.close_reader(reader)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert size == GIB + 1
    assert got.hexdigest() == expected.hexdigest()
    stat = side.storage.stat("big.bin")
    assert stat is not None and stat.size == GIB + 1
    if side.name != "memory":  # the toy keeps its files in memory: that is its storage
        assert written_peak < 128 << 20, written_peak
        assert read_peak < 128 << 20, read_peak


def test_the_metadata_the_storage_keeps(side: Side) -> None:
    policy = metadata_policy(resolve_options(), side.location)  # DataSync's defaults
    by_id = Entry(
        "ids.txt", FILE, size=3, mtime_ns=MTIME, atime_ns=ATIME, mode=0o640, uid=1234, gid=5678
    )
    # The location's HDFS user is the superuser, the one user HDFS lets give a file away.
    by_name = Entry("names.txt", FILE, size=5, mtime_ns=MTIME, owner="alice", group="staff")
    windows = Entry(
        "windows.txt", FILE, size=7, mtime_ns=MTIME, attributes={
            FILE_ATTRIBUTES: READONLY | HIDDEN | SYSTEM | ARCHIVE, CREATION_NS: CREATED,
        },
    )  # fmt: skip
    for entry in (by_id, by_name, windows):
        writer = side.storage.create_file(entry.path, entry, policy)
        writer.write(b"x" * entry.size)
        assert writer.commit(exclusive=False)

    ids, named = side.storage.stat("ids.txt"), side.storage.stat("names.txt")
    attributed = side.storage.stat("windows.txt")

    assert ids is not None and named is not None and attributed is not None
    assert abs(ids.mtime_ns - MTIME) < side.can.time_resolution_ns
    if side.can.access_times:
        assert abs(ids.atime_ns - ATIME) < side.can.time_resolution_ns
    if side.can.posix_modes:
        assert ids.mode & side.can.mode_bits == 0o640
    if side.can.posix_owners:
        assert (ids.uid, ids.gid) == (1234, 5678)
    if side.can.owner_names:
        assert (named.owner, named.group) == ("alice", "staff")
    if side.can.windows_metadata:
        assert attributed.attributes == windows.attributes


def test_an_exclusive_commit_leaves_what_is_there(side: Side) -> None:
    assert write(side, "taken.txt", b"first")
    entry = Entry("taken.txt", FILE, size=6, mode=0o640, mtime_ns=MTIME)
    writer = side.storage.create_file("taken.txt", entry, EVERYTHING)
    writer.write(b"second")

    assert writer.commit(exclusive=True) is False

    assert read(side, "taken.txt") == b"first"
    assert names(side) == ["taken.txt"]  # no temporary name left


def test_a_deep_and_wide_tree_is_removed_whole(side: Side) -> None:
    """64 folders deep (or as deep as one request reaches, where that is declared), a file and
    a link at every level, and one folder wider than a slice of the removal's listing."""
    depth = 64
    if side.can.max_path_components:
        depth = side.can.max_path_components - 2  # "tree", the folders, and a file in the last
    chain = "/".join(["tree", *(f"d{n}" for n in range(depth))])
    side.storage.make_dir(chain)
    for level in range(depth + 1):
        folder = "/".join(chain.split("/")[: level + 1])
        write(side, f"{folder}/file", b"x")
        if side.can.symlinks:
            link = Entry(f"{folder}/link", SYMLINK, target="file", mtime_ns=MTIME)
            side.storage.make_symlink(link.path, link, EVERYTHING)
    for number in range(TREE_SLICE + 20):
        write(side, f"tree/wide/{number:05d}", b"")
    made = len(list(_walk(side, "tree")))
    assert made > depth + TREE_SLICE

    removed = remove_tree(side.storage, "tree", side.can)

    assert removed == made + 1  # everything in it, and the folder
    assert side.storage.stat("tree") is None
    assert names(side) == []


def _walk(side: Side, path: str) -> Iterator[str]:
    for entry in side.storage.list_dir(path)[0]:
        yield entry.path
        if entry.kind == DIR:
            yield from _walk(side, entry.path)


def test_links_and_devices_as_declared(side: Side) -> None:
    assert write(side, "target.txt", b"linked")
    link = Entry("link", SYMLINK, target="target.txt", mtime_ns=MTIME)
    fifo = Entry("fifo", FIFO, mode=0o644, mtime_ns=MTIME)

    if side.can.symlinks:
        assert side.storage.make_symlink("link", link, EVERYTHING)
        stat = side.storage.stat("link")
        assert stat is not None and stat.kind == SYMLINK and stat.target == "target.txt"
    else:
        with pytest.raises(OSError) as refused:
            side.storage.make_symlink("link", link, EVERYTHING)
        assert refused.value.errno == errno.EOPNOTSUPP
    if side.can.hard_links or side.can.server_side_copy:
        assert side.storage.make_hard_link("second.txt", "target.txt")
        assert read(side, "second.txt") == b"linked"
        if side.can.hard_links:
            first, second = side.storage.stat("target.txt"), side.storage.stat("second.txt")
            assert first is not None and second is not None and first.inode == second.inode
    else:
        with pytest.raises(OSError) as refused:
            side.storage.make_hard_link("second.txt", "target.txt")
        assert refused.value.errno == errno.EOPNOTSUPP
    null = Entry("null", CHAR_DEVICE, mode=0o666, mtime_ns=MTIME, rdev=os.makedev(1, 3))
    for special in (fifo, null):  # a named pipe, and a character device like /dev/null
        if side.can.devices:
            assert side.storage.make_special(special.path, special, EVERYTHING)
            stat = side.storage.stat(special.path)
            assert stat is not None and stat.kind == special.kind
            assert stat.rdev == special.rdev
        else:
            with pytest.raises(OSError) as refused:
                side.storage.make_special(special.path, special, EVERYTHING)
            assert refused.value.errno == errno.EOPNOTSUPP
            assert side.storage.stat(special.path) is None


def test_what_is_missing_is_missing_the_same_way(side: Side) -> None:
    assert side.storage.stat("nowhere") is None
    with pytest.raises(FileNotFoundError):
        side.storage.open_read("nowhere")
    with pytest.raises(FileNotFoundError):
        side.storage.list_dir("nowhere")
    with pytest.raises(FileNotFoundError):
        side.storage.remove("nowhere", FILE)


def test_a_file_changing_while_it_is_read_is_noticed(side: Side) -> None:
    assert write(side, "moving.txt", b"before")
    reader = side.storage.open_read("moving.txt")
    try:
        reader.stat()
        before = reader.version()
        side.behind("moving.txt", b"after, and longer")
        data = reader.read(1 << 20)
        # Noticed, or not torn: a read of what was there when it began (object storage's
        # GET goes on with the version it started with).
        assert reader.version() != before or data == b"before"
    finally:
        side.storage.close_reader(reader)


def test_an_abort_leaves_nothing_behind(side: Side) -> None:
    entry = Entry("aborted.txt", FILE, size=10, mode=0o640, mtime_ns=MTIME)
    writer = side.storage.create_file("aborted.txt", entry, EVERYTHING)
    writer.write(b"half")

    writer.abort()

    assert side.storage.stat("aborted.txt") is None
    assert names(side) == []


def test_the_toy_location_type_is_added_as_the_docs_say(stack: Stack) -> None:
    """docs/architecture.md's "How to add a location type", followed: the toy type of
    toy_storage.py, in under a hundred lines of code (blank lines and comments not counted),
    is named in FERRY_LOCATION_TYPES (conftest.py does, for every process of the session);
    open_storage opens it (every case above ran through it), the API and the CLI have its
    operations, and the registry checks a new one on a worker, as any other."""
    lines = Path(toy_storage.__file__).read_text().splitlines()
    code = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    assert len(code) < 100, len(code)
    assert KIND_OF["MEMORY"] is toy_storage.KINDS[0]
    assert {"CreateLocationMemory", "DescribeLocationMemory"} <= set(SHAPES)
    assert "UpdateLocationMemory" not in SHAPES  # it declares no update
    assert callable(Ferry.create_location_memory)  # type: ignore[attr-defined]

    created = run_cli(stack, "create-location-memory", "--name", "toy", check=True)
    arn = json.loads(created.stdout)["LocationArn"]
    described = run_cli(stack, "describe-location-memory", "--location-arn", arn, check=True)
    listed = run_cli(stack, "list-locations", check=True)

    assert json.loads(described.stdout)["LocationUri"] == "memory://toy/"
    assert {"LocationArn": arn, "LocationUri": "memory://toy/"} in json.loads(listed.stdout)[
        "Locations"
    ]
    refused = run_cli(stack, "create-location-memory")
    assert refused.returncode != 0 and "Name" in refused.stderr


def test_what_is_missing_is_missing_everywhere_it_is_asked_for(side: Side) -> None:
    with pytest.raises(FileNotFoundError):
        side.storage.open_read("no/such/folder/file")
    with pytest.raises(FileNotFoundError):
        side.storage.set_metadata("nowhere", Entry("nowhere", FILE, mtime_ns=MTIME), EVERYTHING)
    with pytest.raises(FileNotFoundError):
        side.storage.remove("nowhere", DIR)


CONTROL = [chr(code) for code in range(1, 32)] + ["\x7f"]


def test_control_characters_are_kept_or_refused_as_declared(side: Side) -> None:
    """Every control character, 0x01 to 0x1f and 0x7f, in a name: kept exactly, or refused
    (no file written) where the location declares it refuses it."""
    wanted = {f"ctl-{ord(char):02x}-{char}-end": char for char in CONTROL}

    def refused(name: str) -> bool:
        # S3 keeps any UTF-8 in a key, but moto routes no newline (its URL pattern stops at
        # one): it answers 404 Not Found, which the adapter passes on, writing nothing.
        return bool(side.can.refuses(name)) or (side.name.endswith("moto") and "\n" in name)

    for name, char in wanted.items():
        if refused(name):
            with pytest.raises(OSError):
                write(side, name, b"refused")
        else:
            assert write(side, name, char.encode()), name

    listed = set(names(side))

    for name, char in wanted.items():
        if refused(name):
            assert name not in listed
        else:
            assert name in listed, name
            assert read(side, name) == char.encode()


def _sparse(path: Path, size: int) -> bytes:
    """A file of `size` bytes with holes (truncate, then a few blocks written at seeks), and
    its bytes."""
    with open(path, "wb") as file:
        file.truncate(size)
        for offset in (0, size // 2, size - 4096):
            file.seek(offset)
            file.write(offset.to_bytes(8, "little") * 512)
    return path.read_bytes()


def test_a_sparse_file_is_read_and_written_whole(side: Side) -> None:
    """A real sparse file (holes made by truncate and seek) read from this machine's disk and
    written through the adapter, then read back: the same bytes, holes as zeros; where the
    location is on this disk, one made sparse behind its back is read through it too. (No
    adapter claims to keep holes: each writes the zeros it reads.)"""
    elsewhere = Path(tempfile.mkdtemp(prefix="ferry-sparse-", dir="/tmp"))
    try:
        expected = _sparse(elsewhere / "sparse.bin", 24 << 20)
        assert os.stat(elsewhere / "sparse.bin").st_blocks * 512 < len(expected)  # holes
        source = LocalStorage(str(elsewhere))
        reader = source.open_read("sparse.bin")
        try:
            chunks = iter(lambda: reader.read(4 << 20), b"")
            assert write(side, "sparse.bin", chunks)
        finally:
            source.close_reader(reader)
            source.close()
    finally:
        subprocess.run(["rm", "-rf", str(elsewhere)], check=False)

    assert read(side, "sparse.bin") == expected
    stat = side.storage.stat("sparse.bin")
    assert stat is not None and stat.size == len(expected)
    if side.disk is not None:
        behind = _sparse(side.disk / "holes.bin", 8 << 20)
        assert read(side, "holes.bin") == behind


SECRET = b"for its owner's eyes only"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# What another user of the storage tries: runs in a process of its own, as that user.
_PROBE = """
import json, sys
from pydantic import TypeAdapter
from activities.storage import open_storage
from activities.storage.base import FILE, Entry, MetadataPolicy
from models.locations import Location

storage = open_storage(TypeAdapter(Location).validate_json(sys.stdin.read()), "probe")
keep = MetadataPolicy(mtime=False, atime=False, uid=False, gid=False, mode=False, devices=False)


def read():
    reader = storage.open_read("forbidden/secret.txt")
    try:
        reader.read(1 << 20)
    finally:
        storage.close_reader(reader)


def write():
    writer = storage.create_file("forbidden/new.txt", Entry("forbidden/new.txt", FILE), keep)
    try:
        writer.write(b"new")
        writer.commit(exclusive=False)
    except BaseException:
        writer.abort()
        raise


outcome = {}
for name, attempt in (("read", read), ("write", write)):
    try:
        attempt()
        outcome[name] = "allowed"
    except PermissionError:
        outcome[name] = "PermissionError"
    except Exception as error:
        outcome[name] = f"{type(error).__name__}: {error}"
print(json.dumps(outcome))
"""


def _forbidden_on_disk(folder: Path) -> None:
    """forbidden/secret.txt that nobody but root may read, in a folder nobody may write to."""
    forbidden = folder / "forbidden"
    forbidden.mkdir()
    (forbidden / "secret.txt").write_bytes(SECRET)
    (forbidden / "secret.txt").chmod(0)
    forbidden.chmod(0o555)


@pytest.fixture(scope="module")
def moto_with_iam() -> Iterator[tuple[S3Server, dict[str, str], dict[str, str]]]:
    """moto that authenticates every request after its first six, which make two users: an
    administrator, and a reader whose policy denies reading or writing under forbidden/."""
    port = free_port()
    moto = os.path.join(sysconfig.get_path("scripts"), "moto_server")
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "6"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, "moto_server", timeout=30)
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint)
    keys = {}
    denied = {"Effect": "Deny", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": []}
    for user, statements in (("admin", []), ("reader", [denied])):
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
        allowed = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        for statement in statements:
            statement["Resource"] = "arn:aws:s3:::*/forbidden/*"
        policy = {"Version": "2012-10-17", "Statement": [allowed, *statements]}
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    yield S3Server(endpoint), keys["admin"], keys["reader"]
    process.terminate()
    process.wait()


def test_what_the_user_may_not_touch_is_a_permission_error(
    side: Side, request: pytest.FixtureRequest
) -> None:
    """A file the storage's user may not read, in a folder it may not write to: PermissionError
    for both, on every storage with users (the files' modes, ACLs, HDFS's permissions, an IAM
    policy), and nothing is written."""
    location: Location = side.location
    command: list[str] = []
    env = dict(os.environ)
    if side.name == "object-rclone":
        pytest.skip(
            "rclone serve s3 runs as root here: it reads every file it serves, and one it could "
            "not read is a 500 Internal Error, not AccessDenied"
        )
    if side.name == "memory":
        pytest.skip("a memory location has one user, who may do everything")
    if side.disk is not None:
        _forbidden_on_disk(side.disk)
        if side.name == "local":
            command = DROP_DAC  # root, but bound by modes, as an agent that is not root
        elif side.name.startswith("nfs"):
            command = NOBODY  # the server lets root (uid 0 on the wire) read everything
        else:
            smb: SmbServer = side.server
            location = side.location.model_copy(
                update={"User": smb.reader, "Password": seal(smb.reader_password, ARN)}
            )
    elif side.name == "hdfs":
        cluster: HdfsCluster = side.server
        cluster.mkdir(f"/{side.folder}/forbidden", "hdfs", "supergroup", 0o555)
        cluster.put(f"/{side.folder}/forbidden/secret.txt", SECRET, "hdfs", "supergroup", 0o600)
        location = side.location.model_copy(update={"SimpleUser": "alice"})
    else:  # moto, with an IAM policy
        server, admin, reader = request.getfixturevalue("moto_with_iam")
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=admin["id"],
            aws_secret_access_key=admin["secret"],
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )
        bucket = f"forbidding-{os.urandom(3).hex()}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=f"{side.folder}/forbidden/secret.txt", Body=SECRET)
        if side.name == "s3-moto":
            location = side.location.model_copy(
                update={"S3BucketArn": f"arn:aws:s3:::{bucket}", "EndpointUrl": server.endpoint}
            )
            env.update(AWS_ACCESS_KEY_ID=reader["id"], AWS_SECRET_ACCESS_KEY=reader["secret"])
        else:
            location = side.location.model_copy(
                update={
                    "ServerPort": server.port,
                    "BucketName": bucket,
                    "AccessKey": reader["id"],
                    "SecretKey": seal(reader["secret"], ARN),
                }
            )

    probe = subprocess.run(
        [*command, sys.executable, "-c", _PROBE],
        input=location.model_dump_json(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert probe.returncode == 0, probe.stderr
    outcome = json.loads(probe.stdout.splitlines()[-1])
    assert outcome == {"read": "PermissionError", "write": "PermissionError"}
    if side.name.endswith("moto"):
        listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert [item["Key"] for item in listed] == [f"{side.folder}/forbidden/secret.txt"]
    else:
        assert names(side, "forbidden") == ["secret.txt"]
        assert read(side, "forbidden/secret.txt") == SECRET  # its owner still may


FULL = 2 << 20  # bytes a full folder holds


@contextlib.contextmanager
def _full(side: Side) -> Iterator[tuple[Storage, str]]:
    """A storage of the side's server, and a folder of it that holds FULL bytes at most."""
    if side.name in ("local", "smb"):  # a tmpfs mounted in the folder the server serves
        assert side.disk is not None
        full = side.disk / "full"
        full.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", f"size={FULL}", "tmpfs", str(full)]
        subprocess.run(mount, check=True)
        try:
            yield side.storage, "full"
        finally:
            subprocess.run(["umount", "-l", str(full)], check=False)
    elif side.name.startswith("nfs"):  # the server's second export, a tmpfs
        _, server = side.server
        assert FULL == FULL_SIZE
        version = side.location.MountOptions.Version  # type: ignore[union-attr]
        subdirectory = server.full_dir if version == "NFS3" else "/full"
        location = side.location.model_copy(update={"Subdirectory": subdirectory})
        storage = open_storage(location, "contract")
        try:
            yield storage, ""
        finally:
            storage.close()
    elif side.name == "object-rclone":  # a bucket of rclone's, its folder a tmpfs
        rclone: S3Server = side.server
        assert rclone.root is not None
        bucket = rclone.bucket("full")  # made by rclone, which then knows it
        mount = ["mount", "-t", "tmpfs", "-o", f"size={FULL}", "tmpfs", str(rclone.root / bucket)]
        subprocess.run(mount, check=True)
        storage = open_storage(side.location.model_copy(update={"BucketName": bucket}))
        try:
            yield storage, ""
        finally:
            storage.close()
            subprocess.run(["umount", "-l", str(rclone.root / bucket)], check=False)
    elif side.name == "hdfs":  # a space quota, as `hdfs dfsadmin -setSpaceQuota` sets one
        cluster: HdfsCluster = side.server
        cluster.mkdir(f"/{side.folder}/full", "hdfs", "supergroup")
        cluster.set_space_quota(f"/{side.folder}/full", FULL)
        yield side.storage, "full"
    elif side.name == "memory":
        pytest.skip("a memory location holds what the worker's memory does, and has no quota")
    else:
        pytest.skip("moto keeps objects in memory without a limit (and S3 itself never fills)")


def test_a_full_destination_is_a_location_error(side: Side) -> None:
    """No space (a full disk, a quota reached) is ENOSPC or EDQUOT wherever the server says
    so, which ends an execution as DestinationUnavailable; nothing half-written stays."""
    with _full(side) as (storage, folder):
        path = f"{folder}/big.bin" if folder else "big.bin"
        entry = Entry(path, FILE, size=2 * FULL, mode=0o640, mtime_ns=MTIME)
        writer = storage.create_file(path, entry, EVERYTHING)
        with pytest.raises(OSError) as refused:
            try:
                for _ in range(2 * FULL // (1 << 20)):
                    writer.write(b"x" * (1 << 20))
                writer.commit(exclusive=False)
            finally:
                writer.abort()

        if side.name == "object-rclone":
            # rclone answers a full disk as any failure of its own (500 Internal Error, with
            # no detail): retried, as S3's InternalError is, and never taken for a success.
            assert is_transient(refused.value), refused.value
        else:
            assert refused.value.errno in (errno.ENOSPC, errno.EDQUOT), refused.value
            failure = location_error(refused.value)
            assert failure is not None and failure.code == "DestinationUnavailable"
        assert storage.list_dir(folder)[0] == []
