"""Record workflow histories for tests/test_replay.py: real executions of the workflows as they
are now, on a fresh embedded stack. Run it when a workflow gains a behaviour worth keeping
replayable (the files it writes are kept in git; a file of the same name is replaced):

    .venv/bin/python tests/histories/record.py

Each scenario is one kind of execution; the registry's history is recorded last.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from api import Ferry  # noqa: E402
from api.client import connect  # noqa: E402
from models.arn import execution_id  # noqa: E402
from models.temporal import REGISTRY_WORKFLOW_ID  # noqa: E402
from starter.dev import DevServer  # noqa: E402

FERRY = os.path.join(sysconfig.get_path("scripts"), "ferry")


def files(root: Path, count: int, size: int = 2000, folders: int = 4) -> Path:
    for number in range(count):
        path = root / f"d{number % folders}" / f"f{number:05d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


async def task(ferry: Ferry, source: Path, destination: Path, **request: Any) -> str:
    destination.mkdir(parents=True, exist_ok=True)
    made = [
        (await ferry.create_location_local({"Path": str(path)}))["LocationArn"]
        for path in (source, destination)
    ]
    created = await ferry.create_task(
        {"SourceLocationArn": made[0], "DestinationLocationArn": made[1], **request}
    )
    return created["TaskArn"]


async def run(ferry: Ferry, task_arn: str, **request: Any) -> str:
    arn = (await ferry.start_task_execution({"TaskArn": task_arn, **request}))["TaskExecutionArn"]
    handle = ferry.client.get_workflow_handle(execution_id(arn))
    with contextlib.suppress(WorkflowFailureError):  # a failed execution is recorded too
        await handle.result()
    return arn


async def save(ferry: Ferry, name: str, workflow_id: str) -> None:
    runs = 0
    async for listed in ferry.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await ferry.client.get_workflow_handle(
            listed.id, run_id=listed.run_id
        ).fetch_history()
        (HERE / f"{name}-{runs}.json.gz").write_bytes(gzip.compress(history.to_json().encode()))
        runs += 1
    print(f"{name}: {runs} run(s)", file=sys.stderr)


async def record(work: Path) -> None:
    server = DevServer(work / "temporal", port=17333, ui=False)
    server.start()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": server.address,
        "FERRY_DATA_DIR": str(work / "data"),
        "FERRY_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    os.environ.update(FERRY_SECRET_KEY=env["FERRY_SECRET_KEY"])
    ferry = Ferry(await connect(server.address, patience=30))
    scenarios: dict[str, tuple[str, Callable[[], Awaitable[str]]]] = {
        # Batches of files while PREPARING goes on, directories, deletes, verification.
        "execution-verified": ("50", lambda: _verified(ferry, work)),
        # Under a bandwidth limit, verified from the result logs.
        "execution-limited": ("10", lambda: _limited(ferry, work)),
        "execution-dry-run": ("50", lambda: _dry_run(ferry, work)),
        "execution-failed": ("50", lambda: _failed(ferry, work)),
        # A batch per file: enough batches to continue as new between them.
        "execution-continued": ("1", lambda: _continued(ferry, work)),
    }
    try:
        for name, (batch_files, scenario) in scenarios.items():
            worker = subprocess.Popen(
                [FERRY, "worker"], env={**env, "FERRY_BATCH_FILES": batch_files}
            )
            try:
                await save(ferry, name, execution_id(await scenario()))
            finally:
                worker.terminate()
                worker.wait()
        await save(ferry, "registry", REGISTRY_WORKFLOW_ID)
    finally:
        server.stop()


async def _verified(ferry: Ferry, work: Path) -> str:
    source = files(work / "verified", 400)
    destination = work / "verified-to"
    (destination / "stale").mkdir(parents=True)
    options = {"PreserveDeletedFiles": "REMOVE"}
    return await run(ferry, await task(ferry, source, destination, Options=options))


async def _limited(ferry: Ferry, work: Path) -> str:
    source = files(work / "limited", 100, 20_000)
    options = {"BytesPerSecond": 1 << 20, "VerifyMode": "ONLY_FILES_TRANSFERRED"}
    return await run(ferry, await task(ferry, source, work / "limited-to", Options=options))


async def _dry_run(ferry: Ferry, work: Path) -> str:
    source = files(work / "dry", 120)
    return await run(ferry, await task(ferry, source, work / "dry-to"), DryRun=True)


async def _failed(ferry: Ferry, work: Path) -> str:
    source = files(work / "failed", 10)
    failing = await task(ferry, source, work / "failed-to")
    subprocess.run(["rm", "-rf", str(source)], check=True)
    return await run(ferry, failing)


async def _continued(ferry: Ferry, work: Path) -> str:
    source = files(work / "continued", 1500, 10, folders=1)
    options = {"VerifyMode": "NONE"}
    return await run(ferry, await task(ferry, source, work / "continued-to", Options=options))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ferry-record-", dir="/tmp") as directory:
        asyncio.run(record(Path(directory)))
