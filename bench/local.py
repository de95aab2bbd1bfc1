"""Ferry against rsync, rclone and cp between two local folders, on the same data in one run.

    .venv/bin/python bench/local.py [--dir /tmp/ferry-bench] [--repeats 3] [--quick]

Data sets (made once, kept in --dir):
  small   50,000 files of 1-16 KiB in 500 folders: initial copy, no-op re-run, re-run after 1%
          of the files changed
  large   8 files of 256 MiB: initial copy
  huge    200,000 small files: Ferry's largest workflow history and its worker's peak memory

Ferry runs on its embedded stack (`ferry dev`, started here on free ports), once with
VerifyMode NONE (what rsync and rclone do) and once with its default verification. Its time is
measured from StartTaskExecution to the end as a connected client sees it (LAUNCHING included);
the no-op is also timed as a fresh `ferry start-task-execution --wait` process (Python start-up
included). Tools alternate within every repeat; the figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

SCRIPTS = sysconfig.get_path("scripts")
FERRY = os.path.join(SCRIPTS, "ferry")
RCLONE = os.path.join(SCRIPTS, "rclone")


def made(root: Path) -> Path:
    """Marks a data set as complete (beside it, not in it)."""
    return root.with_name(root.name + ".complete")


def make_small(root: Path, folders: int, files: int, low: int, high: int) -> None:
    if made(root).exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(1)
    for folder in range(folders):
        path = root / f"dir-{folder:04d}"
        path.mkdir(parents=True)
        for number in range(files):
            (path / f"file-{number:04d}.dat").write_bytes(rng.randbytes(rng.randint(low, high)))
    made(root).write_text("")


def make_large(root: Path, count: int, size: int) -> None:
    if made(root).exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    for number in range(count):
        with open(root / f"large-{number}.bin", "wb") as file:
            for block in range(size >> 20):
                file.write(block.to_bytes(8, "little") + chunk[8:])
    made(root).write_text("")


def change_files(root: Path, share: float, seed: int) -> int:
    files = sorted(p for p in root.rglob("file-*.dat"))
    rng = random.Random(seed)
    chosen = rng.sample(files, int(len(files) * share))
    for path in chosen:
        path.write_bytes(rng.randbytes(path.stat().st_size))
    return len(chosen)


def small_and_large(base: Path, quick: bool) -> tuple[Path, Path]:
    """The shared data sets (50,000 small files, 8 x 256 MiB), or with `quick` smaller ones
    beside them (never in their place), made where missing."""
    if quick:
        small, large = base / "small-500", base / "large-2x16MiB"
        make_small(small, 5, 100, 1024, 16384)
        make_large(large, 2, 16 << 20)
    else:
        small, large = base / "small", base / "large"
        make_small(small, 500, 100, 1024, 16384)
        make_large(large, 8, 256 << 20)
    return small, large


def empty(folder: Path) -> None:
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    subprocess.run(["sync"], check=True)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FerryStack:
    """`ferry dev` on free ports (its DataSync endpoint at `api_url`), and a client of it."""

    def __init__(self, data: Path, **env: str) -> None:
        """`env`: more of `ferry dev`'s environment (its staging store, say)."""
        self.port, api_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "FERRY_DATA_DIR": str(data),
            **env,
        }
        log = open(data / "ferry-dev.log", "ab")  # noqa: SIM115
        command = [FERRY, "dev", "--data-dir", str(data), "--port", str(self.port), "--headless"]
        self.process = subprocess.Popen(
            [*command, "--api-port", str(api_port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.peak_rss = 0
        self._watching = True
        threading.Thread(target=self._watch_memory, daemon=True).start()

    async def connect(self) -> None:
        from api import Ferry
        from api.client import connect

        self.ferry = Ferry(await connect(self.address, patience=60))
        await self.ferry._require_worker(patience=60)

    def _watch_memory(self) -> None:
        """Peak resident memory of the worker: `ferry dev` and its pool, not the server."""
        while self._watching:
            try:
                worker = psutil.Process(self.process.pid)
                tree = [worker] + [
                    child
                    for child in worker.children(recursive=True)
                    if "temporal" not in child.name()
                ]
                self.peak_rss = max(self.peak_rss, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.1)

    async def task(self, source: Path, destination: Path, verify: str) -> str:
        ferry = self.ferry
        source_arn = (await ferry.create_location_local({"Path": str(source)}))["LocationArn"]
        target = (await ferry.create_location_local({"Path": str(destination)}))["LocationArn"]
        created = await ferry.create_task(
            {
                "SourceLocationArn": source_arn,
                "DestinationLocationArn": target,
                "Options": {"VerifyMode": verify},
            }
        )
        return created["TaskArn"]

    async def run(self, task: str) -> tuple[float, dict[str, Any]]:
        from starter.progress import follow

        start = time.perf_counter()
        started = await self.ferry.start_task_execution({"TaskArn": task})
        result = await follow(self.ferry, started["TaskExecutionArn"], live=False)
        elapsed = time.perf_counter() - start
        if result["Status"] != "SUCCESS":
            raise SystemExit(f"Ferry failed: {result['Result']}")
        return elapsed, result

    def run_cli(self, task: str) -> float:
        command = [FERRY, "start-task-execution", "--task-arn", task, "--wait"]
        start = time.perf_counter()
        subprocess.run(command, env=self.env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    async def histories(self, arn: str) -> list[tuple[int, int]]:
        """(events, bytes) of each run of an execution's workflow."""
        from models.arn import execution_id

        client = self.ferry.client
        workflow_id = execution_id(arn)
        sizes = []
        async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
            sizes.append((len(history.events), len(history.to_json())))
        return sizes

    def stop(self) -> None:
        self._watching = False
        self.process.terminate()
        self.process.wait(timeout=60)


def median(values: list[float]) -> float:
    return statistics.median(values)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    sizes = (
        {"small": (50, 100), "large": (2, 16 << 20), "huge": (40, 100)}
        if args.quick
        else {"small": (500, 100), "large": (8, 256 << 20), "huge": (2000, 100)}
    )
    small, large, huge = base / "small", base / "large", base / "huge"
    print("making data ...", file=sys.stderr)
    make_small(small, *sizes["small"], 1024, 16384)
    make_large(large, *sizes["large"])
    if not args.skip_huge:
        make_small(huge, *sizes["huge"], 1024, 4096)
    shutil.rmtree(base / "ferry", ignore_errors=True)  # a fresh embedded stack every run
    (base / "ferry").mkdir()
    stack = FerryStack(base / "ferry")
    await stack.connect()
    results: dict[str, Any] = {"repeats": args.repeats, "files": {}}
    try:
        for name, source in (("small", small), ("large", large)):
            results[name] = await compare_tools(stack, name, source, base, args.repeats)
        if not args.skip_huge:
            results["huge"] = await huge_run(stack, huge, base)
    finally:
        stack.stop()
    results["worker_peak_rss"] = stack.peak_rss
    return results


async def compare_tools(
    stack: FerryStack, name: str, source: Path, base: Path, repeats: int
) -> dict[str, Any]:
    destinations = {
        tool: base / f"{name}-{tool}" for tool in ("rsync", "rclone", "cp", "ferry", "ferry-verify")
    }
    for folder in destinations.values():
        empty(folder)
    ferry_task = await stack.task(source, destinations["ferry"], "NONE")
    verify_task = await stack.task(source, destinations["ferry-verify"], "POINT_IN_TIME_CONSISTENT")
    tools: dict[str, Callable[[], Any]] = {
        "rsync": lambda: timed(["rsync", "-a", f"{source}/", f"{destinations['rsync']}/"]),
        "rclone": lambda: timed(
            [RCLONE, "sync", "--config", "/dev/null", str(source), str(destinations["rclone"])]
        ),
        # The plain copy, initial runs only: it has no re-run that skips what is there.
        "cp": lambda: timed(["cp", "-a", f"{source}/.", f"{destinations['cp']}/"]),
        "ferry": lambda: stack.run(ferry_task),
        "ferry-verify": lambda: stack.run(verify_task),
    }
    times: dict[str, dict[str, list[float]]] = {"initial": {}, "noop": {}, "changed": {}}
    files = sum(1 for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    order = list(tools)
    for repeat in range(repeats):
        order = order[1:] + order[:1]  # alternate who goes first
        for tool in order:
            empty(destinations[tool])
            times["initial"].setdefault(tool, []).append(await _run(tools[tool]))
        if name != "small":
            continue
        again = [tool for tool in order if tool != "cp"]
        for tool in again:
            times["noop"].setdefault(tool, []).append(await _run(tools[tool]))
        subprocess.run(["sync"], check=True)
        times["noop"].setdefault("ferry-cli", []).append(stack.run_cli(ferry_task))
        changed = change_files(source, 0.01, seed=repeat)
        subprocess.run(["sync"], check=True)
        for tool in again:
            times["changed"].setdefault(tool, []).append(await _run(tools[tool]))
        print(f"{name} repeat {repeat + 1}: {changed} files changed", file=sys.stderr)
    report: dict[str, Any] = {"files": files, "bytes": total}
    for scenario, by_tool in times.items():
        if by_tool:
            report[scenario] = {tool: median(values) for tool, values in by_tool.items()}
            report[scenario + "_all"] = by_tool
    return report


async def _run(tool: Callable[[], Any]) -> float:
    # Whatever the last tool left for the kernel to write back is written now, so that no tool
    # pays for another's write-back (small files: mostly journal and metadata writes).
    subprocess.run(["sync"], check=True)
    outcome = tool()
    if asyncio.iscoroutine(outcome):
        elapsed, _ = await outcome
        return elapsed
    return outcome


async def huge_run(stack: FerryStack, source: Path, base: Path) -> dict[str, Any]:
    destination = base / "huge-ferry"
    empty(destination)
    task = await stack.task(source, destination, "NONE")
    stack.peak_rss = 0
    elapsed, result = await stack.run(task)
    runs = await stack.histories(result["TaskExecutionArn"])
    return {
        "files": result["FilesTransferred"],
        "seconds": elapsed,
        "runs": len(runs),
        "largest_history_events": max(events for events, _ in runs),
        "largest_history_bytes": max(size for _, size in runs),
        "worker_peak_rss": stack.peak_rss,
    }


def print_report(results: dict[str, Any]) -> None:
    def line(label: str, runs: dict[str, list[float]], files: int, size: int) -> None:
        # Ratios are taken within each repeat (the tools ran back to back on the same disk
        # state), then their median: steadier than a ratio of medians on a noisy machine.
        peers = [peer for peer in ("rsync", "rclone", "cp") if peer in runs]
        print(f"\n{label}  (speed as a multiple of {', '.join(peers)}'s, median of repeats)")
        for tool, times in sorted(runs.items()):
            seconds = median(times)
            rate = f"{files / seconds:9.0f} files/s {size / seconds / 2**20:8.1f} MiB/s"
            ratios = " ".join(
                f"{median([p / t for p, t in zip(runs[peer], times, strict=False)]):5.2f}x {peer}"
                for peer in peers
            )
            print(f"  {tool:<13}{seconds:8.2f} s {rate}  {ratios}")

    for name in ("small", "large"):
        data = results[name]
        for scenario in ("initial", "noop", "changed"):
            if scenario in data:
                label = (
                    f"{name} ({data['files']} files, {data['bytes'] / 2**20:.0f} MiB): {scenario}"
                )
                line(label, data[scenario + "_all"], data["files"], data["bytes"])
    if "huge" in results:
        huge = results["huge"]
        print(
            f"\nhuge: {huge['files']} files in {huge['seconds']:.1f} s, {huge['runs']} workflow "
            f"runs, largest history {huge['largest_history_events']} events / "
            f"{huge['largest_history_bytes'] / 2**20:.2f} MiB, worker peak "
            f"{huge['worker_peak_rss'] / 2**20:.0f} MiB"
        )
    print(f"\nworker peak memory over the whole run: {results['worker_peak_rss'] / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/ferry-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, to try the script")
    parser.add_argument("--skip-huge", action="store_true", help="without the 200,000 files")
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        raise SystemExit("rsync is not installed (apt-get install rsync)")
    results = asyncio.run(measure(args))
    save(results, "local")  # before any print
    print_report(results)


def save(results: dict[str, Any], name: str) -> Path:
    """Into bench/results/NAME-DATE-TIME.json."""
    out = Path(__file__).parent / "results" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
    sys.stdout.flush()
    os._exit(0)  # see starter/cli.py: the Temporal client's threads and interpreter teardown
