"""Real NFS servers for the tests, on free ports of 127.0.0.1, without a kernel mount.

nfs-ganesha serves NFSv4.x (no rpcbind needed) with the VFS backend, so that modes, owners,
times and links are those of a real file system: the tests look at `export_dir` with os.stat.
`rclone serve nfs` serves NFSv3 (its MOUNT service on the same port); it is not POSIX-faithful
(no chmod/chown, no symbolic links, writes reach the disk after a write-back delay).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import free_port, wait_for_port
from sites import Host
from system_packages import ganesha_plugins

GANESHA = "ganesha.nfsd"
RCLONE = os.path.join(sysconfig.get_path("scripts"), "rclone")
PSEUDO_PATH = "/export"

_GANESHA_CONFIG = """\
NFS_CORE_PARAM {{ Protocols = 4; NFS_Port = {port}; Bind_addr = 127.0.0.1; Enable_NLM = false;
  Enable_RQUOTA = false; Enable_UDP = false; Plugins_Dir = {plugins}; }}
NFSV4 {{ RecoveryBackend = fs; RecoveryRoot = {directory}/recov; Graceless = true;
  Lease_Lifetime = 15; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{ Export_Id = 1; Path = {directory}/export; Pseudo = {pseudo}; Access_Type = RW;
  Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP; FSAL {{ Name = VFS; }} }}
EXPORT {{ Export_Id = 2; Path = {directory}/fsx; Pseudo = /fsx; Access_Type = RW;
  Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP; FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = EVENT; }}
"""


@dataclass
class NfsServer:
    """A running server: `export_dir` is the directory on disk behind `pseudo_path`."""

    port: int
    export_dir: str
    pseudo_path: str
    version: str
    directory: str
    process: subprocess.Popen[bytes]

    @property
    def fsx_dir(self) -> str:
        """The directory behind ganesha's second export, /fsx (FSx for OpenZFS's root)."""
        return os.path.join(self.directory, "fsx")

    @property
    def full_dir(self) -> str:
        """ganesha_every_version's second export: a tmpfs of FULL_SIZE bytes, /full."""
        return os.path.join(self.directory, "full")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def ganesha() -> Iterator[NfsServer]:
    """nfs-ganesha serving a fresh directory as NFSv4.0/4.1 at the pseudo path /export (it runs
    as root: the VFS backend opens files by handle)."""
    directory = tempfile.mkdtemp(prefix="ferry-ganesha-", dir="/tmp")
    export_dir = os.path.join(directory, "export")
    os.makedirs(export_dir)
    os.makedirs(os.path.join(directory, "fsx"))  # as FSx for OpenZFS exports: /fsx
    os.makedirs(os.path.join(directory, "recov"))
    port = free_port()
    config = os.path.join(directory, "ganesha.conf")
    with open(config, "w") as file:
        file.write(
            _GANESHA_CONFIG.format(
                port=port, directory=directory, pseudo=PSEUDO_PATH, plugins=ganesha_plugins()
            )
        )
    log = os.path.join(directory, "ganesha.log")
    pid = os.path.join(directory, "ganesha.pid")
    process = subprocess.Popen(
        [GANESHA, "-F", "-f", config, "-L", log, "-p", pid],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C of the tests does not reach it before stop()
    )
    server = NfsServer(port, export_dir, PSEUDO_PATH, "NFS4_1", directory, process)
    try:
        wait_for_port(port, process, f"nfs-ganesha (log: {log})", timeout=10)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def rclone_nfs() -> Iterator[NfsServer]:
    """`rclone serve nfs` serving a fresh directory as NFSv3; its export path is "/"."""
    directory = tempfile.mkdtemp(prefix="ferry-rclone-nfs-", dir="/tmp")
    export_dir = os.path.join(directory, "export")
    os.makedirs(export_dir)
    port = free_port()
    log = os.path.join(directory, "rclone.log")
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                RCLONE, "serve", "nfs", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
                "--vfs-cache-mode", "full", "--cache-dir", os.path.join(directory, "cache"),
                export_dir,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = NfsServer(port, export_dir, "/", "NFS3", directory, process)
    try:
        wait_for_port(port, process, f"rclone serve nfs (log: {log})", timeout=10)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nfs_server() -> Iterator[NfsServer]:
    """One ganesha for the session; each test works in its own subfolder of the export."""
    with ganesha() as server:
        yield server


_ALL_VERSIONS_CONFIG = """\
NFS_CORE_PARAM {{ Protocols = 3,4; NFS_Port = 2049; MNT_Port = 20048; Enable_NLM = false;
  Enable_RQUOTA = false; Enable_UDP = false; Plugins_Dir = {plugins}; }}
NFSV4 {{ RecoveryBackend = fs; RecoveryRoot = {directory}/recov; Graceless = true;
  Lease_Lifetime = 15; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{ Export_Id = 1; Path = {export}; Pseudo = /x; Access_Type = RW;
  Squash = No_Root_Squash; SecType = sys; Protocols = 3,4; Transports = TCP;
  FSAL {{ Name = VFS; }} }}
EXPORT {{ Export_Id = 2; Path = {full}; Pseudo = /full; Access_Type = RW;
  Squash = No_Root_Squash; SecType = sys; Protocols = 3,4; Transports = TCP;
  FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = EVENT; }}
"""
FULL_SIZE = 2 << 20  # the small file system of ganesha_every_version's second export


@contextlib.contextmanager
def ganesha_every_version(host: Host) -> Iterator[NfsServer]:
    """nfs-ganesha serving NFSv3, v4.0 and v4.1 on a host of its own (NFSv3's MOUNT needs
    rpcbind on port 111, which only a host of its own has free), at `host.address`. NFSv3
    mounts the export's path (`pseudo_path` of the server), NFSv4 its pseudo path /x. A second
    export is a tmpfs of FULL_SIZE bytes, `full_dir` (its pseudo path /full), to fill."""
    directory = str(host.directory / "ganesha")
    export_dir = os.path.join(directory, "export")
    full_dir = os.path.join(directory, "full")  # NfsServer.full_dir
    os.makedirs(export_dir)
    os.makedirs(full_dir)
    os.makedirs(os.path.join(directory, "recov"))
    # Mounted before ganesha starts, so that its host, which sees this machine's mounts as
    # they were then, has it too.
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FULL_SIZE}", "tmpfs", full_dir], check=True
    )
    config = os.path.join(directory, "ganesha.conf")
    with open(config, "w") as file:
        file.write(
            _ALL_VERSIONS_CONFIG.format(
                directory=directory, export=export_dir, full=full_dir, plugins=ganesha_plugins()
            )
        )
    host.start(["rpcbind", "-f", "-w"], "rpcbind.log")
    log = os.path.join(directory, "ganesha.log")
    # A pid file of its own: the default one in /var/run is shared with any other ganesha.
    pid = os.path.join(directory, "ganesha.pid")
    process = host.start([GANESHA, "-F", "-f", config, "-L", log, "-p", pid], "ganesha.out")
    server = NfsServer(2049, export_dir, "/x", "AUTOMATIC", directory, process)
    try:
        wait_for_port(2049, process, f"nfs-ganesha (log: {log})", 10, host.address)
        wait_for_port(20048, process, f"nfs-ganesha's MOUNT (log: {log})", 10, host.address)
        yield server
    finally:
        server.stop()
        subprocess.run(["umount", "-l", full_dir], check=False)
