"""The WebHDFS stand-in (tests/webhdfs_server.py) behaves as a Hadoop 3 cluster does: through
HdfsCLI as a user would drive it, and through raw HTTP for what a client must not get away with."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import struct
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hdfs
import pytest
from webhdfs_server import HdfsCluster

PREFIX = "/webhdfs/v1"
MIB = 1 << 20
Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HdfsCluster]:
    groups = {"alice": ("alice", "staff"), "carol": ("carol", "supergroup")}
    with HdfsCluster(tmp_path / "hdfs", namenodes=2, groups=groups, list_limit=3) as cluster:
        cluster.mkdir("/user/alice", "alice", "staff")
        yield cluster


def client(cluster: HdfsCluster, user: str = "alice") -> hdfs.InsecureClient:
    return hdfs.InsecureClient(cluster.url, user=user)


def raw(port: int, method: str, target: str, body: bytes | None = None, **headers: str) -> Answer:
    """One request as written, on its own connection: (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        connection.close()


def url(path: str, **params: str) -> str:
    """/webhdfs/v1<path>?params; the path is sent as given (quote it when it needs to be)."""
    return f"{PREFIX}{path}?{urllib.parse.urlencode(params)}"


def nn(
    cluster: HdfsCluster, method: str, path: str, op: str, user: str = "alice", **params: str
) -> Answer:
    return raw(cluster.namenode_ports[0], method, url(path, op=op, **{"user.name": user}, **params))


def remote(answer: Answer) -> tuple[int, str, str]:
    """(status, exception, message) of an error answer, checking its shape."""
    status, headers, body = answer
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["RemoteException"]
    assert set(error) == {"exception", "javaClassName", "message"}
    assert error["javaClassName"].rsplit(".", 1)[-1].rsplit("$", 1)[-1] == error["exception"]
    return status, error["exception"], error["message"]


def fails(call: Callable[[], Any]) -> tuple[str | None, str]:
    """The HdfsError a client call raises: (exception, message)."""
    with pytest.raises(hdfs.HdfsError) as raised:
        call()
    return raised.value.exception, raised.value.message


def until(condition: Callable[[], Any], timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return value


# ---- Round trips through HdfsCLI --------------------------------------------------------


def test_write_read_list_and_status_round_trip(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    before = cluster.status("/user/alice")["modificationTime"]
    time.sleep(0.002)
    alice.write("/user/alice/notes.txt", b"hello hdfs", permission="640")
    alice.write("/user/alice/stream.bin", (bytes([i]) * 1000 for i in range(50)))  # chunked

    with alice.read("/user/alice/notes.txt") as reader:
        assert reader.read() == b"hello hdfs"
    with alice.read("/user/alice/notes.txt", offset=6, length=3) as reader:
        assert reader.read() == b"hdf"
    with alice.read("/user/alice/stream.bin") as reader:
        assert reader.read() == b"".join(bytes([i]) * 1000 for i in range(50))
    status = alice.status("/user/alice/notes.txt")
    assert set(status) == {
        "accessTime", "blockSize", "childrenNum", "fileId", "group", "length",
        "modificationTime", "owner", "pathSuffix", "permission", "replication",
        "storagePolicy", "type",
    }  # fmt: skip
    assert status["type"] == "FILE" and status["pathSuffix"] == ""
    assert (status["length"], status["permission"]) == (10, "640")
    # The writer owns it; the group is the directory's (HDFS's BSD rule).
    assert (status["owner"], status["group"]) == ("alice", "staff")
    assert (status["blockSize"], status["replication"]) == (128 * MIB, 3)
    assert abs(status["modificationTime"] - time.time() * 1000) < 5000
    # Access time at creation; modification time when the upload completed.
    assert status["accessTime"] <= status["modificationTime"]
    assert status["fileId"] < alice.status("/user/alice/stream.bin")["fileId"]
    folder = alice.status("/user/alice")
    assert (folder["type"], folder["length"], folder["childrenNum"]) == ("DIRECTORY", 0, 2)
    assert (folder["blockSize"], folder["replication"], folder["accessTime"]) == (0, 0, 0)
    assert folder["modificationTime"] > before  # a new child moves its directory's mtime
    assert alice.status("/")["fileId"] == 16385  # the root's inode id
    assert alice.list("/user/alice") == ["notes.txt", "stream.bin"]
    assert [s["length"] for _, s in alice.list("/user/alice", status=True)] == [10, 50_000]
    summary = alice.content("/user/alice")
    assert (summary["directoryCount"], summary["fileCount"]) == (1, 2)
    assert (summary["length"], summary["spaceConsumed"]) == (50_010, 3 * 50_010)
    assert alice.acl_status("/user/alice")["owner"] == "alice"
    assert alice.resolve("notes.txt") == "/user/alice/notes.txt"  # GETHOMEDIRECTORY
    # The bytes went to the DataNode, never to the NameNode.
    creates = [(index, method) for index, method, op, _ in cluster.requests if op == "CREATE"]
    assert creates == [(0, "PUT"), (None, "PUT")] * 2


def test_a_listing_on_a_file_names_it_with_an_empty_suffix(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    alice.write("/user/alice/one", b"1")

    status, _, body = nn(cluster, "GET", "/user/alice/one", "LISTSTATUS")

    assert status == 200
    assert [s["pathSuffix"] for s in json.loads(body)["FileStatuses"]["FileStatus"]] == [""]
    assert "not a directory" in fails(lambda: alice.list("/user/alice/one"))[1]
    assert "does not exist" in fails(lambda: alice.list("/user/alice/none"))[1]


def test_metadata_changes(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    alice.write("/user/alice/f", b"data")

    alice.set_times("/user/alice/f", access_time=1_000, modification_time=2_000)
    alice.set_replication("/user/alice/f", 2)
    alice.set_permission("/user/alice/f", "600")
    alice.set_owner("/user/alice/f", group="alice")  # a group of hers
    client(cluster, "hdfs").set_owner("/user/alice/f", owner="bob")

    status = cluster.status("/user/alice/f")
    assert (status["accessTime"], status["modificationTime"]) == (1_000, 2_000)
    assert (status["permission"], status["owner"], status["group"]) == ("600", "bob", "alice")
    assert status["replication"] == 2
    alice.set_times("/user/alice", modification_time=3_000)  # -1: the access time stays
    assert cluster.status("/user/alice")["modificationTime"] == 3_000
    alice.makedirs("/user/alice/a/b/c", permission="1777")
    assert cluster.status("/user/alice/a/b/c")["permission"] == "1777"
    # Missing ancestors get the permission asked plus u+wx, without the sticky bit.
    assert cluster.status("/user/alice/a")["permission"] == "777"
    alice.makedirs("/user/alice/a/b/c")  # there already: true, unchanged
    assert cluster.status("/user/alice/a/b/c")["permission"] == "1777"


def test_create_makes_missing_parents_inheriting_the_closest_permission(
    cluster: HdfsCluster,
) -> None:
    cluster.mkdir("/user/alice/shared", "alice", "staff", 0o750)

    client(cluster).write("/user/alice/shared/x/y/f", b"1", permission="600")

    assert cluster.status("/user/alice/shared/x")["permission"] == "750"
    assert cluster.status("/user/alice/shared/x/y")["owner"] == "alice"
    assert cluster.status("/user/alice/shared/x/y/f")["permission"] == "600"


def test_append_delete_and_the_old_rename(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    alice.write("/user/alice/log", b"one ")
    alice.write("/user/alice/log", b"two", append=True)
    assert cluster.read("/user/alice/log") == b"one two"
    alice.makedirs("/user/alice/dir/sub")

    def rename(source: str, destination: str) -> bool:
        _, _, body = nn(cluster, "PUT", source, "RENAME", destination=destination)
        return json.loads(body)["boolean"]

    assert rename("/user/alice/missing", "/user/alice/x") is False
    assert rename("/user/alice/log", "/user/alice/nowhere/log") is False  # no parent
    assert rename("/user/alice/dir", "/user/alice/dir/sub/in") is False  # into itself
    alice.write("/user/alice/other", b"")
    assert rename("/user/alice/log", "/user/alice/other") is False  # never replaces a file
    assert rename("/user/alice/log", "/user/alice/log") is True
    assert rename("/user/alice/log", "/user/alice/dir") is True  # into the directory
    assert cluster.read("/user/alice/dir/log") == b"one two"
    alice.rename("/user/alice/dir/log", "/user/alice/renamed")
    assert alice.list("/user/alice") == ["dir", "other", "renamed"]

    assert alice.delete("/user/alice/missing") is False
    exception, message = fails(lambda: alice.delete("/user/alice/dir"))
    assert exception == "PathIsNotEmptyDirectoryException"
    assert message == "`/user/alice/dir is non empty': Directory is not empty"
    assert alice.delete("/user/alice/dir", recursive=True) is True
    assert alice.status("/user/alice/dir", strict=False) is None


def test_rename_with_options_replaces_atomically_or_says_why_not(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    alice.write("/user/alice/new", b"new")
    alice.write("/user/alice/old", b"old")

    def rename2(source: str, destination: str, options: str) -> Answer:
        return nn(cluster, "PUT", source, "RENAME", destination=destination, renameoptions=options)

    refused = remote(rename2("/user/alice/new", "/user/alice/old", "NONE"))
    assert refused == (
        403,
        "FileAlreadyExistsException",
        "rename destination /user/alice/old already exists",
    )
    assert rename2("/user/alice/new", "/user/alice/old", "OVERWRITE") == (200, any_headers, b"")
    assert cluster.read("/user/alice/old") == b"new"
    assert alice.status("/user/alice/new", strict=False) is None
    missing = remote(rename2("/user/alice/new", "/user/alice/x", "OVERWRITE"))
    assert missing[:2] == (404, "FileNotFoundException")
    alice.makedirs("/user/alice/full/child")
    alice.makedirs("/user/alice/empty")
    not_empty = remote(rename2("/user/alice/empty", "/user/alice/full", "OVERWRITE"))
    assert not_empty[:2] == (403, "IOException") and "is not empty" in not_empty[2]
    kinds = remote(rename2("/user/alice/old", "/user/alice/empty", "OVERWRITE"))
    assert kinds[:2] == (403, "IOException") and "must both be directories" in kinds[2]
    no_parent = remote(rename2("/user/alice/old", "/user/alice/none/x", "NONE"))
    assert no_parent[:2] == (404, "FileNotFoundException")
    assert rename2("/user/alice/full", "/user/alice/empty", "OVERWRITE")[0] == 200
    assert alice.list("/user/alice/empty") == ["child"]


class _AnyHeaders(dict[str, str]):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict)


any_headers = _AnyHeaders()


# ---- What a client must not get away with ---------------------------------------------


def test_requests_without_a_user_or_with_a_bad_one_are_refused(cluster: HdfsCluster) -> None:
    status, headers, body = raw(cluster.namenode_ports[0], "GET", url("/", op="GETFILESTATUS"))
    assert status == 401 and headers["www-authenticate"] == "PseudoAuth"
    assert remote((status, headers, body))[1] == "SecurityException"
    assert "Authentication failure" in fails(lambda: hdfs.Client(cluster.url).status("/"))[1]
    bad = remote(nn(cluster, "GET", "/", "GETFILESTATUS", user="1alice"))
    assert bad[:2] == (400, "IllegalArgumentException") and '"user.name"' in bad[2]
    impersonating = remote(nn(cluster, "GET", "/", "GETFILESTATUS", doas="hdfs"))
    assert impersonating[:2] == (403, "AuthorizationException")


@pytest.mark.parametrize(
    ("method", "op", "params", "named"),
    [
        ("GET", "FROBNICATE", {}, '"op": No enum constant'),
        ("GET", "MKDIRS", {}, "GetOpParam.Op.MKDIRS"),  # an op of another HTTP method
        ("PUT", "GETFILESTATUS", {}, "PutOpParam.Op.GETFILESTATUS"),
        ("PUT", "MKDIRS", {"permission": "999"}, '"permission"'),
        ("PUT", "MKDIRS", {"permission": "2000"}, "permission = 2000 > 1777"),
        ("PUT", "MKDIRS", {"permission": "rwx"}, '"permission"'),
        ("GET", "OPEN", {"offset": "-1"}, "offset = -1 < 0"),
        ("GET", "OPEN", {"length": "ten"}, '"length"'),
        ("PUT", "CREATE", {"replication": "0"}, "replication = 0 < 1"),
        ("PUT", "CREATE", {"blocksize": "0"}, "blocksize = 0 < 1"),
        ("PUT", "CREATE", {"overwrite": "yes"}, 'Failed to parse "yes" to Boolean'),
        ("PUT", "SETTIMES", {"accesstime": "-2"}, "accesstime = -2 < -1"),
        ("PUT", "SETTIMES", {"modificationtime": ""}, '"modificationtime"'),
        ("PUT", "RENAME", {"destination": "relative"}, "is not an absolute path"),
        ("PUT", "RENAME", {"destination": "/x", "renameoptions": "MAYBE"}, "renameoptions"),
        ("PUT", "RENAME", {}, "Required param destination"),
        ("GET", "CHECKACCESS", {}, "Required param fsaction"),
        ("DELETE", "DELETE", {"recursive": "1"}, '"recursive"'),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    cluster: HdfsCluster, method: str, op: str, params: dict[str, str], named: str
) -> None:
    status, exception, message = remote(nn(cluster, method, "/user/alice/x", op, **params))

    assert (status, exception) == (400, "IllegalArgumentException")
    assert named in message


def test_parameter_names_and_boolean_values_ignore_case(cluster: HdfsCluster) -> None:
    alice = raw(
        cluster.namenode_ports[0],
        "PUT",
        url("/user/alice/d", OP="mkdirs", **{"USER.NAME": "alice"}),
    )
    assert alice[0] == 200
    assert (
        nn(cluster, "DELETE", "/user/alice/d", "DELETE", recursive="TRUE")[2] == b'{"boolean":true}'
    )
    no_op = raw(cluster.namenode_ports[0], "GET", url("/", **{"user.name": "alice"}))
    assert remote(no_op) == (400, "UnsupportedOperationException", "op=NULL is not supported")
    empty = remote(nn(cluster, "GET", "/", "", user="alice"))
    assert empty[:2] == (400, "IllegalArgumentException")  # "" is no op name either


@pytest.mark.parametrize(
    "path", ["/user/./alice", "/user/../user/alice", "/user//alice", "/user/a:b", "/%2E%2E/x"]
)
def test_non_canonical_paths_are_invalid(cluster: HdfsCluster, path: str) -> None:
    assert remote(nn(cluster, "GET", path, "GETFILESTATUS")) == (
        400,
        "InvalidPathException",
        f"Invalid path name Invalid file name: {urllib.parse.unquote(path)}",
    )


def test_paths_are_utf8_and_only_under_webhdfs(cluster: HdfsCluster) -> None:
    client(cluster).write("/user/alice/naïve ñame+1", b"x")

    quoted = urllib.parse.quote("/user/alice/naïve ñame+1")
    assert nn(cluster, "GET", quoted, "GETFILESTATUS")[0] == 200
    assert raw(cluster.namenode_ports[0], "GET", "/webhdfs/v2/?op=LISTSTATUS")[0] == 404
    assert remote(nn(cluster, "GET", "/user/%FF", "GETFILESTATUS"))[0] == 400


def test_errors_have_hadoops_shape_and_status(cluster: HdfsCluster) -> None:
    assert remote(nn(cluster, "GET", "/user/alice/none", "GETFILESTATUS")) == (
        404,
        "FileNotFoundException",
        "File does not exist: /user/alice/none",
    )
    client(cluster).write("/user/alice/file", b"12345")
    assert remote(nn(cluster, "PUT", "/user/alice/file/sub", "MKDIRS")) == (
        403,
        "ParentNotDirectoryException",
        "/user/alice/file (is not a directory)",
    )
    assert remote(nn(cluster, "PUT", "/user/alice/file", "MKDIRS")) == (
        403,
        "FileAlreadyExistsException",
        "Path is not a directory: /user/alice/file",
    )
    assert remote(nn(cluster, "GET", "/user/alice/file", "OPEN", offset="5")) == (
        403,
        "IOException",
        "Offset=5 out of the range [0, 5); OPEN, path=/user/alice/file",
    )
    assert remote(nn(cluster, "PUT", "/user/alice/file", "SETREPLICATION", replication="513"))[
        :2
    ] == (
        403,
        "IOException",
    )
    exception, message = fails(lambda: client(cluster).write("/user/alice/file", b"again"))
    assert exception == "FileAlreadyExistsException" and "already exists" in message
    exception, _ = fails(lambda: client(cluster).write("/user/alice", b"x", overwrite=True))
    assert exception == "FileAlreadyExistsException"  # a directory is in the way


def test_the_namenode_takes_no_data_and_redirects_to_the_datanode(cluster: HdfsCluster) -> None:
    port = cluster.namenode_ports[0]
    target = url("/user/alice/f", op="CREATE", **{"user.name": "alice"})

    assert remote(raw(port, "PUT", target, b"data"))[:2] == (400, "IllegalArgumentException")
    status, headers, body = raw(port, "PUT", target)
    assert (status, body) == (307, b"")
    location = urllib.parse.urlsplit(headers["location"])
    assert (location.hostname, location.port) == ("127.0.0.1", cluster.datanode_port)
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["op"] == "CREATE" and query["user.name"] == "alice"
    assert query["namenoderpcaddress"] == f"127.0.0.1:{port}"
    dn_target = f"{location.path}?{location.query}"
    # The DataNode: CREATE answers 201 with the file's hdfs:// URI, and closes the connection.
    status, headers, _ = raw(cluster.datanode_port, "PUT", dn_target, b"bytes")
    assert (status, headers["location"]) == (201, f"hdfs://127.0.0.1:{port}/user/alice/f")
    assert headers["connection"] == "close"
    assert cluster.read("/user/alice/f") == b"bytes"
    without = dn_target.replace("namenoderpcaddress", "other")
    assert remote(raw(cluster.datanode_port, "PUT", without, b"x"))[:2] == (
        400,
        "IllegalArgumentException",
    )
    listing = f"{location.path}?op=LISTSTATUS&namenoderpcaddress=127.0.0.1:{port}&user.name=alice"
    assert remote(raw(cluster.datanode_port, "GET", listing)) == (
        400,
        "IllegalArgumentException",
        "Invalid operation LISTSTATUS",
    )


def test_the_datanode_checks_block_size_and_replication(cluster: HdfsCluster) -> None:
    alice = client(cluster)

    small = fails(lambda: alice.write("/user/alice/a", b"x", blocksize=MIB - 512))
    assert small[0] == "IOException" and "dfs.namenode.fs-limits.min-block-size" in small[1]
    uneven = fails(lambda: alice.write("/user/alice/a", b"x", blocksize=MIB + 1))
    assert uneven[0] == "HadoopIllegalArgumentException"
    many = fails(lambda: alice.write("/user/alice/a", b"x", replication=513))
    assert many[0] == "IOException" and "exceeds maximum of 512" in many[1]
    alice.write("/user/alice/a", b"x", blocksize=MIB, replication=1)
    assert (
        cluster.status("/user/alice/a")["blockSize"],
        cluster.status("/user/alice/a")["replication"],
    ) == (MIB, 1)


def test_the_datanode_sends_100_continue_unasked_then_its_answer(cluster: HdfsCluster) -> None:
    _, headers, _ = nn(cluster, "PUT", "/user/alice/c", "CREATE")
    location = urllib.parse.urlsplit(headers["location"])
    with socket.create_connection(("127.0.0.1", cluster.datanode_port), timeout=10) as sock:
        sock.sendall(
            f"PUT {location.path}?{location.query} HTTP/1.1\r\nHost: dn\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
            "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n")
    assert cluster.read("/user/alice/c") == b"abcde"


def test_broken_chunked_framing_is_refused(cluster: HdfsCluster) -> None:
    _, headers, _ = nn(cluster, "PUT", "/user/alice/c", "CREATE")
    location = urllib.parse.urlsplit(headers["location"])
    with socket.create_connection(("127.0.0.1", cluster.datanode_port), timeout=10) as sock:
        sock.sendall(
            f"PUT {location.path}?{location.query} HTTP/1.1\r\nHost: dn\r\n"
            "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    assert b"\r\n\r\nHTTP/1.1 400 " in answer


def test_an_upload_is_visible_while_it_runs_and_keeps_what_arrived(cluster: HdfsCluster) -> None:
    _, headers, _ = nn(cluster, "PUT", "/user/alice/live", "CREATE")
    location = urllib.parse.urlsplit(headers["location"])
    sock = socket.create_connection(("127.0.0.1", cluster.datanode_port), timeout=10)
    sock.sendall(
        f"PUT {location.path}?{location.query} HTTP/1.1\r\nHost: dn\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".encode()
    )

    status = until(lambda: client(cluster).status("/user/alice/live", strict=False))
    assert status["length"] == 0  # under construction: no block completed yet
    exception, message = fails(lambda: client(cluster).write("/user/alice/live", b"other"))
    assert exception == "AlreadyBeingCreatedException" and "lease" in message
    sock.close()  # the writer goes away: HDFS keeps what arrived, as a complete file
    until(lambda: cluster.status("/user/alice/live")["length"] == 5)
    assert cluster.read("/user/alice/live") == b"hello"


# ---- Permissions -----------------------------------------------------------------------


def test_permissions_as_hdfs_enforces_them(cluster: HdfsCluster) -> None:
    alice, bob = client(cluster), client(cluster, "bob")
    cluster.put("/user/alice/private", b"secret", "alice", "staff", 0o600)
    cluster.mkdir("/user/alice/closed", "alice", "staff", 0o700)
    cluster.put("/user/alice/closed/inside", b"x", "alice", "staff")

    denied = fails(lambda: bob.write("/user/alice/bobs", b"x"))
    assert denied == (
        "AccessControlException",
        'Permission denied: user=bob, access=WRITE, inode="/user/alice":alice:staff:drwxr-xr-x',
    )
    assert fails(lambda: bob.read("/user/alice/private").__enter__())[0] == "AccessControlException"
    traverse = fails(lambda: bob.status("/user/alice/closed/inside"))[1]
    assert 'access=EXECUTE, inode="/user/alice/closed"' in traverse
    assert "access=READ_EXECUTE" in fails(lambda: bob.list("/user/alice/closed"))[1]
    assert "is not the owner" in fails(lambda: bob.set_permission("/user/alice/private", "777"))[1]
    assert "access=WRITE" in fails(lambda: bob.set_times("/user/alice/private", access_time=1))[1]
    assert "access=WRITE" in fails(lambda: bob.delete("/user/alice/private"))[1]
    assert fails(lambda: alice.set_owner("/user/alice/private", owner="bob"))[1] == (
        "User alice is not a super user (non-super user cannot change owner)."
    )
    assert fails(lambda: alice.set_owner("/user/alice/private", group="wheel"))[1] == (
        "User alice does not belong to wheel"
    )
    # The superuser, and members of the supergroup, pass every check.
    for admin in ("hdfs", "carol"):
        with client(cluster, admin).read("/user/alice/private") as reader:
            assert reader.read() == b"secret"
        client(cluster, admin).write(f"/user/alice/{admin}s", b"x")
    assert cluster.status("/user/alice/carols")["owner"] == "carol"
    ok = nn(cluster, "GET", "/user/alice/private", "CHECKACCESS", user="bob", fsaction="---")
    assert ok[0] == 200
    assert remote(
        nn(cluster, "GET", "/user/alice/private", "CHECKACCESS", user="bob", fsaction="r--")
    )[:2] == (
        403,
        "AccessControlException",
    )


def test_the_sticky_bit_keeps_others_children(cluster: HdfsCluster) -> None:
    cluster.mkdir("/tmp", "hdfs", "supergroup", 0o1777)
    cluster.put("/tmp/alices", b"x", "alice", "staff")

    exception, message = fails(lambda: client(cluster, "bob").delete("/tmp/alices"))

    assert exception == "AccessControlException"
    assert message.startswith('Permission denied by sticky bit: user=bob, path="/tmp/alices"')
    assert fails(lambda: client(cluster, "bob").rename("/tmp/alices", "/tmp/bobs"))[0] == (
        "AccessControlException"
    )
    assert client(cluster).delete("/tmp/alices") is True  # its owner may


def test_open_moves_the_access_time_past_its_precision_only(cluster: HdfsCluster) -> None:
    cluster.put("/user/alice/f", b"x", "alice", "staff", mtime_ms=1_000)

    with client(cluster).read("/user/alice/f") as reader:
        reader.read()
    first = cluster.status("/user/alice/f")["accessTime"]
    time.sleep(0.01)
    with client(cluster).read("/user/alice/f") as reader:
        reader.read()

    assert abs(first - time.time() * 1000) < 5000
    assert cluster.status("/user/alice/f")["accessTime"] == first  # within the hour
    assert cluster.status("/user/alice/f")["modificationTime"] == 1_000


# ---- High availability -----------------------------------------------------------------


def test_a_standby_namenode_refuses_everything_and_clients_fail_over(cluster: HdfsCluster) -> None:
    cluster.set_standby(0, True)

    standby = remote(nn(cluster, "GET", "/", "GETFILESTATUS"))
    assert standby == (
        403,
        "StandbyException",
        "Operation category READ is not supported in state standby. "
        "Visit https://s.apache.org/sbnn-error",
    )
    assert "category WRITE" in remote(nn(cluster, "PUT", "/user/alice/d", "MKDIRS"))[2]
    alice = client(cluster)
    alice.write("/user/alice/ha", b"failed over")
    with alice.read("/user/alice/ha") as reader:
        assert reader.read() == b"failed over"
    calls = [(index, op) for index, _, op, path in cluster.requests if path == "/user/alice/ha"]
    assert calls[:2] == [(0, "CREATE"), (1, "CREATE")]
    assert all(index != 0 for index, _ in calls[2:])

    cluster.set_standby(0, False)
    cluster.stop_namenode(0)
    fresh = hdfs.InsecureClient(cluster.url, user="alice")
    assert fresh.status("/user/alice/ha")["length"] == 11
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", cluster.namenode_ports[0]), timeout=2)


# ---- Listing in pages ------------------------------------------------------------------


def test_liststatus_batch_pages_by_the_listing_limit(cluster: HdfsCluster) -> None:
    names = ["b", "a", "c", "é", "Z", "d", "e"]
    for name in names:
        cluster.put(f"/user/alice/many/{name}", b"", "alice", "staff")

    pages, after = [], ""
    while True:
        params = {"startafter": after} if after else {}
        _, _, body = nn(cluster, "GET", "/user/alice/many", "LISTSTATUS_BATCH", **params)
        listing = json.loads(body)["DirectoryListing"]
        page = [s["pathSuffix"] for s in listing["partialListing"]["FileStatuses"]["FileStatus"]]
        pages.append((page, listing["remainingEntries"]))
        if not listing["remainingEntries"]:
            break
        after = page[-1]

    # HDFS orders names by their UTF-8 bytes as Java's signed bytes: 'é' (0xC3...) first.
    assert pages == [(["é", "Z", "a"], 4), (["b", "c", "d"], 1), (["e"], 0)]
    assert client(cluster).list("/user/alice/many") == ["é", "Z", "a", "b", "c", "d", "e"]
    _, _, body = nn(cluster, "GET", "/user/alice/many", "LISTSTATUS_BATCH", startafter="bb")
    assert json.loads(body)["DirectoryListing"]["remainingEntries"] == 0  # c, d, e remain unseen


# ---- Checksums and large files -----------------------------------------------------------


def reference_checksum(data: bytes, block_size: int) -> str:
    """HDFS's MD5-of-MD5-of-CRC32C, computed plainly, for comparison."""
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)

    def crc(chunk: bytes) -> int:
        value = 0xFFFFFFFF
        for byte in chunk:
            value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
        return value ^ 0xFFFFFFFF

    blocks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
    md5s = [
        hashlib.md5(
            b"".join(struct.pack(">I", crc(b[i : i + 512])) for i in range(0, len(b), 512))
        ).digest()
        for b in blocks
    ]
    padded = b"".join(md5s).ljust(32 if len(md5s) <= 2 else 64, b"\0")
    per_block = block_size // 512 if len(blocks) > 1 else 0
    return (struct.pack(">iq", 512, per_block) + hashlib.md5(padded).digest()).hex()


def test_checksums_are_hdfs_md5_of_md5_of_crc32c(cluster: HdfsCluster) -> None:
    alice = client(cluster)
    small, large = os.urandom(1500), os.urandom(2 * MIB + 700)
    alice.write("/user/alice/small", small)
    alice.write("/user/alice/large", large, blocksize=MIB)
    alice.write("/user/alice/empty", b"")

    assert alice.checksum("/user/alice/small") == {
        "algorithm": "MD5-of-0MD5-of-512CRC32C",
        "bytes": reference_checksum(small, 128 * MIB),
        "length": 28,
    }
    assert alice.checksum("/user/alice/large") == {
        "algorithm": "MD5-of-2048MD5-of-512CRC32C",
        "bytes": reference_checksum(large, MIB),
        "length": 28,
    }
    # An empty file has the magic value every HDFS version gives.
    assert alice.checksum("/user/alice/empty") == {
        "algorithm": "MD5-of-0MD5-of-0CRC32",
        "bytes": "00000000000000000000000070bc8f4b72a86921468bf8e8441dce51",
        "length": 28,
    }
    assert [(i, op) for i, _, op, _ in cluster.requests if op == "GETFILECHECKSUM"][:2] == [
        (0, "GETFILECHECKSUM"),
        (None, "GETFILECHECKSUM"),
    ]
    assert fails(lambda: alice.checksum("/user/alice"))[0] == "FileNotFoundException"


def test_a_large_file_streams_through(cluster: HdfsCluster) -> None:
    admin = hdfs.InsecureClient(cluster.url, user="hdfs")
    piece = os.urandom(MIB)
    sent = hashlib.sha256()

    def pieces() -> Iterator[bytes]:
        for index in range(64):
            chunk = bytes([index]) + piece[1:]
            sent.update(chunk)
            yield chunk

    admin.write("/big.bin", pieces(), blocksize=32 * MIB)

    assert admin.status("/big.bin")["length"] == 64 * MIB
    received = hashlib.sha256()
    with admin.read("/big.bin", chunk_size=MIB) as reader:
        for chunk in reader:
            received.update(chunk)
    assert received.hexdigest() == sent.hexdigest()
    with admin.read("/big.bin", offset=63 * MIB, length=10) as reader:
        assert reader.read() == bytes([63]) + piece[1:10]
