"""What tests share: running a transfer through the operations layer, and looking at trees."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.server
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xxhash
from temporalio.client import WorkflowFailureError

from api import Ferry
from models.arn import execution_id


def logged(staging: Path, arn: str) -> list[dict[str, Any]]:
    """The log lines (LogLevel) of execution `arn`, from a staging store in a folder."""
    from activities.staging import open_staging

    return [json.loads(line) for line in open_staging(str(staging)).log_lines(arn)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    server: str,
    timeout: float,
    host: str = "127.0.0.1",
) -> None:
    """Until `server`, started as `process`, accepts connections on `host`:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{server} did not open port {port} in {timeout} s")


async def until(condition: Callable[[], Any], timeout: float = 60, every: float = 0.1) -> Any:
    """Call `condition` (plain, or returning an awaitable) until it is true; its value."""
    async with asyncio.timeout(timeout):
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(every)


async def create_task(ferry: Ferry, source: Path, destination: Path, **request: Any) -> str:
    source_arn = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
    destination_arn = (await ferry.create_location_local({"Path": str(destination)}))["LocationArn"]
    created = await ferry.create_task(
        {"SourceLocationArn": source_arn, "DestinationLocationArn": destination_arn, **request}
    )
    return created["TaskArn"]


async def start(ferry: Ferry, task_arn: str, **request: Any) -> str:
    started = await ferry.start_task_execution({"TaskArn": task_arn, **request})
    return started["TaskExecutionArn"]


async def wait(ferry: Ferry, arn: str) -> dict[str, Any]:
    handle = ferry.client.get_workflow_handle(execution_id(arn))
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    return await ferry.describe_task_execution({"TaskExecutionArn": arn})


async def run(ferry: Ferry, task_arn: str, **request: Any) -> dict[str, Any]:
    return await wait(ferry, await start(ferry, task_arn, **request))


async def transfer(
    ferry: Ferry, source: Path, destination: Path, **task: Any
) -> tuple[str, dict[str, Any]]:
    """Create a task between two new local locations, run it once; (task ARN, description)."""
    task_arn = await create_task(ferry, source, destination, **task)
    return task_arn, await run(ferry, task_arn)


