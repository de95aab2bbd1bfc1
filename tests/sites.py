"""Separate hosts on one machine, for the tests of what crosses a network: each host a network
namespace with an address of its own on a bridge the test makes (recipe: test-servers.md §6).
Every process on a host is given a HOME, a TMPDIR and a data directory of its own, and as it is
started, the directories it is given are checked against every other process's: none is, or
lies inside, another's. Cutting a host's link is a network partition; bringing it up heals it.

Needs root (CI runs as root); `sites_or_skip` says why when it cannot be done.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Popen = subprocess.Popen[bytes]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Directories:
    """The directories each process of the test was given, by process ("agent@a")."""

    def __init__(self) -> None:
        self.given: dict[str, set[Path]] = {}

    def give(self, process: str, *paths: Path) -> None:
        """`process` is given `paths` (again, if it is started again); none of them may be, or
        lie inside, a directory another process was given, nor hold one."""
        for other, theirs in self.given.items():
            if other == process:
                continue
            for path in paths:
                for elsewhere in theirs:
                    assert not (path.is_relative_to(elsewhere) or elsewhere.is_relative_to(path)), (
                        f"{process} was given {path}, and {other} {elsewhere}"
                    )
        self.given.setdefault(process, set()).update(paths)


@dataclass
class Host:
    """A host of its own: a network namespace at `address`, a directory for its disk, where
    each process has a folder of its own."""

    name: str  # the namespace
    address: str
    link: str  # its cable: the veth end on the bridge
    directory: Path
    directories: Directories
    processes: list[Popen] = field(default_factory=list)

    def data(self, name: str) -> Path:
        """The data directory of process `name` on this host."""
        return self.directory / name / "data"

    def log(self, name: str) -> Path:
        return self.directory / name / "output.log"

    def env(self, name: str, *directories: Path, **extra: str) -> dict[str, str]:
        """The environment of process `name` on this host: its own HOME, TMPDIR and data
        directory, and nothing that points at another's; `directories`: the others it is
        given."""
        home = self.directory / name / "home"
        temporary = self.directory / name / "tmp"
        for folder in (home, temporary, self.data(name)):
            folder.mkdir(parents=True, exist_ok=True)
        self.directories.give(
            f"{name}@{self.directory.name}", home, temporary, self.data(name), *directories
        )
        shared = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("FERRY_", "TEMPORAL_", "XDG_", "AWS_", "PYTEST_"))
        }
        return {
            **shared,
            "HOME": str(home),
            "TMPDIR": str(temporary),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "FERRY_DATA_DIR": str(self.data(name)),
            **extra,
        }

    def start(
        self,
        command: list[str],
        name: str,
        *directories: Path,
        log: Path | None = None,
        **env: str,
    ) -> Popen:
        """`command` on this host as process `name`, given its own directories and
        `directories`; its output in `log` (default: its folder's output.log)."""
        environment = self.env(name, *directories, **env)
        output = open(log or self.log(name), "ab")  # noqa: SIM115 - kept by the process
        process = subprocess.Popen(
            [*self.wrapper, *command],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        output.close()
        self.processes.append(process)
        return process

    def unsent(self, address: str) -> int:
        """Bytes this host's TCP connections to `address` still hold unacknowledged: what would
        reach it after a partition heals, even from a process that is gone."""
        listed = subprocess.run(
            [*self.wrapper, "ss", "-Htn", "dst", address], capture_output=True, text=True
        ).stdout
        return sum(int(line.split()[2]) for line in listed.splitlines() if line.strip())

    @property
    def wrapper(self) -> list[str]:
        """What runs a command on this host."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """A partition: nothing reaches this host, and it reaches nothing."""
        _ip("link", "set", self.link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.link, "up")


def kill(process: Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


class Sites:
    """A bridge and the hosts on it, on a /24 of 10.0.0.0/8 that no interface here uses."""

    def __init__(self) -> None:
        self.tag = f"{random.randrange(16**4):04x}"
        self.bridge = f"fb{self.tag}"
        self.subnet = self._free_subnet()
        self.directory = Path(tempfile.mkdtemp(prefix=f"ferry-sites-{self.tag}-", dir="/tmp"))
        self.hosts: dict[str, Host] = {}
        self.directories = Directories()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    @property
    def address(self) -> str:
        """This machine's own address on the bridge (where the tests themselves run)."""
        return f"{self.subnet}.1"

    @staticmethod
    def _free_subnet() -> str:
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
        while True:
            subnet = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
            if f" {subnet}." not in used:
                return subnet

    def host(self, name: str) -> Host:
        number = len(self.hosts) + 2
        namespace = f"fs{self.tag}-{name}"
        outside, inside = f"fv{self.tag}{number}", f"fp{self.tag}{number}"
        _ip("netns", "add", namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        address = f"{self.subnet}.{number}"
        for command in (
            ("link", "set", inside, "name", "eth0"),
            ("addr", "add", f"{address}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", namespace, "ip", *command)
        directory = self.directory / name
        directory.mkdir()
        self.hosts[name] = Host(namespace, address, outside, directory, self.directories)
        return self.hosts[name]

    def close(self) -> None:
        for host in self.hosts.values():
            for process in host.processes:
                kill(process, signal.SIGTERM)
            pids = subprocess.run(
                ["ip", "netns", "pids", host.name], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1 if pids else 0)
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def sites_or_skip() -> Iterator[Sites]:
    """Separate hosts, or a skip that says why there can be none here."""
    if os.geteuid() != 0:
        pytest.skip("separate hosts need network namespaces, which only root can make")
    try:
        sites = Sites()
    except subprocess.CalledProcessError as error:
        pytest.skip(f"no network namespaces here: {error.stderr.decode().strip()}")
    try:
        yield sites
    finally:
        sites.close()
