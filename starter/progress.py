"""Following an execution to its end, showing its phase and counters on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from temporalio.client import WorkflowFailureError

from api import Ferry
from models.arn import execution_id
from models.execution import TERMINAL

REFRESH_SECONDS = 0.5


async def follow(ferry: Ferry, arn: str, *, live: bool) -> dict[str, Any]:
    """Wait until the execution ends and return its final DescribeTaskExecution."""
    handle = ferry.client.get_workflow_handle(execution_id(arn))
    ended = asyncio.ensure_future(_result(handle))
    if live:
        await _show(ferry, arn, ended)
    await ended
    return await ferry.describe_task_execution({"TaskExecutionArn": arn})


async def _result(handle: Any) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def _show(ferry: Ferry, arn: str, ended: asyncio.Future[None]) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    started = time.monotonic()
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            description = await ferry.describe_task_execution({"TaskExecutionArn": arn})
            live.update(line(description, time.monotonic() - started))
            if ended.done() or description.get("Status") in TERMINAL:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(ended), REFRESH_SECONDS)


def line(description: dict[str, Any], elapsed: float) -> str:
    status = description.get("Status", "?")
    files = description.get("FilesTransferred", 0)
    estimated = description.get("EstimatedFilesToTransfer", 0)
    written = description.get("BytesWritten", 0)
    total = description.get("EstimatedBytesToTransfer", 0)
    rate = written / elapsed if elapsed > 0 else 0
    parts = [
        f"[bold]{status:<12}[/bold]",
        f"files {files}/{estimated}",
        f"bytes {_size(written)}/{_size(total)}",
        f"{_size(rate)}/s",
    ]
    if description.get("FilesVerified"):
        parts.append(f"verified {description['FilesVerified']}")
    if description.get("FilesDeleted"):
        parts.append(f"deleted {description['FilesDeleted']}")
    if description.get("FilesSkipped"):
        parts.append(f"skipped {description['FilesSkipped']}")
    return "  ".join(parts)


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