class CountingProxy(http.server.ThreadingHTTPServer):
    """Passes S3 requests on to port `target` of 127.0.0.1 unchanged (SigV4 signs the Host
    header, which is kept) and counts them with the bytes of their bodies each way: what
    reached the server, to hold Ferry's own count of its staging traffic against."""

    daemon_threads = True

    def __init__(self, target: int) -> None:
        self.requests = self.sent = self.received = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream = http.client.HTTPConnection("127.0.0.1", target)
                upstream.request(self.command, self.path, body, dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                # A HEAD's Content-Length is the object's size, not the (empty) body's.
                kept = ("transfer-encoding", "connection")
                if self.command != "HEAD":
                    kept += ("content-length",)
                    self.send_header("Content-Length", str(len(data)))
                for name, value in answer.getheaders():
                    if name.lower() not in kept:
                        self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()
                with proxy.lock:
                    proxy.requests += 1
                    proxy.sent += len(body)
                    proxy.received += len(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> CountingProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def counts(self) -> tuple[int, int, int]:
        """(requests, bytes sent, bytes received) so far."""
        with self.lock:
            return self.requests, self.sent, self.received


# --- agents ---------------------------------------------------------------------------------


async def activation_key(state_dir: Path) -> str:
    key_file = state_dir / "activation-key"
    await until(key_file.exists, timeout=30)
    return key_file.read_text().strip()


async def activate(
    stack: Any, ferry: Ferry, state_dir: Path, name: str, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """An agent process of `stack` (a conftest.Stack) with its state in `state_dir`, activated
    as agent `name` and ONLINE: (the process, the agent's ARN)."""
    process = stack.start_agent(state_dir, **env)
    key = await activation_key(state_dir)
    agent_arn = (await ferry.create_agent({"ActivationKey": key, "AgentName": name}))["AgentArn"]
    await until(lambda: agent_status(ferry, agent_arn, "ONLINE"), timeout=30)
    return process, agent_arn


async def agent_status(ferry: Ferry, agent_arn: str, wanted: str) -> bool:
    described = await ferry.describe_agent({"AgentArn": agent_arn})
    return described["Status"] == wanted


# --- which worker ran what -----------------------------------------------------------------


def identity(process: subprocess.Popen[bytes]) -> str:
    """The identity Temporal knows a `ferry worker` process by (the SDK's default)."""
    return f"{process.pid}@{socket.gethostname()}"


@dataclass(frozen=True)
class Batch:
    """A TransferBatch activity that has ended, as its execution's history tells it: the worker
    of its last attempt, that attempt's number and the time it started, and the type of the
    failure that ended the attempt before it (None for a first attempt)."""

    step: str
    index: int
    queue: str
    identity: str
    attempt: int
    last_failure: str | None
    started: datetime


async def transfer_batches(ferry: Ferry, arn: str) -> list[Batch]:
    """The execution's TransferBatch activities that have ended, over all its runs. (History
    writes an activity's ActivityTaskStarted only as it closes, for its last attempt.)"""
    scheduled: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    batches: list[Batch] = []
    async for run in ferry.client.list_workflows(f"WorkflowId = '{execution_id(arn)}'"):
        history = await ferry.client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                attributes = event.activity_task_scheduled_event_attributes
                if attributes.activity_type.name == "TransferBatch":
                    ref = json.loads(attributes.input.payloads[0].data)
                    scheduled[run.run_id, event.event_id] = (attributes.task_queue.name, ref)
            elif event.HasField("activity_task_started_event_attributes"):
                started = event.activity_task_started_event_attributes
                if (found := scheduled.get((run.run_id, started.scheduled_event_id))) is None:
                    continue
                queue, ref = found
                failure = None
                if started.HasField("last_failure"):  # a timeout has no type: its message
                    last = started.last_failure
                    failure = last.application_failure_info.type or last.message
                batches.append(
                    Batch(
                        ref["step"],
                        ref["index"],
                        queue,
                        started.identity,
                        started.attempt,
                        failure,
                        # The history writes the last attempt's start as the activity closes,
                        # with the time that attempt started.
                        event.event_time.ToDatetime(UTC),
                    )
                )
    return batches


async def batch_workers(ferry: Ferry, arn: str) -> tuple[set[str], set[str]]:
    """The task queues TransferBatch activities were scheduled on, and the identities of the
    workers that ran them."""
    batches = await transfer_batches(ferry, arn)
    return {batch.queue for batch in batches}, {batch.identity for batch in batches}


def digest(path: Path) -> str:
    """The content's checksum, read without moving the file's atime."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOATIME", 0))
    try:
        hasher = xxhash.xxh3_128()
        while chunk := os.read(fd, 1 << 20):
            hasher.update(chunk)
        return hasher.hexdigest()
    finally:
        os.close(fd)


def snapshot(root: Path, *, atime: bool = False) -> dict[str, tuple[Any, ...]]:
    """Everything a user would compare, by path: type, mode, owner, size, times, content,
    link target, device number, and which paths share an inode."""
    entries: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if folder == str(root) else [*dirs, *files]:
            path = Path(folder) / name
            relative = "/" if name == "." else "/" + str(path.relative_to(root))
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            content = digest(path) if stat.S_ISREG(st.st_mode) else None
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            linked = None
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                linked = inodes.setdefault(st.st_ino, relative)
            entries[relative] = (
                kind,
                stat.S_IMODE(st.st_mode) if not stat.S_ISLNK(st.st_mode) else None,
                st.st_uid,
                st.st_gid,
                st.st_size if not stat.S_ISDIR(st.st_mode) else None,
                st.st_mtime_ns,
                st.st_atime_ns if atime and stat.S_ISREG(st.st_mode) else None,
                content,
                target,
                st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None,
                linked,
            )
    return entries


def differences(source: Path, destination: Path, *, atime: bool = False) -> list[str]:
    a, b = snapshot(source, atime=atime), snapshot(destination, atime=atime)
    problems = [f"{p}: missing at destination" for p in a if p not in b]
    problems += [f"{p}: extra at destination" for p in b if p not in a]
    problems += [f"{p}: {a[p]} != {b[p]}" for p in a if p in b and a[p] != b[p]]
    return problems


def empty_folder(path: Path) -> Path:
    """A destination root made now. Its mtime is set apart from the source's: file times come from
    the kernel's coarse clock, so a folder made within a few milliseconds of the source's last
    write can have the very same mtime, and its metadata would then rightly not be copied."""
    path.mkdir(parents=True)
    os.utime(path, ns=(946_684_800 * 10**9, 946_684_800 * 10**9))  # 2000-01-01
    return path


def write(path: Path, data: bytes | str = b"", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def random_files(folder: Path, count: int, size: int = 256 * 1024) -> list[str]:
    """`count` files of `size` random bytes in `folder`; their names, in order."""
    names = [f"file-{number:03d}.bin" for number in range(count)]
    for name in names:
        write(folder / name, os.urandom(size))
    return names


async def start_limited(
    ferry: Ferry, workdir: Path, files: int, bytes_per_second: int, size: int = 256 * 1024
) -> tuple[Path, Path, list[str], str]:
    """`files` random files in `workdir`/source, and an execution of a new task that copies them
    to an empty `workdir`/destination at `bytes_per_second`, started: (source, destination,
    the files' names, the execution's ARN)."""
    source, destination = workdir / "source", workdir / "destination"
    names = random_files(source, files, size)
    empty_folder(destination)
    options = {"BytesPerSecond": bytes_per_second}
    task = await create_task(ferry, source, destination, Options=options)
    return source, destination, names, await start(ferry, task)


# --- tasks between any two locations -------------------------------------------------------


async def local(ferry: Ferry, path: Path) -> str:
    return (await ferry.create_location_local({"Path": str(path)}))["LocationArn"]


async def task(ferry: Ferry, source: str, destination: str, **options: Any) -> str:
    """A task between two locations, verifying both sides in full unless told otherwise."""
    request: dict[str, Any] = {"SourceLocationArn": source, "DestinationLocationArn": destination}
    request["Options"] = {"VerifyMode": "POINT_IN_TIME_CONSISTENT", **options}
    return (await ferry.create_task(request))["TaskArn"]


async def launch_failure(ferry: Ferry, source: str, workdir: Path) -> dict[str, Any]:
    destination = workdir / "destination"
    destination.mkdir(exist_ok=True)
    result = await run(ferry, await task(ferry, source, await local(ferry, destination)))
    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    assert result["Result"]["PrepareStatus"] == "PENDING"  # it never got past LAUNCHING
    assert list(destination.iterdir()) == []
    return result


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trusts, and its key (a private CA's)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "server.pem", folder / "server.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path
