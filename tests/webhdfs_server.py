"""A stand-in for a real HDFS cluster: WebHDFS NameNodes and one DataNode on 127.0.0.1.

No HDFS can be installed on the machines the tests run on, so this is NOT Hadoop: it is one
Python process that speaks the WebHDFS REST API of Hadoop 3, written from the API's
specification and the documented behaviour of the NameNode and DataNode. The namespace is kept
in memory (one lock); each file's bytes are real bytes in one blob file under `root`.

It is strict on purpose, so that a client cannot pass by relying on leniency: what a real
Hadoop 3 NameNode or DataNode rejects, it rejects, with the same HTTP status and the same
`RemoteException` JSON (exception, javaClassName, message). That covers SIMPLE authentication
with anonymous requests refused, Hadoop's parameter domains, path rules (DFSUtil.isValidName),
HDFS permissions (traverse, parent, ancestor, sticky bit, owner, superuser and supergroup),
the old and the new (`renameoptions`) RENAME semantics, the two-step CREATE and APPEND through a
DataNode, HA standby NameNodes, and the DataNode's own quirks (an unsolicited `100 Continue`,
`Connection: close` on every answer). Where it is stricter or simpler than Hadoop, the code
says so.

`HdfsCluster` runs one (a context manager).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

PREFIX = "/webhdfs/v1"
DEFAULT_BLOCK_SIZE = 128 * 1024 * 1024  # dfs.blocksize
DEFAULT_REPLICATION = 3  # dfs.replication
DEFAULT_BUFFER_SIZE = 4096  # io.file.buffer.size
MIN_BLOCK_SIZE = 1024 * 1024  # dfs.namenode.fs-limits.min-block-size
MAX_REPLICATION = 512  # dfs.replication.max
BYTES_PER_CHECKSUM = 512  # dfs.bytes-per-checksum
ACCESS_TIME_PRECISION_MS = 3_600_000  # dfs.namenode.accesstime.precision
MAX_COMPONENT_LENGTH = 255  # dfs.namenode.fs-limits.max-component-length, in bytes
MAX_PATH_LENGTH, MAX_PATH_DEPTH = 8000, 1000  # the NameNode's checkPathLength
ROOT_INODE_ID = 16385  # INodeId.ROOT_INODE_ID: the first id after the reserved ones
USER_PATTERN = r"^[A-Za-z_][A-Za-z0-9._-]*[$]?$"  # dfs.webhdfs.user.provider.user.pattern
DEFAULT_WEB_USER = "dr.who"  # hadoop.http.staticuser.user: the DataNode's user when none is given
CLIENT_MACHINE = "127.0.0.1"

READ, WRITE, EXECUTE = 4, 2, 1
STICKY = 0o1000
_ACTIONS = [
    "NONE",
    "EXECUTE",
    "WRITE",
    "WRITE_EXECUTE",
    "READ",
    "READ_EXECUTE",
    "READ_WRITE",
    "ALL",
]

_PIECE = 1 << 20  # bytes moved per read or write while streaming a body
_DRAIN_LIMIT = 16 << 20  # a refused upload's body is read up to this, then the connection closes
_LINE_LIMIT = 8192  # longest chunk-size or trailer line accepted

# The operations each HTTP method's WebHDFS resource knows (GetOpParam.Op, PutOpParam.Op, ...).
_KNOWN_OPS = {
    "GET": {
        "OPEN", "GETFILESTATUS", "LISTSTATUS", "GETCONTENTSUMMARY", "GETQUOTAUSAGE",
        "GETFILECHECKSUM", "GETHOMEDIRECTORY", "GETDELEGATIONTOKEN", "GET_BLOCK_LOCATIONS",
        "GETACLSTATUS", "GETXATTRS", "GETTRASHROOT", "LISTXATTRS", "CHECKACCESS",
        "LISTSTATUS_BATCH", "GETALLSTORAGEPOLICY", "GETSTORAGEPOLICY", "GETSNAPSHOTDIFF",
        "GETSNAPSHOTTABLEDIRECTORYLIST", "GETSNAPSHOTLIST", "GETECPOLICY", "GETSERVERDEFAULTS",
        "GETLINKTARGET", "GETFILELINKSTATUS", "GETSTATUS", "GETFILEBLOCKLOCATIONS",
        "GETTRASHROOTS", "GETECPOLICIES", "GETECCODECS", "NULL",
    },
    "PUT": {
        "CREATE", "MKDIRS", "CREATESYMLINK", "RENAME", "SETREPLICATION", "SETOWNER",
        "SETPERMISSION", "SETTIMES", "RENEWDELEGATIONTOKEN", "CANCELDELEGATIONTOKEN",
        "MODIFYACLENTRIES", "REMOVEACLENTRIES", "REMOVEDEFAULTACL", "REMOVEACL", "SETACL",
        "SETXATTR", "REMOVEXATTR", "ALLOWSNAPSHOT", "DISALLOWSNAPSHOT", "CREATESNAPSHOT",
        "RENAMESNAPSHOT", "SETSTORAGEPOLICY", "SATISFYSTORAGEPOLICY", "ENABLEECPOLICY",
        "DISABLEECPOLICY", "SETECPOLICY", "SETQUOTA", "SETQUOTABYSTORAGETYPE", "NULL",
    },
    "POST": {"APPEND", "CONCAT", "TRUNCATE", "UNSETSTORAGEPOLICY", "UNSETECPOLICY", "NULL"},
    "DELETE": {"DELETE", "DELETESNAPSHOT", "NULL"},
}  # fmt: skip
_OP_CLASSES = {"GET": "GetOpParam", "PUT": "PutOpParam", "POST": "PostOpParam"}
_IMPLEMENTED = {
    "GET": {
        "OPEN", "GETFILESTATUS", "LISTSTATUS", "LISTSTATUS_BATCH", "GETCONTENTSUMMARY",
        "GETFILECHECKSUM", "GETHOMEDIRECTORY", "GETACLSTATUS", "CHECKACCESS", "GETTRASHROOT",
    },
    "PUT": {
        "CREATE", "MKDIRS", "RENAME", "SETOWNER", "SETPERMISSION", "SETTIMES", "SETREPLICATION",
    },
    "POST": {"APPEND"},
    "DELETE": {"DELETE"},
}  # fmt: skip

# Hadoop's exceptions: simple name -> (java class, HTTP status its ExceptionHandler maps it to).
_EXCEPTIONS = {
    "FileNotFoundException": ("java.io.FileNotFoundException", 404),
    "AccessControlException": ("org.apache.hadoop.security.AccessControlException", 403),
    "AuthorizationException": ("org.apache.hadoop.security.authorize.AuthorizationException", 403),
    "FileAlreadyExistsException": ("org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    "ParentNotDirectoryException": ("org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    "PathIsNotEmptyDirectoryException": (
        "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
        403,
    ),
    "AlreadyBeingCreatedException": (
        "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException",
        403,
    ),
    "PathComponentTooLongException": (
        "org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException",
        403,
    ),
    "StandbyException": ("org.apache.hadoop.ipc.StandbyException", 403),
    "DSQuotaExceededException": ("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", 403),
    "IOException": ("java.io.IOException", 403),
    "EOFException": ("java.io.EOFException", 403),
    "ConnectException": ("java.net.ConnectException", 403),
    "IllegalArgumentException": ("java.lang.IllegalArgumentException", 400),
    "HadoopIllegalArgumentException": ("org.apache.hadoop.HadoopIllegalArgumentException", 400),
    "InvalidPathException": ("org.apache.hadoop.fs.InvalidPathException", 400),
    "UnsupportedOperationException": ("java.lang.UnsupportedOperationException", 400),
    "SecurityException": ("java.lang.SecurityException", 401),
    "RuntimeException": ("java.lang.RuntimeException", 500),
}


class RemoteError(Exception):
    """An error answered as Hadoop's `{"RemoteException": {...}}` JSON."""

    def __init__(self, exception: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.exception = exception
        self.java_class, default_status = _EXCEPTIONS[exception]
        self.status = status or default_status
        self.message = message

    def body(self) -> bytes:
        remote = {
            "exception": self.exception,
            "javaClassName": self.java_class,
            "message": self.message,
        }
        return _json({"RemoteException": remote})


def _json(value: Any) -> bytes:
    # Hadoop's JsonUtil builds TreeMaps, so keys come sorted; Jackson writes UTF-8 as is.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _invalid_path(path: str) -> RemoteError:
    # FSDirectory: InvalidPathException("Invalid file name: " + src), whose constructor
    # prefixes "Invalid path name ".
    return RemoteError("InvalidPathException", f"Invalid path name Invalid file name: {path}")


def _split(path: str) -> list[str]:
    """The components of an absolute HDFS path. Like DFSUtil.isValidName: '.', '..' and names
    holding ':' are refused, and so is '//' inside; one trailing '/' is allowed. (Hadoop checks
    this when a path is created or stat'ed; checking it on every operation is stricter.)"""
    if not path.startswith("/"):
        raise _invalid_path(path)
    inner = path[1:-1] if path.endswith("/") and len(path) > 1 else path[1:]
    if not inner:
        return []
    parts = inner.split("/")
    if any(part in ("", ".", "..") or ":" in part for part in parts):
        raise _invalid_path(path)
    return parts


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def _mode_string(mode: int, directory: bool) -> str:
    """FsPermission.toString, after the 'd' or '-' Hadoop's messages put first."""
    symbols = "".join(
        ("r" if mode >> shift & READ else "-")
        + ("w" if mode >> shift & WRITE else "-")
        + ("x" if mode >> shift & EXECUTE else "-")
        for shift in (6, 3, 0)
    )
    if mode & STICKY:
        symbols = symbols[:-1] + ("t" if mode & EXECUTE else "T")
    return ("d" if directory else "-") + symbols


def _signed_order(name: str) -> bytes:
    # HDFS sorts a directory's children by their UTF-8 bytes compared as Java's signed bytes
    # (DFSUtil.compareBytes uses SignedBytes): bytes >= 0x80 come before ASCII.
    return bytes(byte ^ 0x80 for byte in name.encode())


# ---- CRC32C and HDFS's MD5-of-MD5-of-CRC32C file checksum ---------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()
# The table's entries cut into their four bytes, as bytes.translate tables, to run the table
# lookup on the same byte position of many chunks at once (see _chunk_crcs).
_CRC_BYTES = [bytes(entry >> shift & 0xFF for entry in _CRC_TABLE) for shift in (0, 8, 16, 24)]
_INVERT = bytes(255 - value for value in range(256))


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), byte by byte: for short inputs."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _chunk_crcs(data: bytes) -> bytes:
    """The big-endian CRC32C of each 512-byte chunk of `data` (the last may be shorter),
    concatenated: what a DataNode keeps in a block's .meta file.

    Pure Python would take minutes per GiB byte by byte, so the full chunks advance together:
    the four bytes of every chunk's CRC are four byte strings, and one step of the table-driven
    CRC for byte j of every chunk is a few bytes.translate and big-integer XORs."""
    count = len(data) // BYTES_PER_CHECKSUM
    out = bytearray()
    if count:
        width = count

        def number(value: bytes) -> int:
            return int.from_bytes(value, "little")

        c0 = c1 = c2 = c3 = number(b"\xff" * width)
        for position in range(BYTES_PER_CHECKSUM):
            column = number(data[position : count * BYTES_PER_CHECKSUM : BYTES_PER_CHECKSUM])
            index = (c0 ^ column).to_bytes(width, "little")
            c0 = number(index.translate(_CRC_BYTES[0])) ^ c1
            c1 = number(index.translate(_CRC_BYTES[1])) ^ c2
            c2 = number(index.translate(_CRC_BYTES[2])) ^ c3
            c3 = number(index.translate(_CRC_BYTES[3]))
        packed = bytearray(4 * count)
        for offset, value in enumerate((c3, c2, c1, c0)):  # big-endian, final XOR by inverting
            packed[offset::4] = value.to_bytes(width, "little").translate(_INVERT)
        out += packed
    tail = data[count * BYTES_PER_CHECKSUM :]
    if tail:
        out += crc32c(tail).to_bytes(4, "big")
    return bytes(out)


