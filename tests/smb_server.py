"""A real samba smbd on 127.0.0.1 for the SMB tests (recipe: /work/shared/test-servers.md §1).

smbd runs as root from a private smb.conf in a short temporary folder (its unix sockets must fit
in 108 bytes), in its own session (it signals its whole process group when it exits). NT ACLs
are kept exactly (acl_xattr) and DOS attributes too (store dos attributes). The SMB user maps
onto root through the username map, so no system account is added; a second one, the reader,
maps onto `nobody`, whom the files' modes bind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import smbclient
from helpers import free_port, wait_for_port
from smbprotocol.file_info import InfoType
from smbprotocol.open import SMB2QueryInfoRequest, SMB2QueryInfoResponse, SMB2SetInfoRequest
from smbprotocol.security_descriptor import (
    AccessAllowedAce,
    AclPacket,
    SDControl,
    SIDPacket,
    SMB2CreateSDBuffer,
    SystemAuditAce,
)

_GLOBAL = """\
[global]
  server role = standalone server
  smb ports = {port}
  interfaces = {address}
  bind interfaces only = yes
  disable netbios = yes
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  private dir = {d}/private
  pid directory = {d}/run
  ncalrpc dir = {d}/ncalrpc
  binddns dir = {d}/binddns
  log file = {d}/log/log.%m
  passdb backend = tdbsam:{d}/private/passdb.tdb
  username map = {d}/usermap
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  map to guest = never
"""
_SHARE = """\
[{name}]
  path = {path}
  read only = no
  vfs objects = acl_xattr
  acl_xattr:ignore system acls = yes
  store dos attributes = yes
"""
USER, PASSWORD = "testuser", "Ferry-Test-1"
# A second user, mapped onto `nobody`: one the files' modes and ACLs bind.
READER, READER_PASSWORD = "reader", "Ferry-Reader-1"
_SUBDIRS = ("lock", "state", "cache", "private", "run", "ncalrpc", "binddns", "log")


@dataclass
class SmbServer:
    """A running smbd: `shares` maps each share name to the folder on disk behind it."""

    port: int
    directory: str
    process: subprocess.Popen[bytes]
    shares: dict[str, str] = field(default_factory=dict)
    user: str = USER
    password: str = PASSWORD
    reader: str = READER
    reader_password: str = READER_PASSWORD
    host: str = "127.0.0.1"
    share: str = "share"

    @property
    def share_dir(self) -> str:
        return self.shares[self.share]

    def subdirectory(self, share: str = "", inside: str = "") -> str:
        """DataSync's SMB Subdirectory for a folder of a share."""
        return "/" + "/".join(p for p in (share or self.share, inside.strip("/")) if p)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_smb_server(
    shares: tuple[str, ...] = ("share", "other"),
    address: str = "127.0.0.1",
    wrapper: tuple[str, ...] = (),
    port: int | None = None,
    directory: str | None = None,
    env: dict[str, str] | None = None,
) -> SmbServer:
    """Start smbd with one empty folder per share name; the first is `share`. `address`: where it
    listens, on `port` (default: a free one); `wrapper`: what runs it (on another host:
    `ip netns exec HOST`); `directory` (an empty one, default: a new one in /tmp) and `env`:
    what it is given."""
    directory = directory or tempfile.mkdtemp(prefix="smb-", dir="/tmp")
    for sub in _SUBDIRS:
        os.mkdir(os.path.join(directory, sub))
    port = port or free_port()
    paths = {name: os.path.join(directory, "shares", name) for name in shares}
    for path in paths.values():
        os.makedirs(path)
    conf = os.path.join(directory, "smb.conf")
    with open(conf, "w") as out:
        out.write(_GLOBAL.format(port=port, d=directory, address=address))
        for name, path in paths.items():
            out.write(_SHARE.format(name=name, path=path))
    with open(os.path.join(directory, "usermap"), "w") as out:
        out.write(f"root = {USER}\nnobody = {READER}\n")
    for account, password in (("root", PASSWORD), ("nobody", READER_PASSWORD)):
        subprocess.run(
            ["smbpasswd", "-c", conf, "-s", "-a", account],
            input=f"{password}\n{password}\n".encode(),
            check=True,
            capture_output=True,
        )
    # The reader reaches the shares (only them: the rest of the folder stays closed to it).
    os.chmod(directory, 0o711)
    os.chmod(os.path.join(directory, "shares"), 0o755)
    # "Manage auditing and security log", which copying SACLs (OWNER_DACL_SACL) needs.
    subprocess.run(
        ["net", "-s", conf, "sam", "rights", "grant", "root", "SeSecurityPrivilege"],
        check=True,
        capture_output=True,
    )
    log = open(os.path.join(directory, "log", "smbd.out"), "wb")  # noqa: SIM115 - kept by smbd
    process = subprocess.Popen(
        [*wrapper, "smbd", "--foreground", "--no-process-group", "--debug-stdout", "-s", conf],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # smbd signals its process group on exit
    )
    log.close()
    server = SmbServer(port, directory, process, paths, host=address, share=shares[0])
    try:
        wait_for_port(port, process, "smbd", timeout=15, host=address)
    except RuntimeError:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def smb_server_running(shares: tuple[str, ...] = ("share", "other")) -> Iterator[SmbServer]:
    server = start_smb_server(shares)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smb_server() -> Iterator[SmbServer]:
    """One smbd for the session, with the shares "share" and "other"."""
    with smb_server_running() as server:
        yield server


