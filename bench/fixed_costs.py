"""Ferry's fixed costs: what a user pays however little there is to move.

    .venv/bin/python bench/fixed_costs.py [--dir /tmp/ferry-bench-fixed] [--repeats 9] [--quick]

  cli        `ferry describe-task` as a fresh process: CPU time (user + sys, from wait4, which
             load on the machine inflates less than wall time) and wall time; beside it the
             floor no Ferry code can go under, a process that only imports Temporal's client
             and its pydantic converter. The CLI runs with its bytecode compiled, as an
             installed Ferry has it (PYTHONDONTWRITEBYTECODE is dropped from its environment).
  one file   one 1 KiB file, StartTaskExecution to SUCCESS as a connected client sees it, on
             the embedded stack (`ferry dev`), with VerifyMode NONE and with the default
             POINT_IN_TIME_CONSISTENT; and the execution's own StartTime to EndTime.

Medians of the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local import FERRY, FerryStack, save

FLOOR = "import temporalio.client, temporalio.contrib.pydantic"


def fresh_process(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{command} failed ({status})")
    return usage.ru_utime + usage.ru_stime, wall


def cli_costs(stack: FerryStack, task: str, repeats: int) -> dict[str, Any]:
    env = {key: value for key, value in stack.env.items() if key != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "describe-task": [FERRY, "describe-task", "--task-arn", task],
        "floor": [sys.executable, "-c", FLOOR],
    }
    for command in commands.values():
        fresh_process(command, env)  # writes the bytecode
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(fresh_process(command, env))
    return {
        name: {
            "cpu": statistics.median(cpu for cpu, _ in values),
            "wall": statistics.median(wall for _, wall in values),
            "all": values,
        }
        for name, values in runs.items()
    }


async def one_file(stack: FerryStack, base: Path, verify: str, repeats: int) -> dict[str, Any]:
    source, destination = base / f"one-{verify}", base / f"one-{verify}-copy"
    for folder in (source, destination):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    (source / "one.bin").write_bytes(os.urandom(1024))
    task = await stack.task(source, destination, verify)
    clients, executions = [], []
    for _ in range(repeats + 1):
        (destination / "one.bin").unlink(missing_ok=True)
        elapsed, result = await stack.run(task)
        if result["FilesTransferred"] < 1:
            raise SystemExit(f"the 1 KiB file was not copied: {result}")
        clients.append(elapsed)
        executions.append(_seconds(result["EndTime"]) - _seconds(result["StartTime"]))
    # The first run is the worker's first: it builds the models the later runs find built.
    return {
        "client": statistics.median(clients[1:]),
        "execution": statistics.median(executions[1:]),
        "first_client": clients[0],
        "all": list(zip(clients[1:], executions[1:], strict=True)),
    }


def _seconds(timestamp: datetime.datetime | str) -> float:
    if isinstance(timestamp, str):
        timestamp = datetime.datetime.fromisoformat(timestamp)
    return timestamp.timestamp()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    (base / "ferry").mkdir(parents=True)
    stack = FerryStack(base / "ferry")
    try:
        await stack.connect()
        results: dict[str, Any] = {"repeats": args.repeats}
        for verify in ("NONE", "POINT_IN_TIME_CONSISTENT"):
            results[f"one_file_{verify}"] = await one_file(stack, base, verify, args.repeats)
        task = (await stack.ferry.list_tasks({}))["Tasks"][0]["TaskArn"]
        results["cli"] = cli_costs(stack, task, args.repeats)
    finally:
        stack.stop()
    return results


def print_report(results: dict[str, Any]) -> None:
    print(f"\nfixed costs (medians of {results['repeats']} repeats)")
    for verify in ("NONE", "POINT_IN_TIME_CONSISTENT"):
        run = results[f"one_file_{verify}"]
        print(
            f"  one 1 KiB file, VerifyMode {verify:<24} StartTaskExecution to SUCCESS "
            f"{run['client']:6.3f} s (execution {run['execution']:.3f} s; a fresh worker's "
            f"first {run['first_client']:.3f} s)"
        )
    cli = results["cli"]
    for name, label in (
        ("describe-task", "`ferry describe-task`, a fresh process"),
        ("floor", "its floor: Python importing Temporal's client"),
    ):
        print(f"  {label:<48} CPU {cli[name]['cpu']:6.3f} s  wall {cli[name]['wall']:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench-fixed")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 repeats, to try the script")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 3
    results = asyncio.run(measure(args))
    save(results, "fixed_costs")  # before any print
    print_report(results)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
    sys.stdout.flush()
    os._exit(0)  # see starter/cli.py: the Temporal client's threads and interpreter teardown
