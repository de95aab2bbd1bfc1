"""LogLevel's structured log lines, read back with `ferry logs`, and dry runs that say what an
execution would do without writing anything."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from conftest import Stack, run_cli
from helpers import create_task, run, snapshot, write

from api import Ferry
from api.client import connect


def log_lines(stack: Stack, arn: str) -> list[dict[str, object]]:
    shown = run_cli(stack, "logs", "--task-execution-arn", arn, check=True)
    return [json.loads(line) for line in shown.stdout.splitlines()]


async def test_log_levels_write_json_lines_that_ferry_logs_shows(
    own_stack: Callable[..., Stack], workdir: Path
) -> None:
    stack = own_stack(bound_by_permissions=True)  # so that a mode 000 file is unreadable
    ferry = Ferry(await connect(stack.address))
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "alpha")
    write(source / "sub" / "b.txt", "beta")
    write(source / "secret.txt", "hidden", mode=0o000)
    write(destination / "old.txt", "gone soon")
    task = await create_task(
        ferry,
        source,
        destination,
        Options={
            "LogLevel": "TRANSFER",
            "VerifyMode": "ONLY_FILES_TRANSFERRED",
            "PreserveDeletedFiles": "REMOVE",
        },
    )

    result = await run(ferry, task)
    lines = log_lines(stack, result["TaskExecutionArn"])

    assert result["Status"] == "ERROR"
    assert {line["TaskExecutionArn"] for line in lines} == {result["TaskExecutionArn"]}
    events = {(line["Event"], line["Path"]) for line in lines}
    assert {
        ("TRANSFERRED", "/a.txt"),
        ("TRANSFERRED", "/sub/b.txt"),
        ("DELETED", "/old.txt"),
        ("VERIFIED", "/a.txt"),
        ("VERIFIED", "/sub/b.txt"),
        ("FAILED", "/secret.txt"),
    } <= events
    transferred = next(line for line in lines if line["Path"] == "/a.txt")
    assert transferred["SrcMetadata"]["ContentSize"] == 5  # type: ignore[index]
    assert len(str(transferred["SrcChecksum"])) == 32
    failed = next(line for line in lines if line["Event"] == "FAILED")
    assert failed["Level"] == "ERROR" and failed["ErrorCode"] == "read"
    assert "ermission denied" in str(failed["ErrorDetail"])
    # The same lines are in the worker's log, for a log shipper.
    worker_log = stack.log_path(0).read_text()
    assert f'"TaskExecutionArn": "{result["TaskExecutionArn"]}"' in worker_log

    # BASIC: errors only.
    write(source / "a.txt", "alpha, changed")
    basic = await run(ferry, task, OverrideOptions={"LogLevel": "BASIC"})
    basic_events = {
        (line["Event"], line["Path"]) for line in log_lines(stack, basic["TaskExecutionArn"])
    }
    assert basic_events == {("FAILED", "/secret.txt")}

    # OFF (the default): nothing, and `ferry logs` says why.
    quiet = await run(ferry, task, OverrideOptions={"LogLevel": "OFF"})
    shown = run_cli(stack, "logs", "--task-execution-arn", quiet["TaskExecutionArn"])
    assert shown.returncode == 254
    assert "its LogLevel was OFF" in shown.stderr


async def test_a_dry_run_reports_what_would_change_and_writes_nothing(
    ferry: Ferry, stack: Stack, workdir: Path
) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for number in range(5):
        write(source / f"new-{number}.bin", os.urandom(1000))
    write(source / "same.txt", "same")
    write(destination / "extra.txt", "only here")
    task = await create_task(ferry, source, destination, Options={"PreserveDeletedFiles": "REMOVE"})
    await run(ferry, task)  # same.txt and the rest arrive; then the source moves on
    write(source / "new-0.bin", os.urandom(2000))
    write(destination / "extra.txt", "only here")
    before = snapshot(destination)

    dry = run_cli(stack, "start-task-execution", "--task-arn", task, "--dry-run", "--wait")
    described = json.loads(dry.stdout)

    assert dry.returncode == 0, dry.stderr
    assert described["Status"] == "SUCCESS"
    assert described["DryRun"] is True
    assert described["EstimatedFilesToTransfer"] >= 1
    assert described["EstimatedBytesToTransfer"] == 2000
    assert described["EstimatedFilesToDelete"] == 1
    assert described["FilesTransferred"] == 0 and described["FilesDeleted"] == 0
    assert described["Result"]["PrepareStatus"] == "SUCCESS"
    assert described["Result"]["TransferStatus"] == "PENDING"
    assert snapshot(destination) == before

    real = await run(ferry, task)
    assert real["Status"] == "SUCCESS"
    assert real["FilesTransferred"] == described["EstimatedFilesToTransfer"]
    assert real["BytesTransferred"] == described["EstimatedBytesToTransfer"]
    assert real["FilesDeleted"] == described["EstimatedFilesToDelete"]
