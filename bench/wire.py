"""A TCP proxy that counts what a file protocol client sends: SMB2 requests and NFS calls.

Both protocols frame their messages on TCP with a 4-byte length (SMB's direct TCP transport,
ONC RPC's record marking), so one proxy counts the round trips of either, whatever the load:
a figure per file that timings on a busy machine cannot give. For SMB it counts each command
of a compound; for NFSv4 each operation of a COMPOUND, named where its arguments can be
stepped over (SEQUENCE, PUTFH, LOOKUP, OPEN, WRITE, SETATTR...), else counted as "...".

    with WireCounter(server_port, "nfs") as counter:   # clients connect to counter.port
        ...
    counter.counts()  # {"rpc": 812, "v4:OPEN": 100, ...}
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

_SMB_COMMANDS = (
    "NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT", "CREATE", "CLOSE",
    "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO", "QUERY_DIRECTORY",
    "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK",
)  # fmt: skip


class _Xdr:
    __slots__ = ("at", "data")

    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data, self.at = data, at

    def u32(self) -> int:
        (value,) = struct.unpack_from(">I", self.data, self.at)
        self.at += 4
        return value

    def skip(self, size: int) -> None:
        self.at += size

    def opaque(self) -> None:
        size = self.u32()
        self.at += (size + 3) & ~3

    def bitmap(self) -> None:
        words = self.u32()
        self.skip(4 * words)

    def fattr(self) -> None:
        self.bitmap()
        self.opaque()


def _open_args(x: _Xdr) -> None:
    x.skip(12)  # seqid, share_access, share_deny
    x.skip(8)  # clientid
    x.opaque()  # owner
    if x.u32() == 1:  # OPEN4_CREATE
        mode = x.u32()
        if mode in (0, 1):  # UNCHECKED4, GUARDED4
            x.fattr()
        elif mode == 2:  # EXCLUSIVE4
            x.skip(8)
        else:  # EXCLUSIVE4_1
            x.skip(8)
            x.fattr()
    claim = x.u32()
    if claim == 2:  # CLAIM_DELEGATE_CUR: a stateid, then a name
        x.skip(16)
    if claim in (0, 2, 3):  # CLAIM_NULL, CLAIM_DELEGATE_CUR, CLAIM_DELEGATE_PREV: a name
        x.opaque()
    elif claim in (1, 5):  # CLAIM_PREVIOUS: a delegation type; CLAIM_DELEG_CUR_FH: a stateid
        x.skip(4 if claim == 1 else 16)


def _create_args(x: _Xdr) -> None:
    kind = x.u32()
    if kind == 5:  # NF4LNK
        x.opaque()
    elif kind in (3, 4):  # NF4BLK, NF4CHR
        x.skip(8)
    x.opaque()
    x.fattr()


# NFSv4 operations whose arguments are stepped over to reach the next one, by number.
_V4_OPS: dict[int, tuple[str, Callable[[_Xdr], None]]] = {
    3: ("ACCESS", lambda x: x.skip(4)),
    4: ("CLOSE", lambda x: x.skip(20)),
    5: ("COMMIT", lambda x: x.skip(12)),
    6: ("CREATE", _create_args),
    9: ("GETATTR", _Xdr.bitmap),
    10: ("GETFH", lambda x: None),
    11: ("LINK", _Xdr.opaque),
    15: ("LOOKUP", _Xdr.opaque),
    18: ("OPEN", _open_args),
    22: ("PUTFH", _Xdr.opaque),
    24: ("PUTROOTFH", lambda x: None),
    25: ("READ", lambda x: x.skip(28)),
    26: ("READDIR", lambda x: (x.skip(24), x.bitmap())),
    27: ("READLINK", lambda x: None),
    28: ("REMOVE", _Xdr.opaque),
    29: ("RENAME", lambda x: (x.opaque(), x.opaque())),
    31: ("RESTOREFH", lambda x: None),
    32: ("SAVEFH", lambda x: None),
    34: ("SETATTR", lambda x: (x.skip(16), x.fattr())),
    38: ("WRITE", lambda x: (x.skip(28), x.opaque())),
    50: ("LAYOUTGET", lambda x: x.skip(56)),
    53: ("SEQUENCE", lambda x: x.skip(32)),
}
# Operations of a connection's setup, named but not stepped over (the count stops there).
_V4_SETUP = {
    41: "BIND_CONN_TO_SESSION", 42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION",
    57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE",
}  # fmt: skip
_V3_PROCS = (
    "NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE",
    "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS",
    "FSSTAT", "FSINFO", "PATHCONF", "COMMIT",
)  # fmt: skip


def smb_commands(message: bytes) -> list[str]:
    """The commands of one SMB2 message (a compound holds several)."""
    names, at = [], 0
    while at + 64 <= len(message) and message[at : at + 4] == b"\xfeSMB":
        (command,) = struct.unpack_from("<H", message, at + 12)
        (following,) = struct.unpack_from("<I", message, at + 20)
        names.append(_SMB_COMMANDS[command] if command < len(_SMB_COMMANDS) else str(command))
        if not following:
            break
        at += following
    return names


def nfs_operations(record: bytes) -> list[str]:
    """What one RPC call asks: an NFSv3 procedure, or the operations of an NFSv4 COMPOUND."""
    x = _Xdr(record)
    x.skip(4)  # xid
    if x.u32() != 0:  # not a CALL
        return []
    x.skip(4)
    program, version, procedure = x.u32(), x.u32(), x.u32()
    x.skip(4)
    x.opaque()  # credential
    x.skip(4)
    x.opaque()  # verifier
    if program != 100003:
        return [f"program {program}"]
    if version == 3:
        return [f"v3:{_V3_PROCS[procedure] if procedure < len(_V3_PROCS) else procedure}"]
    if procedure != 1:
        return ["v4:NULL"]
    x.opaque()  # tag
    x.skip(4)  # minor version
    names = []
    for _ in range(x.u32()):
        number = x.u32()
        known = _V4_OPS.get(number)
        if known is None:
            names.append(f"v4:{_V4_SETUP.get(number, number)}...")
            break
        names.append(f"v4:{known[0]}")
        known[1](x)
    return names


def _shut(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class WireCounter:
    """Listens on a free port of 127.0.0.1 and passes every connection on to `target`,
    counting the client's messages ("smb" or "nfs")."""

    def __init__(self, target: int, protocol: str) -> None:
        self.target = target
        self.protocol = protocol
        self._counts: collections.Counter[str] = collections.Counter()
        self.trace: list[list[str]] | None = None  # each message's commands, when a list
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    def __enter__(self) -> WireCounter:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._listener.close()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 20):
                sink.sendall(data)
        except OSError:
            return
        finally:
            _shut(source, sink)

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        """Pass the client's bytes on, a whole message at a time, counting each."""
        buffer = bytearray()
        record = bytearray()  # an RPC record's fragments so far
        try:
            while data := client.recv(1 << 20):
                server.sendall(data)
                buffer += data
                while len(buffer) >= 4:
                    (head,) = struct.unpack_from(">I", buffer)
                    size = head & 0x7FFFFFFF if self.protocol == "nfs" else head & 0xFFFFFF
                    if len(buffer) < 4 + size:
                        break
                    message = bytes(buffer[4 : 4 + size])
                    del buffer[: 4 + size]
                    if self.protocol == "smb":
                        self._count("message", smb_commands(message))
                        continue
                    record += message
                    if head & 0x80000000:  # the last fragment
                        self._count("rpc", nfs_operations(bytes(record)))
                        record.clear()
        except OSError:
            return
        finally:
            _shut(client, server)

    def _count(self, unit: str, names: list[str]) -> None:
        with self._lock:
            self._counts[unit] += 1
            self._counts.update(names)
            if self.trace is not None:
                self.trace.append(names)
