"""Executions outlive the processes that run them: a worker killed with SIGKILL, the whole
embedded stack stopped and started again, and histories kept short by continue-as-new."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conftest import FERRY, Endpoint, Popen, Stack, free_port
from helpers import (
    create_task,
    differences,
    empty_folder,
    start,
    start_limited,
    transfer_batches,
    until,
    wait,
    wait_for_port,
    write,
)

from api import Ferry
from api.client import connect
from models.arn import execution_id
from starter.dev import port_is_open


async def test_a_killed_worker_is_replaced_and_finished_batches_are_not_copied_again(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(FERRY_BATCH_FILES="4")
    ferry = Ferry(await connect(stack.address))
    # 6 MiB at 1 MiB/s: about six seconds of TRANSFERRING, in six batches of four files.
    source, destination, files, arn = await start_limited(ferry, workdir, 24, 1 << 20)
    await until(lambda: sum(1 for name in files if (destination / name).exists()) >= 10)
    stack.stop_worker(stack.workers[0], signal.SIGKILL)
    copied = {
        name: os.stat(destination / name).st_ino for name in files if (destination / name).exists()
    }
    stack.start_worker(FERRY_BATCH_FILES="4")
    result = await wait(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert differences(source, destination) == []
    assert result["FilesTransferred"] == len(files) + 1  # and the root, counted once each
    assert result["BytesWritten"] == len(files) * 256 * 1024
    again = [name for name, inode in copied.items() if os.stat(destination / name).st_ino != inode]
    # Nothing finished before the kill is written again: whole batches stay as they were, and
    # in the two batches cut short (two share a limit), the files finished after their last
    # checkpoint are found whole at the destination by the attempts that resume them.
    assert again == []


def pool_processes(worker: Popen) -> list[int]:
    """The worker's pool processes (multiprocessing's spawned children, not its tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if ppid == worker.pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


async def test_a_dead_pool_process_fails_only_its_batches_which_are_retried(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(FERRY_BATCH_FILES="4", FERRY_PROCESSES="2")
    (worker,) = stack.workers
    ferry = Ferry(await connect(stack.address))
    # 4 MiB at 1 MiB/s, in four batches of four files, two at once.
    source, destination, files, arn = await start_limited(ferry, workdir, 16, 1 << 20)
    await until(lambda: any(destination.glob("file-*")))
    os.kill(pool_processes(worker)[0], signal.SIGKILL)
    result = await asyncio.wait_for(wait(ferry, arn), 120)  # never, had the worker stopped

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert differences(source, destination) == []
    assert result["FilesTransferred"] == len(files) + 1
    assert worker.poll() is None  # the worker lives on, with a new pool
    retried = [b for b in await transfer_batches(ferry, arn) if b.last_failure == "PoolProcessDied"]
    assert retried and all(batch.attempt >= 2 for batch in retried)


async def test_stopping_and_restarting_ferry_dev_loses_nothing(workdir: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="ferry-dev-", dir="/tmp"))
    port, api_port = free_port(), free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    command = [
        FERRY,
        "dev",
        "--data-dir",
        str(data),
        "--port",
        str(port),
        "--ui-port",
        str(free_port()),
        "--api-port",
        str(api_port),
    ]

    def ferry_dev() -> subprocess.Popen[bytes]:
        log = open(data / "ferry-dev.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, "ferry dev did not start"
            time.sleep(0.05)
        return process

    def cli(*args: str) -> dict:
        done = subprocess.run([FERRY, *args], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    source, destination = workdir / "source", workdir / "destination"
    for number in range(12):
        write(source / f"file-{number:02d}.bin", os.urandom(512 * 1024))
    empty_folder(destination)
    process = ferry_dev()
    try:
        source_arn = cli("create-location-local", "--path", str(source))["LocationArn"]
        destination_arn = cli("create-location-local", "--path", str(destination))["LocationArn"]
        task = cli(
            "create-task",
            "--source-location-arn", source_arn,
            "--destination-location-arn", destination_arn,
            "--options", "BytesPerSecond=1048576",
        )["TaskArn"]  # fmt: skip
        arn = cli("start-task-execution", "--task-arn", task)["TaskExecutionArn"]
        ferry = Ferry(await connect(f"127.0.0.1:{port}"))
        await until(lambda: any(destination.glob("file-*")))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not port_is_open("127.0.0.1", port)

        process = ferry_dev()
        ferry = Ferry(await connect(f"127.0.0.1:{port}"))
        result = await wait(ferry, arn)

        assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
        assert differences(source, destination) == []
        assert cli("describe-task", "--task-arn", task)["SourceLocationArn"] == source_arn
        listed = cli("list-locations")["Locations"]
        assert {source_arn, destination_arn} <= {entry["LocationArn"] for entry in listed}
        # Its DataSync endpoint answers boto3 with what was made before the restart.
        wait_for_port(api_port, process, "ferry dev's DataSync endpoint", timeout=30)
        key = cli("create-access-key")["AccessKey"]
        api = Endpoint(f"http://127.0.0.1:{api_port}", key["AccessKeyId"], key["SecretAccessKey"])
        datasync = api.client()
        assert datasync.describe_task(TaskArn=task)["SourceLocationArn"] == source_arn
        assert datasync.describe_task_execution(TaskExecutionArn=arn)["Status"] == "SUCCESS"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(data)], check=False)


async def test_long_executions_continue_as_new_and_keep_histories_short(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    # One file per batch: 1,500 batches make about 9,000 history events in all.
    stack = own_stack(FERRY_BATCH_FILES="1")
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    for number in range(1500):
        write(source / f"d{number % 10}" / f"f{number:04d}", str(number))
    empty_folder(destination)
    task = await create_task(ferry, source, destination, Options={"VerifyMode": "NONE"})

    arn = await start(ferry, task)
    result = await wait(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert result["FilesTransferred"] == 1500 + 10 + 1
    assert differences(source, destination) == []
    runs = [run async for run in ferry.client.list_workflows(f"WorkflowId = '{execution_id(arn)}'")]
    assert len(runs) >= 2  # it did continue as new
    for run in runs:
        handle = ferry.client.get_workflow_handle(run.id, run_id=run.run_id)
        history = await handle.fetch_history()
        assert len(history.events) < 10_000
        assert history.to_json_dict() and len(history.to_json()) < 10 * 1024 * 1024
