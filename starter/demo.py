"""`ferry demo`: Ferry's main job on the embedded default, start to finish.

Makes a sample tree, creates two `local` locations and a task (or finds the ones an earlier demo
made), runs an execution showing its phases and counters, prints the final
DescribeTaskExecution and where to see the execution in the Temporal UI. It starts the embedded
stack unless one is already running, and keeps it up afterwards on a terminal so that the UI can
be looked at; off a terminal the stack stops with it, and it says how to start it again to look.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import shlex
import sys
from pathlib import Path
from typing import Any

from api import Ferry
from api.client import connect
from api.settings import data_dir
from models.arn import execution_id
from starter.cli import print_json
from starter.dev import HOST, DevServer, port_is_open, staging_url, stop_signals
from starter.progress import follow
from worker.main import run_worker

TASK_NAME = "ferry-demo"


def make_sample_tree(root: Path) -> None:
    """A few hundred files of many sizes, nested folders, an empty folder, a symbolic link, a
    hard link and names with spaces and accents: what a real share holds."""
    if root.exists():
        return
    rng = random.Random(7)
    for project in ("reports", "photos 2024", "données", "src/lib/deep/er"):
        folder = root / project
        folder.mkdir(parents=True)
        for number in range(60):
            size = rng.choice((0, 100, 4096, 20_000, 150_000))
            (folder / f"file-{number:03d}.bin").write_bytes(rng.randbytes(size))
    big = root / "photos 2024" / "panorama.raw"
    big.write_bytes(rng.randbytes(8 << 20))
    (root / "empty folder").mkdir()
    (root / "latest-report").symlink_to("reports/file-000.bin")
    os.link(root / "reports" / "file-001.bin", root / "reports" / "file-001-hardlink.bin")


async def run_demo(args: argparse.Namespace) -> int:
    directory = data_dir(args.data_dir)
    if not os.environ.get("FERRY_LOG_LEVEL"):
        logging.getLogger("ferry").setLevel(logging.WARNING)  # the progress line says it all
    server: DevServer | None = None
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    address = args.address or f"{HOST}:{args.port}"
    if args.address is None and not port_is_open(HOST, args.port):
        print(f"Starting the embedded stack in {directory} ...", file=sys.stderr)
        server = DevServer(directory, args.port, args.ui_port)
        server.start()
    try:
        client = await connect(address, patience=30 if server else 0)
        if server is not None:
            staging = staging_url(args.staging_url, directory)
            worker = asyncio.create_task(run_worker(client, staging, stop))
        ferry = Ferry(client)
        arn = await _start(ferry, directory / "demo")
        print(f"Started {arn}", file=sys.stderr)
        final = await follow(ferry, arn, live=sys.stderr.isatty())
        print_json(final)
        ui = f"http://{HOST}:{args.ui_port}/namespaces/{client.namespace}/workflows/"
        ui += execution_id(arn)
        if server is None:  # someone else's stack, which stays up
            print(f"\nSee the execution in the Temporal UI: {ui}", file=sys.stderr)
        elif not args.exit and sys.stdin.isatty():
            print(f"\nSee the execution in the Temporal UI: {ui}", file=sys.stderr)
            print("Ferry keeps running so that you can look; Ctrl-C stops it.", file=sys.stderr)
            stop_signals(stop)
            await stop.wait()
        else:  # the stack stops with the demo: its UI with it
            print(
                "\nThe embedded stack stops with the demo. To look at the execution in the "
                f"Temporal UI, start the stack again with\n    {_dev_command(args)}\nand open "
                f"{ui}",
                file=sys.stderr,
            )
        return 0 if final.get("Status") == "SUCCESS" else 1
    finally:
        stop.set()
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker
        if server is not None:
            server.stop()


def _dev_command(args: argparse.Namespace) -> str:
    """`ferry dev` as this demo was run: the same executable, data and ports."""
    executable = sys.argv[0] if os.sep in sys.argv[0] else "ferry"  # else found on PATH
    if os.path.abspath(executable).startswith(os.getcwd() + os.sep):
        executable = os.path.relpath(executable)  # `make demo`'s .venv/bin/ferry
    command = [executable, "dev"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.port != 7233:
        command += ["--port", str(args.port)]
    if args.ui_port != 8233:
        command += ["--ui-port", str(args.ui_port)]
    return shlex.join(command)


async def _start(ferry: Ferry, root: Path) -> str:
    source, destination = root / "source", root / "destination"
    make_sample_tree(source)
    destination.mkdir(parents=True, exist_ok=True)
    tasks = (await ferry.list_tasks({}))["Tasks"]
    task_arn = next((t["TaskArn"] for t in tasks if t.get("Name") == TASK_NAME), None)
    if task_arn is None:
        source_arn = await _location(ferry, source)
        destination_arn = await _location(ferry, destination)
        created = await ferry.create_task(
            {
                "SourceLocationArn": source_arn,
                "DestinationLocationArn": destination_arn,
                "Name": TASK_NAME,
            }
        )
        task_arn = created["TaskArn"]
        print(f"Created task {task_arn}", file=sys.stderr)
    started: dict[str, Any] = await ferry.start_task_execution({"TaskArn": task_arn})
    return started["TaskExecutionArn"]


async def _location(ferry: Ferry, path: Path) -> str:
    created = await ferry.create_location_local({"Path": str(path)})
    print(f"Created location {created['LocationArn']} for {path}", file=sys.stderr)
    return created["LocationArn"]