def file_checksum(stream: BinaryIO, length: int, block_size: int) -> dict[str, Any]:
    """HDFS's default file checksum (dfs.checksum.combine.mode=MD5MD5CRC) of the first `length`
    bytes of `stream`, cut in blocks of `block_size`, as WebHDFS's FileChecksum JSON."""
    if length == 0:
        # FileChecksumHelper: an empty file gets the magic MD5 of 32 zero bytes, CRC32, 0, 0.
        raw = struct.pack(">iq", 0, 0) + hashlib.md5(bytes(32)).digest()
        return {"algorithm": "MD5-of-0MD5-of-0CRC32", "bytes": raw.hex(), "length": 28}
    block_md5s = []
    piece_size = 16 * _PIECE  # a multiple of 512: pieces never split a chunk
    remaining = length
    while remaining > 0:
        block = hashlib.md5()
        left = min(block_size, remaining)
        remaining -= left
        while left > 0:
            piece = stream.read(min(left, piece_size))
            if not piece:
                raise RemoteError("IOException", "Unexpected end of block data")
            block.update(_chunk_crcs(piece))
            left -= len(piece)
        block_md5s.append(block.digest())
    # crcPerBlock is set only when the file has more than one block.
    per_block = block_size // BYTES_PER_CHECKSUM if len(block_md5s) > 1 else 0
    # The file MD5 is taken over the whole backing array of the DataOutputBuffer the block MD5s
    # were written to: 32 bytes, doubled as needed, zero-padded.
    capacity = 32
    while capacity < 16 * len(block_md5s):
        capacity *= 2
    file_md5 = hashlib.md5(b"".join(block_md5s).ljust(capacity, b"\0")).digest()
    raw = struct.pack(">iq", BYTES_PER_CHECKSUM, per_block) + file_md5
    algorithm = f"MD5-of-{per_block}MD5-of-{BYTES_PER_CHECKSUM}CRC32C"
    return {"algorithm": algorithm, "bytes": raw.hex(), "length": 28}


# ---- The namespace ---------------------------------------------------------------------


@dataclass(eq=False)
class _Inode:
    id: int
    name: str
    directory: bool
    owner: str
    group: str
    mode: int  # the permission bits and the sticky bit
    mtime: int
    atime: int
    parent: _Inode | None = None
    children: dict[str, _Inode] = field(default_factory=dict)
    length: int = 0
    block_size: int = 0
    replication: int = 0
    blob: Path | None = None
    writer: _Writer | None = None  # set while the file is under construction
    space_quota: int = -1  # a directory's, in bytes of its files' replicas (-1: none)


@dataclass(eq=False)
class _Writer:
    """An upload in progress through the DataNode: the file's lease."""

    holder: str
    inode: _Inode
    base: int  # the file's length when the upload began (APPEND)
    stream: BinaryIO
    written: int = 0
    blocks: int = 0  # the blocks allocated to this upload so far


@dataclass(frozen=True)
class _Caller:
    user: str
    groups: tuple[str, ...]
    superuser: bool


