"""SmbStorage against a real samba smbd on 127.0.0.1 (the `smb_server` fixture of
tests/smb_server.py, which conftest loads as a plugin)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import struct
import sys
import time
import types
from collections.abc import Iterator

import pytest
from smb_server import RawClient, SmbServer, acl_sids, sacl_sids
from smbprotocol.exceptions import SMBAuthenticationError, SMBResponseException
from smbprotocol.header import SMB2HeaderResponse
from smbprotocol.session import Session

from activities.storage import kerberos, smb, smbcodec
from activities.storage.base import (
    DIR,
    FILE,
    Entry,
    MetadataError,
    MetadataPolicy,
    StorageError,
    remove_tree,
)
from activities.storage.kerberos import Kerberos
from activities.storage.smb import REPARSE_POINT_SKIPPED, SmbStorage
from activities.storage.smbcodec import (
    ARCHIVE,
    CREATION_NS,
    FILE_ATTRIBUTES,
    HIDDEN,
    READONLY,
    SECURITY_DESCRIPTOR,
)
from models.errors import ErrorCode
from models.locations import SmbLocation

MTIME = 1_600_000_000_123_456_700  # FILETIME has 100 ns steps
ATIME = 1_500_000_000_987_654_300
CREATED = 1_400_000_000_000_000_100
USERS = "S-1-5-32-545"  # BUILTIN\Users: a SID samba keeps only with acl_xattr


def policy(security_descriptor: str = "NONE") -> MetadataPolicy:
    return MetadataPolicy(
        mtime=True,
        atime=True,
        uid=True,
        gid=True,
        mode=True,
        devices=False,
        security_descriptor=security_descriptor,
    )


@pytest.fixture
def storage(smb_server: SmbServer, request: pytest.FixtureRequest) -> Iterator[SmbStorage]:
    """A storage rooted in a folder of its own, named after the test."""
    folder = request.node.name.replace("[", "-").rstrip("]")
    os.makedirs(os.path.join(smb_server.share_dir, folder))
    store = SmbStorage(
        smb_server.host,
        smb_server.port,
        smb_server.subdirectory(inside=folder),
        smb_server.user,
        smb_server.password,
        temp_tag="test",
    )
    yield store
    store.close()


@pytest.fixture
def raw(smb_server: SmbServer) -> Iterator[RawClient]:
    client = RawClient(smb_server)
    yield client
    client.close()


def write(storage: SmbStorage, path: str, data: bytes, entry: Entry | None = None, **kw) -> bool:
    entry = entry or Entry(path, FILE, len(data), MTIME, ATIME)
    writer = storage.create_file(path, entry, kw.pop("metadata", policy()))
    for start in range(0, len(data), 8 << 20):
        writer.write(data[start : start + (8 << 20)])
    return writer.commit(exclusive=kw.pop("exclusive", False))


def read(storage: SmbStorage, path: str) -> bytes:
    reader = storage.open_read(path)
    try:
        chunks = []
        while chunk := reader.read(8 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        storage.close_reader(reader)


def on_disk(server: SmbServer, storage: SmbStorage, path: str) -> str:
    inside = storage._base.replace("\\", "/")
    return os.path.join(server.share_dir, inside, path)


# --- writing and metadata --------------------------------------------------------------------


def test_file_gets_times_and_attributes(storage, smb_server):
    attributes = {CREATION_NS: CREATED, FILE_ATTRIBUTES: READONLY | HIDDEN | ARCHIVE | 0x100}
    entry = Entry("a/b/c.txt", FILE, 5, MTIME, ATIME, attributes=attributes)
    assert write(storage, "a/b/c.txt", b"hello", entry)

    st = os.stat(on_disk(smb_server, storage, "a/b/c.txt"))
    assert (st.st_mtime_ns, st.st_atime_ns) == (MTIME, ATIME)
    stat = storage.stat("a/b/c.txt")
    assert stat is not None
    assert (stat.kind, stat.size, stat.mtime_ns, stat.atime_ns) == (FILE, 5, MTIME, ATIME)
    assert (stat.uid, stat.gid, stat.mode, stat.nlink, stat.inode) == (65534, 65534, 0o644, 1, 0)
    # TEMPORARY (0x100) is not carried; the rest are.
    assert stat.attributes == {CREATION_NS: CREATED, FILE_ATTRIBUTES: READONLY | HIDDEN | ARCHIVE}
    assert read(storage, "a/b/c.txt") == b"hello"
    assert storage.stat("a") == storage.list_dir("")[0][0]
    assert storage.stat("a").mode == 0o755

    # A read-only file is replaced, and the new one is read-only again.
    assert write(storage, "a/b/c.txt", b"again", entry)
    assert read(storage, "a/b/c.txt") == b"again"
    assert storage.stat("a/b/c.txt").attributes[FILE_ATTRIBUTES] == READONLY | HIDDEN | ARCHIVE
    assert sorted(os.listdir(on_disk(smb_server, storage, "a/b"))) == ["c.txt"]


def test_exclusive_commit_keeps_the_file_there(storage, smb_server):
    assert write(storage, "f", b"first")
    assert not write(storage, "f", b"second", exclusive=True)
    assert read(storage, "f") == b"first"
    # A large file goes through an open handle rather than one compound: the same rules.
    assert not write(storage, "f", os.urandom(3 << 20), exclusive=True)
    assert read(storage, "f") == b"first"
    assert os.listdir(on_disk(smb_server, storage, "")) == ["f"]
    assert write(storage, "f", b"second")
    assert read(storage, "f") == b"second"


def test_abort_leaves_nothing(storage, smb_server):
    for size in (10, 3 << 20):
        writer = storage.create_file("x", Entry("x", FILE, size), policy())
        writer.write(os.urandom(size))
        writer.abort()
    assert os.listdir(on_disk(smb_server, storage, "")) == []


def test_abort_deletes_by_name_when_the_handle_is_gone(storage, smb_server):
    writer = storage.create_file("x", Entry("x", FILE, 3 << 20), policy())
    writer.write(os.urandom(3 << 20))  # more than is buffered: the handle is open
    storage._exchange([smbcodec.close(writer.file_id)])  # as a server that dropped the open
    writer.abort()
    assert os.listdir(on_disk(smb_server, storage, "")) == []


def refused_descriptor(raw: RawClient, path: str) -> bytes:
    """The descriptor of `path` with an owner SID claiming 20 sub-authorities (at most 15
    exist): samba refuses it with STATUS_INVALID_PARAMETER."""
    good = raw.get_sd(path).pack()
    owner = struct.unpack_from("<I", good, 4)[0]
    return good[: owner + 1] + b"\x14" + good[owner + 2 :]


@pytest.mark.parametrize("size", [8, 3 << 20])  # sent in one compound; through an open handle
def test_metadata_failure_keeps_the_previous_file(storage, raw, smb_server, size):
    folder = storage._base.replace("\\", "/")
    assert write(storage, "kept", b"old copy")
    attributes = {SECURITY_DESCRIPTOR: lambda flags: refused_descriptor(raw, f"{folder}/kept")}
    entry = Entry("kept", FILE, size, MTIME, ATIME, attributes=attributes)
    writer = storage.create_file("kept", entry, policy("OWNER_DACL"))
    writer.write(os.urandom(size))
    with pytest.raises(MetadataError, match="the SMB server refused a parameter"):
        writer.commit(exclusive=False)
    writer.abort()
    assert read(storage, "kept") == b"old copy"
    assert os.listdir(on_disk(smb_server, storage, "")) == ["kept"]


@pytest.mark.parametrize(
    "name",
    ["a\\b", "x:y", "q?", "end.", "end ", "..", ".", "c\x01"],
    ids=["backslash", "stream", "wildcard", "dot", "space", "parent", "self", "control"],
)
def test_names_smb_cannot_hold_fail_alone(storage, smb_server, name):
    with pytest.raises(OSError) as caught:
        write(storage, f"d/{name}", b"data")
    assert caught.value.errno == errno.EINVAL
    assert "not a valid name on SMB" in str(caught.value)
    for call in (lambda: storage.stat(f"{name}/x"), lambda: storage.make_dir(name)):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EINVAL
    assert os.listdir(on_disk(smb_server, storage, "")) == []
    assert write(storage, "d/fine name", b"data")  # the storage goes on


def test_security_descriptor_is_copied_with_owner_dacl(storage, raw, smb_server):
    folder = storage._base.replace("\\", "/")
    write(storage, "src", b"data")
    raw.grant(f"{folder}/src", USERS)
    source = raw.get_sd(f"{folder}/src")
    assert USERS in acl_sids(source)

    reader = storage.open_read("src")
    entry = reader.stat()
    storage.close_reader(reader)
    assert callable(entry.attributes[SECURITY_DESCRIPTOR])
    write(storage, "copied", b"data", entry, metadata=policy("OWNER_DACL"))
    write(storage, "not-copied", b"data", entry, metadata=policy("NONE"))

    copied = raw.get_sd(f"{folder}/copied")
    assert str(copied.get_owner()) == str(source.get_owner())
    assert str(copied.get_group()) == str(source.get_group())
    assert copied.get_dacl().pack() == source.get_dacl().pack()
    assert USERS not in acl_sids(raw.get_sd(f"{folder}/not-copied"))


def test_folder_metadata_from_one_share_to_another(storage, smb_server):
    attributes = {CREATION_NS: CREATED, FILE_ATTRIBUTES: HIDDEN}
    storage.make_dir("d")
    storage.set_metadata("d", Entry("d", DIR, 0, MTIME, ATIME, attributes=attributes), policy())
    other = SmbStorage(
        smb_server.host,
        smb_server.port,
        smb_server.subdirectory("other"),
        smb_server.user,
        smb_server.password,
    )
    try:
        assert other.make_dir("copy/d") and not other.make_dir("copy/d")
        source = storage.stat("d")
        source.attributes = storage.attributes("d")
        other.set_metadata("copy/d", source, policy("OWNER_DACL"))
        copied = other.stat("copy/d")
        assert (copied.kind, copied.mtime_ns, copied.atime_ns) == (DIR, MTIME, ATIME)
        assert copied.attributes == {CREATION_NS: CREATED, FILE_ATTRIBUTES: HIDDEN}
        assert os.stat(os.path.join(smb_server.shares["other"], "copy/d")).st_mtime_ns == MTIME
    finally:
        other.close()


def test_symbolic_links_and_devices_are_refused(storage):
    entry = Entry("l", "l", target="x")
    for call in (
        lambda: storage.make_symlink("l", entry, policy()),
        lambda: storage.make_special("p", Entry("p", "p"), policy()),
    ):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EOPNOTSUPP
        assert "SMB cannot store" in str(caught.value)


def test_hard_link_makes_its_folder_and_replaces_a_read_only_file(storage, smb_server):
    write(storage, "a", b"shared")
    readonly = Entry("ro", FILE, 3, MTIME, ATIME, attributes={FILE_ATTRIBUTES: READONLY})
    write(storage, "new/ro", b"old", readonly)

    assert storage.make_hard_link("missing/folder/b", "a")
    assert storage.make_hard_link("new/ro", "a")
    assert not storage.make_hard_link("new/ro", "a", exclusive=True)
    for path in ("missing/folder/b", "new/ro"):
        assert read(storage, path) == b"shared"
    assert os.stat(on_disk(smb_server, storage, "a")).st_nlink == 3


def test_hard_links_are_made_by_the_server(storage, smb_server):
    write(storage, "a", b"shared")
    storage.make_dir("sub")

    assert storage.make_hard_link("sub/b", "a")
    assert not storage.make_hard_link("sub/b", "a", exclusive=True)
    assert storage.make_hard_link("sub/b", "a")  # replaced by a link to the same file

    first, second = (
        os.stat(on_disk(smb_server, storage, "a")),
        os.stat(on_disk(smb_server, storage, "sub/b")),
    )
    assert (first.st_ino, first.st_nlink) == (second.st_ino, 2)
    assert read(storage, "sub/b") == b"shared"


# --- listing and removing --------------------------------------------------------------------


def test_list_dir_in_listing_key_order_with_paging(storage, raw):
    folder = storage._base.replace("\\", "/")
    for name in ("c0", "c.y", "c-x"):
        write(storage, f"l/{name}", b"x")
    storage.make_dir("l/c")
    with raw.open(f"{folder}/l/.ferry-0123456789abcdef.tmp", "wb") as handle:
        handle.write(b"in progress")

    entries, more = storage.list_dir("l")
    # A folder sorts as if followed by "/": after "c-x" and "c.y", before "c0".
    assert [e.path for e in entries] == ["l/c-x", "l/c.y", "l/c", "l/c0"]
    assert [e.kind for e in entries] == [FILE, FILE, DIR, FILE]
    assert not more
    assert entries[0].attributes[FILE_ATTRIBUTES] & ARCHIVE
    assert entries[0].mtime_ns == MTIME

    page, more = storage.list_dir("l", limit=2)
    assert [e.path for e in page] == ["l/c-x", "l/c.y"] and more
    page, more = storage.list_dir("l", after="c.y", limit=2)
    assert [e.path for e in page] == ["l/c", "l/c0"] and not more
    assert storage.list_dir("l", after="c0") == ([], False)
    assert storage.stat("missing") is None
    with pytest.raises(FileNotFoundError):
        storage.list_dir("missing")


@pytest.mark.parametrize("reply", [1 << 20, 65536], ids=["one-reply", "replies"])
def test_list_dir_of_many_children(storage, smb_server, monkeypatch, reply):
    # 1500 names fit in one reply of 1 MiB (one round trip), not in one of 64 KiB: then the
    # folder is read again through a handle of its own, a reply at a time.
    monkeypatch.setattr(smb, "_LISTING_BYTES", reply)
    names = [f"n{i:04d}" for i in range(1500)]
    folder = on_disk(smb_server, storage, "many")
    os.mkdir(folder)
    for name in names:  # made behind samba's back: listing is what is tested
        open(os.path.join(folder, name), "wb").close()
    entries, more = storage.list_dir("many")
    assert [e.path.rpartition("/")[2] for e in entries] == names and not more


def listed(buffer: list[tuple[str, int]]) -> bytes:
    """A FILE_DIRECTORY_INFORMATION buffer of (name, attributes)."""
    records = []
    for index, (name, attributes) in enumerate(buffer):
        encoded = name.encode("utf-16-le")
        record = smbcodec.LISTED.pack(0, 0, 0, 0, 0, 0, 0, 0, attributes, len(encoded)) + encoded
        record += b"\0" * (-len(record) % 8)
        if index < len(buffer) - 1:
            record = struct.pack("<I", len(record)) + record[4:]
        records.append(record)
    return b"".join(records)


def test_reparse_points_are_left_out_and_reported_once(storage, monkeypatch):
    """samba shows no reparse point to a client (it follows its own symbolic links), so the
    listing is given one as Windows sends it: a junction is a folder with 0x400."""
    folder, file, junction, link = 0x10, 0x20, 0x410, 0x420
    buffer = listed(
        [
            (".", folder),
            ("a", file),
            ("b-junction", junction),
            ("c", folder),
            ("d-link", link),
            ("e", file),
        ]
    )
    entries = list(smbcodec.directory_entries(buffer, "p/"))
    assert [(e.path, e.kind, bits) for e, bits in entries][1::2] == [
        ("p/b-junction", DIR, 0x410),
        ("p/d-link", FILE, 0x420),
    ]
    monkeypatch.setattr(storage, "_scan", lambda path, prefix: iter(entries))
    page, more = storage.list_dir("p", limit=2)
    assert [e.path for e in page] == ["p/a", "p/c"] and more
    assert storage.take_rejected() == [("p/b-junction", REPARSE_POINT_SKIPPED)]
    page, more = storage.list_dir("p", after="c/", limit=2)
    assert [e.path for e in page] == ["p/e"] and not more
    assert storage.take_rejected() == [("p/d-link", REPARSE_POINT_SKIPPED)]
    assert storage.take_rejected() == []


def test_remove_counts_everything_removed(storage, smb_server):
    for path in ("t/f1", "t/e/f2", "t/e/f3"):
        write(storage, path, b"x")
    readonly = Entry("t/e/ro", FILE, 1, MTIME, ATIME, attributes={FILE_ATTRIBUTES: READONLY})
    write(storage, "t/e/ro", b"x", readonly)
    storage.make_dir("t/empty")
    storage.remove("t/f1", FILE)
    removed = remove_tree(storage, "t", SmbLocation.CAPABILITIES)
    assert removed == 6  # t, e, f2, f3, ro, empty: folder by folder, as SMB has no purge
    assert os.listdir(on_disk(smb_server, storage, "")) == []
    with pytest.raises(FileNotFoundError):
        storage.remove("t", DIR)


# --- reading ---------------------------------------------------------------------------------


def test_large_file_round_trip(storage, smb_server):
    data = os.urandom(64 << 20)
    started = time.perf_counter()
    write(storage, "big", data)
    written = time.perf_counter() - started
    started = time.perf_counter()
    back = read(storage, "big")
    took = time.perf_counter() - started
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    with open(on_disk(smb_server, storage, "big"), "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
    print(f"64 MiB: write {64 / written:.0f} MB/s, read {64 / took:.0f} MB/s")


def test_reader_version_and_no_lock_on_others(storage, raw):
    folder = storage._base.replace("\\", "/")
    write(storage, "v", b"12345")
    reader = storage.open_read("v")
    try:
        before = reader.version()
        # Ferry's open shares read, write and delete: another client may still write.
        with raw.open(f"{folder}/v", "ab", share_access="rwd") as handle:
            handle.write(b"678")
        assert reader.version() != before
        assert reader.version()[0] == 8
    finally:
        storage.close_reader(reader)


def test_file_locked_by_another_client(storage, raw):
    folder = storage._base.replace("\\", "/")
    write(storage, "locked", b"mine")
    with raw.open(f"{folder}/locked", "rb", share_access=None):  # exclusive
        with pytest.raises(OSError) as caught:
            storage.open_read("locked")
        assert caught.value.errno == errno.EACCES
        assert "locked" in str(caught.value)
    assert read(storage, "locked") == b"mine"


# --- the location ----------------------------------------------------------------------------


def location(server: SmbServer, **changes: object) -> SmbStorage:
    arguments = {
        "host": server.host,
        "port": server.port,
        "subdirectory": server.subdirectory(),
        "user": server.user,
        "password": server.password,
        **changes,
    }
    return SmbStorage(**arguments)  # type: ignore[arg-type]


def check_error(storage: SmbStorage, *, writable: bool = False) -> StorageError:
    try:
        with pytest.raises(StorageError) as caught:
            storage.check(writable=writable)
    finally:
        storage.close()
    assert caught.value.code == ErrorCode.LOCATION_UNAVAILABLE
    return caught.value


def test_check(smb_server):
    before = sorted(os.listdir(smb_server.share_dir)), os.stat(smb_server.share_dir).st_mtime_ns
    good = location(smb_server)
    good.check(writable=True)
    good.close()
    # The right to write is asked for, not tried: the folder is left as it was.
    after = sorted(os.listdir(smb_server.share_dir)), os.stat(smb_server.share_dir).st_mtime_ns
    assert after == before

    error = check_error(location(smb_server, password="wrong"))
    assert "logon failure: check User, Password and Domain" in str(error)
    error = check_error(location(smb_server, subdirectory="/nosuch/x"))
    assert str(error) == "the share 'nosuch' does not exist on 127.0.0.1: check Subdirectory"
    error = check_error(location(smb_server, subdirectory="/share/no/such"))
    assert "'no/such' does not exist in the share 'share'" in str(error)
    error = check_error(location(smb_server, port=1))
    assert str(error).startswith("cannot reach the SMB server 127.0.0.1:1: ")
    assert error.transient
    error = check_error(location(smb_server, version="SMB1"))
    assert "SMB1 is not supported" in str(error)


@pytest.mark.parametrize(
    ("version", "dialect"), [("SMB2_0", 0x202), ("SMB2", 0x210), ("SMB3", 0x302)]
)
def test_versions(smb_server, version, dialect):
    storage = location(smb_server, subdirectory=smb_server.subdirectory("other"), version=version)
    try:
        storage.check(writable=True)
        assert storage._connection.dialect == dialect
        data = os.urandom(200_000)
        assert write(storage, f"v-{version}", data)
        assert read(storage, f"v-{version}") == data
    finally:
        storage.close()


def test_many_small_files_keep_every_piece_of_metadata(storage, raw):
    """2,000 4 KiB files with every piece of metadata, security descriptor included (files/s
    are measured by bench/file_servers.py, not here)."""
    folder = storage._base.replace("\\", "/")
    write(storage, "model", b"x")
    raw.grant(f"{folder}/model", USERS)  # unlike what a new file inherits
    getter = storage.attributes("model")[SECURITY_DESCRIPTOR]
    descriptor = getter("OWNER_DACL")  # as a source reads it once per file; measured apart
    attributes = {
        CREATION_NS: CREATED,
        FILE_ATTRIBUTES: ARCHIVE | HIDDEN,
        SECURITY_DESCRIPTOR: lambda flags: descriptor,
    }
    data = os.urandom(4096)
    full = policy("OWNER_DACL")
    for i in range(2000):
        path = f"small/{i // 100}/{i:04d}"
        writer = storage.create_file(
            path, Entry(path, FILE, 4096, MTIME, ATIME, attributes=attributes), full
        )
        writer.write(data)
        assert writer.commit(exclusive=True)
    model = raw.get_sd(f"{folder}/model").get_dacl().pack()
    for i in range(0, 2000, 333):
        path = f"small/{i // 100}/{i:04d}"
        written = storage.stat(path)
        assert (written.size, written.mtime_ns, written.atime_ns) == (4096, MTIME, ATIME)
        assert written.attributes == {CREATION_NS: CREATED, FILE_ATTRIBUTES: ARCHIVE | HIDDEN}
        assert raw.get_sd(f"{folder}/{path}").get_dacl().pack() == model


def test_security_descriptor_with_sacl(storage, raw):
    folder = storage._base.replace("\\", "/")
    write(storage, "src", b"data")
    assert sacl_sids(raw.audit(f"{folder}/src", USERS)) == [USERS]
    reader = storage.open_read("src")
    entry = reader.stat()
    storage.close_reader(reader)
    descriptor = entry.attributes[SECURITY_DESCRIPTOR]("OWNER_DACL_SACL")
    assert write(storage, "copied", b"data", entry, metadata=policy("OWNER_DACL_SACL"))
    assert write(storage, "no-sacl", b"data", entry, metadata=policy("OWNER_DACL"))
    assert sacl_sids(raw.get_sd(f"{folder}/copied", sacl=True)) == [USERS]
    assert sacl_sids(raw.get_sd(f"{folder}/no-sacl", sacl=True)) == []
    assert storage.attributes("copied")[SECURITY_DESCRIPTOR]("OWNER_DACL_SACL") == descriptor


def test_metadata_statuses_are_metadata_errors_unless_retrying_helps():
    for status, number in (
        (0xC000005A, errno.EPERM),  # INVALID_OWNER
        (0x8000002D, errno.ELOOP),  # STOPPED_ON_SYMLINK
        (0xC0000106, errno.ENAMETOOLONG),
        (0xC0000033, errno.EINVAL),  # OBJECT_NAME_INVALID
        (0xC000000D, errno.EINVAL),  # INVALID_PARAMETER
        (0xC0000257, errno.EREMOTE),  # PATH_NOT_COVERED
        (0xC0000128, errno.ESTALE),  # FILE_CLOSED
        (0xC0000008, errno.ESTALE),  # INVALID_HANDLE
    ):
        assert smbcodec.os_error(status, "p").errno == number
    for status in (0xC000005A, 0xC0000023, 0xC0000079):  # mapped, and two statuses unmapped
        with pytest.raises(MetadataError):
            smb._raise_metadata([SMBResponseException(response(status))], "p")
    with pytest.raises(OSError) as caught:  # a session that ended: retried
        smb._raise_metadata([SMBResponseException(response(0xC0000203))], "p")
    assert caught.value.errno == errno.ECONNRESET


def response(status: int) -> SMB2HeaderResponse:
    header = SMB2HeaderResponse()
    header["status"] = status
    return header


def test_a_dropped_storage_shuts_its_socket_without_waiting(storage):
    storage.check(writable=False)
    connection = storage._connection
    started = time.perf_counter()
    storage.__del__()
    assert time.perf_counter() - started < 0.1
    deadline = time.monotonic() + 5
    while connection.transport.connected and time.monotonic() < deadline:
        time.sleep(0.01)  # smbprotocol's thread sees the end of the stream and closes it
    assert not connection.transport.connected


# --- Kerberos --------------------------------------------------------------------------------


@pytest.fixture
def kerberos_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """A process with no Kerberos configuration installed yet, its environment restored after.
    gssapi is not installed here: an empty module stands for it (install() only checks that
    it imports); what atexit is given is collected, not registered."""
    monkeypatch.setitem(sys.modules, "gssapi", types.ModuleType("gssapi"))
    monkeypatch.setattr(kerberos, "_KERBEROS_INSTALLED", {})
    for variable in ("KRB5_CONFIG", "KRB5_CLIENT_KTNAME"):
        monkeypatch.delenv(variable, raising=False)
    at_exit: list = []
    monkeypatch.setattr(kerberos.atexit, "register", at_exit.append)
    yield at_exit
    kerberos._remove_kerberos_files()


KRB5_CONF = b"[libdefaults]\n  default_realm = EXAMPLE.COM\n"


def test_kerberos_files_are_written_once_per_process(kerberos_process):
    Kerberos("ferry@EXAMPLE.COM", b"keytab", KRB5_CONF).install()
    keytab, conf = os.environ["KRB5_CLIENT_KTNAME"], os.environ["KRB5_CONFIG"]
    folder = os.path.dirname(keytab)
    assert os.path.dirname(conf) == folder
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(keytab).st_mode) == 0o600
    with open(keytab, "rb") as file:
        assert file.read() == b"keytab"
    # Another principal of the same keytab: nothing is written again.
    Kerberos("other@EXAMPLE.COM", b"keytab", KRB5_CONF).install()
    assert (os.environ["KRB5_CLIENT_KTNAME"], os.environ["KRB5_CONFIG"]) == (keytab, conf)
    assert sorted(os.listdir(folder)) == ["client.keytab", "krb5.conf"]

    for other in (Kerberos("ferry@EXAMPLE.COM", b"keytab 2", KRB5_CONF),
                  Kerberos("ferry@EXAMPLE.COM", b"keytab", KRB5_CONF + b"#")):  # fmt: skip
        with pytest.raises(StorageError, match="one worker serves one Kerberos configuration"):
            other.install()
    assert os.environ["KRB5_CLIENT_KTNAME"] == keytab

    assert kerberos_process == [kerberos._remove_kerberos_files]  # registered once
    kerberos_process[0]()  # as the process exits
    assert not os.path.exists(folder)


def test_kerberos_installed_from_many_threads_at_once(kerberos_process):
    from concurrent.futures import ThreadPoolExecutor

    kerberos = Kerberos("ferry@EXAMPLE.COM", b"keytab", KRB5_CONF)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: kerberos.install(), range(32)))
    assert len(kerberos_process) == 1
    assert os.listdir(os.path.dirname(os.environ["KRB5_CONFIG"])) != []


def test_kerberos_logon_failure_names_the_kerberos_settings(smb_server, kerberos_process):
    """Through pyspnego, which fails as it would on an agent without gssapi."""
    kerberos = Kerberos("ferry@EXAMPLE.COM", b"not a keytab", KRB5_CONF)
    error = check_error(location(smb_server, kerberos=kerberos))
    assert str(error).startswith("cannot log on to the SMB server 127.0.0.1:")
    assert "as principal 'ferry@EXAMPLE.COM': ImportError: " in str(error)
    assert str(error).endswith(": check KerberosPrincipal, KerberosKeytab and KerberosKrb5Conf")
    assert not error.transient


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            SMBAuthenticationError("Failed to authenticate with server: SpnegoError (1): no KDC"),
            "refused the logon of principal 'ferry@EXAMPLE.COM': logon failure (Failed to "
            "authenticate with server: SpnegoError (1): no KDC): check KerberosPrincipal",
        ),
        (RuntimeError("no credentials cache"), "RuntimeError: no credentials cache: check Kerb"),
    ],
    ids=["refused", "library"],
)
def test_kerberos_session_setup_failures(
    smb_server, kerberos_process, monkeypatch, failure, message
):
    def failing(session: Session) -> None:
        raise failure

    monkeypatch.setattr(Session, "connect", failing)
    kerberos = Kerberos("ferry@EXAMPLE.COM", b"keytab", KRB5_CONF)
    error = check_error(location(smb_server, kerberos=kerberos))
    assert message in str(error)
    assert "User, Password and Domain" not in str(error)
    assert error.__cause__ is failure and not error.transient