class RawClient:
    """A second SMB client (smbclient, its own connection): another user of the share."""

    def __init__(self, server: SmbServer, share: str = "") -> None:
        self.server = server
        self.share = share or server.share
        self.cache: dict = {}
        smbclient.register_session(
            server.host,
            username=server.user,
            password=server.password,
            port=server.port,
            connection_cache=self.cache,
        )

    def unc(self, path: str) -> str:
        return rf"\\{self.server.host}\{self.share}\{path.replace('/', chr(92))}"

    def open(self, path: str, mode: str = "rb", **kwargs):
        return smbclient.open_file(
            self.unc(path), mode, port=self.server.port, connection_cache=self.cache, **kwargs
        )

    def _security(self, path: str, sacl: bool = False):
        # READ_CONTROL | WRITE_DAC | WRITE_OWNER | FILE_READ_ATTRIBUTES, of a file or a folder,
        # and ACCESS_SYSTEM_SECURITY for the SACL
        access = 0x20000 | 0x40000 | 0x80000 | 0x80 | (0x1000000 if sacl else 0)
        kind = (
            "dir"
            if smbclient.path.isdir(
                self.unc(path), port=self.server.port, connection_cache=self.cache
            )
            else "file"
        )
        return self.open(
            path, desired_access=access, share_access="rwd", buffering=0, file_type=kind
        )

    def get_sd(self, path: str, sacl: bool = False) -> SMB2CreateSDBuffer:
        """The owner, group and DACL of `path`, and its SACL with `sacl`."""
        with self._security(path, sacl) as handle:
            fd = handle.fd
            query = SMB2QueryInfoRequest()
            query["info_type"] = InfoType.SMB2_0_INFO_SECURITY
            query["output_buffer_length"] = 65535
            query["additional_information"] = 1 | 2 | 4 | (8 if sacl else 0)
            query["file_id"] = fd.file_id
            sid, tid = fd.tree_connect.session.session_id, fd.tree_connect.tree_connect_id
            response = fd.connection.receive(fd.connection.send(query, sid=sid, tid=tid))
            info = SMB2QueryInfoResponse()
            info.unpack(response["data"].get_value())
            descriptor = SMB2CreateSDBuffer()
            descriptor.unpack(info["buffer"].get_value())
            return descriptor

    def set_sd(self, path: str, descriptor: SMB2CreateSDBuffer, sacl: bool = False) -> None:
        """Set the DACL of `descriptor` on `path`, or its SACL with `sacl`."""
        with self._security(path, sacl) as handle:
            fd = handle.fd
            update = SMB2SetInfoRequest()
            update["info_type"] = InfoType.SMB2_0_INFO_SECURITY
            update["additional_information"] = 8 if sacl else 4
            update["file_id"] = fd.file_id
            update["buffer"] = descriptor.pack()
            sid, tid = fd.tree_connect.session.session_id, fd.tree_connect.tree_connect_id
            fd.connection.receive(fd.connection.send(update, sid=sid, tid=tid))

    def grant(self, path: str, sid: str, mask: int = 0x1200A9) -> SMB2CreateSDBuffer:
        """Add an access-allowed ACE for `sid` (read and execute by default) to the DACL of
        `path`; the descriptor the server then holds."""
        descriptor = self.get_sd(path)
        ace = AccessAllowedAce()
        ace["mask"] = mask
        packed_sid = SIDPacket()
        packed_sid.from_string(sid)
        ace["sid"] = packed_sid
        dacl = AclPacket()
        dacl["aces"] = [*descriptor.get_dacl()["aces"].get_value(), ace]
        updated = SMB2CreateSDBuffer()
        updated["control"].set_flag(SDControl.SELF_RELATIVE)
        updated.set_dacl(dacl)
        self.set_sd(path, updated)
        return self.get_sd(path)

    def audit(self, path: str, sid: str, mask: int = 0x10000) -> SMB2CreateSDBuffer:
        """Give `path` a SACL auditing `sid`'s successful uses of `mask` (DELETE by default);
        the descriptor the server then holds, SACL included."""
        ace = SystemAuditAce()
        ace["ace_flags"] = 0x40  # SUCCESSFUL_ACCESS_ACE_FLAG
        ace["mask"] = mask
        packed_sid = SIDPacket()
        packed_sid.from_string(sid)
        ace["sid"] = packed_sid
        sacl = AclPacket()
        sacl["aces"] = [ace]
        updated = SMB2CreateSDBuffer()
        updated["control"].set_flag(SDControl.SELF_RELATIVE)
        updated.set_sacl(sacl)
        self.set_sd(path, updated, sacl=True)
        return self.get_sd(path, sacl=True)

    def close(self) -> None:
        smbclient.reset_connection_cache(connection_cache=self.cache)


def acl_sids(descriptor: SMB2CreateSDBuffer) -> list[str]:
    return [str(ace["sid"]) for ace in descriptor.get_dacl()["aces"].get_value()]


def sacl_sids(descriptor: SMB2CreateSDBuffer) -> list[str]:
    """The SIDs the SACL audits; none where the SACL is absent or NULL (SACL_PRESENT with no
    offset, as samba answers for a file without one)."""
    if not descriptor["offset_sacl"].get_value():
        return []
    sacl = descriptor.get_sacl()
    return [] if sacl is None else [str(ace["sid"]) for ace in sacl["aces"].get_value()]