class _Namespace:
    """The NameNodes' shared namespace, and the DataNode's view of it. One lock for all."""

    def __init__(
        self,
        root: Path,
        superuser: str,
        supergroup: str,
        groups: dict[str, tuple[str, ...]],
        list_limit: int,
    ) -> None:
        self.blobs = root
        self.superuser = superuser
        self.supergroup = supergroup
        self.groups = groups
        self.list_limit = list_limit
        self.lock = threading.RLock()
        self.ids = itertools.count(ROOT_INODE_ID + 1)
        self.holders = itertools.count(1)
        now = _now_ms()
        self.root = _Inode(ROOT_INODE_ID, "", True, superuser, supergroup, 0o755, now, 0)

    def caller(self, user: str) -> _Caller:
        groups = tuple(self.groups.get(user, (user,)))
        return _Caller(user, groups, user == self.superuser or self.supergroup in groups)

    # -- resolution and permissions (FSPermissionChecker) --

    def _resolve(self, parts: list[str]) -> list[_Inode | None]:
        """The inodes along `parts`, root first; None from the first missing one (a file's
        'children' are missing too)."""
        inodes: list[_Inode | None] = [self.root]
        node: _Inode | None = self.root
        for name in parts:
            node = node.children.get(name) if node is not None and node.directory else None
            inodes.append(node)
        return inodes

    @staticmethod
    def _allowed(caller: _Caller, inode: _Inode, access: int) -> bool:
        if caller.user == inode.owner:
            bits = inode.mode >> 6
        elif inode.group in caller.groups:
            bits = inode.mode >> 3
        else:
            bits = inode.mode
        return bits & access == access

    @staticmethod
    def _denied(caller: _Caller, inode: _Inode, path: str, access: int) -> RemoteError:
        where = f"{inode.owner}:{inode.group}:{_mode_string(inode.mode, inode.directory)}"
        message = (
            f"Permission denied: user={caller.user}, access={_ACTIONS[access]}, "
            f'inode="{path}":{where}'
        )
        return RemoteError("AccessControlException", message)

    @staticmethod
    def _sticky(caller: _Caller, parent: _Inode, child: _Inode, path: str, ppath: str) -> None:
        if not parent.mode & STICKY or caller.user in (parent.owner, child.owner):
            return
        mine = f"{child.owner}:{child.group}:{_mode_string(child.mode, child.directory)}"
        theirs = f"{parent.owner}:{parent.group}:{_mode_string(parent.mode, True)}"
        message = (
            f"Permission denied by sticky bit: user={caller.user}, "
            f'path="{path}":{mine}, parent="{ppath}":{theirs}'
        )
        raise RemoteError("AccessControlException", message)

    def _check(
        self,
        caller: _Caller,
        inodes: list[_Inode | None],
        parts: list[str],
        *,
        ancestor: int | None = None,
        parent: int | None = None,
        access: int | None = None,
        sub: int | None = None,
        ignore_empty: bool = False,
        owner: bool = False,
    ) -> None:
        """HDFS's checkPermission: every existing ancestor must be a directory the caller may
        traverse (EXECUTE); then `ancestor` on the closest existing ancestor, `parent` on the
        parent (with the sticky bit when it implies WRITE), `access` on the path itself, `sub`
        on every directory below it, `owner`: the caller owns it. The superuser and the members
        of the supergroup pass everything but the directory check."""
        nearest = len(inodes) - 2
        while nearest >= 0 and inodes[nearest] is None:
            nearest -= 1
        for index in range(nearest + 1):
            node = inodes[index]
            assert node is not None
            if not node.directory:
                message = f"{_join(parts[:index])} (is not a directory)"
                raise RemoteError("ParentNotDirectoryException", message)
            if not caller.superuser and not self._allowed(caller, node, EXECUTE):
                raise self._denied(caller, node, _join(parts[:index]), EXECUTE)
        if caller.superuser:
            return
        last = inodes[-1]
        if parent is not None and parent & WRITE and len(inodes) > 1 and last is not None:
            above = inodes[-2]
            assert above is not None
            self._sticky(caller, above, last, _join(parts), _join(parts[:-1]))
        for index, wanted in ((nearest, ancestor), (len(inodes) - 2, parent)):
            node = inodes[index] if index >= 0 else None
            if wanted is None or len(inodes) < 2 or node is None:
                continue
            if not self._allowed(caller, node, wanted):
                raise self._denied(caller, node, _join(parts[:index]), wanted)
        if access is not None and last is not None and not self._allowed(caller, last, access):
            raise self._denied(caller, last, _join(parts), access)
        if sub is not None and last is not None and last.directory:
            self._check_subtree(caller, last, _join(parts), sub, ignore_empty)
        if owner and last is not None and last.owner != caller.user:
            message = (
                f"Permission denied. user={caller.user} is not the owner of inode={_join(parts)}"
            )
            raise RemoteError("AccessControlException", message)

    def _check_subtree(
        self, caller: _Caller, top: _Inode, path: str, access: int, ignore_empty: bool
    ) -> None:
        stack = [(top, path)]
        while stack:
            directory, where = stack.pop()
            if directory.children or not ignore_empty:
                if not self._allowed(caller, directory, access):
                    raise self._denied(caller, directory, where, access)
                # Hadoop checks the sticky bit below a directory too; this stand-in does it only
                # for the access that changes the children (a recursive DELETE).
                if access & WRITE:
                    for name, child in directory.children.items():
                        self._sticky(caller, directory, child, f"{where.rstrip('/')}/{name}", where)
            for name, child in directory.children.items():
                if child.directory:
                    stack.append((child, f"{where.rstrip('/')}/{name}"))

    def _lookup(self, caller: _Caller, path: str) -> tuple[list[str], list[_Inode | None]]:
        """Parse, resolve and check traversal: what every operation starts with."""
        parts = _split(path)
        inodes = self._resolve(parts)
        self._check(caller, inodes, parts)
        return parts, inodes

    # -- reads --

    def _length(self, inode: _Inode) -> int:
        writer = inode.writer
        if writer is None:
            return inode.length
        # While a file is written the NameNode knows only the blocks already completed.
        whole = (writer.base + writer.written) // inode.block_size * inode.block_size
        return max(writer.base, whole)

    def _status(self, inode: _Inode, suffix: str) -> dict[str, Any]:
        return {
            "accessTime": inode.atime,
            "blockSize": inode.block_size,
            "childrenNum": len(inode.children) if inode.directory else 0,
            "fileId": inode.id,
            "group": inode.group,
            "length": 0 if inode.directory else self._length(inode),
            "modificationTime": inode.mtime,
            "owner": inode.owner,
            "pathSuffix": suffix,
            "permission": format(inode.mode, "o"),
            "replication": inode.replication,
            "storagePolicy": 0,
            "type": "DIRECTORY" if inode.directory else "FILE",
        }

    def file_status(self, caller: _Caller, path: str) -> dict[str, Any]:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            if inodes[-1] is None:
                raise RemoteError("FileNotFoundException", f"File does not exist: {_join(parts)}")
            return self._status(inodes[-1], "")

    def redirect_length(self, caller: _Caller, path: str) -> int:
        """What the NameNode looks at before it redirects OPEN, APPEND or GETFILECHECKSUM."""
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            if inodes[-1] is None:
                raise RemoteError("FileNotFoundException", f"File {_join(parts)} not found.")
            return 0 if inodes[-1].directory else self._length(inodes[-1])

    def listing(
        self, caller: _Caller, path: str, start_after: str | None, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        """(statuses, remaining entries) after `start_after`, at most `limit` of them."""
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            last = inodes[-1]
            if last is not None and last.directory:
                self._check(caller, inodes, parts, access=READ | EXECUTE)
            if last is None:
                raise RemoteError("FileNotFoundException", f"File {_join(parts)} does not exist.")
            if not last.directory:
                return [self._status(last, "")], 0
            names = sorted(last.children, key=_signed_order)
            start = 0
            if start_after:
                after = _signed_order(start_after)
                start = next(
                    (i for i, n in enumerate(names) if _signed_order(n) > after), len(names)
                )
            page = names[start:] if limit is None else names[start : start + limit]
            entries = [self._status(last.children[name], name) for name in page]
            return entries, len(names) - start - len(page)

    def content_summary(self, caller: _Caller, path: str) -> dict[str, Any]:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            self._check(caller, inodes, parts, sub=READ | EXECUTE)
            top = inodes[-1]
            if top is None:
                raise RemoteError("FileNotFoundException", f"File does not exist: {_join(parts)}")
            directories = files = length = consumed = 0
            stack = [top]
            while stack:
                node = stack.pop()
                if node.directory:
                    directories += 1
                    stack.extend(node.children.values())
                else:
                    files += 1
                    length += self._length(node)
                    consumed += self._length(node) * node.replication
            return {
                "directoryCount": directories,
                "ecPolicy": "",
                "fileCount": files,
                "length": length,
                "quota": -1,
                "spaceConsumed": consumed,
                "spaceQuota": top.space_quota,
                "typeQuota": {},
            }

    def check_access(self, caller: _Caller, path: str, action: int) -> None:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            if inodes[-1] is None:
                raise RemoteError("FileNotFoundException", "Path not found")
            self._check(caller, inodes, parts, access=action)

    def acl_status(self, caller: _Caller, path: str) -> dict[str, Any]:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            inode = inodes[-1]
            if inode is None:
                message = f"File/Directory does not exist: {_join(parts)}"
                raise RemoteError("FileNotFoundException", message)
            return {
                "entries": [],
                "group": inode.group,
                "owner": inode.owner,
                "permission": format(inode.mode, "o"),
                "stickyBit": bool(inode.mode & STICKY),
            }

    def _readable_file(self, caller: _Caller, path: str) -> _Inode:
        """getBlockLocations: a file the caller may read; its access time moves on."""
        parts, inodes = self._lookup(caller, path)
        inode = inodes[-1]
        if inode is None:
            raise RemoteError("FileNotFoundException", f"File does not exist: {_join(parts)}")
        if inode.directory:
            raise RemoteError("FileNotFoundException", f"Path is not a file: {_join(parts)}")
        self._check(caller, inodes, parts, access=READ)
        now = _now_ms()
        if now > inode.atime + ACCESS_TIME_PRECISION_MS:
            inode.atime = now
        return inode

    def open_read(
        self, caller: _Caller, path: str, offset: int, length: int | None
    ) -> tuple[BinaryIO, int]:
        """An open stream at `offset` and how many bytes to send from it."""
        with self.lock:
            inode = self._readable_file(caller, path)
            visible = self._length(inode)
            if offset > visible:
                raise RemoteError("EOFException", "Cannot seek after EOF")
            assert inode.blob is not None
            stream = open(inode.blob, "rb")  # noqa: SIM115
        stream.seek(offset)
        count = visible - offset if length is None else min(visible - offset, length)
        return stream, count

    def checksum(self, caller: _Caller, path: str) -> dict[str, Any]:
        with self.lock:
            inode = self._readable_file(caller, path)
            length, block_size = self._length(inode), inode.block_size
            assert inode.blob is not None
            stream = open(inode.blob, "rb")  # noqa: SIM115
        with stream:  # computed outside the lock: it reads the whole file
            return file_checksum(stream, length, block_size)

    # -- writes --

    def _check_new_path(self, parts: list[str], operation: str) -> None:
        path = _join(parts)
        if len(path) > MAX_PATH_LENGTH or len(parts) > MAX_PATH_DEPTH:
            message = (
                f"{operation}: Pathname too long.  Limit {MAX_PATH_LENGTH} characters, "
                f"{MAX_PATH_DEPTH} levels."
            )
            raise RemoteError("IOException", message)

    def _attach(self, parent: _Inode, parent_path: str, inode: _Inode, now: int) -> None:
        size = len(inode.name.encode())
        if size > MAX_COMPONENT_LENGTH:
            message = (
                f"The maximum path component name limit of {inode.name} in directory "
                f"{parent_path} is exceeded: limit={MAX_COMPONENT_LENGTH} length={size}"
            )
            raise RemoteError("PathComponentTooLongException", message)
        parent.children[inode.name] = inode
        inode.parent = parent
        parent.mtime = now  # HDFS: adding or removing a child moves its directory's mtime

    def _detach(self, inode: _Inode, now: int) -> None:
        assert inode.parent is not None
        del inode.parent.children[inode.name]
        inode.parent.mtime = now
        inode.parent = None

    def _discard(self, inode: _Inode) -> None:
        """Free a removed subtree's blocks (an open writer keeps its file handle)."""
        stack = [inode]
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            if node.blob is not None:
                node.blob.unlink(missing_ok=True)

    def _new_directory(self, owner: str, parent: _Inode, name: str, mode: int, now: int) -> _Inode:
        # HDFS's group rule is BSD's: a new inode takes its parent directory's group.
        return _Inode(next(self.ids), name, True, owner, parent.group, mode, now, 0)

    def _make_ancestors(
        self, owner: str, parts: list[str], inodes: list[_Inode | None], mode: int, now: int
    ) -> _Inode:
        """Create the missing directories above the last component; the parent."""
        parent = inodes[0]
        assert parent is not None
        for index in range(1, len(parts)):
            node = inodes[index]
            if node is None:
                node = self._new_directory(owner, parent, parts[index - 1], mode, now)
                self._attach(parent, _join(parts[: index - 1]), node, now)
            parent = node
        return parent

    def mkdirs(self, caller: _Caller, path: str, permission: int) -> bool:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            last = inodes[-1]
            if last is not None:
                if not last.directory:
                    raise RemoteError(
                        "FileAlreadyExistsException", f"Path is not a directory: {_join(parts)}"
                    )
                return True  # Hadoop checks no permission when the directory is there
            self._check_new_path(parts, "mkdirs")
            self._check(caller, inodes, parts, ancestor=WRITE)
            now = _now_ms()
            # Missing ancestors get the asked permission plus u+wx (without the sticky bit).
            ancestors = permission & 0o777 | 0o300
            parent = self._make_ancestors(caller.user, parts, inodes, ancestors, now)
            node = self._new_directory(caller.user, parent, parts[-1], permission, now)
            self._attach(parent, _join(parts[:-1]), node, now)
            return True

    def delete(self, caller: _Caller, path: str, recursive: bool) -> bool:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            last = inodes[-1]
            if not recursive and last is not None and last.directory and last.children:
                # PathIsNotEmptyDirectoryException is a PathIOException: it quotes its "path".
                message = f"`{_join(parts)} is non empty': Directory is not empty"
                raise RemoteError("PathIsNotEmptyDirectoryException", message)
            self._check(
                caller, inodes, parts, parent=WRITE, sub=READ | WRITE | EXECUTE, ignore_empty=True
            )
            if last is None or not parts:
                return False  # missing, or the root, which HDFS never deletes
            self._detach(last, _now_ms())
            self._discard(last)
            return True

    def _destination(self, destination: str) -> list[str]:
        """The rename destination's components. Hadoop normalises it with its Path class and
        refuses a name with ':' as an IOException; this stand-in refuses '.' and '..' as an
        invalid path instead of resolving them (stricter)."""
        if ":" in destination:
            raise RemoteError("IOException", f"Invalid name: {destination}")
        collapsed = re.sub("/+", "/", destination)
        return _split(collapsed)

    def _move(self, source: _Inode, parent: _Inode, parent_path: str, name: str, now: int) -> None:
        self._detach(source, now)
        old = source.name
        source.name = name
        try:
            self._attach(parent, parent_path, source, now)
        except RemoteError:
            source.name = old
            raise

    def rename(self, caller: _Caller, source: str, destination: str) -> bool:
        """The old RENAME: false rather than an error; into a directory that exists."""
        with self.lock:
            sparts, sinodes = self._lookup(caller, source)
            dparts = self._destination(destination)
            dinodes = self._resolve(dparts)
            self._check(caller, dinodes, dparts)
            target = dinodes[-1]
            if target is not None and target.directory and sparts:
                dparts = [*dparts, sparts[-1]]
                dinodes = self._resolve(dparts)
            self._check_new_path(dparts, "rename")
            self._check(caller, sinodes, sparts, parent=WRITE)
            self._check(caller, dinodes, dparts, ancestor=WRITE)
            moved = sinodes[-1]
            if moved is None or not sparts:
                return False
            if dparts == sparts:
                return True
            if dparts[: len(sparts)] == sparts:
                return False  # into itself
            if dinodes[-1] is not None or dinodes[-2] is None:
                return False  # the destination exists, or its parent does not
            parent = dinodes[-2]
            self._move(moved, parent, _join(dparts[:-1]), dparts[-1], _now_ms())
            return True

    def rename2(self, caller: _Caller, source: str, destination: str, overwrite: bool) -> None:
        """RENAME with `renameoptions` (FileContext's rename): errors, and OVERWRITE replaces
        a file or an empty directory atomically."""
        with self.lock:
            sparts, sinodes = self._lookup(caller, source)
            dparts = self._destination(destination)
            dinodes = self._resolve(dparts)
            self._check(caller, dinodes, dparts)
            self._check_new_path(dparts, "rename")
            self._check(caller, sinodes, sparts, parent=WRITE)
            self._check(caller, dinodes, dparts, ancestor=WRITE)
            src, dst = _join(sparts), _join(dparts)
            moved = sinodes[-1]
            if moved is None:
                raise RemoteError("FileNotFoundException", f"rename source {src} is not found.")
            if not sparts:
                raise RemoteError("IOException", "rename source cannot be the root")
            if dparts == sparts:
                message = f"The source {src} and destination {dst} are the same"
                raise RemoteError("FileAlreadyExistsException", message)
            if dparts[: len(sparts)] == sparts:
                message = f"Rename destination {dst} is a directory or file under source {src}"
                raise RemoteError("IOException", message)
            if not dparts:
                raise RemoteError("IOException", "rename destination cannot be the root")
            existing = dinodes[-1]
            if existing is not None:
                if existing.directory != moved.directory:
                    message = f"Source {src} and destination {dst} must both be directories"
                    raise RemoteError("IOException", message)
                if not overwrite:
                    message = f"rename destination {dst} already exists"
                    raise RemoteError("FileAlreadyExistsException", message)
                if existing.children:
                    message = f"rename destination directory is not empty: {dst}"
                    raise RemoteError("IOException", message)
            parent = dinodes[-2]
            if parent is None:
                message = f"rename destination parent {dst} not found."
                raise RemoteError("FileNotFoundException", message)
            if not parent.directory:
                message = f"rename destination parent {dst} is a file."
                raise RemoteError("ParentNotDirectoryException", message)
            now = _now_ms()
            if existing is not None:
                self._detach(existing, now)
                self._discard(existing)
            self._move(moved, parent, _join(dparts[:-1]), dparts[-1], now)

    def _existing(self, caller: _Caller, path: str, *, owner: bool) -> tuple[list[str], _Inode]:
        parts, inodes = self._lookup(caller, path)
        if inodes[-1] is None:
            message = f"File/Directory does not exist: {_join(parts)}"
            raise RemoteError("FileNotFoundException", message)
        self._check(caller, inodes, parts, owner=owner)
        return parts, inodes[-1]

    def set_owner(self, caller: _Caller, path: str, owner: str | None, group: str | None) -> None:
        with self.lock:
            _, inode = self._existing(caller, path, owner=True)
            if not caller.superuser:
                # The owner may hand the file to a group of theirs; only the superuser may give
                # it away.
                if owner is not None and owner != caller.user:
                    message = (
                        f"User {caller.user} is not a super user "
                        "(non-super user cannot change owner)."
                    )
                    raise RemoteError("AccessControlException", message)
                if group is not None and group not in caller.groups:
                    message = f"User {caller.user} does not belong to {group}"
                    raise RemoteError("AccessControlException", message)
            inode.owner = owner if owner is not None else inode.owner
            inode.group = group if group is not None else inode.group

    def set_permission(self, caller: _Caller, path: str, permission: int) -> None:
        with self.lock:
            _, inode = self._existing(caller, path, owner=True)
            inode.mode = permission

    def set_times(self, caller: _Caller, path: str, mtime: int, atime: int) -> None:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            self._check(caller, inodes, parts, access=WRITE)
            inode = inodes[-1]
            if inode is None:
                message = f"File/Directory {_join(parts)} does not exist."
                raise RemoteError("FileNotFoundException", message)
            if mtime != -1:
                inode.mtime = mtime
            if atime != -1:
                inode.atime = atime

    def set_replication(self, caller: _Caller, path: str, replication: int) -> bool:
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            _verify_replication(replication, _join(parts))
            self._check(caller, inodes, parts, access=WRITE)
            inode = inodes[-1]
            if inode is None or inode.directory:
                return False
            inode.replication = replication
            return True

    def _lease_error(self, operation: str, path: str, holder: str, writer: _Writer) -> RemoteError:
        message = (
            f"Failed to {operation} {path} for {holder} on {CLIENT_MACHINE} because this file "
            f"lease is currently owned by {writer.holder} on {CLIENT_MACHINE}"
        )
        return RemoteError("AlreadyBeingCreatedException", message)

    def start_create(
        self,
        caller: _Caller,
        path: str,
        *,
        overwrite: bool,
        permission: int,
        replication: int,
        block_size: int,
        create_parent: bool,
    ) -> _Writer:
        """startFile, as the DataNode's DFSClient calls it: the file exists, empty and under
        construction, from here on."""
        holder = f"DFSClient_NONMAPREDUCE_{1_000_000 + next(self.holders)}_1"
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            target = _join(parts)
            if block_size < MIN_BLOCK_SIZE:
                message = (
                    "Specified block size is less than configured minimum value "
                    f"(dfs.namenode.fs-limits.min-block-size): {block_size} < {MIN_BLOCK_SIZE}"
                )
                raise RemoteError("IOException", message)
            _verify_replication(replication, target, holder)
            if block_size % BYTES_PER_CHECKSUM:
                # The DFSClient's output stream refuses it (after the NameNode made the file,
                # which this stand-in does not leave behind).
                message = (
                    f"Invalid values: dfs.bytes-per-checksum (={BYTES_PER_CHECKSUM}) must "
                    f"divide block size (={block_size})."
                )
                raise RemoteError("HadoopIllegalArgumentException", message)
            existing = inodes[-1]
            if existing is not None and existing.directory:
                message = f"{target} already exists as a directory"
                raise RemoteError("FileAlreadyExistsException", message)
            self._check_new_path(parts, "create")
            if overwrite and existing is not None:
                self._check(caller, inodes, parts, access=WRITE)
            self._check(caller, inodes, parts, ancestor=WRITE)
            if inodes[-2] is None and not create_parent:
                message = f"Parent directory doesn't exist: {_join(parts[:-1])}"
                raise RemoteError("FileNotFoundException", message)
            now = _now_ms()
            if existing is not None:
                if not overwrite:
                    if existing.writer is not None:
                        raise self._lease_error("CREATE_FILE", target, holder, existing.writer)
                    message = f"{target} for client {CLIENT_MACHINE} already exists"
                    raise RemoteError("FileAlreadyExistsException", message)
                self._detach(existing, now)
                self._discard(existing)
            # Missing ancestors inherit the closest existing one's permission, plus u+wx.
            nearest = next(node for node in reversed(inodes[:-1]) if node is not None)
            parent = self._make_ancestors(
                caller.user, parts, inodes, nearest.mode & 0o777 | 0o300, now
            )
            inode = _Inode(
                next(self.ids), parts[-1], False, caller.user, parent.group, permission, now, now
            )
            inode.block_size, inode.replication = block_size, replication
            self._attach(parent, _join(parts[:-1]), inode, now)
            inode.blob = self.blobs / f"blk_{inode.id}"
            writer = _Writer(holder, inode, 0, open(inode.blob, "wb"))  # noqa: SIM115
            inode.writer = writer
            return writer

    def start_append(self, caller: _Caller, path: str) -> _Writer:
        holder = f"DFSClient_NONMAPREDUCE_{1_000_000 + next(self.holders)}_1"
        with self.lock:
            parts, inodes = self._lookup(caller, path)
            target = _join(parts)
            inode = inodes[-1]
            if inode is not None and inode.directory:
                message = f"Cannot append to directory {target}; already exists as a directory."
                raise RemoteError("FileAlreadyExistsException", message)
            self._check(caller, inodes, parts, access=WRITE)
            if inode is None:
                message = (
                    f"Failed to append to non-existent file {target} for client {CLIENT_MACHINE}"
                )
                raise RemoteError("FileNotFoundException", message)
            if inode.writer is not None:
                raise self._lease_error("APPEND_FILE", target, holder, inode.writer)
            assert inode.blob is not None
            writer = _Writer(holder, inode, inode.length, open(inode.blob, "ab"))  # noqa: SIM115
            inode.writer = writer
            return writer

    def allocate(self, writer: _Writer, upto: int) -> None:
        """The blocks an upload needs to hold `upto` bytes, each allocated as the NameNode's
        addBlock does: refused where a directory above the file would exceed its space quota,
        which counts a new block whole (its preferred size times its replication)."""
        with self.lock:
            inode = writer.inode
            while (writer.base + upto) > (writer.base // inode.block_size + writer.blocks) * (
                inode.block_size
            ):
                block = inode.block_size * inode.replication
                node = inode.parent
                while node is not None:
                    if node.space_quota >= 0:
                        consumed = self._consumed(node)
                        if consumed + block > node.space_quota:
                            raise RemoteError(
                                "DSQuotaExceededException",
                                f"The DiskSpace quota of {self._path_of(node)} is exceeded: "
                                f"quota = {node.space_quota} B = {_sized(node.space_quota)} "
                                f"but diskspace consumed = {consumed + block} B = "
                                f"{_sized(consumed + block)}",
                            )
                    node = node.parent
                writer.blocks += 1

    def _consumed(self, directory: _Inode) -> int:
        """A directory's files' replicas, a file being written counting its blocks whole."""
        consumed, stack = 0, [directory]
        while stack:
            node = stack.pop()
            if node.directory:
                stack.extend(node.children.values())
            elif node.writer is not None:
                allocated = node.writer.base // node.block_size + node.writer.blocks
                consumed += allocated * node.block_size * node.replication
            else:
                consumed += node.length * node.replication
        return consumed

    def _path_of(self, inode: _Inode) -> str:
        names = []
        while inode.parent is not None:
            names.append(inode.name)
            inode = inode.parent
        return "/" + "/".join(reversed(names))

    def set_space_quota(self, path: str, quota: int) -> None:
        """dfsadmin -setSpaceQuota, as the superuser does it."""
        with self.lock:
            node = self._resolve(_split(path))[-1]
            if node is None or not node.directory:
                raise RemoteError("FileNotFoundException", f"Directory does not exist: {path}")
            node.space_quota = quota

    def finish(self, writer: _Writer) -> None:
        """completeFile: the length is known and the mtime set, now."""
        writer.stream.close()
        with self.lock:
            inode = writer.inode
            if inode.writer is not writer:
                return  # already closed
            inode.writer = None
            inode.length = writer.base + writer.written
            inode.mtime = _now_ms()
            if not self._attached(inode):
                # Deleted or overwritten under the writer: HDFS refuses to complete it.
                message = (
                    f"File does not exist: {inode.name} (inode {inode.id}) Holder "
                    f"{writer.holder} does not have any open files."
                )
                raise RemoteError("FileNotFoundException", message)

    def _attached(self, inode: _Inode) -> bool:
        while inode.parent is not None:
            inode = inode.parent
        return inode is self.root

    # -- seeding, for tests: as the superuser would, no permission checks --

    def _seed_parent(self, path: str) -> tuple[list[str], _Inode]:
        parts = _split(path)
        if not parts:
            raise ValueError("the root cannot be seeded")
        inodes = self._resolve(parts)
        if any(node is not None and not node.directory for node in inodes[:-1]):
            raise NotADirectoryError(path)
        parent = self._make_ancestors(self.superuser, parts, inodes, 0o755, _now_ms())
        return parts, parent

    def seed_directory(self, path: str, owner: str, group: str, permission: int) -> None:
        with self.lock:
            parts, parent = self._seed_parent(path)
            node = parent.children.get(parts[-1])
            if node is not None and not node.directory:
                raise FileExistsError(path)
            if node is None:
                now = _now_ms()
                node = self._new_directory(owner, parent, parts[-1], permission, now)
                self._attach(parent, _join(parts[:-1]), node, now)
            node.owner, node.group, node.mode = owner, group, permission

    def seed_file(
        self, path: str, data: bytes, owner: str, group: str, permission: int, mtime: int | None
    ) -> None:
        with self.lock:
            parts, parent = self._seed_parent(path)
            now = _now_ms()
            existing = parent.children.get(parts[-1])
            if existing is not None:
                if existing.directory:
                    raise IsADirectoryError(path)
                self._detach(existing, now)
                self._discard(existing)
            stamp = now if mtime is None else mtime
            inode = _Inode(next(self.ids), parts[-1], False, owner, group, permission, stamp, stamp)
            inode.block_size, inode.replication = DEFAULT_BLOCK_SIZE, DEFAULT_REPLICATION
            inode.length = len(data)
            inode.blob = self.blobs / f"blk_{inode.id}"
            inode.blob.write_bytes(data)
            self._attach(parent, _join(parts[:-1]), inode, now)

    def _find(self, path: str) -> _Inode:
        inode = self._resolve(_split(path))[-1]
        if inode is None:
            raise FileNotFoundError(path)
        return inode

    def raw_status(self, path: str) -> dict[str, Any]:
        with self.lock:
            return self._status(self._find(path), "")

    def raw_read(self, path: str) -> bytes:
        with self.lock:
            inode = self._find(path)
            if inode.directory:
                raise IsADirectoryError(path)
            assert inode.blob is not None
            with open(inode.blob, "rb") as stream:
                return stream.read(self._length(inode))


def _sized(value: int) -> str:
    """A size as Hadoop's quota messages put it (TraditionalBinaryPrefix.long2String, two
    decimals): "2 MB", "1.50 GB"."""
    for power, prefix in ((60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")):
        unit = 1 << power
        if value >= unit:
            return (
                f"{value // unit} {prefix}B"
                if value % unit == 0
                else f"{value / unit:.2f} {prefix}B"
            )
    return f"{value} B"


def _verify_replication(replication: int, path: str, holder: str | None = None) -> None:
    if replication > MAX_REPLICATION:
        message = (
            f"Requested replication factor of {replication} exceeds maximum of "
            f"{MAX_REPLICATION} for {path}" + (f", clientName={holder}" if holder else "")
        )
        raise RemoteError("IOException", message)


# ---- Parameters (org.apache.hadoop.hdfs.web.resources) ---------------------------------


class _Params:
    """A request's query parameters, read as Hadoop's Param classes read them. Names are case
    insensitive (ParamFilter lowers them) and the first of repeated values counts. The
    NameNode (Jersey) wraps a bad value's message; the DataNode does not."""

    def __init__(self, query: str, *, namenode: bool) -> None:
        self.namenode = namenode
        self.values: dict[str, str] = {}
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError) as error:
            raise RemoteError("IllegalArgumentException", f"Bad query string: {error}") from None
        for name, value in pairs:
            self.values.setdefault(name.lower(), value)

    def bad(self, name: str, message: str) -> RemoteError:
        if self.namenode:
            message = f'Invalid value for webhdfs parameter "{name}": {message}'
        return RemoteError("IllegalArgumentException", message)

    def text(self, name: str) -> str | None:
        """A string parameter: empty means not given."""
        return self.values.get(name) or None

    def number(
        self,
        name: str,
        *,
        radix: int = 10,
        bits: int = 64,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A LongParam, IntegerParam or ShortParam: None when absent (or Hadoop's "null");
        anything else must parse, even empty, and be in range."""
        value = self.values.get(name)
        if value is None or value == "null":
            return None
        kind = {64: "long integer", 32: "integer", 16: "short integer"}[bits]
        digits = "0-7" if radix == 8 else "0-9"
        number = int(value, radix) if re.fullmatch(f"[+-]?[{digits}]+", value) else None
        if number is None or not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
            raise self.bad(name, f'Failed to parse "{value}" as a radix-{radix} {kind}.')

        def shown(n: int) -> str:
            # ShortParam shows values as unsigned 16-bit numbers in their radix.
            return format(n & 0xFFFF, "o") if radix == 8 else str(n)

        if minimum is not None and number < minimum:
            message = f"Invalid parameter range: {name} = {shown(number)} < {shown(minimum)}"
            raise self.bad(name, message)
        if maximum is not None and number > maximum:
            message = f"Invalid parameter range: {name} = {shown(number)} > {shown(maximum)}"
            raise self.bad(name, message)
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None or value == "null":
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.bad(name, f'Failed to parse "{value}" to Boolean.')

    def permission(self) -> int | None:
        return self.number("permission", radix=8, bits=16, minimum=0, maximum=0o1777)

    def user(self, default: str | None) -> str | None:
        user = self.text("user.name") or default
        if user is not None and not re.fullmatch(USER_PATTERN, user):
            message = f'Invalid value: "{user}" does not belong to the domain {USER_PATTERN}'
            raise self.bad("user.name", message)
        return user

    def validate(self, method: str) -> None:
        """Jersey builds every parameter its resource method declares, whatever the op: a bad
        value of any of them is refused."""
        if method == "GET":
            self.number("offset", minimum=0)
            self.number("length", minimum=0)
            self.number("buffersize", bits=32, minimum=1)
            self.boolean("noredirect", False)
            action = self.text("fsaction")
            if action is not None and not re.fullmatch("[rwx-]{3}", action):
                message = f'Invalid value: "{action}" does not belong to the domain [rwx-]{{3}}'
                raise self.bad("fsaction", message)
        elif method == "PUT":
            self.permission()
            self.number("unmaskedpermission", radix=8, bits=16, minimum=0, maximum=0o1777)
            self.boolean("overwrite", False)
            self.boolean("createparent", True)
            self.boolean("noredirect", False)
            self.number("buffersize", bits=32, minimum=1)
            self.number("replication", bits=16, minimum=1)
            self.number("blocksize", minimum=1)
            self.number("modificationtime", minimum=-1)
            self.number("accesstime", minimum=-1)
            self.rename_options()
            destination = self.text("destination")
            if destination is not None and not destination.startswith("/"):
                message = (
                    f'Invalid parameter value: destination = "{destination}" is not an '
                    "absolute path."
                )
                raise self.bad("destination", message)
        elif method == "POST":
            self.number("buffersize", bits=32, minimum=1)
            self.number("newlength", minimum=0)
            self.boolean("noredirect", False)
        elif method == "DELETE":
            self.boolean("recursive", False)
            self.boolean("skiptrash", False)

    def rename_options(self) -> set[str] | None:
        """None without the parameter (or empty): the old RENAME. A set, even {NONE}: rename2."""
        value = self.values.get("renameoptions")
        if not value:
            return None
        options = set()
        for item in value.split(","):
            option = item.strip().upper()
            if option not in ("NONE", "OVERWRITE", "TO_TRASH"):
                message = f"No enum constant org.apache.hadoop.fs.Options.Rename.{option}"
                raise self.bad("renameoptions", message)
            options.add(option)
        return options


# ---- HTTP ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """One endpoint: a NameNode (`index`) or the DataNode (None). It remembers its open
    connections so that stopping it also ends the kept-alive ones."""

    daemon_threads = True

    def __init__(
        self, cluster: HdfsCluster, index: int | None, handler: type[BaseHTTPRequestHandler]
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.cluster = cluster
        self.index = index
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Call:
    """One NameNode operation's inputs."""

    path: str
    params: _Params
    ns: _Namespace
    caller: _Caller


def _ok_json(value: Any) -> _Answer:
    return _Answer(200, _json(value), "application/json")


def _ok_empty() -> _Answer:
    return _Answer(200, b"", "application/octet-stream")


class _Handler(BaseHTTPRequestHandler):
    """What both endpoints share: HTTP/1.1 with a Content-Length on every answer, bodies read
    with Content-Length or `Transfer-Encoding: chunked` (trailers included), the request log."""

    protocol_version = "HTTP/1.1"
    server: _Server
    _pending = False  # a request body not read yet

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests look at HdfsCluster.requests instead

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def handle_expect_100(self) -> bool:
        # Neither Jetty (which sends it only when the application reads the body, and the
        # NameNode never reads one) nor the DataNode (which sends its own, see below) answers
        # `Expect: 100-continue` the way http.server does.
        return True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    # -- request parts --

    def _target(self) -> tuple[str, str, str]:
        """(the path, percent-decoded as UTF-8, the raw query, the raw path)."""
        raw_path, _, query = self.path.partition("?")
        try:
            # '+' stays '+' in a path (it means a space only in a query).
            path = urllib.parse.unquote_to_bytes(raw_path).decode()
        except UnicodeDecodeError:
            raise RemoteError("IllegalArgumentException", "The path is not UTF-8") from None
        return path, query, raw_path

    def _framing(self) -> tuple[str, int]:
        """How the request body is delimited: ("none" | "length" | "chunked", length)."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            codings = [c.strip().lower() for value in encodings for c in value.split(",")]
            if codings != ["chunked"]:
                message = f"Transfer-Encoding {', '.join(encodings)} is not supported"
                raise RemoteError("IllegalArgumentException", message, 501)
            if lengths:
                message = "A request with both Content-Length and Transfer-Encoding is refused"
                raise RemoteError("IllegalArgumentException", message)
            return "chunked", 0
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
                raise RemoteError("IllegalArgumentException", "Bad Content-Length")
            return "length", int(lengths[0])
        return "none", 0

    def _body(self, framing: tuple[str, int]) -> Iterator[bytes]:
        """The body's bytes, piece by piece. ConnectionError when the client goes away, a 400
        RemoteError when chunked framing is broken."""
        kind, length = framing
        self._pending = False  # once begun, a body is never read again
        if kind == "length":
            yield from self._exactly(length)
        elif kind == "chunked":
            while True:
                size_line = self._line()
                size_text = size_line.split(b";", 1)[0].strip()
                if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                    raise RemoteError("IllegalArgumentException", "Bad chunk size line")
                size = int(size_text, 16)
                if size == 0:
                    break
                yield from self._exactly(size)
                if self._line().strip(b"\r\n"):
                    raise RemoteError("IllegalArgumentException", "Chunk data longer than its size")
            while self._line() not in (b"\r\n", b"\n"):
                pass  # trailers: read, not used

    def _exactly(self, count: int) -> Iterator[bytes]:
        while count > 0:
            piece = self.rfile.read(min(count, _PIECE))
            if not piece:
                raise ConnectionError("the client closed the connection within the body")
            count -= len(piece)
            yield piece

    def _line(self) -> bytes:
        line = self.rfile.readline(_LINE_LIMIT + 1)
        if not line:
            raise ConnectionError("the client closed the connection within the body")
        if len(line) > _LINE_LIMIT or not line.endswith(b"\n"):
            raise RemoteError("IllegalArgumentException", "Chunked body line too long")
        return line

    def _drain(self, framing: tuple[str, int]) -> None:
        """Read a body that will not be used, so that the answer reaches the client; past
        _DRAIN_LIMIT, or when it cannot be read, the connection closes instead."""
        self._pending = False
        read = 0
        try:
            for piece in self._body(framing):
                read += len(piece)
                if read > _DRAIN_LIMIT:
                    self.close_connection = True
                    return
        except (ConnectionError, OSError, RemoteError):
            self.close_connection = True

    # -- answers --

    def _answer(self, answer: _Answer, *, close: bool = False) -> None:
        self.send_response(answer.status)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True  # the client is gone: nobody to answer

    def _fail(self, error: RemoteError, *, close: bool = False) -> None:
        headers = [("WWW-Authenticate", "PseudoAuth")] if error.status == 401 else []
        self._answer(_Answer(error.status, error.body(), "application/json", headers), close=close)


class _NameNodeHandler(_Handler):
    def _serve(self, method: str) -> None:
        cluster, index = self.server.cluster, self.server.index
        assert index is not None
        try:
            path, query, raw_path = self._target()
            framing = self._framing()
            params = _Params(query, namenode=True)
        except RemoteError as error:
            cluster._log(index, method, "", self.path)
            self._fail(error, close=True)
            return
        op_value = params.values.get("op", "")
        fs_path = path[len(PREFIX) :] or "/" if _under_prefix(path) else raw_path
        cluster._log(index, method, op_value.upper(), fs_path)
        if not _under_prefix(path):
            self._drain(framing)
            self._answer(_Answer(404, b"Not Found", "text/plain"))
            return
        self._pending = framing[0] != "none"
        try:
            answer = self._operate(method, fs_path, params, framing)
        except RemoteError as error:
            answer = _Answer(error.status, error.body(), "application/json")
            if error.status == 401:
                answer.headers.append(("WWW-Authenticate", "PseudoAuth"))
        except Exception as error:  # a bug here: answered as the NameNode's 500 would be
            answer = RemoteError("RuntimeException", f"{type(error).__name__}: {error}")
            answer = _Answer(500, answer.body(), "application/json")
            self.close_connection = True
        if self._pending:
            self._drain(framing)  # no operation here reads a body
        self._answer(answer)

    def _operate(
        self, method: str, path: str, params: _Params, framing: tuple[str, int]
    ) -> _Answer:
        cluster, index = self.server.cluster, self.server.index
        assert index is not None
        # SIMPLE authentication with anonymous requests refused (the AuthenticationFilter).
        if not params.text("user.name"):
            raise RemoteError("SecurityException", "Authentication required", 401)
        user = params.user(None)
        assert user is not None
        op = params.values.get("op")
        name = "NULL" if op is None else op.upper()
        if name not in _KNOWN_OPS[method]:
            owner = _OP_CLASSES.get(method, "DeleteOpParam")
            message = f"No enum constant org.apache.hadoop.hdfs.web.resources.{owner}.Op.{name}"
            raise params.bad("op", message)
        params.validate(method)
        if params.text("doas") is not None:
            # No hadoop.proxyuser.* is configured: nobody may impersonate anyone.
            message = f"User: {user} is not allowed to impersonate {params.text('doas')}"
            raise RemoteError("AuthorizationException", message)
        if name == "NULL":
            raise RemoteError("UnsupportedOperationException", "op=NULL is not supported")
        if name in ("CREATE", "APPEND") and framing not in (("none", 0), ("length", 0)):
            # The two-step CREATE and APPEND: the data goes to the DataNode the answer names.
            # With `Expect: 100-continue` a client rightly waits for that answer instead of
            # sending its data (which then must not be read as the next request); without it,
            # data sent here is refused.
            if self.headers.get("Expect", "").lower() == "100-continue":
                self._pending = False
                self.close_connection = True
            else:
                message = (
                    f"{name} takes no data at the NameNode: send it to the DataNode that this "
                    "request's redirect names"
                )
                raise RemoteError("IllegalArgumentException", message)
        if index in cluster._standby_set():
            category = "READ" if method == "GET" else "WRITE"
            message = (
                f"Operation category {category} is not supported in state standby. "
                "Visit https://s.apache.org/sbnn-error"
            )
            raise RemoteError("StandbyException", message)
        if name not in _IMPLEMENTED[method]:
            message = f"op={name} is not implemented by this WebHDFS stand-in"
            raise RemoteError("UnsupportedOperationException", message, 501)
        namespace = cluster._namespace
        call = _Call(path, params, namespace, namespace.caller(user))
        return getattr(self, f"_{name.lower()}")(call)

    def _redirect(self, op: str, call: _Call, extra: dict[str, str]) -> _Answer:
        """307 to the DataNode, the way NamenodeWebHdfsMethods.redirectURI writes it."""
        cluster, index = self.server.cluster, self.server.index
        assert index is not None
        query = [("op", op), ("user.name", call.caller.user)]
        query += [("namenoderpcaddress", cluster._rpc(index)), *sorted(extra.items())]
        location = (
            f"http://127.0.0.1:{cluster.datanode_port}{PREFIX}"
            f"{urllib.parse.quote(call.path, safe='/')}?{urllib.parse.urlencode(query)}"
        )
        if call.params.boolean("noredirect", False):
            return _ok_json({"Location": location})
        return _Answer(307, b"", "application/octet-stream", [("Location", location)])

    @staticmethod
    def _given(params: _Params, *names: str) -> dict[str, str]:
        """The optional parameters passed on to the DataNode, as Hadoop writes them."""
        given = {}
        for name in names:
            if name == "permission":
                value = params.permission()
                if value is not None:
                    given[name] = format(value, "o")
            elif name in ("overwrite", "createparent"):
                given[name] = str(params.boolean(name, name == "createparent")).lower()
            else:
                number = params.number(name, bits=32 if name == "buffersize" else 64)
                if number is not None:
                    given[name] = str(number)
        return given

    # -- GET --

    def _open(self, call: _Call) -> _Answer:
        offset = call.params.number("offset", minimum=0) or 0
        length = call.ns.redirect_length(call.caller, call.path)
        if offset >= length > 0:
            message = f"Offset={offset} out of the range [0, {length}); OPEN, path={call.path}"
            raise RemoteError("IOException", message)
        extra = {"offset": str(offset), **self._given(call.params, "length", "buffersize")}
        return self._redirect("OPEN", call, extra)

    def _getfilechecksum(self, call: _Call) -> _Answer:
        call.ns.redirect_length(call.caller, call.path)
        return self._redirect("GETFILECHECKSUM", call, {})

    def _getfilestatus(self, call: _Call) -> _Answer:
        return _ok_json({"FileStatus": call.ns.file_status(call.caller, call.path)})

    def _liststatus(self, call: _Call) -> _Answer:
        entries, _ = call.ns.listing(call.caller, call.path, None, None)
        return _ok_json({"FileStatuses": {"FileStatus": entries}})

    def _liststatus_batch(self, call: _Call) -> _Answer:
        after, limit = call.params.text("startafter"), call.ns.list_limit
        entries, remaining = call.ns.listing(call.caller, call.path, after, limit)
        listing = {"partialListing": {"FileStatuses": {"FileStatus": entries}}}
        return _ok_json({"DirectoryListing": {**listing, "remainingEntries": remaining}})

    def _getcontentsummary(self, call: _Call) -> _Answer:
        return _ok_json({"ContentSummary": call.ns.content_summary(call.caller, call.path)})

    def _gethomedirectory(self, call: _Call) -> _Answer:
        _split(call.path)
        return _ok_json({"Path": f"/user/{call.caller.user}"})

    def _gettrashroot(self, call: _Call) -> _Answer:
        _split(call.path)
        return _ok_json({"Path": f"/user/{call.caller.user}/.Trash"})

    def _getaclstatus(self, call: _Call) -> _Answer:
        return _ok_json({"AclStatus": call.ns.acl_status(call.caller, call.path)})

    def _checkaccess(self, call: _Call) -> _Answer:
        action = call.params.text("fsaction")
        if action is None:
            raise _required("fsaction", "CHECKACCESS")
        if not re.fullmatch("[r-][w-][x-]", action):
            # Hadoop's FsAction.getFsAction gives null for these (and the NameNode fails).
            raise call.params.bad("fsaction", f'"{action}" is not an FsAction like "r-x"')
        bits = [READ, WRITE, EXECUTE]
        wanted = sum(bit for symbol, bit in zip(action, bits, strict=True) if symbol != "-")
        call.ns.check_access(call.caller, call.path, wanted)
        return _Answer(200)

    # -- PUT --

    def _create(self, call: _Call) -> _Answer:
        _split(call.path)
        names = ("blocksize", "buffersize", "createparent", "overwrite", "permission")
        return self._redirect("CREATE", call, self._given(call.params, *names, "replication"))

    def _mkdirs(self, call: _Call) -> _Answer:
        permission = call.params.permission()
        mode = 0o755 if permission is None else permission
        return _ok_json({"boolean": call.ns.mkdirs(call.caller, call.path, mode)})

    def _rename(self, call: _Call) -> _Answer:
        destination = call.params.text("destination")
        if destination is None:
            raise _required("destination", "RENAME")
        options = call.params.rename_options()
        if options is None:
            return _ok_json({"boolean": call.ns.rename(call.caller, call.path, destination)})
        call.ns.rename2(call.caller, call.path, destination, "OVERWRITE" in options)
        return _ok_empty()

    def _setowner(self, call: _Call) -> _Answer:
        owner, group = call.params.text("owner"), call.params.text("group")
        if owner is None and group is None:
            raise RemoteError("IllegalArgumentException", "Both owner and group are empty.")
        call.ns.set_owner(call.caller, call.path, owner, group)
        return _ok_empty()

    def _setpermission(self, call: _Call) -> _Answer:
        permission = call.params.permission()
        # Without the parameter, Hadoop sets the directory default, 755.
        mode = 0o755 if permission is None else permission
        call.ns.set_permission(call.caller, call.path, mode)
        return _ok_empty()

    def _settimes(self, call: _Call) -> _Answer:
        mtime = call.params.number("modificationtime", minimum=-1)
        atime = call.params.number("accesstime", minimum=-1)
        mtime, atime = -1 if mtime is None else mtime, -1 if atime is None else atime
        call.ns.set_times(call.caller, call.path, mtime, atime)
        return _ok_empty()

    def _setreplication(self, call: _Call) -> _Answer:
        replication = call.params.number("replication", bits=16, minimum=1)
        replication = replication or DEFAULT_REPLICATION
        return _ok_json({"boolean": call.ns.set_replication(call.caller, call.path, replication)})

    # -- POST, DELETE --

    def _append(self, call: _Call) -> _Answer:
        call.ns.redirect_length(call.caller, call.path)
        return self._redirect("APPEND", call, self._given(call.params, "buffersize"))

    def _delete(self, call: _Call) -> _Answer:
        recursive = call.params.boolean("recursive", False)
        return _ok_json({"boolean": call.ns.delete(call.caller, call.path, recursive)})


def _required(name: str, op: str) -> RemoteError:
    message = f"Required param {name} for op: {op} is null or empty"
    return RemoteError("IllegalArgumentException", message)


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class _DataNodeHandler(_Handler):
    """The DataNode's WebHDFS (Netty's WebHdfsHandler): CREATE, APPEND, OPEN and
    GETFILECHECKSUM only, each answered with `Connection: close`."""

    def _serve(self, method: str) -> None:
        cluster = self.server.cluster
        self.close_connection = True
        try:
            path, query, raw_path = self._target()
            framing = self._framing()
            params = _Params(query, namenode=False)
        except RemoteError as error:
            cluster._log(None, method, "", self.path)
            self._fail(error, close=True)
            return
        op_value = params.values.get("op")
        fs_path = path[len(PREFIX) :] or "/" if _under_prefix(path) else raw_path
        cluster._log(None, method, (op_value or "").upper(), fs_path)
        self._pending = framing[0] != "none"
        try:
            if not _under_prefix(path):
                raise RemoteError("IllegalArgumentException", f"{raw_path} is not a WebHDFS path")
            user = params.user(DEFAULT_WEB_USER)
            assert user is not None
            if params.text("doas") is not None:
                message = f"User: {user} is not allowed to impersonate {params.text('doas')}"
                raise RemoteError("AuthorizationException", message)
            op = (op_value or "").upper()
            if (method, op) in (("PUT", "CREATE"), ("POST", "APPEND")):
                # The DataNode answers `100 Continue` first, asked for or not.
                if self.request_version == "HTTP/1.1":
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self.wfile.flush()
                self._upload(op, fs_path, params, user, framing)
            elif (method, op) == ("GET", "OPEN"):
                self._open(fs_path, params, user)
            elif (method, op) == ("GET", "GETFILECHECKSUM"):
                caller = self._caller(params, user)
                self._answer(
                    _ok_json({"FileChecksum": cluster._namespace.checksum(caller, fs_path)}),
                    close=True,
                )
            else:
                raise RemoteError("IllegalArgumentException", f"Invalid operation {op_value}")
        except RemoteError as error:
            if self._pending:
                self._drain(framing)  # so that the client reads the answer, not a reset
            self._fail(error, close=True)
        except (ConnectionError, BrokenPipeError):
            pass  # the client went away
        except Exception as error:
            self._fail(
                RemoteError("RuntimeException", f"{type(error).__name__}: {error}"), close=True
            )

    def _caller(self, params: _Params, user: str) -> _Caller:
        """The DataNode reaches the namespace through the NameNode its request names."""
        cluster = self.server.cluster
        address = params.text("namenoderpcaddress")
        if address is None:
            message = (
                "Invalid parameter namenoderpcaddress: null (the DataNode cannot reach a "
                "NameNode: java.net.UnknownHostException: null)"
            )
            raise RemoteError("IllegalArgumentException", message)
        if address not in [cluster._rpc(i) for i in range(len(cluster.namenode_ports))]:
            message = f"Call to {address} failed on connection exception: Connection refused"
            raise RemoteError("ConnectException", message)
        # An HA client fails over: any running active NameNode of the cluster will do.
        if not cluster._active_namenodes():
            message = (
                "Operation category WRITE is not supported in state standby. "
                "Visit https://s.apache.org/sbnn-error"
            )
            raise RemoteError("StandbyException", message)
        return cluster._namespace.caller(user)

    def _upload(
        self, op: str, path: str, params: _Params, user: str, framing: tuple[str, int]
    ) -> None:
        namespace = self.server.cluster._namespace
        caller = self._caller(params, user)
        params.number("buffersize", bits=32, minimum=1)
        if op == "CREATE":
            replication = params.number("replication", bits=16, minimum=1)
            block_size = params.number("blocksize", minimum=1)
            permission = params.permission()
            writer = namespace.start_create(
                caller,
                path,
                overwrite=params.boolean("overwrite", False),
                permission=0o644 if permission is None else permission,
                replication=replication or DEFAULT_REPLICATION,
                block_size=block_size or DEFAULT_BLOCK_SIZE,
                create_parent=params.boolean("createparent", True),
            )
        else:
            writer = namespace.start_append(caller, path)
        try:
            # Streamed to the blob as it arrives. A client that goes away mid-body leaves the
            # file with what arrived, complete: the DataNode closes its output stream when the
            # channel goes inactive (HdfsWriter.channelInactive), so a real cluster does too.
            for piece in self._body(framing):
                namespace.allocate(writer, writer.written + len(piece))
                writer.stream.write(piece)
                writer.written += len(piece)
        except (ConnectionError, OSError):
            with contextlib.suppress(RemoteError):  # nobody is left to tell
                namespace.finish(writer)
            raise ConnectionError("the client went away mid-upload") from None
        except RemoteError:
            namespace.finish(writer)
            raise
        namespace.finish(writer)
        if op == "CREATE":
            nn = params.text("namenoderpcaddress")
            location = f"hdfs://{nn}{urllib.parse.quote(path, safe='/')}"
            self._answer(_Answer(201, b"", None, [("Location", location)]), close=True)
        else:
            self._answer(_Answer(200), close=True)

    def _open(self, path: str, params: _Params, user: str) -> None:
        caller = self._caller(params, user)
        offset = params.number("offset", minimum=0) or 0
        length = params.number("length", minimum=0)
        params.number("buffersize", bits=32, minimum=1)
        stream, count = self.server.cluster._namespace.open_read(caller, path, offset, length)
        with stream:
            self.send_response(200)
            self.send_header("Access-Control-Allow-Methods", "GET")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(count))
            self.send_header("Connection", "close")
            self.end_headers()
            while count > 0:
                piece = stream.read(min(count, _PIECE))
                if not piece:
                    break  # the file shrank under us (overwritten); the client sees a short body
                self.wfile.write(piece)
                count -= len(piece)


# ---- The cluster -----------------------------------------------------------------------


class HdfsCluster:
    """Stand-in for a real HDFS cluster (see the module's docstring): `namenodes` WebHDFS
    NameNodes sharing one namespace (HA: one may be set standby or stopped) and one DataNode,
    each on a free port of 127.0.0.1.

    `root` holds the files' bytes, one blob file each. `superuser` (the NameNode's user) and the
    members of `supergroup` pass every permission check. `groups` maps a user to their groups;
    a user not in it is in a group of its own name only. `list_limit` is dfs.ls.limit, the
    entries per LISTSTATUS_BATCH page. `requests` logs (NameNode index or None for the
    DataNode, method, op, path) of every request received."""

    def __init__(
        self,
        root: Path,
        *,
        namenodes: int = 1,
        superuser: str = "hdfs",
        supergroup: str = "supergroup",
        groups: dict[str, tuple[str, ...]] | None = None,
        list_limit: int = 1000,
    ) -> None:
        if namenodes < 1 or list_limit < 1:
            raise ValueError("a cluster needs a NameNode, and pages of one entry at least")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._namespace = _Namespace(self.root, superuser, supergroup, groups or {}, list_limit)
        self._count = namenodes
        self._standby: set[int] = set()
        self._stopped: set[int] = set()
        self._namenodes: list[_Server] = []
        self._datanode: _Server | None = None
        self._lock = threading.Lock()
        self.namenode_ports: list[int] = []
        self.datanode_port = 0
        self.requests: list[tuple[int | None, str, str, str]] = []

    def start(self) -> HdfsCluster:
        self._namenodes = [_Server(self, i, _NameNodeHandler) for i in range(self._count)]
        self._datanode = _Server(self, None, _DataNodeHandler)
        self.namenode_ports = [server.port for server in self._namenodes]
        self.datanode_port = self._datanode.port
        for server in [*self._namenodes, self._datanode]:
            server.thread.start()
        return self

    def stop(self) -> None:
        for index in range(len(self._namenodes)):
            self.stop_namenode(index)
        if self._datanode is not None:
            self._datanode.stop()
            self._datanode = None

    def __enter__(self) -> HdfsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Every NameNode's WebHDFS URL, ';'-separated, as HdfsCLI takes them."""
        return ";".join(f"http://127.0.0.1:{port}" for port in self.namenode_ports)

    def set_standby(self, index: int, standby: bool) -> None:
        """NameNode `index` answers everything with StandbyException (or is active again)."""
        with self._lock:
            (self._standby.add if standby else self._standby.discard)(index)

    def stop_namenode(self, index: int) -> None:
        """NameNode `index` stops listening and drops its connections: unreachable."""
        with self._lock:
            if index in self._stopped:
                return
            self._stopped.add(index)
        self._namenodes[index].stop()

    def status(self, path: str) -> dict[str, Any]:
        """The FileStatus of an absolute path, as GETFILESTATUS gives it (FileNotFoundError)."""
        return self._namespace.raw_status(path)

    def mkdir(self, path: str, owner: str, group: str, permission: int = 0o755) -> None:
        """Make a directory as the superuser would, then hand it to owner:group. Missing
        parents are the superuser's, 755."""
        self._namespace.seed_directory(path, owner, group, permission)

    def put(
        self,
        path: str,
        data: bytes,
        owner: str,
        group: str,
        permission: int = 0o644,
        mtime_ms: int | None = None,
    ) -> None:
        """Write a complete file as the superuser would; `mtime_ms` sets its times."""
        self._namespace.seed_file(path, data, owner, group, permission, mtime_ms)

    def read(self, path: str) -> bytes:
        return self._namespace.raw_read(path)

    def set_space_quota(self, path: str, quota: int) -> None:
        """A space quota on a directory (`hdfs dfsadmin -setSpaceQuota`): its files' replicas
        may take `quota` bytes, each block counted whole while it is written."""
        self._namespace.set_space_quota(path, quota)

    # -- for the handlers --

    def _log(self, index: int | None, method: str, op: str, path: str) -> None:
        with self._lock:
            self.requests.append((index, method, op, path))

    def _standby_set(self) -> set[int]:
        with self._lock:
            return set(self._standby)

    def _active_namenodes(self) -> list[int]:
        with self._lock:
            down = self._standby | self._stopped
        return [index for index in range(self._count) if index not in down]

    def _rpc(self, index: int) -> str:
        # There is no RPC port: the NameNode's HTTP address stands for it.
        return f"127.0.0.1:{self.namenode_ports[index]}"
